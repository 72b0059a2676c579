package dev.hybridinference.core.routing;

import java.time.Duration;
import java.util.Objects;

/**
 * How the composite client treats one member. Immutable; build with {@link #builder()}.
 *
 * <p>Capacity ({@link #maxInFlight()}, {@link #maxWaiting()}) matters for a spillover primary; cold-start
 * settings for serverless members; {@link #contextLength()} for context-overflow fallback; {@link
 * #typicalOutputTokens()} for cost estimates.
 */
public final class MemberOptions {
    /** The longest idle timeout, cold-start latency or keep-warm interval accepted. */
    private static final Duration MAX_DURATION = Duration.ofDays(366);

    /** No limits, no cold starts, context unknown. */
    public static final MemberOptions DEFAULTS = builder().build();

    private final int maxInFlight;
    private final double maxWaiting;
    private final int contextLength;
    private final Duration idleTimeout;
    private final Duration coldStartLatency;
    private final Duration keepWarmEvery;
    private final int typicalOutputTokens;

    private MemberOptions(Builder b) {
        this.maxInFlight = b.maxInFlight;
        this.maxWaiting = b.maxWaiting;
        this.contextLength = b.contextLength;
        this.idleTimeout = b.idleTimeout;
        this.coldStartLatency = b.coldStartLatency;
        this.keepWarmEvery = b.keepWarmEvery;
        this.typicalOutputTokens = b.typicalOutputTokens;
    }

    /** A builder with the defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** Calls the composite client sends to this member at once at most; 0 for no limit. */
    public int maxInFlight() {
        return maxInFlight;
    }

    /**
     * The member counts as full when its load signal reports this many queued requests; NaN for no such
     * limit. Needs a member that reports load ({@link dev.hybridinference.core.LoadAware}).
     */
    public double maxWaiting() {
        return maxWaiting;
    }

    /** The model's context in tokens; 0 when unknown. */
    public int contextLength() {
        return contextLength;
    }

    /**
     * After this long without a call the platform scales the member to zero, so the next call is
     * predicted cold; null for members that never cold start.
     */
    public Duration idleTimeout() {
        return idleTimeout;
    }

    /** The cold-start latency assumed until one has been observed. */
    public Duration coldStartLatency() {
        return coldStartLatency;
    }

    /** Send a keep-warm ping this often; null for none. */
    public Duration keepWarmEvery() {
        return keepWarmEvery;
    }

    /** The usual number of output tokens, for cost estimates when a request sets no max tokens. */
    public int typicalOutputTokens() {
        return typicalOutputTokens;
    }

    /** Builds {@link MemberOptions}. Not thread-safe. */
    public static final class Builder {
        private int maxInFlight;
        private double maxWaiting = Double.NaN;
        private int contextLength;
        private Duration idleTimeout;
        private Duration coldStartLatency = Duration.ofSeconds(10);
        private Duration keepWarmEvery;
        private int typicalOutputTokens = 256;

        private Builder() {}

        /** Calls in flight at most; 0 for no limit. */
        public Builder maxInFlight(int maxInFlight) {
            if (maxInFlight < 0) {
                throw new IllegalArgumentException("maxInFlight must not be negative, got " + maxInFlight);
            }
            this.maxInFlight = maxInFlight;
            return this;
        }

        /** Queued requests (from the load signal) at which the member counts as full. */
        public Builder maxWaiting(double maxWaiting) {
            if (!(maxWaiting >= 0)) {
                throw new IllegalArgumentException("maxWaiting must not be negative, got " + maxWaiting);
            }
            this.maxWaiting = maxWaiting;
            return this;
        }

        /** The model's context in tokens. */
        public Builder contextLength(int contextLength) {
            if (contextLength < 0) {
                throw new IllegalArgumentException("contextLength must not be negative, got " + contextLength);
            }
            this.contextLength = contextLength;
            return this;
        }

        /** The platform's scale-to-zero idle timeout; makes the member cold-start aware. */
        public Builder idleTimeout(Duration idleTimeout) {
            this.idleTimeout = positive(idleTimeout, "idleTimeout");
            return this;
        }

        /** The cold-start latency assumed until one is observed. */
        public Builder coldStartLatency(Duration coldStartLatency) {
            this.coldStartLatency = positive(coldStartLatency, "coldStartLatency");
            return this;
        }

        /** Sends a one-token keep-warm call this often. */
        public Builder keepWarmEvery(Duration every) {
            this.keepWarmEvery = positive(every, "keepWarmEvery");
            return this;
        }

        /** The usual number of output tokens. */
        public Builder typicalOutputTokens(int tokens) {
            if (tokens < 0) {
                throw new IllegalArgumentException("typicalOutputTokens must not be negative, got " + tokens);
            }
            this.typicalOutputTokens = tokens;
            return this;
        }

        /**
         * A positive duration of at most {@link #MAX_DURATION}: these durations are turned into nanoseconds
         * and added to clock readings, which a longer one would overflow.
         */
        private static Duration positive(Duration d, String name) {
            Objects.requireNonNull(d, name);
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException(name + " must be positive, got " + d);
            }
            if (d.compareTo(MAX_DURATION) > 0) {
                throw new IllegalArgumentException(name + " must be at most 366 days, got " + d);
            }
            return d;
        }

        /** The options. */
        public MemberOptions build() {
            return new MemberOptions(this);
        }
    }
}
