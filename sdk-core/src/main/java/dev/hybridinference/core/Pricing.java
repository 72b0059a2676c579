package dev.hybridinference.core;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.Objects;

/**
 * How a provider bills, and what one call costs under it. Money is exact {@link BigDecimal} USD.
 *
 * <p>Per-token, per-compute-time and per-GB-second costs are exact, as are costs from a per-second
 * instance rate. Costs derived from an hourly rate divide by 3600 and are rounded half-even to {@value
 * #HOURLY_SCALE} decimal places (a millionth of a micro-dollar). Every record is immutable and
 * thread-safe.
 */
public sealed interface Pricing
        permits Pricing.PerToken,
                Pricing.PerComputeTime,
                Pricing.PerGbSecond,
                Pricing.PerInstanceHour,
                Pricing.PerInstanceSecond,
                Pricing.Amortized {

    /** Decimal places kept when an hourly rate is divided into seconds. */
    int HOURLY_SCALE = 12;

    /** Bytes in the gigabyte that data processing is priced by: 2^30, as AWS bills data. */
    long BYTES_PER_GB = 1L << 30;

    /** No cost at all. */
    Pricing FREE = new Amortized(BigDecimal.ZERO);

    /** The cost of one call that used {@code usage}. */
    BigDecimal costOf(BillableUsage usage);

    /**
     * Whether the cost of a call that used {@code usage} rests on figures the platform does not report
     * (an instance count the SDK infers, compute time the SDK measured itself, tokens it counted), so that
     * the platform's bill may differ.
     */
    boolean isEstimate(BillableUsage usage);

    /** A short human-readable description, such as {@code $0.5/M in, $1.5/M out}. */
    String describe();

    /**
     * An amount as text, without trailing zeros: {@code $0.000465}, {@code $2}, {@code -$0.1}. For
     * display only; amounts stay exact {@link BigDecimal}s everywhere else.
     */
    static String formatUsd(BigDecimal amount) {
        Objects.requireNonNull(amount, "amount");
        String digits =
                amount.signum() == 0 ? "0" : amount.abs().stripTrailingZeros().toPlainString();
        return (amount.signum() < 0 ? "-$" : "$") + digits;
    }

    /**
     * What a call consumed that a price can apply to.
     *
     * @param tokens the call's token counts
     * @param computeTime how long the call ran, as a per-use platform bills it
     * @param instanceTime the share of instance time attributed to the call
     * @param bytesProcessed request plus response bytes, as the provider reported them (zero when not)
     * @param computeTimeReported whether {@code computeTime} is the provider's or platform's own figure
     *     rather than the SDK's measure
     */
    record BillableUsage(
            Usage tokens,
            Duration computeTime,
            Duration instanceTime,
            long bytesProcessed,
            boolean computeTimeReported) {
        /** Checks that nothing is missing or negative. */
        public BillableUsage {
            Objects.requireNonNull(tokens, "tokens");
            requireNonNegative(computeTime, "computeTime");
            requireNonNegative(instanceTime, "instanceTime");
            if (bytesProcessed < 0) {
                throw new IllegalArgumentException("bytesProcessed must not be negative, got " + bytesProcessed);
            }
        }

        /** Usage without bytes, its compute time measured by the SDK. */
        public BillableUsage(Usage tokens, Duration computeTime, Duration instanceTime) {
            this(tokens, computeTime, instanceTime, 0, false);
        }
    }

    /**
     * Billed per token (serverless pay-per-token APIs).
     *
     * @param inputPerMillion USD per million prompt tokens
     * @param outputPerMillion USD per million generated tokens
     * @param cachedInputPerMillion USD per million prompt tokens served from the platform's cache; the
     *     input rate applies where this equals it
     */
    record PerToken(BigDecimal inputPerMillion, BigDecimal outputPerMillion, BigDecimal cachedInputPerMillion)
            implements Pricing {
        /** Checks that no rate is negative; a null cached rate means the input rate. */
        public PerToken {
            requireNonNegative(inputPerMillion, "inputPerMillion");
            requireNonNegative(outputPerMillion, "outputPerMillion");
            cachedInputPerMillion = cachedInputPerMillion == null ? inputPerMillion : cachedInputPerMillion;
            requireNonNegative(cachedInputPerMillion, "cachedInputPerMillion");
        }

        @Override
        public BigDecimal costOf(BillableUsage usage) {
            Usage t = usage.tokens();
            long uncached = t.inputTokens() - t.cachedInputTokens();
            BigDecimal micro = inputPerMillion
                    .multiply(BigDecimal.valueOf(uncached))
                    .add(cachedInputPerMillion.multiply(BigDecimal.valueOf(t.cachedInputTokens())))
                    .add(outputPerMillion.multiply(BigDecimal.valueOf(t.outputTokens())));
            return micro.movePointLeft(6);
        }

        /** Estimated when the tokens are the SDK's count rather than the platform's. */
        @Override
        public boolean isEstimate(BillableUsage usage) {
            return usage.tokens().estimated();
        }

        @Override
        public String describe() {
            return formatUsd(inputPerMillion) + "/M in, " + formatUsd(outputPerMillion) + "/M out";
        }
    }

    /**
     * Billed per second of compute at a flat rate. Each call's time is rounded up to the increment,
     * raised to the minimum, and the per-request fee is added.
     *
     * @param perSecond USD per second
     * @param billingIncrement the unit time is rounded up to; zero means no rounding
     * @param minimumBilled the least time billed for one call
     * @param perRequest USD added to each call
     */
    record PerComputeTime(
            BigDecimal perSecond, Duration billingIncrement, Duration minimumBilled, BigDecimal perRequest)
            implements Pricing {
        /** Checks that nothing is negative; nulls mean zero. */
        public PerComputeTime {
            requireNonNegative(perSecond, "perSecond");
            billingIncrement = billingIncrement == null ? Duration.ZERO : billingIncrement;
            minimumBilled = minimumBilled == null ? Duration.ZERO : minimumBilled;
            perRequest = perRequest == null ? BigDecimal.ZERO : perRequest;
            requireNonNegative(billingIncrement, "billingIncrement");
            requireNonNegative(minimumBilled, "minimumBilled");
            requireNonNegative(perRequest, "perRequest");
        }

        /** The time billed for a call that ran {@code computeTime}. */
        public Duration billedTime(Duration computeTime) {
            return Pricing.billedTime(computeTime, billingIncrement, minimumBilled);
        }

        @Override
        public BigDecimal costOf(BillableUsage usage) {
            BigDecimal seconds = seconds(billedTime(usage.computeTime()));
            return perSecond.multiply(seconds).add(perRequest);
        }

        /** Estimated when the compute time is the SDK's measure rather than the platform's figure. */
        @Override
        public boolean isEstimate(BillableUsage usage) {
            return perSecond.signum() != 0 && !usage.computeTimeReported();
        }

        @Override
        public String describe() {
            return formatUsd(perSecond) + "/s compute, billed per " + billingIncrement.toMillis() + " ms, minimum "
                    + minimumBilled.toMillis() + " ms, " + formatUsd(perRequest) + "/request";
        }
    }

    /**
     * Compute time billed by memory size, plus the data processed: SageMaker Serverless Inference. A call's
     * compute time is rounded up to the increment (a millisecond by default) and raised to the minimum;
     * that time in seconds, times the memory size in GB, times the rate, plus the request and response
     * bytes in GB ({@value #BYTES_PER_GB} bytes each) times the data rate:
     *
     * <pre>{@code
     * cost = perGbSecond × memoryGb × billedSeconds + perGbProcessed × (requestBytes + responseBytes) / 2^30
     * }</pre>
     *
     * Exact: no rounding beyond the billing increment.
     *
     * @param perGbSecond USD per GB-second of compute
     * @param memoryGb the memory size the endpoint is configured with, in GB (6144 MB is 6)
     * @param billingIncrement the unit time is rounded up to; zero means no rounding
     * @param minimumBilled the least time billed for one call
     * @param perGbProcessed USD per GB of request and response data
     */
    record PerGbSecond(
            BigDecimal perGbSecond,
            BigDecimal memoryGb,
            Duration billingIncrement,
            Duration minimumBilled,
            BigDecimal perGbProcessed)
            implements Pricing {
        /** Checks that nothing is negative and the memory size is positive; nulls mean zero. */
        public PerGbSecond {
            requireNonNegative(perGbSecond, "perGbSecond");
            requireNonNegative(memoryGb, "memoryGb");
            if (memoryGb.signum() == 0) {
                throw new IllegalArgumentException("memoryGb must be positive");
            }
            billingIncrement = billingIncrement == null ? Duration.ZERO : billingIncrement;
            minimumBilled = minimumBilled == null ? Duration.ZERO : minimumBilled;
            perGbProcessed = perGbProcessed == null ? BigDecimal.ZERO : perGbProcessed;
            requireNonNegative(billingIncrement, "billingIncrement");
            requireNonNegative(minimumBilled, "minimumBilled");
            requireNonNegative(perGbProcessed, "perGbProcessed");
        }

        /** The time billed for a call that ran {@code computeTime}. */
        public Duration billedTime(Duration computeTime) {
            return Pricing.billedTime(computeTime, billingIncrement, minimumBilled);
        }

        @Override
        public BigDecimal costOf(BillableUsage usage) {
            BigDecimal compute = perGbSecond.multiply(memoryGb).multiply(seconds(billedTime(usage.computeTime())));
            BigDecimal data = perGbProcessed
                    .multiply(BigDecimal.valueOf(usage.bytesProcessed()))
                    .divide(BigDecimal.valueOf(BYTES_PER_GB)); // exact: a power of two always divides out
            return compute.add(data);
        }

        /**
         * Estimated when the compute time is the SDK's measure, or when data is priced and the provider
         * reported no bytes.
         */
        @Override
        public boolean isEstimate(BillableUsage usage) {
            return (perGbSecond.signum() != 0 && !usage.computeTimeReported())
                    || (perGbProcessed.signum() != 0 && usage.bytesProcessed() == 0);
        }

        @Override
        public String describe() {
            return formatUsd(perGbSecond) + "/GB-s x "
                    + memoryGb.stripTrailingZeros().toPlainString()
                    + " GB, billed per " + billingIncrement.toMillis() + " ms, minimum " + minimumBilled.toMillis()
                    + " ms, " + formatUsd(perGbProcessed) + "/GB processed";
        }
    }

    /**
     * Always-on capacity billed per instance hour. A call's cost is its attributed share of instance
     * time; the {@link dev.hybridinference.core.cost.CostLedger} also keeps the idle remainder.
     *
     * @param perHour USD per instance hour
     * @param instances how many instances are billed
     */
    record PerInstanceHour(BigDecimal perHour, int instances) implements Pricing {
        /** Checks that the rate is not negative and there is at least one instance. */
        public PerInstanceHour {
            requireNonNegative(perHour, "perHour");
            if (instances < 1) {
                throw new IllegalArgumentException("instances must be at least 1, got " + instances);
            }
        }

        @Override
        public BigDecimal costOf(BillableUsage usage) {
            return hourly(perHour, usage.instanceTime());
        }

        /** Never: the instances are configured, and the capacity's bill is exact. */
        @Override
        public boolean isEstimate(BillableUsage usage) {
            return false;
        }

        /** What the whole capacity costs over {@code uptime}. */
        public BigDecimal capacityCost(Duration uptime) {
            return hourly(perHour.multiply(BigDecimal.valueOf(instances)), uptime);
        }

        @Override
        public String describe() {
            return formatUsd(perHour) + "/instance-hour x " + instances;
        }
    }

    /**
     * Instances billed for their whole lifetime, idle included, that the platform starts and stops
     * itself: Cloud Run with instance-based billing (GPU services), SageMaker endpoints that scale. The
     * platform does not say how many instances run, so the {@link dev.hybridinference.core.cost.CostLedger}
     * estimates their lifetimes from the calls it sees ({@link
     * dev.hybridinference.core.cost.InstanceLifetimes}): an instance starts with a call that observed a
     * cold start and is billed until its last call ended plus {@code scaleInDelay}; {@code minInstances}
     * are billed all the time. A call's cost is its share of instance time, split among concurrent calls
     * over the instances live at the time. Every figure is labelled an estimate.
     *
     * @param rate USD per instance-second, or per instance-hour when {@code hourly}
     * @param hourly whether {@code rate} is per hour (costs then divide by 3600, rounded half-even to
     *     {@value #HOURLY_SCALE} places) rather than per second (exact)
     * @param minInstances instances kept running (and billed) even without traffic
     * @param scaleInDelay how long an instance stays (billed) after its last call
     * @param maxInstances the most instances the platform runs at once
     */
    record PerInstanceSecond(BigDecimal rate, boolean hourly, int minInstances, Duration scaleInDelay, int maxInstances)
            implements Pricing {
        /** Checks that nothing is negative and {@code 0 <= minInstances <= maxInstances}, {@code maxInstances >= 1}. */
        public PerInstanceSecond {
            requireNonNegative(rate, "rate");
            requireNonNegative(scaleInDelay, "scaleInDelay");
            if (maxInstances < 1) {
                throw new IllegalArgumentException("maxInstances must be at least 1, got " + maxInstances);
            }
            if (minInstances < 0 || minInstances > maxInstances) {
                throw new IllegalArgumentException(
                        "minInstances must be from 0 to maxInstances (" + maxInstances + "), got " + minInstances);
            }
        }

        /** Priced per instance-second. */
        public static PerInstanceSecond perSecond(
                BigDecimal perInstanceSecond, int minInstances, Duration scaleInDelay, int maxInstances) {
            return new PerInstanceSecond(perInstanceSecond, false, minInstances, scaleInDelay, maxInstances);
        }

        /** Priced per instance-hour. */
        public static PerInstanceSecond perHour(
                BigDecimal perHour, int minInstances, Duration scaleInDelay, int maxInstances) {
            return new PerInstanceSecond(perHour, true, minInstances, scaleInDelay, maxInstances);
        }

        /** What {@code time} of one instance costs. */
        public BigDecimal instanceCost(Duration time) {
            return hourly ? Pricing.hourly(rate, time) : rate.multiply(seconds(time));
        }

        @Override
        public BigDecimal costOf(BillableUsage usage) {
            return instanceCost(usage.instanceTime());
        }

        /** Always, unless free: the SDK infers the instances from the calls it sees. */
        @Override
        public boolean isEstimate(BillableUsage usage) {
            return rate.signum() != 0;
        }

        @Override
        public String describe() {
            return formatUsd(rate) + (hourly ? "/instance-hour" : "/instance-second") + ", " + minInstances + " to "
                    + maxInstances + " instances, scale-in after " + scaleInDelay.toSeconds() + " s (estimated)";
        }
    }

    /**
     * Hardware the user already owns (the local GPU): free, or an amortized hourly figure for hardware
     * and power applied to the time each call occupied it.
     *
     * @param perHour USD per hour of occupancy; zero for free
     */
    record Amortized(BigDecimal perHour) implements Pricing {
        /** Checks that the rate is not negative. */
        public Amortized {
            requireNonNegative(perHour, "perHour");
        }

        @Override
        public BigDecimal costOf(BillableUsage usage) {
            return perHour.signum() == 0 ? BigDecimal.ZERO : hourly(perHour, usage.instanceTime());
        }

        /** Never: an amortized figure is the user's own. */
        @Override
        public boolean isEstimate(BillableUsage usage) {
            return false;
        }

        @Override
        public String describe() {
            return perHour.signum() == 0 ? "free" : formatUsd(perHour) + "/hour amortized";
        }
    }

    /** {@code duration} in seconds, exact to the nanosecond. */
    private static BigDecimal seconds(Duration duration) {
        return BigDecimal.valueOf(duration.getSeconds()).add(BigDecimal.valueOf(duration.getNano(), 9));
    }

    /** {@code time} rounded up to a whole number of {@code increment}s (none when zero), at least {@code minimum}. */
    private static Duration billedTime(Duration time, Duration increment, Duration minimum) {
        long nanos = time.toNanos();
        long inc = increment.toNanos();
        if (inc > 0) {
            nanos = Math.multiplyExact(Math.floorDiv(nanos + inc - 1, inc), inc);
        }
        return Duration.ofNanos(Math.max(nanos, minimum.toNanos()));
    }

    /** {@code perHour} applied to {@code duration}, at {@link #HOURLY_SCALE}. */
    private static BigDecimal hourly(BigDecimal perHour, Duration duration) {
        return perHour.multiply(seconds(duration))
                .divide(BigDecimal.valueOf(3600), HOURLY_SCALE, RoundingMode.HALF_EVEN);
    }

    private static void requireNonNegative(BigDecimal value, String name) {
        Objects.requireNonNull(value, name);
        if (value.signum() < 0) {
            throw new IllegalArgumentException(name + " must not be negative, got " + value.toPlainString());
        }
    }

    private static void requireNonNegative(Duration value, String name) {
        Objects.requireNonNull(value, name);
        if (value.isNegative()) {
            throw new IllegalArgumentException(name + " must not be negative, got " + value);
        }
    }
}
