package dev.hybridinference.planner;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamWriteFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The planner's results as text: aligned tables for a terminal, and JSON for tools.
 *
 * <p>Tables round dollar amounts for reading ({@code $12.34}, {@code $0.0042}); the JSON keeps every amount
 * exact, as a plain decimal number (never in exponent form). In the JSON, durations are milliseconds (with
 * a fraction below one millisecond) in fields ending in {@code Millis}, and a utilisation that does not apply
 * (NaN) is {@code null}.
 *
 * <p>Stateless and safe to use from several threads.
 */
public final class PlanReport {
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(StreamWriteFeature.WRITE_BIGDECIMAL_AS_PLAIN)
            .build();

    // "\n" whatever the platform, so that a report reads the same everywhere.
    private static final ObjectWriter WRITER = MAPPER.writer(new DefaultPrettyPrinter()
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(new DefaultIndenter("  ", "\n")));

    private static final String CHEAPEST_MARK = " *";
    private static final String NOT_VIABLE_MARK = " !";

    private PlanReport() {}

    /**
     * One row per scenario, in the given order: cost per day, cost per million tokens, idle cost per day,
     * cold starts (count and share of requests), failed requests, latency percentiles and server
     * utilisation ({@code -} where the scenario has no always-on server). The cheapest viable scenario by cost
     * per day (the first on a tie) carries {@code *} after its name, and a line under the table says by how
     * much it beats the next cheapest viable one; a scenario that is not viable ({@link
     * ScenarioResult#isViable()}) carries {@code !}, with its shortfalls on a line of its own.
     *
     * @param results the scenarios' results, at least one
     * @return the table, lines ending in {@code \n}
     * @throws IllegalArgumentException if {@code results} is empty
     */
    public static String table(List<ScenarioResult> results) {
        requireSome(results);
        int cheapest = cheapestIndex(results);
        Table table = new Table(
                List.of(
                        "scenario",
                        "cost/day",
                        "$/M tokens",
                        "idle/day",
                        "cold starts",
                        "failed",
                        "p50",
                        "p95",
                        "p99",
                        "server util"),
                1);
        for (int i = 0; i < results.size(); i++) {
            ScenarioResult r = results.get(i);
            table.row(List.of(
                    r.name() + (i == cheapest ? CHEAPEST_MARK : r.isViable() ? "" : NOT_VIABLE_MARK),
                    PlanFormat.usd(r.costPerDay()),
                    PlanFormat.usd(r.costPerMillionTokens()),
                    PlanFormat.usd(r.idleCostPerDay()),
                    r.coldStarts() + " (" + PlanFormat.percent(r.coldStartShare()) + ")",
                    Long.toString(r.failed()),
                    PlanFormat.latency(r.p50()),
                    PlanFormat.latency(r.p95()),
                    PlanFormat.latency(r.p99()),
                    Double.isNaN(r.serverUtilization()) ? "-" : PlanFormat.percent(r.serverUtilization())));
        }
        return table.render() + "\n" + cheapestLine(results, cheapest) + "\n" + shortfallLines(results);
    }

    /**
     * One row per swept volume ({@code 10k}, {@code 1M}, {@code 1B} tokens per day) with each scenario's cost
     * per day, the cheapest at each volume marked with {@code *}; then a line that walks the break-evens:
     * {@code all-serverless is cheapest below ≈ 1.3M tokens/day; hybrid from there to ≈ 85M; all-server
     * above}.
     *
     * @param sweep the sweep, with at least one point
     * @return the table and the break-even line, lines ending in {@code \n}
     * @throws IllegalArgumentException if the sweep has no points
     */
    public static String sweepTable(Sweep sweep) {
        Objects.requireNonNull(sweep, "sweep");
        if (sweep.points().isEmpty()) {
            throw new IllegalArgumentException("sweep has no points: nothing to tabulate");
        }
        List<String> header = new ArrayList<>();
        header.add("tokens/day");
        // Room for the mark after each amount, so that names line up with the amounts' last digit.
        sweep.scenarios().forEach(s -> header.add(s + "  "));
        Table table = new Table(header, 1);
        for (Sweep.Point point : sweep.points()) {
            String cheapest = point.cheapest(sweep.scenarios());
            List<String> row = new ArrayList<>();
            row.add(PlanFormat.tokens(point.tokensPerDay()));
            for (String scenario : sweep.scenarios()) {
                ScenarioResult result = point.results().get(scenario);
                // The mark, or as many spaces, so that the amounts stay aligned on their last digit.
                row.add(
                        result == null
                                ? "-  "
                                : PlanFormat.usd(result.costPerDay())
                                        + (scenario.equals(cheapest)
                                                ? CHEAPEST_MARK
                                                : result.isViable() ? "  " : NOT_VIABLE_MARK));
            }
            table.row(row);
        }
        return table.render() + "* cheapest at that volume; ! does not serve the traffic as asked (failed requests"
                + " or a missed latency objective)\n\n" + breakEvenLine(sweep) + "\n";
    }

    /**
     * The results as pretty-printed JSON: {@code {"cheapest": name, "scenarios": [...]}}, each scenario with
     * its recorded figures, the derived ones ({@code costPerDay}, {@code idleCostPerDay},
     * {@code costPerMillionTokens}, {@code coldStartShare}) and its timeline.
     *
     * @param results the scenarios' results, at least one
     * @return the JSON document
     * @throws IllegalArgumentException if {@code results} is empty
     */
    public static String json(List<ScenarioResult> results) {
        requireSome(results);
        ObjectNode root = MAPPER.createObjectNode();
        int cheapest = cheapestIndex(results);
        if (cheapest < 0) {
            root.putNull("cheapest");
        } else {
            root.put("cheapest", results.get(cheapest).name());
        }
        ArrayNode scenarios = root.putArray("scenarios");
        results.forEach(r -> scenarios.add(scenarioNode(r)));
        return write(root);
    }

    /**
     * The sweep as pretty-printed JSON: {@code scenarios} (names in order), {@code points} (each with
     * {@code tokensPerDay}, {@code cheapest} and {@code results}, an object from scenario name to that
     * scenario's result in the form {@link #json(List)} writes) and {@code breakEvens} (each with
     * {@code tokensPerDay}, {@code below} and {@code above}).
     *
     * @param sweep the sweep
     * @return the JSON document
     */
    public static String json(Sweep sweep) {
        Objects.requireNonNull(sweep, "sweep");
        ObjectNode root = MAPPER.createObjectNode();
        ArrayNode names = root.putArray("scenarios");
        sweep.scenarios().forEach(names::add);
        ArrayNode points = root.putArray("points");
        for (Sweep.Point point : sweep.points()) {
            ObjectNode node = points.addObject();
            node.put("tokensPerDay", point.tokensPerDay());
            node.put("cheapest", point.cheapest(sweep.scenarios()));
            ObjectNode results = node.putObject("results");
            // Report order first, then any result the scenario list does not name.
            for (String scenario : sweep.scenarios()) {
                ScenarioResult result = point.results().get(scenario);
                if (result != null) {
                    results.set(scenario, scenarioNode(result));
                }
            }
            point.results().entrySet().stream()
                    .filter(e -> !sweep.scenarios().contains(e.getKey()))
                    .sorted(Map.Entry.comparingByKey())
                    .forEach(e -> results.set(e.getKey(), scenarioNode(e.getValue())));
        }
        ArrayNode breakEvens = root.putArray("breakEvens");
        for (Sweep.BreakEven breakEven : sweep.breakEvens()) {
            ObjectNode node = breakEvens.addObject();
            putDouble(node, "tokensPerDay", breakEven.tokensPerDay());
            node.put("below", breakEven.below());
            node.put("above", breakEven.above());
        }
        return write(root);
    }

    private static ObjectNode scenarioNode(ScenarioResult r) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("name", r.name());
        node.put("description", r.description());
        putMillis(node, "spanMillis", r.span());
        node.put("requests", r.requests());
        node.put("failed", r.failed());
        node.put("tokens", r.tokens());
        putUsd(node, "cost", r.cost());
        putUsd(node, "idleCost", r.idleCost());
        putUsd(node, "costPerDay", r.costPerDay());
        putUsd(node, "idleCostPerDay", r.idleCostPerDay());
        putUsd(node, "costPerMillionTokens", r.costPerMillionTokens());
        node.put("coldStarts", r.coldStarts());
        putDouble(node, "coldStartShare", r.coldStartShare());
        putMillis(node, "p50Millis", r.p50());
        putMillis(node, "p95Millis", r.p95());
        putMillis(node, "p99Millis", r.p99());
        putDouble(node, "serverUtilization", r.serverUtilization());
        node.put("viable", r.isViable());
        ObjectNode byProvider = node.putObject("costByProvider");
        r.costByProvider().forEach((provider, usd) -> putUsd(byProvider, provider, usd));
        ArrayNode shortfalls = node.putArray("shortfalls");
        r.shortfalls().forEach(shortfalls::add);
        ArrayNode timeline = node.putArray("timeline");
        for (ScenarioResult.Interval interval : r.timeline()) {
            ObjectNode i = timeline.addObject();
            putMillis(i, "offsetMillis", interval.offset());
            putMillis(i, "lengthMillis", interval.length());
            i.put("requests", interval.requests());
            putUsd(i, "cost", interval.cost());
            putMillis(i, "p50Millis", interval.p50());
            putMillis(i, "p95Millis", interval.p95());
        }
        return node;
    }

    /** The exact amount; trailing zeros dropped (the derived figures carry twelve decimals), value unchanged. */
    private static void putUsd(ObjectNode node, String field, BigDecimal amount) {
        node.put(field, amount.stripTrailingZeros());
    }

    /** Whole milliseconds as integers, finer durations with the fraction: exact to the nanosecond. */
    private static void putMillis(ObjectNode node, String field, Duration duration) {
        node.put(field, BigDecimal.valueOf(duration.toNanos(), 6).stripTrailingZeros());
    }

    /** JSON has no NaN or infinity: those are written as null. */
    private static void putDouble(ObjectNode node, String field, double value) {
        if (Double.isFinite(value)) {
            node.put(field, value);
        } else {
            node.putNull(field);
        }
    }

    private static String write(ObjectNode root) {
        try {
            return WRITER.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            // A tree of plain values always serialises; this would be a bug here.
            throw new IllegalStateException("cannot write the report as JSON", e);
        }
    }

    private static void requireSome(List<ScenarioResult> results) {
        Objects.requireNonNull(results, "results");
        if (results.isEmpty()) {
            throw new IllegalArgumentException("no scenario results: nothing to report");
        }
    }

    /**
     * The viable scenario with the lowest cost per day; the first on a tie, as {@link Sweep.Point#cheapest(List)}
     * does; -1 when none is viable.
     */
    private static int cheapestIndex(List<ScenarioResult> results) {
        int best = -1;
        for (int i = 0; i < results.size(); i++) {
            ScenarioResult r = results.get(i);
            if (r.isViable()
                    && (best < 0 || r.costPerDay().compareTo(results.get(best).costPerDay()) < 0)) {
                best = i;
            }
        }
        return best;
    }

    /** One line per scenario that is not viable: {@code ! all-server-baseline: 2590 requests failed}. */
    private static String shortfallLines(List<ScenarioResult> results) {
        StringBuilder sb = new StringBuilder();
        for (ScenarioResult r : results) {
            if (!r.isViable()) {
                sb.append("! ")
                        .append(r.name())
                        .append(": ")
                        .append(String.join("; ", r.shortfalls()))
                        .append('\n');
            }
        }
        return sb.toString();
    }

    /** {@code * cheapest: hybrid at $9.10/day, $3.40/day (27%) less than all-serverless at $12.50/day}. */
    private static String cheapestLine(List<ScenarioResult> results, int cheapest) {
        if (cheapest < 0) {
            return "No scenario serves this traffic as asked (see the ! lines).";
        }
        ScenarioResult best = results.get(cheapest);
        String head = "* cheapest: " + best.name() + " at " + PlanFormat.usd(best.costPerDay()) + "/day";
        ScenarioResult next = null;
        for (int i = 0; i < results.size(); i++) {
            ScenarioResult r = results.get(i);
            if (i != cheapest && r.isViable() && (next == null || r.costPerDay().compareTo(next.costPerDay()) < 0)) {
                next = r;
            }
        }
        if (next == null) {
            return head + (results.size() == 1 ? " (the only scenario)" : " (the only one that serves the traffic)");
        }
        BigDecimal saving = next.costPerDay().subtract(best.costPerDay());
        if (saving.signum() == 0) {
            return head + ", tied with " + next.name();
        }
        String share = next.costPerDay().signum() > 0
                ? " (" + saving.multiply(BigDecimal.valueOf(100)).divide(next.costPerDay(), 0, RoundingMode.HALF_UP)
                        + "%)"
                : "";
        return head + ", " + PlanFormat.usd(saving) + "/day" + share + " less than " + next.name() + " at "
                + PlanFormat.usd(next.costPerDay()) + "/day";
    }

    /** {@code a is cheapest below ≈ 1.3M tokens/day; b from there to ≈ 85M; c above}. */
    private static String breakEvenLine(Sweep sweep) {
        List<Sweep.BreakEven> breakEvens = sweep.breakEvens();
        if (breakEvens.isEmpty()) {
            List<Sweep.Point> points = sweep.points();
            String cheapest = points.get(0).cheapest(sweep.scenarios());
            String range = PlanFormat.tokens(points.get(0).tokensPerDay()) + " to "
                    + PlanFormat.tokens(points.get(points.size() - 1).tokensPerDay()) + " tokens/day";
            return cheapest == null
                    ? "No break-even: no scenario has a result in the sweep."
                    : "No break-even: " + cheapest + " is cheapest across the sweep (" + range + ").";
        }
        StringBuilder line = new StringBuilder();
        Sweep.BreakEven first = breakEvens.get(0);
        line.append(first.below())
                .append(" is cheapest below \u2248 ")
                .append(PlanFormat.tokens(first.tokensPerDay()))
                .append(" tokens/day");
        for (int i = 1; i < breakEvens.size(); i++) {
            Sweep.BreakEven breakEven = breakEvens.get(i);
            line.append("; ")
                    .append(breakEven.below())
                    .append(" from there to \u2248 ")
                    .append(PlanFormat.tokens(breakEven.tokensPerDay()));
        }
        line.append("; ").append(breakEvens.get(breakEvens.size() - 1).above()).append(" above.");
        return line.toString();
    }

    /** Columns padded to their widest cell: the first {@code leftAligned} to the left, the rest to the right. */
    private static final class Table {
        private final List<List<String>> rows = new ArrayList<>();
        private final int leftAligned;

        Table(List<String> header, int leftAligned) {
            this.leftAligned = leftAligned;
            rows.add(List.copyOf(header));
        }

        void row(List<String> cells) {
            rows.add(List.copyOf(cells));
        }

        String render() {
            int columns = rows.get(0).size();
            int[] widths = new int[columns];
            for (List<String> row : rows) {
                for (int c = 0; c < columns; c++) {
                    widths[c] = Math.max(widths[c], row.get(c).length());
                }
            }
            StringBuilder out = new StringBuilder();
            for (int r = 0; r < rows.size(); r++) {
                List<String> row = rows.get(r);
                StringBuilder line = new StringBuilder();
                for (int c = 0; c < columns; c++) {
                    if (c > 0) {
                        line.append("  ");
                    }
                    String pad = " ".repeat(widths[c] - row.get(c).length());
                    line.append(c < leftAligned ? row.get(c) + pad : pad + row.get(c));
                }
                out.append(line.toString().stripTrailing()).append('\n');
                if (r == 0) {
                    int total = 0;
                    for (int width : widths) {
                        total += width;
                    }
                    out.append("-".repeat(total + 2 * (columns - 1))).append('\n');
                }
            }
            return out.toString();
        }
    }
}
