package dev.hybridinference.core;

import java.time.Duration;

/** A serverless provider was starting new capacity and did not answer in time. Retryable: the capacity is usually warm a little later. */
public class ColdStartTimeoutException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public ColdStartTimeoutException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isRetryable() {
        return true;
    }
}
