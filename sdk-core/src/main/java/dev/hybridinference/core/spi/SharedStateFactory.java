package dev.hybridinference.core.spi;

import java.util.Objects;

/**
 * Builds the {@link SharedState} of the configuration's top-level {@code state:} section, which names a
 * {@code type}; the factory of that type builds the store. Implementations are listed in {@code
 * META-INF/services/dev.hybridinference.core.spi.SharedStateFactory} and found with {@link
 * java.util.ServiceLoader}; two factories of one type are an error. The {@code state-redis} module's type is
 * {@code redis}.
 *
 * <p>The core reads one key of the section itself and takes it out before the factory sees it: {@code
 * slotLease}, how long an in-flight slot is leased (see {@link
 * dev.hybridinference.core.routing.HybridClient.Builder#sharedSlotLease}). The store built is closed when
 * the client built from the configuration closes.
 */
public interface SharedStateFactory {
    /** The type name used in configuration ({@code redis}, ...). */
    String type();

    /**
     * Builds the store from its section, validating every key ({@code type} is left in). It should not
     * need its server to be reachable: a store that cannot connect yet throws from its operations, and the
     * client runs on its own state until it can.
     *
     * @throws dev.hybridinference.core.ConfigurationException naming the offending key
     */
    SharedState create(Context context);

    /**
     * What a factory gets.
     *
     * @param config the {@code state} section
     * @param time the clocks of the configuration's clients
     */
    record Context(ConfigNode config, TimeSource time) {
        /** Checks that every part is present. */
        public Context {
            Objects.requireNonNull(config, "config");
            Objects.requireNonNull(time, "time");
        }
    }
}
