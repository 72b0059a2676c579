package dev.hybridinference.core.internal;

import java.util.concurrent.ExecutorService;

/**
 * A cached pool of daemon threads created on first use, for clients whose async and push calls need
 * threads that most applications never ask for. Thread-safe. Internal: not part of the public API.
 */
public final class LazyPool {
    private final String name;
    private volatile ExecutorService pool;
    private boolean shutdown;

    /** A pool whose threads will be named after {@code name}. */
    public LazyPool(String name) {
        this.name = name;
    }

    /** The pool, created on the first call. */
    public ExecutorService get() {
        ExecutorService p = pool;
        if (p == null) {
            synchronized (this) {
                if (shutdown) {
                    throw new IllegalStateException(name + ": client is closed");
                }
                p = pool;
                if (p == null) {
                    p = DaemonThreads.cachedPool(name);
                    pool = p;
                }
            }
        }
        return p;
    }

    /** Stops the pool's threads, interrupting running tasks. Idempotent. */
    public synchronized void shutdown() {
        shutdown = true;
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
