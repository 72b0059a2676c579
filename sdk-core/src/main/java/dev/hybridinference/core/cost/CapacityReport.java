package dev.hybridinference.core.cost;

import java.math.BigDecimal;
import java.time.Duration;

/**
 * What always-on capacity cost over its uptime, split into the part attributed to calls and the idle
 * rest. {@code attributed + idle == billed}.
 *
 * @param providerId the provider whose capacity this is
 * @param uptime how long the capacity has been billed
 * @param billed what the platform bills for that uptime
 * @param attributed the summed cost of the calls recorded on it
 * @param idle billed minus attributed: capacity paid for and not used
 */
public record CapacityReport(
        String providerId, Duration uptime, BigDecimal billed, BigDecimal attributed, BigDecimal idle) {

    /** The share of the bill that calls used, from 0 to 1; zero when nothing was billed yet. */
    public double utilization() {
        return billed.signum() == 0 ? 0 : attributed.doubleValue() / billed.doubleValue();
    }
}
