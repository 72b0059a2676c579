package dev.hybridinference.sagemaker;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import java.lang.reflect.InvocationTargetException;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.util.Set;

/**
 * Builds {@link SageMakerClient}s from configuration, type {@code sagemaker}:
 *
 * <pre>{@code
 * providers:
 *   burst:
 *     type: sagemaker
 *     endpointName: llama-3-8b-serverless
 *     region: us-east-1
 *     deployment: serverless           # real-time (default) | serverless | inference-component
 *     credentials: default             # or {profile: name}, or
 *                                      # {accessKeyId: ${AWS_ACCESS_KEY_ID}, secretAccessKey: ${AWS_SECRET_ACCESS_KEY},
 *                                      #  sessionToken: ${AWS_SESSION_TOKEN:-}}
 *     inferenceComponent: llama-ic     # optional: the component to invoke
 *     targetVariant: AllTraffic        # optional
 *     customAttributes: "trace=1"      # optional, forwarded to the container
 *     endpointOverride: https://vpce-123.runtime.sagemaker.us-east-1.vpce.amazonaws.com  # optional
 *     payload: messages                # messages (default) | tgi | lmi | a PayloadCodec class name
 *     promptTemplate: llama3           # tgi and lmi: chatml (default) | llama3 | mistral | plain
 *     model: meta-llama/Llama-3.1-8B-Instruct   # optional: named in the body and on receipts
 *     connectTimeout: 10s
 *     readTimeout: 70s
 *     callTimeout: 5m
 *     maxConnections: 64
 *     streamBuffer: 64
 *     idleTimeout: 15m                 # scale-to-zero delay, for predicting cold starts
 *     minInstances: 0                  # provisioned concurrency / minimum copies: none predicted cold when >= 1
 *     coldStartThreshold: 1s
 *     statefulSessions: false
 *     maxSessions: 10000
 *     limits: {maxLineBytes: 1048576, maxResponseBytes: 33554432}
 *     pricing: {type: per-gb-second, perGbSecond: 0.0000200, memoryGb: 6, perGbProcessed: 0.016}
 * }</pre>
 *
 * Pricing defaults by deployment: a real-time endpoint per instance hour at zero, the others free, until
 * prices are configured.
 */
public final class SageMakerProviderFactory implements InferenceProviderFactory {
    private static final Set<String> KEYS = Set.of(
            "type",
            "endpointName",
            "region",
            "deployment",
            "credentials",
            "inferenceComponent",
            "targetVariant",
            "customAttributes",
            "endpointOverride",
            "payload",
            "promptTemplate",
            "model",
            "connectTimeout",
            "readTimeout",
            "callTimeout",
            "maxConnections",
            "streamBuffer",
            "idleTimeout",
            "minInstances",
            "coldStartThreshold",
            "statefulSessions",
            "maxSessions",
            "limits",
            "pricing");

    /** Used by {@link java.util.ServiceLoader}. */
    public SageMakerProviderFactory() {}

    @Override
    public String type() {
        return SageMakerClient.TYPE;
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        SageMakerClient.Builder b = SageMakerClient.builder().context(context);
        apply(c, "endpointName", () -> b.endpointName(c.requireString("endpointName")));
        apply(c, "region", () -> b.region(c.requireString("region")));
        SageMakerClient.Deployment deployment = SageMakerClient.Deployment.REAL_TIME;
        if (c.has("deployment")) {
            String name = c.requireString("deployment");
            try {
                deployment = SageMakerClient.Deployment.of(name);
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(c.pathOf("deployment"), e.getMessage());
            }
        }
        b.deployment(deployment);
        credentials(c, b);
        c.string("inferenceComponent").ifPresent(v -> apply(c, "inferenceComponent", () -> b.inferenceComponent(v)));
        c.string("targetVariant").ifPresent(v -> apply(c, "targetVariant", () -> b.targetVariant(v)));
        c.string("customAttributes").ifPresent(v -> apply(c, "customAttributes", () -> b.customAttributes(v)));
        // Blank is absent, so that `endpointOverride: ${SAGEMAKER_ENDPOINT_URL:-}` means the regional endpoint.
        c.string("endpointOverride")
                .filter(v -> !v.isBlank())
                .ifPresent(v -> apply(c, "endpointOverride", () -> {
                    try {
                        b.endpointOverride(new URI(v));
                    } catch (URISyntaxException e) {
                        throw new IllegalArgumentException("not a URL: " + e.getReason());
                    }
                }));
        c.string("model").filter(m -> !m.isBlank()).ifPresent(m -> apply(c, "model", () -> b.model(m)));
        b.payloadCodec(codec(c));
        c.duration("connectTimeout", Duration.ofMillis(1), Duration.ofMinutes(10))
                .ifPresent(b::connectTimeout);
        c.duration("readTimeout", Duration.ofMillis(1), Duration.ofHours(1)).ifPresent(b::readTimeout);
        c.duration("callTimeout", Duration.ofMillis(1), Duration.ofHours(24)).ifPresent(b::callTimeout);
        c.integer("maxConnections", 1, 10_000).ifPresent(b::maxConnections);
        c.integer("streamBuffer", 1, 1 << 16).ifPresent(b::streamBuffer);
        c.duration("idleTimeout", Duration.ofSeconds(1), Duration.ofDays(7)).ifPresent(b::idleTimeout);
        c.integer("minInstances", 0, 100_000).ifPresent(b::minInstances);
        c.duration("coldStartThreshold", Duration.ofMillis(1), Duration.ofHours(1))
                .ifPresent(b::coldStartThreshold);
        boolean sessions = c.bool("statefulSessions").orElse(false);
        int maxSessions = c.integer("maxSessions", 1, 10_000_000).orElse(10_000);
        b.statefulSessions(sessions, maxSessions);
        c.object("limits").ifPresent(l -> b.limits(ResponseLimits.read(l)));
        if (c.has("pricing")) {
            try {
                b.pricing(PricingConfig.read(c, "per-instance-hour", 1));
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(c.pathOf("pricing"), e.getMessage());
            }
        }
        return b.build();
    }

    private static void credentials(ConfigNode c, SageMakerClient.Builder b) {
        if (!c.has("credentials")) {
            return;
        }
        // The string form comes first: object() refuses a single value, so asking for a mapping
        // before looking would turn `credentials: default` into "expected a mapping".
        if (!c.entries().get("credentials").isObject()) {
            String mode = c.requireString("credentials");
            if (!mode.equals("default")) {
                throw c.error(
                        "credentials", "default, {profile: name} or {accessKeyId, secretAccessKey, sessionToken}");
            }
            return;
        }
        ConfigNode creds = c.requireObject("credentials");
        creds.allowOnly(Set.of("profile", "accessKeyId", "secretAccessKey", "sessionToken"));
        if (creds.has("profile")) {
            if (creds.has("accessKeyId") || creds.has("secretAccessKey")) {
                throw new ConfigurationException(creds.path(), "set either profile or static keys, not both");
            }
            apply(creds, "profile", () -> b.profile(creds.requireString("profile")));
            return;
        }
        String keyId = creds.string("accessKeyId")
                .filter(s -> !s.isBlank())
                .orElseThrow(() -> creds.missing("accessKeyId", "the access key id (from the environment, say)"));
        String secret = creds.string("secretAccessKey")
                .filter(s -> !s.isBlank())
                .orElseThrow(() -> creds.missing("secretAccessKey", "the secret access key (from the environment)"));
        String token = creds.string("sessionToken").orElse(null);
        b.staticCredentials(keyId, secret, token);
    }

    private static PayloadCodec codec(ConfigNode c) {
        String payload = c.string("payload").orElse("messages");
        PromptTemplate template = PromptTemplate.CHATML;
        if (c.has("promptTemplate")) {
            if (!payload.equals("tgi") && !payload.equals("lmi")) {
                throw c.error("promptTemplate", "only with payload tgi or lmi");
            }
            try {
                template = PromptTemplate.named(c.requireString("promptTemplate"));
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(c.pathOf("promptTemplate"), e.getMessage());
            }
        }
        switch (payload) {
            case "messages":
                return PayloadCodec.messages();
            case "tgi":
                return PayloadCodec.tgi(template);
            case "lmi":
                return PayloadCodec.lmi(template);
            default:
                return custom(c, payload);
        }
    }

    /** A custom codec, named by class: it must implement {@link PayloadCodec} and have a public no-argument constructor. */
    private static PayloadCodec custom(ConfigNode c, String className) {
        Class<?> type;
        try {
            type = Class.forName(
                    className,
                    true,
                    Thread.currentThread().getContextClassLoader() != null
                            ? Thread.currentThread().getContextClassLoader()
                            : SageMakerProviderFactory.class.getClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            throw c.error("payload", "messages, tgi, lmi, or the name of a PayloadCodec class on the classpath");
        }
        if (!PayloadCodec.class.isAssignableFrom(type)) {
            throw new ConfigurationException(
                    c.pathOf("payload"), className + " does not implement " + PayloadCodec.class.getName());
        }
        try {
            return (PayloadCodec) type.getConstructor().newInstance();
        } catch (NoSuchMethodException | InstantiationException | IllegalAccessException e) {
            throw new ConfigurationException(
                    c.pathOf("payload"), className + " needs a public no-argument constructor");
        } catch (InvocationTargetException e) {
            throw new ConfigurationException(c.pathOf("payload"), className + " failed to construct: " + e.getCause());
        }
    }

    /** Runs a builder setter, reporting its argument error against the key. */
    private static void apply(ConfigNode c, String key, Runnable set) {
        try {
            set.run();
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf(key), e.getMessage());
        }
    }
}
