package dev.hybridinference.planner;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What one scenario costs and how it performs over one traffic. Money is exact {@link BigDecimal} USD, read
 * from the ledger the simulated calls recorded into; latencies are the simulated ones.
 *
 * @param name the scenario's name ({@code all-serverless}, {@code hybrid}, {@code your-policy}, ...)
 * @param description what the scenario runs, in a sentence
 * @param span the time the traffic covers
 * @param requests requests replayed
 * @param failed requests that got no answer (every candidate refused or throttled them)
 * @param tokens input plus output tokens of the answered requests
 * @param cost everything billed over the span: calls, plus capacity billed while idle
 * @param idleCost the part of {@code cost} that is capacity billed without a call on it
 * @param coldStarts requests that waited for an instance to start
 * @param p50 median latency of the answered requests (queueing and cold starts included)
 * @param p95 95th percentile latency
 * @param p99 99th percentile latency
 * @param serverUtilization the share of always-on servers' request slots (instances times concurrency)
 *     that requests kept busy, from 0 to 1; NaN when the scenario has none
 * @param timeline the span cut into equal intervals, in order
 * @param shortfalls why the scenario cannot serve the traffic as asked (requests failed, a latency objective
 *     missed), in words; empty when it can
 * @param costByProvider {@code cost} split by provider: each provider's calls plus its idle capacity, in the
 *     order the scenario lists its providers
 */
public record ScenarioResult(
        String name,
        String description,
        Duration span,
        long requests,
        long failed,
        long tokens,
        BigDecimal cost,
        BigDecimal idleCost,
        long coldStarts,
        Duration p50,
        Duration p95,
        Duration p99,
        double serverUtilization,
        List<Interval> timeline,
        List<String> shortfalls,
        Map<String, BigDecimal> costByProvider) {
    private static final BigDecimal DAY_NANOS =
            BigDecimal.valueOf(Duration.ofDays(1).toNanos());

    /** Checks that nothing is missing and copies the timeline. */
    public ScenarioResult {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(span, "span");
        Objects.requireNonNull(cost, "cost");
        Objects.requireNonNull(idleCost, "idleCost");
        Objects.requireNonNull(p50, "p50");
        Objects.requireNonNull(p95, "p95");
        Objects.requireNonNull(p99, "p99");
        timeline = List.copyOf(timeline);
        shortfalls = List.copyOf(shortfalls);
        costByProvider = Collections.unmodifiableMap(new LinkedHashMap<>(costByProvider));
    }

    /** Whether it serves the traffic as asked: no shortfall. Only such scenarios compete on cost. */
    public boolean isViable() {
        return shortfalls.isEmpty();
    }

    /** Cost per day: {@code cost} scaled from the span to 24 hours, at 12 decimal places. */
    public BigDecimal costPerDay() {
        return perDay(cost);
    }

    /** Idle cost per day, scaled like {@link #costPerDay()}. */
    public BigDecimal idleCostPerDay() {
        return perDay(idleCost);
    }

    /** Cost per million answered tokens, at 12 decimal places; zero without tokens. */
    public BigDecimal costPerMillionTokens() {
        return tokens == 0
                ? BigDecimal.ZERO
                : cost.multiply(BigDecimal.valueOf(1_000_000))
                        .divide(BigDecimal.valueOf(tokens), 12, RoundingMode.HALF_EVEN);
    }

    /** The share of requests that hit a cold start, from 0 to 1. */
    public double coldStartShare() {
        return requests == 0 ? 0 : (double) coldStarts / requests;
    }

    private BigDecimal perDay(BigDecimal amount) {
        long nanos = span.toNanos();
        return nanos == 0
                ? BigDecimal.ZERO
                : amount.multiply(DAY_NANOS).divide(BigDecimal.valueOf(nanos), 12, RoundingMode.HALF_EVEN);
    }

    /**
     * One interval of the span.
     *
     * @param offset from the traffic's start to the interval's start
     * @param length the interval's length
     * @param requests requests that arrived in it
     * @param cost what the ledger recorded during it (calls as they ended), plus the idle capacity billed
     *     during it
     * @param p50 median latency of the requests that arrived in it; zero when none did
     * @param p95 95th percentile latency of those requests; zero when none did
     */
    public record Interval(
            Duration offset, Duration length, long requests, BigDecimal cost, Duration p50, Duration p95) {
        /** Checks that nothing is missing. */
        public Interval {
            Objects.requireNonNull(offset, "offset");
            Objects.requireNonNull(length, "length");
            Objects.requireNonNull(cost, "cost");
            Objects.requireNonNull(p50, "p50");
            Objects.requireNonNull(p95, "p95");
        }
    }
}
