package dev.hybridinference.core;

import java.time.Duration;

/** The provider could not be reached or failed on its side (connection refused, HTTP 5xx, unhealthy). Retryable, preferably elsewhere. */
public class ProviderUnavailableException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public ProviderUnavailableException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isRetryable() {
        return true;
    }
}
