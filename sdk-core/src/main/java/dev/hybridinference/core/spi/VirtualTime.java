package dev.hybridinference.core.spi;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Objects;
import java.util.PriorityQueue;

/**
 * Time that stands still until it is moved: a {@link TimeSource} for simulations (the planner replays days of
 * traffic on it in seconds) and for tests that must not sleep. {@link #advance} runs the tasks that fall due,
 * in order of their time (and of scheduling at equal times), on the calling thread, moving the clock to each
 * task's time before it runs; a task scheduled while another runs is run in the same advance when it falls
 * due before its end. Clients built on it (see {@link
 * dev.hybridinference.core.routing.HybridClient.Builder#timeSource}) date, time and meter their calls on it,
 * and their backoffs and keep-warm pings become its tasks.
 *
 * <p>Thread-safe; tasks run outside its lock, so they may read the time and schedule more. A simulation that
 * advances it from one thread is deterministic.
 */
public final class VirtualTime implements TimeSource {
    /** Where the nanosecond counter starts: well above zero, which some readers keep for "not set". */
    private static final long ORIGIN = 1_000_000_000L;

    private final Instant epoch;
    private final PriorityQueue<Task> tasks = new PriorityQueue<>();
    private final Clock clock = new VirtualClock();
    private long now = ORIGIN;
    private long sequence;
    private long ran;

    /** Virtual time whose clock reads {@code epoch} until it is advanced. */
    public VirtualTime(Instant epoch) {
        this.epoch = Objects.requireNonNull(epoch, "epoch");
    }

    /** Virtual time starting at 2030-01-01T00:00:00Z, a minute boundary. */
    public VirtualTime() {
        this(Instant.parse("2030-01-01T00:00:00Z"));
    }

    @Override
    public Clock clock() {
        return clock;
    }

    @Override
    public synchronized long nanoTime() {
        return now;
    }

    /** The instant this time started at. */
    public Instant epoch() {
        return epoch;
    }

    /** How far this time has been advanced. */
    public synchronized Duration elapsed() {
        return Duration.ofNanos(now - ORIGIN);
    }

    /** The instant {@code offset} after the epoch. */
    public Instant at(Duration offset) {
        return epoch.plus(offset);
    }

    @Override
    public synchronized Scheduled schedule(Duration delay, Runnable task) {
        return add(now, delay.isNegative() ? 0 : saturated(delay), task);
    }

    /** Runs {@code task} at {@code offset} after the epoch, or at the next advance when that has passed. */
    public synchronized Scheduled scheduleAt(Duration offset, Runnable task) {
        return add(ORIGIN, Math.max(now - ORIGIN, saturated(offset)), task);
    }

    private Scheduled add(long from, long delay, Runnable task) {
        Objects.requireNonNull(task, "task");
        Task t = new Task(delay >= Long.MAX_VALUE - from ? Long.MAX_VALUE : from + delay, sequence++, task);
        tasks.add(t);
        return t;
    }

    /**
     * Moves time forward by {@code by}, running every task due by then in order, each with the clock at its
     * own time; leaves the clock at the end.
     */
    public void advance(Duration by) {
        long until;
        synchronized (this) {
            long d = by.isNegative() ? 0 : saturated(by);
            until = d >= Long.MAX_VALUE - now ? Long.MAX_VALUE : now + d;
        }
        runUntil(until);
    }

    /** Moves time forward to {@code offset} after the epoch (nothing if it is there already). */
    public void advanceTo(Duration offset) {
        long o = saturated(offset);
        runUntil(o >= Long.MAX_VALUE - ORIGIN ? Long.MAX_VALUE : ORIGIN + o);
    }

    private void runUntil(long until) {
        while (true) {
            Task t;
            synchronized (this) {
                t = tasks.peek();
                if (t == null || t.at > until) {
                    now = Math.max(now, until);
                    return;
                }
                tasks.poll();
                if (t.cancelled) {
                    continue;
                }
                now = Math.max(now, t.at);
                t.started = true;
                ran++;
            }
            t.task.run();
        }
    }

    /** Tasks waiting to run, not counting cancelled ones. */
    public synchronized int pending() {
        int n = 0;
        for (Task t : tasks) {
            if (!t.cancelled) {
                n++;
            }
        }
        return n;
    }

    /** Tasks run so far. */
    public synchronized long tasksRun() {
        return ran;
    }

    private static long saturated(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return d.isNegative() ? 0 : Long.MAX_VALUE;
        }
    }

    @Override
    public String toString() {
        return "virtual time at +" + elapsed();
    }

    private final class Task implements Comparable<Task>, Scheduled {
        final long at;
        final long seq;
        final Runnable task;
        boolean cancelled;
        boolean started;

        Task(long at, long seq, Runnable task) {
            this.at = at;
            this.seq = seq;
            this.task = task;
        }

        @Override
        public int compareTo(Task o) {
            int c = Long.compare(at, o.at);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }

        @Override
        public boolean cancel() {
            synchronized (VirtualTime.this) {
                if (started || cancelled) {
                    return false;
                }
                cancelled = true;
                return true;
            }
        }
    }

    private final class VirtualClock extends Clock {
        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            if (zone.equals(ZoneOffset.UTC)) {
                return this;
            }
            throw new UnsupportedOperationException("a virtual clock is in UTC");
        }

        @Override
        public Instant instant() {
            synchronized (VirtualTime.this) {
                return epoch.plusNanos(now - ORIGIN);
            }
        }
    }
}
