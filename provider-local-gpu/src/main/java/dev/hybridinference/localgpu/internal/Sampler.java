package dev.hybridinference.localgpu.internal;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy when the temperature is 0, otherwise repetition penalty,
 * temperature, then top-k, top-p and min-p filtering and a draw from a seeded generator, so that the
 * same seed gives the same text. One instance per generation; not thread-safe.
 *
 * @see <a href="https://arxiv.org/abs/1909.05858">repetition penalty as in CTRL</a>
 */
public final class Sampler {
    private final double temperature;
    private final int topK;
    private final double topP;
    private final double minP;
    private final double repetitionPenalty;
    private final SplittableRandom random;

    /**
     * Creates a sampler.
     *
     * @param temperature 0 for greedy
     * @param topK keep the k most likely tokens; 0 for all
     * @param topP keep the smallest set whose probability reaches p; 1 for all
     * @param minP drop tokens less likely than minP times the most likely; 0 for none
     * @param repetitionPenalty divide positive (multiply negative) logits of tokens already seen; 1 for none
     * @param seed the generator's seed
     */
    public Sampler(double temperature, int topK, double topP, double minP, double repetitionPenalty, long seed) {
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.minP = minP;
        this.repetitionPenalty = repetitionPenalty;
        this.random = new SplittableRandom(seed);
    }

    /** The next token; {@code seen} are the tokens so far, for the repetition penalty. */
    public int sample(float[] logits, List<Integer> seen) {
        float[] l = logits;
        if (repetitionPenalty != 1.0 && !seen.isEmpty()) {
            l = logits.clone();
            boolean[] done = new boolean[l.length];
            for (int t : seen) {
                if (t >= 0 && t < l.length && !done[t]) {
                    done[t] = true;
                    l[t] = (float) (l[t] > 0 ? l[t] / repetitionPenalty : l[t] * repetitionPenalty);
                }
            }
        }
        if (temperature <= 0) {
            return argmax(l);
        }
        int n = l.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        final float[] lf = l;
        Arrays.sort(order, (a, b) -> Float.compare(lf[b], lf[a]));
        int keep = topK > 0 ? Math.min(topK, n) : n;
        double max = l[order[0]] / temperature;
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp(l[order[i]] / temperature - max);
            sum += p[i];
        }
        int cut = keep;
        if (minP > 0) {
            double threshold = minP * p[0];
            for (int i = 1; i < keep; i++) {
                if (p[i] < threshold) {
                    cut = i;
                    break;
                }
            }
        }
        if (topP < 1) {
            double acc = 0;
            for (int i = 0; i < cut; i++) {
                acc += p[i] / sum;
                if (acc >= topP) {
                    cut = i + 1;
                    break;
                }
            }
        }
        double total = 0;
        for (int i = 0; i < cut; i++) {
            total += p[i];
        }
        double r = random.nextDouble() * total;
        for (int i = 0; i < cut; i++) {
            r -= p[i];
            if (r <= 0) {
                return order[i];
            }
        }
        return order[cut - 1];
    }

    /** The index of the largest value (the first one on ties). */
    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
