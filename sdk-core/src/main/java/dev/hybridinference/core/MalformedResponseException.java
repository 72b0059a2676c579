package dev.hybridinference.core;

import java.time.Duration;

/** The provider answered with something that is not the protocol: unparsable JSON, a stream cut before its end. Retryable: another replica or a later try may answer correctly. */
public class MalformedResponseException extends InferenceException {
    /**
     * Creates the exception; see {@link InferenceException#InferenceException(String, String, String,
     * int, Duration, Throwable)} for the parameters.
     */
    public MalformedResponseException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(message, providerId, endpoint, statusCode, retryAfter, cause);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isRetryable() {
        return true;
    }
}
