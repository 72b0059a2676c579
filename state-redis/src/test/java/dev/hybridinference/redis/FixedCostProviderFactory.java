package dev.hybridinference.redis;

import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.ProviderContext;
import java.math.BigDecimal;
import java.util.Set;

/** The test provider type {@code fixed-test}: a {@link FixedCostClient} of a cent a call. */
public final class FixedCostProviderFactory implements InferenceProviderFactory {
    @Override
    public String type() {
        return "fixed-test";
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        context.config().allowOnly(Set.of("type"));
        return new FixedCostClient(context.id(), new BigDecimal("0.01"));
    }
}
