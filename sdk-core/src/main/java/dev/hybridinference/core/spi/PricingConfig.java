package dev.hybridinference.core.spi;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.Pricing;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.Set;

/**
 * Reads a provider's {@code pricing:} section. The {@code type} key picks the model; each type accepts
 * only its own keys:
 *
 * <ul>
 *   <li>{@code per-token}: {@code inputPerMillion}, {@code outputPerMillion}, {@code
 *       cachedInputPerMillion}
 *   <li>{@code per-compute-time}: {@code perSecond}, {@code billingIncrement}, {@code minimumBilled},
 *       {@code perRequest}
 *   <li>{@code per-gb-second}: {@code perGbSecond}, {@code memoryGb}, {@code billingIncrement}, {@code
 *       minimumBilled}, {@code perGbProcessed}
 *   <li>{@code per-instance-hour}: {@code perHour}, {@code instances}
 *   <li>{@code per-instance-second}: {@code perInstanceSecond} or {@code perHour} (one of them), {@code
 *       minInstances}, {@code scaleInDelay}, {@code maxInstances}
 *   <li>{@code amortized}: {@code perHour}; {@code free}: nothing
 * </ul>
 *
 * <p>Every price is a decimal from 0 to {@link ConfigNode#MAX_AMOUNT} USD with at most {@value
 * ConfigNode#MAX_DECIMAL_PLACES} decimal places; {@code billingIncrement} is from 0 (no rounding) to
 * {@code 1h} (default {@code 1ms}), {@code minimumBilled} from 0 to {@code 24h}, {@code memoryGb} from
 * {@code 0.001} to {@value #MAX_MEMORY_GB}, {@code instances} and {@code maxInstances} from 1 and {@code
 * minInstances} from 0 to {@value #MAX_INSTANCES} (with {@code minInstances <= maxInstances}), {@code
 * scaleInDelay} from 0 to {@code 24h} (default {@code 15m}). Larger values could not be billed without
 * overflowing.
 */
public final class PricingConfig {
    /** The most instances per-instance-hour pricing accepts. */
    public static final int MAX_INSTANCES = 100_000;

    /** The largest memory size per-gb-second pricing accepts, in GB. */
    public static final int MAX_MEMORY_GB = 1024;

    /** How long an idle instance stays billed under per-instance-second pricing unless set. */
    public static final Duration DEFAULT_SCALE_IN_DELAY = Duration.ofMinutes(15);

    private static final BigDecimal MIN_MEMORY_GB = new BigDecimal("0.001");

    private static final Duration MAX_BILLING_INCREMENT = Duration.ofHours(1);
    private static final Duration MAX_MINIMUM_BILLED = Duration.ofHours(24);

    private PricingConfig() {}

    /**
     * Reads the {@code pricing} key of {@code provider}.
     *
     * @param provider the provider's section
     * @param defaultType the type when the section or its {@code type} key is absent
     * @param defaultInstances the instance count for per-instance-hour pricing when none is given
     */
    public static Pricing read(ConfigNode provider, String defaultType, int defaultInstances) {
        if (!provider.has("pricing")) {
            return defaults(defaultType, defaultInstances);
        }
        ConfigNode p = provider.requireObject("pricing");
        String type = p.string("type").orElse(defaultType);
        switch (type) {
            case "per-token":
                p.allowOnly(Set.of("type", "inputPerMillion", "outputPerMillion", "cachedInputPerMillion"));
                return new Pricing.PerToken(
                        p.nonNegativeDecimal("inputPerMillion")
                                .orElseThrow(() -> p.missing("inputPerMillion", "USD per million input tokens")),
                        p.nonNegativeDecimal("outputPerMillion")
                                .orElseThrow(() -> p.missing("outputPerMillion", "USD per million output tokens")),
                        p.nonNegativeDecimal("cachedInputPerMillion").orElse(null));
            case "per-compute-time":
                p.allowOnly(Set.of("type", "perSecond", "billingIncrement", "minimumBilled", "perRequest"));
                return new Pricing.PerComputeTime(
                        p.nonNegativeDecimal("perSecond")
                                .orElseThrow(() -> p.missing("perSecond", "USD per second of compute")),
                        p.duration("billingIncrement", Duration.ZERO, MAX_BILLING_INCREMENT)
                                .orElse(Duration.ofMillis(1)),
                        p.duration("minimumBilled", Duration.ZERO, MAX_MINIMUM_BILLED)
                                .orElse(Duration.ZERO),
                        p.nonNegativeDecimal("perRequest").orElse(BigDecimal.ZERO));
            case "per-gb-second":
                p.allowOnly(Set.of(
                        "type", "perGbSecond", "memoryGb", "billingIncrement", "minimumBilled", "perGbProcessed"));
                return new Pricing.PerGbSecond(
                        p.nonNegativeDecimal("perGbSecond")
                                .orElseThrow(() -> p.missing("perGbSecond", "USD per GB-second of compute")),
                        p.decimal("memoryGb", MIN_MEMORY_GB, BigDecimal.valueOf(MAX_MEMORY_GB))
                                .orElseThrow(() -> p.missing("memoryGb", "the endpoint's memory size in GB")),
                        p.duration("billingIncrement", Duration.ZERO, MAX_BILLING_INCREMENT)
                                .orElse(Duration.ofMillis(1)),
                        p.duration("minimumBilled", Duration.ZERO, MAX_MINIMUM_BILLED)
                                .orElse(Duration.ZERO),
                        p.nonNegativeDecimal("perGbProcessed").orElse(BigDecimal.ZERO));
            case "per-instance-second":
                return perInstanceSecond(p);
            case "per-instance-hour":
                p.allowOnly(Set.of("type", "perHour", "instances"));
                return new Pricing.PerInstanceHour(
                        p.nonNegativeDecimal("perHour")
                                .orElseThrow(() -> p.missing("perHour", "USD per instance hour")),
                        p.integer("instances", 1, MAX_INSTANCES).orElse(defaultInstances));
            case "amortized":
                p.allowOnly(Set.of("type", "perHour"));
                return new Pricing.Amortized(p.nonNegativeDecimal("perHour").orElse(BigDecimal.ZERO));
            case "free":
                p.allowOnly(Set.of("type"));
                return Pricing.FREE;
            default:
                throw new ConfigurationException(
                        p.pathOf("type"),
                        "unknown pricing type \"" + type
                                + "\"; expected per-token, per-compute-time, per-gb-second, per-instance-hour,"
                                + " per-instance-second, amortized or free");
        }
    }

    private static Pricing perInstanceSecond(ConfigNode p) {
        p.allowOnly(Set.of("type", "perInstanceSecond", "perHour", "minInstances", "scaleInDelay", "maxInstances"));
        if (p.has("perInstanceSecond") && p.has("perHour")) {
            throw p.error("perHour", "expected either perInstanceSecond or perHour, not both");
        }
        int max = p.integer("maxInstances", 1, MAX_INSTANCES).orElse(MAX_INSTANCES);
        int min = p.integer("minInstances", 0, MAX_INSTANCES).orElse(0);
        if (min > max) {
            throw p.error("minInstances", "expected at most maxInstances (" + max + ")");
        }
        Duration delay = p.duration("scaleInDelay", Duration.ZERO, ConfigNode.DEFAULT_MAX_DURATION)
                .orElse(DEFAULT_SCALE_IN_DELAY);
        if (p.has("perHour")) {
            return Pricing.PerInstanceSecond.perHour(
                    p.nonNegativeDecimal("perHour").orElseThrow(), min, delay, max);
        }
        return Pricing.PerInstanceSecond.perSecond(
                p.nonNegativeDecimal("perInstanceSecond")
                        .orElseThrow(() ->
                                p.missing("perInstanceSecond", "USD per instance-second (or perHour: USD per hour)")),
                min,
                delay,
                max);
    }

    private static Pricing defaults(String type, int instances) {
        switch (type) {
            case "per-instance-hour":
                return new Pricing.PerInstanceHour(BigDecimal.ZERO, instances);
            case "amortized":
            case "free":
                return Pricing.FREE;
            default:
                throw new IllegalArgumentException("no default pricing for type " + type);
        }
    }
}
