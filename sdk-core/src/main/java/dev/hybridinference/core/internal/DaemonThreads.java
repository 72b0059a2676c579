package dev.hybridinference.core.internal;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/** Executors of named daemon threads, so that a client never keeps the JVM alive. Internal. */
public final class DaemonThreads {
    private DaemonThreads() {}

    /** A factory of daemon threads named {@code hybrid-inference-<name>-N}. */
    public static ThreadFactory factory(String name) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, "hybrid-inference-" + name + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** A cached pool of daemon threads. */
    public static ExecutorService cachedPool(String name) {
        return Executors.newCachedThreadPool(factory(name));
    }

    /** A single-threaded scheduler on a daemon thread. */
    public static ScheduledExecutorService scheduler(String name) {
        return Executors.newSingleThreadScheduledExecutor(factory(name));
    }
}
