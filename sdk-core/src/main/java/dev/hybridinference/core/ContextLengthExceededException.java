package dev.hybridinference.core;

import java.time.Duration;

/** The prompt plus the requested output exceed the model's context. Not retryable on the same model; a router may move it to a model with a longer context. */
public class ContextLengthExceededException extends InvalidRequestException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public ContextLengthExceededException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }
}
