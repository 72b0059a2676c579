package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.cost.CostLedger;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The circuit breaker's trial call ends whatever its outcome, and an all-open route says when to come back. */
@Timeout(30)
class CircuitBreakerTest {
    private final CostLedger ledger = new CostLedger();
    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    private HybridClient.Builder builder() {
        return HybridClient.builder().sleeper(d -> {}).random(() -> 0.5).nanoTime(now::get);
    }

    private static InferenceException unavailable(String id) {
        return new ProviderUnavailableException("down", id, null, 503, null, null);
    }

    private void advance(Duration d) {
        now.addAndGet(d.toNanos());
    }

    /** Fails {@code raw} twice with a retryable error, which opens its circuit under a threshold of 2. */
    private static void openCircuit(HybridClient c, RawMember raw) {
        raw.behaviour = () -> {
            throw unavailable(raw.info().id());
        };
        for (int i = 0; i < 2; i++) {
            assertThatThrownBy(() -> c.chat(ChatRequest.of("x"))).isInstanceOf(InferenceException.class);
        }
        assertThat(c.members().get(raw.info().id()).circuitOpen()).isTrue();
    }

    @Test
    void aTrialCallThatThrowsSomethingUnexpectedStillEndsTheTrial() {
        RawMember flaky = new RawMember("flaky");
        try (HybridClient c = builder()
                .member("flaky", flaky)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .retry(new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO))
                .build()) {
            openCircuit(c, flaky);
            advance(Duration.ofSeconds(31));
            flaky.behaviour = () -> {
                throw new IllegalStateException("half-broken");
            };
            assertThatThrownBy(() -> c.chat(ChatRequest.of("trial")))
                    .isExactlyInstanceOf(InferenceException.class)
                    .hasCauseInstanceOf(IllegalStateException.class);
            int before = flaky.calls();
            flaky.behaviour = () -> "healed";
            int reached = 0;
            for (int i = 0; i < 100; i++) {
                if (c.chat(ChatRequest.of("after")).text().equals("healed")) {
                    reached++;
                }
            }
            assertThat(reached).isEqualTo(100);
            assertThat(flaky.calls() - before).isEqualTo(100);
            assertThat(c.members().get("flaky").circuitOpen()).isFalse();
        }
    }

    @Test
    void aTrialCallThatThrowsAnErrorStillEndsTheTrial() {
        RawMember flaky = new RawMember("flaky");
        try (HybridClient c = builder()
                .member("flaky", flaky)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .retry(new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO))
                .build()) {
            openCircuit(c, flaky);
            advance(Duration.ofSeconds(31));
            flaky.behaviour = () -> {
                throw new AssertionError("very broken");
            };
            assertThatThrownBy(() -> c.chat(ChatRequest.of("trial"))).isInstanceOf(AssertionError.class);
            flaky.behaviour = () -> "healed";
            assertThat(c.chat(ChatRequest.of("next trial")).text()).isEqualTo("healed");
            assertThat(c.members().get("flaky").circuitOpen()).isFalse();
            assertThat(c.members().get("flaky").inFlight()).isZero();
        }
    }

    @Test
    void aTrialStreamClosedBeforeItsEndLetsTheNextCallTry() {
        ScriptedMember flaky = ScriptedMember.perToken("flaky", ledger)
                .thenFail(unavailable("flaky"))
                .thenFail(unavailable("flaky"))
                .then(() -> "a long answer that is never read to its end");
        ScriptedMember backup = ScriptedMember.perToken("backup", ledger);
        try (HybridClient c = builder()
                .member("flaky", flaky)
                .member("backup", backup)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .build()) {
            c.chat(ChatRequest.of("1"));
            c.chat(ChatRequest.of("2"));
            assertThat(c.members().get("flaky").circuitOpen()).isTrue();
            advance(Duration.ofSeconds(31));
            try (ChatStream s = c.stream(ChatRequest.of("trial"))) {
                assertThat(s.next().text()).isEqualTo("a");
            }
            assertThat(c.chat(ChatRequest.of("next trial")).text()).isEqualTo("from flaky");
            assertThat(c.members().get("flaky").circuitOpen()).isFalse();
        }
    }

    @Test
    void whenEveryCircuitIsOpenTheErrorSaysWhenTheFirstHalfOpens() {
        RawMember a = new RawMember("a");
        RawMember b = new RawMember("b");
        try (HybridClient c = builder()
                .member("a", a)
                .member("b", b)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .retry(new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO))
                .build()) {
            openCircuit(c, a);
            advance(Duration.ofSeconds(12));
            openCircuit(c, b);
            advance(Duration.ofMillis(500));
            // a half-opens in 17.5 s, b in 29.5 s.
            assertThatThrownBy(() -> c.chat(ChatRequest.of("x")))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .hasMessageContaining(
                            "all members' circuits are open: a (half-opens in 18 s), b (half-opens in 30 s)")
                    .satisfies(e -> {
                        InferenceException ie = (InferenceException) e;
                        assertThat(ie.isRetryable()).isTrue();
                        assertThat(ie.retryAfter()).contains(Duration.ofMillis(17_500));
                        assertThat(ie.partialReceipt().orElseThrow().attempts()).hasSize(2);
                    });
            assertThat(a.calls() + b.calls()).isEqualTo(4);
        }
    }
}
