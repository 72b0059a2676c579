package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Item 10: a server without a {@code /health} route (llama.cpp builds, proxies) answers 404. That says
 * nothing about whether it can serve, so two such replicas must both take traffic, about evenly, rather
 * than both being marked down and every call going to the first.
 */
@FaultItem(value = 10, title = "Health 404")
class Item10Health404Test extends FaultTestBase {

    @Test
    void callsSpreadOverTwoReplicasWhoseHealthIs404() {
        FaultServer a = server().health(404);
        FaultServer b = server().health(404);
        CostLedger ledger = new CostLedger();
        String yaml = "providers:\n  main:\n    type: vllm\n    baseUrls: [\"" + a.baseUrl() + "\", \"" + b.baseUrl()
                + "\"]\n    model: fault-model\n    apiKey: ${KEY}\n    scrapeInterval: 100ms\n"
                + "    pricing: {type: per-token, inputPerMillion: 1, outputPerMillion: 2}\n";
        InferenceClient client = load(yaml, ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);
        long deadline = System.nanoTime() + Duration.ofSeconds(3).toNanos();
        while ((a.count("GET", "/health") < 2 || b.count("GET", "/health") < 2) && System.nanoTime() < deadline) {
            Probe.sleep(20);
        }
        int failed = 0;
        for (int i = 0; i < 100; i++) {
            Probe.Outcome<ChatResponse> o = probe.chat(client, ask("call " + i), LIMIT);
            if (!o.ok()) {
                failed++;
            }
        }
        assertThat(failed).as("failed calls").isZero();
        String split = a.chatPosts() + " / " + b.chatPosts();
        assertThat(a.chatPosts())
                .as("calls to the first replica, of 100 (split %s, health 404 on both)", split)
                .isGreaterThanOrEqualTo(30);
        assertThat(b.chatPosts())
                .as("calls to the second replica, of 100 (split %s, health 404 on both)", split)
                .isGreaterThanOrEqualTo(30);
    }
}
