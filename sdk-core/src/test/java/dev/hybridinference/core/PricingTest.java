package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class PricingTest {
    private static Pricing.BillableUsage tokens(long in, long out, long cached) {
        return new Pricing.BillableUsage(new Usage(in, out, cached), Duration.ZERO, Duration.ZERO);
    }

    @Test
    void perTokenIsExact() {
        Pricing p = new Pricing.PerToken(new BigDecimal("0.50"), new BigDecimal("1.50"), null);
        // 1234 * 0.5e-6 + 567 * 1.5e-6 = 0.000617 + 0.0008505
        assertThat(p.costOf(tokens(1234, 567, 0))).isEqualByComparingTo("0.0014675");
    }

    @Test
    void cachedInputTokensUseTheirOwnRate() {
        Pricing p = new Pricing.PerToken(new BigDecimal("1"), new BigDecimal("2"), new BigDecimal("0.1"));
        // 600 uncached * 1e-6 + 400 cached * 0.1e-6 + 10 out * 2e-6
        assertThat(p.costOf(tokens(1000, 10, 400))).isEqualByComparingTo("0.00066");
    }

    @Test
    void computeTimeRoundsUpToTheIncrementAndAppliesTheMinimumAndFee() {
        Pricing.PerComputeTime p = new Pricing.PerComputeTime(
                new BigDecimal("0.0001"), Duration.ofMillis(100), Duration.ofSeconds(1), new BigDecimal("0.0000002"));
        assertThat(p.billedTime(Duration.ofMillis(1250))).isEqualTo(Duration.ofMillis(1300));
        assertThat(p.billedTime(Duration.ofMillis(1300))).isEqualTo(Duration.ofMillis(1300));
        assertThat(p.billedTime(Duration.ofMillis(200))).isEqualTo(Duration.ofSeconds(1));
        Pricing.BillableUsage u = new Pricing.BillableUsage(Usage.ZERO, Duration.ofMillis(1250), Duration.ZERO);
        assertThat(p.costOf(u)).isEqualByComparingTo("0.0001302");
    }

    @Test
    void instanceHourAttributesTheSharedInstanceTime() {
        Pricing.PerInstanceHour p = new Pricing.PerInstanceHour(new BigDecimal("3.60"), 2);
        Pricing.BillableUsage u = new Pricing.BillableUsage(Usage.ZERO, Duration.ofSeconds(9), Duration.ofSeconds(1));
        assertThat(p.costOf(u)).isEqualByComparingTo("0.001");
        assertThat(p.capacityCost(Duration.ofHours(1))).isEqualByComparingTo("7.20");
    }

    @Test
    void amortizedChargesOccupancyAndFreeChargesNothing() {
        Pricing.BillableUsage u =
                new Pricing.BillableUsage(new Usage(10, 10, 0), Duration.ofSeconds(2), Duration.ofSeconds(2));
        assertThat(new Pricing.Amortized(new BigDecimal("0.36")).costOf(u)).isEqualByComparingTo("0.0002");
        assertThat(Pricing.FREE.costOf(u)).isEqualByComparingTo("0");
        assertThat(Pricing.FREE.describe()).isEqualTo("free");
    }

    @Test
    void negativeRatesAreRejectedWithTheirName() {
        assertThatThrownBy(() -> new Pricing.PerToken(new BigDecimal("-1"), BigDecimal.ONE, null))
                .hasMessageContaining("inputPerMillion");
        assertThatThrownBy(() -> new Pricing.PerInstanceHour(BigDecimal.ONE, 0)).hasMessageContaining("instances");
    }
}
