package dev.hybridinference.planner;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.cost.LedgerTotals;
import dev.hybridinference.core.spi.VirtualTime;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiFunction;

/**
 * Runs one scenario over one traffic on virtual time: each request is sent through the scenario's client
 * ({@code chatAsync}) at its arrival time, and the figures are read from the receipts and the ledger.
 * Single-threaded and deterministic.
 */
final class Simulation {
    /** Prompts by length: routing estimates a prompt's tokens from its characters (4 per token). */
    private static final Map<Integer, String> PROMPTS = new ConcurrentHashMap<>();

    private static final int MAX_CACHED_PROMPTS = 8192;

    /** How long after the traffic's end calls still running are waited for. */
    private static final Duration DRAIN = Duration.ofHours(6);

    private Simulation() {}

    /**
     * What a scenario builds on fresh virtual time and a fresh ledger: its client, and the simulated
     * providers it made (by name), for their counts.
     */
    interface Setup extends BiFunction<VirtualTime, CostLedger, Built> {}

    /** A scenario's client and the simulated providers inside it. */
    record Built(InferenceClient client, Map<String, SimulatedProvider> providers) {}

    /**
     * A run's result together with what it was read from, for setting a plan beside a real run provider by
     * provider: the ledger the simulated calls recorded into, the capacity reports as they stood at the end
     * of the traffic (whose bills the result's idle cost is read from), and the receipts of the answered calls when
     * they were asked for (else empty).
     */
    record Detailed(
            ScenarioResult result, CostLedger ledger, Map<String, CapacityReport> capacity, List<Receipt> receipts) {
        /**
         * What one provider cost in the run, counted as the result counts the total: the calls recorded for
         * it, plus its capacity billed while idle over the traffic's span.
         */
        BigDecimal costOf(String providerId) {
            BigDecimal calls = ledger.totals().provider(providerId);
            return calls.add(idleOf(capacity, calls, providerId));
        }
    }

    /**
     * The capacity a provider billed over the traffic's span and no call paid for: its bill at the span's end
     * less every call recorded for it, those still running at the end included (so that their time before
     * the end is not counted twice, as idle and as theirs); zero for a provider without capacity.
     *
     * @param calls what the ledger holds for the provider's calls
     */
    static BigDecimal idleOf(Map<String, CapacityReport> capacity, BigDecimal calls, String providerId) {
        CapacityReport c = capacity.get(providerId);
        if (c == null) {
            return BigDecimal.ZERO;
        }
        return c.billed().subtract(calls).max(BigDecimal.ZERO);
    }

    /**
     * Runs a scenario.
     *
     * @param p95Objective the 95th percentile latency the scenario must keep to be viable, or null for none
     * @param keepReceipts whether to keep the answered calls' receipts in the result
     */
    static Detailed run(
            String name,
            String description,
            Setup setup,
            Traffic traffic,
            Duration interval,
            Duration p95Objective,
            boolean keepReceipts) {
        Instant epoch = Instant.parse("2026-01-05T00:00:00Z"); // a Monday, so weekly patterns line up
        VirtualTime vt = new VirtualTime(epoch);
        CostLedger ledger =
                new CostLedger(vt.clock(), traffic.span().plus(DRAIN).plusDays(1));
        Built built = setup.apply(vt, ledger);
        long span = traffic.span().toNanos();
        long step = Math.max(1, interval.toNanos());
        int intervals = (int) Math.max(1, (span + step - 1) / step);
        BigDecimal[] cumulative = new BigDecimal[intervals + 1];
        cumulative[0] = BigDecimal.ZERO;
        for (int k = 1; k <= intervals; k++) {
            int index = k;
            vt.scheduleAt(
                    Duration.ofNanos(Math.min(span, k * step)),
                    () -> cumulative[index] = billedSoFar(ledger, built.providers()));
        }
        Stats stats = new Stats(intervals, keepReceipts);
        InferenceClient client = built.client();
        long[] sent = {0};
        for (TrafficRequest r : traffic) {
            vt.advanceTo(Duration.ofNanos(r.offsetNanos()));
            int k = (int) Math.min(intervals - 1, r.offsetNanos() / step);
            long arrived = vt.nanoTime();
            sent[0]++;
            client.chatAsync(request(r))
                    .whenComplete((answer, failure) -> stats.ended(k, answer, failure, vt.nanoTime() - arrived));
        }
        vt.advanceTo(Duration.ofNanos(span));
        Map<String, CapacityReport> capacity = capacities(ledger, built.providers());
        // Calls still running at the end of the traffic end as they would, for their receipts' sake.
        long drainUntil = span + DRAIN.toNanos();
        while (stats.ended < sent[0] && vt.elapsed().toNanos() < drainUntil) {
            vt.advanceTo(Duration.ofNanos(Math.min(
                    drainUntil, vt.elapsed().toNanos() + Duration.ofMinutes(1).toNanos())));
        }
        client.close();

        // One snapshot of the ledger gives each provider's calls, its idle capacity and the total's idle part.
        LedgerTotals totals = ledger.totals();
        BigDecimal idle = BigDecimal.ZERO;
        Map<String, BigDecimal> byProvider = new LinkedHashMap<>();
        for (String providerId : built.providers().keySet()) {
            BigDecimal calls = totals.provider(providerId);
            BigDecimal idleHere = idleOf(capacity, calls, providerId);
            idle = idle.add(idleHere);
            byProvider.put(providerId, calls.add(idleHere));
        }
        // Utilisation of always-on servers counts their slots: the core attributes a server's whole time
        // to the calls on it as soon as it has one per instance, which says nothing of a batch's free room.
        double slotNanos = 0;
        double busyNanos = 0;
        for (SimulatedProvider p : built.providers().values()) {
            Deployment d = p.deployment();
            if (d.kind() == Deployment.Kind.SERVER && p.pricing() instanceof Pricing.PerInstanceHour) {
                slotNanos += (double) d.maxInstances() * d.concurrency() * span;
                busyNanos += p.busySlotNanos();
            }
        }
        BigDecimal cost = totals.total().add(idle);
        long coldWaits = 0;
        for (SimulatedProvider p : built.providers().values()) {
            coldWaits += p.coldWaits();
        }
        List<ScenarioResult.Interval> timeline = new ArrayList<>(intervals);
        for (int k = 0; k < intervals; k++) {
            BigDecimal from = cumulative[k] == null ? BigDecimal.ZERO : cumulative[k];
            BigDecimal to = cumulative[k + 1] == null ? from : cumulative[k + 1];
            long length = Math.min(step, span - k * step);
            timeline.add(new ScenarioResult.Interval(
                    Duration.ofNanos(k * step),
                    Duration.ofNanos(length),
                    stats.perInterval[k].size,
                    to.subtract(from),
                    stats.perInterval[k].percentile(0.50),
                    stats.perInterval[k].percentile(0.95)));
        }
        double utilization = slotNanos == 0 ? Double.NaN : Math.min(1, busyNanos / slotNanos);
        List<String> shortfalls = new ArrayList<>();
        if (stats.failed > 0) {
            shortfalls.add(stats.failed + " of " + sent[0] + " requests failed (throttled, refused or timed out)");
        }
        Duration p95 = stats.all.percentile(0.95);
        if (p95Objective != null && p95.compareTo(p95Objective) > 0) {
            shortfalls.add("p95 latency " + PlanFormat.latency(p95) + " is over the objective of "
                    + PlanFormat.latency(p95Objective));
        }
        ScenarioResult result = new ScenarioResult(
                name,
                description,
                traffic.span(),
                sent[0],
                stats.failed,
                stats.tokens,
                cost,
                idle,
                coldWaits,
                stats.all.percentile(0.50),
                p95,
                stats.all.percentile(0.99),
                utilization,
                timeline,
                shortfalls,
                byProvider);
        return new Detailed(result, ledger, Map.copyOf(capacity), List.copyOf(stats.receipts));
    }

    /** What the ledger holds so far, plus the idle part of capacity billed so far. */
    private static BigDecimal billedSoFar(CostLedger ledger, Map<String, SimulatedProvider> providers) {
        BigDecimal sum = ledger.total();
        for (CapacityReport c : capacities(ledger, providers).values()) {
            sum = sum.add(c.idle());
        }
        return sum;
    }

    private static Map<String, CapacityReport> capacities(CostLedger ledger, Map<String, SimulatedProvider> providers) {
        Map<String, CapacityReport> out = new LinkedHashMap<>();
        for (String id : providers.keySet()) {
            Optional<CapacityReport> c = ledger.capacity(id);
            c.ifPresent(r -> out.put(id, r));
        }
        return out;
    }

    /** The request for one traffic request: a prompt the router estimates at its input tokens. */
    static ChatRequest request(TrafficRequest r) {
        ChatRequest.Builder b =
                ChatRequest.builder().user(prompt(r.inputTokens())).maxTokens(r.outputTokens());
        if (!r.tags().isEmpty()) {
            b.options(RequestOptions.builder().tags(r.tags()).build());
        }
        return b.build();
    }

    /** A prompt of {@code tokens} by routing's estimate (characters / 4, plus 4 for the message). */
    static String prompt(int tokens) {
        int chars = Math.max(0, tokens - 4) * 4;
        String p = PROMPTS.get(chars);
        if (p == null) {
            p = "a".repeat(chars);
            if (PROMPTS.size() < MAX_CACHED_PROMPTS) {
                PROMPTS.put(chars, p);
            }
        }
        return p;
    }

    /** Latencies and counts of the answered calls. */
    private static final class Stats {
        final Latencies all = new Latencies();
        final Latencies[] perInterval;
        final List<Receipt> receipts = new ArrayList<>();
        final boolean keepReceipts;
        long ended;
        long failed;
        long tokens;

        Stats(int intervals, boolean keepReceipts) {
            this.keepReceipts = keepReceipts;
            perInterval = new Latencies[intervals];
            for (int k = 0; k < intervals; k++) {
                perInterval[k] = new Latencies();
            }
        }

        void ended(int interval, ChatResponse answer, Throwable failure, long nanos) {
            ended++;
            if (failure != null || answer == null) {
                failed++;
                return;
            }
            Receipt r = answer.receipt();
            tokens += r.usage().inputTokens() + r.usage().outputTokens();
            if (keepReceipts) {
                receipts.add(r);
            }
            all.add(nanos);
            perInterval[interval].add(nanos);
        }
    }

    /** A growable array of latencies in nanoseconds, sorted once when read. */
    private static final class Latencies {
        long[] values = new long[16];
        int size;
        boolean sorted = true;

        void add(long v) {
            if (size == values.length) {
                values = Arrays.copyOf(values, size * 2);
            }
            if (size > 0 && v < values[size - 1]) {
                sorted = false;
            }
            values[size++] = v;
        }

        /** The nearest-rank percentile; zero when empty. */
        Duration percentile(double q) {
            if (size == 0) {
                return Duration.ZERO;
            }
            if (!sorted) {
                Arrays.sort(values, 0, size);
                sorted = true;
            }
            int rank = (int) Math.ceil(q * size);
            return Duration.ofNanos(values[Math.max(0, Math.min(size - 1, rank - 1))]);
        }
    }
}
