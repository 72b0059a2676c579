package dev.hybridinference.localgpu;

import java.util.Locale;

/**
 * How the local runtime multiplies quantized weights (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K). F32 and F16
 * weights are multiplied in floats either way.
 */
public enum Precision {
    /** Weights dequantized to floats and multiplied with the float activations: the reference results. */
    EXACT,
    /**
     * Activations quantized to 8 bits per value once per matrix product, then integer dot products: two
     * to three times the float kernels' throughput per weight row, logits within a few percent of their
     * RMS of the exact ones. The default.
     */
    FAST;

    /** The configuration spelling: {@code exact} or {@code fast}. */
    public String configName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses {@code exact} or {@code fast}.
     *
     * @throws IllegalArgumentException for anything else, naming the allowed values
     */
    public static Precision parse(String value) {
        for (Precision p : values()) {
            if (p.configName().equals(value)) {
                return p;
            }
        }
        throw new IllegalArgumentException("expected exact or fast, got \"" + value + "\"");
    }
}
