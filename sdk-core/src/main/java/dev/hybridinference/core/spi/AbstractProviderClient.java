package dev.hybridinference.core.spi;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.cost.InstanceLifetimes;
import dev.hybridinference.core.internal.LazyPool;
import dev.hybridinference.core.internal.PulledStream;
import dev.hybridinference.core.internal.Streams;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongFieldUpdater;

/**
 * The flow every provider shares: it validates, times the call, runs the provider's one step ({@link
 * #doChat} or {@link #doStream}), builds the receipt with the cost under the provider's pricing, records
 * it in the ledger and turns any failure into an {@link InferenceException} carrying a partial receipt.
 * Providers implement the steps and never build receipts themselves.
 *
 * <p>Cost accounting happens here too, so that no provider can leave it out:
 *
 * <ul>
 *   <li>Capacity billed for instance time ({@link Pricing.PerInstanceHour}, {@link
 *       Pricing.PerInstanceSecond}) is registered with the ledger when the client is built and stopped when
 *       it closes, so {@link CostLedger#capacity} reports its bill.
 *   <li>Instance time: a provider that meters its own (per replica, say) reports it in the result or
 *       through {@link CallContext#addInstanceTime}; otherwise the client attributes it with an {@link
 *       OccupancyMeter} over the pricing's instances (the configured count per instance hour, the estimated
 *       live instances per instance-second, one for amortized hardware), from the moment the provider's
 *       step starts.
 *   <li>Compute time: the provider's own figure ({@link ProviderResult#computeTime()}) when it has one;
 *       otherwise the time from the start of the provider's step to the end of the call, less the time a
 *       stream's reader held the stream between reads (from the end of one read to the start of the next,
 *       and before the first), so a slow reader does not inflate it.
 * </ul>
 */
public abstract class AbstractProviderClient implements InferenceClient {
    // Runs first: a Jackson or OkHttp the SDK cannot work with fails here, with a message naming it.
    static {
        dev.hybridinference.core.internal.LibraryVersions.check();
    }

    private final String id;
    private final String type;
    private final DeploymentKind kind;
    private final Pricing pricing;
    private final CostLedger ledger;
    private final Clock clock;
    private final TimeSource time;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LazyPool pool;
    private final InstanceLifetimes lifetimes;
    private final OccupancyMeter occupancy;

    /**
     * Creates the client.
     *
     * @param id the provider id from the configuration
     * @param type the provider type
     * @param kind where its model runs
     * @param pricing how it bills
     * @param ledger where receipts are recorded, or null for none
     * @param clock the wall clock that dates receipts
     */
    protected AbstractProviderClient(
            String id, String type, DeploymentKind kind, Pricing pricing, CostLedger ledger, Clock clock) {
        this(id, type, kind, pricing, ledger, TimeSource.system(Objects.requireNonNull(clock, "clock")));
    }

    /**
     * Creates the client on {@code time}: calls are dated, timed and metered on it (a simulation's virtual
     * time, say).
     *
     * @param id the provider id from the configuration
     * @param type the provider type
     * @param kind where its model runs
     * @param pricing how it bills
     * @param ledger where receipts are recorded, or null for none
     * @param time the clocks that date, time and meter calls
     */
    protected AbstractProviderClient(
            String id, String type, DeploymentKind kind, Pricing pricing, CostLedger ledger, TimeSource time) {
        this.time = Objects.requireNonNull(time, "time");
        Clock clock = time.clock();
        this.id = Objects.requireNonNull(id, "id");
        this.type = Objects.requireNonNull(type, "type");
        this.kind = Objects.requireNonNull(kind, "kind");
        this.pricing = Objects.requireNonNull(pricing, "pricing");
        this.ledger = ledger;
        this.clock = clock;
        this.pool = new LazyPool(id);
        if (pricing instanceof Pricing.PerInstanceSecond) {
            // The client's own estimate of the live instances, fed the same receipts as the ledger's, gives
            // the instance count the occupancy meter splits time over, with or without a ledger.
            InstanceLifetimes l = new InstanceLifetimes((Pricing.PerInstanceSecond) pricing, clock.instant());
            this.lifetimes = l;
            this.occupancy = new OccupancyMeter(() -> l.live(clock.instant()), time::nanoTime);
        } else if (pricing instanceof Pricing.PerInstanceHour) {
            this.lifetimes = null;
            int instances = ((Pricing.PerInstanceHour) pricing).instances();
            this.occupancy = new OccupancyMeter(() -> instances, time::nanoTime);
        } else if (pricing instanceof Pricing.Amortized) {
            this.lifetimes = null;
            this.occupancy = new OccupancyMeter(time::nanoTime);
        } else {
            this.lifetimes = null;
            this.occupancy = null;
        }
        if (ledger != null) {
            ledger.registerCapacity(id, pricing);
        }
    }

    /**
     * Runs a blocking call. Record attempts and the route in {@code ctx}; throw an {@link
     * InferenceException} subclass on failure.
     */
    protected abstract ProviderResult doChat(ChatRequest request, CallContext ctx);

    /**
     * Opens a stream. Return once the response has started; errors before that are thrown from here.
     */
    protected abstract ProviderStream doStream(ChatRequest request, CallContext ctx);

    /** The models this provider serves, as far as it knows now. */
    protected List<String> models() {
        return List.of();
    }

    /** Frees the provider's own resources; called once by {@link #close()}. */
    protected void doClose() {}

    /** The provider id. */
    public final String id() {
        return id;
    }

    /** The pricing this client bills under. */
    public final Pricing pricing() {
        return pricing;
    }

    /** The wall clock of this client. */
    protected final Clock clock() {
        return clock;
    }

    /** The clocks this client dates, times and meters calls on. */
    protected final TimeSource time() {
        return time;
    }

    /**
     * What requests this provider can take, for the composite client's choice of member; {@link
     * ClientInfo.Capabilities#DEFAULTS} (everything, context unknown) unless overridden.
     */
    protected ClientInfo.Capabilities capabilities() {
        return ClientInfo.Capabilities.DEFAULTS;
    }

    /** Whether this provider scales to zero; {@link ClientInfo.ColdStartProfile#NONE} unless overridden. */
    protected ClientInfo.ColdStartProfile coldStartProfile() {
        return ClientInfo.ColdStartProfile.NONE;
    }

    @Override
    public ClientInfo info() {
        return ClientInfo.builder(id, type, kind, pricing)
                .models(models())
                .capabilities(capabilities())
                .coldStart(coldStartProfile())
                .build();
    }

    /** The ledger this provider records its receipts into, if it was given one. */
    @Override
    public Optional<CostLedger> ledger() {
        return Optional.ofNullable(ledger);
    }

    @Override
    public final ChatResponse chat(ChatRequest request) {
        CallContext ctx = begin(request);
        try {
            return complete(ctx, runChat(request, ctx), Optional.empty());
        } catch (RuntimeException e) {
            throw fail(ctx, e);
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Runs the provider's {@link #doChatAsync} step: on one of this client's threads for a provider
     * that has no asynchronous step of its own, with no thread held at all for one that has. Cancelling the
     * returned future cancels the call ({@link CallContext#cancel()}). The future completes on the thread
     * that ends the provider's step, so dependent stages should not block.
     */
    @Override
    public final CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
        CallContext ctx = begin(request);
        CompletableFuture<ChatResponse> future = new CompletableFuture<>();
        CompletableFuture<ProviderResult> step;
        // The call is metered from the start of the provider's step, here for an asynchronous one.
        startMeter(ctx);
        try {
            step = Objects.requireNonNull(doChatAsync(request, ctx), "doChatAsync returned null");
        } catch (RuntimeException e) {
            future.completeExceptionally(
                    fail(ctx, isClosed() ? new CancelledException("client is closed", id, null, 0, null, e) : e));
            return future;
        } catch (Error e) {
            endMeter(ctx.takeMeter());
            throw e;
        }
        future.whenComplete((r, t) -> {
            if (future.isCancelled()) {
                ctx.cancel();
                if (!(step instanceof PooledStep)) {
                    // A provider's own step ends when its cancel hook runs; this ends one that has none.
                    step.cancel(false);
                }
            }
        });
        step.whenComplete((r, t) -> {
            if (t == null) {
                try {
                    future.complete(complete(
                            ctx, Objects.requireNonNull(r, "doChatAsync completed with null"), Optional.empty()));
                } catch (RuntimeException e) {
                    future.completeExceptionally(fail(ctx, e));
                }
            } else {
                future.completeExceptionally(failWith(ctx, stepFailure(ctx, t), null, ctx.takeMeter()));
            }
        });
        return future;
    }

    /**
     * Starts a call without holding a thread for it, for providers whose SDK is asynchronous; the default
     * runs {@link #doChat} on one of this client's threads. Record attempts and the route in {@code ctx}
     * as {@code doChat} does, and complete the future with the result, or exceptionally with an {@link
     * InferenceException} subclass (anything else is wrapped). The future must complete in every case:
     * register a cancel hook with {@link CallContext#onCancel} that aborts the SDK's request, and make that
     * abort complete the future (exceptionally), so that the call's receipt holds what the provider knows
     * of the cancelled attempt; a future still pending after the hook ran is cancelled by the core.
     *
     * <p>Called on the caller's thread: return without blocking. Anything thrown here fails the call.
     */
    protected CompletableFuture<ProviderResult> doChatAsync(ChatRequest request, CallContext ctx) {
        PooledStep step = new PooledStep();
        executor().execute(() -> {
            try {
                step.complete(doChat(request, ctx));
            } catch (Throwable t) {
                step.completeExceptionally(t);
            }
        });
        return step;
    }

    /** The default asynchronous step: {@link #doChat} on a pool thread, which ends by itself when cancelled. */
    private static final class PooledStep extends CompletableFuture<ProviderResult> {}

    /** What an asynchronous step failed with, as an {@link InferenceException}. */
    private InferenceException stepFailure(CallContext ctx, Throwable t) {
        while (t instanceof CompletionException && t.getCause() != null) {
            t = t.getCause();
        }
        if (t instanceof RuntimeException) {
            return asInference(ctx, (RuntimeException) t);
        }
        return new InferenceException(
                "unexpected " + t.getClass().getSimpleName() + " in provider", id, null, 0, null, t);
    }

    @Override
    public final ChatStream stream(ChatRequest request) {
        return open(begin(request));
    }

    private ChatStream open(CallContext ctx) {
        ChatRequest request = ctx.request();
        ProviderStream ps;
        try {
            ps = runStream(request, ctx);
        } catch (RuntimeException e) {
            throw fail(ctx, e);
        }
        return new ReceiptedStream(ctx, ps, ctx.takeMeter());
    }

    /** Runs {@link #doChat} with the call metered from the moment the provider's work starts. */
    private ProviderResult runChat(ChatRequest request, CallContext ctx) {
        startMeter(ctx);
        try {
            return doChat(request, ctx);
        } catch (Error e) {
            endMeter(ctx.takeMeter());
            throw e;
        }
    }

    /** Runs {@link #doStream} with the call metered from the moment the provider's work starts. */
    private ProviderStream runStream(ChatRequest request, CallContext ctx) {
        startMeter(ctx);
        try {
            return doStream(request, ctx);
        } catch (Error e) {
            endMeter(ctx.takeMeter());
            throw e;
        }
    }

    private void startMeter(CallContext ctx) {
        ctx.meter(new CallMeter(occupancy == null ? null : occupancy.enter(), time.nanoTime()));
    }

    /** Ends the call's occupancy (idempotent) and returns its share; null without a meter or ticket. */
    private Duration endMeter(CallMeter m) {
        return m == null || m.ticket == null ? null : occupancy.exit(m.ticket);
    }

    @Override
    public final Cancellable stream(ChatRequest request, StreamHandler handler) {
        Objects.requireNonNull(handler, "handler");
        ensureOpen();
        CallContext ctx = begin(request);
        // A cancel while the stream is still opening cancels the call itself, so a blocking open (a slow
        // server's headers, a queue) is cut short rather than waited out.
        return Streams.push(
                new Streams.Opener() {
                    @Override
                    public ChatStream open() {
                        return AbstractProviderClient.this.open(ctx);
                    }

                    @Override
                    public void cancel() {
                        ctx.cancel();
                    }
                },
                handler,
                executor(),
                id);
    }

    @Override
    public final void close() {
        if (closed.compareAndSet(false, true)) {
            try {
                doClose();
            } finally {
                pool.shutdown();
                if (ledger != null) {
                    ledger.stopCapacity(id);
                }
            }
        }
    }

    /** Whether {@link #close()} was called. */
    protected final boolean isClosed() {
        return closed.get();
    }

    private void ensureOpen() {
        if (closed.get()) {
            throw new IllegalStateException(id + ": client is closed");
        }
    }

    private CallContext begin(ChatRequest request) {
        Objects.requireNonNull(request, "request");
        ensureOpen();
        return new CallContext(id, request, time);
    }

    private ExecutorService executor() {
        return pool.get();
    }

    private ChatResponse complete(CallContext ctx, ProviderResult r, Optional<Duration> ttft) {
        return complete(ctx, r, ttft, ctx.takeMeter());
    }

    private ChatResponse complete(CallContext ctx, ProviderResult r, Optional<Duration> ttft, CallMeter meter) {
        Receipt receipt = receipt(ctx, r, ttft, null, meter);
        if (!ctx.claimReceipt()) {
            // A close on another thread ended the call first and recorded it as cancelled: that outcome
            // stands, so the caller never holds a receipt the ledger does not have.
            InferenceException closed = new CancelledException("stream closed before its end", id, null, 0, null, null);
            ctx.failureReceipt(() -> receipt, x -> {}).ifPresent(closed::withPartialReceipt);
            throw closed;
        }
        record(receipt);
        return new ChatResponse(r.text(), r.toolCalls(), r.finishReason(), r.usage(), receipt);
    }

    private InferenceException fail(CallContext ctx, RuntimeException e) {
        return failWith(ctx, asInference(ctx, e), ctx.producedBeforeFailure(), ctx.takeMeter());
    }

    private InferenceException asInference(CallContext ctx, RuntimeException e) {
        InferenceException ie;
        if (e instanceof InferenceException) {
            ie = (InferenceException) e;
        } else if (ctx.isCancelled()) {
            ie = new CancelledException("call cancelled", id, null, 0, null, e);
        } else {
            ie = new InferenceException(
                    "unexpected " + e.getClass().getSimpleName() + " in provider", id, null, 0, null, e);
        }
        return ie;
    }

    /**
     * Records the failed call once, with what it produced before failing: a stream cut after N tokens
     * carries those tokens (the server's count, or an estimate marked as such) and is charged for them, as
     * platforms bill them.
     */
    private InferenceException failWith(CallContext ctx, InferenceException ie, ProviderResult sofar, CallMeter meter) {
        if (ie.partialReceipt().isEmpty()) {
            // Shared by every thread that reports this failure (a reader and a closer): built and recorded
            // once, attached to each exception.
            ctx.failureReceipt(() -> receipt(ctx, sofar, Optional.empty(), ie, meter), this::record)
                    .ifPresent(ie::withPartialReceipt);
        }
        // The call's occupancy ends however it ended (a receipt that came with the exception included).
        endMeter(meter);
        return ie;
    }

    /**
     * The receipt of a call that produced {@code r} (for a failure, what it produced so far, or null).
     * Ends the call's occupancy: its share of instance time and its compute time are read here.
     */
    private Receipt receipt(
            CallContext ctx, ProviderResult r, Optional<Duration> ttft, InferenceException failure, CallMeter meter) {
        long now = time.nanoTime();
        Duration total = Duration.ofNanos(now - ctx.startNanos());
        Duration share = endMeter(meter);
        Usage usage = r == null ? Usage.ZERO : r.usage();
        String model = r == null || r.model().isEmpty() ? ctx.request().model().orElse("") : r.model();
        // Precedence: the result's own figure (never a partial result's, which may not cover every
        // attempt), then what the provider reported attempt by attempt (the only figure a failed call has),
        // then the client's occupancy meter for instance-priced capacity.
        Duration resultShare = failure == null && r != null ? r.instanceTime() : null;
        Duration reported = resultShare != null ? resultShare : ctx.reportedInstanceTime();
        Duration occupied = reported != null ? reported : share != null ? share : Duration.ZERO;
        boolean computeReported = r != null && r.computeTime() != null;
        Duration compute = computeReported ? r.computeTime() : measuredCompute(meter, now);
        long requestBytes = r == null ? 0 : r.requestBytes();
        long responseBytes = r == null ? 0 : r.responseBytes();
        Pricing.BillableUsage billable = new Pricing.BillableUsage(
                usage, compute, occupied, saturatedSum(requestBytes, responseBytes), computeReported);
        List<Attempt> attempts = ctx.attempts();
        if (failure != null && !attempts.isEmpty()) {
            // A stream fails after its attempt was recorded as opened: that attempt did not succeed.
            attempts = new ArrayList<>(attempts);
            Attempt last = attempts.get(attempts.size() - 1);
            if (last.outcome() == Attempt.Outcome.SUCCEEDED) {
                attempts.set(
                        attempts.size() - 1,
                        new Attempt(
                                last.providerId(),
                                last.endpoint(),
                                last.reason(),
                                failure instanceof CancelledException
                                        ? Attempt.Outcome.CANCELLED
                                        : Attempt.Outcome.FAILED,
                                last.duration(),
                                failure.getClass().getSimpleName() + ": " + failure.getMessage()));
            }
        }
        if (attempts.isEmpty()) {
            // The provider recorded no attempts of its own: the call itself is the one attempt.
            Attempt.Outcome outcome = failure == null
                    ? Attempt.Outcome.SUCCEEDED
                    : failure instanceof CancelledException ? Attempt.Outcome.CANCELLED : Attempt.Outcome.FAILED;
            String error = failure == null ? null : failure.getClass().getSimpleName() + ": " + failure.getMessage();
            attempts = List.of(new Attempt(id, "", ctx.route(), outcome, total, error));
        }
        return Receipt.builder()
                .providerId(id)
                .deploymentKind(kind)
                .model(model)
                .route(ctx.route())
                .attempts(attempts)
                .startedAt(ctx.startedAt())
                .totalTime(total)
                .timeToFirstToken(ttft)
                .computeTime(compute)
                .coldStart(r == null ? ColdStart.NONE : r.coldStart())
                .usage(usage)
                .instanceTime(occupied)
                .requestBytes(requestBytes)
                .responseBytes(responseBytes)
                .cost(pricing.costOf(billable))
                .costEstimated(pricing.isEstimate(billable))
                .sessionId(ctx.request().options().sessionId().orElse(null))
                .tags(ctx.request().options().tags())
                .attributes(r == null ? Map.of() : r.attributes())
                .build();
    }

    /**
     * The core's measure of the provider's work: from the start of its step to now, less the time the
     * reader held a stream; zero for a call whose step never started.
     */
    private static Duration measuredCompute(CallMeter meter, long now) {
        if (meter == null) {
            return Duration.ZERO;
        }
        long work = now - meter.startNanos - meter.heldNanos;
        return Duration.ofNanos(Math.max(0, work));
    }

    private static long saturatedSum(long a, long b) {
        long sum = a + b;
        return sum < 0 ? Long.MAX_VALUE : sum;
    }

    private void record(Receipt receipt) {
        if (lifetimes != null) {
            lifetimes.record(
                    receipt.startedAt(),
                    receipt.startedAt().plus(receipt.totalTime()),
                    receipt.coldStart().observed());
        }
        if (ledger != null) {
            ledger.record(receipt);
        }
    }

    /**
     * Records activity on this provider's capacity that is no call of the application's (a keep-warm ping):
     * under {@link Pricing.PerInstanceSecond} it keeps an instance alive in this client's estimate of live
     * instances and in the ledger's capacity report, as on the platform, at no cost of its own.
     */
    protected final void recordActivity(java.time.Instant start, java.time.Instant end) {
        if (lifetimes != null) {
            lifetimes.record(start, end, false);
        }
        if (ledger != null) {
            ledger.recordActivity(id, start, end);
        }
    }

    /** One call's metering: its occupancy ticket and the measure of the provider's work. */
    static final class CallMeter {
        /** Adds to {@link #heldNanos}; a field updater rather than an AtomicLong, one object less per call. */
        private static final AtomicLongFieldUpdater<CallMeter> HELD =
                AtomicLongFieldUpdater.newUpdater(CallMeter.class, "heldNanos");

        final OccupancyMeter.Ticket ticket;
        final long startNanos;
        /** How long a stream's reader held the stream between reads, which is not the provider's work. */
        volatile long heldNanos;

        CallMeter(OccupancyMeter.Ticket ticket, long startNanos) {
            this.ticket = ticket;
            this.startNanos = startNanos;
        }

        void addHeld(long nanos) {
            HELD.addAndGet(this, nanos);
        }
    }

    /**
     * The pull stream handed to callers: times the first token, measures how long the reader holds the
     * stream between reads, and builds the receipt at the end.
     */
    private final class ReceiptedStream extends PulledStream {
        private final CallContext ctx;
        private final ProviderStream source;
        private final CallMeter meter;
        private long firstChunkNanos;
        private long firstTextNanos;
        // When the last read returned (or the stream opened): the reader holds the stream from then until its
        // next read starts. Zero while a read is in progress and after the end.
        private final AtomicLong heldSince;

        ReceiptedStream(CallContext ctx, ProviderStream source, CallMeter meter) {
            this.ctx = ctx;
            this.source = source;
            this.meter = meter;
            this.heldSince = new AtomicLong(time.nanoTime());
        }

        /** The reader stops holding the stream: the time since the last read returned is not the provider's. */
        private void stopHolding() {
            long since = heldSince.getAndSet(0);
            if (since != 0 && meter != null) {
                meter.addHeld(Math.max(0, time.nanoTime() - since));
            }
        }

        @Override
        protected ChatChunk pull() {
            stopHolding();
            ChatChunk c;
            try {
                c = source.next();
            } catch (RuntimeException e) {
                end();
                source.close();
                throw failWith(ctx, asInference(ctx, e), partial(), meter);
            }
            long now = time.nanoTime();
            if (c != null) {
                if (firstChunkNanos == 0) {
                    firstChunkNanos = now;
                }
                if (firstTextNanos == 0 && !c.text().isEmpty()) {
                    firstTextNanos = now;
                }
                heldSince.set(now);
            }
            return c;
        }

        @Override
        protected ChatResponse finish() {
            ProviderResult r;
            try {
                r = source.result();
            } finally {
                source.close();
            }
            long first = firstTextNanos != 0 ? firstTextNanos : firstChunkNanos;
            Optional<Duration> ttft =
                    first == 0 ? Optional.empty() : Optional.of(Duration.ofNanos(first - ctx.startNanos()));
            return complete(ctx, r, ttft, meter);
        }

        @Override
        public void close() {
            if (isEnded()) {
                return;
            }
            stopHolding();
            // The failure is recorded before the stream is marked ended: a reader on another thread that
            // sees the end then finds the reason (and its receipt) in response(), never a bare "not read
            // to its end".
            recordFailure(failWith(
                    ctx,
                    new CancelledException("stream closed before its end", id, null, 0, null, null),
                    partial(),
                    meter));
            end();
            ctx.cancel();
            source.close();
        }

        /** What the stream assembled before it failed; null when the provider cannot say. */
        private ProviderResult partial() {
            try {
                return source.result();
            } catch (RuntimeException e) {
                return null;
            }
        }
    }
}
