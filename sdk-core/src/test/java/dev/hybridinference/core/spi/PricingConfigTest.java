package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.Pricing;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The serverless pricing types read from configuration, with their defaults and ranges. */
class PricingConfigTest {
    private static Pricing read(Map<String, Object> pricing) {
        return PricingConfig.read(ConfigNode.of("providers.p", Map.of("pricing", pricing)), "free", 1);
    }

    @Test
    void perGbSecondReadsEveryKeyAndDefaultsToMillisecondBilling() {
        Pricing p = read(Map.of(
                "type", "per-gb-second",
                "perGbSecond", "0.0000200",
                "memoryGb", 6,
                "billingIncrement", "100ms",
                "minimumBilled", "1s",
                "perGbProcessed", 0.016));
        assertThat(p)
                .isEqualTo(new Pricing.PerGbSecond(
                        new BigDecimal("0.0000200"),
                        new BigDecimal("6"),
                        Duration.ofMillis(100),
                        Duration.ofSeconds(1),
                        new BigDecimal("0.016")));
        Pricing.PerGbSecond d =
                (Pricing.PerGbSecond) read(Map.of("type", "per-gb-second", "perGbSecond", 1, "memoryGb", "0.5"));
        assertThat(d.billingIncrement()).isEqualTo(Duration.ofMillis(1));
        assertThat(d.minimumBilled()).isZero();
        assertThat(d.perGbProcessed()).isZero();
        assertThat(d.memoryGb()).isEqualByComparingTo("0.5");
    }

    @Test
    void perGbSecondRefusesValuesOutOfRangeWithTheKeyPath() {
        assertThatThrownBy(() -> read(Map.of("type", "per-gb-second", "perGbSecond", 1)))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageContaining("providers.p.pricing.memoryGb");
        assertThatThrownBy(() -> read(Map.of("type", "per-gb-second", "perGbSecond", 1, "memoryGb", 0)))
                .hasMessageContaining("providers.p.pricing.memoryGb")
                .hasMessageContaining("at least 0.001");
        assertThatThrownBy(() -> read(Map.of("type", "per-gb-second", "perGbSecond", 1, "memoryGb", 2048)))
                .hasMessageContaining("at most 1024");
        assertThatThrownBy(() -> read(
                        Map.of("type", "per-gb-second", "perGbSecond", 1, "memoryGb", 1, "billingIncrement", "2h")))
                .hasMessageContaining("providers.p.pricing.billingIncrement");
        assertThatThrownBy(() -> read(Map.of("type", "per-gb-second", "perGbSecond", -1, "memoryGb", 1)))
                .hasMessageContaining("providers.p.pricing.perGbSecond");
        assertThatThrownBy(() -> read(Map.of("type", "per-gb-second", "perGbSecond", 1, "memoryGb", 1, "perHour", 1)))
                .hasMessageContaining("perHour");
    }

    @Test
    void perInstanceSecondTakesASecondOrHourlyRateAndScaleSettings() {
        Pricing p = read(Map.of(
                "type", "per-instance-second",
                "perInstanceSecond", "0.000187",
                "minInstances", 1,
                "scaleInDelay", "5m",
                "maxInstances", 4));
        assertThat(p)
                .isEqualTo(
                        Pricing.PerInstanceSecond.perSecond(new BigDecimal("0.000187"), 1, Duration.ofMinutes(5), 4));
        Pricing.PerInstanceSecond h =
                (Pricing.PerInstanceSecond) read(Map.of("type", "per-instance-second", "perHour", "0.67"));
        assertThat(h.hourly()).isTrue();
        assertThat(h.rate()).isEqualByComparingTo("0.67");
        assertThat(h.minInstances()).isZero();
        assertThat(h.scaleInDelay()).isEqualTo(PricingConfig.DEFAULT_SCALE_IN_DELAY);
        assertThat(h.maxInstances()).isEqualTo(PricingConfig.MAX_INSTANCES);
    }

    @Test
    void perInstanceSecondRefusesContradictionsAndOutOfRangeCounts() {
        assertThatThrownBy(() -> read(Map.of("type", "per-instance-second")))
                .hasMessageContaining("providers.p.pricing.perInstanceSecond")
                .hasMessageContaining("is required");
        assertThatThrownBy(() -> read(Map.of("type", "per-instance-second", "perInstanceSecond", 1, "perHour", 1)))
                .hasMessageContaining("either perInstanceSecond or perHour");
        assertThatThrownBy(() ->
                        read(Map.of("type", "per-instance-second", "perHour", 1, "minInstances", 3, "maxInstances", 2)))
                .hasMessageContaining("providers.p.pricing.minInstances")
                .hasMessageContaining("at most maxInstances (2)");
        assertThatThrownBy(() -> read(Map.of("type", "per-instance-second", "perHour", 1, "maxInstances", 0)))
                .hasMessageContaining("providers.p.pricing.maxInstances");
        assertThatThrownBy(() -> read(Map.of("type", "per-instance-second", "perHour", 1, "minInstances", -1)))
                .hasMessageContaining("providers.p.pricing.minInstances");
        assertThatThrownBy(() -> read(Map.of("type", "per-instance-second", "perHour", 1, "scaleInDelay", "2d")))
                .hasMessageContaining("providers.p.pricing.scaleInDelay");
        assertThatThrownBy(() -> read(Map.of("type", "per-instance-second", "perHour", 1, "instances", 2)))
                .hasMessageContaining("instances");
    }
}
