package dev.hybridinference.localgpu.bench;

import dev.hybridinference.localgpu.KvCacheType;
import dev.hybridinference.localgpu.LocalRuntime;
import dev.hybridinference.localgpu.Precision;
import dev.hybridinference.localgpu.internal.NativeModel;
import dev.hybridinference.localgpu.internal.RandomModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The CUDA backend against the CPU backend without JUnit, for a GPU machine where the module's test
 * dependencies cannot be resolved ({@code src/test/gpu/run.sh} falls back to it): on generated models of
 * every weight type the CUDA backend computes with, logits of a 40-token prompt (F32 and F16 caches) within
 * 1e-3 of each row's RMS, the same greedy continuation, and a prompt in one pass equal to one token at a
 * time. CudaBackendTest holds the same and more. Prints a line per check; exits 1 when one fails.
 */
public final class CudaCheck {
    private CudaCheck() {}

    static final double TOLERANCE = 1e-3;
    static int failures;

    public static void main(String[] args) throws Exception {
        if (LocalRuntime.cudaDevices().isEmpty()) {
            System.out.println(
                    "no CUDA device: " + LocalRuntime.cudaUnavailableReason().orElse("none seen"));
            System.exit(2);
        }
        Path dir = Files.createTempDirectory("cuda-check");
        String[][] cases = {
            {"llama", "0"}, {"llama", "1"}, {"llama", "8"}, {"llama", "12"}, {"llama", "14"}, {"qwen2", "0"}
        };
        for (String[] c : cases) {
            int type = Integer.parseInt(c[1]);
            Path p = dir.resolve(c[0] + "-" + type + ".gguf");
            RandomModels.write(
                    p, new RandomModels.Shape(c[0], 256, 2, 4, 2, 512, 512, 300, false), type, 11L * type + 3);
            String name = c[0] + " type " + type;
            try (NativeModel cpu = NativeModel.load(p, 2, Precision.EXACT);
                    NativeModel gpu = NativeModel.load(p, 1, Precision.EXACT, 0)) {
                int vocab = cpu.vocabSize();
                int[] tokens = prompt(40, vocab);
                for (KvCacheType kv : KvCacheType.values()) {
                    try (NativeModel.Session a = cpu.newSession(64, kv);
                            NativeModel.Session b = gpu.newSession(64, kv)) {
                        check(
                                name + " " + kv + " logits",
                                worst(b.eval(tokens, 0, true), a.eval(tokens, 0, true), vocab));
                    }
                }
                List<Integer> g = greedy(gpu, prompt(8, vocab), 24);
                List<Integer> e = greedy(cpu, prompt(8, vocab), 24);
                report(name + " greedy", g.equals(e), g + " vs " + e);
                try (NativeModel.Session batch = gpu.newSession(128);
                        NativeModel.Session single = gpu.newSession(128)) {
                    int[] t = prompt(100, vocab);
                    float[] all = batch.eval(t, 0, true);
                    float[] one = new float[all.length];
                    for (int pos = 0; pos < t.length; pos++) {
                        System.arraycopy(single.eval(new int[] {t[pos]}, pos), 0, one, pos * vocab, vocab);
                    }
                    check(name + " prefill in one call vs one at a time", worst(all, one, vocab));
                }
            } catch (RuntimeException ex) {
                report(name, false, ex.toString());
            } finally {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
        System.out.println(failures == 0 ? "all checks passed" : failures + " checks failed");
        System.exit(failures == 0 ? 0 : 1);
    }

    static int[] prompt(int n, int vocab) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = (i * 37 + 11) % vocab;
        }
        return t;
    }

    /** The largest difference of a row of {@code got} from {@code want}, over that row's RMS. */
    static double worst(float[] got, float[] want, int vocab) {
        double worst = 0;
        for (int row = 0; row < want.length / vocab; row++) {
            double ss = 0;
            double diff = 0;
            for (int v = 0; v < vocab; v++) {
                ss += (double) want[row * vocab + v] * want[row * vocab + v];
                diff = Math.max(diff, Math.abs(got[row * vocab + v] - want[row * vocab + v]));
            }
            worst = Math.max(worst, diff / Math.sqrt(ss / vocab));
        }
        return worst;
    }

    static void check(String what, double worst) {
        report(what, worst <= TOLERANCE, String.format(Locale.ROOT, "largest difference %.2e of the row's RMS", worst));
    }

    static void report(String what, boolean ok, String detail) {
        if (!ok) {
            failures++;
        }
        System.out.println((ok ? "ok    " : "FAIL  ") + what + ": " + detail);
    }

    static List<Integer> greedy(NativeModel m, int[] prompt, int steps) {
        List<Integer> out = new ArrayList<>();
        try (NativeModel.Session s = m.newSession(prompt.length + steps)) {
            float[] logits = s.eval(prompt, 0);
            for (int i = 0; i < steps; i++) {
                int next = 0;
                for (int v = 1; v < logits.length; v++) {
                    if (logits[v] > logits[next]) {
                        next = v;
                    }
                }
                out.add(next);
                logits = s.eval(new int[] {next}, prompt.length + i);
            }
        }
        return out;
    }
}
