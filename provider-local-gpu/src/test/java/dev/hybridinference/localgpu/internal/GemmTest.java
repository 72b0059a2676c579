package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.localgpu.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A prompt evaluated in one call, where every projection multiplies a weight matrix with all the prompt's
 * vectors at once, against the same prompt fed one token at a time, where each weight row meets one vector:
 * for every weight type, prompt lengths that leave partial tiles, and thread counts that split the rows
 * alone or the rows and the vectors. F32 weights give the same floats either way (the batched product adds
 * its terms in the order the row dot does); the quantized types may differ in the rounding of their
 * dequantized weights, within 1e-4 of a logit. The module's build runs this once more with the portable
 * kernels forced and once with AVX-512 turned off.
 */
class GemmTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
    }

    @ParameterizedTest(name = "type {0}")
    @CsvSource({"0, 0", "1, 1e-4", "8, 1e-4", "12, 1e-4", "14, 1e-4"})
    void aWholePromptInOneCallMatchesOneTokenAtATime(int type, double tolerance) throws IOException {
        RandomModels.Shape shape = new RandomModels.Shape("llama", 256, 2, 4, 1, 512, 128, 300, false);
        Path file = dir.resolve("gemm-" + type + ".gguf");
        RandomModels.write(file, shape, type, 77 + type);
        // Two threads split the 64-row key and value projections by vectors as well as by rows.
        for (int threads : new int[] {1, 2}) {
            try (NativeModel m = NativeModel.load(file, threads, Precision.EXACT)) {
                int vocab = m.vocabSize();
                for (int n : new int[] {2, 3, 5, 8, 17, 64}) {
                    int[] tokens = new Random(n).ints(n, 0, vocab).toArray();
                    try (NativeModel.Session batch = m.newSession(n);
                            NativeModel.Session single = m.newSession(n)) {
                        float[] all = batch.eval(tokens, 0, true);
                        double worst = 0;
                        for (int pos = 0; pos < n; pos++) {
                            float[] one = single.eval(new int[] {tokens[pos]}, pos);
                            float[] row = Arrays.copyOfRange(all, pos * vocab, (pos + 1) * vocab);
                            if (tolerance == 0) {
                                assertThat(row)
                                        .as("logits at position %d of %d, %d threads", pos, n, threads)
                                        .containsExactly(one);
                            }
                            for (int v = 0; v < vocab; v++) {
                                worst = Math.max(worst, Math.abs(row[v] - one[v]));
                            }
                        }
                        assertThat(worst)
                                .as("largest logit difference, %d tokens, %d threads", n, threads)
                                .isLessThanOrEqualTo(tolerance);
                    }
                }
            }
        }
    }

    @Test
    void theKernelsInUseFollowTheProcessorAndTheEnvironment() throws IOException {
        String features = NativeModel.cpuFeatures();
        if ("1".equals(System.getenv("HYBRIDINFERENCE_PORTABLE_KERNELS"))) {
            assertThat(features).isEqualTo("portable");
        } else if (List.of("avx2", "avxvnni").contains(String.valueOf(System.getenv("HYBRIDINFERENCE_KERNELS")))) {
            assertThat(features).doesNotContain("avx512f");
        } else {
            Path cpuinfo = Path.of("/proc/cpuinfo");
            assumeTrue(Files.isReadable(cpuinfo), "no /proc/cpuinfo to compare with");
            List<String> flags = Files.readAllLines(cpuinfo).stream()
                    .filter(l -> l.startsWith("flags"))
                    .findFirst()
                    .map(l -> List.of(l.substring(l.indexOf(':') + 1).trim().split("\\s+")))
                    .orElse(List.of());
            boolean avx512 = flags.containsAll(List.of("avx2", "fma", "f16c", "avx512f"));
            assertThat(features.contains("avx512f")).as(features).isEqualTo(avx512);
        }
    }
}
