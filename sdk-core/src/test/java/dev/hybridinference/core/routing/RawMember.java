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
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.internal.Streams;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A member written straight against {@link InferenceClient}, without the shared provider flow, so that it
 * can misbehave the way third-party members do: each call runs {@link #behaviour}, which answers with a
 * text or throws anything at all, an {@link IllegalStateException} or an {@link Error} included.
 */
final class RawMember implements InferenceClient {
    private final String id;
    private final AtomicInteger calls = new AtomicInteger();
    volatile Supplier<String> behaviour;
    /** Adds facts to each receipt, as a provider that reports more would. */
    volatile java.util.function.UnaryOperator<Receipt.Builder> extra = b -> b;

    RawMember(String id) {
        this.id = id;
        this.behaviour = () -> "from " + id;
    }

    int calls() {
        return calls.get();
    }

    private ChatResponse answer() {
        calls.incrementAndGet();
        String text = behaviour.get();
        Receipt.Builder r = Receipt.builder()
                .providerId(id)
                .deploymentKind(DeploymentKind.SERVER)
                .model("raw-1")
                .attempt(new Attempt(id, "", "", Attempt.Outcome.SUCCEEDED, Duration.ZERO, null))
                .startedAt(Instant.now())
                .usage(new Usage(1, 1, 0));
        r = extra.apply(r);
        return new ChatResponse(text, List.of(), FinishReason.STOP, new Usage(1, 1, 0), r.build());
    }

    @Override
    public ChatResponse chat(ChatRequest request) {
        return answer();
    }

    @Override
    public CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
        try {
            return CompletableFuture.completedFuture(answer());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    @Override
    public ChatStream stream(ChatRequest request) {
        ChatResponse r = answer();
        return new ChatStream() {
            private boolean sent;

            @Override
            public boolean hasNext() {
                return !sent;
            }

            @Override
            public dev.hybridinference.core.ChatChunk next() {
                sent = true;
                return new dev.hybridinference.core.ChatChunk(r.text(), FinishReason.STOP);
            }

            @Override
            public ChatResponse response() {
                return r;
            }

            @Override
            public void close() {}
        };
    }

    @Override
    public Cancellable stream(ChatRequest request, StreamHandler handler) {
        return Streams.push(() -> stream(request), handler, Runnable::run, id);
    }

    @Override
    public ClientInfo info() {
        return new ClientInfo(id, "raw", DeploymentKind.SERVER, List.of("raw-1"), Pricing.FREE);
    }

    @Override
    public void close() {}
}
