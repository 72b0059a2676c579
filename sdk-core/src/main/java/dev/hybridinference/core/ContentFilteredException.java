package dev.hybridinference.core;

import java.time.Duration;

/** The platform's content filter blocked the prompt or the answer. Not retryable. */
public class ContentFilteredException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public ContentFilteredException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }
}
