package dev.hybridinference.planner;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Results built by hand, with round figures a reader can check. */
final class PlanFixtures {
    static final String SERVERLESS = "all-serverless";
    static final String HYBRID = "hybrid";
    static final String SERVER = "all-server";

    private PlanFixtures() {}

    /**
     * A scenario over one day (so cost per day is {@code cost}), with 1,000 requests, 2,000,000 tokens, 25
     * cold starts and a timeline of four six-hour intervals, the third without requests.
     */
    static ScenarioResult day(String name, String cost, String idleCost, double utilization) {
        BigDecimal total = new BigDecimal(cost);
        BigDecimal quarter = total.divide(BigDecimal.valueOf(4));
        List<ScenarioResult.Interval> timeline = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            boolean quiet = i == 2;
            timeline.add(new ScenarioResult.Interval(
                    Duration.ofHours(6L * i),
                    Duration.ofHours(6),
                    quiet ? 0 : 250 + 100L * i,
                    quarter,
                    quiet ? Duration.ZERO : Duration.ofMillis(100 + 10L * i),
                    quiet ? Duration.ZERO : Duration.ofMillis(800 + 100L * i)));
        }
        return new ScenarioResult(
                name,
                "the " + name + " scenario",
                Duration.ofDays(1),
                1_000,
                2,
                2_000_000,
                total,
                new BigDecimal(idleCost),
                25,
                Duration.ofMillis(120),
                Duration.ofMillis(850),
                Duration.ofMillis(2_400),
                utilization,
                timeline,
                List.of(),
                Map.of(name, total));
    }

    /** {@code r} with another median latency, timeline and shortfalls. */
    static ScenarioResult altered(
            ScenarioResult r, Duration p50, List<ScenarioResult.Interval> timeline, List<String> shortfalls) {
        return new ScenarioResult(
                r.name(),
                r.description(),
                r.span(),
                r.requests(),
                r.failed(),
                r.tokens(),
                r.cost(),
                r.idleCost(),
                r.coldStarts(),
                p50,
                r.p95(),
                r.p99(),
                r.serverUtilization(),
                timeline,
                shortfalls,
                r.costByProvider());
    }

    /** Three scenarios; hybrid is the cheapest, all-serverless the next, at $0.75/day more. */
    static List<ScenarioResult> results() {
        return List.of(
                day(SERVERLESS, "3.2", "0", Double.NaN),
                day(HYBRID, "2.45", "0.80", 0.625),
                day(SERVER, "17.4", "11.0625", 0.2));
    }

    /**
     * A sweep over six volumes, 10k to 1B tokens per day. Serverless costs $0.50 per million tokens, hybrid
     * $0.40 a day plus $0.20 per million, all-server a flat $17.40: they cross at about 1.3M and at 85M.
     */
    static Sweep sweep() {
        List<Sweep.Point> points = new ArrayList<>();
        for (long tokens = 10_000; tokens <= 1_000_000_000L; tokens *= 10) {
            BigDecimal millions = BigDecimal.valueOf(tokens).movePointLeft(6);
            Map<String, ScenarioResult> results = new LinkedHashMap<>();
            results.put(
                    SERVERLESS,
                    day(SERVERLESS, millions.multiply(new BigDecimal("0.5")).toPlainString(), "0", Double.NaN));
            results.put(
                    HYBRID,
                    day(
                            HYBRID,
                            new BigDecimal("0.4")
                                    .add(millions.multiply(new BigDecimal("0.2")))
                                    .toPlainString(),
                            "0.4",
                            0.5));
            results.put(SERVER, day(SERVER, "17.4", "10", 0.3));
            points.add(new Sweep.Point(tokens, results));
        }
        return new Sweep(
                List.of(SERVERLESS, HYBRID, SERVER),
                points,
                List.of(
                        new Sweep.BreakEven(4_000_000.0 / 3, SERVERLESS, HYBRID),
                        new Sweep.BreakEven(85_000_000.0, HYBRID, SERVER)));
    }
}
