package dev.hybridinference.core.spi;

import dev.hybridinference.core.internal.DaemonThreads;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Where a client reads time and sets timers: a wall clock that dates receipts, a monotonic nanosecond
 * counter that durations are measured on, and a timer for backoffs and keep-warm pings. The system's by
 * default ({@link #system()}); a simulation supplies virtual time, so that the same routing, metering and
 * pricing code replays a month of traffic in seconds (the planner does this).
 *
 * <p>A virtual source must be consistent: {@link #nanoTime()} and {@link #clock()} advance together, and a
 * task given to {@link #schedule} runs once its delay has passed on them. Implementations are thread-safe.
 */
public interface TimeSource {
    /** The wall clock. */
    Clock clock();

    /** A monotonic nanosecond counter, read only through differences, like {@link System#nanoTime()}. */
    long nanoTime();

    /**
     * Runs {@code task} once, {@code delay} from now, on a thread of the source's choosing (a virtual
     * source runs it on the thread that advances its time).
     *
     * @return a handle that stops the task if it has not started
     */
    Scheduled schedule(Duration delay, Runnable task);

    /** A task set with {@link #schedule}. */
    @FunctionalInterface
    interface Scheduled {
        /** Stops the task if it has not started; returns whether it was stopped. Idempotent. */
        boolean cancel();
    }

    /** The system's time: the UTC clock, {@link System#nanoTime()} and a shared daemon timer thread. */
    static TimeSource system() {
        return SystemTime.UTC;
    }

    /** The system's monotonic time and timer with {@code clock} as the wall clock. */
    static TimeSource system(Clock clock) {
        Objects.requireNonNull(clock, "clock");
        return clock.equals(Clock.systemUTC()) ? SystemTime.UTC : new SystemTime(clock);
    }
}

/** The system's time. */
final class SystemTime implements TimeSource {
    static final SystemTime UTC = new SystemTime(Clock.systemUTC());

    private final Clock clock;

    SystemTime(Clock clock) {
        this.clock = clock;
    }

    @Override
    public Clock clock() {
        return clock;
    }

    @Override
    public long nanoTime() {
        return System.nanoTime();
    }

    @Override
    public Scheduled schedule(Duration delay, Runnable task) {
        Objects.requireNonNull(task, "task");
        ScheduledFuture<?> f = Timer.INSTANCE.schedule(task, Deadline.saturatedNanos(delay), TimeUnit.NANOSECONDS);
        return () -> f.cancel(false);
    }

    @Override
    public String toString() {
        return "system time (" + clock + ")";
    }

    /** The timer thread, started on first use. */
    private static final class Timer {
        static final ScheduledExecutorService INSTANCE = DaemonThreads.scheduler("timer");
    }
}
