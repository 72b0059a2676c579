package dev.hybridinference.examples.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.core.Usage;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The demo's figures for a few receipts, computed by hand. */
class DemoSummaryTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    /** $0.50 per million in, $1.50 per million out; $3.60 per server hour; two calls per server. */
    private static final DemoSummary.Prices PRICES = new DemoSummary.Prices(
            new Pricing.PerToken(new BigDecimal("0.50"), new BigDecimal("1.50"), null),
            new Pricing.PerInstanceHour(new BigDecimal("3.60"), 1),
            2);

    private static Receipt receipt(
            String provider,
            long startMillis,
            long millis,
            long in,
            long out,
            String cost,
            RouteFacts facts,
            boolean cold) {
        return Receipt.builder()
                .providerId(provider)
                .deploymentKind(DeploymentKind.SERVERLESS)
                .startedAt(T0.plusMillis(startMillis))
                .totalTime(Duration.ofMillis(millis))
                .usage(new Usage(in, out, 0))
                .cost(new BigDecimal(cost))
                .routeFacts(facts)
                .coldStart(cold ? ColdStart.OBSERVED : ColdStart.NONE)
                .build();
    }

    /**
     * vllm: [0, 1000) and [2600, 3000), azure: [500, 1500) spilled over past a skipped local, sagemaker: [800,
     * 3000) fell back past a full vllm, cold.
     */
    private static List<Receipt> receipts() {
        return List.of(
                receipt("vllm", 0, 1000, 100, 50, "0.0005", RouteFacts.NONE, false),
                receipt(
                        "azure",
                        500,
                        1000,
                        200,
                        100,
                        "0.000213",
                        RouteFacts.builder()
                                .tier("standard")
                                .spilledOver(true)
                                .skipped("local", "unavailable: no native library")
                                .build(),
                        false),
                receipt(
                        "sagemaker",
                        800,
                        2200,
                        1000,
                        0,
                        "0.0001",
                        RouteFacts.builder()
                                .fellBack(true)
                                .skipped("vllm", "no free slot: 4/4 in flight")
                                .skipped("local", "unavailable: no native library")
                                .build(),
                        true),
                receipt("vllm", 2600, 400, 10, 20, "0.00002", RouteFacts.NONE, false));
    }

    @Test
    void theTableSumsEachProvidersReceipts() {
        DemoSummary s = DemoSummary.of(receipts(), PRICES);

        assertThat(s.providers())
                .extracting(DemoSummary.ProviderRow::provider)
                .containsExactly("azure", "sagemaker", "vllm");
        DemoSummary.ProviderRow vllm = s.providers().get(2);
        assertThat(vllm.calls()).isEqualTo(2);
        assertThat(vllm.inputTokens()).isEqualTo(110);
        assertThat(vllm.outputTokens()).isEqualTo(70);
        assertThat(vllm.cost()).isEqualByComparingTo("0.00052");
        // Nearest rank of {400, 1000}: the median is the first, the 95th percentile the second.
        assertThat(vllm.p50()).isEqualTo(Duration.ofMillis(400));
        assertThat(vllm.p95()).isEqualTo(Duration.ofMillis(1000));
        assertThat(s.providers().get(1).coldStarts()).isEqualTo(1);

        assertThat(s.calls()).isEqualTo(4);
        assertThat(s.inputTokens()).isEqualTo(1310);
        assertThat(s.outputTokens()).isEqualTo(170);
        assertThat(s.coldStarts()).isEqualTo(1);
        assertThat(s.totalCost()).isEqualByComparingTo("0.000833");
    }

    @Test
    void routeFactsAreCountedPerReceipt() {
        DemoSummary s = DemoSummary.of(receipts(), PRICES);

        assertThat(s.spillovers()).isEqualTo(1);
        assertThat(s.fallbacks()).isEqualTo(1);
        assertThat(s.skipped()).isEqualTo(Map.of("local", 2, "vllm", 1));
        assertThat(s.skipReasons())
                .isEqualTo(Map.of(
                        "local", List.of("unavailable: no native library"),
                        "vllm", List.of("no free slot: 4/4 in flight")));
        assertThat(String.join("\n", s.lines()))
                .contains("1 spilled over, 1 fell back")
                .contains("local 2x (unavailable: no native library)");
    }

    @Test
    void allServerlessPaysEveryTokenAtThePerTokenPrice() {
        // 1310 tokens in at $0.50/M + 170 out at $1.50/M = $0.000655 + $0.000255.
        assertThat(DemoSummary.of(receipts(), PRICES).allServerless()).isEqualByComparingTo("0.00091");
    }

    @Test
    void allServerPaysAFleetSizedForThePeakOverTheSpan() {
        DemoSummary s = DemoSummary.of(receipts(), PRICES);

        // At 800 ms three calls run (vllm, azure, sagemaker); at 2600 two (sagemaker, the second vllm).
        assertThat(s.peakConcurrency()).isEqualTo(3);
        // Two calls per server: ceil(3 / 2) = 2 servers.
        assertThat(s.serversForPeak()).isEqualTo(2);
        // From 0 to the last end at 3000 ms.
        assertThat(s.span()).isEqualTo(Duration.ofMillis(3000));
        // 2 servers x $3.60/h x 3 s = $0.006.
        assertThat(s.allServer()).isEqualByComparingTo("0.006");
    }

    @Test
    void aCallThatEndsAsAnotherStartsDoesNotOverlapIt() {
        List<Receipt> backToBack = List.of(
                receipt("vllm", 0, 1000, 1, 1, "0", RouteFacts.NONE, false),
                receipt("vllm", 1000, 1000, 1, 1, "0", RouteFacts.NONE, false));
        DemoSummary s = DemoSummary.of(backToBack, PRICES);
        assertThat(s.peakConcurrency()).isEqualTo(1);
        assertThat(s.serversForPeak()).isEqualTo(1);
        // 1 server x $3.60/h x 2 s = $0.002.
        assertThat(s.allServer()).isEqualByComparingTo("0.002");
    }

    @Test
    void noReceiptsCostNothing() {
        DemoSummary s = DemoSummary.of(List.of(), PRICES);
        assertThat(s.calls()).isZero();
        assertThat(s.totalCost()).isEqualByComparingTo("0");
        assertThat(s.allServer()).isEqualByComparingTo("0");
        assertThat(s.allServerless()).isEqualByComparingTo("0");
    }
}
