package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.localgpu.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.function.ToIntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Models whose weights mix types by tensor, as Q4_K_M files do (Q6_K for the value, down and output
 * matrices, Q4_K for the rest): the writer gives each tensor its own type, and the engine computes the
 * same logits as the Java reference from the values the file holds.
 */
class MixedTypeModelTest {
    @TempDir
    Path dir;

    private static final RandomModels.Shape SHAPE = new RandomModels.Shape("llama", 256, 2, 4, 2, 512, 64, 300, false);

    private static final ToIntFunction<String> MIX =
            name -> name.endsWith("attn_v.weight") || name.endsWith("ffn_down.weight") || name.equals("output.weight")
                    ? GgufWriter.Q6_K
                    : GgufWriter.Q4_K;

    @Test
    void eachTensorGetsTheTypeItsNameSelects() throws IOException {
        Path q4 = dir.resolve("q4.gguf");
        Path q6 = dir.resolve("q6.gguf");
        Path mixed = dir.resolve("mixed.gguf");
        Map<String, float[]> all4 = RandomModels.write(q4, SHAPE, GgufWriter.Q4_K, 5);
        Map<String, float[]> all6 = RandomModels.write(q6, SHAPE, GgufWriter.Q6_K, 5);
        Map<String, float[]> mix = RandomModels.write(mixed, SHAPE, MIX, 5, w -> {});
        // The same random values, each tensor quantized as its name says.
        assertThat(mix.get("blk.1.attn_v.weight")).isEqualTo(all6.get("blk.1.attn_v.weight"));
        assertThat(mix.get("blk.0.ffn_down.weight")).isEqualTo(all6.get("blk.0.ffn_down.weight"));
        assertThat(mix.get("output.weight")).isEqualTo(all6.get("output.weight"));
        assertThat(mix.get("blk.1.attn_q.weight")).isEqualTo(all4.get("blk.1.attn_q.weight"));
        assertThat(mix.get("token_embd.weight")).isEqualTo(all4.get("token_embd.weight"));
        assertThat(mix.get("blk.1.attn_q.weight")).isNotEqualTo(all6.get("blk.1.attn_q.weight"));
        assertThat(Files.size(mixed)).isGreaterThan(Files.size(q4)).isLessThan(Files.size(q6));
    }

    @Test
    void nativeLogitsOfAMixedModelMatchTheJavaReference() throws IOException {
        NativeRuntimeTests.assumeLoaded();
        Path file = dir.resolve("mixed.gguf");
        Map<String, float[]> w = RandomModels.write(file, SHAPE, MIX, 77, x -> {});
        int[] tokens = new Random(3).ints(10, 0, SHAPE.vocab()).toArray();
        double[][] want = ReferenceForwardTest.forward(w, SHAPE, tokens);
        try (NativeModel m = NativeModel.load(file, 2, Precision.EXACT);
                NativeModel.Session s = m.newSession(32)) {
            double worst = 0;
            for (int pos = 0; pos < tokens.length; pos++) {
                float[] got = s.eval(new int[] {tokens[pos]}, pos);
                for (int v = 0; v < SHAPE.vocab(); v++) {
                    worst = Math.max(worst, Math.abs(got[v] - want[pos][v]));
                }
            }
            assertThat(worst).as("largest logit difference").isLessThan(1e-4);
        }
    }
}
