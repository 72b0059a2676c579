package dev.hybridinference.core;

import java.time.Duration;

/** The caller cancelled the call, or closed its stream, before it ended. */
public class CancelledException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public CancelledException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }
}
