package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.InferenceListener.AttemptEnd;
import dev.hybridinference.core.InferenceListener.AttemptStart;
import dev.hybridinference.core.InferenceListener.Call;
import dev.hybridinference.core.InferenceListener.CircuitChange;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RecordingListener;
import dev.hybridinference.core.RecordingListener.Spillover;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.VirtualTime;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * What a composite client tells its listeners ({@link InferenceListener}): the events of a call in order,
 * for every way of calling, with one {@link Call} throughout whose id the call's receipt carries; fallbacks,
 * failures, spillovers, budget refusals and circuit changes; and nothing at all, receipt ids aside, without
 * listeners. Time is a counter the tests move; no test sleeps.
 */
@Timeout(30)
class HybridClientListenerTest {
    private static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");
    private static final String ID = "r-[0-9a-f]{26}";
    private static final RetryPolicy TWO_ATTEMPTS =
            new RetryPolicy(2, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO);
    private static final RetryPolicy ONE_ATTEMPT =
            new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO);

    private final CostLedger ledger = new CostLedger();
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private final RecordingListener heard = new RecordingListener();

    /** A client on the test's clocks, without listeners. */
    private HybridClient.Builder quiet() {
        return HybridClient.builder()
                .id("listened")
                .sleeper(d -> {})
                .random(() -> 0.5)
                .nanoTime(now::get)
                .clock(Clock.fixed(T0, ZoneOffset.UTC));
    }

    /** A client on the test's clocks that tells {@link #heard}. */
    private HybridClient.Builder builder() {
        return quiet().listener(heard);
    }

    private static ProviderUnavailableException unavailable(String id) {
        return new ProviderUnavailableException("down", id, null, 503, null, null);
    }

    private static boolean streamed(CallModes mode) {
        return mode == CallModes.PULL || mode == CallModes.PUSH;
    }

    /** The names a successful call's events have in this mode: {@code firstToken} only for streams. */
    private static List<String> answered(CallModes mode, String... attempts) {
        List<String> out = new java.util.ArrayList<>();
        out.add("callStarted");
        out.addAll(List.of(attempts));
        if (streamed(mode)) {
            out.add("firstToken");
        }
        out.add("completed");
        return out;
    }

    /** The one call every event of {@link #heard} so far belongs to. */
    private Call theCall() {
        Call call = heard.events().get(0).call();
        assertThat(call).isNotNull();
        assertThat(heard.events())
                .as("every event of the call carries the same Call")
                .allSatisfy(e -> assertThat(e.call()).isSameAs(call));
        return call;
    }

    // ---- one call, every way of calling ---------------------------------------------------------

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aCallTellsItsStartItsAttemptAndItsEndInOrderWithOneCallThroughout(CallModes mode) throws Throwable {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).then(() -> {
            now.addAndGet(Duration.ofMillis(7).toNanos()); // the member takes 7 ms to its first word
            return "hello world";
        });
        AtomicReference<Object> markAtTheEnd = new AtomicReference<>();
        InferenceListener marker = new InferenceListener() {
            @Override
            public void onCallStarted(Call call) {
                call.attributes().put("mark", "set at the start");
            }

            @Override
            public void onCompleted(Call call, Receipt receipt) {
                markAtTheEnd.set(call.attributes().get("mark"));
            }
        };
        ChatRequest request = ChatRequest.of("hi");
        try (HybridClient c = builder()
                .member(
                        "a",
                        a,
                        MemberOptions.builder()
                                .idleTimeout(Duration.ofMinutes(5))
                                .build())
                .member("b", ScriptedMember.perToken("b", ledger))
                .listener(marker)
                .build()) {
            assertThat(c.listeners()).containsExactly(heard, marker);
            assertThat(mode.call(c, request)).isEqualTo("hello world");

            assertThat(heard.names()).containsExactlyElementsOf(answered(mode, "attemptStarted", "attemptEnded"));
            Call call = theCall();
            assertThat(call.id()).matches(ID);
            assertThat(call.clientId()).isEqualTo("listened");
            assertThat(call.request()).isSameAs(request);
            assertThat(call.startedAt()).isEqualTo(T0);
            assertThat(call.streamed()).isEqualTo(streamed(mode));
            assertThat(call.toString()).contains(call.id()).contains("listened");

            AttemptStart start = heard.only("attemptStarted", AttemptStart.class);
            assertThat(start.member()).isEqualTo("a");
            assertThat(start.number()).isEqualTo(1);
            assertThat(start.model()).as("the request names no model").isEmpty();
            assertThat(start.predictedCold())
                    .as("never called, with an idle timeout")
                    .isTrue();

            AttemptEnd end = heard.only("attemptEnded", AttemptEnd.class);
            assertThat(end.member()).isEqualTo("a");
            assertThat(end.number()).isEqualTo(1);
            assertThat(end.succeeded()).isTrue();
            assertThat(end.error()).isNull();
            assertThat(end.duration()).isEqualTo(Duration.ofMillis(7));
            if (streamed(mode)) {
                // A stream's attempt ends when it opens with its first chunk, before any receipt exists.
                assertThat(end.receipt()).isNull();
                assertThat(heard.only("firstToken", Duration.class)).isEqualTo(Duration.ofMillis(7));
            } else {
                assertThat(end.receipt().providerId()).isEqualTo("a");
                assertThat(end.receipt().id())
                        .as("the member's receipt is a record of its own")
                        .matches(ID)
                        .isNotEqualTo(call.id());
            }

            Receipt whole = heard.only("completed", Receipt.class);
            assertThat(whole.id()).isEqualTo(call.id());
            assertThat(whole.providerId()).isEqualTo("a");
            assertThat(whole.attempts()).extracting(Attempt::outcome).containsExactly(Attempt.Outcome.SUCCEEDED);
            if (streamed(mode)) {
                assertThat(whole.timeToFirstToken()).contains(Duration.ofMillis(7));
            }
            assertThat(markAtTheEnd).as("attributes last the call").hasValue("set at the start");

            // The next call is another Call, and the member is warm now.
            heard.clear();
            assertThat(mode.call(c, request)).isEqualTo("from a");
            Call next = theCall();
            assertThat(next.id()).matches(ID).isNotEqualTo(call.id());
            assertThat(next.attributes()).isNotSameAs(call.attributes());
            assertThat(heard.only("attemptStarted", AttemptStart.class).predictedCold())
                    .isFalse();
            assertThat(heard.only("completed", Receipt.class).id()).isEqualTo(next.id());
        }
    }

    @Test
    void theReceiptListenersGetIsTheOneTheCallerGets() {
        try (HybridClient c =
                builder().member("a", ScriptedMember.perToken("a", ledger)).build()) {
            ChatResponse r = c.chat(ChatRequest.of("hi"));
            assertThat(heard.only("completed", Receipt.class)).isSameAs(r.receipt());
            heard.clear();
            try (ChatStream s = c.stream(ChatRequest.of("hi"))) {
                s.forEachRemaining(chunk -> {});
                assertThat(heard.only("completed", Receipt.class))
                        .isSameAs(s.response().receipt());
                assertThat(s.response().receipt().id()).isEqualTo(theCall().id());
            }
        }
    }

    @Test
    void theModelAnAttemptNamesIsTheOneTheMemberIsAskedFor() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).models("llama-3-8b-instruct");
        try (HybridClient c = builder()
                .member(
                        "a",
                        a,
                        MemberOptions.builder()
                                .modelAlias("small", "llama-3-8b-instruct")
                                .build())
                .build()) {
            c.chat(ChatRequest.builder().model("small").user("hi").build());
            assertThat(heard.only("attemptStarted", AttemptStart.class).model()).isEqualTo("llama-3-8b-instruct");
        }
    }

    // ---- fallback and failure -------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aFailedAttemptIsToldWithItsErrorAndTheNextMemberIsAttemptTwo(CallModes mode) throws Throwable {
        ProviderUnavailableException down = unavailable("a");
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(down);
        ScriptedMember b = ScriptedMember.perToken("b", ledger);
        try (HybridClient c = builder().member("a", a).member("b", b).build()) {
            assertThat(mode.call(c, ChatRequest.of("hi"))).isEqualTo("from b");

            assertThat(heard.names())
                    .containsExactlyElementsOf(
                            answered(mode, "attemptStarted", "attemptEnded", "attemptStarted", "attemptEnded"));
            Call call = theCall();
            List<AttemptStart> starts = heard.details("attemptStarted", AttemptStart.class);
            assertThat(starts).extracting(AttemptStart::member).containsExactly("a", "b");
            assertThat(starts).extracting(AttemptStart::number).containsExactly(1, 2);
            List<AttemptEnd> ends = heard.details("attemptEnded", AttemptEnd.class);
            assertThat(ends).extracting(AttemptEnd::member).containsExactly("a", "b");
            assertThat(ends).extracting(AttemptEnd::number).containsExactly(1, 2);
            assertThat(ends).extracting(AttemptEnd::succeeded).containsExactly(false, true);

            AttemptEnd failed = ends.get(0);
            assertThat(failed.error()).isSameAs(down);
            // The member's partial receipt, as it was when the attempt ended: a's part alone.
            assertThat(failed.receipt()).isNotNull();
            assertThat(failed.receipt().providerId()).isEqualTo("a");
            assertThat(failed.receipt().id()).isNotEqualTo(call.id());
            assertThat(failed.receipt().attempts())
                    .extracting(Attempt::providerId, Attempt::outcome)
                    .containsExactly(org.assertj.core.groups.Tuple.tuple("a", Attempt.Outcome.FAILED));

            Receipt whole = heard.only("completed", Receipt.class);
            assertThat(whole.id()).isEqualTo(call.id());
            assertThat(whole.providerId()).isEqualTo("b");
            assertThat(whole.attempts())
                    .extracting(Attempt::outcome)
                    .containsExactly(Attempt.Outcome.FAILED, Attempt.Outcome.SUCCEEDED);
            assertThat(heard.names()).doesNotContain("failed");
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aCallWhereEveryMemberFailsIsToldFailedOnceWithTheCallsReceipt(CallModes mode) {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(unavailable("a"));
        ScriptedMember b = ScriptedMember.perToken("b", ledger).thenFail(unavailable("b"));
        try (HybridClient c =
                builder().member("a", a).member("b", b).retry(TWO_ATTEMPTS).build()) {
            Throwable thrown = catchThrowable(() -> mode.call(c, ChatRequest.of("hi")));

            assertThat(heard.names())
                    .containsExactly(
                            "callStarted",
                            "attemptStarted",
                            "attemptEnded",
                            "attemptStarted",
                            "attemptEnded",
                            "failed");
            Call call = theCall();
            InferenceException error = heard.only("failed", InferenceException.class);
            assertThat(error).isSameAs(thrown);
            Receipt partial = error.partialReceipt().orElseThrow();
            assertThat(partial.id()).isEqualTo(call.id());
            assertThat(partial.attempts()).extracting(Attempt::providerId).containsExactly("a", "b");
            assertThat(heard.details("attemptEnded", AttemptEnd.class))
                    .allSatisfy(e -> assertThat(e.succeeded()).isFalse());
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = CallModes.class,
            names = {"PULL", "PUSH"})
    void aStreamThatBreaksAfterItsFirstChunkIsToldFailedOnceAndNeverCompleted(CallModes mode) {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).then(() -> "hello !fail later");
        try (HybridClient c = builder().member("a", a).build()) {
            Throwable thrown = catchThrowable(() -> mode.call(c, ChatRequest.of("hi")));

            assertThat(heard.names())
                    .containsExactly("callStarted", "attemptStarted", "attemptEnded", "firstToken", "failed");
            InferenceException error = heard.only("failed", InferenceException.class);
            assertThat(error).isSameAs(thrown).isInstanceOf(ProviderUnavailableException.class);
            assertThat(error.partialReceipt().orElseThrow().id())
                    .isEqualTo(theCall().id());
        }
    }

    @Test
    void aStreamClosedBeforeItsEndIsToldFailedOnceAsCancelled() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).then(() -> "one two three");
        try (HybridClient c = builder().member("a", a).build()) {
            ChatStream s = c.stream(ChatRequest.of("hi"));
            assertThat(s.next().text()).isEqualTo("one");
            s.close();
            s.close();

            assertThat(heard.names())
                    .containsExactly("callStarted", "attemptStarted", "attemptEnded", "firstToken", "failed");
            InferenceException error = heard.only("failed", InferenceException.class);
            assertThat(error).isInstanceOf(CancelledException.class);
            assertThat(error.partialReceipt().orElseThrow().id())
                    .isEqualTo(theCall().id());
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aMemberThatThrowsAnErrorStillEndsItsAttemptAndTheCallForListeners(CallModes mode) {
        RawMember raw = new RawMember("raw");
        raw.behaviour = () -> {
            throw new AssertionError("member is broken");
        };
        try (HybridClient c = builder().member("raw", raw).build()) {
            Throwable thrown = catchThrowable(() -> mode.call(c, ChatRequest.of("hi")));
            // The caller gets the Error itself, or (asynchronously) an InferenceException around it.
            Throwable root = thrown;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            assertThat(root).isInstanceOf(AssertionError.class).hasMessage("member is broken");

            assertThat(heard.names()).containsExactly("callStarted", "attemptStarted", "attemptEnded", "failed");
            AttemptEnd end = heard.only("attemptEnded", AttemptEnd.class);
            assertThat(end.succeeded()).isFalse();
            assertThat(end.error()).hasRootCauseInstanceOf(AssertionError.class);
            InferenceException failure = heard.only("failed", InferenceException.class);
            assertThat(failure).hasRootCauseInstanceOf(AssertionError.class);
            assertThat(failure.partialReceipt().orElseThrow().id())
                    .isEqualTo(theCall().id());
            assertThat(c.members().get("raw").inFlight()).isZero();
        }
    }

    // ---- spillover ------------------------------------------------------------------------------

    /** A client on virtual time whose primary takes one call at a time, with {@code burst} as its overflow. */
    private HybridClient spillover(
            VirtualTime time, VirtualMember primary, VirtualMember burst, Duration waitForSlot, RetryPolicy retry) {
        return HybridClient.builder()
                .id("spilling")
                .timeSource(time)
                .sleeper(d -> {})
                .retry(retry)
                .listener(heard)
                .member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxInFlight(1).build())
                .member("burst", burst)
                .policy(StandardRoutingPolicy.builder()
                        .tier("t", List.of("primary"))
                        .spillover("primary", List.of("burst"), waitForSlot)
                        .build())
                .build();
    }

    @Test
    void aFullPrimaryWithoutAWaitSpillsAtOnceAndTheOverflowAnswers() {
        VirtualTime time = new VirtualTime();
        VirtualMember primary = VirtualMember.perToken("primary", null, time).latency(Duration.ofSeconds(1));
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = spillover(time, primary, burst, Duration.ZERO, RetryPolicy.DEFAULTS)) {
            CompletableFuture<ChatResponse> holding = c.chatAsync(ChatRequest.of("1"));
            heard.clear();

            ChatResponse r = c.chat(ChatRequest.of("2"));
            assertThat(r.text()).isEqualTo("from burst");
            assertThat(heard.names())
                    .containsExactly("callStarted", "spillover", "attemptStarted", "attemptEnded", "completed");
            theCall();
            Spillover spill = heard.only("spillover", Spillover.class);
            assertThat(spill.primary()).isEqualTo("primary");
            assertThat(spill.reason()).contains("no free slot").contains("1/1 in flight");
            assertThat(heard.only("attemptStarted", AttemptStart.class).member())
                    .isEqualTo("burst");
            time.advanceTo(Duration.ofSeconds(1));
            assertThat(holding).isCompleted();
        }
    }

    @Test
    void aPrimaryStillFullWhenItsWaitForASlotEndsSpillsToTheOverflow() {
        VirtualTime time = new VirtualTime();
        VirtualMember primary = VirtualMember.perToken("primary", null, time).latency(Duration.ofSeconds(1));
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = spillover(time, primary, burst, Duration.ofMillis(100), RetryPolicy.DEFAULTS)) {
            CompletableFuture<ChatResponse> holding = c.chatAsync(ChatRequest.of("1"));
            heard.clear();

            CompletableFuture<ChatResponse> second = c.chatAsync(ChatRequest.of("2"));
            assertThat(heard.names()).containsExactly("callStarted");
            time.advanceTo(Duration.ofMillis(100));
            assertThat(second).isCompleted();
            assertThat(second.join().text()).isEqualTo("from burst");
            assertThat(heard.names())
                    .containsExactly("callStarted", "spillover", "attemptStarted", "attemptEnded", "completed");
            theCall();
            Spillover spill = heard.only("spillover", Spillover.class);
            assertThat(spill.primary()).isEqualTo("primary");
            assertThat(spill.reason()).startsWith("no free slot").contains("1/1 in flight");
            time.advanceTo(Duration.ofSeconds(1));
            assertThat(holding).isCompleted();
        }
    }

    @Test
    void aCallSpillsOverOnceEvenWhenItMeetsTheFullPrimaryAgainBehindItsOverflow() {
        VirtualTime time = new VirtualTime();
        VirtualMember primary = VirtualMember.perToken("primary", null, time).latency(Duration.ofSeconds(1));
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = spillover(time, primary, burst, Duration.ZERO, TWO_ATTEMPTS)) {
            CompletableFuture<ChatResponse> holding = c.chatAsync(ChatRequest.of("1"));
            heard.clear();
            burst.thenFail(() -> unavailable("burst"));

            // The overflow fails; the primary, behind it, is still full; the second round's overflow answers.
            ChatResponse r = c.chat(ChatRequest.of("2"));
            assertThat(r.text()).isEqualTo("from burst");
            assertThat(r.receipt().attempts())
                    .extracting(Attempt::providerId, Attempt::outcome)
                    .containsExactly(
                            org.assertj.core.groups.Tuple.tuple("burst", Attempt.Outcome.FAILED),
                            org.assertj.core.groups.Tuple.tuple("primary", Attempt.Outcome.SKIPPED),
                            org.assertj.core.groups.Tuple.tuple("burst", Attempt.Outcome.SUCCEEDED));
            assertThat(heard.details("spillover", Spillover.class)).hasSize(1);
            time.advanceTo(Duration.ofSeconds(1));
            assertThat(holding).isCompleted();
        }
    }

    @Test
    void aPrimaryWithRoomTellsNoSpillover() {
        VirtualTime time = new VirtualTime();
        VirtualMember primary = VirtualMember.perToken("primary", null, time);
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = spillover(time, primary, burst, Duration.ZERO, RetryPolicy.DEFAULTS)) {
            assertThat(c.chat(ChatRequest.of("1")).text()).isEqualTo("from primary");
            assertThat(heard.names()).doesNotContain("spillover");
        }
    }

    // ---- circuit breaker ------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void theCircuitOpeningAndClosingAgainIsTold(CallModes mode) throws Throwable {
        ScriptedMember flaky = ScriptedMember.perToken("flaky", ledger)
                .thenFail(unavailable("flaky"))
                .thenFail(unavailable("flaky"));
        try (HybridClient c = builder()
                .member("flaky", flaky)
                .retry(ONE_ATTEMPT)
                .circuitBreaker(2, Duration.ofSeconds(30))
                .build()) {
            catchThrowable(() -> mode.call(c, ChatRequest.of("1")));
            assertThat(heard.names()).as("one failure is below the threshold").doesNotContain("circuitChanged");

            heard.clear();
            catchThrowable(() -> mode.call(c, ChatRequest.of("2")));
            assertThat(heard.names())
                    .containsExactly("callStarted", "attemptStarted", "attemptEnded", "circuitChanged", "failed");
            CircuitChange opened = heard.only("circuitChanged", CircuitChange.class);
            assertThat(opened)
                    .isEqualTo(new CircuitChange(
                            "listened", "flaky", true, 2, Duration.ofSeconds(30), T0, "2 failure(s) in a row"));

            // While it is open, calls skip the member: no attempt, and no further change.
            heard.clear();
            now.addAndGet(Duration.ofSeconds(29).toNanos());
            catchThrowable(() -> mode.call(c, ChatRequest.of("3")));
            assertThat(heard.names()).containsExactly("callStarted", "failed");

            // Past the cooldown the trial call answers, and the circuit closes.
            heard.clear();
            now.addAndGet(Duration.ofSeconds(2).toNanos());
            assertThat(mode.call(c, ChatRequest.of("4"))).isEqualTo("from flaky");
            CircuitChange closed = heard.only("circuitChanged", CircuitChange.class);
            assertThat(closed)
                    .isEqualTo(new CircuitChange(
                            "listened", "flaky", false, 0, Duration.ZERO, T0, "its trial call succeeded"));
            assertThat(heard.names().indexOf("circuitChanged"))
                    .as("told before the call's completion")
                    .isLessThan(heard.names().indexOf("completed"));
            assertThat(heard.details("circuitChanged", CircuitChange.class)).hasSize(1);

            heard.clear();
            assertThat(mode.call(c, ChatRequest.of("5"))).isEqualTo("from flaky");
            assertThat(heard.names()).doesNotContain("circuitChanged");
        }
    }

    // ---- budgets --------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aSpentBudgetIsToldAsARefusalThenAFailure(CallModes mode) throws Throwable {
        ScriptedMember big = ScriptedMember.perToken("big", ledger);
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("main", List.of("big"))
                .budget(new Budget(
                        "acme-daily", Duration.ofDays(1), new BigDecimal("0.00002"), Map.of("tenant", "acme"), null))
                .ledger(ledger)
                .build();
        ChatRequest acme = ChatRequest.builder()
                .user("hi")
                .options(RequestOptions.builder().tag("tenant", "acme").build())
                .build();
        try (HybridClient c = builder().member("big", big).policy(policy).build()) {
            mode.call(c, acme); // $0.000015
            mode.call(c, acme); // $0.000030: now over
            assertThat(heard.names()).doesNotContain("budgetRefused");

            heard.clear();
            Throwable thrown = catchThrowable(() -> mode.call(c, acme));
            assertThat(thrown).isInstanceOf(BudgetExceededException.class);
            assertThat(heard.names()).containsExactly("callStarted", "budgetRefused", "failed");
            Call call = theCall();
            BudgetExceededException refusal = heard.only("budgetRefused", BudgetExceededException.class);
            assertThat(refusal).isSameAs(thrown).hasMessageContaining("budget acme-daily spent");
            InferenceException failure = heard.only("failed", InferenceException.class);
            assertThat(failure).isSameAs(refusal);
            assertThat(failure.partialReceipt().orElseThrow().id()).isEqualTo(call.id());
            assertThat(failure.partialReceipt().orElseThrow().attempts()).isEmpty();
            assertThat(big.calls()).isEqualTo(2);
        }
    }

    // ---- isolation ------------------------------------------------------------------------------

    /** Throws from every method: a runtime exception from some, an error from the others. */
    private static final class Throwing implements InferenceListener {
        @Override
        public void onCallStarted(Call call) {
            throw new IllegalStateException("listener bug");
        }

        @Override
        public void onAttemptStarted(Call call, AttemptStart attempt) {
            throw new AssertionError("listener bug");
        }

        @Override
        public void onAttemptEnded(Call call, AttemptEnd attempt) {
            throw new IllegalStateException("listener bug");
        }

        @Override
        public void onFirstToken(Call call, Duration timeToFirstToken) {
            throw new IllegalStateException("listener bug");
        }

        @Override
        public void onCompleted(Call call, Receipt receipt) {
            throw new IllegalStateException("listener bug");
        }

        @Override
        public void onFailed(Call call, InferenceException error) {
            throw new ClassCastException("listener bug");
        }

        @Override
        public void onSpillover(Call call, String primary, String reason) {
            throw new IllegalStateException("listener bug");
        }

        @Override
        public void onBudgetRefused(Call call, BudgetExceededException refusal) {
            throw new IllegalStateException("listener bug");
        }

        @Override
        public void onCircuitChanged(CircuitChange change) {
            throw new AssertionError("listener bug");
        }
    }

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void aListenerThatThrowsChangesNothingForTheCallOrTheNextListenerAndIsWarnedOfOncePerEvent(CallModes mode)
            throws Throwable {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(unavailable("a"));
        ScriptedMember b = ScriptedMember.perToken("b", ledger)
                .then(() -> "from b", () -> "from b")
                .thenFail(unavailable("b"));
        try (JulCapture log = JulCapture.of("dev.hybridinference.core.internal.Listeners");
                HybridClient c = quiet().listener(new Throwing())
                        .listener(heard)
                        .member("a", a)
                        .member("b", b)
                        .retry(TWO_ATTEMPTS)
                        .circuitBreaker(1, Duration.ofMinutes(5))
                        .build()) {
            // a fails and opens its circuit; b answers.
            assertThat(mode.call(c, ChatRequest.of("1"))).isEqualTo("from b");
            assertThat(heard.names())
                    .containsExactlyElementsOf(answered(
                            mode,
                            "attemptStarted",
                            "attemptEnded",
                            "circuitChanged",
                            "attemptStarted",
                            "attemptEnded"));
            List<String> firstEvents = List.copyOf(new HashSet<>(heard.names()));
            for (String event : firstEvents) {
                String method = "on" + Character.toUpperCase(event.charAt(0)) + event.substring(1);
                assertThat(log.warnings())
                        .as("one warning for %s", method)
                        .filteredOn(line -> line.contains("threw from " + method + ";"))
                        .hasSize(1);
            }
            assertThat(log.warnings()).hasSize(firstEvents.size());
            assertThat(log.warnings()).allSatisfy(line -> assertThat(line).contains(Throwing.class.getName()));

            // a is skipped; b answers. The same events again: logged at debug only.
            heard.clear();
            assertThat(mode.call(c, ChatRequest.of("2"))).isEqualTo("from b");
            assertThat(heard.names()).containsExactlyElementsOf(answered(mode, "attemptStarted", "attemptEnded"));
            assertThat(log.warnings()).hasSize(firstEvents.size());
            assertThat(log.debugs()).isNotEmpty();

            // b fails too: the call fails with b's error, not the listener's.
            heard.clear();
            Throwable thrown = catchThrowable(() -> mode.call(c, ChatRequest.of("3")));
            assertThat(thrown).isInstanceOf(ProviderUnavailableException.class).hasMessageEndingWith("down");
            assertThat(heard.only("failed", InferenceException.class)).isSameAs(thrown);
            assertThat(log.warnings())
                    .filteredOn(line -> line.contains("threw from onFailed;"))
                    .hasSize(1);
        }
    }

    @Test
    void aListenerThatThrowsOnSpilloverOrBudgetStillLetsTheOthersHearIt() {
        VirtualTime time = new VirtualTime();
        VirtualMember primary = VirtualMember.perToken("primary", null, time).latency(Duration.ofSeconds(1));
        VirtualMember burst = VirtualMember.perToken("burst", null, time);
        try (HybridClient c = HybridClient.builder()
                .timeSource(time)
                .listener(new Throwing())
                .listener(heard)
                .member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxInFlight(1).build())
                .member("burst", burst)
                .policy(StandardRoutingPolicy.builder()
                        .tier("t", List.of("primary"))
                        .spillover("primary", List.of("burst"), Duration.ZERO)
                        .budget(new Budget("none", Duration.ofDays(1), BigDecimal.ZERO, Map.of("team", "x"), null))
                        .build())
                .build()) {
            c.chatAsync(ChatRequest.of("1"));
            assertThat(c.chat(ChatRequest.of("2")).text()).isEqualTo("from burst");
            assertThat(heard.details("spillover", Spillover.class)).hasSize(1);
            ChatRequest team = ChatRequest.builder()
                    .user("hi")
                    .options(RequestOptions.builder().tag("team", "x").build())
                    .build();
            assertThat(catchThrowable(() -> c.chat(team))).isInstanceOf(BudgetExceededException.class);
            assertThat(heard.details("budgetRefused", BudgetExceededException.class))
                    .hasSize(1);
            time.advanceTo(Duration.ofSeconds(1));
        }
    }

    // ---- no listeners ---------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(CallModes.class)
    void withoutListenersCallsWork(CallModes mode) throws Throwable {
        ScriptedMember a = ScriptedMember.perToken("a", ledger).thenFail(unavailable("a"));
        try (HybridClient c = quiet().member("a", a).build()) {
            assertThat(c.listeners()).isEmpty();
            assertThat(mode.call(c, ChatRequest.of("1"))).isEqualTo("from a");
        }
    }

    @Test
    void withoutListenersEveryReceiptStillHasAnIdOfItsOwn() {
        ScriptedMember a = ScriptedMember.perToken("a", ledger);
        try (HybridClient c = quiet().member("a", a).retry(ONE_ATTEMPT).build()) {
            Set<String> ids = new HashSet<>();
            ids.add(c.chat(ChatRequest.of("1")).receipt().id());
            ids.add(c.chat(ChatRequest.of("2")).receipt().id());
            try (ChatStream s = c.stream(ChatRequest.of("3"))) {
                s.forEachRemaining(chunk -> {});
                ids.add(s.response().receipt().id());
            }
            a.thenFail(unavailable("a"));
            Throwable failed = catchThrowable(() -> c.chat(ChatRequest.of("4")));
            ids.add(((InferenceException) failed).partialReceipt().orElseThrow().id());
            assertThat(ids).hasSize(4).allSatisfy(id -> assertThat(id).matches(ID));
        }
    }
}
