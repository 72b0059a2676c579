package dev.hybridinference.core.internal;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import java.util.Iterator;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.TreeMap;

/** The provider factories on the classpath, by type. Internal: not part of the public API. */
public final class ProviderRegistry {
    private final Map<String, InferenceProviderFactory> factories;

    private ProviderRegistry(Map<String, InferenceProviderFactory> factories) {
        this.factories = factories;
    }

    /**
     * Loads every factory visible to {@code loader}; fails on two factories of one type, on a factory
     * without a type, and on a factory that cannot be instantiated (naming it), all as configuration
     * errors rather than as the service loader's own error.
     */
    public static ProviderRegistry load(ClassLoader loader) {
        Map<String, InferenceProviderFactory> found = new TreeMap<>();
        Iterator<InferenceProviderFactory> it =
                ServiceLoader.load(InferenceProviderFactory.class, loader).iterator();
        while (true) {
            InferenceProviderFactory f;
            try {
                if (!it.hasNext()) {
                    break;
                }
                f = it.next();
            } catch (ServiceConfigurationError e) {
                throw new ConfigurationException(
                        "", "a provider factory on the classpath cannot be loaded: " + e.getMessage(), e);
            }
            String type = f.type();
            if (type == null || type.isBlank()) {
                throw new ConfigurationException(
                        "", "the provider factory " + f.getClass().getName() + " declares no type");
            }
            InferenceProviderFactory previous = found.putIfAbsent(type, f);
            if (previous != null && previous.getClass() != f.getClass()) {
                throw new ConfigurationException(
                        "",
                        "two provider factories claim the type \"" + type + "\": "
                                + previous.getClass().getName() + " and "
                                + f.getClass().getName()
                                + "; remove one of their modules from the classpath");
            }
        }
        return new ProviderRegistry(found);
    }

    /** The factory of {@code type}; the error names the known types. */
    public InferenceProviderFactory get(String type, String path) {
        InferenceProviderFactory f = factories.get(type);
        if (f == null) {
            String shown = type.length() > 60 ? type.substring(0, 60) + "..." : type;
            throw new ConfigurationException(
                    path,
                    "unknown provider type \"" + shown + "\"; types on the classpath: "
                            + (factories.isEmpty() ? "none" : String.join(", ", factories.keySet()))
                            + (shown.matches("[a-z0-9-]+")
                                    ? " (each provider type comes in its own module, such as provider-" + shown + ")"
                                    : ""));
        }
        return f;
    }
}
