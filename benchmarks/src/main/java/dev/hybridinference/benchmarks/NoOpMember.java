package dev.hybridinference.benchmarks;

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
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.Usage;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A member that does no work: it returns a prepared answer (or throws a prepared retryable error), so
 * that a benchmark over it measures only the composite client's routing and bookkeeping.
 */
final class NoOpMember implements InferenceClient {
    private final ClientInfo info;
    private final ChatResponse answer;
    private final boolean fail;

    NoOpMember(String id, Pricing pricing, boolean fail) {
        this.info = new ClientInfo(id, "noop", DeploymentKind.SERVER, List.of("m"), pricing);
        Receipt r = Receipt.builder()
                .providerId(id)
                .deploymentKind(DeploymentKind.SERVER)
                .model("m")
                .attempt(new Attempt(id, "", "", Attempt.Outcome.SUCCEEDED, Duration.ofNanos(1), null))
                .startedAt(Instant.EPOCH)
                .totalTime(Duration.ofNanos(1))
                .usage(new Usage(10, 5, 0))
                .cost(new BigDecimal("0.000001"))
                .build();
        this.answer = new ChatResponse("ok", List.of(), FinishReason.STOP, r.usage(), r);
        this.fail = fail;
    }

    @Override
    public ChatResponse chat(ChatRequest request) {
        if (fail) {
            throw new ProviderUnavailableException("down", info.id(), null, 503, null, null);
        }
        return answer;
    }

    @Override
    public CompletableFuture<ChatResponse> chatAsync(ChatRequest request) {
        return CompletableFuture.completedFuture(chat(request));
    }

    @Override
    public ChatStream stream(ChatRequest request) {
        throw new UnsupportedOperationException("not used by the benchmark");
    }

    @Override
    public Cancellable stream(ChatRequest request, StreamHandler handler) {
        throw new UnsupportedOperationException("not used by the benchmark");
    }

    @Override
    public ClientInfo info() {
        return info;
    }

    @Override
    public void close() {}
}
