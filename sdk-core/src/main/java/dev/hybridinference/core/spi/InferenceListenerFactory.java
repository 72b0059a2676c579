package dev.hybridinference.core.spi;

import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.cost.CostLedger;
import java.util.Objects;

/**
 * Builds listeners from configuration: each entry of the configuration's {@code listeners} list (and its
 * {@code ledger} section, a durable spend log) names a {@code type}, and the factory of that type builds the
 * listener. Implementations are listed in {@code META-INF/services/dev.hybridinference.core.spi.InferenceListenerFactory}
 * and found with {@link java.util.ServiceLoader}; two factories of one type are an error.
 *
 * <p>A listener that implements {@link AutoCloseable} is closed when the client built from the configuration
 * closes, after its members (so that it sees their last calls).
 */
public interface InferenceListenerFactory {
    /** The type name used in configuration ({@code otel}, {@code jdbc}, ...). */
    String type();

    /**
     * Builds a listener from its section, validating every key ({@code type} is left in).
     *
     * @throws dev.hybridinference.core.ConfigurationException naming the offending key
     */
    InferenceListener create(Context context);

    /**
     * What a listener factory gets.
     *
     * @param config the listener's section
     * @param ledger the ledger the configuration's providers record into
     * @param time the clocks of the configuration's clients
     */
    record Context(ConfigNode config, CostLedger ledger, TimeSource time) {
        /** Checks that every part is present. */
        public Context {
            Objects.requireNonNull(config, "config");
            Objects.requireNonNull(ledger, "ledger");
            Objects.requireNonNull(time, "time");
        }
    }
}
