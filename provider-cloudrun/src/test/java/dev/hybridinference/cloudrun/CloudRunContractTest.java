package dev.hybridinference.cloudrun;

import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ColdStartTimeoutException;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.cloudrun.CloudRunEmulator;
import dev.hybridinference.testkit.cloudrun.GoogleTokenServer;
import dev.hybridinference.testkit.contract.ProviderContract;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** The provider contract for Cloud Run, against the emulator with ID tokens from a generated service account key. */
class CloudRunContractTest extends ProviderContract {
    private static final Pricing PRICING =
            Pricing.PerInstanceSecond.perSecond(new BigDecimal("0.000187"), 1, Duration.ofMinutes(15), 5);

    private GoogleTokenServer tokens;
    private CloudRunEmulator emulator;
    private Path key;
    private long stalls;

    @Override
    protected void startBackend() throws Exception {
        tokens = GoogleTokenServer.start(0);
        key = Files.createTempFile("sa", ".json");
        Files.writeString(key, tokens.serviceAccountKeyJson("contract@project.iam.gserviceaccount.com"));
        emulator = CloudRunEmulator.builder()
                .requireIdToken(tokens)
                .model("contract-model")
                .minInstances(1)
                .start();
        stalls = 0;
    }

    @Override
    protected void stopBackend() throws Exception {
        emulator.close();
        tokens.close();
        Files.deleteIfExists(key);
    }

    @Override
    protected InferenceClient newClient(CostLedger ledger) {
        return CloudRunClient.builder()
                .id("run-contract")
                .serviceUrl(emulator.url())
                .serviceAccountKey(key)
                .model("contract-model")
                .minInstances(1)
                .pricing(PRICING)
                .ledger(ledger)
                .build();
    }

    @Override
    protected String providerId() {
        return "run-contract";
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
                ColdStartTimeoutException.class,
                ProviderUnavailableException.class,
                MalformedResponseException.class));
    }

    @Override
    protected ChatRequest failingWith(Class<? extends InferenceException> error) {
        if (error == AuthenticationException.class) {
            emulator.failNext(403, "{\"error\":{\"message\":\"Forbidden\",\"code\":403}}");
        } else if (error == InvalidRequestException.class) {
            emulator.failNext(
                    400, "{\"object\":\"error\",\"message\":\"temperature must be non-negative\",\"code\":400}");
        } else if (error == ContextLengthExceededException.class) {
            emulator.failNext(
                    400,
                    "{\"object\":\"error\",\"message\":\"This model's maximum context length is 8192 tokens.\",\"code\":400}");
        } else if (error == ColdStartTimeoutException.class) {
            emulator.failNext(429, "Rate exceeded.");
        } else if (error == ProviderUnavailableException.class) {
            emulator.failNext(502, "{\"error\":{\"message\":\"bad gateway\"}}");
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
