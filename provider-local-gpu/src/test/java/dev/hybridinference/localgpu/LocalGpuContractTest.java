package dev.hybridinference.localgpu;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.RandomModels;
import dev.hybridinference.testkit.contract.ProviderContract;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * The provider contract for the local runtime, on a generated random-weight model. The model answers what
 * it computes, so the kit compares the modes with each other rather than with a scripted text. It raises
 * fewer error classes than a server: a request it cannot run (JSON formats, tools) and one that does not
 * fit its context; timeouts and cancellation are the kit's own tests. It has no connection to cut or close:
 * a stall is a long prompt, and "released" means the engine has stopped the cancelled work, which a
 * following call shows by answering well before that work could have ended.
 */
class LocalGpuContractTest extends ProviderContract {
    private static final int CONTEXT = 8192;
    /** About 6,000 tokens: far more work than any test waits for, on any machine. */
    private static final String LONG_PROMPT = "Hello world ".repeat(600);
    /** A following call answers within this unless the engine is still busy with the stalled call. */
    private static final Duration RELEASED_WITHIN = Duration.ofSeconds(10);

    private static final Pricing PRICING = new Pricing.Amortized(new BigDecimal("3.60"));

    private static Path dir;
    private static Path model;

    @BeforeAll
    static void writeModel() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        dir = Files.createTempDirectory("local-gpu-contract");
        model = dir.resolve("contract.gguf");
        RandomModels.write(
                model, new RandomModels.Shape("llama", 384, 4, 6, 2, 1024, CONTEXT, 300, true), GgufWriter.Q8_0, 5);
    }

    @AfterAll
    static void deleteModel() throws IOException {
        if (model != null) {
            Files.deleteIfExists(model);
            Files.deleteIfExists(dir);
        }
    }

    @Override
    protected InferenceClient newClient(CostLedger ledger) {
        return LocalGpuClient.builder()
                .device("cpu")
                .id("local-contract")
                .modelPath(model)
                .threads(1)
                .contextSize(CONTEXT)
                .amortizedPerHour(new BigDecimal("3.60"))
                .ledger(ledger)
                .build();
    }

    @Override
    protected String providerId() {
        return "local-contract";
    }

    @Override
    protected Pricing pricing() {
        return PRICING;
    }

    @Override
    protected String expectedModel() {
        return "random-llama-384x4";
    }

    @Override
    protected Set<Capability> capabilities() {
        return EnumSet.of(Capability.STALL);
    }

    @Override
    protected ChatRequest answering(String text) {
        // Greedy sampling: the same request gets the same answer in every mode.
        return ChatRequest.builder().user("Tell me a story").maxTokens(12).build();
    }

    @Override
    protected Set<Class<? extends InferenceException>> errorClasses() {
        return new LinkedHashSet<>(List.of(InvalidRequestException.class, ContextLengthExceededException.class));
    }

    @Override
    protected ChatRequest failingWith(Class<? extends InferenceException> error) {
        if (error == InvalidRequestException.class) {
            return ChatRequest.builder()
                    .user("answer in JSON")
                    .responseFormat(ResponseFormat.JSON_OBJECT)
                    .build();
        }
        if (error == ContextLengthExceededException.class) {
            return ChatRequest.builder().user("hi").maxTokens(CONTEXT + 1).build();
        }
        throw new IllegalArgumentException("no way to provoke " + error);
    }

    @Override
    protected ChatRequest stalling() {
        return ChatRequest.builder().user(LONG_PROMPT).maxTokens(1000).build();
    }

    @Override
    protected void awaitStalled() throws InterruptedException {
        // The engine picks the call up at once; give it the moment to be inside the prompt.
        Thread.sleep(100);
    }

    @Override
    protected boolean released(InferenceClient client, Duration within) throws InterruptedException {
        return super.released(client, RELEASED_WITHIN);
    }
}
