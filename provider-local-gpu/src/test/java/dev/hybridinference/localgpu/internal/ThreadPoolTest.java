package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The engine's thread pool hands out claimed chunks from one contiguous share per thread: every item runs
 * exactly once, in chunks of at most the grain (one call over everything where there is nothing to share), each thread works through its own share in ascending order,
 * and a thread that starts late has its share finished by the others.
 */
class ThreadPoolTest {
    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
    }

    /** What a run of the pool did. */
    record Claims(int[] runs, int[] by, int[][] chunks) {
        static Claims of(int threads, int n, int grain, int lateMillis) {
            int[] a = NativeModel.poolClaims(threads, n, grain, lateMillis);
            int[][] chunks = new int[(a.length - 2 * n) / 2][];
            for (int c = 0; c < chunks.length; c++) {
                chunks[c] = new int[] {a[2 * n + 2 * c], a[2 * n + 2 * c + 1]};
            }
            return new Claims(Arrays.copyOfRange(a, 0, n), Arrays.copyOfRange(a, n, 2 * n), chunks);
        }
    }

    @ParameterizedTest(name = "{0} threads, {1} items, grain {2}")
    @CsvSource({
        "1,100,3",
        "2,1,1",
        "2,2,1",
        "2,3,1",
        "2,97,3",
        "2,1000,7",
        "3,10,1",
        "3,250,4",
        "4,64,64",
        "4,65,8",
        "8,1001,5"
    })
    void everyItemRunsOnceInChunksOfAtMostTheGrain(int threads, int n, int grain) {
        for (int round = 0; round < 20; round++) {
            Claims c = Claims.of(threads, n, grain, 0);
            assertThat(c.runs()).as("runs per item").containsOnly(1);
            if (threads == 1 || n <= grain) {
                // Nothing to share: one call over everything, on the caller.
                assertThat(c.chunks()).isDeepEqualTo(new int[][] {{0, n}});
                continue;
            }
            int covered = 0;
            for (int[] chunk : c.chunks()) {
                assertThat(chunk[1]).isBetween(1, grain);
                covered += chunk[1];
            }
            assertThat(covered).isEqualTo(n);
        }
    }

    @Test
    void eachThreadTakesItsOwnShareInAscendingOrder() {
        // Without a late thread, the chunks a thread ran from the front of its own share follow each other.
        int n = 400;
        Claims c = Claims.of(2, n, 10, 0);
        assertThat(c.runs()).containsOnly(1);
        // The caller's share is the first half: whatever it ran there, it ran from item 0 on without a gap.
        int end = 0;
        while (end < n / 2 && c.by()[end] == 0) {
            end++;
        }
        assertThat(end)
                .as("items of the first share the caller ran from its front")
                .isPositive();
        for (int i = end; i < n / 2; i++) {
            assertThat(c.by()[i])
                    .as("item %d, past the caller's run, taken by the other thread", i)
                    .isNotZero();
        }
    }

    @Test
    void aLateThreadsShareIsTakenByTheOthers() {
        // The caller sleeps in its first chunk: the other thread finishes its own share, then claims the
        // caller's from the back, so the caller runs little more than that first chunk.
        int n = 200;
        int grain = 5;
        Claims c = Claims.of(2, n, grain, 200);
        assertThat(c.runs()).containsOnly(1);
        long byCaller = Arrays.stream(c.by()).filter(id -> id == 0).count();
        assertThat(byCaller).as("items the late caller ran").isLessThan(n / 4);
        assertThat(c.by()[n / 2 - 1]).as("the last item of the caller's share").isEqualTo(1);
        assertThat(c.by()[n - 1]).as("the last item of the other share").isEqualTo(1);
    }
}
