package dev.hybridinference.core;

import dev.hybridinference.core.spi.Secrets;
import java.time.Duration;
import java.util.Objects;

/**
 * One try at a call: which provider and endpoint it went to, why, and how it ended.
 *
 * @param providerId the provider the attempt went to
 * @param endpoint where inside the provider it went (a replica URL, an endpoint name); never holds a
 *     secret
 * @param reason why this target was chosen
 * @param outcome how the attempt ended
 * @param duration how long it took
 * @param error for a failed attempt, the exception's class and message; otherwise null
 */
public record Attempt(
        String providerId, String endpoint, String reason, Outcome outcome, Duration duration, String error) {
    /** How an attempt ended. */
    public enum Outcome {
        /** It produced the answer. */
        SUCCEEDED,
        /** It failed and the call moved on (or gave up). */
        FAILED,
        /** The caller cancelled it. */
        CANCELLED,
        /** Routing passed the target over without calling it (circuit open, no free slot). */
        SKIPPED
    }

    /** Checks the required parts. */
    public Attempt {
        Objects.requireNonNull(providerId, "providerId");
        Objects.requireNonNull(outcome, "outcome");
        Objects.requireNonNull(duration, "duration");
        endpoint = endpoint == null ? "" : endpoint;
        reason = reason == null ? "" : reason;
        error = Secrets.redact(error);
    }
}
