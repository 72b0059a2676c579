package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The reference quantizers keep values within their format's resolution. */
class GgufWriterTest {
    @ParameterizedTest(name = "type {0}: error within {1} of the block's largest magnitude")
    @CsvSource({"1, 0.001", "2, 0.13", "3, 0.07", "8, 0.005", "12, 0.08", "13, 0.04", "14, 0.02"})
    void quantizedValuesStayCloseToTheOriginals(int type, double relative) {
        Random r = new Random(type);
        float[] x = new float[4096];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian() * (1 + i % 7);
        }
        float[] y = GgufWriter.dequantize(type, GgufWriter.quantize(type, x, 256), x.length);
        int block = 256;
        for (int b = 0; b < x.length / block; b++) {
            double amax = 0;
            for (int i = 0; i < block; i++) {
                amax = Math.max(amax, Math.abs(x[b * block + i]));
            }
            for (int i = 0; i < block; i++) {
                assertThat((double) Math.abs(y[b * block + i] - x[b * block + i]))
                        .as("value %d", b * block + i)
                        .isLessThanOrEqualTo(relative * amax);
            }
        }
        assertThat(GgufWriter.quantize(type, x, 256))
                .hasSize(x.length / GgufWriter.blockElems(type) * GgufWriter.blockBytes(type));
    }

    @Test
    void halfPrecisionRoundTripsAndRoundsToNearest() {
        for (float f : new float[] {0f, -0f, 1f, -2.5f, 65504f, 6.1035156e-5f, 5.9604645e-8f, 0.1f, 3.14159f}) {
            float back = GgufWriter.fromHalf(GgufWriter.toHalf(f));
            assertThat(Math.abs(back - f)).as("%s", f).isLessThanOrEqualTo(Math.abs(f) / 1024 + 1e-7f);
        }
        assertThat(GgufWriter.fromHalf(GgufWriter.toHalf(1e6f))).isInfinite();
        assertThat(GgufWriter.toHalf(1.0f)).isEqualTo((short) 0x3C00);
        assertThat(GgufWriter.toHalf(-2.0f)).isEqualTo((short) 0xC000);
    }
}
