package dev.hybridinference.planner;

import java.util.Map;
import java.util.Objects;

/**
 * One request of a traffic: when it arrives, relative to the traffic's start, and its size.
 *
 * @param offsetNanos nanoseconds from the traffic's start to the request's arrival, not negative
 * @param inputTokens prompt tokens, at least 1
 * @param outputTokens tokens the answer has, at least 1
 * @param tags cost-attribution tags the request carries (tier rules may read them); empty for none
 */
public record TrafficRequest(long offsetNanos, int inputTokens, int outputTokens, Map<String, String> tags) {
    /** Checks the figures and copies the tags. */
    public TrafficRequest {
        if (offsetNanos < 0) {
            throw new IllegalArgumentException("offsetNanos must not be negative, got " + offsetNanos);
        }
        if (inputTokens < 1) {
            throw new IllegalArgumentException("inputTokens must be at least 1, got " + inputTokens);
        }
        if (outputTokens < 1) {
            throw new IllegalArgumentException("outputTokens must be at least 1, got " + outputTokens);
        }
        tags = tags.isEmpty() ? Map.of() : Map.copyOf(Objects.requireNonNull(tags, "tags"));
    }

    /** A request without tags. */
    public TrafficRequest(long offsetNanos, int inputTokens, int outputTokens) {
        this(offsetNanos, inputTokens, outputTokens, Map.of());
    }

    /** Input plus output tokens. */
    public long tokens() {
        return (long) inputTokens + outputTokens;
    }
}
