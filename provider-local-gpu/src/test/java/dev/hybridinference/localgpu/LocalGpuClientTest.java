package dev.hybridinference.localgpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.RequestOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The local-gpu provider end to end on the tiny llama fixture (random weights: the text is gibberish), on the
 * CPU backend on every machine; LocalGpuCudaTest covers a CUDA device.
 */
@Timeout(120)
class LocalGpuClientTest {
    static Path model;
    static LocalGpuClient client;

    @BeforeAll
    static void load() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        model = Fixtures.file("tiny-f32.gguf");
        client = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(model)
                .threads(2)
                .contextSize(128)
                .maxSessions(2)
                // Calls without a session here compute their whole prompts, as the tests count on.
                .reusePrefixes(false)
                .build();
    }

    @AfterAll
    static void close() {
        if (client != null) {
            client.close();
        }
    }

    private static ChatRequest ask(String text, int maxTokens) {
        return ChatRequest.builder().user(text).maxTokens(maxTokens).build();
    }

    @Test
    void greedyChatIsDeterministicAndReportsUsage() {
        ChatResponse a = client.chat(ask("Hello world", 8));
        ChatResponse b = client.chat(ask("Hello world", 8));
        assertThat(a.text()).isEqualTo(b.text());
        assertThat(a.usage().outputTokens()).isLessThanOrEqualTo(8);
        assertThat(a.usage().inputTokens()).isPositive();
        assertThat(a.finishReason()).isIn(FinishReason.LENGTH, FinishReason.STOP);
        assertThat(a.receipt().deploymentKind()).isEqualTo(DeploymentKind.LOCAL);
        assertThat(a.receipt().cost()).isZero();
        // Compute is the call's share of the engine's steps, within the span from its first step to its last.
        assertThat(a.receipt().computeTime())
                .isPositive()
                .isLessThanOrEqualTo(a.receipt().instanceTime());
        assertThat(a.receipt().instanceTime()).isLessThanOrEqualTo(a.receipt().totalTime());
        assertThat(a.receipt().attributes()).containsEntry("device", "cpu").containsEntry("backend", "cpu");
    }

    @Test
    void seededSamplingIsReproducible() {
        ChatRequest r = ChatRequest.builder()
                .user("Hello")
                .maxTokens(12)
                .temperature(1.0)
                .seed(7)
                .build();
        assertThat(client.chat(r).text()).isEqualTo(client.chat(r).text());
    }

    @Test
    void streamingGivesTheSameTextAsABlockingCall() {
        String blocking = client.chat(ask("the world", 10)).text();
        StringBuilder streamed = new StringBuilder();
        try (ChatStream s = client.stream(ask("the world", 10))) {
            for (ChatChunk c : s) {
                streamed.append(c.text());
            }
            assertThat(s.response().text()).isEqualTo(blocking);
            assertThat(s.response().receipt().timeToFirstToken()).isPresent();
        }
        assertThat(streamed.toString()).isEqualTo(blocking);
    }

    @Test
    void aFollowUpTurnReusesTheSessionsCacheAndAnswersTheSame() {
        RequestOptions session = RequestOptions.builder().sessionId("conv-1").build();
        ChatRequest first = ChatRequest.builder()
                .user("Hello world")
                .maxTokens(6)
                .options(session)
                .build();
        ChatResponse r1 = client.chat(first);
        ChatRequest second = first.toBuilder()
                .addMessage(Message.assistant(r1.text()))
                .addMessage(Message.user("and the rest"))
                .build();
        ChatResponse withCache = client.chat(second);
        assertThat(withCache.usage().cachedInputTokens()).isPositive();
        ChatResponse fresh =
                client.chat(second.toBuilder().options(RequestOptions.DEFAULTS).build());
        assertThat(fresh.usage().cachedInputTokens()).isZero();
        assertThat(withCache.text()).isEqualTo(fresh.text());
    }

    @Test
    void stopSequencesEndTheAnswer() {
        String full = client.chat(ask("Hello world", 16)).text();
        assumeTrue(full.length() > 4, "the model produced too little text to cut");
        String stop = full.substring(2, 4);
        ChatResponse r = client.chat(ChatRequest.builder()
                .user("Hello world")
                .maxTokens(16)
                .stop(stop)
                .build());
        assertThat(r.text()).isEqualTo(full.substring(0, full.indexOf(stop)));
        assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
    }

    @Test
    void aPromptPastTheContextIsRefused() {
        assertThatThrownBy(() -> client.chat(ask("Hello world ".repeat(100), 8)))
                .isInstanceOf(ContextLengthExceededException.class)
                .hasMessageContaining("exceeds the context of 128 tokens");
        assertThatThrownBy(() -> client.chat(ask("Hello", 500))).isInstanceOf(ContextLengthExceededException.class);
    }

    @Test
    void theProviderIsConfiguredByType() {
        String yaml = "providers:\n  local:\n    type: local-gpu\n    modelPath: \"" + model + "\"\n    threads: 1\n"
                + "    contextSize: 64\n    minP: 0.05\n    repetitionPenalty: 1.1\n"
                + "    pricing: {type: amortized, perHour: 0.36}\n";
        try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
            assertThat(c).isInstanceOf(LocalGpuClient.class);
            assertThat(c.info().deploymentKind()).isEqualTo(DeploymentKind.LOCAL);
            assertThat(c.chat(ask("Hello", 4)).receipt().cost()).isPositive();
        }
        // A CUDA ordinal past the devices this machine has is refused at the key, naming what was seen.
        String missing = "cuda:" + LocalRuntime.cudaDevices().size();
        assertThatThrownBy(() -> InferenceClients.loader()
                        .env(Map.of())
                        .load("providers:\n  local: {type: local-gpu, modelPath: \"" + model + "\", device: \""
                                + missing + "\"}\n"))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageStartingWith(
                        "providers.local.device: device " + missing + ": no such CUDA device; devices seen: ")
                .hasMessageEndingWith("; use auto or cpu");
        assertThatThrownBy(() -> InferenceClients.fromConfig(
                        "providers:\n  local: {type: local-gpu, modelPath: /no/such.gguf}\n"))
                .hasMessage("providers.local.modelPath: no model file at /no/such.gguf");
        assertThatThrownBy(() -> InferenceClients.fromConfig("providers:\n  local: {type: local-gpu, modelPath: \""
                        + model + "\", repetitionPenalty: 0.5}\n"))
                .isInstanceOf(ConfigurationException.class)
                .hasMessage("providers.local: repetitionPenalty must be at least 1, got 0.5");
    }

    @Test
    void batchingAndTheKvCacheTypeAreConfigured() {
        String yaml = "providers:\n  local:\n    type: local-gpu\n    modelPath: \"" + model + "\"\n    threads: 1\n"
                + "    contextSize: 64\n    maxBatch: 4\n    kvCacheType: f16\n";
        try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
            ChatResponse r = c.chat(ask("Hello", 4));
            assertThat(r.usage().inputTokens()).isPositive();
        }
        assertThatThrownBy(() -> InferenceClients.loader()
                        .env(Map.of())
                        .load("providers:\n  local: {type: local-gpu, modelPath: \"" + model
                                + "\", kvCacheType: q8}\n"))
                .isInstanceOf(ConfigurationException.class)
                .hasMessage("providers.local.kvCacheType: expected f32 or f16, got \"q8\"");
        assertThatThrownBy(() -> InferenceClients.loader()
                        .env(Map.of())
                        .load("providers:\n  local: {type: local-gpu, modelPath: \"" + model + "\", maxBatch: 0}\n"))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageContaining("maxBatch");
        assertThatThrownBy(() -> LocalGpuClient.builder().device("cpu").maxBatch(65))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxBatch must be between 1 and 64, got 65");
        assertThat(KvCacheType.of("F16")).isEqualTo(KvCacheType.F16);
        assertThatThrownBy(() -> KvCacheType.of("bf16")).hasMessage("kvCacheType must be f32 or f16, got \"bf16\"");
    }

    @Test
    void precisionIsConfiguredAsFastOrExact() {
        for (String p : new String[] {"fast", "exact"}) {
            String yaml = "providers:\n  local: {type: local-gpu, modelPath: \"" + model + "\", threads: 1, precision: "
                    + p + ", contextSize: 64}\n";
            try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
                assertThat(c.chat(ask("Hello", 2)).text()).isNotNull();
            }
        }
        assertThatThrownBy(() -> InferenceClients.fromConfig(
                        "providers:\n  local: {type: local-gpu, modelPath: \"" + model + "\", precision: double}\n"))
                .isInstanceOf(ConfigurationException.class)
                .hasMessage("providers.local.precision: expected exact or fast, got \"double\"");
        assertThat(Precision.parse("exact")).isEqualTo(Precision.EXACT);
        assertThatThrownBy(() -> LocalGpuClient.builder().device("cpu").precision(null))
                .isInstanceOf(NullPointerException.class);
    }

    @Test
    void prefixReuseIsConfiguredAsABoolean() {
        String yaml = "providers:\n  local: {type: local-gpu, modelPath: \"" + model
                + "\", threads: 1, contextSize: 64, reusePrefixes: false}\n";
        try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
            c.chat(ask("Hello world", 2));
            assertThat(c.chat(ask("Hello world", 2)).usage().cachedInputTokens())
                    .isZero();
        }
        try (InferenceClient c = InferenceClients.fromConfig(yaml.replace("false", "true"))) {
            c.chat(ask("Hello world", 2));
            assertThat(c.chat(ask("Hello world", 2)).usage().cachedInputTokens())
                    .isPositive();
        }
        assertThatThrownBy(() -> InferenceClients.fromConfig(yaml.replace("false", "sometimes")))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageStartingWith("providers.local.reusePrefixes");
    }

    @Test
    void concurrentCallsDoNotDisturbEachOther() throws Exception {
        // The calls are batched together, each on a scratch KV cache of its own: a cache shared by two
        // calls at once would corrupt their answers, so equal answers show that each had its own.
        String expected = client.chat(ask("the world", 12)).text();
        java.util.List<java.util.concurrent.CompletableFuture<ChatResponse>> calls = new java.util.ArrayList<>();
        for (int i = 0; i < 8; i++) {
            calls.add(client.chatAsync(ask("the world", 12)));
        }
        for (var f : calls) {
            assertThat(f.get().text()).isEqualTo(expected);
        }
    }

    @Test
    void aChatMlModelWithByteLevelBpeStopsAtItsEndOfTurnToken(@org.junit.jupiter.api.io.TempDir Path dir)
            throws IOException {
        Path qwen = dir.resolve("qwen2.gguf");
        dev.hybridinference.localgpu.internal.RandomModels.write(
                qwen,
                new dev.hybridinference.localgpu.internal.RandomModels.Shape(
                        "qwen2", 256, 2, 4, 2, 512, 256, 300, false),
                dev.hybridinference.localgpu.internal.GgufWriter.Q8_0,
                5);
        try (LocalGpuClient c = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(qwen)
                .threads(2)
                .contextSize(256)
                .build()) {
            assertThat(c.chatTemplate()).isEqualTo("chatml");
            ChatResponse r = c.chat(ChatRequest.builder()
                    .system("Be brief.")
                    .user("hello there")
                    .maxTokens(24)
                    .build());
            assertThat(r.usage().inputTokens()).isPositive();
            assertThat(r.usage().outputTokens()).isBetween(0L, 24L);
            assertThat(r.text()).doesNotContain("<|im_end|>").doesNotContain("<|im_start|>");
            assertThat(c.info().models()).containsExactly("random-qwen2-256x2");
        }
    }

    @Test
    void moreThreadsThanProcessorsAreCutToTheProcessorsWithAWarning() {
        int processors = Runtime.getRuntime().availableProcessors();
        try (dev.hybridinference.testkit.LogCapture log = dev.hybridinference.testkit.LogCapture.start();
                LocalGpuClient c = LocalGpuClient.builder()
                        .device("cpu")
                        .modelPath(model)
                        .threads(processors + 3)
                        .contextSize(64)
                        .build()) {
            assertThat(c.info().attributes()).containsEntry("threads", Integer.toString(processors));
            assertThat(String.join("", log.lines(java.util.logging.Level.WARNING)))
                    .contains("threads " + (processors + 3) + " is more than the " + processors + " processors");
            assertThat(c.chat(ask("Hello", 2)).usage().inputTokens()).isPositive();
        }
        assertThat(client.info().attributes()).containsEntry("threads", Integer.toString(Math.min(2, processors)));
    }

    @Test
    void toolsAndJsonFormatsAreRefusedRatherThanIgnored() {
        assertThatThrownBy(() -> client.chat(ChatRequest.builder()
                        .user("weather?")
                        .addTool(new dev.hybridinference.core.ToolDefinition("weather", "", "{\"type\":\"object\"}"))
                        .build()))
                .isInstanceOf(dev.hybridinference.core.InvalidRequestException.class)
                .hasMessageContaining("tool calling is not supported");
        assertThatThrownBy(() -> client.chat(ChatRequest.builder()
                        .user("json please")
                        .responseFormat(dev.hybridinference.core.ResponseFormat.JSON_OBJECT)
                        .build()))
                .isInstanceOf(dev.hybridinference.core.InvalidRequestException.class);
    }
}
