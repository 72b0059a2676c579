package dev.hybridinference.core;

import java.time.Duration;

/** The provider rejected the credentials (HTTP 401 or 403). Not retryable: fix the key, token or role. */
public class AuthenticationException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public AuthenticationException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }
}
