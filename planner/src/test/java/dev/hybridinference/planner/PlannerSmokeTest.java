package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class PlannerSmokeTest {
    static final String CONFIG = """
            providers:
              vllm:
                type: vllm
                baseUrl: ${VLLM_URL}
                model: llama
                pricing: {type: per-instance-hour, perHour: 1.41}
              sagemaker:
                type: sagemaker
                endpointName: x
                pricing: {type: per-gb-second, perGbSecond: 0.00002, memoryGb: 6}
              azure:
                type: azure
                endpoint: ${AZURE_URL}
                pricing: {type: per-token, inputPerMillion: 0.30, outputPerMillion: 0.61}
            routing:
              tiers:
                standard: [vllm]
              defaultTier: standard
              spillover: {primary: vllm, overflow: [sagemaker, azure]}
              members:
                vllm: {maxInFlight: 32}
            """;

    @Test
    void runs() {
        PlannerConfig config = PlannerConfig.of(CONFIG, null);
        Planner planner = Planner.of(config);
        long t0 = System.nanoTime();
        List<ScenarioResult> results =
                planner.plan(ListTraffic.evenly(Duration.ofDays(1), Duration.ofMillis(200), 1000, 250));
        long t1 = System.nanoTime();
        System.out.println("took " + (t1 - t0) / 1e9 + " s");
        for (ScenarioResult r : results) {
            System.out.println(r.name() + " " + r.description() + " cost/day "
                    + r.costPerDay().toPlainString() + " idle " + r.idleCost() + " req " + r.requests() + " failed "
                    + r.failed() + " cold " + r.coldStarts() + " p50 " + r.p50() + " p99 " + r.p99() + " util "
                    + r.serverUtilization());
        }
        assertThat(results).isNotEmpty();
    }
}
