package dev.hybridinference.cloudrun;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;

/**
 * Builds {@link CloudRunClient}s from configuration, type {@code cloudrun}:
 *
 * <pre>{@code
 * providers:
 *   run:
 *     type: cloudrun
 *     serviceUrl: https://gemma-abc123-uc.a.run.app
 *     auth: id-token              # id-token (default: application default credentials) | none (a public service)
 *     credentialsFile: ${GOOGLE_APPLICATION_CREDENTIALS:-}   # optional: a service account's key file
 *     audience: https://gemma-abc123-uc.a.run.app            # optional: the service URL's origin by default
 *     model: google/gemma-3-4b-it  # optional
 *     minInstances: 0
 *     idleTimeout: 15m            # the scale-in delay
 *     keepWarm: 10m               # optional: ping to hold one instance (costs that instance all day)
 *     coldStartThreshold: 1s
 *     connectTimeout: 10s
 *     readTimeout: 5m
 *     callTimeout: 10m
 *     limits: {maxLineBytes: 1048576}
 *     pricing:                    # instance-based billing of a GPU service, composed from its resources
 *       type: cloud-run-instance
 *       vcpu: 8
 *       memoryGib: 32
 *       gpus: 1
 *       perVcpuSecond: 0.0000180
 *       perGibSecond: 0.0000020
 *       perGpuSecond: 0.0001867
 * }</pre>
 *
 * <p>{@code pricing} also takes the core's types: {@code per-instance-second} (its {@code minInstances} and
 * {@code scaleInDelay} default to the keys above), or {@code per-compute-time} with {@code perRequest} for a
 * CPU service on request-based billing. Without it, instance-based at zero.
 */
public final class CloudRunProviderFactory implements InferenceProviderFactory {
    private static final Set<String> KEYS = Set.of(
            "type",
            "serviceUrl",
            "auth",
            "credentialsFile",
            "audience",
            "model",
            "minInstances",
            "idleTimeout",
            "keepWarm",
            "coldStartThreshold",
            "connectTimeout",
            "readTimeout",
            "callTimeout",
            "limits",
            "pricing");
    private static final Set<String> INSTANCE_KEYS = Set.of(
            "type", "vcpu", "memoryGib", "gpus", "perVcpuSecond", "perGibSecond", "perGpuSecond", "maxInstances");

    /** Used by {@link java.util.ServiceLoader}. */
    public CloudRunProviderFactory() {}

    @Override
    public String type() {
        return CloudRunClient.TYPE;
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        CloudRunClient.Builder b = CloudRunClient.builder().context(context);
        String url = c.string("serviceUrl")
                .orElseThrow(
                        () -> c.missing("serviceUrl", "the service's URL, such as https://llm-abc123-uc.a.run.app"));
        apply(c, "serviceUrl", () -> b.serviceUrl(url));
        String auth = c.string("auth").orElse("id-token");
        switch (auth) {
            case "none":
                if (c.has("credentialsFile") || c.has("audience")) {
                    throw c.error("auth", "id-token when credentialsFile or audience is set");
                }
                b.noAuth();
                break;
            case "id-token":
                c.string("credentialsFile")
                        .filter(f -> !f.isBlank())
                        .ifPresent(f -> apply(c, "credentialsFile", () -> b.serviceAccountKey(Path.of(f))));
                c.string("audience").ifPresent(a -> apply(c, "audience", () -> b.audience(a)));
                break;
            default:
                throw c.error("auth", "id-token or none");
        }
        c.string("model").filter(m -> !m.isBlank()).ifPresent(b::model);
        int minInstances = c.integer("minInstances", 0, 1000).orElse(0);
        b.minInstances(minInstances);
        Duration idle = c.duration("idleTimeout", Duration.ofSeconds(1), Duration.ofHours(24))
                .orElse(Duration.ofMinutes(15));
        b.idleTimeout(idle);
        c.duration("keepWarm", Duration.ofSeconds(1), Duration.ofHours(24)).ifPresent(k -> {
            if (k.compareTo(idle) >= 0) {
                throw c.error("keepWarm", "an interval shorter than idleTimeout (" + ConfigNode.format(idle) + ")");
            }
            b.keepWarm(k);
        });
        c.duration("coldStartThreshold", Duration.ofMillis(1), Duration.ofHours(1))
                .ifPresent(b::coldStartThreshold);
        c.duration("connectTimeout", Duration.ofMillis(1), Duration.ofMinutes(10))
                .ifPresent(b::connectTimeout);
        c.duration("readTimeout", Duration.ofMillis(1), Duration.ofHours(1)).ifPresent(b::readTimeout);
        c.duration("callTimeout", Duration.ofMillis(1), Duration.ofHours(24)).ifPresent(b::callTimeout);
        c.object("limits").ifPresent(l -> b.limits(ResponseLimits.read(l)));
        if (c.has("pricing")) {
            b.pricing(pricing(c, minInstances, idle));
        }
        try {
            return b.build();
        } catch (IllegalStateException e) {
            throw new ConfigurationException(c.pathOf("auth"), e.getMessage());
        }
    }

    private static Pricing pricing(ConfigNode c, int minInstances, Duration idle) {
        ConfigNode p = c.requireObject("pricing");
        String type = p.string("type").orElse("cloud-run-instance");
        if (type.equals("cloud-run-instance")) {
            p.allowOnly(INSTANCE_KEYS);
            BigDecimal rate = p.nonNegativeDecimal("vcpu")
                    .orElse(BigDecimal.ZERO)
                    .multiply(p.nonNegativeDecimal("perVcpuSecond").orElse(BigDecimal.ZERO))
                    .add(p.nonNegativeDecimal("memoryGib")
                            .orElse(BigDecimal.ZERO)
                            .multiply(p.nonNegativeDecimal("perGibSecond").orElse(BigDecimal.ZERO)))
                    .add(p.nonNegativeDecimal("gpus")
                            .orElse(BigDecimal.ZERO)
                            .multiply(p.nonNegativeDecimal("perGpuSecond").orElse(BigDecimal.ZERO)));
            int max = p.integer("maxInstances", 1, PricingConfig.MAX_INSTANCES).orElse(Math.max(100, minInstances));
            if (minInstances > max) {
                throw p.error("maxInstances", "at least minInstances (" + minInstances + ")");
            }
            return Pricing.PerInstanceSecond.perSecond(rate, minInstances, idle, max);
        }
        Pricing read;
        try {
            read = PricingConfig.read(c, "per-instance-second", 1);
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf("pricing"), e.getMessage());
        }
        if (read instanceof Pricing.PerInstanceSecond) {
            Pricing.PerInstanceSecond s = (Pricing.PerInstanceSecond) read;
            // The service's own minInstances and idleTimeout are the ones billed unless the pricing says otherwise.
            int min = p.has("minInstances") ? s.minInstances() : minInstances;
            Duration delay = p.has("scaleInDelay") ? s.scaleInDelay() : idle;
            return new Pricing.PerInstanceSecond(s.rate(), s.hourly(), min, delay, Math.max(min, s.maxInstances()));
        }
        return read;
    }

    private static void apply(ConfigNode c, String key, Runnable set) {
        try {
            set.run();
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf(key), e.getMessage());
        }
    }
}
