package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.localgpu.Fixtures;
import dev.hybridinference.localgpu.Precision;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The native forward pass against llama.cpp's logits for the same tiny random-weight models (an outside
 * oracle; see the fixtures' README): every position of prompt and greedy continuation, fed one token at a
 * time through the KV cache, within the README's tolerances, and the same greedy continuation.
 */
class LlamaCppOracleTest {
    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
    }

    static Path resource(String name) throws IOException {
        return Fixtures.file(name);
    }

    static int[] tokens(String model) throws IOException {
        for (String line : Files.readAllLines(resource(model + ".logits.txt"), StandardCharsets.UTF_8)) {
            if (line.startsWith("tokens: ")) {
                return Arrays.stream(line.substring(8).trim().split(","))
                        .mapToInt(Integer::parseInt)
                        .toArray();
            }
        }
        throw new AssertionError("no tokens line in " + model + ".logits.txt");
    }

    static float[] expected(String model) throws IOException {
        byte[] bytes = Files.readAllBytes(resource(model + ".logits.f32"));
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    static int argmax(float[] v, int from, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (v[from + i] > v[from + best]) {
                best = i;
            }
        }
        return best;
    }

    @ParameterizedTest(name = "{0} within {1}")
    @CsvSource({"tiny-f32, 2e-5", "tiny-tied-f32, 2e-5", "tiny-qwen2-f32, 2e-5", "tiny-f16, 3e-3"})
    void logitsMatchLlamaCpp(String model, double tolerance) throws IOException {
        int[] tokens = tokens(model);
        float[] want = expected(model);
        for (int threads : new int[] {1, 2}) {
            try (NativeModel m = NativeModel.load(resource(model + ".gguf"), threads, Precision.EXACT);
                    NativeModel.Session s = m.newSession(256)) {
                int vocab = m.vocabSize();
                assertThat(want.length).isEqualTo(tokens.length * vocab);
                double worst = 0;
                for (int pos = 0; pos < tokens.length; pos++) {
                    float[] got = s.eval(new int[] {tokens[pos]}, pos);
                    for (int v = 0; v < vocab; v++) {
                        worst = Math.max(worst, Math.abs(got[v] - want[pos * vocab + v]));
                    }
                    assertThat(argmax(got, 0, vocab))
                            .as("argmax at position " + pos)
                            .isEqualTo(argmax(want, pos * vocab, vocab));
                }
                assertThat(worst)
                        .as(model + " largest logit difference, " + threads + " threads")
                        .isLessThan(tolerance);
            }
        }
    }

    /** F32 and F16 weights take the float path in both precisions: the same logits, bit for bit. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"tiny-f32", "tiny-tied-f32", "tiny-qwen2-f32", "tiny-f16"})
    void floatModelsGiveTheSameLogitsInBothPrecisions(String model) throws IOException {
        int[] tokens = tokens(model);
        try (NativeModel exact = NativeModel.load(resource(model + ".gguf"), 2, Precision.EXACT);
                NativeModel fast = NativeModel.load(resource(model + ".gguf"), 2, Precision.FAST);
                NativeModel.Session e = exact.newSession(256);
                NativeModel.Session f = fast.newSession(256)) {
            for (int pos = 0; pos < tokens.length; pos++) {
                assertThat(f.eval(new int[] {tokens[pos]}, pos))
                        .as("position %d", pos)
                        .containsExactly(e.eval(new int[] {tokens[pos]}, pos));
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"tiny-f32", "tiny-qwen2-f32"})
    void aWholePromptInOneCallGivesTheSameLogitsAsOneTokenAtATime(String model) throws IOException {
        int[] tokens = tokens(model);
        try (NativeModel m = NativeModel.load(resource(model + ".gguf"), 2);
                NativeModel.Session batch = m.newSession(64);
                NativeModel.Session single = m.newSession(64)) {
            int vocab = m.vocabSize();
            float[] all = batch.eval(tokens, 0, true);
            for (int pos = 0; pos < tokens.length; pos++) {
                float[] one = single.eval(new int[] {tokens[pos]}, pos);
                assertThat(Arrays.copyOfRange(all, pos * vocab, (pos + 1) * vocab))
                        .containsExactly(one);
            }
        }
    }
}
