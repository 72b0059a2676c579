package dev.hybridinference.azure;

import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.azure.AzureEmulator;
import dev.hybridinference.testkit.contract.ProviderContract;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** The provider contract for Azure against the emulator, over HTTPS with its test certificate; one subclass per route. */
abstract class AzureContract extends ProviderContract {
    static final String KEY = "contract-key-3f9a1c";
    private static final Pricing PRICING = new Pricing.PerToken(new BigDecimal("0.30"), new BigDecimal("0.61"), null);

    AzureEmulator emulator;
    private long stalls;

    /** The route under test. */
    abstract AzureClient.Api api();

    /** The endpoint the route is configured with. */
    abstract String endpoint();

    @Override
    protected void startBackend() {
        emulator =
                AzureEmulator.builder().apiKey(KEY).deployment("contract-model").start();
        stalls = 0;
    }

    @Override
    protected void stopBackend() {
        emulator.close();
    }

    @Override
    protected InferenceClient newClient(CostLedger ledger) {
        return AzureClient.builder()
                .id(providerId())
                .api(api())
                .endpoint(endpoint())
                .apiKey(KEY)
                .model("contract-model")
                .trust(emulator.clientTrustManager())
                .pricing(PRICING)
                .ledger(ledger)
                .build();
    }

    @Override
    protected Pricing pricing() {
        return PRICING;
    }

    @Override
    protected String expectedModel() {
        return "contract-model";
    }

    @Override
    protected ChatRequest answering(String text) {
        emulator.answerNext(text);
        return ChatRequest.of("say something");
    }

    @Override
    protected Set<Class<? extends InferenceException>> errorClasses() {
        return new LinkedHashSet<>(List.of(
                AuthenticationException.class,
                InvalidRequestException.class,
                ContextLengthExceededException.class,
                RateLimitedException.class,
                ProviderUnavailableException.class,
                MalformedResponseException.class));
    }

    @Override
    protected ChatRequest failingWith(Class<? extends InferenceException> error) {
        if (error == AuthenticationException.class) {
            emulator.failNext(401, "{\"error\":{\"code\":\"401\",\"message\":\"Access denied\"}}");
        } else if (error == InvalidRequestException.class) {
            emulator.failNext(400, "{\"error\":{\"code\":\"BadRequest\",\"message\":\"temperature out of range\"}}");
        } else if (error == ContextLengthExceededException.class) {
            emulator.failNext(
                    400,
                    "{\"error\":{\"code\":\"context_length_exceeded\",\"message\":\"This model's maximum context"
                            + " length is 8192 tokens.\"}}");
        } else if (error == RateLimitedException.class) {
            emulator.rateLimitNext(AzureEmulator.RetryHeader.RETRY_AFTER_MS, Duration.ofMillis(20));
        } else if (error == ProviderUnavailableException.class) {
            emulator.failNext(503, "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"try later\"}}");
        } else if (error == MalformedResponseException.class) {
            emulator.failNext(200, "{\"choices\": [ not json");
        } else {
            throw new IllegalArgumentException("no script for " + error);
        }
        return ChatRequest.of("fail please");
    }

    @Override
    protected ChatRequest stalling() {
        stalls++;
        emulator.stallNext();
        return ChatRequest.of("wait for it");
    }

    @Override
    protected void awaitStalled() {
        awaitTrue(() -> emulator.stallsStarted() >= stalls, "the emulator holds the stalled call");
    }

    @Override
    protected ChatRequest cutAfter(int chunks) {
        emulator.cutNextAfter(chunks);
        return ChatRequest.of("cut me off");
    }

    @Override
    protected boolean released(InferenceClient client, Duration within) {
        awaitTrue(() -> emulator.disconnects() >= stalls, "the emulator saw every stalled connection close");
        return emulator.stalledNow() == 0;
    }
}
