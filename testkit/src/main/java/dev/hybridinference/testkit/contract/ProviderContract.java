package dev.hybridinference.testkit.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.contract.CallMode.Outcome;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;

/**
 * The contract every provider keeps, as tests a provider's own test class inherits: a provider is done when
 * it passes the kit. The subclass connects the kit to a scripted backend (a local emulator, a generated
 * model) through the hooks below; the kit then checks, in every call mode ({@link CallMode}):
 *
 * <ul>
 *   <li>answers: blocking, async, pulled and pushed calls give the same text, streams in order, a pushed
 *       stream with exactly one terminal callback;
 *   <li>receipts: provider id, model, usage, attempts, and a cost that recomputes exactly under the
 *       configured {@link #pricing()}; the ledger's totals equal the sum of the receipts;
 *   <li>errors: each error class the provider declares surfaces as that class in every mode, with a
 *       partial receipt that the ledger recorded;
 *   <li>cancellation: cancelling an async call, closing a pulled stream and cancelling a pushed one release
 *       the backend (the server sees the connection close; for an in-process engine, the next call runs);
 *   <li>deadlines: a stalled call ends at its deadline with {@link InferenceTimeoutException#isDeadlineExceeded()};
 *   <li>cut streams: the chunks before the cut, then one error with a receipt of what came.
 * </ul>
 *
 * <p>A provider that cannot arrange a scenario leaves it out of {@link #capabilities()}, and the tests that
 * need it are skipped (reported as such). A fresh client is made for each test, and closed after it.
 *
 * <p>The tests are package-private, as JUnit allows, so that JUnit's types stay out of the kit's public
 * signatures; the subclass's runner finds them all the same.
 *
 * <p>No test here asserts speed: every wait is bounded by {@link #PATIENCE} only to turn a hang into a
 * failure.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
public abstract class ProviderContract {
    /** How long the kit waits for anything before calling it a hang. Not a speed bound. */
    protected static final Duration PATIENCE = Duration.ofSeconds(20);

    /** The deadline given to stalled calls. */
    protected static final Duration DEADLINE = Duration.ofMillis(300);

    /** A text the scripted answers carry: nine words, so nine chunks from a word-per-chunk server. */
    protected static final String TEXT = "The quick brown fox jumps over the lazy dog";

    /** What a provider's test can arrange; the tests that need a missing one are skipped. */
    public enum Capability {
        /**
         * {@link #answering} makes the backend answer exactly the given text. Without it (a local model
         * answers what it computes) the kit checks that every mode gives the same answer to the same request.
         */
        SCRIPTED_ANSWER,
        /** {@link #stalling} makes a call that gets no answer until it is cancelled or its deadline passes. */
        STALL,
        /** {@link #cutAfter} makes a stream that the backend cuts part way. */
        CUT_STREAM,
        /**
         * Cancelling closes a network connection, which {@link #released} checks at the backend. Without it
         * (an in-process engine) {@link #released} checks that a following call runs.
         */
        CONNECTION
    }

    private CostLedger ledger;
    private InferenceClient client;

    // ------------------------------------------------------------------ hooks

    /**
     * A new client of the provider against the scripted backend, configured with {@link #pricing()} and
     * {@link #providerId()}, recording into {@code ledger}.
     */
    protected abstract InferenceClient newClient(CostLedger ledger);

    /** The id {@link #newClient} gives the provider. */
    protected abstract String providerId();

    /** The pricing {@link #newClient} configures; receipts' costs are checked against it. */
    protected abstract Pricing pricing();

    /** The model that receipts of successful calls name. */
    protected abstract String expectedModel();

    /** What this provider's test can arrange; all of them unless overridden. */
    protected Set<Capability> capabilities() {
        return EnumSet.allOf(Capability.class);
    }

    /**
     * Arranges that the next call answers {@code text} (with {@link Capability#SCRIPTED_ANSWER}) and returns
     * the request to send; called once per call.
     */
    protected abstract ChatRequest answering(String text);

    /** The error classes this provider can raise and {@link #failingWith} can provoke; may be empty. */
    protected abstract Set<Class<? extends InferenceException>> errorClasses();

    /**
     * Arranges that the next call fails so that the provider raises {@code error} (by scripting the backend,
     * or by the request itself) and returns the request to send; called once per call.
     */
    protected abstract ChatRequest failingWith(Class<? extends InferenceException> error);

    /**
     * Arranges that the next call stalls (no answer for far longer than a test runs, unless cancelled) and
     * returns the request to send. Needed with {@link Capability#STALL}.
     */
    protected ChatRequest stalling() {
        throw new UnsupportedOperationException("declare no STALL capability, or override stalling()");
    }

    /** Waits until the backend holds the call made with the last {@link #stalling()} request. */
    protected void awaitStalled() throws InterruptedException {}

    /**
     * Arranges that the next stream is cut by the backend after {@code chunks} chunks with text and returns
     * the request to send. Needed with {@link Capability#CUT_STREAM}.
     */
    protected ChatRequest cutAfter(int chunks) {
        throw new UnsupportedOperationException("declare no CUT_STREAM capability, or override cutAfter()");
    }

    /**
     * Whether the backend let go of every stalled call so far, waiting up to {@code within}: with {@link
     * Capability#CONNECTION}, the server saw each connection close. The default, for a provider without
     * connections, makes a following call with {@code within} as its timeout and says whether it answered:
     * an engine still busy with a cancelled call would not answer in time.
     */
    protected boolean released(InferenceClient client, Duration within) throws InterruptedException {
        ChatRequest probe = answering("ok");
        ChatRequest bounded = probe.toBuilder()
                .options(probe.options().toBuilder().timeout(within).build())
                .build();
        try {
            client.chat(bounded);
            return true;
        } catch (InferenceTimeoutException e) {
            return false;
        }
    }

    // ------------------------------------------------------------------ set-up

    /** The client of the current test. */
    protected final InferenceClient client() {
        return client;
    }

    /** The ledger of the current test's client. */
    protected final CostLedger ledger() {
        return ledger;
    }

    /**
     * Starts the scripted backend for one test, before its client is made (JUnit would run a subclass's own
     * {@code @BeforeEach} after the kit's, which makes the client). Nothing unless overridden.
     */
    protected void startBackend() throws Exception {}

    /** Stops the backend after the test's client is closed. Nothing unless overridden. */
    protected void stopBackend() throws Exception {}

    @BeforeEach
    public final void openContractClient() throws Exception {
        startBackend();
        ledger = new CostLedger();
        client = newClient(ledger);
    }

    @AfterEach
    public final void closeContractClient() throws Exception {
        try {
            if (client != null) {
                client.close();
            }
        } finally {
            stopBackend();
        }
    }

    private boolean can(Capability c) {
        return capabilities().contains(c);
    }

    private void require(Capability c) {
        assumeTrue(can(c), () -> getClass().getSimpleName() + " declares no " + c);
    }

    // ------------------------------------------------------------------ answers and receipts

    @Test
    void aBlockingCallAnswersWithAFullReceipt() {
        LedgerMark mark = new LedgerMark(ledger);
        ChatResponse r = client.chat(answering(TEXT));
        if (can(Capability.SCRIPTED_ANSWER)) {
            assertThat(r.text()).isEqualTo(TEXT);
            assertThat(r.usage().outputTokens()).isPositive();
        }
        assertAnswered(r);
        assertThat(r.receipt().timeToFirstToken())
                .as("a blocking call has no first token")
                .isEmpty();
        mark.recorded(r.receipt());
    }

    @Test
    void anAsyncCallAnswersAsTheBlockingOneDoes() {
        String expected = expectedText();
        LedgerMark mark = new LedgerMark(ledger);
        Outcome o = CallMode.ASYNC.run(client, answering(TEXT), PATIENCE);
        assertThat(o.error()).as("error").isNull();
        assertThat(o.response().text()).isEqualTo(expected);
        assertAnswered(o.response());
        mark.recorded(o.response().receipt());
    }

    @Test
    void aPulledStreamDeliversTheAnswerInOrderThenItsReceipt() {
        String expected = expectedText();
        LedgerMark mark = new LedgerMark(ledger);
        Outcome o = CallMode.PULL.run(client, answering(TEXT), PATIENCE);
        assertThat(o.error()).as("error").isNull();
        assertThat(o.streamedText()).isEqualTo(expected);
        assertThat(o.response().text()).isEqualTo(expected);
        assertAnswered(o.response());
        if (o.textChunks() > 0) {
            assertThat(o.response().receipt().timeToFirstToken()).isPresent();
            assertThat(o.response().receipt().timeToFirstToken().get())
                    .isLessThanOrEqualTo(o.response().receipt().totalTime());
        }
        mark.recorded(o.response().receipt());
    }

    @Test
    void aPushedStreamDeliversTheAnswerThenExactlyOneCompletion() {
        String expected = expectedText();
        LedgerMark mark = new LedgerMark(ledger);
        Outcome o = CallMode.PUSH.run(client, answering(TEXT), PATIENCE);
        assertThat(o.terminalCallbacks()).as("terminal callbacks").isEqualTo(1);
        assertThat(o.error()).as("error").isNull();
        assertThat(o.streamedText()).isEqualTo(expected);
        assertThat(o.response().text()).isEqualTo(expected);
        assertAnswered(o.response());
        mark.recorded(o.response().receipt());
    }

    @Test
    void theLedgersTotalsAreTheSumOfTheReceipts() {
        List<Receipt> receipts = new ArrayList<>();
        for (CallMode mode : CallMode.values()) {
            Outcome o = mode.run(client, answering(TEXT), PATIENCE);
            assertThat(o.error()).as(mode + " error").isNull();
            receipts.add(o.response().receipt());
        }
        if (!errorClasses().isEmpty()) {
            Outcome o = CallMode.BLOCKING.run(
                    client, failingWith(errorClasses().iterator().next()), PATIENCE);
            assertThat(o.error()).isNotNull();
            receipts.add(o.error().partialReceipt().orElseThrow());
        }
        BigDecimal sum = receipts.stream().map(Receipt::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
        awaitTrue(() -> ledger.totals().calls() == receipts.size(), "every call recorded");
        assertThat(ledger.totals().calls()).isEqualTo(receipts.size());
        assertThat(ledger.total()).isEqualByComparingTo(sum);
        assertThat(ledger.totals().provider(providerId())).isEqualByComparingTo(sum);
    }

    // ------------------------------------------------------------------ errors

    @TestFactory
    Stream<DynamicTest> eachErrorClassSurfacesAsItselfInEveryModeWithARecordedPartialReceipt() {
        assumeTrue(!errorClasses().isEmpty(), "the provider declares no error classes");
        List<DynamicTest> tests = new ArrayList<>();
        for (Class<? extends InferenceException> error : errorClasses()) {
            for (CallMode mode : CallMode.values()) {
                tests.add(DynamicTest.dynamicTest(error.getSimpleName() + " " + mode, () -> {
                    CostLedger own = new CostLedger();
                    try (InferenceClient c = newClient(own)) {
                        Outcome o = mode.run(c, failingWith(error), PATIENCE);
                        assertThat(o.terminalCallbacks())
                                .as("terminal callbacks")
                                .isEqualTo(1);
                        assertThat(o.error()).as("the failure").isInstanceOf(error);
                        Receipt partial = assertFailedReceipt(o.error(), Attempt.Outcome.FAILED);
                        awaitTrue(() -> own.totals().calls() == 1, "the failed call recorded");
                        assertThat(own.total()).isEqualByComparingTo(partial.cost());
                    }
                }));
            }
        }
        return tests.stream();
    }

    // ------------------------------------------------------------------ cancellation

    @Test
    void cancellingAnAsyncCallReleasesTheBackendAndRecordsTheCall() throws Exception {
        require(Capability.STALL);
        LedgerMark mark = new LedgerMark(ledger);
        CompletableFuture<ChatResponse> f = client.chatAsync(stalling());
        awaitStalled();
        assertThat(f).as("a stalled call").isNotDone();
        assertThat(f.cancel(true)).isTrue();
        mark.awaitCalls(1);
        assertThat(released(client, PATIENCE)).as("the backend let go").isTrue();
    }

    @Test
    void closingAPulledStreamWakesItsReaderReleasesTheBackendAndRecordsTheCall() throws Exception {
        require(Capability.STALL);
        LedgerMark mark = new LedgerMark(ledger);
        ChatStream s = client.stream(stalling());
        awaitStalled();
        CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
            try {
                while (s.hasNext()) {
                    s.next();
                }
                s.response();
                return null;
            } catch (RuntimeException e) {
                return e;
            }
        });
        Thread.sleep(50); // most often the reader is waiting by now; either way it must end
        s.close();
        Throwable t = reader.get(PATIENCE.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(t).isInstanceOf(CancelledException.class);
        assertFailedReceipt((InferenceException) t, Attempt.Outcome.CANCELLED);
        mark.awaitCalls(1);
        assertThat(released(client, PATIENCE)).as("the backend let go").isTrue();
    }

    @Test
    void cancellingAPushedStreamEndsItOnceAndReleasesTheBackend() throws Exception {
        require(Capability.STALL);
        LedgerMark mark = new LedgerMark(ledger);
        PushRecorder recorder = new PushRecorder();
        Cancellable handle = client.stream(stalling(), recorder);
        awaitStalled();
        handle.cancel();
        handle.cancel();
        InferenceException e = recorder.awaitError(PATIENCE);
        assertThat(e).isInstanceOf(CancelledException.class);
        Thread.sleep(20);
        assertThat(recorder.ends()).as("terminal callbacks").isEqualTo(1);
        mark.awaitCalls(1);
        assertThat(released(client, PATIENCE)).as("the backend let go").isTrue();
    }

    @TestFactory
    Stream<DynamicTest> aStalledCallEndsAtItsDeadlineInEveryMode() {
        require(Capability.STALL);
        List<DynamicTest> tests = new ArrayList<>();
        for (CallMode mode : CallMode.values()) {
            tests.add(DynamicTest.dynamicTest(mode.name(), () -> {
                CostLedger own = new CostLedger();
                try (InferenceClient c = newClient(own)) {
                    ChatRequest stalled = stalling();
                    ChatRequest bounded = stalled.toBuilder()
                            .options(stalled.options().toBuilder()
                                    .timeout(DEADLINE)
                                    .build())
                            .build();
                    Outcome o = mode.run(c, bounded, PATIENCE);
                    assertThat(o.terminalCallbacks()).as("terminal callbacks").isEqualTo(1);
                    assertThat(o.error())
                            .isInstanceOfSatisfying(
                                    InferenceTimeoutException.class,
                                    e -> assertThat(e.isDeadlineExceeded())
                                            .as("deadline exceeded")
                                            .isTrue());
                    assertFailedReceipt(o.error(), null);
                    awaitTrue(() -> own.totals().calls() == 1, "the timed-out call recorded");
                    assertThat(released(c, PATIENCE)).as("the backend let go").isTrue();
                }
            }));
        }
        return tests.stream();
    }

    // ------------------------------------------------------------------ cut streams

    @Test
    void aCutPulledStreamGivesItsChunksThenAnErrorWithAReceiptOfWhatCame() {
        cutStream(CallMode.PULL);
    }

    @Test
    void aCutPushedStreamGivesItsChunksThenExactlyOneError() {
        cutStream(CallMode.PUSH);
    }

    private void cutStream(CallMode mode) {
        require(Capability.CUT_STREAM);
        LedgerMark mark = new LedgerMark(ledger);
        Outcome o = mode.run(client, cutAfter(3), PATIENCE);
        assertThat(o.terminalCallbacks()).as("terminal callbacks").isEqualTo(1);
        assertThat(o.textChunks()).as("chunks with text before the cut").isEqualTo(3);
        assertThat(o.error()).as("the failure").isNotNull();
        Receipt partial = assertFailedReceipt(o.error(), Attempt.Outcome.FAILED);
        assertThat(partial.usage().outputTokens())
                .as("output tokens of the chunks that came")
                .isGreaterThanOrEqualTo(3);
        mark.recorded(partial);
    }

    // ------------------------------------------------------------------ checks

    /** The answer a request for {@link #TEXT} should get: the text itself, or the blocking call's answer. */
    private String expectedText() {
        if (can(Capability.SCRIPTED_ANSWER)) {
            return TEXT;
        }
        return client.chat(answering(TEXT)).text();
    }

    /** Checks a successful answer's receipt. */
    protected void assertAnswered(ChatResponse r) {
        Receipt receipt = r.receipt();
        assertThat(receipt.providerId()).as("provider id").isEqualTo(providerId());
        assertThat(receipt.model()).as("model").isEqualTo(expectedModel());
        assertThat(receipt.usage()).as("usage").isEqualTo(r.usage());
        assertThat(receipt.usage().inputTokens()).as("input tokens").isPositive();
        assertThat(receipt.attempts()).as("attempts").isNotEmpty();
        Attempt last = receipt.attempts().get(receipt.attempts().size() - 1);
        assertThat(last.outcome()).as("last attempt").isEqualTo(Attempt.Outcome.SUCCEEDED);
        assertThat(last.providerId()).as("last attempt's provider").isEqualTo(providerId());
        assertThat(r.finishReason()).as("finish reason").isNotNull();
        assertCostUnderPricing(receipt);
    }

    /**
     * Checks a failure's partial receipt: this provider, attempts ending with {@code lastOutcome} (any
     * failed or cancelled outcome when null), a cost under the pricing.
     */
    protected Receipt assertFailedReceipt(InferenceException e, Attempt.Outcome lastOutcome) {
        assertThat(e.partialReceipt()).as("partial receipt of " + e).isPresent();
        Receipt receipt = e.partialReceipt().get();
        assertThat(receipt.providerId()).as("provider id").isEqualTo(providerId());
        assertThat(receipt.attempts()).as("attempts").isNotEmpty();
        Attempt last = receipt.attempts().get(receipt.attempts().size() - 1);
        if (lastOutcome != null) {
            assertThat(last.outcome()).as("last attempt").isEqualTo(lastOutcome);
        } else {
            assertThat(last.outcome()).as("last attempt").isIn(Attempt.Outcome.FAILED, Attempt.Outcome.CANCELLED);
        }
        assertCostUnderPricing(receipt);
        return receipt;
    }

    /**
     * The receipt's cost is exactly what the pricing makes of the figures the receipt carries: its tokens,
     * compute time, instance time and bytes.
     */
    protected void assertCostUnderPricing(Receipt receipt) {
        BigDecimal expected = pricing()
                .costOf(new Pricing.BillableUsage(
                        receipt.usage(),
                        receipt.computeTime(),
                        receipt.instanceTime(),
                        receipt.requestBytes() + receipt.responseBytes(),
                        false));
        assertThat(receipt.cost()).as("cost under " + pricing().describe()).isEqualByComparingTo(expected);
    }

    /** Waits, up to {@link #PATIENCE}, until {@code condition} holds. */
    protected static void awaitTrue(BooleanSupplier condition, String what) {
        long until = System.nanoTime() + PATIENCE.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - until > 0) {
                fail("not within " + PATIENCE + ": " + what);
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", e);
            }
        }
    }

    /** The ledger's state before a call, to check what the call added. */
    private static final class LedgerMark {
        private final CostLedger ledger;
        private final long calls;
        private final BigDecimal total;

        LedgerMark(CostLedger ledger) {
            this.ledger = ledger;
            this.calls = ledger.totals().calls();
            this.total = ledger.total();
        }

        /** Waits until {@code n} more calls are recorded. */
        void awaitCalls(int n) {
            awaitTrue(() -> ledger.totals().calls() >= calls + n, n + " more calls recorded");
            assertThat(ledger.totals().calls()).as("calls recorded").isEqualTo(calls + n);
        }

        /** The ledger recorded exactly this one receipt since the mark. */
        void recorded(Receipt receipt) {
            awaitCalls(1);
            assertThat(ledger.total()).as("ledger total").isEqualByComparingTo(total.add(receipt.cost()));
        }
    }

    /** A push handler that keeps the terminal callback. */
    private static final class PushRecorder implements StreamHandler {
        private final CompletableFuture<InferenceException> error = new CompletableFuture<>();
        private final AtomicInteger ends = new AtomicInteger();

        @Override
        public void onChunk(ChatChunk chunk) {}

        @Override
        public void onComplete(ChatResponse response) {
            ends.incrementAndGet();
            error.completeExceptionally(new AssertionError("completed, though cancelled"));
        }

        @Override
        public void onError(InferenceException e) {
            ends.incrementAndGet();
            error.complete(e);
        }

        int ends() {
            return ends.get();
        }

        InferenceException awaitError(Duration patience) throws Exception {
            return error.get(patience.toMillis(), TimeUnit.MILLISECONDS);
        }
    }
}
