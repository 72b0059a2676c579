package dev.hybridinference.planner;

import java.time.Duration;
import java.util.Objects;

/**
 * How a simulated deployment performs: what it can run at once, how fast it answers, and how it starts and
 * stops instances. The planner's model of a platform, kept simple enough to check by hand:
 *
 * <ul>
 *   <li>A request takes {@code firstTokenLatency + inputTokens / prefillTokensPerSecond + outputTokens /
 *       outputTokensPerSecond} once it holds a slot; a slot runs one request at a time, at that speed
 *       whatever the other slots do (batching in a server keeps each stream's speed roughly constant up
 *       to its batch size, which {@code concurrency} stands for).
 *   <li>{@link Kind#API}: a pay-per-token platform, as many slots as there are requests; never cold.
 *   <li>{@link Kind#SERVERLESS}: instances of {@code concurrency} slots each, from {@code minInstances}
 *       up to {@code maxInstances}. A request that finds no free slot starts an instance (it waits {@code
 *       startupTime}: a cold start) or, with {@code maxInstances} running, waits in a queue of at most
 *       {@code queueLimit}, else is throttled (429). An instance with nothing to do for {@code
 *       idleTimeout} stops, down to {@code minInstances}.
 *   <li>{@link Kind#SERVER}: {@code maxInstances} instances always on (no cold start); a request that
 *       finds no free slot waits in a queue of at most {@code queueLimit}, else is refused (429).
 * </ul>
 *
 * @param kind the deployment's kind
 * @param minInstances instances kept running (serverless)
 * @param maxInstances the most instances (serverless), or the instances (server)
 * @param concurrency requests one instance runs at once
 * @param prefillTokensPerSecond prompt tokens one request's prefill reads per second
 * @param outputTokensPerSecond tokens one request generates per second
 * @param firstTokenLatency the fixed part of every request's time
 * @param startupTime how long a new instance takes before it serves (serverless)
 * @param idleTimeout how long an idle instance lives before it stops (serverless)
 * @param queueLimit requests that may wait for a slot; beyond, requests are refused
 */
public record Deployment(
        Kind kind,
        int minInstances,
        int maxInstances,
        int concurrency,
        double prefillTokensPerSecond,
        double outputTokensPerSecond,
        Duration firstTokenLatency,
        Duration startupTime,
        Duration idleTimeout,
        int queueLimit) {

    /** What sort of platform a deployment is. */
    public enum Kind {
        /** Pay-per-token: unbounded capacity, never cold. */
        API,
        /** Instances started on demand and stopped when idle. */
        SERVERLESS,
        /** Instances always on. */
        SERVER
    }

    /** Checks every figure. */
    public Deployment {
        Objects.requireNonNull(kind, "kind");
        requirePositive(prefillTokensPerSecond, "prefillTokensPerSecond");
        requirePositive(outputTokensPerSecond, "outputTokensPerSecond");
        requireNonNegative(firstTokenLatency, "firstTokenLatency");
        requireNonNegative(startupTime, "startupTime");
        requireNonNegative(idleTimeout, "idleTimeout");
        if (concurrency < 1) {
            throw new IllegalArgumentException("concurrency must be at least 1, got " + concurrency);
        }
        if (maxInstances < 1) {
            throw new IllegalArgumentException("maxInstances must be at least 1, got " + maxInstances);
        }
        if (minInstances < 0 || minInstances > maxInstances) {
            throw new IllegalArgumentException(
                    "minInstances must be from 0 to maxInstances (" + maxInstances + "), got " + minInstances);
        }
        if (queueLimit < 0) {
            throw new IllegalArgumentException("queueLimit must not be negative, got " + queueLimit);
        }
    }

    /** The time one request of this size takes once it holds a slot. */
    public Duration serviceTime(long inputTokens, long outputTokens) {
        double seconds = inputTokens / prefillTokensPerSecond + outputTokens / outputTokensPerSecond;
        return firstTokenLatency.plusNanos(Math.round(seconds * 1e9));
    }

    /** A copy with {@code instances} instances (a server's count, or a serverless deployment's bounds). */
    public Deployment withInstances(int min, int max) {
        return new Deployment(
                kind,
                min,
                max,
                concurrency,
                prefillTokensPerSecond,
                outputTokensPerSecond,
                firstTokenLatency,
                startupTime,
                idleTimeout,
                queueLimit);
    }

    private static void requirePositive(double v, String name) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(name + " must be a positive number, got " + v);
        }
    }

    private static void requireNonNegative(Duration d, String name) {
        Objects.requireNonNull(d, name);
        if (d.isNegative()) {
            throw new IllegalArgumentException(name + " must not be negative, got " + d);
        }
    }
}
