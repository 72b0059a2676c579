package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.ProviderUnavailableException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The circuit breaker's rate rules: a failure rate or a rate of slow calls over a window of recent calls
 * opens the circuit where the failures-in-a-row rule never would; the trial call closes it or opens it
 * again; listeners hear each change with its reason.
 */
@Timeout(30)
class CircuitBreakerWindowTest {
    private static final RetryPolicy ONCE =
            new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO);

    private final AtomicLong now = new AtomicLong(5_000_000_000L);
    private final List<InferenceListener.CircuitChange> changes = new CopyOnWriteArrayList<>();

    private HybridClient client(RawMember member, CircuitBreakerConfig breaker) {
        return HybridClient.builder()
                .sleeper(d -> {})
                .random(() -> 0.5)
                .nanoTime(now::get)
                .retry(ONCE)
                .member(member.info().id(), member)
                .circuitBreaker(breaker)
                .listener(new InferenceListener() {
                    @Override
                    public void onCircuitChanged(CircuitChange change) {
                        changes.add(change);
                    }
                })
                .build();
    }

    private void advance(Duration d) {
        now.addAndGet(d.toNanos());
    }

    /** Every other call fails with a retryable error. */
    private static RawMember failingEveryOtherCall(String id) {
        RawMember m = new RawMember(id);
        AtomicInteger n = new AtomicInteger();
        m.behaviour = () -> {
            if (n.incrementAndGet() % 2 == 0) {
                throw new ProviderUnavailableException("overloaded", id, null, 503, null, null);
            }
            return "ok";
        };
        return m;
    }

    /** Makes {@code calls} calls, ignoring their failures; returns how many reached the member. */
    private static int call(HybridClient c, RawMember m, int calls) {
        int before = m.calls();
        for (int i = 0; i < calls; i++) {
            try {
                c.chat(ChatRequest.of("x"));
            } catch (InferenceException e) {
                // counted below
            }
        }
        return m.calls() - before;
    }

    @Test
    void anEndpointFailingHalfItsCallsNeverTripsTheFailuresInARowRule() {
        RawMember half = failingEveryOtherCall("half");
        try (HybridClient c =
                client(half, CircuitBreakerConfig.builder().failureThreshold(2).build())) {
            assertThat(call(c, half, 200)).isEqualTo(200);
            assertThat(c.members().get("half").circuitOpen()).isFalse();
            assertThat(changes).isEmpty();
        }
    }

    @Test
    void theSameEndpointTripsTheFailureRateRule() {
        RawMember half = failingEveryOtherCall("half");
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .failureThreshold(2)
                .failureRateThreshold(50)
                .windowCalls(10)
                .minimumCalls(10)
                .cooldown(Duration.ofSeconds(20))
                .build();
        try (HybridClient c = client(half, breaker)) {
            // Nine calls (four failures) are fewer than the minimum; the tenth makes five of ten.
            assertThat(call(c, half, 9)).isEqualTo(9);
            assertThat(c.members().get("half").circuitOpen()).isFalse();
            assertThat(call(c, half, 1)).isEqualTo(1);
            assertThat(c.members().get("half").circuitOpen()).isTrue();
            assertThat(call(c, half, 50)).as("an open circuit sends nothing").isZero();
            assertThat(changes).hasSize(1);
            InferenceListener.CircuitChange opened = changes.get(0);
            assertThat(opened.open()).isTrue();
            assertThat(opened.member()).isEqualTo("half");
            assertThat(opened.cooldown()).isEqualTo(Duration.ofSeconds(20));
            assertThat(opened.reason()).isEqualTo("failure rate 50% (5 of the last 10 calls) reached 50%");
        }
    }

    @Test
    void aRateBelowTheThresholdLeavesTheCircuitClosed() {
        RawMember half = failingEveryOtherCall("half");
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .failureRateThreshold(60)
                .windowCalls(10)
                .build();
        try (HybridClient c = client(half, breaker)) {
            assertThat(call(c, half, 100)).isEqualTo(100);
            assertThat(c.members().get("half").circuitOpen()).isFalse();
        }
    }

    @Test
    void errorsNoOtherAttemptCouldFixAreNotCounted() {
        RawMember m = new RawMember("m");
        m.behaviour = () -> {
            throw new InvalidRequestException("bad prompt", "m", null, 400, null, null);
        };
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .failureRateThreshold(10)
                .windowCalls(5)
                .build();
        try (HybridClient c = client(m, breaker)) {
            assertThat(call(c, m, 30)).isEqualTo(30);
            assertThat(c.members().get("m").circuitOpen()).isFalse();
        }
    }

    @Test
    void slowCallsTripTheSlowCallRule() {
        RawMember slow = new RawMember("slow");
        slow.extra = b -> b.totalTime(Duration.ofMillis(2_500));
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .slowCallRateThreshold(75, Duration.ofSeconds(2))
                .windowCalls(4)
                .build();
        try (HybridClient c = client(slow, breaker)) {
            assertThat(c.chat(ChatRequest.of("1")).text()).isEqualTo("from slow");
            slow.extra = b -> b.totalTime(Duration.ofMillis(100));
            call(c, slow, 1);
            slow.extra = b -> b.totalTime(Duration.ofSeconds(2));
            call(c, slow, 1);
            assertThat(c.members().get("slow").circuitOpen())
                    .as("2 of 3 slow, fewer calls than the window's minimum")
                    .isFalse();
            call(c, slow, 1);
            assertThat(c.members().get("slow").circuitOpen()).isTrue();
            assertThat(changes)
                    .singleElement()
                    .satisfies(ch -> assertThat(ch.reason())
                            .isEqualTo("slow calls 75% (3 of the last 4 calls took 2000 ms or more) reached 75%"));
            assertThatThrownBy(() -> c.chat(ChatRequest.of("skipped")))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .hasMessageContaining("all members' circuits are open: slow (half-opens in 30 s)");
        }
    }

    @Test
    void aSuccessfulTrialCallClosesTheCircuitWithAnEmptyWindow() {
        RawMember half = failingEveryOtherCall("half");
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .failureRateThreshold(50)
                .windowCalls(4)
                .cooldown(Duration.ofSeconds(10))
                .build();
        try (HybridClient c = client(half, breaker)) {
            call(c, half, 4);
            assertThat(c.members().get("half").circuitOpen()).isTrue();
            advance(Duration.ofSeconds(9));
            assertThat(call(c, half, 3)).isZero();
            advance(Duration.ofSeconds(1));
            half.behaviour = () -> "healed";
            assertThat(c.chat(ChatRequest.of("trial")).text()).isEqualTo("healed");
            assertThat(c.members().get("half").circuitOpen()).isFalse();
            // The four calls that opened it are forgotten: one failure now is one of one, under the minimum.
            half.behaviour = () -> {
                throw new ProviderUnavailableException("blip", "half", null, 503, null, null);
            };
            call(c, half, 1);
            assertThat(c.members().get("half").circuitOpen()).isFalse();
            assertThat(changes)
                    .extracting(InferenceListener.CircuitChange::open)
                    .containsExactly(true, false);
            assertThat(changes.get(1).reason()).isEqualTo("its trial call succeeded");
            assertThat(changes.get(1).cooldown()).isZero();
        }
    }

    @Test
    void aSlowTrialCallOpensTheCircuitAgain() {
        RawMember slow = new RawMember("slow");
        slow.extra = b -> b.totalTime(Duration.ofSeconds(3));
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .slowCallRateThreshold(100, Duration.ofSeconds(1))
                .windowCalls(2)
                .cooldown(Duration.ofSeconds(10))
                .build();
        try (HybridClient c = client(slow, breaker)) {
            call(c, slow, 2);
            assertThat(c.members().get("slow").circuitOpen()).isTrue();
            advance(Duration.ofSeconds(10));
            assertThat(c.chat(ChatRequest.of("trial")).text())
                    .as("the trial's answer is the caller's")
                    .isEqualTo("from slow");
            assertThat(c.members().get("slow").circuitOpen()).isTrue();
            assertThat(c.members().get("slow").halfOpensIn()).contains(Duration.ofSeconds(10));
            advance(Duration.ofSeconds(10));
            slow.extra = b -> b.totalTime(Duration.ofMillis(20));
            c.chat(ChatRequest.of("fast trial"));
            assertThat(c.members().get("slow").circuitOpen()).isFalse();
            assertThat(changes)
                    .extracting(InferenceListener.CircuitChange::open)
                    .containsExactly(true, true, false);
            assertThat(changes.get(1).reason()).isEqualTo("its trial call was slow (3000 ms, the limit 1000 ms)");
        }
    }

    @Test
    void aTimeWindowForgetsCallsOlderThanItsLength() {
        RawMember m = new RawMember("m");
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .failureRateThreshold(50)
                .windowDuration(Duration.ofSeconds(60))
                .minimumCalls(4)
                .build();
        try (HybridClient c = client(m, breaker)) {
            m.behaviour = () -> {
                throw new ProviderUnavailableException("down", "m", null, 503, null, null);
            };
            call(c, m, 3);
            advance(Duration.ofSeconds(61));
            // The three failures left the window: three successes and one failure are 25%.
            m.behaviour = () -> "ok";
            call(c, m, 3);
            m.behaviour = () -> {
                throw new ProviderUnavailableException("down", "m", null, 503, null, null);
            };
            call(c, m, 1);
            assertThat(c.members().get("m").circuitOpen()).isFalse();
            // One more failure within the minute: 2 of 5, then 3 of 6 reaches 50%.
            advance(Duration.ofSeconds(30));
            call(c, m, 1);
            assertThat(c.members().get("m").circuitOpen()).isFalse();
            call(c, m, 1);
            assertThat(c.members().get("m").circuitOpen()).isTrue();
            assertThat(changes.get(0).reason()).isEqualTo("failure rate 50% (3 of the last 6 calls) reached 50%");
        }
    }

    @Test
    void theFailuresInARowRuleStillOpensTheCircuitWithRatesOn() {
        RawMember m = new RawMember("m");
        m.behaviour = () -> {
            throw new ProviderUnavailableException("down", "m", null, 503, null, null);
        };
        CircuitBreakerConfig breaker = CircuitBreakerConfig.builder()
                .failureThreshold(3)
                .failureRateThreshold(90)
                .windowCalls(50)
                .minimumCalls(50)
                .build();
        try (HybridClient c = client(m, breaker)) {
            assertThat(call(c, m, 10)).isEqualTo(3);
            assertThat(changes).singleElement().satisfies(ch -> {
                assertThat(ch.reason()).isEqualTo("3 failure(s) in a row");
                assertThat(ch.consecutiveFailures()).isEqualTo(3);
            });
        }
    }

    @Test
    void theConfigurationReadsTheRateRules() {
        String yaml = "providers:\n  a: {type: echo}\nrouting:\n  circuitBreaker:\n"
                + "    failureThreshold: 7\n    cooldown: 15s\n    failureRateThreshold: 40\n"
                + "    slowCallRateThreshold: 80\n    slowCallDuration: 4s\n    windowDuration: 2m\n"
                + "    minimumCalls: 25\n";
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            CircuitBreakerConfig read = ((HybridClient) c).members().get("a").circuitBreaker();
            assertThat(read)
                    .isEqualTo(new CircuitBreakerConfig(
                            7, Duration.ofSeconds(15), 40, 80, Duration.ofSeconds(4), 0, Duration.ofMinutes(2), 25));
        }
        try (InferenceClient c = InferenceClients.loader()
                .env(Map.of())
                .load("providers:\n  a: {type: echo}\nrouting:\n  circuitBreaker: {failureRateThreshold: 50}\n")) {
            CircuitBreakerConfig read = ((HybridClient) c).members().get("a").circuitBreaker();
            assertThat(read.windowCalls()).as("the default window").isEqualTo(100);
            assertThat(read.minimumCalls()).isEqualTo(10);
            assertThat(read.failureThreshold()).isEqualTo(5);
        }
        try (InferenceClient c =
                InferenceClients.loader().env(Map.of()).load("providers:\n  a: {type: echo}\nrouting: {}\n")) {
            assertThat(((HybridClient) c).members().get("a").circuitBreaker())
                    .as("without the section, today's rule alone")
                    .isEqualTo(CircuitBreakerConfig.DEFAULTS);
        }
    }

    private static String error(String circuitBreaker) {
        String yaml = "providers:\n  a: {type: echo}\nrouting:\n  circuitBreaker: " + circuitBreaker + "\n";
        try (InferenceClient c = InferenceClients.loader().env(Map.of()).load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void badRateRulesNameTheKeyAndWhatIsExpected() {
        assertThat(error("{failureRateThreshold: 0}"))
                .startsWith("routing.circuitBreaker.failureRateThreshold: expected a whole number of at least 1");
        assertThat(error("{failureRateThreshold: 101}"))
                .startsWith("routing.circuitBreaker.failureRateThreshold: expected a whole number of at most 100");
        assertThat(error("{slowCallRateThreshold: 50}"))
                .startsWith("routing.circuitBreaker.slowCallDuration: is required");
        assertThat(error("{slowCallDuration: 5s}"))
                .startsWith("routing.circuitBreaker.slowCallDuration: applies only with slowCallRateThreshold");
        assertThat(error("{windowCalls: 20}"))
                .startsWith("routing.circuitBreaker.windowCalls: applies only with failureRateThreshold or"
                        + " slowCallRateThreshold");
        assertThat(error("{failureRateThreshold: 50, windowCalls: 20, windowDuration: 1m}"))
                .startsWith("routing.circuitBreaker.windowDuration: set the window once");
        assertThat(error("{failureRateThreshold: 50, windowCalls: 20, minimumCalls: 21}"))
                .isEqualTo("routing.circuitBreaker.minimumCalls: expected at most windowCalls (20), as the window never"
                        + " holds more, got 21");
        assertThat(error("{failureRateThreshold: 50, windowDuration: 100ms}"))
                .startsWith("routing.circuitBreaker.windowDuration: expected a duration from 1s to 24h");
        assertThat(error("{failureRateThreshold: 50, windowCalls: 100000}"))
                .startsWith("routing.circuitBreaker.windowCalls: expected a whole number of at most 10000");
        assertThat(error("{failureRate: 50}")).startsWith("routing.circuitBreaker.failureRate: unknown key");
    }

    @Test
    void theBuilderRefusesContradictions() {
        assertThatThrownBy(() -> CircuitBreakerConfig.builder().failureRateThreshold(101))
                .hasMessage("failureRateThreshold must be a percentage from 1 to 100 (0 for off), got 101");
        assertThatThrownBy(() -> CircuitBreakerConfig.builder().slowCallRateThreshold(50, Duration.ZERO))
                .hasMessageStartingWith("slowCallDuration must be positive");
        assertThatThrownBy(() -> CircuitBreakerConfig.builder().windowCalls(10).minimumCalls(11))
                .hasMessageStartingWith("minimumCalls (11) must not exceed windowCalls (10)");
        assertThatThrownBy(() -> CircuitBreakerConfig.builder().failureThreshold(0))
                .hasMessage("failureThreshold must be at least 1, got 0");
        assertThat(CircuitBreakerConfig.builder()
                        .windowDuration(Duration.ofMinutes(1))
                        .build()
                        .windowCalls())
                .isZero();
    }
}
