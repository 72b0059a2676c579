package dev.hybridinference.core.routing;

import dev.hybridinference.core.spi.Deadline;
import java.time.Duration;
import java.util.Objects;

/**
 * How the composite client retries: after every candidate of a route has failed with a retryable error,
 * it waits an exponentially growing, jittered backoff (at least the largest {@code Retry-After} seen,
 * capped at {@code maxRetryAfter}) and goes down the route again, until {@code maxAttempts} attempts in
 * all, {@code maxTotalWait} of waiting in all, or the request's deadline.
 *
 * @param maxAttempts attempts in all, over every member; at least 1
 * @param initialBackoff the first wait
 * @param maxBackoff the longest wait
 * @param multiplier growth per round
 * @param jitter the fraction of each wait drawn at random, 0 to 1
 * @param maxRetryAfter the longest {@code Retry-After} honoured; a provider asking for more is waited for
 *     only this long
 * @param maxTotalWait the most time one call may spend waiting between rounds; a round whose wait would
 *     pass it is not started
 */
public record RetryPolicy(
        int maxAttempts,
        Duration initialBackoff,
        Duration maxBackoff,
        double multiplier,
        double jitter,
        Duration maxRetryAfter,
        Duration maxTotalWait) {
    /** 4 attempts, 100 ms doubling to 2 s, 20% jitter, Retry-After honoured up to 10 s, 30 s of waiting in all. */
    public static final RetryPolicy DEFAULTS = new RetryPolicy(
            4, Duration.ofMillis(100), Duration.ofSeconds(2), 2.0, 0.2, Duration.ofSeconds(10), Duration.ofSeconds(30));

    /** Checks the values. */
    public RetryPolicy {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts must be at least 1, got " + maxAttempts);
        }
        Objects.requireNonNull(initialBackoff, "initialBackoff");
        Objects.requireNonNull(maxBackoff, "maxBackoff");
        Objects.requireNonNull(maxRetryAfter, "maxRetryAfter");
        Objects.requireNonNull(maxTotalWait, "maxTotalWait");
        if (initialBackoff.isNegative()
                || maxBackoff.isNegative()
                || maxRetryAfter.isNegative()
                || maxTotalWait.isNegative()) {
            throw new IllegalArgumentException("backoff durations must not be negative");
        }
        if (!(multiplier >= 1)) {
            throw new IllegalArgumentException("multiplier must be at least 1, got " + multiplier);
        }
        if (!(jitter >= 0 && jitter <= 1)) {
            throw new IllegalArgumentException("jitter must be within [0, 1], got " + jitter);
        }
    }

    /**
     * The wait before retry round {@code round} (1 for the first retry). Saturates rather than overflows:
     * a {@code Retry-After} of a billion seconds, or a {@code maxBackoff} too long to count in nanoseconds,
     * gives the longest wait the caps allow, never an {@link ArithmeticException}. The caller still checks
     * the wait against {@link #maxTotalWait()} and the request's deadline.
     *
     * @param round the retry round, from 1
     * @param retryAfter the largest Retry-After seen in the round, or null
     * @param random a value in [0, 1) for the jitter
     */
    public Duration backoff(int round, Duration retryAfter, double random) {
        double cap = Deadline.saturatedNanos(maxBackoff);
        double base = Deadline.saturatedNanos(initialBackoff) * Math.pow(multiplier, Math.max(0, round - 1));
        // 0 times an infinite growth is NaN; a zero first wait stays zero.
        base = Double.isNaN(base) ? 0 : Math.min(base, cap);
        double jittered = base * (1 - jitter) + base * jitter * random;
        // A double beyond the long range narrows to Long.MAX_VALUE.
        long wait = (long) jittered;
        if (retryAfter != null) {
            long asked = Math.min(Deadline.saturatedNanos(retryAfter), Deadline.saturatedNanos(maxRetryAfter));
            wait = Math.max(wait, asked);
        }
        return Duration.ofNanos(wait);
    }
}
