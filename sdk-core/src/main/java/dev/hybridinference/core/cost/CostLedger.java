package dev.hybridinference.core.cost;

import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentNavigableMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * Records the receipt of every call and answers cost totals by provider, model, tag and time window.
 * Thread-safe; totals are exact sums of the receipts' costs.
 *
 * <p>This in-memory ledger keeps all-time totals and per-minute totals for {@link #retention()} (31
 * days unless set), so window queries have minute resolution: a window covers each whole minute its
 * start and end fall in.
 *
 * <p>For capacity billed per instance hour or instance-second, {@link #registerCapacity} starts the meter;
 * {@link #capacity} then reports what the capacity cost over its uptime and how much of it calls used.
 */
public final class CostLedger {
    private static final Duration DEFAULT_RETENTION = Duration.ofDays(31);

    private final Clock clock;
    private final Duration retention;
    private final Bucket allTime = new Bucket();
    private final ConcurrentNavigableMap<Long, Bucket> minutes = new ConcurrentSkipListMap<>();
    private final Map<String, Capacity> capacities = new ConcurrentHashMap<>();
    private volatile long prunedBelow = Long.MIN_VALUE;
    private volatile long nextPruneMillis = Long.MIN_VALUE;
    /** The bucket of the minute recorded last: the next receipt most likely falls in it too. */
    private volatile MinuteBucket lastMinute = new MinuteBucket(Long.MIN_VALUE, null);

    /** A minute and its bucket in {@link #minutes}. */
    private static final class MinuteBucket {
        final long minute;
        final Bucket bucket;

        MinuteBucket(long minute, Bucket bucket) {
            this.minute = minute;
            this.bucket = bucket;
        }
    }

    /** A ledger on the system clock with the default retention. */
    public CostLedger() {
        this(Clock.systemUTC(), DEFAULT_RETENTION);
    }

    /**
     * A ledger on {@code clock}, keeping per-minute totals for {@code retention}.
     *
     * @param clock the clock that dates capacity uptime and prunes old minutes
     * @param retention how long per-minute totals are kept; all-time totals are kept regardless
     */
    public CostLedger(Clock clock, Duration retention) {
        this.clock = Objects.requireNonNull(clock, "clock");
        if (retention.isNegative() || retention.isZero()) {
            throw new IllegalArgumentException("retention must be positive, got " + retention);
        }
        this.retention = retention;
    }

    /** How long per-minute totals are kept. */
    public Duration retention() {
        return retention;
    }

    /** Records one call's cost, dated by its receipt's start time. */
    public void record(Receipt receipt) {
        Objects.requireNonNull(receipt, "receipt");
        allTime.add(receipt);
        Capacity c = capacities.get(receipt.providerId());
        if (c != null) {
            c.record(receipt);
        }
        long minute = Math.floorDiv(receipt.startedAt().getEpochSecond(), 60);
        minuteBucket(minute).add(receipt);
        prune();
    }

    /**
     * Records activity on a provider's capacity that is no call of the application's: a keep-warm ping, say.
     * It costs nothing itself and adds no call to the totals, but under {@link Pricing.PerInstanceSecond} it
     * keeps an instance alive in the ledger's estimate, as it does on the platform, so {@link #capacity}
     * shows what keeping warm costs.
     *
     * @param providerId the provider whose capacity was busy
     * @param start when the activity started
     * @param end when it ended
     */
    public void recordActivity(String providerId, Instant start, Instant end) {
        Capacity c = capacities.get(Objects.requireNonNull(providerId, "providerId"));
        if (c != null) {
            c.activity(start, end);
        }
    }

    /**
     * The bucket of {@code minute}, created if need be. The last one used is kept at hand, so most calls skip
     * the lookup in {@link #minutes}; it stands only while its minute is not pruned, since pruning takes a
     * minute's bucket out of the map and a receipt added to it then would be lost to window queries.
     */
    private Bucket minuteBucket(long minute) {
        MinuteBucket last = lastMinute;
        if (last.minute == minute && minute >= prunedBelow) {
            return last.bucket;
        }
        Bucket b = minutes.computeIfAbsent(minute, m -> new Bucket());
        lastMinute = new MinuteBucket(minute, b);
        return b;
    }

    private void prune() {
        // Minutes age out once a minute: skip the Instant arithmetic on the other calls of the minute.
        long nowMillis = clock.millis();
        if (nowMillis < nextPruneMillis) {
            return;
        }
        nextPruneMillis = nowMillis - Math.floorMod(nowMillis, 60_000L) + 60_000L;
        long oldest = Math.floorDiv(clock.instant().minus(retention).getEpochSecond(), 60);
        if (oldest > prunedBelow) {
            prunedBelow = oldest;
            minutes.headMap(oldest).clear();
        }
    }

    /** Totals of every call recorded. */
    public LedgerTotals totals() {
        return allTime.snapshot();
    }

    /** Totals of the calls that started in {@code [from, to)}, at minute resolution. */
    public LedgerTotals totals(Instant from, Instant to) {
        long first = Math.floorDiv(from.getEpochSecond(), 60);
        long last = Math.floorDiv(to.getEpochSecond() - (to.getNano() == 0 ? 1 : 0), 60);
        Bucket sum = new Bucket();
        if (last >= first) {
            for (Bucket b : minutes.subMap(first, true, last, true).values()) {
                sum.merge(b);
            }
        }
        return sum.snapshot();
    }

    /** The summed cost of every call recorded. */
    public BigDecimal total() {
        return allTime.total();
    }

    /**
     * Starts metering the capacity of a provider billed for instance time: from now on {@link #capacity}
     * reports its bill. Under {@link Pricing.PerInstanceHour} the configured instances are billed for the
     * uptime; under {@link Pricing.PerInstanceSecond} the ledger estimates the instances' lifetimes from
     * the receipts recorded for the provider (see {@link InstanceLifetimes}) and labels the report an
     * estimate. Registering the same provider again replaces its pricing and restarts its uptime.
     * Providers built on {@link dev.hybridinference.core.spi.AbstractProviderClient} are registered when
     * they are built, and stopped when they close.
     *
     * @return whether the pricing bills instance time and so was registered; pricing that does not (per
     *     token, per compute time, amortized) has no capacity to report
     */
    public boolean registerCapacity(String providerId, Pricing pricing) {
        Objects.requireNonNull(providerId, "providerId");
        Objects.requireNonNull(pricing, "pricing");
        Instant now = clock.instant();
        InstanceLifetimes lifetimes;
        if (pricing instanceof Pricing.PerInstanceSecond) {
            lifetimes = new InstanceLifetimes((Pricing.PerInstanceSecond) pricing, now);
        } else if (pricing instanceof Pricing.PerInstanceHour) {
            lifetimes = null;
        } else {
            return false;
        }
        capacities.put(providerId, new Capacity(pricing, now, allTime.provider(providerId), lifetimes));
        return true;
    }

    /** Stops the uptime of a provider's capacity (its client closed); the report keeps its last figures. */
    public void stopCapacity(String providerId) {
        Capacity c = capacities.get(providerId);
        if (c != null) {
            c.stop(clock.instant());
        }
    }

    /**
     * The bill of a provider's capacity since it was registered, split into attributed and idle cost;
     * empty when the provider registered none.
     */
    public Optional<CapacityReport> capacity(String providerId) {
        Capacity c = capacities.get(providerId);
        if (c == null) {
            return Optional.empty();
        }
        return Optional.of(c.report(providerId, clock.instant(), allTime.provider(providerId)));
    }

    /** One provider's registered capacity. Thread-safe. */
    private static final class Capacity {
        private final Pricing pricing;
        private final Instant since;
        private final BigDecimal attributedBefore;
        private final InstanceLifetimes lifetimes;
        private volatile Instant stoppedAt;

        Capacity(Pricing pricing, Instant since, BigDecimal attributedBefore, InstanceLifetimes lifetimes) {
            this.pricing = pricing;
            this.since = since;
            this.attributedBefore = attributedBefore;
            this.lifetimes = lifetimes;
        }

        synchronized void stop(Instant at) {
            if (stoppedAt == null) {
                stoppedAt = at;
                if (lifetimes != null) {
                    lifetimes.stop(at);
                }
            }
        }

        void activity(Instant start, Instant end) {
            if (lifetimes != null && !start.isBefore(since)) {
                lifetimes.record(start, end, false);
            }
        }

        void record(Receipt r) {
            if (lifetimes != null && !r.startedAt().isBefore(since)) {
                lifetimes.record(
                        r.startedAt(),
                        r.startedAt().plus(r.totalTime()),
                        r.coldStart().observed());
            }
        }

        CapacityReport report(String providerId, Instant now, BigDecimal attributedNow) {
            Instant stopped = stoppedAt;
            Instant end = stopped != null && stopped.isBefore(now) ? stopped : now;
            Duration uptime = Duration.between(since, end);
            if (uptime.isNegative()) {
                uptime = Duration.ZERO;
            }
            BigDecimal attributed = attributedNow.subtract(attributedBefore);
            BigDecimal billed;
            Duration instanceTime;
            int instances;
            if (lifetimes != null) {
                instanceTime = lifetimes.instanceTime(now);
                billed = lifetimes.pricing().instanceCost(instanceTime);
                instances = lifetimes.live(now);
            } else {
                Pricing.PerInstanceHour hourly = (Pricing.PerInstanceHour) pricing;
                instanceTime = uptime.multipliedBy(hourly.instances());
                billed = hourly.capacityCost(uptime);
                instances = stopped != null ? 0 : hourly.instances();
            }
            return new CapacityReport(
                    providerId,
                    uptime,
                    billed,
                    attributed,
                    billed.subtract(attributed),
                    instanceTime,
                    instances,
                    lifetimes != null && lifetimes.pricing().rate().signum() != 0);
        }
    }

    /**
     * Running sums. Each sum is an {@link AtomicReference} updated by compare-and-set, so a thread
     * preempted in the middle of an update never blocks the others.
     */
    private static final class Bucket {
        private final LongAdder calls = new LongAdder();
        private final Map<String, AtomicReference<BigDecimal>> byProvider = new ConcurrentHashMap<>();
        private final Map<String, AtomicReference<BigDecimal>> byModel = new ConcurrentHashMap<>();
        private final Map<String, Map<String, AtomicReference<BigDecimal>>> byTag = new ConcurrentHashMap<>();

        private static void add(Map<String, AtomicReference<BigDecimal>> map, String key, BigDecimal cost) {
            AtomicReference<BigDecimal> sum = map.get(key);
            if (sum == null) {
                sum = map.computeIfAbsent(key, k -> new AtomicReference<>(BigDecimal.ZERO));
            }
            sum.accumulateAndGet(cost, BigDecimal::add);
        }

        void add(Receipt r) {
            BigDecimal cost = r.cost();
            add(byProvider, r.providerId(), cost);
            add(byModel, r.model(), cost);
            if (!r.tags().isEmpty()) {
                r.tags().forEach((k, v) -> add(byTag.computeIfAbsent(k, x -> new ConcurrentHashMap<>()), v, cost));
            }
            calls.increment();
        }

        void merge(Bucket other) {
            other.byProvider.forEach((k, v) -> add(byProvider, k, v.get()));
            other.byModel.forEach((k, v) -> add(byModel, k, v.get()));
            other.byTag.forEach((k, m) ->
                    m.forEach((v, c) -> add(byTag.computeIfAbsent(k, x -> new ConcurrentHashMap<>()), v, c.get())));
            calls.add(other.calls.sum());
        }

        BigDecimal provider(String id) {
            AtomicReference<BigDecimal> sum = byProvider.get(id);
            return sum == null ? BigDecimal.ZERO : sum.get();
        }

        BigDecimal total() {
            BigDecimal t = BigDecimal.ZERO;
            for (AtomicReference<BigDecimal> v : byProvider.values()) {
                t = t.add(v.get());
            }
            return t;
        }

        private static Map<String, BigDecimal> values(Map<String, AtomicReference<BigDecimal>> map) {
            Map<String, BigDecimal> out = new HashMap<>();
            map.forEach((k, v) -> out.put(k, v.get()));
            return out;
        }

        LedgerTotals snapshot() {
            Map<String, Map<String, BigDecimal>> tags = new HashMap<>();
            byTag.forEach((k, m) -> tags.put(k, values(m)));
            Map<String, BigDecimal> providers = values(byProvider);
            BigDecimal total = providers.values().stream().reduce(BigDecimal.ZERO, BigDecimal::add);
            return new LedgerTotals(calls.sum(), total, providers, values(byModel), tags);
        }
    }
}
