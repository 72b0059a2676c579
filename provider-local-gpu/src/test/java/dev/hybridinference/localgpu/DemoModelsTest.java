package dev.hybridinference.localgpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The public random-weight demo model: a readable GGUF file, the same bytes for every write, and it runs. */
@Timeout(120)
class DemoModelsTest {
    @TempDir
    Path dir;

    @Test
    void writesTheSameReadableModelIntoADirectoryOrAFile() throws Exception {
        Path inDir = DemoModels.writeRandomModel(dir);
        Path named = DemoModels.writeRandomModel(dir.resolve("sub/other.gguf"));

        assertThat(inDir).isEqualTo(dir.resolve(DemoModels.RANDOM_MODEL_FILE));
        assertThat(Files.mismatch(inDir, named)).isEqualTo(-1L);
        GgufMetadata meta = GgufMetadata.read(inDir);
        assertThat(meta.string("general.architecture")).contains("llama");
        assertThat(meta.string("general.name")).contains(DemoModels.RANDOM_MODEL_NAME);
        assertThat(meta.integer("llama.context_length")).contains(4096L);
    }

    @Test
    void theLocalProviderServesIt() {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        Path file = DemoModels.writeRandomModel(dir);
        try (LocalGpuClient client = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(file)
                .threads(2)
                .contextSize(256)
                .build()) {
            ChatResponse r =
                    client.chat(ChatRequest.builder().user("Hello").maxTokens(6).build());
            assertThat(r.usage().outputTokens()).isBetween(1L, 6L);
            assertThat(r.receipt().model()).isEqualTo(DemoModels.RANDOM_MODEL_NAME);
        }
    }
}
