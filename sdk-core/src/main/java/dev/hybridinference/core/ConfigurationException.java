package dev.hybridinference.core;

/**
 * A configuration is wrong: the message names the key path ({@code providers.main.pricing.perHour}) and
 * what was expected there. Raised at load time, before any call is made.
 */
public class ConfigurationException extends RuntimeException {
    private final String path;

    /**
     * Creates the exception.
     *
     * @param path the offending key path, dot-separated; empty for the document itself
     * @param message what was expected
     */
    public ConfigurationException(String path, String message) {
        super(path == null || path.isEmpty() ? message : path + ": " + message);
        this.path = path == null ? "" : path;
    }

    /**
     * Creates the exception with a cause.
     *
     * @param path the offending key path
     * @param message what was expected
     * @param cause the underlying error
     */
    public ConfigurationException(String path, String message, Throwable cause) {
        this(path, message);
        initCause(cause);
    }

    /** The offending key path, dot-separated; empty for the document itself. */
    public String path() {
        return path;
    }
}
