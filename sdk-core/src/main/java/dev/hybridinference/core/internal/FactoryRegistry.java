package dev.hybridinference.core.internal;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.spi.InferenceListenerFactory;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.SharedStateFactory;
import java.util.Iterator;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * The factories of one kind on the classpath (providers, listeners, shared state), by the type they claim. Internal: not
 * part of the public API.
 *
 * @param <F> the factory interface
 */
public final class FactoryRegistry<F> {
    private final Map<String, F> factories;
    private final String noun;

    private FactoryRegistry(Map<String, F> factories, String noun) {
        this.factories = factories;
        this.noun = noun;
    }

    /** The provider factories visible to {@code loader}. */
    public static FactoryRegistry<InferenceProviderFactory> providers(ClassLoader loader) {
        return load(InferenceProviderFactory.class, InferenceProviderFactory::type, "provider", loader);
    }

    /** The listener factories visible to {@code loader}. */
    public static FactoryRegistry<InferenceListenerFactory> listeners(ClassLoader loader) {
        return load(InferenceListenerFactory.class, InferenceListenerFactory::type, "listener", loader);
    }

    /** The shared-state factories visible to {@code loader}. */
    public static FactoryRegistry<SharedStateFactory> sharedStates(ClassLoader loader) {
        return load(SharedStateFactory.class, SharedStateFactory::type, "state", loader);
    }

    /**
     * Loads every factory visible to {@code loader}; fails on two factories of one type, on a factory
     * without a type, and on a factory that cannot be instantiated (naming it), all as configuration
     * errors rather than as the service loader's own error.
     */
    private static <F> FactoryRegistry<F> load(
            Class<F> kind, Function<F, String> typeOf, String noun, ClassLoader loader) {
        Map<String, F> found = new TreeMap<>();
        Iterator<F> it = ServiceLoader.load(kind, loader).iterator();
        while (true) {
            F f;
            try {
                if (!it.hasNext()) {
                    break;
                }
                f = it.next();
            } catch (ServiceConfigurationError e) {
                throw new ConfigurationException(
                        "", "a " + noun + " factory on the classpath cannot be loaded: " + e.getMessage(), e);
            }
            String type = typeOf.apply(f);
            if (type == null || type.isBlank()) {
                throw new ConfigurationException(
                        "", "the " + noun + " factory " + f.getClass().getName() + " declares no type");
            }
            F previous = found.putIfAbsent(type, f);
            if (previous != null && previous.getClass() != f.getClass()) {
                throw new ConfigurationException(
                        "",
                        "two " + noun + " factories claim the type \"" + type + "\": "
                                + previous.getClass().getName() + " and "
                                + f.getClass().getName()
                                + "; remove one of their modules from the classpath");
            }
        }
        return new FactoryRegistry<>(found, noun);
    }

    /** The factory of {@code type}; the error names the known types. */
    public F get(String type, String path) {
        F f = factories.get(type);
        if (f == null) {
            String shown = type.length() > 60 ? type.substring(0, 60) + "..." : type;
            String module = noun.equals("provider") || noun.equals("state")
                    ? noun + "-" + shown
                    : "the module that provides it";
            throw new ConfigurationException(
                    path,
                    "unknown " + noun + " type \"" + shown + "\"; types on the classpath: "
                            + (factories.isEmpty() ? "none" : String.join(", ", factories.keySet()))
                            + (shown.matches("[a-z0-9-]+")
                                    ? " (each " + noun + " type comes in its own module, such as " + module + ")"
                                    : ""));
        }
        return f;
    }
}
