package dev.hybridinference.otel;

import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceListenerFactory;
import java.util.List;
import java.util.Set;

/**
 * Builds an {@link OpenTelemetryListener} from a configuration's {@code listeners} entry of type {@code
 * otel}, recording to {@link io.opentelemetry.api.GlobalOpenTelemetry} (install the SDK before loading the
 * configuration):
 *
 * <pre>{@code
 * listeners:
 *   - type: otel
 *     tags: [tenant, feature]   # request tags that become metric attributes; none by default
 *     attemptSpans: true        # a span per attempt, under the call's; true by default
 *     capacity: [vllm-main]     # capacity gauges of these providers, from the configuration's ledger
 * }</pre>
 *
 * The listener is closed with the client built from the configuration.
 */
public final class OpenTelemetryListenerFactory implements InferenceListenerFactory {
    /** The type name in configuration. */
    public static final String TYPE = "otel";

    private static final Set<String> KEYS = Set.of("type", "tags", "attemptSpans", "capacity");

    /** Used by {@link java.util.ServiceLoader}. */
    public OpenTelemetryListenerFactory() {}

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public InferenceListener create(Context context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        OpenTelemetryListener.Builder b = OpenTelemetryListener.builder()
                .metricTags(ListenerOptions.tags(c))
                .attemptSpans(c.bool("attemptSpans").orElse(true));
        List<String> capacity = ListenerOptions.capacity(c);
        if (!capacity.isEmpty()) {
            b.capacity(context.ledger(), capacity);
        }
        return b.build();
    }
}
