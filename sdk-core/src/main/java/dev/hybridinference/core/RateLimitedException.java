package dev.hybridinference.core;

import java.time.Duration;

/** The provider refused the call because the caller exceeded a rate or quota (HTTP 429). Retryable after {@link #retryAfter()}. */
public class RateLimitedException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public RateLimitedException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isRetryable() {
        return true;
    }
}
