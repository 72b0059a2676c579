package dev.hybridinference.core;

import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.ProviderContext;

/**
 * A test factory, type {@code explode}, that fails the way careless factories do: its {@code mode} key
 * picks the exception. Registered only through a class loader a test builds, never on the test classpath.
 */
public final class ExplodingProviderFactory implements InferenceProviderFactory {
    @Override
    public String type() {
        return "explode";
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        String mode = context.config().string("mode").orElse("npe");
        String key = context.config().string("apiKey").orElse("none");
        switch (mode) {
            case "npe":
                throw new NullPointerException("no model for key " + key);
            case "arithmetic":
                throw new ArithmeticException("long overflow");
            case "class-cast":
                throw new ClassCastException("java.lang.String cannot be cast to java.lang.Integer");
            case "number-format":
                throw new NumberFormatException("For input string: \"abc\"");
            case "illegal-argument":
                throw new IllegalArgumentException("bad url http://admin:hunter2-Pass@host with key " + key);
            default:
                return null;
        }
    }
}
