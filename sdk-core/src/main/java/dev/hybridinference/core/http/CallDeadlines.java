package dev.hybridinference.core.http;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import okhttp3.Call;

/**
 * Cancels calls that outlive their deadline: the whole-call limit of {@link OpenAiTransport}, in place of
 * OkHttp's call timeout.
 *
 * <p>Why not OkHttp's: its call timeout is an okio {@code AsyncTimeout}, and entering one that becomes the
 * earliest in the queue (every call's, when calls run one after another) signals okio's watchdog thread
 * under the queue's lock, which the call's own socket reads and writes take next. Profiling a blocking
 * call on loopback showed the handoff on the call's path, several percent of its latency. Here a call only
 * joins a set; the one watcher thread is woken only when a deadline comes before the time it already
 * plans to wake at, so calls with the same limit, one after another, wake it about once per limit, not once
 * per call. A deadline fires within the park's precision, as okio's does.
 *
 * <p>Thread-safe; one watcher thread per JVM, a daemon, started on first use and ended after a minute
 * without calls.
 */
final class CallDeadlines {
    /** How long the watcher sleeps when no call is watched, and how many such sleeps before it ends. */
    private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(1);

    private static final int IDLE_ROUNDS = 60;

    static final CallDeadlines SHARED = new CallDeadlines();

    private final Set<Watch> watched = ConcurrentHashMap.newKeySet();
    /** When the watcher will next look, on {@link System#nanoTime()}; a deadline before it wakes the watcher. */
    private volatile long plannedWake;

    private volatile Thread watcher;
    private final Object start = new Object();

    /** One call under watch. */
    static final class Watch {
        private final Call call;
        private final long deadline;
        private volatile boolean fired;

        private Watch(Call call, long deadline) {
            this.call = call;
            this.deadline = deadline;
        }

        /**
         * {@code e}, or, when the deadline cancelled the call (which is what failed it), a timeout in its
         * place: the same {@link InterruptedIOException} OkHttp's own call timeout throws.
         */
        IOException explain(IOException e) {
            if (!fired || e instanceof InterruptedIOException) {
                return e;
            }
            InterruptedIOException timeout = new InterruptedIOException("timeout");
            timeout.initCause(e);
            return timeout;
        }

        boolean fired() {
            return fired;
        }

        /**
         * From the deadline rather than the identity: an identity hash is installed in the object's header
         * on first use, a slow path that showed up in profiles of the set this joins once per call.
         */
        @Override
        public int hashCode() {
            return Long.hashCode(deadline);
        }

        @Override
        public boolean equals(Object o) {
            return this == o;
        }
    }

    /**
     * Watches {@code call}: it is cancelled if it has not been {@link #release released} {@code
     * timeoutNanos} from now.
     */
    Watch watch(Call call, long timeoutNanos) {
        long deadline = System.nanoTime() + Math.max(1, Math.min(timeoutNanos, Long.MAX_VALUE / 4));
        Watch w = new Watch(call, deadline);
        watched.add(w);
        Thread t = watcher;
        if (t == null) {
            t = startWatcher();
        }
        if (deadline - plannedWake < 0) {
            LockSupport.unpark(t);
        }
        return w;
    }

    /** Stops watching; the call ended (a null watch is ignored). */
    void release(Watch w) {
        if (w != null) {
            watched.remove(w);
        }
    }

    private Thread startWatcher() {
        synchronized (start) {
            Thread t = watcher;
            if (t == null) {
                plannedWake = System.nanoTime();
                t = new Thread(this::run, "hybrid-inference-call-deadlines");
                t.setDaemon(true);
                watcher = t;
                t.start();
            }
            return t;
        }
    }

    private void run() {
        int idle = 0;
        while (true) {
            long now = System.nanoTime();
            long next = scan(now, now + IDLE_NANOS);
            plannedWake = next;
            // A call added during the scan saw the old plan and may not have woken us: look once more
            // before sleeping, now that the new plan is published.
            if (scan(now, next) != next) {
                continue;
            }
            if (watched.isEmpty()) {
                if (++idle >= IDLE_ROUNDS && retire()) {
                    // A call may have joined between the last look and the retirement, having seen this
                    // thread still in place: make sure someone watches it.
                    if (!watched.isEmpty()) {
                        startWatcher();
                    }
                    return;
                }
            } else {
                idle = 0;
            }
            LockSupport.parkNanos(this, next - System.nanoTime());
        }
    }

    /** Fires the watches whose deadline has come; returns the earliest deadline left, or {@code next}. */
    private long scan(long now, long next) {
        for (Watch w : watched) {
            if (w.deadline - now <= 0) {
                watched.remove(w);
                w.fired = true;
                w.call.cancel();
            } else if (w.deadline - next < 0) {
                next = w.deadline;
            }
        }
        return next;
    }

    /** Ends the watcher if nothing is watched; a later call starts a new one. */
    private boolean retire() {
        synchronized (start) {
            if (!watched.isEmpty()) {
                return false;
            }
            watcher = null;
            plannedWake = System.nanoTime();
            return true;
        }
    }
}
