package dev.hybridinference.planner;

import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.StandardRoutingPolicy;
import dev.hybridinference.core.spi.VirtualTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.LongFunction;

/**
 * Plans serverless against server capacity for a traffic: replays the traffic through each scenario on
 * virtual time, with the SDK's own routing ({@link HybridClient}), metering and pricing, and simulated
 * platforms ({@link Deployment}) in place of the real ones.
 *
 * <p>The scenarios, built from the configuration's providers:
 *
 * <ul>
 *   <li>{@value #YOUR_POLICY}: the configuration as it is, routing and retries included;
 *   <li>{@value #ALL_SERVERLESS}: every serverless and per-token provider, tried in the configuration's
 *       order (the next one when one throttles);
 *   <li>{@value #ALL_SERVER_PEAK}: the first always-on provider, with as many instances as the busiest
 *       5 minutes of the traffic need;
 *   <li>{@value #ALL_SERVER_BASELINE}: that provider with the instances the median 5 minutes need (at
 *       least one); requests beyond its slots queue;
 *   <li>{@value #HYBRID}: the baseline servers first, spilling over to the serverless providers when all
 *       their slots are taken.
 * </ul>
 *
 * A scenario that the configuration lacks providers for (no server, or no serverless provider) is left out.
 * Instances are sized so that the slots needed stay under {@value #TARGET_UTILIZATION} of those running.
 * Not thread-safe; each {@link #plan} is independent and deterministic.
 */
public final class Planner {
    /** The configuration as it is. */
    public static final String YOUR_POLICY = "your-policy";
    /** Serverless and per-token providers only. */
    public static final String ALL_SERVERLESS = "all-serverless";
    /** Servers sized to the peak. */
    public static final String ALL_SERVER_PEAK = "all-server-peak";
    /** Servers sized to the baseline. */
    public static final String ALL_SERVER_BASELINE = "all-server-baseline";
    /** Baseline servers with spillover to serverless. */
    public static final String HYBRID = "hybrid";

    /** Every scenario, in report order. */
    public static final List<String> SCENARIOS =
            List.of(ALL_SERVERLESS, ALL_SERVER_PEAK, ALL_SERVER_BASELINE, HYBRID, YOUR_POLICY);

    /** The share of a server's slots the sizing aims to keep busy. */
    public static final double TARGET_UTILIZATION = 0.8;

    private static final Duration SIZING_WINDOW = Duration.ofMinutes(5);

    private final PlannerConfig config;
    private final List<String> scenarios;
    private final Duration interval;
    private final int parallelism;
    private final Duration p95Objective;

    private Planner(
            PlannerConfig config, List<String> scenarios, Duration interval, int parallelism, Duration p95Objective) {
        this.config = config;
        this.scenarios = scenarios;
        this.interval = interval;
        this.parallelism = parallelism;
        this.p95Objective = p95Objective;
    }

    /** A copy that runs at most {@code threads} scenarios at once (one per core by default). */
    public Planner withParallelism(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        return new Planner(config, scenarios, interval, threads, p95Objective);
    }

    /**
     * A copy in which a scenario whose 95th percentile latency is above {@code p95} is not viable: it is
     * reported, with the shortfall, but never called the cheapest. Without it, only failed requests make a
     * scenario not viable.
     */
    public Planner withLatencyObjective(Duration p95) {
        if (p95.isNegative() || p95.isZero()) {
            throw new IllegalArgumentException("the latency objective must be positive, got " + p95);
        }
        return new Planner(config, scenarios, interval, parallelism, p95);
    }

    /**
     * A planner over {@code config}.
     *
     * @param scenarios the scenarios to run, a subset of {@link #SCENARIOS}
     * @param interval the length of one step of each result's timeline
     */
    public static Planner of(PlannerConfig config, List<String> scenarios, Duration interval) {
        Objects.requireNonNull(config, "config");
        for (String s : scenarios) {
            if (!SCENARIOS.contains(s)) {
                throw new IllegalArgumentException(
                        "unknown scenario \"" + s + "\"; expected some of " + String.join(", ", SCENARIOS));
            }
        }
        if (scenarios.isEmpty()) {
            throw new IllegalArgumentException("expected at least one scenario");
        }
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("interval must be positive, got " + interval);
        }
        return new Planner(
                config, List.copyOf(scenarios), interval, Runtime.getRuntime().availableProcessors(), null);
    }

    /** A planner running every scenario, with hourly timelines. */
    public static Planner of(PlannerConfig config) {
        return of(config, SCENARIOS, Duration.ofHours(1));
    }

    /** The scenarios this planner can run for the configuration, in report order. */
    public List<String> applicableScenarios() {
        List<String> out = new ArrayList<>();
        boolean server = server() != null;
        boolean serverless = !serverless().isEmpty();
        for (String s : scenarios) {
            boolean ok = switch (s) {
                case ALL_SERVERLESS -> serverless;
                case ALL_SERVER_PEAK, ALL_SERVER_BASELINE -> server;
                case HYBRID -> server && serverless;
                default -> true;
            };
            if (ok) {
                out.add(s);
            }
        }
        return out;
    }

    /**
     * Runs every applicable scenario over {@code traffic}, each on its own virtual time, several at once on
     * this machine's cores (each run is single-threaded, so the results do not depend on how many).
     */
    public List<ScenarioResult> plan(Traffic traffic) {
        Objects.requireNonNull(traffic, "traffic");
        Sizing sizing = sizing(traffic);
        List<Callable<ScenarioResult>> runs = new ArrayList<>();
        for (String s : applicableScenarios()) {
            runs.add(() -> run(s, traffic, sizing));
        }
        return runAll(runs, null);
    }

    /** Runs {@code runs} on up to one thread per core, in order of submission; results in the same order. */
    private List<ScenarioResult> runAll(List<Callable<ScenarioResult>> runs, Runnable afterEach) {
        int threads = Math.max(1, Math.min(parallelism, runs.size()));
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "planner-run");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<ScenarioResult>> futures = new ArrayList<>();
            for (Callable<ScenarioResult> c : runs) {
                futures.add(pool.submit(c));
            }
            List<ScenarioResult> out = new ArrayList<>();
            for (Future<ScenarioResult> f : futures) {
                out.add(f.get());
                if (afterEach != null) {
                    afterEach.run();
                }
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("planning was interrupted", e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException) {
                throw (RuntimeException) cause;
            }
            if (cause instanceof Error) {
                throw (Error) cause;
            }
            throw new IllegalStateException(cause);
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * Runs every applicable scenario at each volume and finds where the cheapest one changes.
     *
     * @param tokensPerDay the volumes, in increasing order
     * @param trafficAt the traffic at a volume (the same pattern and seed scaled, say)
     * @param progress told after each run; may be null
     */
    public Sweep sweep(long[] tokensPerDay, LongFunction<Traffic> trafficAt, Progress progress) {
        Objects.requireNonNull(trafficAt, "trafficAt");
        if (tokensPerDay.length == 0) {
            throw new IllegalArgumentException("expected at least one volume");
        }
        for (int i = 1; i < tokensPerDay.length; i++) {
            if (tokensPerDay[i] <= tokensPerDay[i - 1]) {
                throw new IllegalArgumentException("volumes must increase, got " + Arrays.toString(tokensPerDay));
            }
        }
        List<String> names = applicableScenarios();
        int total = names.size() * tokensPerDay.length;
        // The biggest volumes take longest: start them first, so the cores stay busy to the end.
        List<Callable<ScenarioResult>> runs = new ArrayList<>();
        List<long[]> order = new ArrayList<>();
        for (int i = tokensPerDay.length - 1; i >= 0; i--) {
            long v = tokensPerDay[i];
            Traffic traffic = trafficAt.apply(v);
            Sizing sizing = sizing(traffic);
            for (int j = 0; j < names.size(); j++) {
                String s = names.get(j);
                runs.add(() -> run(s, traffic, sizing));
                order.add(new long[] {i, j});
            }
        }
        int[] done = {0};
        List<ScenarioResult> results = runAll(runs, () -> {
            long[] at = order.get(done[0]);
            done[0]++;
            if (progress != null) {
                progress.ran(done[0], total, tokensPerDay[(int) at[0]], names.get((int) at[1]));
            }
        });
        List<Map<String, ScenarioResult>> byPoint = new ArrayList<>();
        for (int i = 0; i < tokensPerDay.length; i++) {
            byPoint.add(new LinkedHashMap<>());
        }
        for (int k = 0; k < results.size(); k++) {
            long[] at = order.get(k);
            byPoint.get((int) at[0]).put(names.get((int) at[1]), results.get(k));
        }
        List<Sweep.Point> points = new ArrayList<>();
        for (int i = 0; i < tokensPerDay.length; i++) {
            points.add(new Sweep.Point(tokensPerDay[i], byPoint.get(i)));
        }
        return new Sweep(names, points, breakEvens(names, points));
    }

    /** Progress of a sweep. */
    @FunctionalInterface
    public interface Progress {
        /** {@code done} of {@code total} runs are finished; the last was {@code scenario} at {@code tokensPerDay}. */
        void ran(int done, int total, long tokensPerDay, String scenario);
    }

    /** Where the cheapest scenario changes between neighbouring points, interpolated on log-log axes. */
    static List<Sweep.BreakEven> breakEvens(List<String> names, List<Sweep.Point> points) {
        List<Sweep.BreakEven> out = new ArrayList<>();
        for (int i = 1; i < points.size(); i++) {
            Sweep.Point a = points.get(i - 1);
            Sweep.Point b = points.get(i);
            String below = a.cheapest(names);
            String above = b.cheapest(names);
            if (below == null || above == null || below.equals(above)) {
                continue;
            }
            // Cost lines of the two scenarios, straight between the points on log-log axes: where they cross.
            double x0 = Math.log(a.tokensPerDay());
            double x1 = Math.log(b.tokensPerDay());
            double d0 = log(a.costPerDay(below)) - log(a.costPerDay(above));
            double d1 = log(b.costPerDay(below)) - log(b.costPerDay(above));
            double t = d0 == d1 ? 0.5 : d0 / (d0 - d1);
            t = Math.max(0, Math.min(1, t));
            out.add(new Sweep.BreakEven(Math.exp(x0 + t * (x1 - x0)), below, above));
        }
        return out;
    }

    private static double log(java.math.BigDecimal usd) {
        return Math.log(Math.max(1e-12, usd.doubleValue()));
    }

    /**
     * Runs one applicable scenario over {@code traffic}, keeping what its result was read from: the ledger,
     * the capacity reports and the receipts of the answered calls, so that the planned cost of each provider
     * can be set beside what a real run's ledger holds for the same traffic.
     */
    Simulation.Detailed runDetailed(String scenario, Traffic traffic) {
        Objects.requireNonNull(traffic, "traffic");
        if (!applicableScenarios().contains(scenario)) {
            throw new IllegalArgumentException("scenario \"" + scenario + "\" is not applicable; applicable: "
                    + String.join(", ", applicableScenarios()));
        }
        return run(scenario, traffic, sizing(traffic), true);
    }

    private ScenarioResult run(String scenario, Traffic traffic, Sizing sizing) {
        return run(scenario, traffic, sizing, false).result();
    }

    private Simulation.Detailed run(String scenario, Traffic traffic, Sizing sizing, boolean keepReceipts) {
        PlannedProvider server = server();
        List<PlannedProvider> serverless = serverless();
        String description;
        Simulation.Setup setup;
        switch (scenario) {
            case YOUR_POLICY:
                description = "the configuration as written: its providers, routing and retries";
                setup = this::loadConfigured;
                break;
            case ALL_SERVERLESS:
                description = "serverless only: " + ids(serverless) + ", in order";
                setup = (vt, ledger) -> chain(vt, ledger, serverless, null, 0);
                break;
            case ALL_SERVER_PEAK:
            case ALL_SERVER_BASELINE:
                boolean peak = scenario.equals(ALL_SERVER_PEAK);
                PlannedProvider sized = server.withServerInstances(peak ? sizing.peak : sizing.baseline);
                description = sized.deployment().maxInstances() + " x " + server.id()
                        + (peak
                                ? ", sized to the busiest 5 minutes"
                                : ", sized to the median 5 minutes; the rest queues");
                setup = (vt, ledger) -> chain(vt, ledger, List.of(), sized, 0);
                break;
            case HYBRID:
                PlannedProvider base = server.withServerInstances(sizing.baseline);
                int slots = base.deployment().maxInstances() * base.deployment().concurrency();
                description = sizing.baseline + " x " + server.id() + " (median 5 minutes), spilling over to "
                        + ids(serverless);
                setup = (vt, ledger) -> chain(vt, ledger, serverless, base, slots);
                break;
            default:
                throw new IllegalArgumentException(scenario);
        }
        return Simulation.run(scenario, description, setup, traffic, interval, p95Objective, keepReceipts);
    }

    /** The configuration loaded by the core's loader, each provider simulated. */
    private Simulation.Built loadConfigured(VirtualTime vt, CostLedger ledger) {
        Map<String, SimulatedProvider> made = new LinkedHashMap<>();
        InferenceClient client = InferenceClients.loader()
                .env(config.env())
                .timeSource(vt)
                .ledger(ledger)
                .providerFactory(ctx -> {
                    PlannedProvider p = config.providers().get(ctx.id());
                    SimulatedProvider s = simulated(p, ledger, vt);
                    made.put(p.id(), s);
                    return s;
                })
                .load(config.document());
        return new Simulation.Built(client, made);
    }

    /**
     * A composite client: {@code primary} (if any) taking up to {@code slots} calls at once, then {@code
     * overflow} in order; without a primary, the overflow providers in order.
     */
    private static Simulation.Built chain(
            VirtualTime vt, CostLedger ledger, List<PlannedProvider> overflow, PlannedProvider primary, int slots) {
        Map<String, SimulatedProvider> made = new LinkedHashMap<>();
        HybridClient.Builder b =
                HybridClient.builder().id("plan").timeSource(vt).ledger(ledger);
        if (primary != null) {
            SimulatedProvider s = simulated(primary, ledger, vt);
            made.put(primary.id(), s);
            b.member(
                    primary.id(),
                    s,
                    slots > 0 ? MemberOptions.builder().maxInFlight(slots).build() : MemberOptions.DEFAULTS);
        }
        for (PlannedProvider p : overflow) {
            SimulatedProvider s = simulated(p, ledger, vt);
            made.put(p.id(), s);
            b.member(p.id(), s);
        }
        if (primary != null && !overflow.isEmpty()) {
            b.policy(StandardRoutingPolicy.builder()
                    .clock(vt.clock())
                    .tier("plan", List.of(primary.id()))
                    .defaultTier("plan")
                    .spillover(primary.id(), ids(overflow), Duration.ZERO)
                    .build());
        }
        return new Simulation.Built(b.build(), made);
    }

    private static SimulatedProvider simulated(PlannedProvider p, CostLedger ledger, VirtualTime vt) {
        return new SimulatedProvider(p.id(), p.model(), p.pricing(), p.deployment(), ledger, vt);
    }

    private static List<String> ids(List<PlannedProvider> ps) {
        List<String> out = new ArrayList<>();
        ps.forEach(p -> out.add(p.id()));
        return out;
    }

    /** The first always-on provider billed per instance hour, or null. */
    private PlannedProvider server() {
        for (PlannedProvider p : config.providers().values()) {
            if (p.isServer()) {
                return p;
            }
        }
        return null;
    }

    private List<PlannedProvider> serverless() {
        List<PlannedProvider> out = new ArrayList<>();
        for (PlannedProvider p : config.providers().values()) {
            if (p.isServerless()) {
                out.add(p);
            }
        }
        return out;
    }

    /** Server instances for the busiest and the median 5 minutes of the traffic. */
    record Sizing(int peak, int baseline) {}

    /**
     * Sizes the first server for {@code traffic}: in each 5-minute window, the slots its requests keep busy
     * on average (their service time over the window), divided by the slots of one instance at the target
     * utilisation.
     */
    Sizing sizing(Traffic traffic) {
        PlannedProvider server = server();
        if (server == null) {
            return new Sizing(1, 1);
        }
        Deployment d = server.deployment();
        long window = SIZING_WINDOW.toNanos();
        int windows = (int) Math.max(1, (traffic.span().toNanos() + window - 1) / window);
        double[] busy = new double[windows];
        for (TrafficRequest r : traffic) {
            int k = (int) Math.min(windows - 1, r.offsetNanos() / window);
            busy[k] += d.serviceTime(r.inputTokens(), r.outputTokens()).toNanos();
        }
        double perInstance = d.concurrency() * TARGET_UTILIZATION * window;
        double[] sorted = busy.clone();
        Arrays.sort(sorted);
        int peak = (int) Math.ceil(sorted[windows - 1] / perInstance);
        int baseline = (int) Math.ceil(sorted[(windows - 1) / 2] / perInstance);
        return new Sizing(Math.max(1, peak), Math.max(1, baseline));
    }
}
