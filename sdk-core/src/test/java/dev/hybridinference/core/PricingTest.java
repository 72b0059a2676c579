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

    // ---- per GB-second (SageMaker Serverless): every expected figure below is worked out by hand ----

    private static Pricing.BillableUsage compute(Duration time, long bytes, boolean reported) {
        return new Pricing.BillableUsage(Usage.ZERO, time, Duration.ZERO, bytes, reported);
    }

    @Test
    void perGbSecondBillsMemoryTimesRoundedTimePlusDataProcessed() {
        Pricing.PerGbSecond p = new Pricing.PerGbSecond(
                new BigDecimal("0.00002"),
                new BigDecimal("6"),
                Duration.ofMillis(1),
                Duration.ZERO,
                new BigDecimal("0.016"));
        // 1234.5678 ms rounds up to 1235 ms: 1.235 s x 6 GB x $0.00002 = $0.0001482.
        // 1 MiB + 2 MiB = 3 MiB = 3/1024 GB = 0.0029296875 GB x $0.016 = $0.000046875.
        long bytes = (1L << 20) + (2L << 20);
        assertThat(p.billedTime(Duration.ofNanos(1_234_567_800))).isEqualTo(Duration.ofMillis(1235));
        assertThat(p.costOf(compute(Duration.ofNanos(1_234_567_800), bytes, true)))
                .isEqualByComparingTo("0.000195075");
        // A whole number of milliseconds is not rounded: 2 s x 6 x 0.00002 = 0.00024.
        assertThat(p.costOf(compute(Duration.ofSeconds(2), 0, true))).isEqualByComparingTo("0.00024");
    }

    @Test
    void perGbSecondAppliesTheIncrementAndTheMinimum() {
        Pricing.PerGbSecond p = new Pricing.PerGbSecond(
                new BigDecimal("0.00004"), new BigDecimal("2"), Duration.ofMillis(100), Duration.ofSeconds(1), null);
        // 250 ms is under the minimum: 1 s x 2 GB x $0.00004 = $0.00008.
        assertThat(p.costOf(compute(Duration.ofMillis(250), 0, true))).isEqualByComparingTo("0.00008");
        // 1 ns past 1250 ms rounds up to 1300 ms: 1.3 x 2 x 0.00004 = 0.000104.
        assertThat(p.billedTime(Duration.ofNanos(1_250_000_001))).isEqualTo(Duration.ofMillis(1300));
        assertThat(p.costOf(compute(Duration.ofNanos(1_250_000_001), 0, true))).isEqualByComparingTo("0.000104");
        // Exactly on an increment: 1300 ms stays 1300 ms.
        assertThat(p.billedTime(Duration.ofMillis(1300))).isEqualTo(Duration.ofMillis(1300));
    }

    @Test
    void perGbSecondWithoutAnIncrementIsExactToTheNanosecondAndDataToTheByte() {
        Pricing.PerGbSecond p = new Pricing.PerGbSecond(
                new BigDecimal("0.00001"),
                new BigDecimal("1.5"),
                Duration.ZERO,
                Duration.ZERO,
                new BigDecimal("0.016"));
        // 1.500000001 s x 1.5 GB x $0.00001 = $0.0000225000000150
        assertThat(p.costOf(compute(Duration.ofNanos(1_500_000_001), 0, true)))
                .isEqualByComparingTo("0.000022500000015");
        // One byte: $0.016 / 2^30, exactly; times 2^30 gives the rate back with no rounding lost.
        BigDecimal oneByte = p.costOf(compute(Duration.ZERO, 1, true));
        assertThat(oneByte).isEqualByComparingTo("0.000000000014901161193847656250");
        assertThat(oneByte.multiply(BigDecimal.valueOf(1L << 30))).isEqualByComparingTo("0.016");
    }

    @Test
    void perGbSecondIsAnEstimateWhenTheSdkMeasuredTheTimeOrSawNoBytes() {
        Pricing.PerGbSecond p = new Pricing.PerGbSecond(
                new BigDecimal("0.00002"),
                BigDecimal.ONE,
                Duration.ofMillis(1),
                Duration.ZERO,
                new BigDecimal("0.016"));
        assertThat(p.isEstimate(compute(Duration.ofSeconds(1), 10, true))).isFalse();
        assertThat(p.isEstimate(compute(Duration.ofSeconds(1), 10, false))).isTrue();
        assertThat(p.isEstimate(compute(Duration.ofSeconds(1), 0, true))).isTrue();
        assertThatThrownBy(() -> new Pricing.PerGbSecond(BigDecimal.ONE, BigDecimal.ZERO, null, null, null))
                .hasMessageContaining("memoryGb");
    }

    // ---- per instance-second (Cloud Run instance billing) ----

    @Test
    void perInstanceSecondChargesTheAttributedInstanceTime() {
        Pricing.PerInstanceSecond perSecond =
                Pricing.PerInstanceSecond.perSecond(new BigDecimal("0.000187"), 0, Duration.ofMinutes(15), 10);
        Pricing.BillableUsage u = new Pricing.BillableUsage(Usage.ZERO, Duration.ZERO, Duration.ofMillis(10_500));
        // 10.5 s x $0.000187 = $0.0019635, exact.
        assertThat(perSecond.costOf(u)).isEqualByComparingTo("0.0019635");
        assertThat(perSecond.isEstimate(u)).isTrue();
        // Hourly: 10.5 s x $0.67 / 3600 = 0.0019541666..., half-even at 12 places.
        Pricing.PerInstanceSecond perHour =
                Pricing.PerInstanceSecond.perHour(new BigDecimal("0.67"), 1, Duration.ofMinutes(15), 10);
        assertThat(perHour.costOf(u)).isEqualTo(new BigDecimal("0.001954166667"));
        assertThatThrownBy(() -> Pricing.PerInstanceSecond.perSecond(BigDecimal.ONE, 3, Duration.ZERO, 2))
                .hasMessageContaining("minInstances");
        assertThatThrownBy(() -> Pricing.PerInstanceSecond.perSecond(BigDecimal.ONE, 0, Duration.ZERO, 0))
                .hasMessageContaining("maxInstances");
    }

    @Test
    void onlyFiguresThePlatformDoesNotReportMakeAnEstimate() {
        Pricing.BillableUsage exact =
                new Pricing.BillableUsage(new Usage(10, 10, 0), Duration.ofSeconds(1), Duration.ZERO, 0, true);
        Pricing.BillableUsage counted =
                new Pricing.BillableUsage(Usage.estimated(10, 10), Duration.ofSeconds(1), Duration.ZERO, 0, false);
        Pricing tokens = new Pricing.PerToken(BigDecimal.ONE, BigDecimal.ONE, null);
        assertThat(tokens.isEstimate(exact)).isFalse();
        assertThat(tokens.isEstimate(counted)).isTrue();
        Pricing time = new Pricing.PerComputeTime(BigDecimal.ONE, null, null, null);
        assertThat(time.isEstimate(exact)).isFalse();
        assertThat(time.isEstimate(counted)).isTrue();
        assertThat(new Pricing.PerInstanceHour(BigDecimal.ONE, 2).isEstimate(counted))
                .isFalse();
        assertThat(Pricing.FREE.isEstimate(counted)).isFalse();
    }

    @Test
    void amountsPrintWithoutTrailingZeros() {
        assertThat(Pricing.formatUsd(new BigDecimal("0.000465000000"))).isEqualTo("$0.000465");
        assertThat(Pricing.formatUsd(new BigDecimal("2.00"))).isEqualTo("$2");
        assertThat(Pricing.formatUsd(new BigDecimal("1.2E+3"))).isEqualTo("$1200");
        assertThat(Pricing.formatUsd(new BigDecimal("0E-12"))).isEqualTo("$0");
        assertThat(Pricing.formatUsd(new BigDecimal("-0.10"))).isEqualTo("-$0.1");
        assertThat(new Pricing.PerToken(new BigDecimal("0.50"), new BigDecimal("1.50"), null).describe())
                .isEqualTo("$0.5/M in, $1.5/M out");
    }
}
