package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fast path's integer dot products, one weight row at a time, at every kernel level this processor
 * has: each level's integer sums equal the portable kernel's exactly, and every level's result lies
 * within the bound the 8-bit input quantization allows of the float dot product.
 */
class IntegerDotTest {
    static final String[] LEVELS = {"portable", "avx2", "avxvnni", "avx512", "amx"};
    static final int[] TYPES = {
        GgufWriter.Q4_0, GgufWriter.Q4_1, GgufWriter.Q8_0, GgufWriter.Q4_K, GgufWriter.Q5_K, GgufWriter.Q6_K
    };
    static final int N = 2048;

    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
    }

    static Stream<Arguments> typesAndLevels() {
        return Arrays.stream(TYPES)
                .boxed()
                .flatMap(t -> IntStream.range(1, LEVELS.length).mapToObj(l -> Arguments.of(t, l)));
    }

    static float[] gaussian(long seed, float spread) {
        Random r = new Random(seed);
        float[] v = new float[N];
        for (int i = 0; i < N; i++) {
            v[i] = (float) r.nextGaussian() * (1 + spread * (i % 5));
        }
        return v;
    }

    /**
     * Integer arithmetic is exact, so the sums must be equal. The float side (block scales times sums,
     * accumulated) is computed in another order by the SIMD levels (in eight or sixteen lanes, summed at
     * the end of the row): within 1e-5 of the sum of the terms' magnitudes, far above float rounding
     * over 64 blocks (about 64 * 2^-24) and far below any wrong sum.
     */
    @ParameterizedTest(name = "type {0} at {1}")
    @MethodSource("typesAndLevels")
    void everyLevelGivesThePortableIntegerSums(int type, int level) {
        assumeTrue(NativeModel.kernelLevelAvailable(level), () -> "this processor has no " + LEVELS[level]);
        for (long seed = 1; seed <= 3; seed++) {
            float[] w = gaussian(seed, 0.5f);
            float[] x = gaussian(100 + seed, 2f);
            byte[] row = GgufWriter.quantize(type, w, N);
            double[] portable = NativeModel.integerDot(0, type, row, x);
            double[] simd = NativeModel.integerDot(level, type, row, x);
            assertThat(Arrays.copyOfRange(simd, 1, simd.length))
                    .as("integer sums")
                    .containsExactly(Arrays.copyOfRange(portable, 1, portable.length));
            float[] dw = GgufWriter.dequantize(type, row, N);
            double magnitude = 0;
            for (int i = 0; i < N; i++) {
                magnitude += Math.abs(dw[i] * x[i]);
            }
            assertThat(Math.abs(simd[0] - portable[0])).as("dot product").isLessThanOrEqualTo(1e-5 * magnitude);
        }
    }

    /**
     * Rounding an input value to its block's step d = max|x| / 127 moves it by at most d / 2, so the
     * integer dot product differs from the float one by at most sum_i |w_i| * d(i) / 2, plus float
     * rounding (1e-5 of the terms' magnitudes).
     */
    @Test
    void theIntegerDotIsWithinTheInputQuantizationBound() {
        for (int type : TYPES) {
            int block = GgufWriter.blockElems(type);
            float[] w = gaussian(7, 0.5f);
            float[] x = gaussian(8, 2f);
            byte[] row = GgufWriter.quantize(type, w, N);
            float[] dw = GgufWriter.dequantize(type, row, N);
            double exact = 0;
            double bound = 0;
            double magnitude = 0;
            for (int b = 0; b < N / block; b++) {
                double amax = 0;
                for (int i = b * block; i < (b + 1) * block; i++) {
                    amax = Math.max(amax, Math.abs(x[i]));
                }
                for (int i = b * block; i < (b + 1) * block; i++) {
                    exact += (double) dw[i] * x[i];
                    bound += Math.abs(dw[i]) * amax / 127 / 2;
                    magnitude += Math.abs(dw[i] * x[i]);
                }
            }
            double got = NativeModel.integerDot(0, type, row, x)[0];
            assertThat(Math.abs(got - exact)).as("type %d", type).isLessThanOrEqualTo(bound + 1e-5 * magnitude);
            // And it is not trivially met: the bound is a small part of the dot product's scale.
            assertThat(bound).as("type %d bound", type).isLessThan(0.02 * magnitude);
        }
    }

    @Test
    void anUnavailableLevelOrAFloatTypeIsRefused() {
        float[] x = gaussian(1, 0f);
        byte[] f32 = GgufWriter.quantize(GgufWriter.F32, x, N);
        assertThatThrownBy(() -> NativeModel.integerDot(0, GgufWriter.F32, f32, x))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("no integer dot product");
        assertThatThrownBy(
                        () -> NativeModel.integerDot(7, GgufWriter.Q8_0, GgufWriter.quantize(GgufWriter.Q8_0, x, N), x))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining("not available");
        assertThat(NativeModel.kernelLevelAvailable(0)).isTrue();
    }

    static IntStream types() {
        return Arrays.stream(TYPES);
    }

    /**
     * The avx512 level's three ways to multiply a matrix (one vector at a time through the rows-in-lanes
     * kernel, several through panels transposed in the call, weights repacked once, multiplied on 2 threads and on
     * 4) and, where there are
     * AMX tiles, the tile products (on the rows unpacked per call from 8 vectors, on the repacked records
     * of 32-value blocks from 16): the same bits for every vector, alone or among up to 23 others. 37 and
     * 117 rows end in a panel of 5 (one vector alone reads 3, or 4 and 4, repacked panels of 32-value blocks
     * in turn); 512 columns are 16 blocks of 32 or 2 super-blocks, and 544 are 17 blocks of 32, the last
     * without the partner whose record Q8_0's and Q4_0's share.
     */
    @ParameterizedTest(name = "type {0}")
    @MethodSource("types")
    void everyKernelOfTheAvx512LevelGivesAVectorTheBitsItGetsAlone(int type) {
        assumeTrue(NativeModel.kernelLevelAvailable(3), "this processor has no avx512 level");
        for (int rows : new int[] {37, 117}) {
            theKernelsAgree(type, rows, 512);
        }
        if (type == GgufWriter.Q8_0 || type == GgufWriter.Q4_0 || type == GgufWriter.Q4_1) {
            theKernelsAgree(type, 37, 544);
        }
    }

    private static void theKernelsAgree(int type, int rows, int cols) {
        Random r = new Random(type);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian() * (1 + (i / cols) % 3);
        }
        byte[] weights = GgufWriter.quantize(type, w, cols);
        for (int n : new int[] {1, 2, 3, 4, 5, 7, 8, 9, 13, 23}) {
            float[] x = new float[n * cols];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian() * (1 + i % 7);
            }
            float[] alone = new float[n * rows];
            for (int t = 0; t < n; t++) {
                float[] one = NativeModel.integerProduct(
                        type, weights, rows, Arrays.copyOfRange(x, t * cols, (t + 1) * cols), 1, 0);
                System.arraycopy(one, 0, alone, t * rows, rows);
            }
            for (int kernel = 0; kernel <= 3; kernel++) {
                assertThat(NativeModel.integerProduct(type, weights, rows, x, n, kernel))
                        .as("%d rows times %d vectors through kernel %d", rows, n, kernel)
                        .containsExactly(alone);
            }
        }
    }

    /**
     * The inputs' quantization, vectorized at the avx512 level, gives the scalar code's bytes:
     * the same scales, rounding (ties to even), clamping and sums, on values with ties, zeros (an all-zero
     * block), negative zeros and both signs' extremes.
     */
    @ParameterizedTest(name = "type {0}")
    @MethodSource("types")
    void theVectorQuantizationOfInputsGivesTheScalarBytes(int type) {
        assumeTrue(NativeModel.kernelLevelAvailable(3), "this processor has no avx512 level");
        Random r = new Random(type);
        float[] x = new float[N];
        for (int i = 0; i < N; i++) {
            x[i] = i % 9 == 1 ? -0.0f : (float) r.nextGaussian() * (1 + i % 4);
        }
        // The first 256 values: halves of odd integers under a maximum of 127, so that the scale is 1 and
        // every value a tie.
        for (int i = 0; i < 256; i++) {
            x[i] = 0.5f * (2 * r.nextInt(127) - 125);
        }
        x[3] = 127;
        Arrays.fill(x, 256, 512, 0.0f);
        x[700] = 1e30f;
        x[701] = -1e30f;
        assertThat(NativeModel.quantizeInput(type, x, false)).isEqualTo(NativeModel.quantizeInput(type, x, true));
        assertThatThrownBy(() -> NativeModel.quantizeInput(type, new float[33], false))
                .hasMessageContaining("positive multiple of");
    }
}
