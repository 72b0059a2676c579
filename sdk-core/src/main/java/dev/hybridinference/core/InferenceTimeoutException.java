package dev.hybridinference.core;

/**
 * The call ran out of time: a connect, read or call timeout of the provider, or the request's own
 * deadline. Retryable only in the first case, since a passed deadline stays passed.
 */
public class InferenceTimeoutException extends InferenceException {
    private final boolean deadlineExceeded;

    /**
     * Creates the exception.
     *
     * @param message what timed out
     * @param providerId the provider, or null
     * @param endpoint the endpoint, or null
     * @param deadlineExceeded true when the request's own deadline passed
     * @param cause the underlying exception, or null
     */
    public InferenceTimeoutException(
            String message, String providerId, String endpoint, boolean deadlineExceeded, Throwable cause) {
        super(message, providerId, endpoint, 0, null, cause);
        this.deadlineExceeded = deadlineExceeded;
    }

    /** True when the request's deadline (not a provider timeout) passed. */
    public boolean isDeadlineExceeded() {
        return deadlineExceeded;
    }

    /** {@inheritDoc} */
    @Override
    public boolean isRetryable() {
        return !deadlineExceeded;
    }
}
