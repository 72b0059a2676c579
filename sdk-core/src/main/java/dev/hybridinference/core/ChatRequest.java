package dev.hybridinference.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * A chat completion request. Immutable and safe to share between threads; build one with {@link
 * #builder()}.
 *
 * <p>Unset sampling parameters are left to the provider's defaults rather than sent as zero.
 */
public final class ChatRequest {
    private final String model;
    private final List<Message> messages;
    private final Double temperature;
    private final Double topP;
    private final Integer topK;
    private final Integer maxTokens;
    private final List<String> stop;
    private final Long seed;
    private final ResponseFormat responseFormat;
    private final List<ToolDefinition> tools;
    private final RequestOptions options;

    private ChatRequest(Builder b) {
        this.model = b.model;
        this.messages = List.copyOf(b.messages);
        this.temperature = b.temperature;
        this.topP = b.topP;
        this.topK = b.topK;
        this.maxTokens = b.maxTokens;
        this.stop = List.copyOf(b.stop);
        this.seed = b.seed;
        this.responseFormat = b.responseFormat;
        this.tools = List.copyOf(b.tools);
        this.options = b.options;
    }

    /** An empty builder. */
    public static Builder builder() {
        return new Builder();
    }

    /** A one-message request: the user says {@code text}. */
    public static ChatRequest of(String text) {
        return builder().addMessage(Message.user(text)).build();
    }

    /** A builder holding a copy of this request, to derive a variant. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.model = model;
        b.messages.addAll(messages);
        b.temperature = temperature;
        b.topP = topP;
        b.topK = topK;
        b.maxTokens = maxTokens;
        b.stop.addAll(stop);
        b.seed = seed;
        b.responseFormat = responseFormat;
        b.tools.addAll(tools);
        b.options = options;
        return b;
    }

    /** The model or model alias; empty means the provider's configured model. */
    public Optional<String> model() {
        return Optional.ofNullable(model);
    }

    /** The conversation, oldest first; never empty. */
    public List<Message> messages() {
        return messages;
    }

    /** Sampling temperature, if set. */
    public OptionalDouble temperature() {
        return temperature == null ? OptionalDouble.empty() : OptionalDouble.of(temperature);
    }

    /** Nucleus sampling mass, if set. */
    public OptionalDouble topP() {
        return topP == null ? OptionalDouble.empty() : OptionalDouble.of(topP);
    }

    /** Top-k sampling, if set. */
    public OptionalInt topK() {
        return topK == null ? OptionalInt.empty() : OptionalInt.of(topK);
    }

    /** The most tokens to generate, if set. */
    public OptionalInt maxTokens() {
        return maxTokens == null ? OptionalInt.empty() : OptionalInt.of(maxTokens);
    }

    /** Stop sequences; empty when none. */
    public List<String> stop() {
        return stop;
    }

    /** The sampling seed, if set. */
    public OptionalLong seed() {
        return seed == null ? OptionalLong.empty() : OptionalLong.of(seed);
    }

    /** The required output format; {@link ResponseFormat#TEXT} unless set. */
    public ResponseFormat responseFormat() {
        return responseFormat;
    }

    /** The tools the model may call; empty when none. */
    public List<ToolDefinition> tools() {
        return tools;
    }

    /** How to carry the request out: deadline, session, tags and so on. */
    public RequestOptions options() {
        return options;
    }

    @Override
    public String toString() {
        // Message contents are left out on purpose: they may hold personal data.
        return "ChatRequest{model=" + model + ", messages=" + messages.size() + ", maxTokens=" + maxTokens + ", tools="
                + tools.size() + ", options=" + options + '}';
    }

    /** Builds a {@link ChatRequest}, checking each value as it is set. Not thread-safe. */
    public static final class Builder {
        private String model;
        private final List<Message> messages = new ArrayList<>();
        private Double temperature;
        private Double topP;
        private Integer topK;
        private Integer maxTokens;
        private final List<String> stop = new ArrayList<>();
        private Long seed;
        private ResponseFormat responseFormat = ResponseFormat.TEXT;
        private final List<ToolDefinition> tools = new ArrayList<>();
        private RequestOptions options = RequestOptions.DEFAULTS;

        private Builder() {}

        /** The model or alias to use. */
        public Builder model(String model) {
            this.model = model;
            return this;
        }

        /** Appends a message. */
        public Builder addMessage(Message message) {
            messages.add(Objects.requireNonNull(message, "message"));
            return this;
        }

        /** Replaces the conversation. */
        public Builder messages(List<Message> messages) {
            this.messages.clear();
            messages.forEach(this::addMessage);
            return this;
        }

        /** Appends a system message. */
        public Builder system(String text) {
            return addMessage(Message.system(text));
        }

        /** Appends a user message. */
        public Builder user(String text) {
            return addMessage(Message.user(text));
        }

        /** Sampling temperature, 0 to 2. */
        public Builder temperature(double temperature) {
            if (!(temperature >= 0 && temperature <= 2)) {
                throw new IllegalArgumentException("temperature must be within [0, 2], got " + temperature);
            }
            this.temperature = temperature;
            return this;
        }

        /** Nucleus sampling mass, within (0, 1]. */
        public Builder topP(double topP) {
            if (!(topP > 0 && topP <= 1)) {
                throw new IllegalArgumentException("topP must be within (0, 1], got " + topP);
            }
            this.topP = topP;
            return this;
        }

        /** Top-k sampling, at least 1. */
        public Builder topK(int topK) {
            if (topK < 1) {
                throw new IllegalArgumentException("topK must be at least 1, got " + topK);
            }
            this.topK = topK;
            return this;
        }

        /** The most tokens to generate, at least 1. */
        public Builder maxTokens(int maxTokens) {
            if (maxTokens < 1) {
                throw new IllegalArgumentException("maxTokens must be at least 1, got " + maxTokens);
            }
            this.maxTokens = maxTokens;
            return this;
        }

        /** Adds stop sequences. */
        public Builder stop(String... sequences) {
            for (String s : sequences) {
                if (s == null || s.isEmpty()) {
                    throw new IllegalArgumentException("stop sequences must not be empty");
                }
                stop.add(s);
            }
            return this;
        }

        /** The sampling seed, for reproducible output where the provider supports it. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** The required output format. */
        public Builder responseFormat(ResponseFormat responseFormat) {
            this.responseFormat = Objects.requireNonNull(responseFormat, "responseFormat");
            return this;
        }

        /** Adds a tool the model may call. */
        public Builder addTool(ToolDefinition tool) {
            tools.add(Objects.requireNonNull(tool, "tool"));
            return this;
        }

        /** How to carry the request out. */
        public Builder options(RequestOptions options) {
            this.options = Objects.requireNonNull(options, "options");
            return this;
        }

        /** The request; fails when there is no message. */
        public ChatRequest build() {
            if (messages.isEmpty()) {
                throw new IllegalArgumentException("a chat request needs at least one message");
            }
            return new ChatRequest(this);
        }
    }
}
