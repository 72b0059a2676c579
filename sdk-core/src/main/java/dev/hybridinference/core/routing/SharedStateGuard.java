package dev.hybridinference.core.routing;

import dev.hybridinference.core.spi.Deadline;
import dev.hybridinference.core.spi.SharedState;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A composite client's way to its {@link SharedState}: every request goes through here, and none fails a
 * call. When the store throws, the answer comes from this instance's own state instead (each operation says
 * what that is), one warning is logged, and the store is left alone for {@link #RETRY_EVERY}; then the next
 * request tries it again, and when it answers, an info line says so and the counters' additions made
 * meanwhile are added to the store, so that no spend is lost.
 *
 * <p>Counters while the store is away: the last total this instance read plus what it added since. Other
 * instances' spend in that time is not seen, so a fleet may overspend a budget by what each instance spends
 * on its own until the store is back.
 */
final class SharedStateGuard {
    private static final Logger LOG = LoggerFactory.getLogger(SharedStateGuard.class);

    /** How long the client runs on its own state after the store failed, before it asks the store again. */
    static final Duration RETRY_EVERY = Duration.ofSeconds(1);

    /** The lease id of a slot granted by this instance alone, while the store is away. */
    static final String LOCAL_LEASE = "";

    /** Counters are swept of expired entries once this many have been written since the last sweep. */
    private static final int SWEEP_EVERY = 1_000;

    private final SharedState store;
    private final String clientId;
    private final LongSupplier nanoTime;
    private final Clock clock;
    private final AtomicBoolean down = new AtomicBoolean();
    private final AtomicBoolean probing = new AtomicBoolean();
    private final AtomicLong fallbacks = new AtomicLong();
    private final AtomicInteger writes = new AtomicInteger();
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();
    private volatile long retryAt;
    private volatile Instant since;
    private volatile String lastError;

    SharedStateGuard(SharedState store, String clientId, LongSupplier nanoTime, Clock clock) {
        this.store = store;
        this.clientId = clientId;
        this.nanoTime = nanoTime;
        this.clock = clock;
    }

    /** What this instance knows of a counter: the store's last total and what it added while the store was away. */
    private static final class Counter {
        long known;
        long pending;
        long expiresAt;
        Duration ttl;
    }

    /** The store's status as the client sees it. */
    SharedStateStatus status() {
        boolean isDown = down.get();
        return new SharedStateStatus(
                store.description(), true, !isDown, isDown ? since : null, lastError, fallbacks.get());
    }

    /**
     * Runs {@code op} on the store, or answers with {@code local} when the store is away (and not yet due for
     * another try) or fails now.
     */
    private <T> T run(Function<SharedState, T> op, Supplier<T> local) {
        if (down.get()) {
            if (nanoTime.getAsLong() - retryAt < 0 || !probing.compareAndSet(false, true)) {
                fallbacks.incrementAndGet();
                return local.get();
            }
            try {
                flushPending();
                T value = op.apply(store);
                recovered();
                try {
                    // What other threads added while this one flushed, thinking the store still away.
                    flushPending();
                } catch (RuntimeException e) {
                    failed(e);
                }
                return value;
            } catch (RuntimeException e) {
                failed(e);
                fallbacks.incrementAndGet();
                return local.get();
            } finally {
                probing.set(false);
            }
        }
        try {
            return op.apply(store);
        } catch (RuntimeException e) {
            failed(e);
            fallbacks.incrementAndGet();
            return local.get();
        }
    }

    private void failed(RuntimeException e) {
        lastError = e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
        retryAt = nanoTime.getAsLong() + Deadline.saturatedNanos(RETRY_EVERY);
        if (down.compareAndSet(false, true)) {
            since = clock.instant();
            LOG.warn(
                    "{}: shared state {} cannot be reached ({}); this instance goes on with its own budgets,"
                            + " circuits, slots and keep-warm pings until it answers again",
                    clientId,
                    store.description(),
                    lastError);
        }
    }

    private void recovered() {
        if (down.compareAndSet(true, false)) {
            LOG.info(
                    "{}: shared state {} answers again (away since {}); state is shared again",
                    clientId,
                    store.description(),
                    since);
            since = null;
        }
    }

    /** Adds to the store what this instance added to counters while it was away. */
    private void flushPending() {
        for (Map.Entry<String, Counter> e : counters.entrySet()) {
            Counter c = e.getValue();
            long amount;
            Duration ttl;
            synchronized (c) {
                amount = c.pending;
                ttl = c.ttl;
            }
            if (amount == 0) {
                continue;
            }
            long total = store.add(e.getKey(), amount, ttl);
            synchronized (c) {
                // Other threads may have added more meanwhile; only what was sent is settled.
                c.pending -= amount;
                c.known = total;
            }
        }
    }

    private Counter counter(String key, Duration ttl) {
        if (writes.incrementAndGet() >= SWEEP_EVERY) {
            writes.set(0);
            long now = nanoTime.getAsLong();
            counters.values().removeIf(c -> {
                synchronized (c) {
                    return c.pending == 0 && c.expiresAt - now <= 0;
                }
            });
        }
        Counter c = counters.computeIfAbsent(key, k -> new Counter());
        synchronized (c) {
            c.ttl = ttl;
            c.expiresAt = nanoTime.getAsLong() + Deadline.saturatedNanos(ttl);
        }
        return c;
    }

    /** Adds to a counter and returns its total; without the store, the last total known plus what was added. */
    long add(String key, long amount, Duration ttl) {
        Counter c = counter(key, ttl);
        return run(
                s -> {
                    long total = s.add(key, amount, ttl);
                    synchronized (c) {
                        c.known = total;
                    }
                    return total;
                },
                () -> {
                    synchronized (c) {
                        c.pending += amount;
                        return c.known + c.pending;
                    }
                });
    }

    /** A counter's total; without the store, the last total known plus what was added since. */
    long get(String key, Duration ttl) {
        Counter c = counter(key, ttl);
        return run(
                s -> {
                    long total = s.get(key);
                    synchronized (c) {
                        c.known = total;
                    }
                    return total;
                },
                () -> {
                    synchronized (c) {
                        return c.known + c.pending;
                    }
                });
    }

    /** Publishes that a circuit opened; without the store, nobody else hears of it. */
    void openCircuit(String key, Duration cooldown) {
        if (cooldown.isZero() || cooldown.isNegative()) {
            return;
        }
        run(
                s -> {
                    s.openCircuit(key, cooldown);
                    return null;
                },
                () -> null);
    }

    /** Publishes that a circuit closed. */
    void closeCircuit(String key) {
        run(
                s -> {
                    s.closeCircuit(key);
                    return null;
                },
                () -> null);
    }

    /** How long another instance's circuit stays open; without the store, it is taken as closed. */
    Optional<Duration> circuitOpen(String key) {
        return run(s -> s.circuitOpen(key), Optional::empty);
    }

    /** A slot's lease; without the store, {@link #LOCAL_LEASE}: this instance's own limit is all there is. */
    Optional<String> acquireSlot(String key, int limit, Duration lease) {
        return run(s -> s.acquireSlot(key, limit, lease), () -> Optional.of(LOCAL_LEASE));
    }

    /** Gives a lease back; without the store, it lapses. */
    void releaseSlot(String key, String lease) {
        if (LOCAL_LEASE.equals(lease)) {
            return;
        }
        run(
                s -> {
                    s.releaseSlot(key, lease);
                    return null;
                },
                () -> null);
    }

    /** The slots leased across instances, or -1 when the store cannot say. */
    int slotsHeld(String key) {
        return run(s -> s.slotsHeld(key), () -> -1);
    }

    /** Takes a claim; without the store, this instance takes it. */
    boolean claim(String key, Duration ttl) {
        return run(s -> s.claim(key, ttl), () -> true);
    }
}
