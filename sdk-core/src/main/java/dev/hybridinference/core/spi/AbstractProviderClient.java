package dev.hybridinference.core.spi;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.internal.LazyPool;
import dev.hybridinference.core.internal.PulledStream;
import dev.hybridinference.core.internal.Streams;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The flow every provider shares: it validates, times the call, runs the provider's one step ({@link
 * #doChat} or {@link #doStream}), builds the receipt with the cost under the provider's pricing, records
 * it in the ledger and turns any failure into an {@link InferenceException} carrying a partial receipt.
 * Providers implement the steps and never build receipts themselves.
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
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LazyPool pool;

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
        this.id = Objects.requireNonNull(id, "id");
        this.type = Objects.requireNonNull(type, "type");
        this.kind = Objects.requireNonNull(kind, "kind");
        this.pricing = Objects.requireNonNull(pricing, "pricing");
        this.ledger = ledger;
        this.clock = Objects.requireNonNull(clock, "clock");
        this.pool = new LazyPool(id);
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

    @Override
    public ClientInfo info() {
        return new ClientInfo(id, type, kind, models(), pricing);
    }

    @Override
    public final ChatResponse chat(ChatRequest request) {
        CallContext ctx = begin(request);
        try {
            return complete(ctx, doChat(request, ctx), Optional.empty());
        } catch (RuntimeException e) {
            throw fail(ctx, e);
        }
    }

    @Override
    public final CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
        CallContext ctx = begin(request);
        CompletableFuture<ChatResponse> future = new CompletableFuture<>();
        future.whenComplete((r, t) -> {
            if (future.isCancelled()) {
                ctx.cancel();
            }
        });
        executor().execute(() -> {
            try {
                future.complete(complete(ctx, doChat(request, ctx), Optional.empty()));
            } catch (RuntimeException e) {
                future.completeExceptionally(fail(ctx, e));
            }
        });
        return future;
    }

    @Override
    public final ChatStream stream(ChatRequest request) {
        return open(begin(request));
    }

    private ChatStream open(CallContext ctx) {
        ChatRequest request = ctx.request();
        ProviderStream ps;
        try {
            ps = doStream(request, ctx);
        } catch (RuntimeException e) {
            throw fail(ctx, e);
        }
        return new ReceiptedStream(ctx, ps);
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
        return new CallContext(id, request, clock);
    }

    private ExecutorService executor() {
        return pool.get();
    }

    private ChatResponse complete(CallContext ctx, ProviderResult r, Optional<Duration> ttft) {
        Receipt receipt = receipt(ctx, r.usage(), r.model(), r.coldStart(), r.instanceTime(), ttft, null);
        if (ctx.claimReceipt()) {
            record(receipt);
        }
        return new ChatResponse(r.text(), r.toolCalls(), r.finishReason(), r.usage(), receipt);
    }

    private InferenceException fail(CallContext ctx, RuntimeException e) {
        return failWith(ctx, asInference(ctx, e), null);
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
    private InferenceException failWith(CallContext ctx, InferenceException ie, ProviderResult sofar) {
        if (ie.partialReceipt().isEmpty()) {
            // Shared by every thread that reports this failure (a reader and a closer): built and recorded
            // once, attached to each exception.
            Usage usage = sofar == null ? Usage.ZERO : sofar.usage();
            String model = sofar == null || sofar.model().isEmpty()
                    ? ctx.request().model().orElse("")
                    : sofar.model();
            ctx.failureReceipt(() -> receipt(ctx, usage, model, null, null, Optional.empty(), ie), this::record)
                    .ifPresent(ie::withPartialReceipt);
        }
        return ie;
    }

    private Receipt receipt(
            CallContext ctx,
            Usage usage,
            String model,
            dev.hybridinference.core.ColdStart coldStart,
            Duration instanceTime,
            Optional<Duration> ttft,
            InferenceException failure) {
        Duration total = Duration.ofNanos(System.nanoTime() - ctx.startNanos());
        // Precedence: the result's own figure, then what the provider reported attempt by attempt (the
        // only figure a failed call has), then, for a provider with no meter, the call's whole duration.
        Duration occupied = instanceTime != null
                ? instanceTime
                : ctx.instanceTime()
                        .orElse(
                                pricing instanceof Pricing.PerInstanceHour || pricing instanceof Pricing.Amortized
                                        ? total
                                        : Duration.ZERO);
        var cost = pricing.costOf(new Pricing.BillableUsage(usage, total, occupied));
        List<Attempt> attempts = ctx.attempts();
        if (failure != null && !attempts.isEmpty()) {
            // A stream fails after its attempt was recorded as opened: that attempt did not succeed.
            attempts = new java.util.ArrayList<>(attempts);
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
        return new Receipt(
                id,
                kind,
                model,
                ctx.route(),
                attempts,
                ctx.startedAt(),
                total,
                ttft,
                Duration.ZERO,
                coldStart,
                usage,
                occupied,
                cost,
                ctx.request().options().sessionId().orElse(null),
                ctx.request().options().tags());
    }

    private void record(Receipt receipt) {
        if (ledger != null) {
            ledger.record(receipt);
        }
    }

    /** The pull stream handed to callers: times the first token and builds the receipt at the end. */
    private final class ReceiptedStream extends PulledStream {
        private final CallContext ctx;
        private final ProviderStream source;
        private long firstChunkNanos;
        private long firstTextNanos;

        ReceiptedStream(CallContext ctx, ProviderStream source) {
            this.ctx = ctx;
            this.source = source;
        }

        @Override
        protected ChatChunk pull() {
            ChatChunk c;
            try {
                c = source.next();
            } catch (RuntimeException e) {
                end();
                source.close();
                throw failWith(ctx, asInference(ctx, e), partial());
            }
            if (c != null) {
                long now = System.nanoTime();
                if (firstChunkNanos == 0) {
                    firstChunkNanos = now;
                }
                if (firstTextNanos == 0 && !c.text().isEmpty()) {
                    firstTextNanos = now;
                }
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
            return complete(ctx, r, ttft);
        }

        @Override
        public void close() {
            if (isEnded()) {
                return;
            }
            end();
            ctx.cancel();
            source.close();
            recordFailure(failWith(
                    ctx, new CancelledException("stream closed before its end", id, null, 0, null, null), partial()));
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
