package dev.hybridinference.benchmarks;

import dev.hybridinference.localgpu.internal.Sampler;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The local runtime's cost of picking one token from a vocabulary's logits, per filter setting: {@code
 * sampler} is {@link Sampler}; {@code sortWholeVocabulary} is the baseline it replaced, which sorted every
 * token by logit (boxed indices, a comparator) before filtering. Both draw from the same logits with the
 * same settings, so their ratio is the gain. The logits are a language model's usual shape: a few likely
 * tokens over a broad tail.
 *
 * <p>Run: {@code java -jar benchmarks/target/benchmarks.jar SamplerBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class SamplerBenchmark {
    /** Logits, a history for the penalty, and both samplers. */
    @State(Scope.Thread)
    public static class Env {
        /** The vocabulary's size: Llama 2's and Llama 3's. */
        @Param({"32000", "128256"})
        int vocabulary;

        /** temperature, top-k, top-p, min-p and repetition penalty, as in a request. */
        @Param({"0.8,0,1,0,1", "0.8,40,0.95,0,1", "0.8,0,0.95,0,1", "0.8,0,1,0.05,1.1"})
        String filters;

        float[] logits;
        List<Integer> seen;
        Sampler sampler;
        double temperature;
        int topK;
        double topP;
        double minP;
        double penalty;
        SplittableRandom random;

        /** Makes the logits and the samplers. */
        @Setup(Level.Trial)
        public void setUp() {
            String[] f = filters.split(",");
            temperature = Double.parseDouble(f[0]);
            topK = Integer.parseInt(f[1]);
            topP = Double.parseDouble(f[2]);
            minP = Double.parseDouble(f[3]);
            penalty = Double.parseDouble(f[4]);
            SplittableRandom r = new SplittableRandom(3);
            logits = new float[vocabulary];
            for (int i = 0; i < vocabulary; i++) {
                logits[i] = (float) (2.5 * gaussian(r));
            }
            for (int i = 0; i < 20; i++) {
                logits[r.nextInt(vocabulary)] = (float) (12 + 3 * r.nextDouble());
            }
            seen = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                seen.add(r.nextInt(vocabulary));
            }
            sampler = new Sampler(temperature, topK, topP, minP, penalty, 11);
            random = new SplittableRandom(11);
        }

        private static double gaussian(SplittableRandom r) {
            double u = 1 - r.nextDouble();
            return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.nextDouble());
        }
    }

    /** The sampler. */
    @Benchmark
    public int sampler(Env e) {
        return e.sampler.sample(e.logits, e.seen);
    }

    /** The baseline: every token sorted by logit, then the same filters and draw. */
    @Benchmark
    public int sortWholeVocabulary(Env e) {
        float[] l = e.logits;
        if (e.penalty != 1.0 && !e.seen.isEmpty()) {
            l = l.clone();
            boolean[] done = new boolean[l.length];
            for (int t : e.seen) {
                if (!done[t]) {
                    done[t] = true;
                    l[t] = (float) (l[t] > 0 ? l[t] / e.penalty : l[t] * e.penalty);
                }
            }
        }
        int n = l.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        final float[] lf = l;
        Arrays.sort(order, (a, b) -> Float.compare(lf[b], lf[a]));
        int keep = e.topK > 0 ? Math.min(e.topK, n) : n;
        double max = l[order[0]] / e.temperature;
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp(l[order[i]] / e.temperature - max);
            sum += p[i];
        }
        int cut = keep;
        if (e.minP > 0) {
            for (int i = 1; i < keep; i++) {
                if (p[i] < e.minP * p[0]) {
                    cut = i;
                    break;
                }
            }
        }
        if (e.topP < 1) {
            double acc = 0;
            for (int i = 0; i < cut; i++) {
                acc += p[i] / sum;
                if (acc >= e.topP) {
                    cut = i + 1;
                    break;
                }
            }
        }
        double total = 0;
        for (int i = 0; i < cut; i++) {
            total += p[i];
        }
        double r = e.random.nextDouble() * total;
        for (int i = 0; i < cut; i++) {
            r -= p[i];
            if (r <= 0) {
                return order[i];
            }
        }
        return order[cut - 1];
    }
}
