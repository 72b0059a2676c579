package dev.hybridinference.core.routing;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * A spending limit per period, for all calls or for those carrying given tags.
 *
 * @param name the budget's name, for messages
 * @param period the period; windows are aligned to the epoch in UTC, so {@code 1d} runs midnight to
 *     midnight UTC
 * @param limit USD per period
 * @param tags the tags a request must carry for the budget to apply; empty for every request
 * @param downgradeTier when spent, route to this tier instead; null to refuse with {@link
 *     dev.hybridinference.core.BudgetExceededException}
 */
public record Budget(String name, Duration period, BigDecimal limit, Map<String, String> tags, String downgradeTier) {
    /** Checks the parts. */
    public Budget {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(period, "period");
        if (period.isNegative() || period.isZero()) {
            throw new IllegalArgumentException("budget period must be positive, got " + period);
        }
        Objects.requireNonNull(limit, "limit");
        if (limit.signum() < 0) {
            throw new IllegalArgumentException("budget limit must not be negative, got " + limit);
        }
        tags = tags == null ? Map.of() : Map.copyOf(tags);
    }

    /** Whether the budget applies to a request with {@code requestTags}. */
    public boolean appliesTo(Map<String, String> requestTags) {
        for (Map.Entry<String, String> e : tags.entrySet()) {
            if (!e.getValue().equals(requestTags.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }
}
