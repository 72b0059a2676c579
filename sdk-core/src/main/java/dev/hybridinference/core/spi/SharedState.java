package dev.hybridinference.core.spi;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * Routing state that every instance of an application shares, so that a fleet of clients behaves as one: the
 * spend of each budget window, the members' open circuits, the in-flight slots of members with a limit, and
 * who sends the next keep-warm ping. A {@link dev.hybridinference.core.routing.HybridClient} given one (see
 * {@link dev.hybridinference.core.routing.HybridClient.Builder#sharedState}, or the configuration's top-level
 * {@code state:} section, built by a {@link SharedStateFactory}) keeps these in it; without one, each client
 * keeps them to itself.
 *
 * <p>The store holds four kinds of entries, each under a key the client builds (an implementation may put a
 * prefix of its own before it):
 *
 * <ul>
 *   <li><b>counters</b>: whole numbers that {@link #add} changes atomically; budgets count in {@link
 *       #UNITS_PER_USD units} of a trillionth of a dollar, so that spend stays exact without floating point;
 *   <li><b>circuits</b>: a member's circuit opened by one instance for a cooldown ({@link #openCircuit}),
 *       which the others read ({@link #circuitOpen}) and skip the member meanwhile;
 *   <li><b>slots</b>: leases on one of a limited number of slots ({@link #acquireSlot}), each with an expiry,
 *       so that the slots of an instance that dies without releasing them come free;
 *   <li><b>claims</b>: a key that one instance takes for a while ({@link #claim}) and the others then cannot.
 * </ul>
 *
 * <p>Implementations are thread-safe and quick: the client calls them on every call. They throw whatever
 * they like (a {@link RuntimeException}) when the store cannot answer, after a short timeout of their own;
 * the client then carries on with its own local state, logs one warning, shows it in {@link
 * dev.hybridinference.core.routing.HybridClient#sharedStateStatus()}, and asks the store again a little
 * later. No call fails because the store did. {@link #inMemory} shares state between the clients of one
 * process (for tests, or several composite clients over the same servers); the {@code state-redis} module
 * shares it across processes.
 */
public interface SharedState extends AutoCloseable {
    /** Counter units in one US dollar: budgets count in trillionths of a dollar. */
    long UNITS_PER_USD = 1_000_000_000_000L;

    /**
     * Adds {@code amount} (negative to take back) to the counter at {@code key}, creating it at zero, and
     * returns its new total. The counter may be dropped once {@code ttl} has passed since the last add.
     */
    long add(String key, long amount, Duration ttl);

    /** The counter at {@code key}; zero when there is none. */
    long get(String key);

    /** Marks the circuit at {@code key} open for {@code cooldown} (replacing what was there). */
    void openCircuit(String key, Duration cooldown);

    /** Marks the circuit at {@code key} closed. */
    void closeCircuit(String key);

    /** How long the circuit at {@code key} stays open; empty when it is closed (or its cooldown is over). */
    Optional<Duration> circuitOpen(String key);

    /**
     * Takes one of {@code limit} slots at {@code key}, leased for {@code lease}: a lease not released by then
     * lapses and frees its slot.
     *
     * @return the lease's id, for {@link #releaseSlot}; empty when all {@code limit} slots are leased
     */
    Optional<String> acquireSlot(String key, int limit, Duration lease);

    /** Gives back a lease taken with {@link #acquireSlot}; one that lapsed already is ignored. */
    void releaseSlot(String key, String lease);

    /** The leases held at {@code key} now (lapsed ones not counted). */
    int slotsHeld(String key);

    /** Takes {@code key} for {@code ttl} if nobody holds it; true when this call took it. */
    boolean claim(String key, Duration ttl);

    /** What the store is, for logs and status: its type and address, never a password. */
    default String description() {
        return getClass().getSimpleName();
    }

    /** Releases the store's connections. Idempotent. */
    @Override
    void close();

    /**
     * {@code usd} in counter units, rounded up to the next unit (a cost is never counted short).
     *
     * @throws ArithmeticException when it does not fit a {@code long} (about 9.2 million dollars)
     */
    static long units(BigDecimal usd) {
        return usd.movePointRight(12).setScale(0, RoundingMode.CEILING).longValueExact();
    }

    /** Counter units in US dollars. */
    static BigDecimal usd(long units) {
        return BigDecimal.valueOf(units, 12).stripTrailingZeros();
    }

    /**
     * State shared by the clients of this process that are given the same instance, with time read from
     * {@code time}: the reference implementation, and what a process with several composite clients over the
     * same servers uses.
     */
    static SharedState inMemory(TimeSource time) {
        return new InMemorySharedState(Objects.requireNonNull(time, "time"));
    }

    /** {@link #inMemory(TimeSource)} on the system's time. */
    static SharedState inMemory() {
        return inMemory(TimeSource.system());
    }
}
