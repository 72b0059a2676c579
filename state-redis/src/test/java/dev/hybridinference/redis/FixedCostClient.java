package dev.hybridinference.redis;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.Usage;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * An in-process member whose every call costs the same, priced with a per-request fee of that cost, so that
 * what a call is expected to cost before it runs is what it costs. A call can take a while, be held until
 * {@link #open()}, or fail; calls, keep-warm pings (with their times) and calls in flight are counted.
 */
final class FixedCostClient implements InferenceClient {
    private final String id;
    private final BigDecimal cost;
    private final AtomicInteger calls = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();
    final Queue<Instant> pings = new ConcurrentLinkedQueue<>();
    private volatile CountDownLatch gate = new CountDownLatch(0);
    volatile Duration latency = Duration.ZERO;
    volatile Supplier<InferenceException> failure = () -> null;
    /** Where ping times are read; null to date them now. */
    volatile java.time.Clock clock = java.time.Clock.systemUTC();

    FixedCostClient(String id, BigDecimal cost) {
        this.id = id;
        this.cost = cost;
    }

    /** Holds every call from now on until {@link #open()}. */
    FixedCostClient hold() {
        gate = new CountDownLatch(1);
        return this;
    }

    void open() {
        gate.countDown();
    }

    int calls() {
        return calls.get();
    }

    int inFlight() {
        return inFlight.get();
    }

    @Override
    public ChatResponse chat(ChatRequest request) {
        calls.incrementAndGet();
        if ("keep-warm".equals(request.options().tags().get("purpose"))) {
            pings.add(clock.instant());
        }
        inFlight.incrementAndGet();
        try {
            if (!gate.await(60, TimeUnit.SECONDS)) {
                throw new IllegalStateException("held for a minute");
            }
            if (!latency.isZero()) {
                Thread.sleep(latency.toMillis());
            }
            InferenceException e = failure.get();
            if (e != null) {
                throw e;
            }
            Receipt r = Receipt.builder()
                    .providerId(id)
                    .deploymentKind(DeploymentKind.SERVERLESS)
                    .model("fixed-1")
                    .attempt(new Attempt(id, "", "", Attempt.Outcome.SUCCEEDED, latency, null))
                    .startedAt(Instant.now())
                    .totalTime(latency)
                    .usage(new Usage(1, 1, 0))
                    .cost(cost)
                    .tags(request.options().tags())
                    .build();
            return new ChatResponse("from " + id, List.of(), FinishReason.STOP, new Usage(1, 1, 0), r);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    @Override
    public CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
        try {
            return CompletableFuture.completedFuture(chat(request));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    @Override
    public ChatStream stream(ChatRequest request) {
        throw new UnsupportedOperationException("no streams here");
    }

    @Override
    public Cancellable stream(ChatRequest request, StreamHandler handler) {
        throw new UnsupportedOperationException("no streams here");
    }

    @Override
    public ClientInfo info() {
        return new ClientInfo(
                id,
                "fixed",
                DeploymentKind.SERVERLESS,
                List.of("fixed-1"),
                new Pricing.PerComputeTime(BigDecimal.ZERO, null, null, cost));
    }

    @Override
    public void close() {}
}
