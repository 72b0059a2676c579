package dev.hybridinference.localgpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.CapacityExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The provider on a CUDA device: {@code auto} takes it, receipts and {@code info()} name it, greedy answers
 * are the CPU's, and a configuration whose caches cannot fit is refused before anything is allocated.
 * Needs a CUDA device; skips elsewhere with the runtime's reason.
 */
@Timeout(120)
class LocalGpuCudaTest {
    static Path model;

    @BeforeAll
    static void needsADevice() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        assumeTrue(
                !LocalRuntime.cudaDevices().isEmpty(),
                () -> "no CUDA device: " + LocalRuntime.cudaUnavailableReason().orElse("none seen"));
        model = Fixtures.file("tiny-f32.gguf");
    }

    private static ChatRequest ask(String text) {
        return ChatRequest.builder().user(text).maxTokens(12).build();
    }

    @Test
    void autoComputesOnTheFirstDeviceAndSaysSo() {
        CudaDevice first = LocalRuntime.cudaDevices().get(0);
        try (LocalGpuClient gpu = LocalGpuClient.builder()
                        .modelPath(model)
                        .contextSize(128)
                        .build();
                LocalGpuClient cpu = LocalGpuClient.builder()
                        .modelPath(model)
                        .device("cpu")
                        .precision(Precision.EXACT)
                        .threads(2)
                        .contextSize(128)
                        .build()) {
            assertThat(gpu.backend()).isEqualTo("cuda");
            assertThat(gpu.device()).isEqualTo(first.label());
            ChatResponse g = gpu.chat(ask("Hello world"));
            assertThat(g.receipt().attributes())
                    .containsEntry("backend", "cuda")
                    .containsEntry("device", first.label());
            assertThat(gpu.info().attributes()).containsEntry("device", first.label());
            assertThat(g.text()).isEqualTo(cpu.chat(ask("Hello world")).text());
        }
    }

    @Test
    void cachesThatCannotFitAreRefusedUpFront() {
        long before = LocalRuntime.cudaDevices().get(0).freeBytes();
        assertThatThrownBy(() -> LocalGpuClient.builder()
                        .modelPath(model)
                        .device("cuda:0")
                        .contextSize(1 << 20)
                        .maxSessions(1024)
                        .build())
                .isInstanceOf(CapacityExceededException.class)
                .hasMessageContaining("KV caches (maxSessions 1024 + maxBatch 8) of 1048576 tokens need");
        // The model's weights were loaded and freed again; no cache was allocated.
        assertThat(LocalRuntime.cudaDevices().get(0).freeBytes())
                .isCloseTo(before, org.assertj.core.data.Offset.offset(64L << 20));
    }
}
