package dev.hybridinference.localgpu;

import java.util.Locale;

/**
 * How the local runtime stores a session's keys and values. {@link #F32} (the default) keeps them as
 * computed; {@link #F16} halves the KV cache's memory and the bytes attention reads per token, at half
 * precision (about 3 significant digits per value; the logits move slightly, and a greedy answer can
 * differ where two tokens were nearly tied), so that more or longer sessions fit.
 */
public enum KvCacheType {
    /** 32-bit floats: exact. */
    F32,
    /** 16-bit floats: half the memory. */
    F16;

    /** The configuration name: {@code f32} or {@code f16}. */
    public String configName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The type named {@code name} ({@code f32} or {@code f16}, any case).
     *
     * @throws IllegalArgumentException for any other name, saying which are allowed
     */
    public static KvCacheType of(String name) {
        for (KvCacheType t : values()) {
            if (t.configName().equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("kvCacheType must be f32 or f16, got \"" + name + "\"");
    }
}
