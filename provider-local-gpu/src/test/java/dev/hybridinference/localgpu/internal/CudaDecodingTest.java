package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The CUDA backend's weight decoding (dequant.h), compiled for the host, against the CPU kernels' row
 * dequantization: every value of rows of each type the CUDA backend computes with, one value at a time (as
 * the embedding lookup decodes) and as the matrix product reads them (the functions its kernels call on
 * the words of a 16-byte load, with unit vectors for the input). Runs on any machine, so that the block
 * layouts the GPU kernels read are checked where there is no GPU.
 */
class CudaDecodingTest {
    @BeforeAll
    static void nativeRuntime() {
        NativeRuntimeTests.assumeLoaded();
    }

    @ParameterizedTest
    @ValueSource(ints = {GgufWriter.F32, GgufWriter.F16, GgufWriter.Q8_0, GgufWriter.Q4_K, GgufWriter.Q6_K})
    void quantizedRowsDecodeAsTheCpuKernelsDecodeThem(int type) {
        Random r = new Random(type);
        int n = 1024;
        for (int round = 0; round < 8; round++) {
            float[] values = new float[n];
            float spread = (float) Math.pow(10, round % 4 - 2);
            for (int i = 0; i < n; i++) {
                values[i] = (float) r.nextGaussian() * spread + (round >= 4 ? spread : 0);
            }
            byte[] row = GgufWriter.quantize(type, values, n);
            float[] cpu = NativeModel.dequantize(0, type, row, n);
            assertThat(NativeModel.dequantize(1, type, row, n))
                    .as("one value at a time")
                    .containsExactly(cpu);
            assertThat(NativeModel.dequantize(2, type, row, n))
                    .as("as the matrix product reads them")
                    .containsExactly(cpu);
            // And the Java reader of the same blocks agrees, so that all three read one layout.
            assertThat(GgufWriter.dequantize(type, row, n)).containsExactly(cpu);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {GgufWriter.Q8_0, GgufWriter.Q4_K, GgufWriter.Q6_K})
    void everyBitPatternOfTheQuantsDecodesAlike(int type) {
        // Random bytes exercise every bit of the packed quants and scales; the block scales (F16) are set to
        // finite values so that the rows hold numbers.
        Random r = new Random(31 * type);
        int n = 2048;
        int blockBytes = GgufWriter.blockBytes(type);
        int blocks = n / GgufWriter.blockElems(type);
        byte[] row = new byte[blocks * blockBytes];
        r.nextBytes(row);
        for (int b = 0; b < blocks; b++) {
            int at = b * blockBytes;
            if (type == GgufWriter.Q6_K) {
                putHalf(row, at + 208, 0.01f + r.nextFloat());
            } else {
                putHalf(row, at, 0.01f + r.nextFloat());
                if (type == GgufWriter.Q4_K) {
                    putHalf(row, at + 2, r.nextFloat());
                }
            }
        }
        float[] cpu = NativeModel.dequantize(0, type, row, n);
        assertThat(NativeModel.dequantize(1, type, row, n)).containsExactly(cpu);
        assertThat(NativeModel.dequantize(2, type, row, n)).containsExactly(cpu);
    }

    @ParameterizedTest
    @ValueSource(ints = {GgufWriter.Q8_0, GgufWriter.Q4_K, GgufWriter.Q6_K})
    void theIntegerProductQuantizesAndMultipliesAsTheCpuFastPrecisionDoes(int type) {
        // Precision fast on CUDA: the input quantized per block as qk::quantize does, and multiplied through
        // dp4a on the words of a load. The integer sums per 32 values (16 for Q6_K) equal the CPU kernels'
        // exactly; the dot products differ only by the order of the float sums.
        Random r = new Random(17 * type);
        int n = 1024;
        for (int round = 0; round < 8; round++) {
            float[] w = new float[n];
            float[] x = new float[n];
            float spread = (float) Math.pow(10, round % 4 - 2);
            for (int i = 0; i < n; i++) {
                w[i] = (float) r.nextGaussian() + (round >= 4 ? 0.5f : 0);
                // The first 256 values zero in one round: a block of zeros has scale 0.
                x[i] = round == 3 && i < 256 ? 0 : (float) r.nextGaussian() * spread + (round >= 4 ? spread : 0);
            }
            byte[] row = GgufWriter.quantize(type, w, n);
            double[] cpu = NativeEngine.integerDot(0, type, row, x);
            double[] cuda = NativeEngine.cudaIntegerDot(type, row, x);
            assertThat(Arrays.copyOfRange(cuda, 1, cuda.length))
                    .as("integer sums per 32 values, round %d", round)
                    .containsExactly(Arrays.copyOfRange(cpu, 1, cpu.length));
            float[] dequantized = GgufWriter.dequantize(type, row, n);
            double magnitude = 0;
            for (int i = 0; i < n; i++) {
                magnitude += Math.abs(dequantized[i] * x[i]);
            }
            assertThat(cuda[0]).as("dot product, round %d", round).isCloseTo(cpu[0], within(1e-5 * magnitude));
        }
    }

    @Test
    void typesTheCudaBackendDoesNotComputeAreNamed() {
        byte[] row = GgufWriter.quantize(GgufWriter.Q4_0, new float[32], 32);
        assertThatThrownBy(() -> NativeModel.dequantize(1, GgufWriter.Q4_0, row, 32))
                .isInstanceOf(NativeEngineException.class)
                .hasMessage("type Q4_0 has no CUDA decoding");
    }

    private static void putHalf(byte[] b, int at, float v) {
        short h = GgufWriter.toHalf(v);
        b[at] = (byte) h;
        b[at + 1] = (byte) (h >> 8);
    }
}
