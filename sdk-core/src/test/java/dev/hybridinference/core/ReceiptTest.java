package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.Secrets;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Receipts and provider results built with their builders, and how a receipt reads in a log. */
class ReceiptTest {
    private static Receipt.Builder minimal() {
        return Receipt.builder()
                .providerId("p")
                .deploymentKind(DeploymentKind.SERVERLESS)
                .startedAt(Instant.parse("2026-11-27T10:00:00Z"));
    }

    @Test
    void unsetFactsTakeTheirEmptyValues() {
        Receipt r = minimal().build();
        assertThat(r.model()).isEmpty();
        assertThat(r.routeFacts()).isEqualTo(RouteFacts.NONE);
        assertThat(r.attempts()).isEmpty();
        assertThat(r.totalTime()).isZero();
        assertThat(r.computeTime()).isZero();
        assertThat(r.coldStart()).isEqualTo(ColdStart.NONE);
        assertThat(r.usage()).isEqualTo(Usage.ZERO);
        assertThat(r.cost()).isZero();
        assertThat(r.costEstimated()).isFalse();
        assertThat(r.attributes()).isEmpty();
        assertThatThrownBy(() -> Receipt.builder().providerId("p").build()).isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> minimal().computeTime(Duration.ofMillis(-1)).build())
                .hasMessageContaining("computeTime");
        assertThatThrownBy(() -> minimal().requestBytes(-1).build()).hasMessageContaining("byte");
    }

    @Test
    void toBuilderKeepsEveryFact() {
        Receipt r = minimal()
                .model("m")
                .route("tier small by default")
                .routeFacts(RouteFacts.builder()
                        .tier("small")
                        .spilledOver(true)
                        .skipped("main", "no free slot: 1/1 in flight")
                        .build())
                .attempt(new Attempt("p", "e", "r", Attempt.Outcome.SUCCEEDED, Duration.ofMillis(5), null))
                .totalTime(Duration.ofMillis(7))
                .timeToFirstToken(Duration.ofMillis(3))
                .queueTime(Duration.ofMillis(1))
                .computeTime(Duration.ofMillis(6))
                .coldStart(ColdStart.observed(Duration.ofSeconds(4)))
                .usage(Usage.estimated(10, 3))
                .instanceTime(Duration.ofMillis(2))
                .requestBytes(100)
                .responseBytes(200)
                .cost(new BigDecimal("0.000465000000"))
                .costEstimated(true)
                .sessionId("s")
                .tags(Map.of("tenant", "acme"))
                .attribute("region", "eu-west-1")
                .attribute("variant", "AllTraffic")
                .build();
        assertThat(r.toBuilder().build()).isEqualTo(r);
        assertThat(r.toBuilder().cost(BigDecimal.ONE).build().computeTime()).isEqualTo(Duration.ofMillis(6));
        assertThat(r.attributes())
                .containsExactly(Map.entry("region", "eu-west-1"), Map.entry("variant", "AllTraffic"));
    }

    @Test
    void theSummaryPrintsCostsWithoutTrailingZerosAndLabelsEstimates() {
        Receipt r = minimal()
                .model("m")
                .totalTime(Duration.ofMillis(1234))
                .usage(Usage.estimated(10, 3))
                .coldStart(ColdStart.observed(Duration.ofMillis(4200)))
                .cost(new BigDecimal("0.000465000000"))
                .costEstimated(true)
                .build();
        assertThat(r.summary())
                .isEqualTo("p (SERVERLESS, m): 1234 ms, 10 in / 3 out (estimated), cold start 4200 ms,"
                        + " cost $0.000465 (estimated)");
        assertThat(minimal().cost(new BigDecimal("0E-12")).build().summary()).contains("cost $0");
    }

    @Test
    void attributeValuesNeverCarryASecret() {
        String secret = "sk-live-" + System.nanoTime();
        Secrets.register(secret);
        Receipt r = minimal().attribute("endpoint", "https://x/?key=" + secret).build();
        assertThat(r.attributes().get("endpoint")).doesNotContain(secret);
        ProviderResult pr = ProviderResult.builder()
                .finishReason(FinishReason.STOP)
                .attribute("endpoint", "https://x/?key=" + secret)
                .build();
        assertThat(pr.attributes().get("endpoint")).doesNotContain(secret);
    }

    @Test
    void providerResultsAreBuiltWithOnlyTheFactsAProviderKnows() {
        ProviderResult r = ProviderResult.builder()
                .text("hi")
                .finishReason(FinishReason.STOP)
                .usage(new Usage(3, 1, 0))
                .computeTime(Duration.ofMillis(12))
                .requestBytes(10)
                .responseBytes(20)
                .attribute("device", "cpu")
                .build();
        assertThat(r.instanceTime()).isNull();
        assertThat(r.coldStart()).isEqualTo(ColdStart.NONE);
        assertThat(r.toBuilder().build()).isEqualTo(r);
        assertThat(r.withInstanceTime(Duration.ofMillis(5)).instanceTime()).isEqualTo(Duration.ofMillis(5));
        assertThat(r.withInstanceTime(Duration.ofMillis(5)).computeTime()).isEqualTo(Duration.ofMillis(12));
        assertThatThrownBy(() -> ProviderResult.builder().build()).isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> ProviderResult.builder()
                        .finishReason(FinishReason.STOP)
                        .computeTime(Duration.ofNanos(-1))
                        .build())
                .hasMessageContaining("computeTime");
    }

    @Test
    void aColdStartCarriesItsDurationThroughRoutingsPrediction() {
        ColdStart seen = ColdStart.observed(Duration.ofSeconds(3));
        assertThat(seen.withPredicted(true)).isEqualTo(new ColdStart(true, true, Optional.of(Duration.ofSeconds(3))));
        assertThat(ColdStart.predicted(Duration.ofSeconds(20)).withPredicted(false))
                .isEqualTo(ColdStart.NONE);
        assertThat(ColdStart.NONE.withPredicted(true).duration()).isEmpty();
        assertThatThrownBy(() -> new ColdStart(false, false, Optional.of(Duration.ofSeconds(1))))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ColdStart.observed(Duration.ofSeconds(-1)))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
