package dev.hybridinference.examples.demo;

import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RouteFacts;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The hybrid demo's figures, computed from its receipts alone: per provider the calls, tokens, cold starts,
 * latency percentiles and cost; the spillovers, fallbacks and skipped members from each receipt's {@link
 * Receipt#routeFacts() route facts}; the total cost; and what the same traffic would have cost on one kind
 * of capacity:
 *
 * <ul>
 *   <li><b>all serverless</b>: every call's tokens at the configured pay-per-token price ({@link
 *       Prices#serverless()});
 *   <li><b>all server</b>: an always-on fleet big enough for the traffic's peak concurrency without spilling
 *       ({@code ceil(peak / callsPerServer)} servers, at least one) at the configured hourly price ({@link
 *       Prices#server()}), billed for the traffic's span: from the first call's start to the last call's end.
 * </ul>
 *
 * Every total is the exact sum of the per-receipt figures. Immutable.
 */
public final class DemoSummary {
    /**
     * The prices the comparisons use, taken from the demo's configuration.
     *
     * @param serverless the pay-per-token price every call pays in the all-serverless case
     * @param server the hourly price of one always-on server in the all-server case ({@link
     *     Pricing.PerInstanceHour#perHour()}; its instance count is ignored, the fleet is sized here)
     * @param callsPerServer how many calls one server takes at once (its in-flight limit)
     */
    public record Prices(Pricing.PerToken serverless, Pricing.PerInstanceHour server, int callsPerServer) {
        /** Checks the parts. */
        public Prices {
            Objects.requireNonNull(serverless, "serverless");
            Objects.requireNonNull(server, "server");
            if (callsPerServer < 1) {
                throw new IllegalArgumentException("callsPerServer must be at least 1, got " + callsPerServer);
            }
        }
    }

    /**
     * One provider's line of the table.
     *
     * @param provider the member that answered ({@link Receipt#providerId()})
     * @param calls its calls
     * @param inputTokens prompt tokens
     * @param outputTokens generated tokens
     * @param coldStarts calls that met a cold start ({@link Receipt#coldStart()} observed)
     * @param p50 the median latency ({@link Receipt#totalTime()}), nearest rank
     * @param p95 the 95th percentile latency, nearest rank
     * @param cost the sum of its receipts' costs
     */
    public record ProviderRow(
            String provider,
            int calls,
            long inputTokens,
            long outputTokens,
            int coldStarts,
            Duration p50,
            Duration p95,
            BigDecimal cost) {}

    private final List<ProviderRow> rows;
    private final int calls;
    private final long inputTokens;
    private final long outputTokens;
    private final int coldStarts;
    private final BigDecimal totalCost;
    private final int spillovers;
    private final int fallbacks;
    private final Map<String, Integer> skipped;
    private final Map<String, List<String>> skipReasons;
    private final Duration span;
    private final int peakConcurrency;
    private final int serversForPeak;
    private final BigDecimal allServerless;
    private final BigDecimal allServer;

    private DemoSummary(List<Receipt> receipts, Prices prices) {
        Map<String, List<Receipt>> byProvider = new TreeMap<>();
        for (Receipt r : receipts) {
            byProvider.computeIfAbsent(r.providerId(), k -> new ArrayList<>()).add(r);
        }
        List<ProviderRow> list = new ArrayList<>();
        for (Map.Entry<String, List<Receipt>> e : byProvider.entrySet()) {
            list.add(row(e.getKey(), e.getValue()));
        }
        this.rows = List.copyOf(list);
        int n = 0;
        long in = 0;
        long out = 0;
        int cold = 0;
        BigDecimal cost = BigDecimal.ZERO;
        for (ProviderRow row : rows) {
            n += row.calls();
            in += row.inputTokens();
            out += row.outputTokens();
            cold += row.coldStarts();
            cost = cost.add(row.cost());
        }
        this.calls = n;
        this.inputTokens = in;
        this.outputTokens = out;
        this.coldStarts = cold;
        this.totalCost = cost;

        int spilled = 0;
        int fell = 0;
        Map<String, Integer> skips = new TreeMap<>();
        Map<String, List<String>> reasons = new TreeMap<>();
        BigDecimal serverless = BigDecimal.ZERO;
        for (Receipt r : receipts) {
            RouteFacts f = r.routeFacts();
            spilled += f.spilledOver() ? 1 : 0;
            fell += f.fellBack() ? 1 : 0;
            for (RouteFacts.Skip s : f.skipped()) {
                skips.merge(s.member(), 1, Integer::sum);
                List<String> why = reasons.computeIfAbsent(s.member(), k -> new ArrayList<>());
                if (!why.contains(s.reason())) {
                    why.add(s.reason());
                }
            }
            serverless = serverless.add(
                    prices.serverless().costOf(new Pricing.BillableUsage(r.usage(), r.computeTime(), Duration.ZERO)));
        }
        this.spillovers = spilled;
        this.fallbacks = fell;
        this.skipped = java.util.Collections.unmodifiableMap(skips);
        reasons.replaceAll((k, v) -> List.copyOf(v));
        this.skipReasons = java.util.Collections.unmodifiableMap(reasons);
        this.allServerless = serverless;

        this.span = span(receipts);
        this.peakConcurrency = peakConcurrency(receipts);
        this.serversForPeak = Math.max(1, (peakConcurrency + prices.callsPerServer() - 1) / prices.callsPerServer());
        this.allServer = receipts.isEmpty()
                ? BigDecimal.ZERO
                : new Pricing.PerInstanceHour(prices.server().perHour(), serversForPeak).capacityCost(span);
    }

    /**
     * The figures of these receipts under these prices.
     *
     * @param receipts every call's receipt (a failed call's partial receipt included, if it has one)
     * @param prices the prices of the comparisons
     * @return the summary
     */
    public static DemoSummary of(List<Receipt> receipts, Prices prices) {
        return new DemoSummary(List.copyOf(receipts), Objects.requireNonNull(prices, "prices"));
    }

    private static ProviderRow row(String provider, List<Receipt> receipts) {
        long in = 0;
        long out = 0;
        int cold = 0;
        BigDecimal cost = BigDecimal.ZERO;
        List<Duration> latencies = new ArrayList<>();
        for (Receipt r : receipts) {
            in += r.usage().inputTokens();
            out += r.usage().outputTokens();
            cold += r.coldStart().observed() ? 1 : 0;
            cost = cost.add(r.cost());
            latencies.add(r.totalTime());
        }
        latencies.sort(Comparator.naturalOrder());
        return new ProviderRow(
                provider, receipts.size(), in, out, cold, percentile(latencies, 50), percentile(latencies, 95), cost);
    }

    /** The nearest-rank percentile of sorted values: the smallest value with at least p% of them at or below it. */
    static Duration percentile(List<Duration> sorted, int p) {
        if (sorted.isEmpty()) {
            return Duration.ZERO;
        }
        int rank = (int) Math.ceil(p / 100.0 * sorted.size());
        return sorted.get(Math.max(0, rank - 1));
    }

    private static Duration span(List<Receipt> receipts) {
        Instant first = null;
        Instant last = null;
        for (Receipt r : receipts) {
            Instant start = r.startedAt();
            Instant end = start.plus(r.totalTime());
            first = first == null || start.isBefore(first) ? start : first;
            last = last == null || end.isAfter(last) ? end : last;
        }
        return first == null ? Duration.ZERO : Duration.between(first, last);
    }

    /** The most calls in progress at one instant; a call ending as another starts does not overlap it. */
    private static int peakConcurrency(List<Receipt> receipts) {
        List<long[]> events = new ArrayList<>();
        for (Receipt r : receipts) {
            Instant start = r.startedAt();
            Instant end = start.plus(r.totalTime());
            events.add(new long[] {start.getEpochSecond(), start.getNano(), +1});
            events.add(new long[] {end.getEpochSecond(), end.getNano(), -1});
        }
        // By time, ends before starts at the same instant.
        events.sort(Comparator.<long[]>comparingLong(e -> e[0])
                .thenComparingLong(e -> e[1])
                .thenComparingLong(e -> e[2]));
        int now = 0;
        int peak = 0;
        for (long[] e : events) {
            now += (int) e[2];
            peak = Math.max(peak, now);
        }
        return peak;
    }

    /** One line per provider that answered, by name. */
    public List<ProviderRow> providers() {
        return rows;
    }

    /** All calls. */
    public int calls() {
        return calls;
    }

    /** All prompt tokens. */
    public long inputTokens() {
        return inputTokens;
    }

    /** All generated tokens. */
    public long outputTokens() {
        return outputTokens;
    }

    /** Calls that met a cold start. */
    public int coldStarts() {
        return coldStarts;
    }

    /** What the traffic cost: the sum of every receipt's cost. */
    public BigDecimal totalCost() {
        return totalCost;
    }

    /** Calls that spilled over from the full always-on server. */
    public int spillovers() {
        return spillovers;
    }

    /** Calls answered by a later member after an earlier one failed. */
    public int fallbacks() {
        return fallbacks;
    }

    /** How many calls skipped each member, by member name. */
    public Map<String, Integer> skipped() {
        return skipped;
    }

    /** The distinct reasons each member was skipped for, in the order first met, by member name. */
    public Map<String, List<String>> skipReasons() {
        return skipReasons;
    }

    /** From the first call's start to the last call's end. */
    public Duration span() {
        return span;
    }

    /** The most calls in progress at once. */
    public int peakConcurrency() {
        return peakConcurrency;
    }

    /** The always-on servers the all-server case needs for the peak. */
    public int serversForPeak() {
        return serversForPeak;
    }

    /** What every call would have cost at the pay-per-token price. */
    public BigDecimal allServerless() {
        return allServerless;
    }

    /** What an always-on fleet sized for the peak would have cost over the span. */
    public BigDecimal allServer() {
        return allServer;
    }

    /** The summary as the demo prints it: the table, the route facts, the totals and the comparison. */
    public List<String> lines() {
        List<String> out = new ArrayList<>();
        String header = String.format(
                "%-10s %6s %10s %10s %5s %9s %9s  %s",
                "provider", "calls", "tokens in", "tokens out", "cold", "p50", "p95", "cost");
        out.add(header);
        out.add("-".repeat(header.length() + 8));
        for (ProviderRow r : rows) {
            out.add(String.format(
                    "%-10s %6d %10d %10d %5d %9s %9s  %s",
                    r.provider(),
                    r.calls(),
                    r.inputTokens(),
                    r.outputTokens(),
                    r.coldStarts(),
                    millis(r.p50()),
                    millis(r.p95()),
                    usd(r.cost())));
        }
        out.add("-".repeat(header.length() + 8));
        out.add(String.format(
                "%-10s %6d %10d %10d %5d %9s %9s  %s",
                "total", calls, inputTokens, outputTokens, coldStarts, "", "", usd(totalCost)));
        out.add("");
        StringBuilder skips = new StringBuilder();
        skipped.forEach((member, count) -> skips.append(skips.length() == 0 ? "" : ", ")
                .append(member)
                .append(" ")
                .append(count)
                .append("x (")
                .append(String.join("; ", skipReasons.get(member)))
                .append(")"));
        out.add("Route facts: " + spillovers + " spilled over, " + fallbacks + " fell back, skipped: "
                + (skips.length() == 0 ? "none" : skips));
        return out;
    }

    /**
     * An amount for display, to a millionth of a cent ({@code $0.00033751}); the figures themselves stay exact.
     */
    public static String usd(BigDecimal amount) {
        return Pricing.formatUsd(amount.setScale(8, java.math.RoundingMode.HALF_EVEN));
    }

    private static String millis(Duration d) {
        return d.toMillis() + " ms";
    }
}
