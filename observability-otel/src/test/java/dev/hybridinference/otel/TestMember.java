package dev.hybridinference.otel;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.LoadAware;
import dev.hybridinference.core.LoadSnapshot;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An in-process member for the tests: each call takes the next scripted failure, or answers {@code "hello
 * world"} with 10 input and 5 output tokens from model {@code model-<id>}, through the shared provider flow
 * (so its receipts carry cost and attempts, the attempt at {@link #endpoint}). It reports a load whose
 * waiting queue a test sets, for spillover.
 */
final class TestMember extends AbstractProviderClient implements LoadAware {
    private final ConcurrentLinkedQueue<InferenceException> failures = new ConcurrentLinkedQueue<>();
    private final AtomicInteger calls = new AtomicInteger();
    private final String endpoint;
    private volatile double waiting;

    TestMember(String id, DeploymentKind kind, Pricing pricing, CostLedger ledger, String endpoint) {
        super(id, "test", kind, pricing, ledger, Clock.systemUTC());
        this.endpoint = endpoint;
    }

    /** A server member at {@code http://10.0.0.7:8000}, billed $1 in and $2 out per million tokens. */
    static TestMember perToken(String id) {
        return new TestMember(
                id,
                DeploymentKind.SERVER,
                new Pricing.PerToken(BigDecimal.ONE, new BigDecimal("2"), null),
                null,
                "http://10.0.0.7:8000/v1");
    }

    /** Queues a failure for the next call. */
    TestMember thenFail(InferenceException e) {
        failures.add(e);
        return this;
    }

    /** Sets the waiting queue its load reports. */
    TestMember waiting(double waiting) {
        this.waiting = waiting;
        return this;
    }

    int calls() {
        return calls.get();
    }

    @Override
    public LoadSnapshot load() {
        return new LoadSnapshot(0, 0, waiting, 0, 1, Instant.now());
    }

    private void step(CallContext ctx) {
        calls.incrementAndGet();
        InferenceException e = failures.poll();
        if (e != null) {
            ctx.addAttempt(new Attempt(id(), endpoint, "test", Attempt.Outcome.FAILED, Duration.ZERO, e.getMessage()));
            throw e;
        }
        ctx.addAttempt(new Attempt(id(), endpoint, "test", Attempt.Outcome.SUCCEEDED, Duration.ZERO, null));
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        step(ctx);
        return ProviderResult.builder()
                .text("hello world")
                .finishReason(FinishReason.STOP)
                .usage(new Usage(10, 5, 0))
                .model("model-" + id())
                .build();
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        step(ctx);
        String[] words = {"hello", " world"};
        return new ProviderStream() {
            private int i;

            @Override
            public ChatChunk next() {
                if (i == words.length) {
                    return null;
                }
                String w = words[i++];
                return new ChatChunk(w, i == words.length ? FinishReason.STOP : null);
            }

            @Override
            public ProviderResult result() {
                return ProviderResult.builder()
                        .text("hello world")
                        .finishReason(FinishReason.STOP)
                        .usage(new Usage(10, 5, 0))
                        .model("model-" + id())
                        .build();
            }

            @Override
            public void close() {}
        };
    }
}
