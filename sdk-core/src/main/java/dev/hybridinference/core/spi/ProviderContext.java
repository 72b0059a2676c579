package dev.hybridinference.core.spi;

import dev.hybridinference.core.cost.CostLedger;
import java.time.Clock;
import java.util.Objects;

/**
 * What a provider factory gets to build a client.
 *
 * @param id the provider id (its key under {@code providers:})
 * @param config the provider's section of the configuration
 * @param ledger the ledger its receipts go to
 * @param clock the wall clock for receipts and schedules
 */
public record ProviderContext(String id, ConfigNode config, CostLedger ledger, Clock clock) {
    /** Checks that every part is present. */
    public ProviderContext {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(ledger, "ledger");
        Objects.requireNonNull(clock, "clock");
    }
}
