package dev.hybridinference.core;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.Objects;

/**
 * How a provider bills, and what one call costs under it. Money is exact {@link BigDecimal} USD.
 *
 * <p>Per-token and per-compute-time costs are exact. Costs derived from an hourly rate divide by 3600
 * and are rounded half-even to {@value #HOURLY_SCALE} decimal places (a millionth of a micro-dollar).
 */
public sealed interface Pricing
        permits Pricing.PerToken, Pricing.PerComputeTime, Pricing.PerInstanceHour, Pricing.Amortized {

    /** Decimal places kept when an hourly rate is divided into seconds. */
    int HOURLY_SCALE = 12;

    /** No cost at all. */
    Pricing FREE = new Amortized(BigDecimal.ZERO);

    /** The cost of one call that used {@code usage}. */
    BigDecimal costOf(BillableUsage usage);

    /** A short human-readable description, such as {@code $0.50/M in, $1.50/M out}. */
    String describe();

    /**
     * What a call consumed that a price can apply to.
     *
     * @param tokens the call's token counts
     * @param computeTime how long the call ran, as a per-use platform bills it
     * @param instanceTime the share of always-on instance time attributed to the call
     */
    record BillableUsage(Usage tokens, Duration computeTime, Duration instanceTime) {
        /** Checks that nothing is missing or negative. */
        public BillableUsage {
            Objects.requireNonNull(tokens, "tokens");
            requireNonNegative(computeTime, "computeTime");
            requireNonNegative(instanceTime, "instanceTime");
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

        @Override
        public String describe() {
            return "$" + inputPerMillion.toPlainString() + "/M in, $" + outputPerMillion.toPlainString() + "/M out";
        }
    }

    /**
     * Billed per second of compute (SageMaker Serverless by memory size, Cloud Run by instance time).
     * Each call's time is rounded up to the increment, raised to the minimum, and the per-request fee
     * is added.
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
            long nanos = computeTime.toNanos();
            long inc = billingIncrement.toNanos();
            if (inc > 0) {
                nanos = Math.multiplyExact(Math.floorDiv(nanos + inc - 1, inc), inc);
            }
            return Duration.ofNanos(Math.max(nanos, minimumBilled.toNanos()));
        }

        @Override
        public BigDecimal costOf(BillableUsage usage) {
            BigDecimal seconds = seconds(billedTime(usage.computeTime()));
            return perSecond.multiply(seconds).add(perRequest);
        }

        @Override
        public String describe() {
            return "$" + perSecond.toPlainString() + "/s compute, billed per " + billingIncrement.toMillis()
                    + " ms, minimum " + minimumBilled.toMillis() + " ms, $" + perRequest.toPlainString()
                    + "/request";
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

        /** What the whole capacity costs over {@code uptime}. */
        public BigDecimal capacityCost(Duration uptime) {
            return hourly(perHour.multiply(BigDecimal.valueOf(instances)), uptime);
        }

        @Override
        public String describe() {
            return "$" + perHour.toPlainString() + "/instance-hour x " + instances;
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

        @Override
        public String describe() {
            return perHour.signum() == 0 ? "free" : "$" + perHour.toPlainString() + "/hour amortized";
        }
    }

    /** {@code duration} in seconds, exact to the nanosecond. */
    private static BigDecimal seconds(Duration duration) {
        return BigDecimal.valueOf(duration.getSeconds()).add(BigDecimal.valueOf(duration.getNano(), 9));
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
