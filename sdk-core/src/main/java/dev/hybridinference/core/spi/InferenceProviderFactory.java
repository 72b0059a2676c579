package dev.hybridinference.core.spi;

import dev.hybridinference.core.InferenceClient;

/**
 * Builds the clients of one provider type from configuration. Implementations are listed in {@code
 * META-INF/services/dev.hybridinference.core.spi.InferenceProviderFactory} and found with {@link
 * java.util.ServiceLoader}; two factories of the same type on the classpath are an error.
 */
public interface InferenceProviderFactory {
    /** The type name used in configuration ({@code vllm}, {@code sagemaker}, ...). */
    String type();

    /**
     * Builds a client from its configuration section, validating every key. The keys the core reads in
     * every provider section, {@code capabilities} and {@code modelAliases}, have been taken out of the
     * section before this is called, so a factory never lists them; {@code type} is left in.
     *
     * @throws dev.hybridinference.core.ConfigurationException naming the offending key when the section
     *     is wrong
     */
    InferenceClient create(ProviderContext context);
}
