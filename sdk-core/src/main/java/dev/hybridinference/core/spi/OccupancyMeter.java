package dev.hybridinference.core.spi;

import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * Attributes the time of one always-on instance to the calls that share it. While {@code n} calls are
 * in flight, each is charged {@code 1/n} of the elapsed time, so the charges of all calls add up to
 * exactly the time the instance was busy, never more. Thread-safe; O(1) per call.
 */
public final class OccupancyMeter {
    private final LongSupplier nanoTime;
    private long last;
    private int active;
    private double virtualNanos;

    /** A meter on {@link System#nanoTime()}. */
    public OccupancyMeter() {
        this(System::nanoTime);
    }

    /** A meter on the given monotonic nanosecond source, for tests. */
    public OccupancyMeter(LongSupplier nanoTime) {
        this.nanoTime = nanoTime;
        this.last = nanoTime.getAsLong();
    }

    /** A call starts occupying the instance. Pass the ticket to {@link #exit} when it ends. */
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

    /** Calls currently occupying the instance. */
    public synchronized int active() {
        return active;
    }

    private void advance() {
        long now = nanoTime.getAsLong();
        if (active > 0) {
            virtualNanos += (double) (now - last) / active;
        }
        last = now;
    }

    /** One call's stay on the instance. */
    public static final class Ticket {
        private final double start;
        private Duration share;

        private Ticket(double start) {
            this.start = start;
        }
    }
}
