package dev.hybridinference.core.routing;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.TimeSource;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A provider on a {@link TimeSource} whose asynchronous step answers {@link #latency} later on that time,
 * without a thread: the answer is a task on the source's timer (or given at once for no latency). Each
 * call takes the next scripted failure, if any, else answers {@code "from <id>"} with 10 tokens in and 5
 * out. A cancel stops the pending task and fails the step with a {@link CancelledException}. Counts its
 * calls, the calls in flight, and calls that came through the blocking step, which it answers all the same.
 */
public final class VirtualMember extends AbstractProviderClient {
    private final ConcurrentLinkedQueue<Supplier<InferenceException>> failures = new ConcurrentLinkedQueue<>();
    private final List<ChatRequest> requests = Collections.synchronizedList(new ArrayList<>());
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger blockingCalls = new AtomicInteger();
    private final AtomicInteger cancelled = new AtomicInteger();
    private volatile Duration latency = Duration.ZERO;

    /**
     * A member of kind {@link DeploymentKind#SERVER}.
     *
     * @param ledger where it records its receipts, or null for none
     */
    public VirtualMember(String id, Pricing pricing, CostLedger ledger, TimeSource time) {
        super(id, "virtual", DeploymentKind.SERVER, pricing, ledger, time);
    }

    /** A member billed $1 per million tokens in and out. */
    public static VirtualMember perToken(String id, CostLedger ledger, TimeSource time) {
        return new VirtualMember(id, new Pricing.PerToken(BigDecimal.ONE, BigDecimal.ONE, null), ledger, time);
    }

    /** How long each call started from now on takes, in the source's time. */
    public VirtualMember latency(Duration latency) {
        this.latency = latency;
        return this;
    }

    /** The next call fails with what {@code failure} makes (a new exception per call). */
    public VirtualMember thenFail(Supplier<InferenceException> failure) {
        failures.add(failure);
        return this;
    }

    /** The next call fails as rate limited, asking to come back after {@code retryAfter}. */
    public VirtualMember thenRateLimited(Duration retryAfter) {
        return thenFail(() -> new RateLimitedException("slow down", id(), null, 429, retryAfter, null));
    }

    /** Calls that reached a step, blocking or not. */
    public int calls() {
        return requests.size();
    }

    /** The requests of every call, in order. */
    public List<ChatRequest> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    /** Calls whose answer is still pending. */
    public int inFlight() {
        return inFlight.get();
    }

    /** Calls that came through the blocking step rather than the asynchronous one. */
    public int blockingCalls() {
        return blockingCalls.get();
    }

    /** Pending calls stopped by a cancel. */
    public int cancelled() {
        return cancelled.get();
    }

    /** Whether it was closed. */
    public boolean closed() {
        return isClosed();
    }

    private ProviderResult result() {
        return ProviderResult.builder()
                .text("from " + id())
                .finishReason(FinishReason.STOP)
                .usage(new Usage(10, 5, 0))
                .model("model-" + id())
                .build();
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        blockingCalls.incrementAndGet();
        requests.add(request);
        Supplier<InferenceException> failure = failures.poll();
        if (failure != null) {
            throw failure.get();
        }
        return result();
    }

    @Override
    protected CompletableFuture<ProviderResult> doChatAsync(ChatRequest request, CallContext ctx) {
        requests.add(request);
        Supplier<InferenceException> failure = failures.poll();
        CompletableFuture<ProviderResult> f = new CompletableFuture<>();
        inFlight.incrementAndGet();
        Runnable finish = () -> {
            inFlight.decrementAndGet();
            if (failure != null) {
                f.completeExceptionally(failure.get());
            } else {
                f.complete(result());
            }
        };
        Duration d = latency;
        if (d.isZero()) {
            finish.run();
            return f;
        }
        TimeSource.Scheduled answer = time().schedule(d, finish);
        ctx.onCancel(() -> {
            if (answer.cancel()) {
                inFlight.decrementAndGet();
                cancelled.incrementAndGet();
                f.completeExceptionally(new CancelledException("cancelled", id(), null, 0, null, null));
            }
        });
        return f;
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        throw new UnsupportedOperationException("no streams here");
    }
}
