package dev.hybridinference.core.cost;

import java.math.BigDecimal;
import java.util.Map;

/**
 * Cost totals over some set of recorded receipts.
 *
 * @param calls how many receipts
 * @param total their summed cost, USD
 * @param byProvider cost per provider id
 * @param byModel cost per model
 * @param byTag cost per tag key, then per tag value
 */
public record LedgerTotals(
        long calls,
        BigDecimal total,
        Map<String, BigDecimal> byProvider,
        Map<String, BigDecimal> byModel,
        Map<String, Map<String, BigDecimal>> byTag) {
    /** Copies the maps. */
    public LedgerTotals {
        byProvider = Map.copyOf(byProvider);
        byModel = Map.copyOf(byModel);
        byTag = Map.copyOf(byTag);
    }

    /** The cost attributed to one provider; zero when it has none. */
    public BigDecimal provider(String providerId) {
        return byProvider.getOrDefault(providerId, BigDecimal.ZERO);
    }

    /** The cost attributed to one tag value; zero when it has none. */
    public BigDecimal tag(String key, String value) {
        return byTag.getOrDefault(key, Map.of()).getOrDefault(value, BigDecimal.ZERO);
    }
}
