package dev.hybridinference.vllm;

import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ContentFilteredException;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import dev.hybridinference.testkit.contract.ProviderContract;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The provider contract for vLLM, against the in-process OpenAI-compatible server: scripted answers,
 * error responses, stalls whose disconnect the server sees, and streams cut mid-answer.
 */
class VllmContractTest extends ProviderContract {
    private static final String MODEL = "contract-model";
    private static final Pricing PRICING = new Pricing.PerToken(new BigDecimal("0.50"), new BigDecimal("1.50"), null);

    private OpenAiCompatibleServer server;
    private long stalls;

    @Override
    protected void startBackend() {
        server = OpenAiCompatibleServer.builder().model(MODEL).start();
        stalls = 0;
    }

    @Override
    protected void stopBackend() {
        server.close();
    }

    @Override
    protected InferenceClient newClient(CostLedger ledger) {
        return VllmClient.builder()
                .id("vllm-contract")
                .baseUrl(server.baseUrl())
                .model(MODEL)
                .scrapeInterval(Duration.ZERO)
                .pricing(PRICING)
                .ledger(ledger)
                .build();
    }

    @Override
    protected String providerId() {
        return "vllm-contract";
    }

    @Override
    protected Pricing pricing() {
        return PRICING;
    }

    @Override
    protected String expectedModel() {
        return MODEL;
    }

    @Override
    protected ChatRequest answering(String text) {
        server.answerNext(text);
        return ChatRequest.of("say something");
    }

    @Override
    protected Set<Class<? extends InferenceException>> errorClasses() {
        return new LinkedHashSet<>(List.of(
                RateLimitedException.class,
                AuthenticationException.class,
                InvalidRequestException.class,
                ContextLengthExceededException.class,
                ContentFilteredException.class,
                ProviderUnavailableException.class,
                MalformedResponseException.class,
                InferenceTimeoutException.class));
    }

    @Override
    protected ChatRequest failingWith(Class<? extends InferenceException> error) {
        if (error == RateLimitedException.class) {
            server.failNext(429, errorBody("too many requests", "RateLimitError", "429"), Map.of("Retry-After", "2"));
        } else if (error == AuthenticationException.class) {
            server.failNext(401, errorBody("invalid api key", "AuthenticationError", "401"), Map.of());
        } else if (error == InvalidRequestException.class) {
            server.failNext(400, errorBody("temperature must be non-negative", "BadRequestError", "400"), Map.of());
        } else if (error == ContextLengthExceededException.class) {
            server.failNext(
                    400,
                    errorBody(
                            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
                            "BadRequestError",
                            "400"),
                    Map.of());
        } else if (error == ContentFilteredException.class) {
            server.failNext(
                    400, errorBody("the prompt was filtered", "invalid_request_error", "content_filter"), Map.of());
        } else if (error == ProviderUnavailableException.class) {
            server.failNext(503, errorBody("engine is not healthy", "ServiceUnavailableError", "503"), Map.of());
        } else if (error == MalformedResponseException.class) {
            server.failNext(200, "{\"choices\": [ this is not JSON", Map.of());
        } else if (error == InferenceTimeoutException.class) {
            server.failNext(408, errorBody("request timed out", "TimeoutError", "408"), Map.of());
        } else {
            throw new IllegalArgumentException("no script for " + error);
        }
        return ChatRequest.of("fail please");
    }

    private static String errorBody(String message, String type, String code) {
        return "{\"error\":{\"message\":\"" + message + "\",\"type\":\"" + type + "\",\"param\":null,\"code\":\"" + code
                + "\"}}";
    }

    @Override
    protected ChatRequest stalling() {
        stalls++;
        server.stallNext();
        return ChatRequest.of("wait for it");
    }

    @Override
    protected void awaitStalled() {
        awaitTrue(() -> server.stallsStarted() >= stalls, "the server holds the stalled call");
    }

    @Override
    protected ChatRequest cutAfter(int chunks) {
        server.cutNextAfter(chunks);
        return ChatRequest.of("cut me off");
    }

    @Override
    protected boolean released(InferenceClient client, Duration within) {
        awaitTrue(() -> server.disconnects() >= stalls, "the server saw every stalled connection close");
        return server.stalledNow() == 0;
    }
}
