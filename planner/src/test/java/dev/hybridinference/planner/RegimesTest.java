package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The three regimes of serverless against server, reproduced by a sweep with the prices of a well-known setup:
 * an 8B-parameter Llama model served three ways. Every price is from the project's platform notes
 * (reference/PROVIDERS.md), which mark each as unconfirmed; the regimes depend on their ratios, not on the
 * cents:
 *
 * <ul>
 *   <li>per token: Llama 3.1 8B Instruct as an Azure AI serverless deployment, $0.0003 per 1K input and
 *       $0.00061 per 1K output tokens (PROVIDERS.md, Azure, "Serverless deployments bill input and output
 *       tokens separately");
 *   <li>per millisecond: a SageMaker Serverless endpoint with 6 GB of memory at $0.00002 per GB-second
 *       (PROVIDERS.md 1.8, "~$0.00002/s at 1024 MB, linear in memory"), no GPU, so it runs the model slowly;
 *   <li>by the hour: one ml.g5.xlarge (one A10G) running vLLM, $1.41 per hour (PROVIDERS.md 1.8).
 * </ul>
 */
class RegimesTest {
    static final String CONFIG = """
            providers:
              vllm:
                type: vllm
                baseUrl: ${VLLM_URL}
                model: llama-3.1-8b-instruct
                pricing: {type: per-instance-hour, perHour: 1.41}
              azure:
                type: azure
                endpoint: ${AZURE_URL}
                model: llama-3.1-8b-instruct
                pricing: {type: per-token, inputPerMillion: 0.30, outputPerMillion: 0.61}
              sagemaker:
                type: sagemaker
                endpointName: llama-3-1-8b-serverless
                model: llama-3.1-8b-instruct
                pricing: {type: per-gb-second, perGbSecond: 0.00002, memoryGb: 6}
            routing:
              tiers: {standard: [vllm]}
              defaultTier: standard
              spillover: {primary: vllm, overflow: [azure, sagemaker]}
            """;

    /** vLLM on one A10G with an 8B model: 12 streams at about 30 tokens/s each. */
    static final String DEPLOYMENTS = """
            deployments:
              vllm: {concurrency: 12, outputTokensPerSecond: 30, prefillTokensPerSecond: 4000}
              azure: {outputTokensPerSecond: 60}
              sagemaker: {maxInstances: 10, outputTokensPerSecond: 8, prefillTokensPerSecond: 200, startupTime: 45s}
            """;

    static GeneratedTraffic traffic(TrafficPattern pattern, long tokensPerDay) {
        return GeneratedTraffic.builder()
                .pattern(pattern)
                .tokensPerDay(tokensPerDay)
                .meanInputTokens(4000)
                .meanOutputTokens(1000)
                .seed(7)
                .build();
    }

    /**
     * A request of 4000 + 1000 tokens takes about 35 s on the server and 17 s per token; a p95 over two
     * minutes means requests queue, which no plan should call a saving.
     */
    static Planner planner() {
        return Planner.of(
                        PlannerConfig.of(CONFIG, DEPLOYMENTS),
                        List.of(
                                Planner.ALL_SERVERLESS,
                                Planner.ALL_SERVER_PEAK,
                                Planner.ALL_SERVER_BASELINE,
                                Planner.HYBRID),
                        Duration.ofHours(1))
                .withLatencyObjective(Duration.ofMinutes(2));
    }

    @Test
    void serverlessBelowAMillionServerAboveAHundredMillionAndBurstinessDecidesBetween() {
        Planner planner = planner();
        Sweep steady = planner.sweep(
                new long[] {100_000, 1_000_000, 100_000_000, 1_000_000_000},
                v -> traffic(TrafficPattern.STEADY, v),
                null);
        Sweep bursty = planner.sweep(
                new long[] {100_000, 1_000_000, 100_000_000}, v -> traffic(TrafficPattern.BURSTY, v), null);

        // Below a million tokens a day, serverless wins whatever the shape: a server's day costs $33.84.
        for (Sweep s : List.of(steady, bursty)) {
            assertThat(s.points().get(0).cheapest(s.scenarios())).isEqualTo(Planner.ALL_SERVERLESS);
            assertThat(s.points().get(1).cheapest(s.scenarios())).isEqualTo(Planner.ALL_SERVERLESS);
            assertThat(s.points().get(1).costPerDay(Planner.ALL_SERVERLESS))
                    .isLessThan(s.points()
                            .get(1)
                            .costPerDay(Planner.ALL_SERVER_PEAK)
                            .movePointLeft(1));
        }
        // Far above, servers win steady traffic.
        assertThat(steady.points().get(3).cheapest(steady.scenarios()))
                .isIn(Planner.ALL_SERVER_PEAK, Planner.ALL_SERVER_BASELINE);
        // In between, at equal volume, the shape decides: steady traffic keeps one server busy, bursty
        // traffic overflows the baseline server (its queue fails requests) or needs ten for its peaks.
        String steadyWinner = steady.points().get(2).cheapest(steady.scenarios());
        String burstyWinner = bursty.points().get(2).cheapest(bursty.scenarios());
        assertThat(steadyWinner).isIn(Planner.ALL_SERVER_PEAK, Planner.ALL_SERVER_BASELINE);
        assertThat(burstyWinner).isIn(Planner.ALL_SERVERLESS, Planner.HYBRID);
        assertThat(bursty.points()
                        .get(2)
                        .results()
                        .get(Planner.ALL_SERVER_BASELINE)
                        .isViable())
                .isFalse();
        // One break-even for steady traffic, serverless to server, near a hundred million tokens a day.
        assertThat(steady.breakEvens()).hasSize(1);
        Sweep.BreakEven b = steady.breakEvens().get(0);
        assertThat(b.below()).isEqualTo(Planner.ALL_SERVERLESS);
        assertThat(b.above()).isIn(Planner.ALL_SERVER_PEAK, Planner.ALL_SERVER_BASELINE);
        assertThat(b.tokensPerDay()).isBetween(30e6, 300e6);
    }
}
