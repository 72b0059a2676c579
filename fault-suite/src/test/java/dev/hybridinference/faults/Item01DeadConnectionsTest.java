package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import dev.hybridinference.vllm.ReplicaStatus;
import dev.hybridinference.vllm.VllmClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Item 1: pooled connections the server has closed without notice. llama.cpp closes after every streamed
 * answer and uvicorn after 5 s idle; the next request on such a connection meets "unexpected end of
 * stream". A client must not fail calls, or flap health, because of it, and must not resend a request
 * behind the caller's back either (OkHttp silently repeats a 503 carrying {@code Retry-After: 0}).
 */
@FaultItem(value = 1, title = "Dead pooled connections")
class Item01DeadConnectionsTest extends FaultTestBase {

    @Test
    void callsAfterStreamsTheServerClosedAllSucceed() {
        FaultServer server = server().closeAfterStream(true);
        CostLedger ledger = new CostLedger();
        InferenceClient client = load(Yaml.single(server.baseUrl()), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);

        assertThat(probe.stream(client, ask("first"), LIMIT).ok()).isTrue();
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            boolean streamed = i % 2 == 1;
            Probe.Outcome<?> o = streamed
                    ? probe.stream(client, ask("next " + i), LIMIT)
                    : probe.chat(client, ask("next " + i), LIMIT);
            if (!o.ok()) {
                failures.add((streamed ? "stream " : "chat ") + i + ": " + o.describe());
            }
        }
        assertThat(failures)
                .as("calls after a stream the server closed (llama.cpp style) should all succeed")
                .isEmpty();
    }

    @Test
    void callsAfterTheServerClosedIdleConnectionsAllSucceed() {
        FaultServer server = server().idleTimeout(Duration.ofMillis(150));
        CostLedger ledger = new CostLedger();
        InferenceClient client = load(Yaml.single(server.baseUrl()), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);

        assertThat(probe.chat(client, ask("warm up"), LIMIT).ok()).isTrue();
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            Probe.sleep(230); // longer than the server's idle timeout: the pooled connection is dead
            Probe.Outcome<?> o = i % 3 == 2
                    ? probe.stream(client, ask("after idle " + i), LIMIT)
                    : probe.chat(client, ask("after idle " + i), LIMIT);
            if (!o.ok()) {
                failures.add("call " + i + ": " + o.describe());
            }
        }
        assertThat(failures)
                .as("calls after the server closed idle connections (uvicorn style) should all succeed")
                .isEmpty();
        assertThat(server.chatPosts()).isGreaterThanOrEqualTo(11);
    }

    @Test
    void healthDoesNotFlapWhenTheServerClosesIdleConnections() {
        FaultServer server = server().idleTimeout(Duration.ofMillis(40));
        CostLedger ledger = new CostLedger();
        VllmClient client = (VllmClient)
                load(Yaml.single(server.baseUrl(), "scrapeInterval", "100ms", "scrapeTimeout", "1s"), ledger);

        long deadline = System.nanoTime() + Duration.ofSeconds(8).toNanos();
        int samples = 0;
        int down = 0;
        while (server.count("GET", "/health") < 20 && System.nanoTime() < deadline) {
            ReplicaStatus status = client.replicas().get(0);
            samples++;
            if (!status.up()) {
                down++;
            }
            Probe.sleep(10);
        }
        assertThat(server.count("GET", "/health")).as("health checks made").isGreaterThanOrEqualTo(20);
        assertThat(down)
                .as(
                        "samples (of %d) in which the replica was marked down over 20 health checks with idle closes",
                        samples)
                .isZero();
    }

    @Test
    void aServiceUnavailableWithRetryAfterZeroIsNotResentBehindTheCallersBack() {
        FaultServer server = server().failAlways(FaultServer.Failure.serviceUnavailable("0"));
        CostLedger ledger = new CostLedger();
        InferenceClient client = load(Yaml.single(server.baseUrl()), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);

        Probe.Outcome<?> blocking = probe.chat(client, ask("hello"), LIMIT);
        int afterBlocking = server.chatPosts();
        Probe.Outcome<?> streamed = probe.stream(client, ask("hello"), LIMIT);
        int afterStream = server.chatPosts() - afterBlocking;

        assertThat(blocking.failure())
                .as("blocking call: " + blocking.describe())
                .isNotNull();
        assertThat(streamed.failure()).as("stream: " + streamed.describe()).isNotNull();
        assertThat(afterBlocking)
                .as("POSTs that reached the server for one blocking call, against the attempts in its receipt")
                .isEqualTo(attempts(blocking.failure()));
        assertThat(afterStream)
                .as("POSTs that reached the server for one stream, against the attempts in its receipt")
                .isEqualTo(attempts(streamed.failure()));
    }

    private static int attempts(InferenceException e) {
        Receipt r = e.partialReceipt().orElseThrow();
        return (int) r.attempts().stream()
                .filter(a -> a.outcome() != Attempt.Outcome.SKIPPED)
                .count();
    }
}
