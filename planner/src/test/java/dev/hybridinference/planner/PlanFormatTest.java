package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class PlanFormatTest {
    @Test
    void tokenCountsAreShort() {
        assertThat(PlanFormat.tokens(950)).isEqualTo("950");
        assertThat(PlanFormat.tokens(10_000)).isEqualTo("10k");
        assertThat(PlanFormat.tokens(12_345)).isEqualTo("12k");
        assertThat(PlanFormat.tokens(1_500_000)).isEqualTo("1.5M");
        assertThat(PlanFormat.tokens(4_000_000.0 / 3)).isEqualTo("1.3M");
        assertThat(PlanFormat.tokens(85_000_000)).isEqualTo("85M");
        assertThat(PlanFormat.tokens(1_000_000_000)).isEqualTo("1B");
    }

    @Test
    void aCountThatRoundsUpToAThousandUnitsTakesTheNextUnit() {
        assertThat(PlanFormat.tokens(999_600)).isEqualTo("1M");
        assertThat(PlanFormat.tokens(999_400)).isEqualTo("999k");
    }

    @Test
    void dollarsShowCentsFromOneDollarAndTwoSignificantDigitsBelow() {
        assertThat(PlanFormat.usd(new BigDecimal("12.344"))).isEqualTo("$12.34");
        assertThat(PlanFormat.usd(new BigDecimal("12.345"))).isEqualTo("$12.35");
        assertThat(PlanFormat.usd(new BigDecimal("1234.5"))).isEqualTo("$1,234.50");
        assertThat(PlanFormat.usd(new BigDecimal("0.004213"))).isEqualTo("$0.0042");
        assertThat(PlanFormat.usd(new BigDecimal("0.050"))).isEqualTo("$0.05");
        assertThat(PlanFormat.usd(new BigDecimal("0.000000"))).isEqualTo("$0.00");
        assertThat(PlanFormat.usd(new BigDecimal("-3.2"))).isEqualTo("-$3.20");
    }

    @Test
    void dollarTicksDropCentsFromWholeAmounts() {
        assertThat(PlanFormat.usdTick(0)).isEqualTo("$0");
        assertThat(PlanFormat.usdTick(1)).isEqualTo("$1");
        assertThat(PlanFormat.usdTick(1000)).isEqualTo("$1,000");
        assertThat(PlanFormat.usdTick(2.5)).isEqualTo("$2.50");
        assertThat(PlanFormat.usdTick(0.1)).isEqualTo("$0.10");
        assertThat(PlanFormat.usdTick(0.001)).isEqualTo("$0.001");
    }

    @Test
    void latenciesInMillisecondsBelowASecond() {
        assertThat(PlanFormat.latency(Duration.ofNanos(849_600_000))).isEqualTo("850 ms");
        assertThat(PlanFormat.latency(Duration.ofMillis(2_400))).isEqualTo("2.40 s");
        assertThat(PlanFormat.latency(Duration.ofMillis(312_400))).isEqualTo("312 s");
    }
}
