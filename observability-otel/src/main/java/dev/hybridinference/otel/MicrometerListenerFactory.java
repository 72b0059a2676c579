package dev.hybridinference.otel;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceListenerFactory;
import java.util.List;
import java.util.Set;

/**
 * Builds a {@link MicrometerBinder} from a configuration's {@code listeners} entry of type {@code
 * micrometer}, bound to {@code io.micrometer.core.instrument.Metrics.globalRegistry}:
 *
 * <pre>{@code
 * listeners:
 *   - type: micrometer
 *     tags: [tenant]            # request tags that become meter tags; none by default
 *     capacity: [vllm-main]     # capacity gauges of these providers, from the configuration's ledger
 * }</pre>
 *
 * Micrometer is an optional dependency of this module: without {@code io.micrometer:micrometer-core} on the
 * class path this type fails at load time with a message that says so. The binder is closed (its gauges
 * removed) with the client built from the configuration.
 */
public final class MicrometerListenerFactory implements InferenceListenerFactory {
    /** The type name in configuration. */
    public static final String TYPE = "micrometer";

    private static final Set<String> KEYS = Set.of("type", "tags", "capacity");

    /** Used by {@link java.util.ServiceLoader}. */
    public MicrometerListenerFactory() {}

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public InferenceListener create(Context context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        List<String> tags = ListenerOptions.tags(c);
        List<String> capacity = ListenerOptions.capacity(c);
        if (!micrometerPresent()) {
            throw new ConfigurationException(
                    c.pathOf("type"),
                    "the micrometer listener needs io.micrometer:micrometer-core on the class path; add it, or"
                            + " use type otel");
        }
        // Micrometer's types are named only past this point, so the factory loads without them.
        return GlobalBinding.create(tags, context.ledger(), capacity);
    }

    private static boolean micrometerPresent() {
        try {
            Class.forName(
                    "io.micrometer.core.instrument.Metrics", false, MicrometerListenerFactory.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /** The part that touches Micrometer, loaded only when it is present. */
    private static final class GlobalBinding {
        static InferenceListener create(
                List<String> tags, dev.hybridinference.core.cost.CostLedger ledger, List<String> capacity) {
            MicrometerBinder.Builder b = MicrometerBinder.builder().metricTags(tags);
            if (!capacity.isEmpty()) {
                b.capacity(ledger, capacity);
            }
            MicrometerBinder binder = b.build();
            binder.bindTo(io.micrometer.core.instrument.Metrics.globalRegistry);
            return binder;
        }
    }
}
