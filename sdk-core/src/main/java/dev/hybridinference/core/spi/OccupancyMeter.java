package dev.hybridinference.core.spi;

import java.time.Duration;
import java.util.Objects;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;

/**
 * Attributes the time of always-on instances to the calls that share them. With {@code N} instances
 * behind one endpoint and {@code n} calls in flight, each call is charged {@code min(1, N/n)} of the
 * elapsed time: a full instance while there are no more calls than instances ({@code n <= N}), an equal
 * share of the {@code N} instances when there are more ({@code N/n}). The charges of all calls therefore
 * add up to the instance time the calls kept busy, never more than {@code N} times the elapsed time. With
 * one instance this is the familiar {@code 1/n} split.
 *
 * <p>The instance count may change over time (instances a platform starts and stops): it is read at every
 * entry and exit, and holds in between. A count below one counts as one while a call is in flight, since
 * some instance serves it. Thread-safe; O(1) per call.
 */
public final class OccupancyMeter {
    private final LongSupplier nanoTime;
    private final IntSupplier instances;
    private long last;
    private int active;
    private int currentInstances;
    private double virtualNanos;

    /** A meter of one instance on {@link System#nanoTime()}. */
    public OccupancyMeter() {
        this(System::nanoTime);
    }

    /** A meter of one instance on the given monotonic nanosecond source, for tests. */
    public OccupancyMeter(LongSupplier nanoTime) {
        this(() -> 1, nanoTime);
    }

    /**
     * A meter of {@code instances} instances behind one endpoint on {@link System#nanoTime()}.
     *
     * @throws IllegalArgumentException when {@code instances < 1}
     */
    public OccupancyMeter(int instances) {
        this(fixed(instances), System::nanoTime);
    }

    /**
     * A meter of a changing number of instances.
     *
     * @param instances how many instances serve the endpoint now; read under the meter's lock, so it must be
     *     quick and must not call back into the meter
     * @param nanoTime a monotonic nanosecond source
     */
    public OccupancyMeter(IntSupplier instances, LongSupplier nanoTime) {
        this.instances = Objects.requireNonNull(instances, "instances");
        this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
        this.last = nanoTime.getAsLong();
        this.currentInstances = 1;
    }

    private static IntSupplier fixed(int instances) {
        if (instances < 1) {
            throw new IllegalArgumentException("instances must be at least 1, got " + instances);
        }
        return () -> instances;
    }

    /** A call starts occupying the instances. Pass the ticket to {@link #exit} when it ends. */
    public synchronized Ticket enter() {
        advance();
        active++;
        return new Ticket(virtualNanos);
    }

    /** The call holding {@code ticket} ends; returns its share of instance time. Idempotent. */
    public synchronized Duration exit(Ticket ticket) {
        if (ticket.share != null) {
            return ticket.share;
        }
        advance();
        active--;
        ticket.share = Duration.ofNanos(Math.round(virtualNanos - ticket.start));
        return ticket.share;
    }

    /** Calls currently occupying the instances. */
    public synchronized int active() {
        return active;
    }

    /**
     * Charges the time since the last event at the instance count read then, and reads the count for the
     * time from now on. {@code virtualNanos} is the time charged to each call in flight throughout.
     */
    private void advance() {
        long now = nanoTime.getAsLong();
        if (active > 0) {
            double elapsed = now - last;
            virtualNanos += active <= currentInstances ? elapsed : elapsed * currentInstances / active;
        }
        last = now;
        currentInstances = Math.max(1, instances.getAsInt());
    }

    /** One call's stay on the instances. */
    public static final class Ticket {
        private final double start;
        private Duration share;

        private Ticket(double start) {
            this.start = start;
        }
    }
}
