package dev.hybridinference.azure;

import com.azure.core.credential.TokenCredential;
import com.azure.identity.DefaultAzureCredentialBuilder;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ContentFilteredException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.http.StreamAssembler;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderBuilder;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.Secrets;
import java.math.BigDecimal;
import java.net.URI;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import javax.net.ssl.SSLContext;
import javax.net.ssl.X509TrustManager;

/**
 * Models deployed on Azure behind {@link dev.hybridinference.core.InferenceClient}: Azure AI Foundry
 * serverless deployments billed per token, Azure OpenAI deployments, and managed online endpoints on the
 * team's own GPU instances.
 *
 * <ul>
 *   <li><b>Two routes</b> ({@link Api}). {@link Api#OPENAI_V1} (the default): the OpenAI-compatible {@code
 *       /openai/v1} API that Microsoft directs users to, on the core's HTTP transport, with the {@code
 *       api-key} header or an Entra ID bearer token fetched again before it expires. {@link
 *       Api#INFERENCE_SDK}: the {@code azure-ai-inference} SDK (a beta that Microsoft retired in 2026-08; the
 *       legacy route for existing deployments), through its async client on the Netty HTTP client (the only
 *       one that streams incrementally) with the pipeline's own retries off, so that the core's retry layer
 *       is the only one.
 *   <li><b>Extra parameters.</b> Fields a route does not define ({@code top_k}) are sent only when {@link
 *       Builder#extraParameters} is set, with Azure's {@code extra-parameters} header saying what the service
 *       does with them: pass them to the model, drop them, or refuse the request.
 *   <li><b>Content filters.</b> A prompt the service's content filter refuses, and an answer it cuts (a
 *       finish reason of {@code content_filter}, blocking or mid-stream), fail the call with a {@link
 *       ContentFilteredException} saying which was blocked and, where the service said, what it filtered.
 *       The exception's partial receipt charges the tokens the service counted, which it bills.
 *   <li><b>Usage.</b> The v1 route asks for usage in streams; the SDK route cannot, so its stream usage is
 *       estimated and marked so unless the service sends it anyway.
 *   <li><b>Costs.</b> A serverless deployment per token ({@link Pricing.PerToken}); a managed endpoint by its
 *       instances' hours ({@link Pricing.PerInstanceHour}), shared among the calls that occupy them.
 * </ul>
 */
public final class AzureClient extends AbstractProviderClient {
    /** The provider type in configuration. */
    public static final String TYPE = "azure";

    /** The scope of Entra ID tokens for Azure OpenAI and Foundry resources. */
    public static final String COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default";

    /** The scope the azure-ai-inference SDK asks for unless told otherwise (managed online endpoints). */
    public static final String MACHINE_LEARNING_SCOPE = "https://ml.azure.com/.default";

    /** Which API a client speaks. */
    public enum Api {
        /** The OpenAI-compatible {@code /openai/v1} route (no API version; the body's model names the deployment). */
        OPENAI_V1("openai-v1"),
        /** The azure-ai-inference SDK's route: {@code <endpoint>/chat/completions?api-version=...}. */
        INFERENCE_SDK("inference-sdk");

        private final String configName;

        Api(String configName) {
            this.configName = configName;
        }

        /** The name in configuration. */
        public String configName() {
            return configName;
        }

        /** The API with this configuration name, if any. */
        public static Optional<Api> fromConfig(String name) {
            for (Api a : values()) {
                if (a.configName.equals(name)) {
                    return Optional.of(a);
                }
            }
            return Optional.empty();
        }
    }

    /** What the service does with request fields it does not define: the {@code extra-parameters} header. */
    public enum ExtraParameters {
        /** Hands them to the model. */
        PASS_THROUGH("pass-through"),
        /** Ignores them. */
        DROP("drop"),
        /** Refuses the request (HTTP 400): the service's default. */
        ERROR("error");

        private final String headerValue;

        ExtraParameters(String headerValue) {
            this.headerValue = headerValue;
        }

        /** The header's value, which is also the name in configuration. */
        public String headerValue() {
            return headerValue;
        }

        /** The mode with this header value, if any. */
        public static Optional<ExtraParameters> fromHeaderValue(String value) {
            for (ExtraParameters e : values()) {
                if (e.headerValue.equals(value)) {
                    return Optional.of(e);
                }
            }
            return Optional.empty();
        }
    }

    private final AzureRoute route;
    private final Api api;
    private final String model;
    private final Map<String, String> attributes;

    private AzureClient(Builder b, AzureRoute route) {
        super(b.id(), TYPE, b.deployment, b.pricing(), b.ledger(), b.clock());
        this.route = route;
        this.api = b.api;
        this.model = b.model;
        this.attributes = Secrets.redactedCopy(Map.of("endpoint", route.label(), "api", api.configName()));
    }

    /** A builder; {@link Builder#endpoint} and the credentials are required. */
    public static Builder builder() {
        return new Builder();
    }

    /** The route this client speaks. */
    public Api api() {
        return api;
    }

    /** The endpoint, without credentials. */
    public String endpoint() {
        return route.label();
    }

    @Override
    protected List<String> models() {
        return model == null ? List.of() : List.of(model);
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        ctx.checkActive(route.label());
        ProviderResult r = route.chat(request, ctx);
        ProviderResult described = describe(r);
        if (r.finishReason() == FinishReason.CONTENT_FILTER) {
            ctx.producedBeforeFailure(described);
            throw answerFiltered(r);
        }
        return described;
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        ctx.checkActive(route.label());
        ProviderStream stream = route.stream(request, ctx);
        return new ProviderStream() {
            @Override
            public ChatChunk next() {
                ChatChunk c = stream.next();
                if (c != null && c.finishReason() == FinishReason.CONTENT_FILTER) {
                    // What follows the filtered chunk (the usage the service bills) is read before failing.
                    while (stream.next() != null) {
                        // drained
                    }
                    throw answerFiltered(stream.result());
                }
                return c;
            }

            @Override
            public ProviderResult result() {
                return describe(stream.result());
            }

            @Override
            public void close() {
                stream.close();
            }
        };
    }

    /** The result with this client's attributes (the route's own, such as a content filter's, kept). */
    private ProviderResult describe(ProviderResult r) {
        if (r.attributes().isEmpty()) {
            return r.toBuilder().attributes(attributes).build();
        }
        ProviderResult.Builder b = r.toBuilder();
        attributes.forEach(b::attribute);
        return b.build();
    }

    private ContentFilteredException answerFiltered(ProviderResult r) {
        String what = r.attributes().get(StreamAssembler.CONTENT_FILTER);
        return new ContentFilteredException(
                ContentFilteredException.Stage.ANSWER,
                what,
                "the service's content filter stopped the answer"
                        + (what == null ? "" : " [filtered: " + what + "]")
                        + " after " + r.usage().outputTokens() + " output tokens, which are billed",
                id(),
                route.label(),
                0);
    }

    @Override
    protected void doClose() {
        route.close();
    }

    /** Builds an {@link AzureClient}. Not thread-safe. */
    public static final class Builder extends ProviderBuilder<Builder> {
        Api api = Api.OPENAI_V1;
        String endpoint;
        String apiKey;
        TokenCredential credential;
        List<String> scopes;
        String model;
        String apiVersion;
        ExtraParameters extraParameters;
        DeploymentKind deployment = DeploymentKind.SERVERLESS;
        int instances = 1;
        X509TrustManager trust;
        Duration connectTimeout = Duration.ofSeconds(10);
        Duration readTimeout = Duration.ofMinutes(2);
        Duration callTimeout = Duration.ofMinutes(10);
        ResponseLimits limits = ResponseLimits.DEFAULTS;
        private Pricing pricing;

        private Builder() {
            super(TYPE);
        }

        /**
         * The endpoint (required): for {@link Api#OPENAI_V1} the resource's {@code
         * https://<resource>.openai.azure.com/openai/v1} (or {@code .services.ai.azure.com/openai/v1}); for
         * {@link Api#INFERENCE_SDK} a Foundry models endpoint {@code https://<resource>.services.ai.azure.com/models},
         * a serverless endpoint {@code https://<deployment>.<region>.models.ai.azure.com} or a managed online
         * endpoint's URL. Must be {@code https}: the service takes credentials over nothing else.
         */
        public Builder endpoint(String url) {
            Objects.requireNonNull(url, "endpoint");
            URI u;
            try {
                u = URI.create(url.trim());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("endpoint is not a URL: " + Secrets.redact(url), e);
            }
            if (!"https".equalsIgnoreCase(u.getScheme()) || u.getHost() == null) {
                throw new IllegalArgumentException(
                        "endpoint must be an https:// URL with a host (Azure takes credentials over HTTPS only), got "
                                + Secrets.redact(url));
            }
            if (u.getRawUserInfo() != null || u.getRawQuery() != null) {
                throw new IllegalArgumentException(
                        "endpoint must have no user info or query (credentials go in apiKey or the Entra ID settings)");
            }
            String s = u.toString();
            this.endpoint = s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
            return this;
        }

        /** The route: {@link Api#OPENAI_V1} unless set. */
        public Builder api(Api api) {
            this.api = Objects.requireNonNull(api, "api");
            return this;
        }

        /** Authenticates with the resource's key ({@code api-key} header). Never logged or echoed. */
        public Builder apiKey(String key) {
            this.apiKey = requireText(key, "apiKey");
            Secrets.register(apiKey);
            return this;
        }

        /**
         * Authenticates with Entra ID bearer tokens from this credential ({@code ClientSecretCredential},
         * a managed identity, or any {@link TokenCredential}).
         */
        public Builder tokenCredential(TokenCredential credential) {
            this.credential = Objects.requireNonNull(credential, "credential");
            return this;
        }

        /** Authenticates with Entra ID through {@code DefaultAzureCredential} (environment, managed identity, CLI). */
        public Builder defaultAzureCredential() {
            return tokenCredential(new DefaultAzureCredentialBuilder().build());
        }

        /**
         * The scopes of Entra ID tokens: {@value #COGNITIVE_SERVICES_SCOPE} unless set (for a managed online
         * endpoint on the SDK route, {@value #MACHINE_LEARNING_SCOPE}).
         */
        public Builder scopes(List<String> scopes) {
            Objects.requireNonNull(scopes, "scopes");
            if (scopes.isEmpty()) {
                throw new IllegalArgumentException("scopes must not be empty");
            }
            scopes.forEach(s -> requireText(s, "scopes"));
            this.scopes = List.copyOf(scopes);
            return this;
        }

        /**
         * The deployment named in each request's {@code model} field (required on the v1 route; on the SDK
         * route optional for a serverless endpoint, which serves one model). A request's own model wins.
         */
        public Builder model(String model) {
            this.model = requireText(model, "model");
            return this;
        }

        /** The SDK route's API version: {@code 2024-05-01-preview} (its default) or {@code 2024-08-01-preview}. */
        public Builder apiVersion(String version) {
            requireText(version, "apiVersion");
            InferenceSdkRoute.serviceVersion(version); // checks it
            this.apiVersion = version;
            return this;
        }

        /**
         * Sends fields the route does not define ({@code top_k}) with the {@code extra-parameters} header set
         * to this mode; unless set, such fields are not sent.
         */
        public Builder extraParameters(ExtraParameters mode) {
            this.extraParameters = Objects.requireNonNull(mode, "mode");
            return this;
        }

        /**
         * {@link DeploymentKind#SERVERLESS} (the default: a serverless or standard deployment billed per
         * token) or {@link DeploymentKind#SERVER} (a managed online endpoint on the team's own instances).
         */
        public Builder deployment(DeploymentKind kind) {
            Objects.requireNonNull(kind, "kind");
            if (kind == DeploymentKind.LOCAL) {
                throw new IllegalArgumentException("deployment must be SERVERLESS or SERVER, got LOCAL");
            }
            this.deployment = kind;
            return this;
        }

        /** A managed endpoint's instance count, for its default pricing; 1 unless set. */
        public Builder instances(int n) {
            if (n < 1 || n > 100_000) {
                throw new IllegalArgumentException("instances must be within [1, 100000], got " + n);
            }
            this.instances = n;
            return this;
        }

        /**
         * Trusts the servers this trust manager accepts instead of the JVM's default certificate authorities
         * (a private CA, a TLS-inspecting proxy, a test endpoint).
         */
        public Builder trust(X509TrustManager trustManager) {
            this.trust = Objects.requireNonNull(trustManager, "trustManager");
            return this;
        }

        /** How long to wait for a connection; 10 s unless set. */
        public Builder connectTimeout(Duration d) {
            this.connectTimeout = positive(d, "connectTimeout");
            return this;
        }

        /** How long a read may wait for bytes; 2 min unless set. */
        public Builder readTimeout(Duration d) {
            this.readTimeout = positive(d, "readTimeout");
            return this;
        }

        /** The longest a call may take when the request sets no earlier deadline; 10 min unless set. */
        public Builder callTimeout(Duration d) {
            this.callTimeout = positive(d, "callTimeout");
            return this;
        }

        /** Bounds on what the service may send. */
        public Builder limits(ResponseLimits limits) {
            this.limits = Objects.requireNonNull(limits, "limits");
            return this;
        }

        /**
         * How the deployment bills. Unless set: per token at zero for a serverless deployment, per instance
         * hour at zero for a managed endpoint (with {@link #instances}), so usage and occupancy are metered
         * and costs show as zero until prices are configured.
         */
        public Builder pricing(Pricing pricing) {
            this.pricing = Objects.requireNonNull(pricing, "pricing");
            return this;
        }

        Pricing pricing() {
            if (pricing != null) {
                return pricing;
            }
            return deployment == DeploymentKind.SERVER
                    ? new Pricing.PerInstanceHour(BigDecimal.ZERO, instances)
                    : new Pricing.PerToken(BigDecimal.ZERO, BigDecimal.ZERO, null);
        }

        /** The token scopes: the configured ones, or the default for the route and endpoint. */
        List<String> scopesOrDefault() {
            if (scopes != null) {
                return scopes;
            }
            String host = URI.create(endpoint).getHost().toLowerCase(Locale.ROOT);
            boolean cognitive = api == Api.OPENAI_V1
                    || host.endsWith(".services.ai.azure.com")
                    || host.endsWith(".openai.azure.com")
                    || host.endsWith(".cognitiveservices.azure.com");
            return List.of(cognitive ? COGNITIVE_SERVICES_SCOPE : MACHINE_LEARNING_SCOPE);
        }

        /** An SSL context that trusts what {@link #trust} does; null to use the JVM's defaults. */
        SSLContext sslContext() {
            if (trust == null) {
                return null;
            }
            try {
                SSLContext c = SSLContext.getInstance("TLS");
                c.init(null, new javax.net.ssl.TrustManager[] {trust}, null);
                return c;
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("cannot set up TLS with the given trust manager: " + e.getMessage(), e);
            }
        }

        /**
         * The client.
         *
         * @throws IllegalStateException when the endpoint, the credentials or (on the v1 route) the model is
         *     missing, or both an API key and a token credential are set
         */
        public AzureClient build() {
            if (endpoint == null) {
                throw new IllegalStateException("endpoint is required");
            }
            if (apiKey == null && credential == null) {
                throw new IllegalStateException("credentials are required: apiKey, or a token credential (Entra ID)");
            }
            if (apiKey != null && credential != null) {
                throw new IllegalStateException("set either apiKey or a token credential, not both");
            }
            if (api == Api.OPENAI_V1 && model == null) {
                throw new IllegalStateException("model (the deployment name) is required on the openai-v1 route");
            }
            if (api == Api.OPENAI_V1 && apiVersion != null) {
                throw new IllegalStateException(
                        "apiVersion applies to the inference-sdk route only (the openai-v1 route has no versions)");
            }
            AzureRoute route = api == Api.OPENAI_V1 ? new OpenAiV1Route(this) : new InferenceSdkRoute(this);
            return new AzureClient(this, route);
        }
    }
}
