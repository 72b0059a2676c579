package dev.hybridinference.core.routing;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * Whether a composite client's shared state is in use or the client runs on its own state because the
 * store cannot be reached (see {@link dev.hybridinference.core.spi.SharedState}); read it with {@link
 * HybridClient#sharedStateStatus()}, for a health check or a metric.
 *
 * @param store what the store is ({@code "redis://127.0.0.1:6379 (prefix app:)"}), or {@code "none"} for a
 *     client without one
 * @param configured whether the client was given a shared store
 * @param reachable whether the store answered its last request; false while the client runs on its own
 *     state, and for a client without a store
 * @param unreachableSince when the store stopped answering; null while it answers
 * @param lastError the last failure of the store, as its exception's class and message; null before the
 *     first
 * @param fallbacks how many requests to the store have been answered from the client's own state, since
 *     the client was built
 */
public record SharedStateStatus(
        String store,
        boolean configured,
        boolean reachable,
        Instant unreachableSince,
        String lastError,
        long fallbacks) {
    /** Checks the store's name. */
    public SharedStateStatus {
        Objects.requireNonNull(store, "store");
    }

    /** The status of a client without a shared store. */
    static SharedStateStatus none() {
        return new SharedStateStatus("none", false, false, null, null, 0);
    }

    /** When the store stopped answering, while it does not. */
    public Optional<Instant> since() {
        return Optional.ofNullable(unreachableSince);
    }

    /** Whether the client runs on its own state although a store was configured. */
    public boolean degraded() {
        return configured && !reachable;
    }
}
