package dev.hybridinference.core.internal;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;

/** The provider factories on the classpath, by type. Internal: not part of the public API. */
public final class ProviderRegistry {
    private final Map<String, InferenceProviderFactory> factories;

    private ProviderRegistry(Map<String, InferenceProviderFactory> factories) {
        this.factories = factories;
    }

    /** Loads every factory visible to {@code loader}; fails on two factories of one type. */
    public static ProviderRegistry load(ClassLoader loader) {
        Map<String, InferenceProviderFactory> found = new TreeMap<>();
        for (InferenceProviderFactory f : ServiceLoader.load(InferenceProviderFactory.class, loader)) {
            InferenceProviderFactory previous = found.putIfAbsent(f.type(), f);
            if (previous != null && previous.getClass() != f.getClass()) {
                throw new ConfigurationException(
                        "",
                        "two provider factories claim the type \"" + f.type() + "\": "
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
            throw new ConfigurationException(
                    path,
                    "unknown provider type \"" + type + "\"; types on the classpath: "
                            + (factories.isEmpty() ? "none" : String.join(", ", factories.keySet()))
                            + " (each provider type comes in its own module, such as provider-" + type + ")");
        }
        return f;
    }
}
