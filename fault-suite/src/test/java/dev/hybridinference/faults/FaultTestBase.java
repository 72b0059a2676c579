package dev.hybridinference.faults;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * What every fault test shares: its report row, a {@link Probe}, fault servers and clients that are
 * closed after the test, and the final check that the test saw no hang, untyped exception, lost receipt
 * or leaked secret.
 */
@ExtendWith(FaultWatcher.class)
@Timeout(90)
abstract class FaultTestBase {
    /** The API key every configuration uses: distinctive, so any copy of it is easy to find. */
    static final String API_KEY = "sk-hi-fault-7c1e9d2a55";

    /** The environment configurations are loaded with. */
    static final Map<String, String> ENV = Map.of("KEY", API_KEY);

    /** How long an ordinary call may take before it counts as a hang. */
    static final Duration LIMIT = Duration.ofSeconds(10);

    protected Probe probe;
    private final Deque<AutoCloseable> resources = new ArrayDeque<>();

    @BeforeEach
    void openProbe() {
        probe = new Probe(FaultWatcher.rowOf(getClass()), List.of(API_KEY, "7c1e9d2a55"));
    }

    /** A fault server closed after the test. */
    protected FaultServer server() {
        return using(FaultServer.start());
    }

    /** Closes {@code resource} after the test (in reverse order of registration). */
    protected <T extends AutoCloseable> T using(T resource) {
        resources.push(resource);
        return resource;
    }

    /** Loads a configuration as a user would, with the test environment and {@code ledger}. */
    protected InferenceClient load(String yaml, CostLedger ledger) {
        return using(InferenceClients.loader().env(ENV).ledger(ledger).load(yaml));
    }

    /** A one-message request with a timeout. */
    static ChatRequest ask(String text, Duration timeout) {
        return ChatRequest.builder()
                .user(text)
                .options(RequestOptions.builder().timeout(timeout).build())
                .build();
    }

    /** A one-message request with a 10 s timeout. */
    static ChatRequest ask(String text) {
        return ask(text, LIMIT);
    }

    @AfterEach
    void finish() throws Exception {
        try {
            probe.reconcile();
        } finally {
            Exception first = null;
            while (!resources.isEmpty()) {
                try {
                    resources.pop().close();
                } catch (Exception e) {
                    if (first == null) {
                        first = e;
                    }
                }
            }
            probe.close();
            if (first != null) {
                probe.thrown("close", first);
            }
        }
        probe.assertClean();
    }
}
