package dev.hybridinference.core;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What a client is and what it knows about itself: the composite client reads it to decide which member
 * can take a request (see {@code dev.hybridinference.core.routing.HybridClient}).
 *
 * <p>For a provider, {@link #members()} is empty. For a composite client it lists each member's info, in
 * the order they were added; {@link #models()}, {@link #modelAliases()} and {@link #capabilities()} are
 * then the union over the members (a composite can take what any member can), and {@link
 * #deploymentKind()} and {@link #pricing()} describe the composite only when every member shares them:
 * see {@link #isMixed()}.
 *
 * <p>Build one with {@link #builder(String, String, DeploymentKind, Pricing)}; the five-part constructor
 * is kept for providers that know nothing more. Immutable.
 *
 * @param id the provider id, as named in the configuration
 * @param type the provider type ({@code vllm}, {@code sagemaker}, {@code hybrid}, ...)
 * @param deploymentKind where its models run; for a composite whose members run in different places,
 *     {@link DeploymentKind#HYBRID} (see {@link #isMixed()} and {@link #members()})
 * @param models the served model names it knows of; may be empty before discovery, which tells the
 *     composite client it serves whatever it is asked for
 * @param pricing how its calls are billed; for a composite whose members differ, the first member's
 * @param capabilities what requests it can take
 * @param coldStart whether and when it scales to zero
 * @param modelAliases aliases it accepts and maps to served names itself (alias to served name)
 * @param members for a composite client, its members' info; empty for a provider
 * @param attributes facts about where it runs, as the provider reports them ({@code backend}, {@code
 *     device}, ...), with the same keys as its receipts' attributes; empty unless the provider says
 */
public record ClientInfo(
        String id,
        String type,
        DeploymentKind deploymentKind,
        List<String> models,
        Pricing pricing,
        Capabilities capabilities,
        ColdStartProfile coldStart,
        Map<String, String> modelAliases,
        List<ClientInfo> members,
        Map<String, String> attributes) {

    /** Checks the required parts and copies the collections. */
    public ClientInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(deploymentKind, "deploymentKind");
        models = List.copyOf(models);
        Objects.requireNonNull(pricing, "pricing");
        capabilities = capabilities == null ? Capabilities.DEFAULTS : capabilities;
        coldStart = coldStart == null ? ColdStartProfile.NONE : coldStart;
        modelAliases = modelAliases == null ? Map.of() : Map.copyOf(modelAliases);
        members = members == null ? List.of() : List.copyOf(members);
        attributes = attributes == null ? Map.of() : Map.copyOf(attributes);
    }

    /** The info without attributes. */
    public ClientInfo(
            String id,
            String type,
            DeploymentKind deploymentKind,
            List<String> models,
            Pricing pricing,
            Capabilities capabilities,
            ColdStartProfile coldStart,
            Map<String, String> modelAliases,
            List<ClientInfo> members) {
        this(id, type, deploymentKind, models, pricing, capabilities, coldStart, modelAliases, members, null);
    }

    /**
     * The info of a provider that says nothing about its capabilities or cold starts: it is assumed to
     * take every request ({@link Capabilities#DEFAULTS}) and never to cold start.
     */
    public ClientInfo(String id, String type, DeploymentKind deploymentKind, List<String> models, Pricing pricing) {
        this(id, type, deploymentKind, models, pricing, null, null, null, null, null);
    }

    /** A builder with the required parts; the rest default as in the five-part constructor. */
    public static Builder builder(String id, String type, DeploymentKind deploymentKind, Pricing pricing) {
        return new Builder(id, type, deploymentKind, pricing);
    }

    /** A builder holding this info's parts, to change some. */
    public Builder toBuilder() {
        return new Builder(id, type, deploymentKind, pricing)
                .models(models)
                .capabilities(capabilities)
                .coldStart(coldStart)
                .modelAliases(modelAliases)
                .members(members)
                .attributes(attributes);
    }

    /** Whether this describes a composite client. */
    public boolean isComposite() {
        return !members.isEmpty();
    }

    /**
     * Whether this is a composite whose members differ in deployment kind or pricing, so that {@link
     * #deploymentKind()} and {@link #pricing()} are only the first member's and {@link #members()} tells
     * the truth. A composite's members are compared recursively.
     */
    public boolean isMixed() {
        for (ClientInfo m : members) {
            if (m.isMixed() || m.deploymentKind != deploymentKind || !m.pricing.equals(pricing)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether a request naming {@code model} may be sent here as it is: the model is one it serves or an
     * alias it maps, or it lists no models at all (it serves whatever it is asked for, as far as anyone
     * knows). A composite accepts what any of its members accepts.
     */
    public boolean acceptsModel(String model) {
        if (modelAliases.containsKey(model)) {
            return true;
        }
        if (isComposite()) {
            for (ClientInfo m : members) {
                if (m.acceptsModel(model)) {
                    return true;
                }
            }
            return false;
        }
        return models.isEmpty() || models.contains(model);
    }

    /**
     * What requests a client can take. The composite client skips a member that lacks what a request
     * needs, with the reason in the receipt. A provider that says nothing gets {@link #DEFAULTS}: it is
     * assumed to take everything, so that nothing is skipped on a guess.
     *
     * @param tools tool (function) calling
     * @param jsonSchema {@link ResponseFormat.Type#JSON_SCHEMA} answers
     * @param jsonObject {@link ResponseFormat.Type#JSON_OBJECT} answers
     * @param streaming streamed answers
     * @param contextLength the context in tokens (prompt and answer together); 0 when unknown
     */
    public record Capabilities(
            boolean tools, boolean jsonSchema, boolean jsonObject, boolean streaming, int contextLength) {
        /** Everything supported, context unknown: what a provider that says nothing is assumed to have. */
        public static final Capabilities DEFAULTS = new Capabilities(true, true, true, true, 0);

        /** Checks the context length. */
        public Capabilities {
            if (contextLength < 0) {
                throw new IllegalArgumentException("contextLength must not be negative, got " + contextLength);
            }
        }

        /** These capabilities with another context length (0 for unknown). */
        public Capabilities withContextLength(int contextLength) {
            return new Capabilities(tools, jsonSchema, jsonObject, streaming, contextLength);
        }

        /**
         * What any of two clients can take: each feature when either has it, and the longer context (unknown
         * when either is unknown, since that one may be longer).
         */
        public Capabilities union(Capabilities other) {
            int context =
                    contextLength == 0 || other.contextLength == 0 ? 0 : Math.max(contextLength, other.contextLength);
            return new Capabilities(
                    tools || other.tools,
                    jsonSchema || other.jsonSchema,
                    jsonObject || other.jsonObject,
                    streaming || other.streaming,
                    context);
        }

        /**
         * Why a client with these capabilities cannot take {@code request}, or empty when it can.
         *
         * @param request the request
         * @param streamed whether the answer is to be streamed
         * @param estimatedPromptTokens the prompt's size in tokens, estimated; compared with the context
         */
        public Optional<String> missingFor(ChatRequest request, boolean streamed, long estimatedPromptTokens) {
            if (!request.tools().isEmpty() && !tools) {
                return Optional.of("no tool calling");
            }
            ResponseFormat.Type format = request.responseFormat().type();
            if (format == ResponseFormat.Type.JSON_SCHEMA && !jsonSchema) {
                return Optional.of("no JSON schema answers");
            }
            if (format == ResponseFormat.Type.JSON_OBJECT && !jsonObject) {
                return Optional.of("no JSON object answers");
            }
            if (streamed && !streaming) {
                return Optional.of("no streaming");
            }
            if (contextLength > 0 && estimatedPromptTokens > contextLength) {
                return Optional.of(
                        "prompt of about " + estimatedPromptTokens + " tokens exceeds its context of " + contextLength);
            }
            return Optional.empty();
        }
    }

    /**
     * Whether a client scales to zero, so that a call after an idle spell may wait for a cold start.
     *
     * @param canColdStart whether it ever cold starts
     * @param idleTimeout after how long without a call it scales to zero; null when unknown or never
     * @param minInstances instances kept warm whatever the traffic; with one or more, the next call is not
     *     predicted cold
     */
    public record ColdStartProfile(boolean canColdStart, Duration idleTimeout, int minInstances) {
        /** Never cold starts: always-on servers and local runtimes. */
        public static final ColdStartProfile NONE = new ColdStartProfile(false, null, 0);

        /** Checks the values. */
        public ColdStartProfile {
            if (minInstances < 0) {
                throw new IllegalArgumentException("minInstances must not be negative, got " + minInstances);
            }
            if (idleTimeout != null && (idleTimeout.isNegative() || idleTimeout.isZero())) {
                throw new IllegalArgumentException("idleTimeout must be positive, got " + idleTimeout);
            }
            if (!canColdStart && idleTimeout != null) {
                throw new IllegalArgumentException("a client that never cold starts has no idle timeout");
            }
        }

        /** Scales to zero after {@code idleTimeout} (null if unknown) unless {@code minInstances} stay warm. */
        public static ColdStartProfile scalesToZero(Duration idleTimeout, int minInstances) {
            return new ColdStartProfile(true, idleTimeout, minInstances);
        }

        /** The idle timeout after which the next call is predicted cold, when one can be predicted. */
        public Optional<Duration> predictsColdAfter() {
            return canColdStart && minInstances == 0 ? Optional.ofNullable(idleTimeout) : Optional.empty();
        }
    }

    /** Builds a {@link ClientInfo}. Not thread-safe. */
    public static final class Builder {
        private final String id;
        private final String type;
        private final DeploymentKind deploymentKind;
        private final Pricing pricing;
        private List<String> models = List.of();
        private Capabilities capabilities = Capabilities.DEFAULTS;
        private ColdStartProfile coldStart = ColdStartProfile.NONE;
        private final Map<String, String> modelAliases = new LinkedHashMap<>();
        private final List<ClientInfo> members = new ArrayList<>();
        private final Map<String, String> attributes = new LinkedHashMap<>();

        private Builder(String id, String type, DeploymentKind deploymentKind, Pricing pricing) {
            this.id = Objects.requireNonNull(id, "id");
            this.type = Objects.requireNonNull(type, "type");
            this.deploymentKind = Objects.requireNonNull(deploymentKind, "deploymentKind");
            this.pricing = Objects.requireNonNull(pricing, "pricing");
        }

        /** The served models it knows of. */
        public Builder models(List<String> models) {
            this.models = List.copyOf(models);
            return this;
        }

        /** What it can take; {@link Capabilities#DEFAULTS} unless set. */
        public Builder capabilities(Capabilities capabilities) {
            this.capabilities = Objects.requireNonNull(capabilities, "capabilities");
            return this;
        }

        /** Whether it cold starts; {@link ColdStartProfile#NONE} unless set. */
        public Builder coldStart(ColdStartProfile coldStart) {
            this.coldStart = Objects.requireNonNull(coldStart, "coldStart");
            return this;
        }

        /** Replaces the aliases it maps itself. */
        public Builder modelAliases(Map<String, String> aliases) {
            modelAliases.clear();
            modelAliases.putAll(aliases);
            return this;
        }

        /** Replaces the members' info (for a composite client). */
        public Builder members(List<ClientInfo> members) {
            this.members.clear();
            this.members.addAll(members);
            return this;
        }

        /** Replaces the facts about where it runs. */
        public Builder attributes(Map<String, String> attributes) {
            this.attributes.clear();
            this.attributes.putAll(attributes);
            return this;
        }

        /** Sets one of the facts about where it runs ({@code device}, ...). */
        public Builder attribute(String key, String value) {
            attributes.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
            return this;
        }

        /** The info. */
        public ClientInfo build() {
            return new ClientInfo(
                    id,
                    type,
                    deploymentKind,
                    models,
                    pricing,
                    capabilities,
                    coldStart,
                    modelAliases,
                    members,
                    attributes);
        }
    }
}
