package dev.hybridinference.planner;

import java.math.BigDecimal;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Scenarios' cost per day across traffic volumes, and where the cheapest one changes.
 *
 * @param scenarios the scenarios' names, in report order
 * @param points one point per volume, in increasing order of tokens per day
 * @param breakEvens where the cheapest scenario changes, in increasing order of tokens per day
 */
public record Sweep(List<String> scenarios, List<Point> points, List<BreakEven> breakEvens) {
    /** Copies the lists. */
    public Sweep {
        scenarios = List.copyOf(scenarios);
        points = List.copyOf(points);
        breakEvens = List.copyOf(breakEvens);
    }

    /**
     * One volume.
     *
     * @param tokensPerDay the volume the traffic was scaled to
     * @param results each scenario's result at that volume, by scenario name
     */
    public record Point(long tokensPerDay, Map<String, ScenarioResult> results) {
        /** Copies the results, keeping their order. */
        public Point {
            results = Collections.unmodifiableMap(new LinkedHashMap<>(results));
        }

        /**
         * The viable scenario ({@link ScenarioResult#isViable()}) with the lowest cost per day at this volume
         * (the first in {@code order} on a tie); null when none is viable.
         */
        public String cheapest(List<String> order) {
            String best = null;
            for (String s : order) {
                ScenarioResult r = results.get(s);
                if (r != null
                        && r.isViable()
                        && (best == null
                                || r.costPerDay().compareTo(results.get(best).costPerDay()) < 0)) {
                    best = s;
                }
            }
            return best;
        }

        /** {@code scenario}'s cost per day at this volume. */
        public BigDecimal costPerDay(String scenario) {
            return Objects.requireNonNull(results.get(scenario), scenario).costPerDay();
        }
    }

    /**
     * A volume where the cheapest scenario changes: between two swept volumes, at the crossing of the two
     * scenarios' cost lines interpolated on log-log axes.
     *
     * @param tokensPerDay the estimated crossing
     * @param below the cheapest scenario just below it
     * @param above the cheapest scenario just above it
     */
    public record BreakEven(double tokensPerDay, String below, String above) {}
}
