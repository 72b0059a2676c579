package dev.hybridinference.core.routing;

import java.time.Duration;
import java.util.Objects;

/**
 * When a member's circuit opens: after {@link #failureThreshold()} retryable failures in a row, and, when
 * switched on, when the failure rate or the rate of slow calls over a sliding window of recent calls reaches
 * its threshold. An open circuit skips the member for {@link #cooldown()}; then one trial call decides: it
 * closes the circuit when it succeeds (and, with the slow-call rule on, is not slow), and opens it again for
 * another cooldown otherwise.
 *
 * <p>The window is either the last {@link #windowCalls()} calls, or the calls that ended in the last {@link
 * #windowDuration()}; a rate counts only once the window holds at least {@link #minimumCalls()} calls, so
 * that one failure among the first calls does not open the circuit. The window starts empty whenever the
 * circuit opens or closes. What counts:
 *
 * <ul>
 *   <li>a <b>failure</b> is a retryable error (unavailable, rate limited, timed out...): the same errors that
 *       count towards the failures in a row. An error no other attempt could fix (an invalid request, an
 *       authentication error) says nothing about the member's health and is not counted at all;
 *   <li>a <b>slow call</b> is one whose duration is at least {@link #slowCallDuration()}: for a stream, the
 *       time to its first chunk; otherwise its receipt's total time. A failure counts as slow too when its
 *       partial receipt says it took that long.
 * </ul>
 *
 * <p>{@link #DEFAULTS} is five failures in a row and a cooldown of 30 s, with both rates off. A time window
 * slides in steps of a hundred-and-twentieth of its length (a second at least), so it covers between that
 * much less and its whole length.
 *
 * <p>Immutable and thread-safe; build one with {@link #builder()} or {@link #toBuilder()}, which check each
 * value as it is set.
 *
 * @param failureThreshold retryable failures in a row that open the circuit; at least 1
 * @param cooldown how long an open circuit skips the member before a trial call; not negative
 * @param failureRateThreshold the percentage of failures in the window that opens the circuit, 1 to 100; 0
 *     for no failure-rate rule
 * @param slowCallRateThreshold the percentage of slow calls in the window that opens the circuit, 1 to 100;
 *     0 for no slow-call rule
 * @param slowCallDuration how long a call takes to count as slow; positive with a slow-call rule, {@link
 *     Duration#ZERO} without one
 * @param windowCalls the window as a number of calls, 1 to {@link #MAX_WINDOW_CALLS}; 0 for a time window
 * @param windowDuration the window as a length of time, from a second to a day; null for a window of calls
 * @param minimumCalls the calls the window must hold before a rate counts; at least 1 and, for a window of
 *     calls, at most {@code windowCalls}
 */
public record CircuitBreakerConfig(
        int failureThreshold,
        Duration cooldown,
        int failureRateThreshold,
        int slowCallRateThreshold,
        Duration slowCallDuration,
        int windowCalls,
        Duration windowDuration,
        int minimumCalls) {

    /** The longest window of calls: each call takes a byte of each member's state. */
    public static final int MAX_WINDOW_CALLS = 10_000;

    /** The shortest time window. */
    public static final Duration MIN_WINDOW_DURATION = Duration.ofSeconds(1);

    /** The longest time window. */
    public static final Duration MAX_WINDOW_DURATION = Duration.ofDays(1);

    /** Five retryable failures in a row open the circuit for 30 s; no rate rules. */
    public static final CircuitBreakerConfig DEFAULTS =
            new CircuitBreakerConfig(5, Duration.ofSeconds(30), 0, 0, Duration.ZERO, 100, null, 10);

    /** Checks every value; the message names the one at fault and what it may be. */
    public CircuitBreakerConfig {
        if (failureThreshold < 1) {
            throw new IllegalArgumentException("failureThreshold must be at least 1, got " + failureThreshold);
        }
        Objects.requireNonNull(cooldown, "cooldown");
        if (cooldown.isNegative()) {
            throw new IllegalArgumentException("cooldown must not be negative, got " + cooldown);
        }
        percent("failureRateThreshold", failureRateThreshold);
        percent("slowCallRateThreshold", slowCallRateThreshold);
        Objects.requireNonNull(slowCallDuration, "slowCallDuration");
        if (slowCallRateThreshold > 0 && (slowCallDuration.isZero() || slowCallDuration.isNegative())) {
            throw new IllegalArgumentException(
                    "slowCallDuration must be positive when slowCallRateThreshold is set, got " + slowCallDuration);
        }
        if (slowCallRateThreshold == 0 && !slowCallDuration.isZero()) {
            throw new IllegalArgumentException(
                    "slowCallDuration is set but slowCallRateThreshold is not: set both, or neither");
        }
        if (windowCalls < 0 || windowCalls > MAX_WINDOW_CALLS) {
            throw new IllegalArgumentException(
                    "windowCalls must be from 1 to " + MAX_WINDOW_CALLS + " (0 for a time window), got " + windowCalls);
        }
        if ((windowCalls > 0) == (windowDuration != null)) {
            throw new IllegalArgumentException("set the window either as windowCalls or as windowDuration, not "
                    + (windowCalls > 0 ? "both" : "neither"));
        }
        if (windowDuration != null
                && (windowDuration.compareTo(MIN_WINDOW_DURATION) < 0
                        || windowDuration.compareTo(MAX_WINDOW_DURATION) > 0)) {
            throw new IllegalArgumentException("windowDuration must be from 1 s to 1 day, got " + windowDuration);
        }
        if (minimumCalls < 1) {
            throw new IllegalArgumentException("minimumCalls must be at least 1, got " + minimumCalls);
        }
        if (windowCalls > 0 && minimumCalls > windowCalls) {
            throw new IllegalArgumentException("minimumCalls (" + minimumCalls + ") must not exceed windowCalls ("
                    + windowCalls + "): the window would never hold enough calls");
        }
    }

    private static void percent(String name, int value) {
        if (value < 0 || value > 100) {
            throw new IllegalArgumentException(name + " must be a percentage from 1 to 100 (0 for off), got " + value);
        }
    }

    /** A builder starting from {@link #DEFAULTS}. */
    public static Builder builder() {
        return DEFAULTS.toBuilder();
    }

    /** A builder starting from this configuration. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** Whether a rate rule is on, so that calls are kept in a window. */
    public boolean hasWindow() {
        return failureRateThreshold > 0 || slowCallRateThreshold > 0;
    }

    /** Builds a {@link CircuitBreakerConfig}; each setter checks its value. Not thread-safe. */
    public static final class Builder {
        private CircuitBreakerConfig c;

        private Builder(CircuitBreakerConfig start) {
            this.c = start;
        }

        /** Retryable failures in a row that open the circuit; at least 1. */
        public Builder failureThreshold(int failures) {
            c = new CircuitBreakerConfig(
                    failures,
                    c.cooldown,
                    c.failureRateThreshold,
                    c.slowCallRateThreshold,
                    c.slowCallDuration,
                    c.windowCalls,
                    c.windowDuration,
                    c.minimumCalls);
            return this;
        }

        /** How long an open circuit skips the member before its trial call. */
        public Builder cooldown(Duration cooldown) {
            c = new CircuitBreakerConfig(
                    c.failureThreshold,
                    cooldown,
                    c.failureRateThreshold,
                    c.slowCallRateThreshold,
                    c.slowCallDuration,
                    c.windowCalls,
                    c.windowDuration,
                    c.minimumCalls);
            return this;
        }

        /** Opens the circuit when at least {@code percent} of the window's calls failed; 0 turns it off. */
        public Builder failureRateThreshold(int percent) {
            c = new CircuitBreakerConfig(
                    c.failureThreshold,
                    c.cooldown,
                    percent,
                    c.slowCallRateThreshold,
                    c.slowCallDuration,
                    c.windowCalls,
                    c.windowDuration,
                    c.minimumCalls);
            return this;
        }

        /**
         * Opens the circuit when at least {@code percent} of the window's calls took {@code slowCall} or
         * longer; a percentage of 0 (with {@link Duration#ZERO}) turns it off.
         */
        public Builder slowCallRateThreshold(int percent, Duration slowCall) {
            c = new CircuitBreakerConfig(
                    c.failureThreshold,
                    c.cooldown,
                    c.failureRateThreshold,
                    percent,
                    Objects.requireNonNull(slowCall, "slowCall"),
                    c.windowCalls,
                    c.windowDuration,
                    c.minimumCalls);
            return this;
        }

        /**
         * The window is the last {@code calls} calls (replacing a time window); a {@link #minimumCalls} above
         * {@code calls} is lowered to it, so set that after this.
         */
        public Builder windowCalls(int calls) {
            c = new CircuitBreakerConfig(
                    c.failureThreshold,
                    c.cooldown,
                    c.failureRateThreshold,
                    c.slowCallRateThreshold,
                    c.slowCallDuration,
                    calls,
                    null,
                    Math.min(c.minimumCalls, Math.max(1, calls)));
            return this;
        }

        /** The window is the calls that ended in the last {@code length} (replacing a window of calls). */
        public Builder windowDuration(Duration length) {
            c = new CircuitBreakerConfig(
                    c.failureThreshold,
                    c.cooldown,
                    c.failureRateThreshold,
                    c.slowCallRateThreshold,
                    c.slowCallDuration,
                    0,
                    Objects.requireNonNull(length, "length"),
                    c.minimumCalls);
            return this;
        }

        /** The calls the window must hold before a rate counts. */
        public Builder minimumCalls(int calls) {
            c = new CircuitBreakerConfig(
                    c.failureThreshold,
                    c.cooldown,
                    c.failureRateThreshold,
                    c.slowCallRateThreshold,
                    c.slowCallDuration,
                    c.windowCalls,
                    c.windowDuration,
                    calls);
            return this;
        }

        /** The configuration. */
        public CircuitBreakerConfig build() {
            return c;
        }
    }
}
