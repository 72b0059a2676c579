package dev.hybridinference.core;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * What is known about a cold start on one call: whether routing predicted it, whether the call saw it,
 * and how long it took. Immutable.
 *
 * @param predicted routing expected the member to be cold when it chose it
 * @param observed the platform or the measured latency showed that the call started new capacity
 * @param duration how long the cold start took: the provider's measure when {@code observed} (from the
 *     platform, or the call's latency beyond its usual warm latency), otherwise the predicted duration
 *     when {@code predicted}; empty when unknown or when there was none
 */
public record ColdStart(boolean predicted, boolean observed, Optional<Duration> duration) {
    /** Neither predicted nor observed: the normal case for servers and local models. */
    public static final ColdStart NONE = new ColdStart(false, false);

    /** Observed by the provider, whatever was predicted, its duration unknown. */
    public static final ColdStart OBSERVED = new ColdStart(false, true);

    /** A cold start without a duration. */
    public ColdStart(boolean predicted, boolean observed) {
        this(predicted, observed, Optional.empty());
    }

    /**
     * Checks the duration: not negative, and only where a cold start was predicted or observed.
     *
     * @throws IllegalArgumentException for a negative duration, or a duration without a cold start
     */
    public ColdStart {
        duration = duration == null ? Optional.empty() : duration;
        if (duration.isPresent()) {
            if (duration.get().isNegative()) {
                throw new IllegalArgumentException(
                        "a cold start's duration must not be negative, got " + duration.get());
            }
            if (!predicted && !observed) {
                throw new IllegalArgumentException("a cold start duration needs a predicted or observed cold start");
            }
        }
    }

    /** A cold start the call saw, which took {@code duration}. */
    public static ColdStart observed(Duration duration) {
        return new ColdStart(false, true, Optional.of(Objects.requireNonNull(duration, "duration")));
    }

    /** A cold start routing expected, expected to take {@code duration}. */
    public static ColdStart predicted(Duration duration) {
        return new ColdStart(true, false, Optional.of(Objects.requireNonNull(duration, "duration")));
    }

    /**
     * This cold start with routing's prediction set. An observed cold start keeps its measured duration; a
     * prediction that is taken back drops a predicted duration.
     */
    public ColdStart withPredicted(boolean predicted) {
        if (predicted == this.predicted) {
            return this;
        }
        return new ColdStart(predicted, observed, observed || predicted ? duration : Optional.empty());
    }

    /** Whether a cold start was predicted or observed. */
    public boolean any() {
        return predicted || observed;
    }
}
