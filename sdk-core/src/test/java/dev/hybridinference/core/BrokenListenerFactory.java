package dev.hybridinference.core;

import dev.hybridinference.core.spi.InferenceListenerFactory;

/** A test listener factory, type {@code broken}, that fails as one whose store cannot be reached does. */
public final class BrokenListenerFactory implements InferenceListenerFactory {
    @Override
    public String type() {
        return "broken";
    }

    @Override
    public InferenceListener create(Context context) {
        throw new IllegalStateException("the spend log cannot be reached");
    }
}
