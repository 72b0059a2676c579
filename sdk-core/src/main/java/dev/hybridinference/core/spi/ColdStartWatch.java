package dev.hybridinference.core.spi;

import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ColdStart;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * What a provider on a platform that scales to zero knows about cold starts, kept in one place: it
 * predicts a cold start from the idle time, and tells which successful calls met one. A call met a cold
 * start when
 *
 * <ul>
 *   <li>the platform said the model was not ready (a provisioning answer such as SageMaker's {@code
 *       ModelNotReadyException} or Cloud Run's 429 while an instance starts) since the last success: the
 *       cold start lasted from that first signal to the end of this call, across the core's retries;
 *   <li>or the platform held the request while an instance started: its latency was at least {@code
 *       threshold} above the warm latency learned so far, and either the call was predicted cold or the
 *       latency was more than four times the warm latency (with at least three warm samples). The cold
 *       start lasted the latency above the warm latency.
 * </ul>
 *
 * <p>The latency a provider reports should be comparable from call to call: the time to the response's
 * first byte for a stream, the whole call for a blocking one (whose generation time varies with the answer's
 * length, so the threshold keeps a long answer from counting as a cold start). Thread-safe.
 */
public final class ColdStartWatch {
    /** The latency above warm that counts as a held cold start when none is configured. */
    public static final Duration DEFAULT_THRESHOLD = Duration.ofSeconds(1);

    private static final int MIN_WARM_SAMPLES = 3;
    private static final double WARM_WEIGHT = 0.2;

    private final ClientInfo.ColdStartProfile profile;
    private final long thresholdNanos;

    private long notReadySince;
    private boolean notReady;
    private long lastActivity;
    private boolean active;
    private double warmNanos = Double.NaN;
    private int warmSamples;

    /**
     * A watch for a client with this profile.
     *
     * @param profile whether and when the client scales to zero
     * @param threshold how far above the warm latency a held call must be to count as a cold start
     */
    public ColdStartWatch(ClientInfo.ColdStartProfile profile, Duration threshold) {
        this.profile = Objects.requireNonNull(profile, "profile");
        if (threshold.isNegative()) {
            throw new IllegalArgumentException("threshold must not be negative, got " + threshold);
        }
        this.thresholdNanos = threshold.toNanos();
    }

    /** The profile this watch predicts from. */
    public ClientInfo.ColdStartProfile profile() {
        return profile;
    }

    /**
     * The platform answered that the model is not ready yet (it is provisioning). The first such answer since
     * the last success starts the cold start's clock.
     *
     * @param nowNanos {@link System#nanoTime()} now
     */
    public synchronized void notReady(long nowNanos) {
        if (!notReady) {
            notReady = true;
            notReadySince = nowNanos;
        }
        touch(nowNanos);
    }

    /**
     * Whether a call starting now is predicted to meet a cold start: the client scales to zero with no
     * minimum instances, and it has had no call yet or none for longer than its idle timeout.
     *
     * @param nowNanos {@link System#nanoTime()} now
     */
    public synchronized boolean predictsCold(long nowNanos) {
        if (!profile.canColdStart() || profile.minInstances() > 0) {
            return false;
        }
        if (!active) {
            return true;
        }
        Duration idle = profile.idleTimeout();
        return idle != null && nowNanos - lastActivity > idle.toNanos();
    }

    /**
     * A call succeeded: what it met.
     *
     * @param startNanos {@link System#nanoTime()} when the call started
     * @param latencyNanos its latency (see the class comment)
     * @param endNanos {@link System#nanoTime()} when it ended
     * @return the call's cold start: predicted as {@link #predictsCold} said at its start, observed as the
     *     class comment says, with its duration
     */
    public synchronized ColdStart succeeded(long startNanos, long latencyNanos, long endNanos) {
        boolean predicted = predictsCold(startNanos);
        ColdStart result;
        if (notReady) {
            notReady = false;
            result = new ColdStart(
                    predicted, true, Optional.of(Duration.ofNanos(Math.max(0, endNanos - notReadySince))));
        } else {
            double warm = Double.isNaN(warmNanos) ? 0 : warmNanos;
            double above = latencyNanos - warm;
            boolean held = profile.canColdStart()
                    && above >= thresholdNanos
                    && (predicted || warmSamples >= MIN_WARM_SAMPLES && latencyNanos > 4 * warm);
            if (held) {
                result = new ColdStart(predicted, true, Optional.of(Duration.ofNanos((long) above)));
            } else {
                warmNanos =
                        Double.isNaN(warmNanos) ? latencyNanos : warmNanos + WARM_WEIGHT * (latencyNanos - warmNanos);
                warmSamples++;
                result = predicted ? new ColdStart(true, false) : ColdStart.NONE;
            }
        }
        touch(endNanos);
        return result;
    }

    /**
     * A call failed in a way that still reached the platform (an error answer): it counts as activity, so
     * the platform's idle clock restarts.
     *
     * @param nowNanos {@link System#nanoTime()} now
     */
    public synchronized void failed(long nowNanos) {
        touch(nowNanos);
    }

    /** The warm latency learned so far, if any. */
    public synchronized Optional<Duration> warmLatency() {
        return Double.isNaN(warmNanos) ? Optional.empty() : Optional.of(Duration.ofNanos((long) warmNanos));
    }

    private void touch(long nowNanos) {
        if (!active || nowNanos - lastActivity > 0) {
            lastActivity = nowNanos;
        }
        active = true;
    }
}
