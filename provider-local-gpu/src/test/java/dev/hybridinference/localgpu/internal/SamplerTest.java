package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SamplerTest {
    private static final float[] LOGITS = {1.0f, 3.0f, 2.9f, 0.5f, -1.0f, 2.0f};

    private static Set<Integer> draws(Sampler s, List<Integer> seen, int n) {
        Set<Integer> out = new HashSet<>();
        for (int i = 0; i < n; i++) {
            out.add(s.sample(LOGITS, seen));
        }
        return out;
    }

    @Test
    void temperatureZeroIsGreedy() {
        assertThat(draws(new Sampler(0, 0, 1, 0, 1, 1), List.of(), 50)).containsExactly(1);
    }

    @Test
    void topKKeepsOnlyTheKMostLikely() {
        assertThat(draws(new Sampler(5.0, 2, 1, 0, 1, 1), List.of(), 500)).containsExactlyInAnyOrder(1, 2);
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // At temperature 1 tokens 1 and 2 hold about 0.36 and 0.33 of the mass; p = 0.5 needs both.
        assertThat(draws(new Sampler(1.0, 0, 0.5, 0, 1, 1), List.of(), 500)).containsExactlyInAnyOrder(1, 2);
    }

    @Test
    void minPDropsTokensFarLessLikelyThanTheBest() {
        // Relative to the best (e^3), token 5 has e^-1 = 0.37 and token 0 e^-2 = 0.14.
        assertThat(draws(new Sampler(1.0, 0, 1, 0.3, 1, 1), List.of(), 1000)).containsExactlyInAnyOrder(1, 2, 5);
    }

    @Test
    void repetitionPenaltyDemotesTokensAlreadySeen() {
        Sampler s = new Sampler(0, 0, 1, 0, 2.0, 1);
        assertThat(s.sample(LOGITS, List.of(1))).isEqualTo(2);
        assertThat(s.sample(LOGITS, List.of(1, 2))).isEqualTo(5);
    }

    @Test
    void theSameSeedGivesTheSameDraws() {
        Sampler a = new Sampler(1.5, 0, 0.95, 0, 1, 99);
        Sampler b = new Sampler(1.5, 0, 0.95, 0, 1, 99);
        for (int i = 0; i < 100; i++) {
            assertThat(a.sample(LOGITS, List.of())).isEqualTo(b.sample(LOGITS, List.of()));
        }
        assertThat(draws(new Sampler(1.5, 0, 1, 0, 1, 7), List.of(), 500)).hasSizeGreaterThan(3);
    }

    /**
     * The filters as first written: every token sorted by logit (ties in index order), the first k kept,
     * weights relative to the best (the sampler's own, {@link Sampler#weights}), min-p cut at the first
     * token under it, top-p at the first prefix reaching it. The sampler must keep the same tokens, in this
     * order, with the same weights.
     */
    private static Sampler.Distribution reference(
            float[] logits, double temperature, int topK, double topP, double minP) {
        int n = logits.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = topK > 0 ? Math.min(topK, n) : n;
        float[] weights = new float[n];
        Sampler.weights(logits, temperature, weights);
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = weights[order[i]];
            sum += p[i];
        }
        int cut = keep;
        if (minP > 0) {
            for (int i = 1; i < keep; i++) {
                if (p[i] < minP * p[0]) {
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
        int[] tokens = new int[cut];
        for (int i = 0; i < cut; i++) {
            tokens[i] = order[i];
        }
        return new Sampler.Distribution(tokens, Arrays.copyOf(p, cut));
    }

    @Test
    void theFiltersKeepWhatSortingTheWholeVocabularyKeeps() {
        Random random = new Random(5);
        double[] temperatures = {0.3, 0.8, 1.0, 2.5};
        int[] ks = {0, 1, 7, 40, 999};
        double[] ps = {1, 0.99, 0.9, 0.5, 0.05};
        double[] minPs = {0, 0.001, 0.05, 0.5};
        int cases = 0;
        for (int round = 0; round < 6; round++) {
            int n = 1000 + random.nextInt(200);
            float[] logits = new float[n];
            for (int i = 0; i < n; i++) {
                double v = random.nextGaussian() * (1 + round);
                // Odd rounds hold many ties, which must keep their index order.
                logits[i] = round % 2 == 1 ? Math.round(v * 2) / 2f : (float) v;
            }
            for (double t : temperatures) {
                for (int k : ks) {
                    for (double p : ps) {
                        for (double m : minPs) {
                            Sampler.Distribution want = reference(logits, t, k, p, m);
                            Sampler.Distribution got = new Sampler(t, k, p, m, 1, 1).distribution(logits, List.of());
                            String label = "T=" + t + " k=" + k + " p=" + p + " minP=" + m + " round " + round;
                            if (k == 0 && p == 1 && m == 0) {
                                // Nothing filters: every token, in index order.
                                assertThat(got.tokens()).as(label).hasSize(n);
                                for (int i = 0; i < n; i++) {
                                    assertThat(got.tokens()[i]).isEqualTo(i);
                                }
                                double[] byToken = new double[n];
                                for (int i = 0; i < n; i++) {
                                    byToken[want.tokens()[i]] = want.weights()[i];
                                }
                                assertThat(got.weights()).as(label).containsExactly(byToken);
                            } else {
                                assertThat(got.tokens()).as(label).containsExactly(want.tokens());
                                assertThat(got.weights()).as(label).containsExactly(want.weights());
                            }
                            cases++;
                        }
                    }
                }
            }
        }
        assertThat(cases).isEqualTo(6 * 4 * 5 * 5 * 4);
    }

    @Test
    void theWeightsAreTheExponentialsOfTheLogitsOverTheTemperatureRelativeToTheBest() {
        Random random = new Random(9);
        // Vocabulary sizes that leave every remainder of the vector loops' widths.
        for (int n : new int[] {1, 7, 8, 15, 16, 17, 31, 1000, 32003}) {
            float[] logits = new float[n];
            for (int i = 0; i < n; i++) {
                logits[i] = (float) (random.nextGaussian() * 4);
            }
            for (double t : new double[] {0.05, 0.7, 1.0, 3.0}) {
                float[] weights = new float[n];
                double sum = Sampler.weights(logits, t, weights);
                float best = logits[0];
                for (float l : logits) {
                    best = Math.max(best, l);
                }
                double want = 0;
                for (int i = 0; i < n; i++) {
                    double w = Math.exp((logits[i] - best) * (float) (1 / t));
                    want += w;
                    String label = "n=" + n + " T=" + t + " token " + i;
                    if (w < 1e-37) {
                        // Under float's smallest normal: 0 or the exact tiny value.
                        assertThat(weights[i]).as(label).isBetween(0f, 1e-37f);
                    } else {
                        assertThat((double) weights[i])
                                .as(label)
                                .isCloseTo(w, org.assertj.core.data.Percentage.withPercentage(1e-4));
                    }
                    if (logits[i] == best) {
                        assertThat(weights[i]).as(label).isEqualTo(1f);
                    }
                }
                assertThat(sum)
                        .as("n=" + n + " T=" + t)
                        .isCloseTo(want, org.assertj.core.data.Percentage.withPercentage(1e-4));
            }
        }
    }

    @Test
    void thePenaltyAppliesToACopyAndOncePerToken() {
        float[] logits = LOGITS.clone();
        Sampler s = new Sampler(1.0, 0, 1, 0, 2.0, 1);
        List<Integer> seen = new ArrayList<>(List.of(1, 1, 4, 1));
        double[] weights = s.distribution(logits, seen).weights();
        assertThat(logits).containsExactly(LOGITS);
        // Token 1 is 1.5 after the penalty, once; token 4 is -2; the best is now token 2 at 2.9.
        assertThat(weights[1]).isCloseTo(Math.exp(1.5 - 2.9), org.assertj.core.data.Offset.offset(1e-6));
        assertThat(weights[4]).isCloseTo(Math.exp(-2.0 - 2.9), org.assertj.core.data.Offset.offset(1e-6));
        // The penalty's marks are cleared: a second call without history sees the logits as they are.
        assertThat(s.distribution(logits, List.of()).weights()[1]).isEqualTo(1.0);
    }
}
