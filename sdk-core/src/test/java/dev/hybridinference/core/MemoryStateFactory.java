package dev.hybridinference.core;

import dev.hybridinference.core.spi.SharedState;
import dev.hybridinference.core.spi.SharedStateFactory;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/** The test state type {@code memory}: in-memory shared state that counts how often it was closed. */
public final class MemoryStateFactory implements SharedStateFactory {
    /** Stores closed so far, across every test. */
    public static final AtomicInteger CLOSED = new AtomicInteger();

    @Override
    public String type() {
        return "memory";
    }

    @Override
    public SharedState create(Context context) {
        context.config().allowOnly(Set.of("type"));
        SharedState inner = SharedState.inMemory(context.time());
        return new SharedState() {
            @Override
            public long add(String key, long amount, Duration ttl) {
                return inner.add(key, amount, ttl);
            }

            @Override
            public long get(String key) {
                return inner.get(key);
            }

            @Override
            public void openCircuit(String key, Duration cooldown) {
                inner.openCircuit(key, cooldown);
            }

            @Override
            public void closeCircuit(String key) {
                inner.closeCircuit(key);
            }

            @Override
            public Optional<Duration> circuitOpen(String key) {
                return inner.circuitOpen(key);
            }

            @Override
            public Optional<String> acquireSlot(String key, int limit, Duration lease) {
                return inner.acquireSlot(key, limit, lease);
            }

            @Override
            public void releaseSlot(String key, String lease) {
                inner.releaseSlot(key, lease);
            }

            @Override
            public int slotsHeld(String key) {
                return inner.slotsHeld(key);
            }

            @Override
            public boolean claim(String key, Duration ttl) {
                return inner.claim(key, ttl);
            }

            @Override
            public String description() {
                return "memory (test)";
            }

            @Override
            public void close() {
                CLOSED.incrementAndGet();
            }
        };
    }
}
