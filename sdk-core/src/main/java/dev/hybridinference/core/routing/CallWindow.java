package dev.hybridinference.core.routing;

import dev.hybridinference.core.spi.Deadline;

/**
 * The recent calls of one member as the circuit breaker's rate rules see them: how many ended in the window,
 * how many failed, how many were slow. Either the last N calls (a ring of outcomes) or the calls of the last
 * stretch of time (a ring of buckets, each a fixed slice of it). Not thread-safe: its member guards it.
 */
abstract class CallWindow {
    /** Most buckets a time window is cut into; more would only cost memory and time. */
    static final int MAX_BUCKETS = 120;

    /** The window for {@code config}, or null when no rate rule is on. */
    static CallWindow of(CircuitBreakerConfig config) {
        if (!config.hasWindow()) {
            return null;
        }
        return config.windowCalls() > 0
                ? new Calls(config.windowCalls())
                : new Time(Deadline.saturatedNanos(config.windowDuration()));
    }

    /** Adds a call that ended at {@code nowNanos}. */
    abstract void record(boolean failed, boolean slow, long nowNanos);

    /** Calls in the window at {@code nowNanos}. */
    abstract int calls(long nowNanos);

    /** Failures in the window, as of the last {@link #calls} asked. */
    abstract int failures();

    /** Slow calls in the window, as of the last {@link #calls} asked. */
    abstract int slow();

    /** Forgets every call. */
    abstract void clear();

    /** The last N calls. */
    private static final class Calls extends CallWindow {
        private static final byte FAILED = 1;
        private static final byte SLOW = 2;
        private final byte[] ring;
        private int next;
        private int size;
        private int failures;
        private int slow;

        Calls(int n) {
            ring = new byte[n];
        }

        @Override
        void record(boolean failed, boolean isSlow, long nowNanos) {
            if (size == ring.length) {
                byte old = ring[next];
                failures -= old & FAILED;
                slow -= (old & SLOW) >> 1;
            } else {
                size++;
            }
            byte b = (byte) ((failed ? FAILED : 0) | (isSlow ? SLOW : 0));
            ring[next] = b;
            failures += failed ? 1 : 0;
            slow += isSlow ? 1 : 0;
            next = (next + 1) % ring.length;
        }

        @Override
        int calls(long nowNanos) {
            return size;
        }

        @Override
        int failures() {
            return failures;
        }

        @Override
        int slow() {
            return slow;
        }

        @Override
        void clear() {
            next = 0;
            size = 0;
            failures = 0;
            slow = 0;
        }
    }

    /**
     * The calls of the last stretch of time, in buckets: each holds the counts of one slice, and the slice it
     * holds (its index on the nanosecond counter). A bucket whose slice has left the window counts for nothing
     * and is reused.
     */
    private static final class Time extends CallWindow {
        private final long sliceNanos;
        private final long[] slice;
        private final int[] calls;
        private final int[] failed;
        private final int[] slowCalls;
        private int failures;
        private int slow;

        Time(long windowNanos) {
            int n = (int) Math.max(1, Math.min(MAX_BUCKETS, windowNanos / 1_000_000_000L));
            sliceNanos = Math.max(1, windowNanos / n);
            slice = new long[n];
            calls = new int[n];
            failed = new int[n];
            slowCalls = new int[n];
            java.util.Arrays.fill(slice, Long.MIN_VALUE);
        }

        @Override
        void record(boolean f, boolean s, long nowNanos) {
            long at = Math.floorDiv(nowNanos, sliceNanos);
            int i = (int) Math.floorMod(at, (long) slice.length);
            if (slice[i] != at) {
                slice[i] = at;
                calls[i] = 0;
                failed[i] = 0;
                slowCalls[i] = 0;
            }
            calls[i]++;
            failed[i] += f ? 1 : 0;
            slowCalls[i] += s ? 1 : 0;
        }

        @Override
        int calls(long nowNanos) {
            long at = Math.floorDiv(nowNanos, sliceNanos);
            int total = 0;
            failures = 0;
            slow = 0;
            for (int i = 0; i < slice.length; i++) {
                // The current slice and the ones before it that still fit in the window.
                if (slice[i] != Long.MIN_VALUE && at - slice[i] < slice.length && slice[i] <= at) {
                    total += calls[i];
                    failures += failed[i];
                    slow += slowCalls[i];
                }
            }
            return total;
        }

        @Override
        int failures() {
            return failures;
        }

        @Override
        int slow() {
            return slow;
        }

        @Override
        void clear() {
            java.util.Arrays.fill(slice, Long.MIN_VALUE);
        }
    }
}
