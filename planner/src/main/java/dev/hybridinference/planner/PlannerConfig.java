package dev.hybridinference.planner;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.VirtualTime;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The user's SDK configuration, and the deployment model of each of its providers, as the planner reads them.
 *
 * <p>The configuration is loaded by the core's own loader ({@link InferenceClients#loader()}), so its routing,
 * retries, tiers and budgets are exactly what production builds; only each provider is replaced by a
 * {@link SimulatedProvider}. A provider's pricing is read from its {@code pricing} section with the core's
 * reader ({@link PricingConfig}); its deployment model comes from the deployments document when that names
 * it, else from defaults by pricing type (see {@link #defaultDeployment}). Environment variables the
 * configuration references without a default need not be set: the planner never connects anywhere, and
 * substitutes a placeholder.
 *
 * <p>The deployments document (YAML or JSON) has one key, {@code deployments}, mapping provider names to any
 * of: {@code kind} ({@code api}, {@code serverless}, {@code server}), {@code instances} (a server's count),
 * {@code minInstances}, {@code maxInstances}, {@code concurrency}, {@code prefillTokensPerSecond}, {@code
 * outputTokensPerSecond}, {@code firstTokenLatency}, {@code startupTime}, {@code idleTimeout}, {@code
 * queueLimit}, and {@code pricing} (the core's pricing section, for a provider whose own pricing type only
 * its provider module reads, such as Cloud Run's {@code cloud-run-instance}).
 */
public final class PlannerConfig {
    private static final Pattern REFERENCE = Pattern.compile("\\$\\{([A-Za-z_][A-Za-z0-9_]*)(:-)?");
    private static final Set<String> DEPLOYMENT_KEYS = Set.of(
            "kind",
            "instances",
            "minInstances",
            "maxInstances",
            "concurrency",
            "prefillTokensPerSecond",
            "outputTokensPerSecond",
            "firstTokenLatency",
            "startupTime",
            "idleTimeout",
            "queueLimit",
            "pricing");
    private static final BigDecimal MAX_RATE = new BigDecimal(10_000_000);

    private final String document;
    private final Map<String, String> env;
    private final Map<String, PlannedProvider> providers;

    private PlannerConfig(String document, Map<String, String> env, Map<String, PlannedProvider> providers) {
        this.document = document;
        this.env = env;
        this.providers = providers;
    }

    /** Reads the configuration file and, when not null, the deployments file. */
    public static PlannerConfig read(Path config, Path deployments) {
        Objects.requireNonNull(config, "config");
        return of(readText(config, "configuration"), deployments == null ? null : readText(deployments, "deployments"));
    }

    /**
     * Reads a configuration document and, when not null, a deployments document.
     *
     * @throws ConfigurationException naming the offending key
     */
    public static PlannerConfig of(String config, String deployments) {
        Objects.requireNonNull(config, "config");
        Map<String, ConfigNode> overrides = deployments == null ? Map.of() : readDeployments(deployments);
        Map<String, String> env = environmentFor(config);
        Map<String, PlannedProvider> found = new LinkedHashMap<>();
        VirtualTime scratch = new VirtualTime(Instant.EPOCH);
        InferenceClient loaded = InferenceClients.loader()
                .env(env)
                .timeSource(scratch)
                .ledger(new CostLedger(scratch.clock(), Duration.ofDays(1)))
                .providerFactory(ctx -> {
                    PlannedProvider p = plan(ctx.id(), ctx.config(), overrides.get(ctx.id()));
                    found.put(ctx.id(), p);
                    return new SimulatedProvider(p.id(), p.model(), p.pricing(), p.deployment(), ctx.ledger(), scratch);
                })
                .load(config);
        loaded.close();
        for (String name : overrides.keySet()) {
            if (!found.containsKey(name)) {
                throw new ConfigurationException(
                        "deployments." + name,
                        "names no provider of the configuration; providers: " + String.join(", ", found.keySet()));
            }
        }
        return new PlannerConfig(config, env, Collections.unmodifiableMap(found));
    }

    /** The providers, by name, in the configuration's order. */
    public Map<String, PlannedProvider> providers() {
        return providers;
    }

    /** The configuration document. */
    String document() {
        return document;
    }

    /** The environment the configuration is loaded with: the process's, plus placeholders. */
    Map<String, String> env() {
        return env;
    }

    /**
     * The deployment a provider gets without an entry in the deployments document, by its pricing (figures
     * are typical of an 8B-parameter model on one data-centre GPU; set your own for a real plan):
     *
     * <ul>
     *   <li>per token: an API, 300 ms to the first token, prefill 5000 and output 60 tokens/s per request;
     *   <li>per compute time or per GB-second (SageMaker Serverless): serverless, up to 10 instances of one
     *       request each, 30 s start-up, the section's {@code idleTimeout} or 10 min, no queue;
     *   <li>per instance-second (Cloud Run with instance billing): serverless, the pricing's instance
     *       bounds (at most 100), 8 requests per instance, 60 s start-up, the pricing's scale-in delay, a queue
     *       of 100;
     *   <li>per instance hour (vLLM): a server of the pricing's instances, 32 requests each (its batch),
     *       prefill 4000 and output 40 tokens/s per request, a queue of 1000;
     *   <li>amortized or free (the local runtime): a server of one instance, one request at a time, prefill
     *       500 and output 20 tokens/s.
     * </ul>
     */
    public static Deployment defaultDeployment(Pricing pricing, ConfigNode section) {
        if (pricing instanceof Pricing.PerToken) {
            return new Deployment(
                    Deployment.Kind.API, 0, 1, 1, 5000, 60, Duration.ofMillis(300), Duration.ZERO, Duration.ZERO, 0);
        }
        if (pricing instanceof Pricing.PerComputeTime || pricing instanceof Pricing.PerGbSecond) {
            Duration idle = section.duration("idleTimeout").orElse(Duration.ofMinutes(10));
            return new Deployment(
                    Deployment.Kind.SERVERLESS,
                    0,
                    10,
                    1,
                    2000,
                    30,
                    Duration.ofMillis(200),
                    Duration.ofSeconds(30),
                    idle,
                    0);
        }
        if (pricing instanceof Pricing.PerInstanceSecond) {
            Pricing.PerInstanceSecond p = (Pricing.PerInstanceSecond) pricing;
            int max = Math.min(100, p.maxInstances());
            return new Deployment(
                    Deployment.Kind.SERVERLESS,
                    Math.min(p.minInstances(), max),
                    max,
                    8,
                    4000,
                    40,
                    Duration.ofMillis(150),
                    Duration.ofSeconds(60),
                    p.scaleInDelay(),
                    100);
        }
        if (pricing instanceof Pricing.PerInstanceHour) {
            int n = ((Pricing.PerInstanceHour) pricing).instances();
            return new Deployment(
                    Deployment.Kind.SERVER,
                    n,
                    n,
                    32,
                    4000,
                    40,
                    Duration.ofMillis(150),
                    Duration.ZERO,
                    Duration.ZERO,
                    1000);
        }
        return new Deployment(
                Deployment.Kind.SERVER, 1, 1, 1, 500, 20, Duration.ofMillis(100), Duration.ZERO, Duration.ZERO, 100);
    }

    private static PlannedProvider plan(String id, ConfigNode section, ConfigNode override) {
        String type = section.requireString("type");
        String model = section.string("model").orElse(id);
        Pricing pricing;
        if (override != null && override.has("pricing")) {
            pricing = PricingConfig.read(override, "free", 1);
        } else {
            try {
                pricing = PricingConfig.read(section, defaultPricingType(type), 1);
            } catch (ConfigurationException e) {
                throw new ConfigurationException(
                        section.pathOf("pricing"),
                        e.getMessage() + "; the planner reads the core's pricing types: give this provider a"
                                + " pricing section under deployments." + id + " in the deployments file");
            }
        }
        Deployment d = defaultDeployment(pricing, section);
        if (override != null) {
            d = overridden(d, override, pricing);
        }
        return new PlannedProvider(id, type, model, pricing, d);
    }

    private static String defaultPricingType(String type) {
        switch (type) {
            case "vllm":
                return "per-instance-hour";
            case "local-gpu":
                return "amortized";
            default:
                return "free";
        }
    }

    private static Deployment overridden(Deployment d, ConfigNode o, Pricing pricing) {
        o.allowOnly(DEPLOYMENT_KEYS);
        Deployment.Kind kind = o.string("kind").map(k -> kind(o, k)).orElse(d.kind());
        int min = d.minInstances();
        int max = d.maxInstances();
        if (o.has("instances")) {
            if (o.has("minInstances") || o.has("maxInstances")) {
                throw o.error("instances", "expected either instances (a server) or min/maxInstances, not both");
            }
            int n = o.integer("instances", 1, PricingConfig.MAX_INSTANCES).orElseThrow();
            if (pricing instanceof Pricing.PerInstanceHour && ((Pricing.PerInstanceHour) pricing).instances() != n) {
                throw o.error(
                        "instances",
                        "expected the pricing's instance count (" + ((Pricing.PerInstanceHour) pricing).instances()
                                + "): the planner bills the instances it runs; set instances in the pricing");
            }
            min = n;
            max = n;
        }
        max = o.integer("maxInstances", 1, PricingConfig.MAX_INSTANCES).orElse(max);
        min = o.integer("minInstances", 0, PricingConfig.MAX_INSTANCES).orElse(Math.min(min, max));
        if (min > max) {
            throw o.error("minInstances", "expected at most maxInstances (" + max + ")");
        }
        if (kind == Deployment.Kind.SERVER) {
            min = max;
        }
        try {
            return new Deployment(
                    kind,
                    min,
                    max,
                    o.integer("concurrency", 1, 1_000_000).orElse(d.concurrency()),
                    rate(o, "prefillTokensPerSecond", d.prefillTokensPerSecond()),
                    rate(o, "outputTokensPerSecond", d.outputTokensPerSecond()),
                    o.duration("firstTokenLatency").orElse(d.firstTokenLatency()),
                    o.duration("startupTime").orElse(d.startupTime()),
                    o.duration("idleTimeout").orElse(d.idleTimeout()),
                    o.integer("queueLimit", 0, 100_000_000).orElse(d.queueLimit()));
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(o.path(), e.getMessage());
        }
    }

    private static Deployment.Kind kind(ConfigNode o, String k) {
        switch (k) {
            case "api":
                return Deployment.Kind.API;
            case "serverless":
                return Deployment.Kind.SERVERLESS;
            case "server":
                return Deployment.Kind.SERVER;
            default:
                throw o.error("kind", "expected api, serverless or server");
        }
    }

    private static double rate(ConfigNode o, String key, double fallback) {
        return o.decimal(key, new BigDecimal("0.001"), MAX_RATE)
                .map(BigDecimal::doubleValue)
                .orElse(fallback);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, ConfigNode> readDeployments(String text) {
        Object parsed;
        try {
            parsed = new ObjectMapper(new YAMLFactory()).readValue(text, Object.class);
        } catch (IOException e) {
            throw new ConfigurationException("", "the deployments document is not YAML or JSON: " + e.getMessage());
        }
        if (!(parsed instanceof Map)) {
            throw new ConfigurationException("", "expected a mapping with the key deployments");
        }
        ConfigNode root = ConfigNode.of((Map<String, ?>) parsed);
        root.allowOnly(Set.of("deployments"));
        Map<String, ConfigNode> out = new LinkedHashMap<>();
        root.requireObject("deployments").entries().forEach((name, node) -> {
            if (!node.isObject()) {
                throw new ConfigurationException(node.path(), "expected a mapping of deployment settings");
            }
            out.put(name, node);
        });
        return out;
    }

    /** The process environment, plus a placeholder for each variable the document needs and nobody set. */
    private static Map<String, String> environmentFor(String document) {
        Map<String, String> env = new HashMap<>(System.getenv());
        Matcher m = REFERENCE.matcher(document);
        while (m.find()) {
            if (m.group(2) == null) {
                env.putIfAbsent(m.group(1), "unset-in-plan");
            }
        }
        return env;
    }

    private static String readText(Path file, String what) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ConfigurationException("", "cannot read the " + what + " file " + file + ": " + e.getMessage());
        }
    }
}
