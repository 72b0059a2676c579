package dev.hybridinference.core;

import java.time.Duration;

/** The provider rejected the request itself (HTTP 400, 404, 422): an unknown model, a bad parameter. Not retryable as it stands. */
public class InvalidRequestException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public InvalidRequestException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }
}
