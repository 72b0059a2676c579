package dev.hybridinference.core.spi;

import java.time.Duration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;

/**
 * {@link SharedState} in this process's memory, expiring entries on a {@link TimeSource}'s nanosecond
 * counter. One lock guards everything: each operation is a few map lookups. Expired entries are dropped when
 * met, and all of them once the maps have grown by a thousand entries since the last sweep.
 */
final class InMemorySharedState implements SharedState {
    private static final int SWEEP_EVERY = 1_000;

    private final TimeSource time;
    private final Map<String, Entry> counters = new HashMap<>();
    private final Map<String, Long> circuits = new HashMap<>();
    private final Map<String, Map<String, Long>> slots = new HashMap<>();
    private final Map<String, Long> claims = new HashMap<>();
    private int writes;

    InMemorySharedState(TimeSource time) {
        this.time = time;
    }

    /** A counter and when it may be dropped. */
    private static final class Entry {
        long value;
        long expiresAt;
    }

    private long expiry(long now, Duration ttl) {
        return now + Math.max(1, Deadline.saturatedNanos(ttl));
    }

    private static boolean live(Long expiresAt, long now) {
        return expiresAt != null && expiresAt - now > 0;
    }

    @Override
    public synchronized long add(String key, long amount, Duration ttl) {
        Objects.requireNonNull(key, "key");
        long now = time.nanoTime();
        sweepNow(now);
        Entry e = counters.get(key);
        if (e == null || e.expiresAt - now <= 0) {
            e = new Entry();
            counters.put(key, e);
        }
        e.value = Math.addExact(e.value, amount);
        e.expiresAt = expiry(now, ttl);
        return e.value;
    }

    @Override
    public synchronized long get(String key) {
        Entry e = counters.get(key);
        return e == null || e.expiresAt - time.nanoTime() <= 0 ? 0 : e.value;
    }

    @Override
    public synchronized void openCircuit(String key, Duration cooldown) {
        long now = time.nanoTime();
        sweepNow(now);
        circuits.put(Objects.requireNonNull(key, "key"), expiry(now, cooldown));
    }

    @Override
    public synchronized void closeCircuit(String key) {
        circuits.remove(key);
    }

    @Override
    public synchronized Optional<Duration> circuitOpen(String key) {
        Long until = circuits.get(key);
        long now = time.nanoTime();
        if (!live(until, now)) {
            circuits.remove(key);
            return Optional.empty();
        }
        return Optional.of(Duration.ofNanos(until - now));
    }

    @Override
    public synchronized Optional<String> acquireSlot(String key, int limit, Duration lease) {
        Objects.requireNonNull(key, "key");
        long now = time.nanoTime();
        sweepNow(now);
        Map<String, Long> held = slots.computeIfAbsent(key, k -> new HashMap<>());
        held.values().removeIf(until -> !live(until, now));
        if (held.size() >= limit) {
            return Optional.empty();
        }
        String id = UUID.randomUUID().toString();
        held.put(id, expiry(now, lease));
        return Optional.of(id);
    }

    @Override
    public synchronized void releaseSlot(String key, String lease) {
        Map<String, Long> held = slots.get(key);
        if (held != null) {
            held.remove(lease);
        }
    }

    @Override
    public synchronized int slotsHeld(String key) {
        Map<String, Long> held = slots.get(key);
        if (held == null) {
            return 0;
        }
        long now = time.nanoTime();
        held.values().removeIf(until -> !live(until, now));
        return held.size();
    }

    @Override
    public synchronized boolean claim(String key, Duration ttl) {
        Objects.requireNonNull(key, "key");
        long now = time.nanoTime();
        sweepNow(now);
        if (live(claims.get(key), now)) {
            return false;
        }
        claims.put(key, expiry(now, ttl));
        return true;
    }

    /** Drops every expired entry once every {@link #SWEEP_EVERY} writes, so that old windows do not pile up. */
    private void sweepNow(long now) {
        if (++writes < SWEEP_EVERY) {
            return;
        }
        writes = 0;
        counters.values().removeIf(e -> e.expiresAt - now <= 0);
        circuits.values().removeIf(until -> !live(until, now));
        claims.values().removeIf(until -> !live(until, now));
        for (Iterator<Map<String, Long>> it = slots.values().iterator(); it.hasNext(); ) {
            Map<String, Long> held = it.next();
            held.values().removeIf(until -> !live(until, now));
            if (held.isEmpty()) {
                it.remove();
            }
        }
    }

    @Override
    public String description() {
        return "in-memory";
    }

    @Override
    public void close() {}
}
