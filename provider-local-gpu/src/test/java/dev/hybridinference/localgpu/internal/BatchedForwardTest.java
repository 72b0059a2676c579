package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.localgpu.KvCacheType;
import dev.hybridinference.localgpu.Precision;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The batched forward pass: rows of several KV caches in one pass give each cache the logits it gets
 * alone, and the F16 KV cache stays close to the F32 one at half its size.
 */
class BatchedForwardTest {

    /**
     * F16 against F32 keys and values: half precision keeps about 11 significant bits, about 5e-4 relative
     * per value; through 2 layers of these random models the logits (of magnitude about 1) move by less
     * than 1e-2.
     */
    private static final double F16_TOLERANCE = 1e-2;

    @TempDir
    static Path dir;

    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
    }

    private static Path model(String arch, int type) throws IOException {
        Path file = dir.resolve(arch + "-" + type + ".gguf");
        if (!file.toFile().exists()) {
            RandomModels.write(file, new RandomModels.Shape(arch, 256, 2, 4, 2, 512, 256, 300, false), type, 77 + type);
        }
        return file;
    }

    /**
     * Batched against alone, to the bit, in the default (fast) precision: a row's arithmetic never depends
     * on what else is in the pass. With AVX-512, weights repacked at load go through one kernel per kind
     * (F32 and F16 panels, quantized transposed records) for every count of rows. The module's build runs
     * this again with the weights as stored: then F32 rows give the same bits through the matrix product
     * and the row dots, and with AVX-512 VNNI quantized rows go through the rows-in-lanes kernel one vector
     * at a time, through transposed panels from 2 to 4 vectors on (by type), and where the processor has
     * AMX through the tile product from 8: all give the same bits. The passes here hold 1 to 71 rows, so they meet the same rows;
     * Q6_K, Q4_0, Q4_1 and Q5_K cover the other weight layouts, and the 300-row output matrix a panel of
     * fewer than 16 rows.
     */
    @ParameterizedTest(name = "{0} type {1}")
    @CsvSource({"llama, 0", "qwen2, 8", "llama, 12", "llama, 14", "llama, 2", "llama, 3", "llama, 13"})
    void aBatchOfThreeStatesGivesEachTheLogitsItGetsAlone(String arch, int type) throws IOException {
        Random r = new Random(5);
        int[] promptA = r.ints(20, 0, 300).toArray();
        int[] promptB = r.ints(90, 0, 300).toArray(); // more than one pass of 64 rows
        int[] promptC = r.ints(7, 0, 300).toArray();
        try (NativeModel m = NativeModel.load(model(arch, type), 2);
                NativeModel.Session a = m.newSession(256);
                NativeModel.Session b = m.newSession(256);
                NativeModel.Session c = m.newSession(256);
                NativeModel.Session alone = m.newSession(256)) {
            int vocab = m.vocabSize();
            // Step 1: A's whole prompt, B's first chunk, C's first token.
            // Step 2: A decodes one token, B the rest of its prompt, C its remaining prompt.
            // Step 3: every state one token.
            int[][][] steps = {
                {promptA, Arrays.copyOfRange(promptB, 0, 50), Arrays.copyOfRange(promptC, 0, 1)},
                {{11}, Arrays.copyOfRange(promptB, 50, 90), Arrays.copyOfRange(promptC, 1, 7)},
                {{12}, {13}, {14}}
            };
            NativeModel.Session[] sessions = {a, b, c};
            int[] pos = {0, 0, 0};
            float[][][] batched = new float[steps.length][3][vocab];
            for (int s = 0; s < steps.length; s++) {
                m.evalBatch(sessions, steps[s], pos.clone(), batched[s]);
                for (int i = 0; i < 3; i++) {
                    pos[i] += steps[s][i].length;
                }
            }
            double worst = 0;
            for (int i = 0; i < 3; i++) {
                int at = 0;
                for (int s = 0; s < steps.length; s++) {
                    float[] want = alone.eval(steps[s][i], at);
                    at += steps[s][i].length;
                    worst = Math.max(worst, maxDiff(want, batched[s][i]));
                }
            }
            assertThat(worst)
                    .as("largest logit difference, batched against alone")
                    .isZero();
        }
    }

    /**
     * A prompt's logits for every row, in one pass, against its tokens fed one at a time, to the bit. The
     * pass multiplies 23 vectors at once (through the tiles where the processor has AMX, else through the
     * transposed panels, 6 vectors at a time and then 5), one token at a time through the rows-in-lanes
     * kernel; the 300-row output matrix ends in a panel of 12 rows.
     */
    @ParameterizedTest(name = "{0} type {1}")
    @CsvSource({"llama, 0", "qwen2, 8", "llama, 12", "llama, 14", "llama, 2", "llama, 3", "llama, 13"})
    void aPromptsRowsGiveTheLogitsOfItsTokensFedOneAtATime(String arch, int type) throws IOException {
        int[] prompt = new Random(8).ints(23, 0, 300).toArray();
        try (NativeModel m = NativeModel.load(model(arch, type), 2);
                NativeModel.Session whole = m.newSession(64);
                NativeModel.Session single = m.newSession(64)) {
            int vocab = m.vocabSize();
            float[] rows = whole.eval(prompt, 0, true);
            double worst = 0;
            for (int t = 0; t < prompt.length; t++) {
                float[] want = single.eval(new int[] {prompt[t]}, t);
                worst = Math.max(worst, maxDiff(want, Arrays.copyOfRange(rows, t * vocab, (t + 1) * vocab)));
            }
            assertThat(worst)
                    .as("largest logit difference, a prompt's rows against its tokens one at a time")
                    .isZero();
        }
    }

    @Test
    void aBatchIsCheckedBeforeAnythingIsComputed() throws IOException {
        try (NativeModel m = NativeModel.load(model("llama", 0), 1);
                NativeModel.Session a = m.newSession(16);
                NativeModel.Session b = m.newSession(16)) {
            float[][] out = new float[2][m.vocabSize()];
            assertThatThrownBy(() -> m.evalBatch(
                            new NativeModel.Session[] {a, b}, new int[][] {{1, 2}, {3}}, new int[] {0, 16}, out))
                    .isInstanceOf(NativeEngineException.class)
                    .hasMessage("positions 16..16 exceed the context of 16");
            assertThatThrownBy(() -> m.evalBatch(
                            new NativeModel.Session[] {a, a}, new int[][] {{1}, {3}}, new int[] {0, 1}, out))
                    .isInstanceOf(NativeEngineException.class)
                    .hasMessage("a state appears in more than one segment of a batch");
            assertThatThrownBy(() ->
                            m.evalBatch(new NativeModel.Session[] {a, b}, new int[][] {{1}, {}}, new int[] {0, 0}, out))
                    .isInstanceOf(NativeEngineException.class)
                    .hasMessage("segment 1 has no tokens");
            assertThatThrownBy(() -> m.evalBatch(
                            new NativeModel.Session[] {a, b}, new int[][] {{1}, {300}}, new int[] {0, 0}, out))
                    .isInstanceOf(NativeEngineException.class)
                    .hasMessage("token id 300 is outside the vocabulary of 300");
            // Nothing was written: a's cache is still empty, so its first token gives the fresh logits.
            float[] first = a.eval(new int[] {1}, 0);
            try (NativeModel.Session fresh = m.newSession(16)) {
                assertThat(maxDiff(first, fresh.eval(new int[] {1}, 0))).isZero();
            }
        }
    }

    @ParameterizedTest(name = "{0} type {1}")
    @CsvSource({"llama, 0", "qwen2, 8"})
    void anF16CacheGivesLogitsCloseToF32AtHalfTheCacheBytes(String arch, int type) throws IOException {
        int[] prompt = new Random(9).ints(40, 0, 300).toArray();
        // Exact precision, so that the difference is the cache's alone: fast precision's 8-bit inputs round
        // the cache's small changes up to whole steps of their scale.
        try (NativeModel m = NativeModel.load(model(arch, type), 2, Precision.EXACT);
                NativeModel.Session f32 = m.newSession(256, KvCacheType.F32);
                NativeModel.Session f16 = m.newSession(256, KvCacheType.F16)) {
            double worst = maxDiff(f32.eval(prompt, 0, true), f16.eval(prompt, 0, true));
            for (int t = 0; t < 10; t++) {
                worst = Math.max(worst, maxDiff(f32.eval(new int[] {t}, 40 + t), f16.eval(new int[] {t}, 40 + t)));
            }
            assertThat(worst)
                    .as("largest logit difference, F16 against F32 cache")
                    .isLessThan(F16_TOLERANCE);
            assertThat(worst).as("the F16 cache does round").isPositive();

            // The KV part: 2 (K, V) x layers x positions x kv heads x head size values.
            long kvValues = 2L * 2 * 256 * 2 * (256 / 4);
            long bytes32 = m.sessionBytes(256, KvCacheType.F32);
            long bytes16 = m.sessionBytes(256, KvCacheType.F16);
            assertThat(bytes32 - bytes16).isEqualTo(kvValues * 2);
            assertThat(bytes32 - bytes16)
                    .as("F16 saves half of the F32 KV part")
                    .isEqualTo(kvValues * 4 / 2);
        }
    }

    @Test
    void f16AndF32CachesMixInOneBatch() throws IOException {
        int[] prompt = new Random(3).ints(12, 0, 300).toArray();
        try (NativeModel m = NativeModel.load(model("llama", 0), 2);
                NativeModel.Session f32 = m.newSession(64, KvCacheType.F32);
                NativeModel.Session f16 = m.newSession(64, KvCacheType.F16);
                NativeModel.Session f16Alone = m.newSession(64, KvCacheType.F16)) {
            float[][] out = new float[2][m.vocabSize()];
            m.evalBatch(new NativeModel.Session[] {f32, f16}, new int[][] {prompt, prompt}, new int[] {0, 0}, out);
            assertThat(maxDiff(out[1], f16Alone.eval(prompt, 0))).isZero();
            assertThat(maxDiff(out[0], out[1])).isLessThan(F16_TOLERANCE);
        }
    }

    private static double maxDiff(float[] a, float[] b) {
        assertThat(a.length).isEqualTo(b.length);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }
}
