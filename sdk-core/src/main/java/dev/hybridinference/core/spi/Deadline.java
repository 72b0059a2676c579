package dev.hybridinference.core.spi;

import dev.hybridinference.core.RequestOptions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.function.LongSupplier;

/**
 * The moment by which a call must end, on a monotonic clock, or no such moment at all ({@link #none()}).
 *
 * <p>Every operation saturates instead of overflowing. A deadline is kept as a point on a {@link
 * System#nanoTime()}-style clock and read only through differences, the one safe way to use such a clock.
 * That works for points up to {@link #HORIZON} (about 146 years) away, so a deadline farther out than that
 * ({@link Instant#MAX}, a date in the year 9999, a timeout of 300 years) is treated as no deadline, and
 * durations too long for a {@code long} of nanoseconds are read as the longest one. Callers never see an
 * {@link ArithmeticException}.
 *
 * <p>Two deadlines are compared on the assumption that they read the same clock. Immutable and
 * thread-safe.
 */
public final class Deadline implements Comparable<Deadline> {
    /** The farthest a deadline can be from now; a deadline farther away is no deadline. About 146 years. */
    public static final Duration HORIZON = Duration.ofNanos(Long.MAX_VALUE / 2);

    private static final long HORIZON_NANOS = Long.MAX_VALUE / 2;
    private static final Deadline NONE = new Deadline(System::nanoTime, 0, true);

    private final LongSupplier nanoTime;
    private final long atNanos;
    private final boolean none;

    private Deadline(LongSupplier nanoTime, long atNanos, boolean none) {
        this.nanoTime = nanoTime;
        this.atNanos = atNanos;
        this.none = none;
    }

    /** No deadline: never expires, and loses to any real deadline in {@link #min}. */
    public static Deadline none() {
        return NONE;
    }

    /** The deadline {@code timeout} from now on {@link System#nanoTime()}; none when it is beyond the horizon. */
    public static Deadline after(Duration timeout) {
        return after(timeout, System::nanoTime);
    }

    /** The deadline {@code timeout} from now on {@code nanoTime}; none when it is beyond the horizon. */
    public static Deadline after(Duration timeout, LongSupplier nanoTime) {
        Objects.requireNonNull(nanoTime, "nanoTime");
        return fromOffset(nanoTime.getAsLong(), saturatedNanos(timeout), nanoTime);
    }

    /**
     * The deadline a request's options set: the earlier of its timeout and its absolute deadline, or none
     * when it has neither.
     *
     * @param options the request's options
     * @param now the wall-clock time the call started, which the absolute deadline is measured from
     * @param nowNanos {@code nanoTime} read at the same moment as {@code now}
     * @param nanoTime the monotonic clock the deadline is read on
     */
    public static Deadline of(RequestOptions options, Instant now, long nowNanos, LongSupplier nanoTime) {
        Objects.requireNonNull(nanoTime, "nanoTime");
        Deadline d = NONE;
        Optional<Duration> timeout = options.timeout();
        if (timeout.isPresent()) {
            d = fromOffset(nowNanos, saturatedNanos(timeout.get()), nanoTime);
        }
        Optional<Instant> absolute = options.deadline();
        if (absolute.isPresent()) {
            // Duration.between of two instants always fits a Duration; only its nanoseconds may not.
            d = d.min(fromOffset(nowNanos, saturatedNanos(Duration.between(now, absolute.get())), nanoTime));
        }
        return d;
    }

    /** {@link #of(RequestOptions, Instant, long, LongSupplier)} from now, on {@link System#nanoTime()}. */
    public static Deadline of(RequestOptions options, Clock clock) {
        return of(options, clock.instant(), System.nanoTime(), System::nanoTime);
    }

    private static Deadline fromOffset(long baseNanos, long offsetNanos, LongSupplier nanoTime) {
        if (offsetNanos > HORIZON_NANOS) {
            return NONE;
        }
        // Wrapping addition is intended: only differences of nanoTime readings carry meaning.
        return new Deadline(nanoTime, baseNanos + Math.max(offsetNanos, -HORIZON_NANOS), false);
    }

    /** Whether this is no deadline. */
    public boolean isNone() {
        return none;
    }

    /** Whether the deadline has come. Never true for {@link #none()}. */
    public boolean isExpired() {
        return !none && remainingNanos() <= 0;
    }

    /** The time left, zero or negative once the deadline has passed; empty for {@link #none()}. */
    public Optional<Duration> remaining() {
        return none ? Optional.empty() : Optional.of(Duration.ofNanos(remainingNanos()));
    }

    /** The time left in nanoseconds, negative once passed; {@link Long#MAX_VALUE} for {@link #none()}. */
    public long remainingNanos() {
        return none ? Long.MAX_VALUE : atNanos - nanoTime.getAsLong();
    }

    /** Whether the deadline comes within {@code wait} from now, so that waiting that long would reach it. */
    public boolean expiresWithin(Duration wait) {
        return !none && remainingNanos() <= saturatedNanos(wait);
    }

    /** {@code wait}, shortened to the time left; never negative. */
    public Duration limit(Duration wait) {
        long w = Math.max(0, saturatedNanos(wait));
        if (none) {
            return Duration.ofNanos(w);
        }
        return Duration.ofNanos(Math.max(0, Math.min(w, remainingNanos())));
    }

    /** The earlier of this deadline and {@code other}; a real deadline wins over none. */
    public Deadline min(Deadline other) {
        if (other.none) {
            return this;
        }
        if (none) {
            return other;
        }
        return atNanos - other.atNanos <= 0 ? this : other;
    }

    /**
     * This deadline moved by {@code d} (later when positive): none stays none, and one moved beyond the
     * horizon becomes none.
     */
    public Deadline plus(Duration d) {
        if (none) {
            return this;
        }
        long now = nanoTime.getAsLong();
        return fromOffset(now, saturatedAdd(atNanos - now, saturatedNanos(d)), nanoTime);
    }

    /** Earlier deadlines first; none last. */
    @Override
    public int compareTo(Deadline other) {
        if (none || other.none) {
            return Boolean.compare(none, other.none);
        }
        return Long.signum(atNanos - other.atNanos);
    }

    @Override
    public String toString() {
        return none
                ? "no deadline"
                : "deadline in " + Duration.ofNanos(remainingNanos()).toMillis() + " ms";
    }

    /**
     * {@code d} in nanoseconds, saturated at {@link Long#MAX_VALUE} or {@link Long#MIN_VALUE} where {@link
     * Duration#toNanos()} would overflow.
     */
    public static long saturatedNanos(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return d.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
    }

    /** {@code d} in milliseconds, saturated where {@link Duration#toMillis()} would overflow; for messages. */
    public static long saturatedMillis(Duration d) {
        try {
            return d.toMillis();
        } catch (ArithmeticException e) {
            return d.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
    }

    private static long saturatedAdd(long a, long b) {
        long r = a + b;
        if (((a ^ r) & (b ^ r)) < 0) {
            return a < 0 ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
        return r;
    }
}
