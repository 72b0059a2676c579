package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.localgpu.KvCacheType;
import dev.hybridinference.localgpu.Precision;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The native forward pass against a plain Java implementation of the same math (GGUF.md section 6, in
 * double precision, recomputing every position without a cache), on generated random-weight models of
 * each architecture and weight type. Both read the same quantized values, so the tolerance only covers
 * float against double arithmetic.
 */
class ReferenceForwardTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
        if ("1".equals(System.getenv("HYBRIDINFERENCE_PORTABLE_KERNELS"))) {
            assertThat(NativeModel.cpuFeatures()).isEqualTo("portable");
        }
    }

    @ParameterizedTest(name = "{0} {1} tied={2}")
    @CsvSource({
        "llama, 0, false, 1e-4",
        "llama, 0, true, 1e-4",
        "qwen2, 0, false, 1e-4",
        "llama, 1, false, 1e-4",
        "llama, 8, false, 1e-4",
        "qwen2, 8, false, 1e-4",
        "llama, 12, false, 1e-4",
        "llama, 14, false, 1e-4",
        "qwen2, 12, true, 1e-4",
        "llama, 2, false, 1e-4",
        "llama, 3, false, 1e-4",
        "llama, 13, false, 1e-4",
        "qwen2, 13, true, 1e-4"
    })
    void nativeLogitsMatchTheJavaReference(String arch, int type, boolean tied, double tolerance) throws IOException {
        RandomModels.Shape shape = new RandomModels.Shape(arch, 256, 2, 4, 2, 512, 64, 300, tied);
        Path file = dir.resolve(arch + "-" + type + "-" + tied + ".gguf");
        Map<String, float[]> w = RandomModels.write(file, shape, type, 1234 + type);
        int[] tokens = new Random(type).ints(10, 0, shape.vocab()).toArray();
        double[][] want = forward(w, shape, tokens);
        try (NativeModel m = NativeModel.load(file, 2, Precision.EXACT);
                NativeModel.Session s = m.newSession(32)) {
            double worst = 0;
            for (int pos = 0; pos < tokens.length; pos++) {
                float[] got = s.eval(new int[] {tokens[pos]}, pos);
                for (int v = 0; v < shape.vocab(); v++) {
                    worst = Math.max(worst, Math.abs(got[v] - want[pos][v]));
                }
            }
            assertThat(worst).as("largest logit difference").isLessThan(tolerance);
        }
    }

    /**
     * Heads of 128 values (2 query heads sharing 1 KV head on a 256-wide model; the attention kernels have
     * a width per head size), in both KV cache types, token by token and as a whole prompt in one call
     * (rows of one cache attending over different lengths in one job).
     */
    @ParameterizedTest(name = "{0} type {1} kv {2}")
    @CsvSource({"llama, 0, f32, 1e-4", "qwen2, 1, f32, 1e-4", "llama, 0, f16, 1e-2"})
    void headsOf128ValuesMatchTheJavaReference(String arch, int type, String kv, double tolerance) throws IOException {
        RandomModels.Shape shape = new RandomModels.Shape(arch, 256, 2, 2, 1, 512, 64, 300, false);
        Path file = dir.resolve(arch + "-" + type + "-heads128.gguf");
        Map<String, float[]> w = RandomModels.write(file, shape, type, 4321 + type);
        int[] tokens = new Random(type).ints(12, 0, shape.vocab()).toArray();
        double[][] want = forward(w, shape, tokens);
        int vocab = shape.vocab();
        try (NativeModel m = NativeModel.load(file, 2, Precision.EXACT);
                NativeModel.Session one = m.newSession(32, KvCacheType.of(kv));
                NativeModel.Session all = m.newSession(32, KvCacheType.of(kv))) {
            float[] prompt = all.eval(tokens, 0, true);
            double worst = 0;
            for (int pos = 0; pos < tokens.length; pos++) {
                float[] got = one.eval(new int[] {tokens[pos]}, pos);
                for (int v = 0; v < vocab; v++) {
                    worst = Math.max(worst, Math.abs(got[v] - want[pos][v]));
                    worst = Math.max(worst, Math.abs(prompt[pos * vocab + v] - want[pos][v]));
                }
            }
            assertThat(worst).as("largest logit difference").isLessThan(tolerance);
        }
    }

    /**
     * The fast path (8-bit activations, integer dot products) against the same float64 reference.
     *
     * <p>The tolerance comes from the activation quantization: each input vector is rounded to 8 bits per
     * value with one scale per block of 32 (or 256) values, step d = max|x| / 127, so each value moves by
     * at most d / 2 and by d / sqrt(12) on average. For Gaussian-like activations max|x| is about 3 to
     * 3.5 standard deviations, so every matrix product's input carries noise of about 0.8% of its own
     * magnitude, and every output as much relative to its typical size. Seven products per layer, each
     * adding such noise that the following norms and residual sums carry along, over two layers plus the
     * output product: about sqrt(15) * 0.8%, roughly 3% of the logits' RMS as a standard deviation. The
     * largest of the 40 * 300 differences is a few of those: the bound is 15% of the reference logits' RMS
     * (measured: 4% to 7%). Greedy decoding must then pick the reference's token at every
     * step, except where the reference's best two logits are closer than twice that bound. With a tied
     * output (repacked, its file pages dropped) the token lookup reads the embeddings' rows through the
     * file.
     */
    @ParameterizedTest(name = "fast {0} type {1} tied={2}")
    @CsvSource({
        "llama, 2, false",
        "llama, 3, false",
        "llama, 8, false",
        "qwen2, 8, false",
        "llama, 12, false",
        "llama, 13, false",
        "qwen2, 13, false",
        "llama, 14, false",
        "qwen2, 8, true",
        "llama, 14, true"
    })
    void fastLogitsStayWithinTheActivationQuantizationBound(String arch, int type, boolean tied) throws IOException {
        RandomModels.Shape shape = new RandomModels.Shape(arch, 256, 2, 4, 2, 512, 64, 300, tied);
        Path file = dir.resolve(arch + "-" + type + "-" + tied + "-fast.gguf");
        Map<String, float[]> w = RandomModels.write(file, shape, type, 99 + type);
        int prompt = 8;
        int total = 40;
        int[] seq = new int[total];
        System.arraycopy(new Random(type).ints(prompt, 0, shape.vocab()).toArray(), 0, seq, 0, prompt);
        float[][] fast = new float[total][];
        float[][] exact = new float[total][];
        try (NativeModel m = NativeModel.load(file, 2, Precision.FAST);
                NativeModel.Session s = m.newSession(64)) {
            for (int pos = 0; pos < total; pos++) {
                fast[pos] = s.eval(new int[] {seq[pos]}, pos);
                if (pos + 1 >= prompt && pos + 1 < total) {
                    seq[pos + 1] = argmax(fast[pos]);
                }
            }
        }
        try (NativeModel m = NativeModel.load(file, 2, Precision.EXACT);
                NativeModel.Session s = m.newSession(64)) {
            for (int pos = 0; pos < total; pos++) {
                exact[pos] = s.eval(new int[] {seq[pos]}, pos);
            }
        }
        double[][] want = forward(w, shape, seq);
        double sq = 0;
        for (double[] row : want) {
            for (double v : row) {
                sq += v * v;
            }
        }
        double rms = Math.sqrt(sq / (total * shape.vocab()));
        double bound = 0.15 * rms;
        double worst = 0;
        for (int pos = 0; pos < total; pos++) {
            for (int v = 0; v < shape.vocab(); v++) {
                worst = Math.max(worst, Math.abs(fast[pos][v] - want[pos][v]));
            }
        }
        assertThat(worst).as("largest logit difference (logit RMS %.4f)", rms).isLessThan(bound);
        for (int pos = prompt - 1; pos < total; pos++) {
            int chosen = argmax(fast[pos]);
            double[] ref = want[pos];
            int best = argmax(ref);
            if (gap(ref) > 2 * bound) {
                assertThat(chosen).as("greedy token at position %d", pos + 1).isEqualTo(best);
            } else {
                assertThat(ref[chosen]).as("near-tie at position %d", pos + 1).isGreaterThan(ref[best] - 2 * bound);
            }
            float[] e = exact[pos];
            if (gap(toDouble(e)) > 2 * bound) {
                assertThat(chosen)
                        .as("fast and exact argmax at position %d", pos + 1)
                        .isEqualTo(argmax(e));
            }
        }
    }

    static int argmax(float[] v) {
        return argmax(toDouble(v));
    }

    static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The difference between the largest and the second largest value. */
    static double gap(double[] v) {
        int best = argmax(v);
        double second = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v.length; i++) {
            if (i != best) {
                second = Math.max(second, v[i]);
            }
        }
        return v[best] - second;
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    /** Logits at every position, computed from scratch. */
    static double[][] forward(Map<String, float[]> w, RandomModels.Shape s, int[] tokens) {
        int n = tokens.length;
        int dim = s.dim();
        int hd = dim / s.heads();
        int kvDim = s.kvHeads() * hd;
        int group = s.heads() / s.kvHeads();
        boolean neox = s.arch().equals("qwen2");
        double eps = 1e-5;
        float[] emb = w.get("token_embd.weight");
        double[][] x = new double[n][dim];
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < dim; i++) {
                x[t][i] = emb[tokens[t] * dim + i];
            }
        }
        for (int l = 0; l < s.layers(); l++) {
            String b = "blk." + l + ".";
            double[][] q = new double[n][];
            double[][] k = new double[n][];
            double[][] v = new double[n][];
            for (int t = 0; t < n; t++) {
                double[] h = norm(x[t], w.get(b + "attn_norm.weight"), eps);
                q[t] = matvec(w.get(b + "attn_q.weight"), h, dim, s.heads() * hd, w.get(b + "attn_q.bias"));
                k[t] = matvec(w.get(b + "attn_k.weight"), h, dim, kvDim, w.get(b + "attn_k.bias"));
                v[t] = matvec(w.get(b + "attn_v.weight"), h, dim, kvDim, w.get(b + "attn_v.bias"));
                rope(q[t], s.heads(), hd, t, neox);
                rope(k[t], s.kvHeads(), hd, t, neox);
            }
            for (int t = 0; t < n; t++) {
                double[] att = new double[s.heads() * hd];
                for (int h = 0; h < s.heads(); h++) {
                    int kvh = h / group;
                    double[] score = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u <= t; u++) {
                        double d = 0;
                        for (int i = 0; i < hd; i++) {
                            d += q[t][h * hd + i] * k[u][kvh * hd + i];
                        }
                        score[u] = d / Math.sqrt(hd);
                        max = Math.max(max, score[u]);
                    }
                    double sum = 0;
                    for (int u = 0; u <= t; u++) {
                        score[u] = Math.exp(score[u] - max);
                        sum += score[u];
                    }
                    for (int u = 0; u <= t; u++) {
                        for (int i = 0; i < hd; i++) {
                            att[h * hd + i] += score[u] / sum * v[u][kvh * hd + i];
                        }
                    }
                }
                double[] o = matvec(w.get(b + "attn_output.weight"), att, s.heads() * hd, dim, null);
                for (int i = 0; i < dim; i++) {
                    x[t][i] += o[i];
                }
                double[] h = norm(x[t], w.get(b + "ffn_norm.weight"), eps);
                double[] g = matvec(w.get(b + "ffn_gate.weight"), h, dim, s.ffn(), null);
                double[] up = matvec(w.get(b + "ffn_up.weight"), h, dim, s.ffn(), null);
                for (int i = 0; i < s.ffn(); i++) {
                    g[i] = g[i] / (1 + Math.exp(-g[i])) * up[i];
                }
                double[] down = matvec(w.get(b + "ffn_down.weight"), g, s.ffn(), dim, null);
                for (int i = 0; i < dim; i++) {
                    x[t][i] += down[i];
                }
            }
        }
        float[] out = w.containsKey("output.weight") ? w.get("output.weight") : emb;
        double[][] logits = new double[n][];
        for (int t = 0; t < n; t++) {
            logits[t] = matvec(out, norm(x[t], w.get("output_norm.weight"), eps), dim, s.vocab(), null);
        }
        return logits;
    }

    static double[] norm(double[] x, float[] weight, double eps) {
        double ss = 0;
        for (double d : x) {
            ss += d * d;
        }
        double scale = 1 / Math.sqrt(ss / x.length + eps);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * scale * weight[i];
        }
        return y;
    }

    /** y = W x for W of {@code rows} rows of {@code cols} values (ne = [cols, rows]), plus a bias. */
    static double[] matvec(float[] w, double[] x, int cols, int rows, float[] bias) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double d = bias == null ? 0 : bias[r];
            for (int c = 0; c < cols; c++) {
                d += w[r * cols + c] * x[c];
            }
            y[r] = d;
        }
        return y;
    }

    static void rope(double[] v, int heads, int hd, int pos, boolean neox) {
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                double theta = pos * Math.pow(10000, -2.0 * i / hd);
                int a = h * hd + (neox ? i : 2 * i);
                int b = h * hd + (neox ? i + half : 2 * i + 1);
                double x0 = v[a];
                double x1 = v[b];
                v[a] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
                v[b] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
            }
        }
    }
}
