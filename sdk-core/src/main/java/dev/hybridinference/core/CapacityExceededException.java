package dev.hybridinference.core;

import java.time.Duration;

/** The provider or its queue is full (or a local in-flight limit is reached). Retryable, here later or elsewhere now. */
public class CapacityExceededException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public CapacityExceededException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isRetryable() {
        return true;
    }
}
