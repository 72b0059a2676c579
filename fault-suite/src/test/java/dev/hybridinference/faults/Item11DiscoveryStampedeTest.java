package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;

/**
 * Item 11: with no model configured, the client learns it from {@code GET /v1/models}. When that route is
 * slow (4 s here) and 20 callers arrive at once, each with a 3 s timeout, the route should be asked once
 * (or a few times), not once per caller, and every call should end by its deadline, not by the listing's
 * own timeout.
 */
@FaultItem(value = 11, title = "Discovery stampede")
class Item11DiscoveryStampedeTest extends FaultTestBase {
    private static final Duration TIMEOUT = Duration.ofSeconds(3);
    private static final Duration MARGIN = Duration.ofMillis(750);

    @Test
    void twentyFirstCallsAskForTheModelOnceAndEndByTheirDeadline() throws Exception {
        FaultServer server = server().modelsDelay(Duration.ofSeconds(4));
        CostLedger ledger = new CostLedger();
        InferenceClient client = load(Yaml.single(server.baseUrl(), "model", null), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);

        int callers = 20;
        List<Probe.Outcome<ChatResponse>> outcomes = java.util.Collections.synchronizedList(new ArrayList<>());
        assertThat(Callers.together(
                        callers,
                        Duration.ofSeconds(15),
                        n -> outcomes.add(probe.chat(client, ask("first call " + n, TIMEOUT), Duration.ofSeconds(10)))))
                .isTrue();

        List<String> late = new ArrayList<>();
        synchronized (outcomes) {
            for (Probe.Outcome<ChatResponse> o : outcomes) {
                if (o.hung() || o.took().compareTo(TIMEOUT.plus(MARGIN)) > 0) {
                    late.add(o.took().toMillis() + " ms: " + o.describe());
                }
            }
        }
        SoftAssertions soft = new SoftAssertions();
        soft.assertThat(server.count("GET", "/v1/models"))
                .as("GET /v1/models requests for 20 concurrent first calls")
                .isLessThanOrEqualTo(2);
        soft.assertThat(late)
                .as("calls that ended after their 3 s timeout + 750 ms")
                .isEmpty();
        soft.assertAll();
    }
}
