package dev.hybridinference.vllm.internal;

import dev.hybridinference.core.internal.openai.OpenAiTransport;
import dev.hybridinference.core.spi.OccupancyMeter;
import dev.hybridinference.vllm.ReplicaStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicInteger;

/** One vLLM server of a provider and what the client knows of it. Thread-safe. Internal. */
public final class Replica {
    /** The replica's load figures from one scrape. */
    public record Metrics(double running, double waiting, double kvCacheUsage, Instant at) {
        /** Before any scrape. */
        static final Metrics UNKNOWN = new Metrics(Double.NaN, Double.NaN, Double.NaN, null);
    }

    private final int index;
    private final OpenAiTransport.Server server;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final OccupancyMeter meter = new OccupancyMeter();
    private volatile long downUntilNanos;
    private volatile boolean healthFailed;
    private volatile Metrics metrics = Metrics.UNKNOWN;

    /** A replica at {@code server}. */
    public Replica(int index, OpenAiTransport.Server server) {
        this.index = index;
        this.server = server;
    }

    /** Position in the configured list. */
    public int index() {
        return index;
    }

    /** The server's URLs. */
    public OpenAiTransport.Server server() {
        return server;
    }

    /** The base URL without credentials. */
    public String label() {
        return server.label();
    }

    /** Whether it should take traffic now. */
    public boolean isUp() {
        return !healthFailed && System.nanoTime() - downUntilNanos >= 0;
    }

    /** Skips it for {@code cooldownNanos} after a failure. */
    public void markDown(long cooldownNanos) {
        downUntilNanos = System.nanoTime() + cooldownNanos;
    }

    /** Records the result of a {@code /health} check; a passing check also lifts a cooldown. */
    public void health(boolean ok) {
        healthFailed = !ok;
        if (ok) {
            downUntilNanos = System.nanoTime();
        }
    }

    /** Records a scrape. */
    public void metrics(Metrics m) {
        this.metrics = m;
    }

    /** The last scrape. */
    public Metrics metrics() {
        return metrics;
    }

    /** Calls in flight from this client. */
    public int inFlight() {
        return inFlight.get();
    }

    /** The load used to rank replicas: queued requests plus this client's calls in flight. */
    public double load() {
        double waiting = metrics.waiting();
        return (Double.isNaN(waiting) ? 0 : waiting) + inFlight.get();
    }

    /** A call starts on this replica; release the slot when it ends. */
    public Slot enter() {
        inFlight.incrementAndGet();
        return new Slot(meter.enter());
    }

    /** One call's occupancy of the replica. */
    public final class Slot {
        private final OccupancyMeter.Ticket ticket;
        private Duration share;

        private Slot(OccupancyMeter.Ticket ticket) {
            this.ticket = ticket;
        }

        /** Ends the occupancy; returns the call's share of instance time. Idempotent. */
        public synchronized Duration release() {
            if (share == null) {
                share = meter.exit(ticket);
                inFlight.decrementAndGet();
            }
            return share;
        }
    }

    /** A public view of the state. */
    public ReplicaStatus status() {
        Metrics m = metrics;
        return new ReplicaStatus(
                server.label(), isUp(), inFlight.get(), m.running(), m.waiting(), m.kvCacheUsage(), m.at());
    }
}
