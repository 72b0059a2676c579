package dev.hybridinference.planner;

import dev.hybridinference.core.spi.TimeSource;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Objects;
import java.util.PriorityQueue;

/**
 * Virtual time for a simulation: a clock that stands still until {@link #runUntil} advances it to the next
 * scheduled task. Clients built on it (see {@link dev.hybridinference.core.routing.HybridClient.Builder#timeSource})
 * date, time and meter their calls on it, and their backoffs and keep-warm pings become tasks here, so a
 * day of traffic runs in the time its tasks take to compute.
 *
 * <p>Tasks run in order of their time, and in the order they were scheduled at equal times, on the thread
 * that calls {@link #runUntil}. Confined to one thread: a simulation runs on one thread, and so is
 * deterministic.
 */
public final class VirtualTime implements TimeSource {
    /**
     * Where the nanosecond counter starts: well above zero, since code that reads it may keep zero to mean
     * "not set".
     */
    private static final long ORIGIN_NANOS = 1_000_000_000L;

    private final Instant epoch;
    private final PriorityQueue<Task> tasks = new PriorityQueue<>();
    private final Clock clock = new VirtualClock();
    private long now = ORIGIN_NANOS;
    private long sequence;
    private long ran;

    /** Virtual time whose clock reads {@code epoch} now. */
    public VirtualTime(Instant epoch) {
        this.epoch = Objects.requireNonNull(epoch, "epoch");
    }

    @Override
    public Clock clock() {
        return clock;
    }

    @Override
    public long nanoTime() {
        return now;
    }

    /** The time since this virtual time began. */
    public Duration elapsed() {
        return Duration.ofNanos(now - ORIGIN_NANOS);
    }

    /** The wall-clock instant now. */
    public Instant instant() {
        return epoch.plusNanos(now - ORIGIN_NANOS);
    }

    /** The wall-clock instant {@code offsetNanos} after this virtual time began. */
    public Instant instantAt(long offsetNanos) {
        return epoch.plusNanos(offsetNanos);
    }

    @Override
    public Scheduled schedule(Duration delay, Runnable task) {
        Objects.requireNonNull(task, "task");
        long d = delay.isNegative() ? 0 : saturated(delay);
        return at(d >= Long.MAX_VALUE - now ? Long.MAX_VALUE : now + d, task);
    }

    /** Runs {@code task} at {@code offsetNanos} after this virtual time began (now, if that has passed). */
    public Scheduled scheduleAtOffset(long offsetNanos, Runnable task) {
        Objects.requireNonNull(task, "task");
        return at(Math.max(now, ORIGIN_NANOS + offsetNanos), task);
    }

    private Scheduled at(long atNanos, Runnable task) {
        Task t = new Task(atNanos, sequence++, task);
        tasks.add(t);
        return t;
    }

    /**
     * Runs every task due up to {@code offsetNanos} after this virtual time began, in order, advancing the
     * clock to each, and leaves the clock there.
     *
     * @return whether tasks remain after it
     */
    public boolean runUntil(long offsetNanos) {
        long until = ORIGIN_NANOS + offsetNanos;
        Task t;
        while ((t = tasks.peek()) != null && t.atNanos <= until) {
            tasks.poll();
            if (t.cancelled) {
                continue;
            }
            now = Math.max(now, t.atNanos);
            t.done = true;
            ran++;
            t.task.run();
        }
        now = Math.max(now, until);
        return !tasks.isEmpty();
    }

    /** Tasks run so far. */
    public long tasksRun() {
        return ran;
    }

    /** Tasks waiting, cancelled ones included until their time comes. */
    public int pending() {
        return tasks.size();
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
        return "virtual time at " + instant();
    }

    private static final class Task implements Comparable<Task>, Scheduled {
        final long atNanos;
        final long seq;
        final Runnable task;
        boolean cancelled;
        boolean done;

        Task(long atNanos, long seq, Runnable task) {
            this.atNanos = atNanos;
            this.seq = seq;
            this.task = task;
        }

        @Override
        public int compareTo(Task o) {
            int c = Long.compare(atNanos, o.atNanos);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }

        @Override
        public boolean cancel() {
            if (done || cancelled) {
                return false;
            }
            cancelled = true;
            return true;
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
            return VirtualTime.this.instant();
        }

        @Override
        public long millis() {
            return instant().toEpochMilli();
        }
    }
}
