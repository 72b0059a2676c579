package dev.hybridinference.planner;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.spi.ConfigNode;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The planner's command line: {@code planner --config inference.yaml --tokens-per-day 5M --pattern bursty
 * --chart plan.png}. Run without arguments, or with {@code --help}, for the usage.
 *
 * <p>Exit status: 0 when the plan ran, 2 for a usage or configuration error (the message names the option
 * or key), 1 for anything else.
 */
public final class PlannerCli {
    static final String USAGE = """
            Usage: planner --config FILE [options]

            Replays traffic through your SDK configuration's own routing and pricing on a virtual clock, with
            simulated platforms in place of the real ones, and compares the cost, cold starts and latency of:
              all-serverless       the serverless and per-token providers only, in the configuration's order
              all-server-peak      the first always-on server, sized to the busiest 5 minutes
              all-server-baseline  that server sized to the median 5 minutes (the rest queues)
              hybrid               the baseline servers, spilling over to the serverless providers
              your-policy          the configuration as written

            Configuration:
              --config FILE          the SDK configuration (YAML or JSON) to plan for (required)
              --deployments FILE     capacity, speed and cold starts per provider (defaults by pricing type)
            Traffic (generated, unless --trace):
              --tokens-per-day N     volume, as 10k, 5M or 1.5B (default 5M)
              --pattern P            steady, diurnal, bursty or weekly (default steady)
              --days N               days of traffic (default 1; 7 with weekly)
              --mean-input N         mean prompt tokens per request (default 1000)
              --mean-output N        mean output tokens per request (default 250)
              --seed N               random seed (default 1): the same seed gives the same plan
              --trace FILE           replay a CSV trace (timestamp,input_tokens,output_tokens[,tags])
              --scale-to N           scale the trace to N tokens per day
            Scenarios:
              --scenarios A,B        run only these (default: every one the configuration allows)
              --p95 DURATION         latency objective, as 90s or 2m: a scenario over it is not viable
            Sweep:
              --sweep FROM..TO       rerun at volumes from FROM to TO tokens/day on a log scale, as 10k..1B,
                                     and find the break-even points
              --points-per-decade N  volumes per factor of ten (default 2)
            Output:
              --chart FILE           PNG or SVG: cost per day against volume with --sweep, otherwise cost and
                                     latency over the traffic's span
              --day-chart FILE       PNG or SVG: cost and latency over the span (with --sweep, at the
                                     traffic's own volume)
              --json FILE            the results as JSON; - for standard output instead of the tables
              --quiet                no progress on standard error
              --help                 this text
            """;

    private static final Set<String> FLAGS = Set.of("--quiet", "--help", "-h");
    private static final Set<String> OPTIONS = Set.of(
            "--config",
            "--deployments",
            "--tokens-per-day",
            "--pattern",
            "--days",
            "--mean-input",
            "--mean-output",
            "--seed",
            "--trace",
            "--scale-to",
            "--scenarios",
            "--p95",
            "--sweep",
            "--points-per-decade",
            "--chart",
            "--day-chart",
            "--json");

    private PlannerCli() {}

    /**
     * The SDK's own logger, kept so that its level holds: the routing logs circuit openings and closings of
     * simulated members at warn and info, which in a plan are figures in the tables, not news. Applies where
     * SLF4J logs through java.util.logging; with another backend, set the level of {@code dev.hybridinference}
     * there.
     */
    private static final java.util.logging.Logger SDK_LOG = java.util.logging.Logger.getLogger("dev.hybridinference");

    /** Runs the command line and exits with its status. */
    public static void main(String[] args) {
        SDK_LOG.setLevel(java.util.logging.Level.SEVERE);
        int status = run(args, System.out, System.err);
        System.out.flush();
        System.exit(status);
    }

    /**
     * Runs the command line, writing results to {@code out} and usage, progress and errors to {@code err}.
     *
     * @return the exit status
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        Map<String, String> o;
        try {
            o = parse(args);
        } catch (UsageException e) {
            err.println("planner: " + e.getMessage());
            err.println("Run with --help for the usage.");
            return 2;
        }
        if (o.containsKey("--help") || o.containsKey("-h")) {
            out.print(USAGE);
            return 0;
        }
        try {
            return plan(o, out, err);
        } catch (UsageException e) {
            err.println("planner: " + e.getMessage());
            return 2;
        } catch (ConfigurationException e) {
            err.println("planner: configuration error: " + e.getMessage());
            return 2;
        } catch (IllegalArgumentException e) {
            err.println("planner: " + e.getMessage());
            return 2;
        } catch (UncheckedIOException e) {
            err.println("planner: " + e.getMessage());
            return 1;
        } catch (RuntimeException e) {
            err.println("planner: failed: " + e);
            return 1;
        }
    }

    private static int plan(Map<String, String> o, PrintStream out, PrintStream err) {
        if (!o.containsKey("--config")) {
            throw new UsageException("--config is required: the SDK configuration file to plan for");
        }
        boolean quiet = o.containsKey("--quiet");
        PlannerConfig config = PlannerConfig.read(
                existing(o.get("--config"), "--config"),
                o.containsKey("--deployments") ? existing(o.get("--deployments"), "--deployments") : null);
        List<String> scenarios = o.containsKey("--scenarios")
                ? Arrays.asList(o.get("--scenarios").split(",", -1))
                : Planner.SCENARIOS;
        Traffic traffic = traffic(o);
        Duration span = traffic.span();
        Duration interval = span.compareTo(Duration.ofDays(2)) > 0 ? Duration.ofHours(6) : Duration.ofHours(1);
        if (span.compareTo(Duration.ofHours(2)) < 0) {
            interval = Duration.ofMinutes(5);
        }
        Planner planner = Planner.of(config, scenarios, interval);
        if (o.containsKey("--p95")) {
            planner = planner.withLatencyObjective(duration(o.get("--p95"), "--p95"));
        }
        boolean jsonToOut = "-".equals(o.get("--json"));
        PrintStream report = jsonToOut ? err : out;
        if (planner.applicableScenarios().isEmpty()) {
            throw new UsageException("none of the scenarios asked for applies to this configuration");
        }
        if (!quiet) {
            err.println("planning for " + traffic.describe());
            err.println("scenarios: " + String.join(", ", planner.applicableScenarios()));
        }
        if (o.containsKey("--sweep")) {
            long[] volumes = volumes(o.get("--sweep"), integer(o, "--points-per-decade", 2, 1, 20));
            Traffic base = traffic;
            Planner p = planner;
            long started = System.nanoTime();
            Sweep sweep = p.sweep(volumes, v -> scaled(base, v, o), quiet ? null : bar(err, started));
            if (!quiet) {
                err.println();
            }
            report.print(PlanReport.sweepTable(sweep));
            if (o.containsKey("--chart")) {
                PlanCharts.writeSweep(sweep, Path.of(o.get("--chart")));
                report.println("chart: " + o.get("--chart"));
            }
            writeJson(o, PlanReport.json(sweep), out);
            if (o.containsKey("--day-chart")) {
                List<ScenarioResult> results = planner.plan(traffic);
                PlanCharts.writeDay(results, Path.of(o.get("--day-chart")));
                report.println("day chart: " + o.get("--day-chart"));
            }
            return 0;
        }
        long started = System.nanoTime();
        List<ScenarioResult> results = planner.plan(traffic);
        if (!quiet) {
            err.printf(
                    Locale.ROOT, "ran %d scenarios in %.1f s%n", results.size(), (System.nanoTime() - started) / 1e9);
        }
        report.print(PlanReport.table(results));
        for (ScenarioResult r : results) {
            StringBuilder split = new StringBuilder();
            r.costByProvider()
                    .forEach((provider, usd) -> split.append(split.length() == 0 ? "" : ", ")
                            .append(provider)
                            .append(' ')
                            .append(PlanFormat.usd(perDay(usd, r))));
            report.println("  " + r.name() + ": " + r.description() + "; per day: " + split);
        }
        String chart = o.containsKey("--chart") ? o.get("--chart") : o.get("--day-chart");
        if (chart != null) {
            PlanCharts.writeDay(results, Path.of(chart));
            report.println("chart: " + chart);
        }
        writeJson(o, PlanReport.json(results), out);
        return 0;
    }

    private static Traffic traffic(Map<String, String> o) {
        if (o.containsKey("--trace")) {
            for (String generated :
                    List.of("--pattern", "--tokens-per-day", "--days", "--mean-input", "--mean-output")) {
                if (o.containsKey(generated)) {
                    throw new UsageException(generated + " describes generated traffic; it cannot go with --trace"
                            + " (use --scale-to to change a trace's volume)");
                }
            }
            TraceTraffic trace;
            try {
                trace = TraceTraffic.readCsv(existing(o.get("--trace"), "--trace"));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the trace " + o.get("--trace") + ": " + e.getMessage(), e);
            }
            return o.containsKey("--scale-to")
                    ? trace.scaledTo(tokens(o.get("--scale-to"), "--scale-to"), seed(o))
                    : trace;
        }
        if (o.containsKey("--scale-to")) {
            throw new UsageException("--scale-to scales a --trace; for generated traffic use --tokens-per-day");
        }
        TrafficPattern pattern = o.containsKey("--pattern") ? pattern(o.get("--pattern")) : TrafficPattern.STEADY;
        int days = integer(o, "--days", pattern == TrafficPattern.WEEKLY ? 7 : 1, 1, 366);
        return GeneratedTraffic.builder()
                .pattern(pattern)
                .tokensPerDay(
                        o.containsKey("--tokens-per-day")
                                ? tokens(o.get("--tokens-per-day"), "--tokens-per-day")
                                : 5_000_000)
                .span(Duration.ofDays(days))
                .meanInputTokens(integer(o, "--mean-input", 1000, 1, 10_000_000))
                .meanOutputTokens(integer(o, "--mean-output", 250, 1, 10_000_000))
                .seed(seed(o))
                .build();
    }

    /** {@code usd} over the result's span, scaled to a day. */
    private static java.math.BigDecimal perDay(java.math.BigDecimal usd, ScenarioResult r) {
        long nanos = r.span().toNanos();
        return nanos == 0
                ? usd
                : usd.multiply(java.math.BigDecimal.valueOf(Duration.ofDays(1).toNanos()))
                        .divide(java.math.BigDecimal.valueOf(nanos), 12, java.math.RoundingMode.HALF_EVEN);
    }

    /** The traffic at another volume: the same pattern and seed, or the trace scaled. */
    private static Traffic scaled(Traffic base, long tokensPerDay, Map<String, String> o) {
        if (base instanceof GeneratedTraffic) {
            return ((GeneratedTraffic) base).withTokensPerDay(tokensPerDay);
        }
        return ((TraceTraffic) base).scaledTo(tokensPerDay, seed(o));
    }

    /** Volumes from {@code from} to {@code to} (both included), {@code perDecade} per factor of ten. */
    static long[] volumes(String range, int perDecade) {
        String[] parts = range.split("\\.\\.", -1);
        if (parts.length != 2) {
            throw new UsageException("--sweep expects FROM..TO, as 10k..1B; got \"" + range + "\"");
        }
        long from = tokens(parts[0], "--sweep");
        long to = tokens(parts[1], "--sweep");
        if (to <= from) {
            throw new UsageException("--sweep expects FROM below TO; got \"" + range + "\"");
        }
        double decades = Math.log10((double) to / from);
        int steps = Math.max(1, (int) Math.round(decades * perDecade));
        if (steps > 200) {
            throw new UsageException("--sweep of " + steps + " volumes is too many; use fewer --points-per-decade");
        }
        List<Long> out = new ArrayList<>();
        for (int i = 0; i <= steps; i++) {
            long v = i == steps ? to : Math.round(from * Math.pow(10, decades * i / steps));
            if (out.isEmpty() || v > out.get(out.size() - 1)) {
                out.add(v);
            }
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    private static Planner.Progress bar(PrintStream err, long started) {
        return (done, total, tokensPerDay, scenario) -> {
            int width = 30;
            int filled = (int) ((long) width * done / total);
            err.printf(
                    Locale.ROOT,
                    "\r[%s%s] %d/%d runs, last %s at %s tokens/day, %.0f s ",
                    "#".repeat(filled),
                    " ".repeat(width - filled),
                    done,
                    total,
                    scenario,
                    TokenCounts.format(tokensPerDay),
                    (System.nanoTime() - started) / 1e9);
            err.flush();
        };
    }

    private static void writeJson(Map<String, String> o, String json, PrintStream out) {
        String target = o.get("--json");
        if (target == null) {
            return;
        }
        if (target.equals("-")) {
            out.print(json);
            out.println();
            return;
        }
        try {
            Path file = Path.of(target);
            if (file.getParent() != null) {
                Files.createDirectories(file.getParent());
            }
            Files.writeString(file, json, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target + ": " + e.getMessage(), e);
        }
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> o = new HashMap<>();
        if (args.length == 0) {
            o.put("--help", "");
            return o;
        }
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String value = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                value = a.substring(eq + 1);
                a = a.substring(0, eq);
            }
            if (FLAGS.contains(a)) {
                if (value != null) {
                    throw new UsageException(a + " takes no value");
                }
                o.put(a, "");
            } else if (OPTIONS.contains(a)) {
                if (value == null) {
                    if (i + 1 >= args.length) {
                        throw new UsageException(a + " needs a value");
                    }
                    value = args[++i];
                }
                if (o.put(a, value) != null) {
                    throw new UsageException(a + " is given twice");
                }
            } else {
                throw new UsageException("unknown option \"" + a + "\"");
            }
        }
        return o;
    }

    private static Path existing(String name, String option) {
        Path p = Path.of(name);
        if (!Files.isRegularFile(p)) {
            throw new UsageException(option + ": no such file: " + name);
        }
        return p;
    }

    private static long tokens(String text, String option) {
        try {
            return TokenCounts.parse(text);
        } catch (IllegalArgumentException e) {
            throw new UsageException(option + ": " + e.getMessage());
        }
    }

    private static TrafficPattern pattern(String text) {
        try {
            return TrafficPattern.parse(text);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--pattern: " + e.getMessage());
        }
    }

    private static Duration duration(String text, String option) {
        Duration d = ConfigNode.parseDuration(text);
        if (d == null || d.isNegative() || d.isZero()) {
            throw new UsageException(
                    option + ": expected a positive duration such as 90s, 500ms or 2m; got \"" + text + "\"");
        }
        return d;
    }

    private static long seed(Map<String, String> o) {
        String s = o.get("--seed");
        if (s == null) {
            return 1;
        }
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw new UsageException("--seed: expected a whole number; got \"" + s + "\"");
        }
    }

    private static int integer(Map<String, String> o, String option, int fallback, int min, int max) {
        String s = o.get(option);
        if (s == null) {
            return fallback;
        }
        try {
            int v = Integer.parseInt(s.trim());
            if (v < min || v > max) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new UsageException(
                    option + ": expected a whole number from " + min + " to " + max + "; got \"" + s + "\"");
        }
    }

    /** A wrong command line: the message names the option. */
    private static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }
}
