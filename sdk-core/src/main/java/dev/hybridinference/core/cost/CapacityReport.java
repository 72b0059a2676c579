package dev.hybridinference.core.cost;

import dev.hybridinference.core.Pricing;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.Objects;

/**
 * What instance-billed capacity cost over its uptime, split into the part attributed to calls and the
 * idle rest. {@code attributed + idle == billed}. Immutable.
 *
 * @param providerId the provider whose capacity this is
 * @param uptime how long the capacity has been billed
 * @param billed what the platform bills for that uptime: the pricing applied to {@code instanceTime}
 * @param attributed the summed cost of the calls recorded on it
 * @param idle billed minus attributed: capacity paid for and not used
 * @param instanceTime the instance time billed: instances times uptime for configured instances; the
 *     estimated lifetimes (see {@link InstanceLifetimes}) for instances a platform starts and stops
 * @param instances the instances billed now (for estimated capacity, those estimated live)
 * @param estimated whether the bill rests on instance counts the SDK estimated rather than on configured
 *     ones
 */
public record CapacityReport(
        String providerId,
        Duration uptime,
        BigDecimal billed,
        BigDecimal attributed,
        BigDecimal idle,
        Duration instanceTime,
        int instances,
        boolean estimated) {

    /** Checks that nothing is missing. */
    public CapacityReport {
        Objects.requireNonNull(providerId, "providerId");
        Objects.requireNonNull(uptime, "uptime");
        Objects.requireNonNull(billed, "billed");
        Objects.requireNonNull(attributed, "attributed");
        Objects.requireNonNull(idle, "idle");
        Objects.requireNonNull(instanceTime, "instanceTime");
    }

    /** The share of the bill that calls used, from 0 to 1; zero when nothing was billed yet. */
    public double utilization() {
        return billed.signum() == 0 ? 0 : attributed.doubleValue() / billed.doubleValue();
    }

    /**
     * One line for logs, amounts without trailing zeros: {@code main: billed $0.0041 = attributed $0.0003 +
     * idle $0.0038 over 3600 ms of uptime, 1 instance}, with {@code (estimated)} where it applies.
     */
    public String summary() {
        return providerId + ": billed " + Pricing.formatUsd(billed) + " = attributed " + Pricing.formatUsd(attributed)
                + " + idle " + Pricing.formatUsd(idle) + " over " + uptime.toMillis() + " ms of uptime, "
                + instances + (instances == 1 ? " instance" : " instances") + (estimated ? " (estimated)" : "");
    }
}
