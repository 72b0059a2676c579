package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.localgpu.Precision;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kernel level chosen at start-up: the best this processor has, capped by HYBRIDINFERENCE_KERNELS
 * (the build runs this class once more with the cap at avx2), and the fast path at that level.
 */
class KernelLevelTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
    }

    @Test
    void theFeaturesNameTheLevelInUse() {
        String cap = System.getenv("HYBRIDINFERENCE_KERNELS");
        int top = IntegerDotTest.LEVELS.length - 1;
        if ("1".equals(System.getenv("HYBRIDINFERENCE_PORTABLE_KERNELS"))) {
            top = 0;
        } else if (cap != null && !cap.isEmpty()) {
            top = Arrays.asList(IntegerDotTest.LEVELS).indexOf(cap);
            assertThat(top).as("HYBRIDINFERENCE_KERNELS=%s names a level", cap).isNotNegative();
        }
        int expected = 0;
        for (int l = top; l > 0; l--) {
            if (NativeModel.kernelLevelAvailable(l)) {
                expected = l;
                break;
            }
        }
        String features = NativeModel.cpuFeatures();
        if (expected == 0) {
            assertThat(features).doesNotContain("int8");
        } else {
            assertThat(features).endsWith(", int8 " + IntegerDotTest.LEVELS[expected]);
        }
    }

    /** Fast logits within ReferenceForwardTest's bound (15% of the logits' RMS) of the exact ones. */
    @Test
    void fastLogitsStayCloseToExactOnesAtThisLevel() throws IOException {
        RandomModels.Shape shape = new RandomModels.Shape("llama", 256, 2, 4, 2, 512, 64, 300, false);
        for (int type : IntegerDotTest.TYPES) {
            Path file = dir.resolve("level-" + type + ".gguf");
            RandomModels.write(file, shape, type, 5 + type);
            int[] tokens = new Random(type).ints(12, 0, shape.vocab()).toArray();
            try (NativeModel fast = NativeModel.load(file, 2, Precision.FAST);
                    NativeModel exact = NativeModel.load(file, 2, Precision.EXACT);
                    NativeModel.Session f = fast.newSession(16);
                    NativeModel.Session e = exact.newSession(16)) {
                float[] a = f.eval(tokens, 0, true);
                float[] b = e.eval(tokens, 0, true);
                double sq = 0;
                double worst = 0;
                for (int i = 0; i < a.length; i++) {
                    sq += (double) b[i] * b[i];
                    worst = Math.max(worst, Math.abs(a[i] - b[i]));
                }
                assertThat(worst).as("type %d", type).isLessThan(0.15 * Math.sqrt(sq / a.length));
                assertThat(worst).as("type %d takes the integer path", type).isGreaterThan(0);
            }
        }
    }
}
