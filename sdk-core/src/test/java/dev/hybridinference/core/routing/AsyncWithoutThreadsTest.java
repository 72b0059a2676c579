package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A provider with an asynchronous step of its own parks no thread, alone or behind a {@link HybridClient};
 * the core's receipts, ledger and cancellation work the same. Threads are counted by name (every client's
 * threads are named after its id), never timed.
 */
@Timeout(30)
class AsyncWithoutThreadsTest {
    private final CostLedger ledger = new CostLedger();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "test-timer");
        t.setDaemon(true);
        return t;
    });

    @AfterEach
    void stopTimer() {
        timer.shutdownNow();
    }

    /**
     * A provider whose SDK is asynchronous: each call's future waits in {@link #pending} until the test
     * answers it (from the timer thread); a cancel completes it exceptionally, as an SDK's abort does.
     */
    static class TimerMember extends AbstractProviderClient {
        final ConcurrentLinkedQueue<Pending> pending = new ConcurrentLinkedQueue<>();
        final AtomicInteger cancelHooks = new AtomicInteger();
        final boolean registersCancel;

        TimerMember(String id, CostLedger ledger, boolean registersCancel) {
            super(
                    id,
                    "timer",
                    DeploymentKind.SERVERLESS,
                    new Pricing.PerToken(BigDecimal.ONE, BigDecimal.ONE, null),
                    ledger,
                    Clock.systemUTC());
            this.registersCancel = registersCancel;
        }

        @Override
        protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
            throw new AssertionError("the asynchronous step must be used");
        }

        @Override
        protected CompletableFuture<ProviderResult> doChatAsync(ChatRequest request, CallContext ctx) {
            CompletableFuture<ProviderResult> f = new CompletableFuture<>();
            if (registersCancel) {
                ctx.onCancel(() -> {
                    cancelHooks.incrementAndGet();
                    ctx.addAttempt(new Attempt(id(), "sdk", "", Attempt.Outcome.CANCELLED, Duration.ZERO, "aborted"));
                    f.completeExceptionally(new CancelledException("aborted", id(), "sdk", 0, null, null));
                });
            }
            pending.add(new Pending(request, f));
            return f;
        }

        @Override
        protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
            throw new UnsupportedOperationException();
        }
    }

    record Pending(ChatRequest request, CompletableFuture<ProviderResult> future) {
        void answer() {
            String text = "re: " + request.messages().get(0).content();
            future.complete(ProviderResult.builder()
                    .text(text)
                    .finishReason(FinishReason.STOP)
                    .usage(new Usage(4, 2, 0))
                    .model("m")
                    .build());
        }
    }

    /** Threads alive now whose name marks them as a client's of one of these ids. */
    private static int threadsOf(String... ids) {
        int n = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            for (String id : ids) {
                if (t.isAlive() && t.getName().startsWith("hybrid-inference-" + id + "-")) {
                    n++;
                }
            }
        }
        return n;
    }

    private static void await(BooleanSupplier condition) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("condition met in time").isLessThan(until);
            Thread.sleep(2);
        }
    }

    @Test
    void twoHundredAsyncCallsThroughAHybridClientParkNoThread() throws Exception {
        TimerMember member = new TimerMember("timer-native", ledger, true);
        try (HybridClient hybrid =
                HybridClient.builder().id("hybrid-native").member("m", member).build()) {
            List<CompletableFuture<ChatResponse>> calls = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                calls.add(hybrid.chatAsync(ChatRequest.of("q" + i)));
            }
            await(() -> member.pending.size() == 200);
            // All 200 are in flight, and neither client holds a thread for them.
            assertThat(threadsOf("hybrid-native", "timer-native")).isLessThanOrEqualTo(2);
            assertThat(calls).noneMatch(CompletableFuture::isDone);

            timer.schedule(() -> member.pending.forEach(Pending::answer), 10, TimeUnit.MILLISECONDS);
            for (int i = 0; i < 200; i++) {
                ChatResponse r = calls.get(i).get(10, TimeUnit.SECONDS);
                assertThat(r.text()).isEqualTo("re: q" + i);
                assertThat(r.receipt().providerId()).isEqualTo("timer-native");
            }
            assertThat(threadsOf("hybrid-native", "timer-native")).isLessThanOrEqualTo(2);
        }
        // One receipt per call, from the member; the composite adds none of its own on success.
        assertThat(ledger.totals().calls()).isEqualTo(200);
        assertThat(ledger.total()).isEqualByComparingTo(new BigDecimal("0.001200"));
    }

    @Test
    void aMemberWithoutAnAsyncStepParksOneThreadPerCallTheHybridClientNone() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger started = new AtomicInteger();
        ScriptedMember blocking = ScriptedMember.perToken("timer-blocking", ledger);
        for (int i = 0; i < 50; i++) {
            blocking.then(() -> {
                started.incrementAndGet();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return "done";
            });
        }
        try (HybridClient hybrid = HybridClient.builder()
                .id("hybrid-blocking")
                .member("m", blocking)
                .build()) {
            List<CompletableFuture<ChatResponse>> calls = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                calls.add(hybrid.chatAsync(ChatRequest.of("q")));
            }
            await(() -> started.get() == 50);
            // The count does see parked threads: the member's default step holds one per call.
            assertThat(threadsOf("timer-blocking")).isGreaterThanOrEqualTo(50);
            assertThat(threadsOf("hybrid-blocking")).isLessThanOrEqualTo(2);
            release.countDown();
            for (CompletableFuture<ChatResponse> f : calls) {
                assertThat(f.get(10, TimeUnit.SECONDS).text()).isEqualTo("done");
            }
        }
    }

    @Test
    void aNativeStepGetsTheSameReceiptAndLedgerAsABlockingOne() throws Exception {
        try (TimerMember member = new TimerMember("timer-receipt", ledger, true)) {
            CompletableFuture<ChatResponse> f = member.chatAsync(ChatRequest.of("hello"));
            assertThat(f).isNotDone();
            member.pending.poll().answer();
            ChatResponse r = f.get(10, TimeUnit.SECONDS);
            Receipt receipt = r.receipt();
            assertThat(receipt.providerId()).isEqualTo("timer-receipt");
            assertThat(receipt.model()).isEqualTo("m");
            assertThat(receipt.usage()).isEqualTo(new Usage(4, 2, 0));
            assertThat(receipt.cost()).isEqualByComparingTo("0.000006");
            assertThat(receipt.attempts())
                    .singleElement()
                    .satisfies(a -> assertThat(a.outcome()).isEqualTo(Attempt.Outcome.SUCCEEDED));
            assertThat(ledger.totals().calls()).isEqualTo(1);
            assertThat(threadsOf("timer-receipt")).isZero();
        }
    }

    @Test
    void aNativeStepsFailureKeepsItsClassOrIsWrappedAndIsRecorded() throws Exception {
        try (TimerMember member = new TimerMember("timer-fail", ledger, true)) {
            CompletableFuture<ChatResponse> limited = member.chatAsync(ChatRequest.of("a"));
            RateLimitedException cause = new RateLimitedException("slow down", "timer-fail", null, 429, null, null);
            member.pending.poll().future().completeExceptionally(cause);
            assertThatThrownBy(limited::get).hasCause(cause);
            assertThat(cause.partialReceipt()).isPresent();

            CompletableFuture<ChatResponse> io = member.chatAsync(ChatRequest.of("b"));
            member.pending.poll().future().completeExceptionally(new IOException("reset"));
            assertThatThrownBy(io::get)
                    .isInstanceOf(ExecutionException.class)
                    .cause()
                    .isInstanceOf(InferenceException.class)
                    .hasMessageContaining("unexpected IOException")
                    .satisfies(e -> assertThat(((InferenceException) e).partialReceipt())
                            .isPresent());
            assertThat(ledger.totals().calls()).isEqualTo(2);
        }
    }

    @Test
    void aStepThatThrowsAtOnceFailsTheFutureNotTheCaller() {
        TimerMember member = new TimerMember("timer-throws", ledger, true) {
            @Override
            protected CompletableFuture<ProviderResult> doChatAsync(ChatRequest request, CallContext ctx) {
                throw new ProviderUnavailableException("no route", id(), null, 0, null, null);
            }
        };
        try (member) {
            CompletableFuture<ChatResponse> f = member.chatAsync(ChatRequest.of("a"));
            assertThatThrownBy(f::get).hasCauseInstanceOf(ProviderUnavailableException.class);
            assertThat(ledger.totals().calls()).isEqualTo(1);
        }
    }

    @Test
    void cancellingTheFutureRunsTheProvidersCancelHookOnceAndRecordsItsAttempt() throws Exception {
        try (TimerMember member = new TimerMember("timer-cancel", ledger, true)) {
            CompletableFuture<ChatResponse> f = member.chatAsync(ChatRequest.of("a"));
            f.cancel(true);
            f.cancel(true);
            assertThat(member.cancelHooks).hasValue(1);
            assertThat(member.pending.poll().future()).isCompletedExceptionally();
            assertThat(ledger.totals().calls()).isEqualTo(1);
        }
    }

    @Test
    void aStepWithoutACancelHookIsEndedByTheCore() throws Exception {
        try (TimerMember member = new TimerMember("timer-nohook", ledger, false)) {
            CompletableFuture<ChatResponse> f = member.chatAsync(ChatRequest.of("a"));
            f.cancel(true);
            assertThat(member.pending.poll().future()).isCancelled();
            assertThat(ledger.totals().calls()).isEqualTo(1);
        }
    }

    @Test
    void cancellingThroughTheHybridClientReachesTheMembersStep() throws Exception {
        TimerMember member = new TimerMember("timer-hybrid-cancel", ledger, true);
        List<Receipt> failures = new ArrayList<>();
        RoutingPolicy policy = new RoutingPolicy() {
            @Override
            public Route route(ChatRequest request, Map<String, MemberState> members) {
                return new Route(List.of("m"), "only m", null);
            }

            @Override
            public void recorded(ChatRequest request, Receipt receipt) {
                synchronized (failures) {
                    failures.add(receipt);
                }
            }
        };
        try (HybridClient hybrid =
                HybridClient.builder().member("m", member).policy(policy).build()) {
            CompletableFuture<ChatResponse> f = hybrid.chatAsync(ChatRequest.of("a"));
            await(() -> member.pending.size() == 1);
            f.cancel(true);
            assertThat(member.cancelHooks).hasValue(1);
            await(() -> {
                synchronized (failures) {
                    return failures.size() == 1;
                }
            });
            assertThat(failures.get(0).attempts()).isNotEmpty();
            assertThat(hybrid.members().get("m").inFlight()).isZero();
            // The member recorded its own receipt of the cancelled call.
            await(() -> ledger.totals().calls() == 1);
        }
    }

    @Test
    void aCancelDuringTheBackoffEndsTheCallAtOnce() throws Exception {
        TimerMember member = new TimerMember("timer-backoff", ledger, true);
        CountDownLatch ended = new CountDownLatch(1);
        RoutingPolicy policy = new RoutingPolicy() {
            @Override
            public Route route(ChatRequest request, Map<String, MemberState> members) {
                return new Route(List.of("m"), "only m", null);
            }

            @Override
            public void recorded(ChatRequest request, Receipt receipt) {
                ended.countDown();
            }
        };
        RetryPolicy slow = new RetryPolicy(
                3,
                Duration.ofMinutes(5),
                Duration.ofMinutes(5),
                1.0,
                0.0,
                Duration.ofMinutes(5),
                Duration.ofMinutes(30));
        try (HybridClient hybrid = HybridClient.builder()
                .id("hybrid-backoff")
                .member("m", member)
                .policy(policy)
                .retry(slow)
                .build()) {
            CompletableFuture<ChatResponse> f = hybrid.chatAsync(ChatRequest.of("a"));
            await(() -> member.pending.size() == 1);
            member.pending
                    .poll()
                    .future()
                    .completeExceptionally(
                            new ProviderUnavailableException("busy", "timer-backoff", null, 503, null, null));
            // Now in a five-minute backoff, which holds no thread.
            assertThat(threadsOf("hybrid-backoff")).isZero();
            assertThat(f).isNotDone();
            f.cancel(true);
            assertThat(ended.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(member.pending).isEmpty();
        }
    }
}
