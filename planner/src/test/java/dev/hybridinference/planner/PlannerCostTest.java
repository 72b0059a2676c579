package dev.hybridinference.planner;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What the planner bills, computed by hand for each pricing type. Each case runs one provider under the
 * configuration's own routing ({@value Planner#YOUR_POLICY}) on a traffic written out request by request, so
 * that every figure below follows from the request sizes, the deployment's speeds and the price.
 */
class PlannerCostTest {
    private static final Duration DAY = Duration.ofDays(1);

    /** 1000 prompt tokens at 1000/s plus 250 output tokens at 50/s: a request runs exactly 6 s. */
    private static final String SPEEDS =
            "prefillTokensPerSecond: 1000, outputTokensPerSecond: 50, firstTokenLatency: 0s";

    private static ScenarioResult plan(String config, String deployments, Traffic traffic) {
        Planner planner =
                Planner.of(PlannerConfig.of(config, deployments), List.of(Planner.YOUR_POLICY), Duration.ofHours(1));
        List<ScenarioResult> results = planner.plan(traffic);
        assertThat(results).hasSize(1);
        return results.get(0);
    }

    /** {@code count} requests of 1000 + 250 tokens, {@code every} apart from the start. */
    private static Traffic requests(int count, Duration every) {
        List<TrafficRequest> rs = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            rs.add(new TrafficRequest(every.toNanos() * i, 1000, 250));
        }
        return new ListTraffic(DAY, rs);
    }

    @Test
    void perTokenIsTheTokensAtTheirRates() {
        ScenarioResult r = plan("""
                providers:
                  azure:
                    type: azure
                    pricing: {type: per-token, inputPerMillion: 0.30, outputPerMillion: 0.61}
                """, null, requests(10, Duration.ofMinutes(1)));
        // 10 x (1000 x $0.30 + 250 x $0.61) / 1M = 10 x $0.0004525
        assertThat(r.cost()).isEqualByComparingTo("0.004525");
        assertThat(r.idleCost()).isEqualByComparingTo("0");
        assertThat(r.requests()).isEqualTo(10);
        assertThat(r.tokens()).isEqualTo(12_500);
        assertThat(r.coldStarts()).isZero();
        assertThat(r.costPerMillionTokens()).isEqualByComparingTo("0.362");
    }

    @Test
    void perComputeTimeBillsTheRequestsOwnTimeRoundedUpNotItsColdStart() {
        ScenarioResult r = plan(
                """
                providers:
                  endpoint:
                    type: sagemaker
                    pricing: {type: per-compute-time, perSecond: 0.0001, billingIncrement: 4s, minimumBilled: 1s,
                              perRequest: 0.00002}
                """,
                "deployments:\n  endpoint: {startupTime: 30s, idleTimeout: 10m, " + SPEEDS + "}\n",
                requests(3, Duration.ofHours(1)));
        // Each request is woken cold (an hour apart, idle timeout 10 min), waits 30 s, runs 6 s, billed 8 s
        // (rounded up to 4 s steps): 3 x (8 s x $0.0001 + $0.00002).
        assertThat(r.cost()).isEqualByComparingTo("0.00246");
        assertThat(r.coldStarts()).isEqualTo(3);
        assertThat(r.p50()).isEqualTo(Duration.ofSeconds(36));
    }

    @Test
    void perGbSecondBillsMemoryTimesTime() {
        ScenarioResult r =
                plan("""
                providers:
                  endpoint:
                    type: sagemaker
                    pricing: {type: per-gb-second, perGbSecond: 0.00002, memoryGb: 6}
                """, "deployments:\n  endpoint: {" + SPEEDS + "}\n", requests(5, Duration.ofMinutes(2)));
        // 5 x 6 s x 6 GB x $0.00002 (billed by the millisecond: 6 s exactly)
        assertThat(r.cost()).isEqualByComparingTo("0.0036");
    }

    @Test
    void perInstanceHourBillsEveryInstanceAllDayWhateverTheTraffic() {
        String config = """
                providers:
                  vllm:
                    type: vllm
                    pricing: {type: per-instance-hour, perHour: 1.41, instances: 2}
                """;
        ScenarioResult busy = plan(config, null, requests(100, Duration.ofMinutes(5)));
        ScenarioResult quiet = plan(config, null, requests(1, Duration.ofMinutes(5)));
        // 2 instances x 24 h x $1.41
        assertThat(busy.cost()).isEqualByComparingTo("67.68");
        assertThat(quiet.cost()).isEqualByComparingTo("67.68");
        assertThat(quiet.idleCost()).isGreaterThan(busy.idleCost());
        // 100 requests x 6.4 s (150 ms + 1000/4000 s + 250/40 s = 6.65 s by default) over 2 x 32 slots all day
        assertThat(busy.serverUtilization())
                .isCloseTo(100 * 6.65 / (2 * 32 * 86_400.0), org.assertj.core.data.Offset.offset(1e-9));
    }

    @Test
    void aScaleToZeroInstanceWokenBySparseRequestsIsBilledUntilItScalesIn() {
        String config = """
                providers:
                  cloudrun:
                    type: cloudrun
                    pricing: {type: per-instance-second, perInstanceSecond: 0.0004, minInstances: 0,
                              scaleInDelay: 15m, maxInstances: 3}
                """;
        String deployments = "deployments:\n  cloudrun: {startupTime: 60s, " + SPEEDS + "}\n";
        ScenarioResult r = plan(config, deployments, requests(4, Duration.ofHours(2)));
        // Each request starts an instance (2 h apart, scale-in after 15 min): billed from the request's arrival
        // through its cold start (60 s) and run (6 s) and the 15 idle minutes: 966 s each.
        BigDecimal billedRequestTimeAlone = new BigDecimal("0.0004").multiply(BigDecimal.valueOf(4 * 6));
        assertThat(r.cost()).isEqualByComparingTo(new BigDecimal("0.0004").multiply(BigDecimal.valueOf(4 * 966)));
        assertThat(r.cost()).isGreaterThan(billedRequestTimeAlone.multiply(BigDecimal.TEN));
        assertThat(r.coldStarts()).isEqualTo(4);
        assertThat(r.p50()).isEqualTo(Duration.ofSeconds(66));
    }

    @Test
    void keepWarmPingsKeepTheInstanceBilledAllDayAndSpareTheColdStarts() {
        String deployments = "deployments:\n  cloudrun: {startupTime: 60s, " + SPEEDS + "}\n";
        String base = """
                providers:
                  cloudrun:
                    type: cloudrun
                    pricing: {type: per-instance-second, perInstanceSecond: 0.0004, minInstances: 0,
                              scaleInDelay: 15m, maxInstances: 3}
                routing:
                  members:
                    cloudrun: {%s}
                """;
        Traffic traffic = requests(4, Duration.ofHours(2));
        ScenarioResult cold = plan(base.formatted("maxInFlight: 10"), deployments, traffic);
        ScenarioResult warm = plan(base.formatted("keepWarmEvery: 5m"), deployments, traffic);
        // Without pings: 4 x 966 s, as above. A member gets a ping when it has been idle for a whole period at
        // one of the client's 5-minute ticks, so it is never idle 15 min: the instance is billed from the first
        // request (t = 0) to the end of the day, and only the first request is cold.
        assertThat(cold.cost()).isEqualByComparingTo(new BigDecimal("0.0004").multiply(BigDecimal.valueOf(4 * 966)));
        assertThat(cold.coldStarts()).isEqualTo(4);
        assertThat(warm.cost()).isEqualByComparingTo(new BigDecimal("0.0004").multiply(BigDecimal.valueOf(86_400)));
        assertThat(warm.coldStarts()).isEqualTo(1);
        assertThat(warm.requests()).isEqualTo(4);
        // Pings every 10 min do not keep it warm: after a request, the first tick may find it idle for less
        // than a period, and the next comes nearly 20 min after the request, past the 15-minute scale-in. The
        // requests still find it warm (a ping restarted it), but it cost more than the 5-minute pings.
        ScenarioResult sparse = plan(base.formatted("keepWarmEvery: 10m"), deployments, traffic);
        assertThat(sparse.cost()).isLessThan(warm.cost());
        assertThat(sparse.cost()).isGreaterThan(cold.cost());
    }

    @Test
    void amortizedHardwareIsItsHourlyFigureOverTheTimeItWasBusy() {
        ScenarioResult r = plan("""
                providers:
                  local:
                    type: local-gpu
                    pricing: {type: amortized, perHour: 0.36}
                """, "deployments:\n  local: {" + SPEEDS + "}\n", requests(10, Duration.ofMinutes(1)));
        // 10 requests x 6 s x $0.36/h
        assertThat(r.cost()).isEqualByComparingTo("0.006");
    }

    @Test
    void theSameTrafficAndSeedGiveTheSamePlanHoweverManyThreadsRunIt() {
        PlannerConfig config = PlannerConfig.of(RegimesTest.CONFIG, RegimesTest.DEPLOYMENTS);
        Traffic traffic = GeneratedTraffic.builder()
                .pattern(TrafficPattern.BURSTY)
                .tokensPerDay(20_000_000)
                .seed(11)
                .build();
        List<ScenarioResult> one = Planner.of(config).withParallelism(1).plan(traffic);
        List<ScenarioResult> two = Planner.of(config).withParallelism(2).plan(traffic);
        assertThat(two).isEqualTo(one);
        for (ScenarioResult r : one) {
            assertThat(r.costByProvider().values().stream().reduce(BigDecimal.ZERO, BigDecimal::add))
                    .as(r.name())
                    .isEqualByComparingTo(r.cost());
        }
        assertThat(one.get(0).costByProvider()).containsOnlyKeys("azure", "sagemaker");
        List<ScenarioResult> otherSeed = Planner.of(config)
                .plan(GeneratedTraffic.builder()
                        .pattern(TrafficPattern.BURSTY)
                        .tokensPerDay(20_000_000)
                        .seed(12)
                        .build());
        assertThat(otherSeed).isNotEqualTo(one);
    }
}
