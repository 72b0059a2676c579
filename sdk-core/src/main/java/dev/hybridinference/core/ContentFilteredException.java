package dev.hybridinference.core;

import java.time.Duration;
import java.util.Optional;

/**
 * The platform's content filter blocked the prompt or the answer. Not retryable: the same request is
 * filtered again. {@link #stage()} says which was blocked and {@link #filtered()} what the service said it
 * filtered (Azure's categories and severities, such as {@code "violence (medium)"}), when it said. A
 * filtered answer still costs what the service bills for it: the exception's {@link #partialReceipt()}
 * charges the tokens the service counted.
 */
public class ContentFilteredException extends InferenceException {
    /** What the filter blocked. */
    public enum Stage {
        /** The request's prompt: nothing was generated. */
        PROMPT,
        /** The answer, during or after generation. */
        ANSWER,
        /** Not said. */
        UNKNOWN
    }

    private final Stage stage;
    private final String filtered;

    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters. The stage is unknown.
     */
    public ContentFilteredException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
        this.stage = Stage.UNKNOWN;
        this.filtered = null;
    }

    /**
     * Creates the exception for a known stage.
     *
     * @param stage what the filter blocked
     * @param filtered the service's categories and severities, or null when it did not say
     * @param message what was filtered
     * @param providerId the provider
     * @param endpoint the endpoint, without credentials
     * @param statusCode the HTTP status, or 0 (a filter that ended a stream)
     */
    public ContentFilteredException(
            Stage stage, String filtered, String message, String providerId, String endpoint, int statusCode) {
        super(message, providerId, endpoint, statusCode, null, null);
        this.stage = java.util.Objects.requireNonNull(stage, "stage");
        this.filtered = filtered == null || filtered.isEmpty() ? null : filtered;
    }

    /** What the filter blocked: the prompt or the answer. */
    public Stage stage() {
        return stage;
    }

    /** The categories the service said it filtered, with their severities, such as {@code "hate (high)"}. */
    public Optional<String> filtered() {
        return Optional.ofNullable(filtered);
    }
}
