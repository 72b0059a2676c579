package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Times too large for a long of nanoseconds, and members or policies that throw what they should not: every
 * way of calling ends with an answer or an {@link InferenceException} that carries the partial receipt,
 * never an {@link ArithmeticException} or a lost callback. No test sleeps for backoff.
 */
@Timeout(30)
class OverflowAndUnexpectedFailureTest {
    private static final Duration ENDLESS = Duration.ofSeconds(Long.MAX_VALUE);

    private final CostLedger ledger = new CostLedger();
    private final List<Duration> sleeps = new CopyOnWriteArrayList<>();
    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    private HybridClient.Builder builder() {
        return HybridClient.builder().sleeper(sleeps::add).random(() -> 0.5).nanoTime(now::get);
    }

    private static ChatRequest withOptions(RequestOptions options) {
        return ChatRequest.builder().user("hi").options(options).build();
    }

    private static RateLimitedException rateLimited(String id, Duration retryAfter) {
        return new RateLimitedException("slow down", id, null, 429, retryAfter, null);
    }

    private static Receipt partial(Throwable e) {
        assertThat(e).isInstanceOf(InferenceException.class);
        return ((InferenceException) e).partialReceipt().orElseThrow();
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aRetryAfterOfBillionsOfSecondsIsWaitedOnlyUpToItsCap(CallModes mode) throws Throwable {
        ScriptedMember a =
                ScriptedMember.perToken("a", ledger).thenFail(rateLimited("a", Duration.ofSeconds(99_999_999_999L)));
        try (HybridClient c = builder().member("a", a).build()) {
            assertThat(mode.call(c, ChatRequest.of("hi"))).isEqualTo("from a");
            assertThat(sleeps).containsExactly(RetryPolicy.DEFAULTS.maxRetryAfter());
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aRetryAfterDatedInTheYear9999NeverWaitsPastTheDeadline(CallModes mode) {
        Duration untilYear9999 = Duration.between(Instant.now(), Instant.parse("9999-12-31T23:59:59Z"));
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(rateLimited("a", untilYear9999));
        RetryPolicy unbounded = new RetryPolicy(4, ENDLESS, ENDLESS, 2, 0.2, ENDLESS, ENDLESS);
        try (HybridClient c = builder().member("a", a).retry(unbounded).build()) {
            ChatRequest oneMinute = withOptions(
                    RequestOptions.builder().timeout(Duration.ofMinutes(1)).build());
            assertThatThrownBy(() -> mode.call(c, oneMinute))
                    .isInstanceOf(RateLimitedException.class)
                    .satisfies(e -> assertThat(partial(e).route()).contains("would pass the deadline"));
            assertThat(sleeps).isEmpty();
            assertThat(a.calls()).isEqualTo(1);
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aHugeMaxBackoffIsCappedByTheTotalWait(CallModes mode) {
        ScriptedMember a = ScriptedMember.perToken("a", ledger);
        for (int i = 0; i < 40; i++) {
            a.thenFail(new ProviderUnavailableException("down", "a", null, 503, null, null));
        }
        // Growth by 10 per round passes any long of nanoseconds after a few rounds.
        RetryPolicy retry =
                new RetryPolicy(40, Duration.ofSeconds(1), ENDLESS, 10, 0, Duration.ofSeconds(10), Duration.ofHours(1));
        try (HybridClient c = builder()
                .member("a", a)
                .retry(retry)
                .circuitBreaker(1000, Duration.ofSeconds(1))
                .build()) {
            assertThatThrownBy(() -> mode.call(c, ChatRequest.of("hi")))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .satisfies(e -> assertThat(partial(e).route())
                            .contains("gave up: waiting again would pass maxTotalWait 3600000 ms"));
            assertThat(sleeps)
                    .containsExactly(
                            Duration.ofSeconds(1),
                            Duration.ofSeconds(10),
                            Duration.ofSeconds(100),
                            Duration.ofSeconds(1000));
        }
    }

    @Test
    void backoffSaturatesInsteadOfOverflowing() {
        RetryPolicy huge = new RetryPolicy(100, ENDLESS, ENDLESS, 1e300, 0, ENDLESS, ENDLESS);
        assertThat(huge.backoff(1, null, 0.5)).isEqualTo(Duration.ofNanos(Long.MAX_VALUE));
        assertThat(huge.backoff(99, ENDLESS, 0.99)).isEqualTo(Duration.ofNanos(Long.MAX_VALUE));
        RetryPolicy jittered = new RetryPolicy(100, ENDLESS, ENDLESS, 1e300, 1, Duration.ofSeconds(10), ENDLESS);
        assertThat(jittered.backoff(3, Duration.ofSeconds(99_999_999_999L), 0.5))
                .isGreaterThan(Duration.ofDays(365L * 100));
        RetryPolicy zeroStart = new RetryPolicy(100, Duration.ZERO, ENDLESS, 1e300, 0, ENDLESS, ENDLESS);
        assertThat(zeroStart.backoff(50, null, 0.5)).isEqualTo(Duration.ZERO);
        assertThat(RetryPolicy.DEFAULTS.backoff(1, Duration.ofSeconds(-5), 0)).isEqualTo(Duration.ofMillis(80));
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void deadlinesAtInstantMaxOrCenturiesAwayCountAsNone(CallModes mode) throws Throwable {
        ScriptedMember a = ScriptedMember.perToken("a", ledger)
                .thenFail(rateLimited("a", Duration.ofSeconds(3)))
                .thenFail(rateLimited("a", Duration.ofSeconds(3)));
        try (HybridClient c = builder().member("a", a).build()) {
            assertThat(mode.call(
                            c,
                            withOptions(RequestOptions.builder()
                                    .deadline(Instant.MAX)
                                    .build())))
                    .isEqualTo("from a");
            Instant in300Years = Instant.now().plus(Duration.ofDays(365L * 300));
            assertThat(mode.call(
                            c,
                            withOptions(RequestOptions.builder()
                                    .deadline(in300Years)
                                    .timeout(Duration.ofDays(365L * 300))
                                    .build())))
                    .isEqualTo("from a");
            assertThat(sleeps).containsExactly(Duration.ofSeconds(3), Duration.ofSeconds(3));
            assertThat(a.calls()).isEqualTo(4);
        }
    }

    @Test
    void theRoutingPolicyCopesWithCenturiesToo() {
        ScriptedMember cold = ScriptedMember.perToken("cold", ledger);
        ScriptedMember warm = ScriptedMember.perToken("warm", ledger);
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("cold", "warm"))
                .budget(new Budget("forever", ENDLESS, new BigDecimal("100"), Map.of(), null))
                .costAware(true)
                .build();
        try (HybridClient c = builder()
                .member(
                        "cold",
                        cold,
                        MemberOptions.builder()
                                .idleTimeout(Duration.ofMinutes(5))
                                .coldStartLatency(Duration.ofDays(366)) // the most MemberOptions accepts
                                .build())
                .member("warm", warm)
                .policy(policy)
                .circuitBreaker(1, ENDLESS)
                .build()) {
            ChatRequest fast = withOptions(RequestOptions.builder()
                    .deadline(Instant.MAX)
                    .latencyObjective(Duration.ofSeconds(2))
                    .build());
            var r = c.chat(fast);
            assertThat(r.text()).isEqualTo("from warm");
            assertThat(r.receipt().route())
                    .contains("skipped cold cold (expected "
                            + Duration.ofDays(366).toMillis() + " ms");
            assertThatThrownBy(() -> MemberOptions.builder().coldStartLatency(ENDLESS))
                    .isInstanceOf(IllegalArgumentException.class);
            // A cooldown of 292 billion years: the circuit opens and stays open, without overflowing.
            warm.thenFail(new ProviderUnavailableException("down", "warm", null, 503, null, null));
            assertThat(c.chat(fast).text()).isEqualTo("from cold");
            now.addAndGet(Duration.ofDays(365L * 100).toNanos());
            assertThat(c.members().get("warm").circuitOpen()).isTrue();
            assertThat(c.members().get("warm").halfOpensIn()).isEmpty();
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aMemberThrowingSomethingElseFailsTheCallWithAnInferenceException(CallModes mode) {
        RawMember raw = new RawMember("raw");
        raw.behaviour = () -> {
            throw new IllegalStateException("member bug");
        };
        ScriptedMember backup = ScriptedMember.perToken("backup", ledger);
        try (HybridClient c =
                builder().member("raw", raw).member("backup", backup).build()) {
            assertThatThrownBy(() -> mode.call(c, ChatRequest.of("hi")))
                    .isExactlyInstanceOf(InferenceException.class)
                    .hasMessageContaining("unexpected IllegalStateException from member raw: member bug")
                    .hasRootCauseInstanceOf(IllegalStateException.class)
                    .satisfies(e -> assertThat(partial(e).attempts())
                            .extracting(Attempt::providerId, Attempt::outcome)
                            .containsExactly(org.assertj.core.groups.Tuple.tuple("raw", Attempt.Outcome.FAILED)));
            // Nothing is known about whether another member would do better: the call does not fall back.
            assertThat(backup.calls()).isZero();
            assertThat(c.members().get("raw").inFlight()).isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aPolicyThatThrowsFailsTheCallWithAnInferenceException(CallModes mode) {
        ScriptedMember a = ScriptedMember.perToken("a", ledger);
        RoutingPolicy broken = (request, members) -> {
            throw new IllegalArgumentException("policy bug");
        };
        try (HybridClient c = builder().member("a", a).policy(broken).build()) {
            assertThatThrownBy(() -> mode.call(c, ChatRequest.of("hi")))
                    .isExactlyInstanceOf(InferenceException.class)
                    .hasMessageContaining("unexpected IllegalArgumentException from the routing policy: policy bug")
                    .hasCauseInstanceOf(IllegalArgumentException.class)
                    .satisfies(e -> assertThat(partial(e).attempts()).isEmpty());
            assertThat(a.calls()).isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aPolicyWhoseReceiptHookThrowsDoesNotFailTheCall(CallModes mode) throws Throwable {
        ScriptedMember a = ScriptedMember.perToken("a", ledger);
        RoutingPolicy policy = new RoutingPolicy() {
            @Override
            public Route route(ChatRequest request, Map<String, MemberState> members) {
                return new Route(List.of("a"), "only a", null);
            }

            @Override
            public void recorded(ChatRequest request, Receipt receipt) {
                throw new IllegalStateException("accounting bug");
            }
        };
        try (HybridClient c = builder().member("a", a).policy(policy).build()) {
            assertThat(mode.call(c, ChatRequest.of("hi"))).isEqualTo("from a");
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = CallModes.class,
            names = {"ASYNC", "PUSH"})
    void anErrorFromAMemberStillEndsAnAsynchronousCall(CallModes mode) {
        RawMember raw = new RawMember("raw");
        raw.behaviour = () -> {
            throw new AssertionError("member is broken");
        };
        try (HybridClient c = builder().member("raw", raw).build()) {
            assertThatThrownBy(() -> mode.call(c, ChatRequest.of("hi")))
                    .isInstanceOf(InferenceException.class)
                    .hasMessageContaining("unexpected AssertionError")
                    .hasRootCauseInstanceOf(AssertionError.class);
            assertThat(c.members().get("raw").inFlight()).isZero();
        }
    }
}
