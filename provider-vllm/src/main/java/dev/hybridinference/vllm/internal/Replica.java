package dev.hybridinference.vllm.internal;

import dev.hybridinference.core.http.OpenAiTransport;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.OccupancyMeter;
import dev.hybridinference.vllm.ReplicaStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One server of a provider and what the client knows of it: its health, its last load figures and the
 * calls in flight. Thread-safe; state changes report whether they changed anything, so the caller logs
 * each change once. Internal.
 */
public final class Replica {
    /** I/O failures of {@code /health} in a row, each already retried on a fresh connection, before it counts. */
    static final int HEALTH_FAILURES_TO_MARK_DOWN = 2;

    /**
     * The replica's load figures from one scrape.
     *
     * @param running requests running, NaN when unknown
     * @param waiting requests queued, NaN when unknown
     * @param kvCacheUsage KV-cache usage from 0 to 1, NaN when unknown
     * @param at when {@code /metrics} was last read with a known vocabulary, or null
     * @param signal the vocabulary the figures came from, or {@link LoadVocabulary#NONE}
     */
    public record Metrics(double running, double waiting, double kvCacheUsage, Instant at, String signal) {
        /** Before any scrape. */
        static final Metrics UNKNOWN = new Metrics(Double.NaN, Double.NaN, Double.NaN, null, LoadVocabulary.NONE);

        /** Whether the figures came from a known vocabulary (rather than being unknown). */
        public boolean known() {
            return !LoadVocabulary.NONE.equals(signal);
        }
    }

    private final int index;
    private final OpenAiTransport.Server server;
    private final Map<String, String> attributes;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final OccupancyMeter meter = new OccupancyMeter();
    private volatile long downUntilNanos;
    private volatile boolean markedDown;
    private volatile Metrics metrics = Metrics.UNKNOWN;
    private volatile String noSignalReason = "not scraped yet";
    private boolean noSignalReported;
    private volatile ReplicaStatus.Health health = ReplicaStatus.Health.UNCHECKED;
    private int healthIoFailures;
    private String monitorFailure;

    /** A replica at {@code server}. */
    public Replica(int index, OpenAiTransport.Server server) {
        this.index = index;
        this.server = server;
        this.attributes = Map.of("replica", server.label());
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

    /** The attributes of a result this replica produced: {@code replica}, its label. Built once. */
    public Map<String, String> attributes() {
        return attributes;
    }

    /** Whether it should take traffic now: its health check is not failing and no cooldown runs. */
    public boolean isUp() {
        return health != ReplicaStatus.Health.FAILING && System.nanoTime() - downUntilNanos >= 0;
    }

    /**
     * Skips it for {@code cooldownNanos} after a failed call.
     *
     * @return true when it was taking traffic until now, so the caller logs the change once
     */
    public synchronized boolean markDown(long cooldownNanos) {
        boolean wasUp = isUp();
        downUntilNanos = System.nanoTime() + cooldownNanos;
        markedDown = true;
        return wasUp;
    }

    /**
     * A call succeeded on it.
     *
     * @return true when it had been marked down before, so the caller logs its return once
     */
    public boolean callSucceeded() {
        if (!markedDown) {
            return false; // the common case, without the lock
        }
        return comeBack();
    }

    private synchronized boolean comeBack() {
        if (markedDown && isUp()) {
            markedDown = false;
            return true;
        }
        return false;
    }

    /**
     * {@code /health} answered 2xx: the replica is healthy, and a cooldown from a failed call ends early.
     *
     * @return true when this is news (it was failing, marked down, or never checked)
     */
    public synchronized boolean healthPassed() {
        boolean news = health != ReplicaStatus.Health.PASSING || markedDown;
        health = ReplicaStatus.Health.PASSING;
        healthIoFailures = 0;
        markedDown = false;
        downUntilNanos = System.nanoTime();
        return news;
    }

    /**
     * {@code /health} gave no verdict (404 or 405: the server has no such route, as with Ollama; or another
     * 4xx). The replica stays as its calls leave it: a failed call still marks it down for the cooldown.
     *
     * @return true when this is news
     */
    public synchronized boolean healthUnavailable() {
        boolean news = health != ReplicaStatus.Health.NO_SIGNAL;
        health = ReplicaStatus.Health.NO_SIGNAL;
        healthIoFailures = 0;
        return news;
    }

    /**
     * {@code /health} failed: with {@code ioFailure} false the server itself answered 5xx, which counts at
     * once; an I/O failure (refused, reset, timed out) counts only from the {@value
     * #HEALTH_FAILURES_TO_MARK_DOWN}nd in a row, so one stale connection never takes a replica out.
     *
     * @return true when the replica has just been taken out
     */
    public synchronized boolean healthFailed(boolean ioFailure) {
        if (ioFailure && ++healthIoFailures < HEALTH_FAILURES_TO_MARK_DOWN) {
            return false;
        }
        boolean news = health != ReplicaStatus.Health.FAILING;
        health = ReplicaStatus.Health.FAILING;
        return news;
    }

    /** The state of the last {@code /health} check. */
    public ReplicaStatus.Health health() {
        return health;
    }

    /**
     * Records a scrape read with a known vocabulary.
     *
     * @return true when the replica had been reported as having no load signal, so the caller logs its
     *     return once
     */
    public synchronized boolean metrics(Metrics m) {
        boolean recovered = noSignalReported;
        metrics = m;
        noSignalReason = null;
        noSignalReported = false;
        return recovered;
    }

    /**
     * Records that the last scrape gave no load figures: the previous ones are dropped (a replica whose
     * {@code /metrics} stopped answering must not be ranked on old numbers) while the time of the last good
     * scrape is kept.
     *
     * @return true the first time in a row, so the caller warns once rather than on every scrape
     */
    public synchronized boolean noLoadSignal(String reason) {
        boolean news = !noSignalReported;
        metrics = new Metrics(Double.NaN, Double.NaN, Double.NaN, metrics.at(), LoadVocabulary.NONE);
        noSignalReason = reason;
        noSignalReported = true;
        return news;
    }

    /**
     * Records the outcome of a monitor pass over this replica: null when it ran cleanly, else a short
     * description of what went wrong.
     *
     * @return true when the outcome differs from the previous pass's, so the caller logs it once
     */
    public synchronized boolean monitorOutcome(String failure) {
        boolean news = failure == null ? monitorFailure != null : !failure.equals(monitorFailure);
        monitorFailure = failure;
        return news;
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

    /** A call starts on this replica; release the slot when the attempt ends, whatever its outcome. */
    public Slot enter(CallContext ctx) {
        inFlight.incrementAndGet();
        return new Slot(meter.enter(), ctx);
    }

    /** One attempt's occupancy of the replica. */
    public final class Slot {
        private final OccupancyMeter.Ticket ticket;
        private final CallContext ctx;
        private Duration share;

        private Slot(OccupancyMeter.Ticket ticket, CallContext ctx) {
            this.ticket = ticket;
            this.ctx = ctx;
        }

        /**
         * Ends the occupancy and reports the attempt's share of instance time to the call's context, the
         * first time only; returns the share. Idempotent, so every path that ends an attempt may call it.
         */
        public synchronized Duration release() {
            if (share == null) {
                share = meter.exit(ticket);
                inFlight.decrementAndGet();
                ctx.addInstanceTime(share);
            }
            return share;
        }
    }

    /** A public view of the state. */
    public ReplicaStatus status() {
        Metrics m = metrics;
        return new ReplicaStatus(
                server.label(),
                isUp(),
                inFlight.get(),
                m.running(),
                m.waiting(),
                m.kvCacheUsage(),
                m.at(),
                health,
                m.signal(),
                m.known() ? null : noSignalReason);
    }
}
