package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Arrays;
import java.util.Random;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The kernel of F32 and F16 weights repacked into panels of 16 rows: every output is the dot product of its
 * row and its vector, and a vector gets the same bits alone as among others, on one thread or two (which
 * split the rows, or the rows and the vectors). 300 rows end in a panel of 12; 130 and 37 columns are no
 * multiple of any vector width.
 */
class PanelProductTest {

    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
        assumeTrue(NativeModel.cpuFeatures().contains("avx512f"), "the panel kernel needs avx512f");
    }

    static float[] gaussian(Random r, int n, int spread) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian() * (1 + i % spread);
        }
        return v;
    }

    /**
     * Against the float64 dot product of the weights as stored (F16 decoded): each output adds cols terms in
     * float (in blocks of 128, so 130 and 160 columns cross a block's end), so it may lie off by about cols *
     * 2^-24 of the sum of the terms' magnitudes at worst; 1e-5 of that sum is above this for up to 160
     * columns and far below any wrong term. Then the bits: for every
     * count of vectors from 1 to 14 and 64 (all tile widths, and their edges), vector t gives what it gives
     * alone.
     */
    @ParameterizedTest(name = "type {0}, {1} x {2}")
    @CsvSource({"0, 300, 130", "1, 300, 130", "0, 64, 37", "1, 20, 160"})
    void everyVectorGetsItsDotProductsAndTheBitsItGetsAlone(int type, int rows, int cols) {
        Random r = new Random(31L * type + rows);
        byte[] weights = GgufWriter.quantize(type, gaussian(r, rows * cols, 3), cols);
        float[] stored = GgufWriter.dequantize(type, weights, rows * cols);
        for (int threads : new int[] {1, 2}) {
            for (int n : new int[] {1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 64}) {
                float[] x = gaussian(r, n * cols, 7);
                float[] y = NativeModel.panelProduct(type, weights, rows, x, n, threads);
                assertThat(y).hasSize(n * rows);
                for (int t = 0; t < n; t++) {
                    for (int row = 0; row < rows; row++) {
                        double dot = 0, magnitude = 0;
                        for (int k = 0; k < cols; k++) {
                            double term = (double) stored[row * cols + k] * x[t * cols + k];
                            dot += term;
                            magnitude += Math.abs(term);
                        }
                        assertThat((double) y[t * rows + row])
                                .as("row %d, vector %d of %d, %d threads", row, t, n, threads)
                                .isCloseTo(dot, Offset.offset(1e-5 * magnitude + 1e-30));
                    }
                    float[] alone = NativeModel.panelProduct(
                            type, weights, rows, Arrays.copyOfRange(x, t * cols, (t + 1) * cols), 1, threads);
                    assertThat(Arrays.copyOfRange(y, t * rows, (t + 1) * rows))
                            .as("vector %d of %d against alone, %d threads", t, n, threads)
                            .containsExactly(alone);
                }
            }
        }
    }

    @Test
    void badShapesAreRefusedByName() {
        byte[] weights = GgufWriter.quantize(GgufWriter.F32, new float[64], 16);
        assertThatThrownBy(() -> NativeModel.panelProduct(GgufWriter.Q8_0, weights, 4, new float[16], 1, 1))
                .hasMessageContaining("F32 (0) or F16 (1)");
        assertThatThrownBy(() -> NativeModel.panelProduct(GgufWriter.F32, weights, 4, new float[15], 1, 1))
                .hasMessageContaining("x must hold n rows");
        assertThatThrownBy(() -> NativeModel.panelProduct(GgufWriter.F32, weights, 3, new float[16], 1, 1))
                .hasMessageContaining("rows > 0");
    }
}
