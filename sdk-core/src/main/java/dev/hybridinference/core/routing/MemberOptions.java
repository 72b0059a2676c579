package dev.hybridinference.core.routing;

import dev.hybridinference.core.ClientInfo;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * How the composite client treats one member. Immutable; build with {@link #builder()}.
 *
 * <p>Capacity ({@link #maxInFlight()}, {@link #maxWaiting()}) matters for a spillover primary; cold-start
 * settings for serverless members; {@link #contextLength()} for context-overflow fallback; {@link
 * #typicalOutputTokens()} for cost estimates; capabilities and {@link #modelAliases()} for which requests
 * the member takes and under which model name.
 *
 * <p><b>Precedence.</b> What is set here wins over what the member says about itself in its {@link
 * ClientInfo}: {@link #contextLength()}, the capability flags ({@link #tools()}, {@link #jsonSchema()},
 * {@link #jsonObject()}, {@link #streaming()}) and {@link #idleTimeout()} left unset are taken from the
 * member's {@link ClientInfo#capabilities()} and {@link ClientInfo#coldStart()} when the composite client is
 * built (see {@link #withDefaultsFrom}); an alias set here replaces the member's own mapping of the same
 * alias. From configuration, {@code routing.members.<name>} is applied over the provider's own section
 * ({@code capabilities:}, {@code modelAliases:}), which is applied over what the provider reports.
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
    private final Boolean tools;
    private final Boolean jsonSchema;
    private final Boolean jsonObject;
    private final Boolean streaming;
    private final Map<String, String> modelAliases;

    private MemberOptions(Builder b) {
        this.maxInFlight = b.maxInFlight;
        this.maxWaiting = b.maxWaiting;
        this.contextLength = b.contextLength;
        this.idleTimeout = b.idleTimeout;
        this.coldStartLatency = b.coldStartLatency;
        this.keepWarmEvery = b.keepWarmEvery;
        this.typicalOutputTokens = b.typicalOutputTokens;
        this.tools = b.tools;
        this.jsonSchema = b.jsonSchema;
        this.jsonObject = b.jsonObject;
        this.streaming = b.streaming;
        this.modelAliases = Map.copyOf(b.modelAliases);
    }

    /** A builder holding these options, to change some. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.maxInFlight = maxInFlight;
        b.maxWaiting = maxWaiting;
        b.contextLength = contextLength;
        b.idleTimeout = idleTimeout;
        b.coldStartLatency = coldStartLatency;
        b.keepWarmEvery = keepWarmEvery;
        b.typicalOutputTokens = typicalOutputTokens;
        b.tools = tools;
        b.jsonSchema = jsonSchema;
        b.jsonObject = jsonObject;
        b.streaming = streaming;
        b.modelAliases.putAll(modelAliases);
        return b;
    }

    /**
     * These options with what they leave unset taken from the member's own {@code info}: the context
     * length and capability flags from its {@link ClientInfo#capabilities()}, the idle timeout from its
     * {@link ClientInfo#coldStart()} (when it scales to zero with no instance kept warm). Options set here
     * are kept: they win.
     */
    public MemberOptions withDefaultsFrom(ClientInfo info) {
        ClientInfo.Capabilities c = info.capabilities();
        Builder b = toBuilder();
        if (contextLength == 0 && c.contextLength() > 0) {
            b.contextLength(c.contextLength());
        }
        b.tools = tools != null ? tools : c.tools();
        b.jsonSchema = jsonSchema != null ? jsonSchema : c.jsonSchema();
        b.jsonObject = jsonObject != null ? jsonObject : c.jsonObject();
        b.streaming = streaming != null ? streaming : c.streaming();
        if (idleTimeout == null) {
            info.coldStart().predictsColdAfter().ifPresent(d -> b.idleTimeout = d);
        }
        return b.build();
    }

    /**
     * The capabilities these options say the member has: each flag set here, or {@code fallback}'s when
     * unset; the context length set here, or {@code fallback}'s when 0.
     */
    public ClientInfo.Capabilities capabilities(ClientInfo.Capabilities fallback) {
        return new ClientInfo.Capabilities(
                tools != null ? tools : fallback.tools(),
                jsonSchema != null ? jsonSchema : fallback.jsonSchema(),
                jsonObject != null ? jsonObject : fallback.jsonObject(),
                streaming != null ? streaming : fallback.streaming(),
                contextLength > 0 ? contextLength : fallback.contextLength());
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

    /** Whether the member takes requests with tools; empty when not set (the member's own word counts). */
    public Optional<Boolean> tools() {
        return Optional.ofNullable(tools);
    }

    /** Whether the member answers in JSON matching a schema; empty when not set. */
    public Optional<Boolean> jsonSchema() {
        return Optional.ofNullable(jsonSchema);
    }

    /** Whether the member answers in JSON objects; empty when not set. */
    public Optional<Boolean> jsonObject() {
        return Optional.ofNullable(jsonObject);
    }

    /** Whether the member streams; empty when not set. */
    public Optional<Boolean> streaming() {
        return Optional.ofNullable(streaming);
    }

    /**
     * Model aliases this member serves under another name (alias to served name): a request naming the
     * alias reaches the member with the served name.
     */
    public Map<String, String> modelAliases() {
        return modelAliases;
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
        private Boolean tools;
        private Boolean jsonSchema;
        private Boolean jsonObject;
        private Boolean streaming;
        private final Map<String, String> modelAliases = new LinkedHashMap<>();

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

        /** Whether the member takes requests with tools; overrides what the member says. */
        public Builder tools(boolean tools) {
            this.tools = tools;
            return this;
        }

        /** Whether the member answers in JSON matching a schema; overrides what the member says. */
        public Builder jsonSchema(boolean jsonSchema) {
            this.jsonSchema = jsonSchema;
            return this;
        }

        /** Whether the member answers in JSON objects; overrides what the member says. */
        public Builder jsonObject(boolean jsonObject) {
            this.jsonObject = jsonObject;
            return this;
        }

        /** Whether the member streams; overrides what the member says. */
        public Builder streaming(boolean streaming) {
            this.streaming = streaming;
            return this;
        }

        /**
         * Maps a model alias to the name this member serves it under; a later mapping of the same alias
         * replaces an earlier one.
         */
        public Builder modelAlias(String alias, String servedName) {
            requireName(alias, "alias");
            requireName(servedName, "served model name");
            modelAliases.put(alias, servedName);
            return this;
        }

        /** Adds each alias of {@code aliases}, as {@link #modelAlias} does. */
        public Builder modelAliases(Map<String, String> aliases) {
            aliases.forEach(this::modelAlias);
            return this;
        }

        private static void requireName(String name, String what) {
            Objects.requireNonNull(name, what);
            if (name.isBlank() || name.chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("a model " + what + " must not be blank or hold control characters");
            }
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
