package dev.hybridinference.core;

import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.ProviderContext;

/** A second factory claiming the type {@code echo}, to test the conflict error. */
public final class DuplicateEchoFactory implements InferenceProviderFactory {
    @Override
    public String type() {
        return "echo";
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        throw new UnsupportedOperationException();
    }
}
