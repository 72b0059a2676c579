package dev.hybridinference.sagemaker;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ColdStartTimeoutException;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.contract.ProviderContract;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator.Failure;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The provider contract for SageMaker, against the SageMaker Runtime emulator: real SigV4-signed requests
 * from the AWS SDK, the binary event stream for streams, SageMaker's error codes.
 */
class SageMakerContractTest extends ProviderContract {
    private static final Pricing PRICING = new Pricing.PerGbSecond(
            new BigDecimal("0.0000200"),
            new BigDecimal("2"),
            Duration.ofMillis(1),
            Duration.ZERO,
            new BigDecimal("0.016"));

    private SageMakerEmulator emulator;
    private long stalls;

    @Override
    protected void startBackend() {
        emulator = SageMakerEmulator.builder()
                .endpointName("contract-endpoint")
                .container(SageMakerEmulator.Container.MESSAGES_SSE)
                .start();
        stalls = 0;
    }

    @Override
    protected void stopBackend() {
        emulator.close();
    }

    @Override
    protected InferenceClient newClient(CostLedger ledger) {
        return SageMakerClient.builder()
                .id("sm-contract")
                .endpointName("contract-endpoint")
                .region("us-east-1")
                .endpointOverride(emulator.endpoint())
                .staticCredentials("AKIDEXAMPLE", "contract-secret-key", null)
                .deployment(SageMakerClient.Deployment.SERVERLESS)
                .model("contract-model")
                .pricing(PRICING)
                .ledger(ledger)
                .build();
    }

    @Override
    protected String providerId() {
        return "sm-contract";
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
                InvalidRequestException.class,
                ContextLengthExceededException.class,
                RateLimitedException.class,
                ColdStartTimeoutException.class,
                ProviderUnavailableException.class,
                MalformedResponseException.class));
    }

    @Override
    protected ChatRequest failingWith(Class<? extends InferenceException> error) {
        if (error == InvalidRequestException.class) {
            emulator.failNext(
                    Failure.validation("1 validation error detected: Value at 'body' failed to satisfy constraint"));
        } else if (error == ContextLengthExceededException.class) {
            emulator.failNext(
                    Failure.modelError(
                            400,
                            "{\"object\":\"error\",\"message\":\"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.\",\"code\":400}"));
        } else if (error == RateLimitedException.class) {
            emulator.failNext(
                    Failure.modelError(429, "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}"));
        } else if (error == ColdStartTimeoutException.class) {
            emulator.failNext(Failure.modelNotReady("Model is not ready yet"));
        } else if (error == ProviderUnavailableException.class) {
            emulator.failNext(Failure.serviceUnavailable("Service is unavailable"));
        } else if (error == MalformedResponseException.class) {
            emulator.corruptNextAfter(0);
            return ChatRequest.builder().user("corrupt").build();
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
        // The container's first event carries the assistant's role and no text.
        emulator.cutNextAfter(chunks + 1);
        return ChatRequest.of("cut me off");
    }

    @Override
    protected boolean released(InferenceClient client, Duration within) {
        awaitTrue(() -> emulator.disconnects() >= stalls, "the emulator saw every stalled connection close");
        return emulator.stalledNow() == 0;
    }
}
