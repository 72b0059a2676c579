package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.List;
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
}
