package dev.hybridinference.core.internal;

import java.security.SecureRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Ids for receipts and calls, unique across processes without coordination: a random 40-bit prefix drawn
 * once per process and a 64-bit counter, {@code r-} and 26 hex digits. Two processes share a prefix with a
 * chance of one in a trillion per pair; the counter never repeats within one. Cheap: one atomic increment.
 */
public final class ReceiptIds {
    private static final String PREFIX;
    private static final AtomicLong COUNTER = new AtomicLong();

    static {
        long random = new SecureRandom().nextLong() & 0xFF_FFFF_FFFFL;
        PREFIX = "r-" + String.format("%010x", random);
    }

    private ReceiptIds() {}

    /** A new id. */
    public static String next() {
        String n = Long.toHexString(COUNTER.incrementAndGet());
        return PREFIX + "0000000000000000".substring(n.length()) + n;
    }
}
