package dev.hybridinference.core.routing;

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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A member whose every answer costs the same, priced so that the cost expected before a call is that cost (a
 * per-request fee); a call can be held until {@link #open()} and made to fail. Counts calls, pings and calls in
 * flight.
 */
final class FixedCostMember implements InferenceClient {
    private final String id;
    private final BigDecimal cost;
    private final BigDecimal expected;
    private final AtomicInteger calls = new AtomicInteger();
    private final AtomicInteger pings = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile CountDownLatch gate = new CountDownLatch(0);
    volatile Supplier<InferenceException> failure = () -> null;

    FixedCostMember(String id, BigDecimal cost) {
        this(id, cost, cost);
    }

    /** A member whose calls cost {@code cost} but are priced to be expected at {@code expected}. */
    FixedCostMember(String id, BigDecimal cost, BigDecimal expected) {
        this.id = id;
        this.cost = cost;
        this.expected = expected;
    }

    /** Holds every call from now on until {@link #open()}. */
    FixedCostMember hold() {
        gate = new CountDownLatch(1);
        return this;
    }

    /** Lets held calls (and later ones) through. */
    void open() {
        gate.countDown();
    }

    int calls() {
        return calls.get();
    }

    int pings() {
        return pings.get();
    }

    int inFlight() {
        return inFlight.get();
    }

    @Override
    public ChatResponse chat(ChatRequest request) {
        calls.incrementAndGet();
        if ("keep-warm".equals(request.options().tags().get("purpose"))) {
            pings.incrementAndGet();
        }
        inFlight.incrementAndGet();
        try {
            if (!gate.await(20, TimeUnit.SECONDS)) {
                throw new IllegalStateException("held too long");
            }
            InferenceException e = failure.get();
            if (e != null) {
                throw e;
            }
            Receipt r = Receipt.builder()
                    .providerId(id)
                    .deploymentKind(DeploymentKind.SERVERLESS)
                    .model("fixed-1")
                    .attempt(new Attempt(id, "", "", Attempt.Outcome.SUCCEEDED, Duration.ZERO, null))
                    .startedAt(Instant.EPOCH)
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
                new Pricing.PerComputeTime(BigDecimal.ZERO, null, null, expected));
    }

    @Override
    public void close() {}
}
