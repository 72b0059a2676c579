package dev.hybridinference.core;

import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * How a request should be carried out, as opposed to what it asks the model. Immutable.
 *
 * <p>The deadline bounds everything the call does (queueing, retries, streaming); the latency
 * objective is a softer target that routing uses to skip a member a cold start would make too slow.
 */
public final class RequestOptions {
    /** No deadline, no objective, no session, no tags. */
    public static final RequestOptions DEFAULTS = builder().build();

    private final Instant deadline;
    private final Duration timeout;
    private final Duration latencyObjective;
    private final String sessionId;
    private final Map<String, String> tags;
    private final String tierHint;

    private RequestOptions(Builder b) {
        this.deadline = b.deadline;
        this.timeout = b.timeout;
        this.latencyObjective = b.latencyObjective;
        this.sessionId = b.sessionId;
        this.tags = Map.copyOf(b.tags);
        this.tierHint = b.tierHint;
    }

    /** A builder with nothing set. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder that starts from these options. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.deadline = deadline;
        b.timeout = timeout;
        b.latencyObjective = latencyObjective;
        b.sessionId = sessionId;
        b.tags.putAll(tags);
        b.tierHint = tierHint;
        return b;
    }

    /** The absolute time by which the call must end, if one was set. */
    public Optional<Instant> deadline() {
        return Optional.ofNullable(deadline);
    }

    /**
     * A time limit counted from when the call starts, if one was set. When both this and {@link
     * #deadline()} are set, the earlier one wins.
     */
    public Optional<Duration> timeout() {
        return Optional.ofNullable(timeout);
    }

    /** The latency the caller hopes for; routing avoids members that would miss it. */
    public Optional<Duration> latencyObjective() {
        return Optional.ofNullable(latencyObjective);
    }

    /** The conversation this call belongs to, for KV-cache affinity. */
    public Optional<String> sessionId() {
        return Optional.ofNullable(sessionId);
    }

    /** Cost-attribution tags such as {@code tenant} or {@code feature}; never null. */
    public Map<String, String> tags() {
        return tags;
    }

    /** A tier the caller asks for, if any; routing rules may honour it. */
    public Optional<String> tierHint() {
        return Optional.ofNullable(tierHint);
    }

    @Override
    public String toString() {
        return "RequestOptions{deadline=" + deadline + ", timeout=" + timeout + ", latencyObjective="
                + latencyObjective + ", sessionId=" + sessionId + ", tags=" + tags + ", tierHint=" + tierHint
                + '}';
    }

    /** Builds {@link RequestOptions}. Not thread-safe. */
    public static final class Builder {
        private Instant deadline;
        private Duration timeout;
        private Duration latencyObjective;
        private String sessionId;
        private final Map<String, String> tags = new LinkedHashMap<>();
        private String tierHint;

        private Builder() {}

        /** The absolute time by which the call must end. */
        public Builder deadline(Instant deadline) {
            this.deadline = deadline;
            return this;
        }

        /** A time limit counted from the start of the call; must be positive. */
        public Builder timeout(Duration timeout) {
            if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
                throw new IllegalArgumentException("timeout must be positive, got " + timeout);
            }
            this.timeout = timeout;
            return this;
        }

        /** The latency the caller hopes for; must be positive. */
        public Builder latencyObjective(Duration latencyObjective) {
            if (latencyObjective != null && (latencyObjective.isNegative() || latencyObjective.isZero())) {
                throw new IllegalArgumentException("latencyObjective must be positive, got " + latencyObjective);
            }
            this.latencyObjective = latencyObjective;
            return this;
        }

        /** The conversation id used for KV-cache affinity. */
        public Builder sessionId(String sessionId) {
            this.sessionId = sessionId;
            return this;
        }

        /** Adds one cost-attribution tag. */
        public Builder tag(String key, String value) {
            if (key == null || key.isBlank() || value == null) {
                throw new IllegalArgumentException("a tag needs a non-blank key and a value");
            }
            tags.put(key, value);
            return this;
        }

        /** Adds every tag of {@code tags}. */
        public Builder tags(Map<String, String> tags) {
            tags.forEach(this::tag);
            return this;
        }

        /** A tier the caller asks for. */
        public Builder tierHint(String tierHint) {
            this.tierHint = tierHint;
            return this;
        }

        /** The options. */
        public RequestOptions build() {
            return new RequestOptions(this);
        }
    }
}
