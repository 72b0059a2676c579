package dev.hybridinference.core.spi;

import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.Usage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * What a provider's call produced, before the core adds timing, cost and the receipt. Immutable.
 *
 * <p>Providers build it with {@link #builder()}: the record's canonical constructor gains a parameter
 * with every new fact, and a provider that calls it breaks each time; the builder does not. Only {@code
 * finishReason} is required; everything a provider does not know keeps its empty value and the core
 * fills in its own measure where it has one.
 *
 * @param text the generated text
 * @param toolCalls the tool calls, in order
 * @param finishReason why generation stopped
 * @param usage token counts as the provider reported them (or estimated, marked {@link Usage#estimated()})
 * @param model the model that answered
 * @param coldStart whether the provider saw a cold start, and how long it took
 * @param instanceTime the share of instance time attributed to the call (see {@link OccupancyMeter}), or
 *     null to let the core attribute it
 * @param computeTime the billable compute time as the provider or platform measured it, or null to let
 *     the core use its own measure of the provider's work
 * @param requestBytes bytes of the request as sent; zero when not known
 * @param responseBytes bytes of the response as received; zero when not known
 * @param attributes free-form facts about where the call ran: {@code backend}, {@code device}, {@code
 *     variant}, {@code region} and the like; values never hold secrets (they are redacted)
 */
public record ProviderResult(
        String text,
        List<ToolCall> toolCalls,
        FinishReason finishReason,
        Usage usage,
        String model,
        ColdStart coldStart,
        Duration instanceTime,
        Duration computeTime,
        long requestBytes,
        long responseBytes,
        Map<String, String> attributes) {
    /**
     * Checks the required parts and copies the collections. Providers use {@link #builder()} instead: this
     * constructor changes whenever a fact is added.
     */
    public ProviderResult {
        text = text == null ? "" : text;
        toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
        Objects.requireNonNull(finishReason, "finishReason");
        usage = usage == null ? Usage.ZERO : usage;
        model = model == null ? "" : model;
        coldStart = coldStart == null ? ColdStart.NONE : coldStart;
        if (instanceTime != null && instanceTime.isNegative()) {
            throw new IllegalArgumentException("instanceTime must not be negative, got " + instanceTime);
        }
        if (computeTime != null && computeTime.isNegative()) {
            throw new IllegalArgumentException("computeTime must not be negative, got " + computeTime);
        }
        if (requestBytes < 0 || responseBytes < 0) {
            throw new IllegalArgumentException("byte counts must not be negative");
        }
        attributes = Secrets.redactedCopy(attributes);
    }

    /** A builder with nothing set; the finish reason is required. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding every fact of this result, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.text = text;
        b.toolCalls = toolCalls;
        b.finishReason = finishReason;
        b.usage = usage;
        b.model = model;
        b.coldStart = coldStart;
        b.instanceTime = instanceTime;
        b.computeTime = computeTime;
        b.requestBytes = requestBytes;
        b.responseBytes = responseBytes;
        b.attributes = attributes;
        return b;
    }

    /** This result with the instance time set. */
    public ProviderResult withInstanceTime(Duration instanceTime) {
        return toBuilder().instanceTime(instanceTime).build();
    }

    /** Builds a {@link ProviderResult}. Not thread-safe. */
    public static final class Builder {
        private String text = "";
        private List<ToolCall> toolCalls = List.of();
        private FinishReason finishReason;
        private Usage usage = Usage.ZERO;
        private String model = "";
        private ColdStart coldStart = ColdStart.NONE;
        private Duration instanceTime;
        private Duration computeTime;
        private long requestBytes;
        private long responseBytes;
        private Map<String, String> attributes = Map.of();

        private Builder() {}

        /** The generated text. */
        public Builder text(String text) {
            this.text = text;
            return this;
        }

        /** The tool calls, in order. */
        public Builder toolCalls(List<ToolCall> toolCalls) {
            this.toolCalls = toolCalls;
            return this;
        }

        /** Why generation stopped. Required. */
        public Builder finishReason(FinishReason finishReason) {
            this.finishReason = finishReason;
            return this;
        }

        /** Token counts. */
        public Builder usage(Usage usage) {
            this.usage = usage;
            return this;
        }

        /** The model that answered. */
        public Builder model(String model) {
            this.model = model;
            return this;
        }

        /** The cold start the provider saw. */
        public Builder coldStart(ColdStart coldStart) {
            this.coldStart = coldStart;
            return this;
        }

        /** The call's share of instance time; null lets the core attribute it. */
        public Builder instanceTime(Duration instanceTime) {
            this.instanceTime = instanceTime;
            return this;
        }

        /** The billable compute time the platform or provider measured; null lets the core measure it. */
        public Builder computeTime(Duration computeTime) {
            this.computeTime = computeTime;
            return this;
        }

        /** Bytes of the request as sent. */
        public Builder requestBytes(long requestBytes) {
            this.requestBytes = requestBytes;
            return this;
        }

        /** Bytes of the response as received. */
        public Builder responseBytes(long responseBytes) {
            this.responseBytes = responseBytes;
            return this;
        }

        /** Free-form facts about where the call ran, replacing those set before. */
        public Builder attributes(Map<String, String> attributes) {
            this.attributes = attributes;
            return this;
        }

        /** Adds one free-form fact ({@code backend}, {@code device}, {@code variant}, {@code region}...). */
        public Builder attribute(String key, String value) {
            Map<String, String> copy = new TreeMap<>(attributes == null ? Map.of() : attributes);
            copy.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
            this.attributes = copy;
            return this;
        }

        /** Adds a tool call after those set before. */
        public Builder toolCall(ToolCall call) {
            List<ToolCall> copy = new ArrayList<>(toolCalls == null ? List.of() : toolCalls);
            copy.add(Objects.requireNonNull(call, "call"));
            this.toolCalls = copy;
            return this;
        }

        /**
         * The result.
         *
         * @throws NullPointerException when the finish reason is missing
         * @throws IllegalArgumentException for a negative duration or byte count
         */
        public ProviderResult build() {
            return new ProviderResult(
                    text,
                    toolCalls,
                    finishReason,
                    usage,
                    model,
                    coldStart,
                    instanceTime,
                    computeTime,
                    requestBytes,
                    responseBytes,
                    attributes);
        }
    }
}
