package dev.hybridinference.core.cost;

import dev.hybridinference.core.Pricing;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;

/**
 * Estimates the instance lifetimes a platform bills under {@link Pricing.PerInstanceSecond} (instances
 * billed from start to scale-in, idle included) from the calls the SDK sees, since the platform does not
 * say how many instances it runs. The rules, each simple enough to recompute by hand:
 *
 * <ul>
 *   <li>{@code minInstances} instances are billed from registration until {@link #stop}.
 *   <li>A call that observed a cold start started an instance at the call's start (unless {@code
 *       maxInstances} are live then). An instance is billed until the end of the last call it served plus
 *       {@code scaleInDelay}.
 *   <li>A call without a cold start ran on the {@code minInstances} when there are any. Otherwise it ran on
 *       the live instance that served a call most recently, and keeps it alive. When no instance is live
 *       at its start, the SDK did not see that instance start: it is counted from the call's start.
 * </ul>
 *
 * <p>Calls are recorded as they end, in any order. An instance dead for an hour before a recorded call
 * started is folded into a running sum, so memory stays bounded by the instances started in the last
 * hour or so. Thread-safe.
 */
public final class InstanceLifetimes {
    /** How long a dead instance is kept for calls recorded late (long calls that started before it died). */
    private static final Duration RETIRE_AFTER = Duration.ofHours(1);

    private final Pricing.PerInstanceSecond pricing;
    private final Instant since;
    private final List<Instance> instances = new ArrayList<>();
    private Duration retired = Duration.ZERO;
    private long started;
    private Instant stoppedAt;

    /**
     * Starts estimating at {@code since}, with the {@code minInstances} of {@code pricing} running from then.
     */
    public InstanceLifetimes(Pricing.PerInstanceSecond pricing, Instant since) {
        this.pricing = Objects.requireNonNull(pricing, "pricing");
        this.since = Objects.requireNonNull(since, "since");
    }

    /** The pricing whose rules apply. */
    public Pricing.PerInstanceSecond pricing() {
        return pricing;
    }

    /**
     * Records one call.
     *
     * @param start when the call started
     * @param end when it ended; an end before the start counts as the start
     * @param coldStart whether the call observed a cold start
     */
    public synchronized void record(Instant start, Instant end, boolean coldStart) {
        Objects.requireNonNull(start, "start");
        Objects.requireNonNull(end, "end");
        if (end.isBefore(start)) {
            end = start;
        }
        retireBefore(start.minus(RETIRE_AFTER));
        if (coldStart && live(start) < pricing.maxInstances()) {
            startInstance(start, end);
            return;
        }
        if (pricing.minInstances() > 0) {
            return; // served by an always-on instance, billed anyway
        }
        Instance latest = null;
        for (Instance i : instances) {
            if (i.aliveAt(start, pricing.scaleInDelay()) && (latest == null || i.lastEnd.isAfter(latest.lastEnd))) {
                latest = i;
            }
        }
        if (latest != null) {
            if (end.isAfter(latest.lastEnd)) {
                latest.lastEnd = end;
            }
        } else {
            startInstance(start, end);
        }
    }

    private void startInstance(Instant start, Instant end) {
        instances.add(new Instance(start, end));
        started++;
    }

    private void retireBefore(Instant limit) {
        for (Iterator<Instance> it = instances.iterator(); it.hasNext(); ) {
            Instance i = it.next();
            Instant until = i.until(pricing.scaleInDelay());
            if (until.isBefore(limit)) {
                retired = retired.plus(Duration.between(i.start, until));
                it.remove();
            }
        }
    }

    /** Instances live at {@code at}: the {@code minInstances} (until stopped) and the started ones not yet scaled in. */
    public synchronized int live(Instant at) {
        int n = stoppedAt == null || at.isBefore(stoppedAt) ? pricing.minInstances() : 0;
        for (Instance i : instances) {
            if (i.aliveAt(at, pricing.scaleInDelay())) {
                n++;
            }
        }
        return n;
    }

    /** Instances started by calls so far (cold starts, and instances found live that were not seen to start). */
    public synchronized long started() {
        return started;
    }

    /**
     * The instance time billed through {@code now}: {@code minInstances} times the time since registration
     * (up to {@link #stop}), plus each started instance's time from its start to the earlier of {@code now}
     * and its last call's end plus {@code scaleInDelay}.
     */
    public synchronized Duration instanceTime(Instant now) {
        Instant end = stoppedAt != null && stoppedAt.isBefore(now) ? stoppedAt : now;
        Duration always = Duration.between(since, end);
        Duration total = always.isNegative() ? Duration.ZERO : always.multipliedBy(pricing.minInstances());
        total = total.plus(retired);
        for (Instance i : instances) {
            Instant until = i.until(pricing.scaleInDelay());
            Instant to = until.isBefore(now) ? until : now;
            if (to.isAfter(i.start)) {
                total = total.plus(Duration.between(i.start, to));
            }
        }
        return total;
    }

    /** What {@link #instanceTime} costs under the pricing. */
    public BigDecimal billed(Instant now) {
        return pricing.instanceCost(instanceTime(now));
    }

    /**
     * The client stopped: the {@code minInstances} stop being billed at {@code at}; started instances are
     * billed until they scale in, as the platform keeps them that long. Idempotent: the first stop counts.
     */
    public synchronized void stop(Instant at) {
        if (stoppedAt == null) {
            stoppedAt = Objects.requireNonNull(at, "at");
        }
    }

    /** When it was stopped, or null. */
    synchronized Instant stoppedAt() {
        return stoppedAt;
    }

    /** When estimating started. */
    public Instant since() {
        return since;
    }

    private static final class Instance {
        final Instant start;
        Instant lastEnd;

        Instance(Instant start, Instant lastEnd) {
            this.start = start;
            this.lastEnd = lastEnd;
        }

        Instant until(Duration scaleInDelay) {
            return lastEnd.plus(scaleInDelay);
        }

        boolean aliveAt(Instant at, Duration scaleInDelay) {
            return !at.isBefore(start) && at.isBefore(until(scaleInDelay));
        }
    }
}
