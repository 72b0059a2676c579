package dev.hybridinference.core.routing;

import dev.hybridinference.core.spi.TimeSource;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Objects;
import java.util.PriorityQueue;

/**
 * A time source that stands still until a test moves it: {@link #advance} runs the tasks that fall due, in
 * order of their time (and of scheduling at equal times), on the calling thread, moving the clock to each
 * task's time before it runs. A task scheduled while another runs is run in the same advance when it falls
 * due before its end. Thread-safe; tasks run outside the lock, so they may schedule more.
 */
public final class ManualTime implements TimeSource {
    /** Where the nanosecond counter starts: well above zero, which some readers keep for "not set". */
    private static final long ORIGIN = 1_000_000_000L;

    private final Instant epoch;
    private final PriorityQueue<Task> tasks = new PriorityQueue<>();
    private final Clock clock = new ManualClock();
    private long now = ORIGIN;
    private long sequence;

    /** Manual time whose clock reads {@code epoch} until it is advanced. */
    public ManualTime(Instant epoch) {
        this.epoch = Objects.requireNonNull(epoch, "epoch");
    }

    /** Manual time starting at 2030-01-01T00:00:00Z, a minute boundary. */
    public ManualTime() {
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
        Objects.requireNonNull(task, "task");
        long d = delay.isNegative() ? 0 : saturated(delay);
        Task t = new Task(d >= Long.MAX_VALUE - now ? Long.MAX_VALUE : now + d, sequence++, task);
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
            until = now + saturated(by);
        }
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
            }
            t.task.run();
        }
    }

    /** Moves time forward to {@code offset} after the epoch (nothing if it is there already). */
    public void advanceTo(Duration offset) {
        Duration by = offset.minus(elapsed());
        if (!by.isNegative()) {
            advance(by);
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

    private static long saturated(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }

    @Override
    public String toString() {
        return "manual time at +" + elapsed();
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
            synchronized (ManualTime.this) {
                if (started || cancelled) {
                    return false;
                }
                cancelled = true;
                return true;
            }
        }
    }

    private final class ManualClock extends Clock {
        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            if (zone.equals(ZoneOffset.UTC)) {
                return this;
            }
            throw new UnsupportedOperationException("a manual clock is in UTC");
        }

        @Override
        public Instant instant() {
            synchronized (ManualTime.this) {
                return epoch.plusNanos(now - ORIGIN);
            }
        }
    }
}
