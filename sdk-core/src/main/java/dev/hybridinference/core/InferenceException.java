package dev.hybridinference.core;

import dev.hybridinference.core.spi.Secrets;
import java.time.Duration;
import java.util.Optional;

/**
 * Root of every error a call can raise. Unchecked. Its subclass says what went wrong; {@link
 * #isRetryable()} says whether trying again (here or elsewhere) can help, and {@link #retryAfter()} how
 * long the provider asked to wait.
 *
 * <p>Messages name the provider and the endpoint and never hold credentials: every message, and the
 * message of every cause, passes through {@link Secrets#redact(String)}. The provider's own exception,
 * when there is one, is the cause (a redacted copy where its message carried a secret).
 */
public class InferenceException extends RuntimeException {
    private final String providerId;
    private final String endpoint;
    private final int statusCode;
    private final Duration retryAfter;
    private volatile Receipt partialReceipt;

    /**
     * Creates an exception.
     *
     * @param message what went wrong and, where it helps, what to do
     * @param providerId the provider that failed, or null when none was involved yet
     * @param endpoint where inside the provider (a URL without credentials), or null
     * @param statusCode the HTTP status, or 0 when there was none
     * @param retryAfter how long the provider asked to wait, or null
     * @param cause the underlying exception, or null
     */
    public InferenceException(
            String message, String providerId, String endpoint, int statusCode, Duration retryAfter, Throwable cause) {
        super(Secrets.redact(format(message, providerId, endpoint, statusCode)), Secrets.redact(cause));
        this.providerId = providerId;
        this.endpoint = endpoint;
        this.statusCode = statusCode;
        this.retryAfter = retryAfter;
    }

    private static String format(String message, String providerId, String endpoint, int statusCode) {
        StringBuilder sb = new StringBuilder();
        if (providerId != null) {
            sb.append(providerId);
            if (endpoint != null && !endpoint.isEmpty()) {
                sb.append(" (").append(endpoint).append(')');
            }
            sb.append(": ");
        }
        if (statusCode > 0) {
            sb.append("HTTP ").append(statusCode).append(": ");
        }
        return sb.append(message).toString();
    }

    /** Whether another attempt, on this provider or another, can succeed. */
    public boolean isRetryable() {
        return false;
    }

    /** How long the provider asked callers to wait before retrying, if it said. */
    public Optional<Duration> retryAfter() {
        return Optional.ofNullable(retryAfter);
    }

    /** The provider that raised the error, if any. */
    public Optional<String> providerId() {
        return Optional.ofNullable(providerId);
    }

    /** The endpoint that failed, if known. Never holds credentials. */
    public Optional<String> endpoint() {
        return Optional.ofNullable(endpoint);
    }

    /** The HTTP status code, or 0 when the failure was not an HTTP response. */
    public int statusCode() {
        return statusCode;
    }

    /**
     * The receipt of what the call did before it failed (attempts, time, tokens already streamed), when
     * the call got far enough to have one.
     */
    public Optional<Receipt> partialReceipt() {
        return Optional.ofNullable(partialReceipt);
    }

    /** Attaches the receipt of the failed call; used by the client that ran it. */
    public InferenceException withPartialReceipt(Receipt receipt) {
        this.partialReceipt = receipt;
        return this;
    }
}
