package dev.hybridinference.sagemaker;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ColdStartTimeoutException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.http.HttpErrors;
import dev.hybridinference.core.spi.CallContext;
import java.io.IOException;
import java.time.Clock;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.AbortedException;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.services.sagemakerruntime.model.InternalDependencyException;
import software.amazon.awssdk.services.sagemakerruntime.model.InternalFailureException;
import software.amazon.awssdk.services.sagemakerruntime.model.InternalStreamFailureException;
import software.amazon.awssdk.services.sagemakerruntime.model.ModelErrorException;
import software.amazon.awssdk.services.sagemakerruntime.model.ModelNotReadyException;
import software.amazon.awssdk.services.sagemakerruntime.model.ModelStreamErrorException;
import software.amazon.awssdk.services.sagemakerruntime.model.ServiceUnavailableException;
import software.amazon.awssdk.services.sagemakerruntime.model.ValidationErrorException;

/**
 * SageMaker's errors as the core's exceptions (PROVIDERS.md 1.4 in the project's reference):
 *
 * <ul>
 *   <li>{@code ValidationError} → invalid request, or context length exceeded when its message says so;
 *   <li>{@code ModelError} (the container answered an error) → by the container's own status and body:
 *       429 rate limited, 5xx unavailable, a context overflow as such, else invalid request; the exception
 *       carries the container's status;
 *   <li>{@code ModelNotReadyException} → cold-start timeout (retryable: the endpoint is provisioning);
 *   <li>{@code ThrottlingException} → rate limited; {@code InternalFailure}, {@code ServiceUnavailable},
 *       {@code InternalDependencyException} → unavailable;
 *   <li>in-stream {@code ModelStreamError} and {@code InternalStreamFailure} → unavailable;
 *   <li>the SDK's API-call timeouts → timeout (the call's deadline when it has all but passed); an aborted
 *       call after a cancel → cancelled; an event-stream frame failing its CRC → malformed response;
 *       other client-side failures → unavailable, I/O failures as the core reads them.
 * </ul>
 */
final class SageMakerErrors {
    private SageMakerErrors() {}

    /** The exception for {@code t}, thrown by the SDK (or wrapped by its futures) during {@code ctx}'s call. */
    static InferenceException map(Throwable t, String providerId, String endpoint, CallContext ctx, Clock clock) {
        t = unwrap(t);
        if (t instanceof InferenceException) {
            return (InferenceException) t;
        }
        if (ctx != null && ctx.isCancelled()) {
            return new CancelledException("call cancelled", providerId, endpoint, 0, null, t);
        }
        if (t instanceof ModelErrorException) {
            ModelErrorException e = (ModelErrorException) t;
            int status = e.originalStatusCode() == null ? 500 : e.originalStatusCode();
            String body = e.originalMessage() == null ? message(e) : e.originalMessage();
            return HttpErrors.forStatus(providerId, endpoint, status, h -> null, body, clock);
        }
        if (t instanceof ValidationErrorException) {
            return HttpErrors.forStatus(providerId, endpoint, 400, h -> null, message((AwsServiceException) t), clock);
        }
        if (t instanceof ModelNotReadyException) {
            return new ColdStartTimeoutException(
                    "the model is not ready (the endpoint is starting capacity): " + message((AwsServiceException) t),
                    providerId,
                    endpoint,
                    429,
                    null,
                    t);
        }
        if (t instanceof ModelStreamErrorException) {
            ModelStreamErrorException e = (ModelStreamErrorException) t;
            return new ProviderUnavailableException(
                    "the model's stream failed (" + e.errorCode() + "): " + message(e),
                    providerId,
                    endpoint,
                    0,
                    null,
                    e);
        }
        if (t instanceof InternalStreamFailureException) {
            return new ProviderUnavailableException(
                    "SageMaker's stream failed: " + message((AwsServiceException) t), providerId, endpoint, 0, null, t);
        }
        if (t instanceof InternalFailureException
                || t instanceof ServiceUnavailableException
                || t instanceof InternalDependencyException) {
            AwsServiceException e = (AwsServiceException) t;
            return new ProviderUnavailableException(message(e), providerId, endpoint, e.statusCode(), null, e);
        }
        if (t instanceof AwsServiceException) {
            AwsServiceException e = (AwsServiceException) t;
            String code = e.awsErrorDetails() == null
                    ? ""
                    : String.valueOf(e.awsErrorDetails().errorCode());
            if (code.startsWith("Throttling") || code.equals("TooManyRequestsException")) {
                return new RateLimitedException(message(e), providerId, endpoint, e.statusCode(), null, e);
            }
            int status = e.statusCode() == 0 ? 500 : e.statusCode();
            return HttpErrors.forStatus(providerId, endpoint, status, h -> null, message(e), clock);
        }
        if (t instanceof ApiCallTimeoutException || t instanceof ApiCallAttemptTimeoutException) {
            boolean deadline =
                    ctx != null && ctx.remaining().map(d -> d.toMillis() <= 5).orElse(false);
            return new InferenceTimeoutException(
                    deadline ? "the request's deadline passed" : "SageMaker call timed out: " + t.getMessage(),
                    providerId,
                    endpoint,
                    deadline,
                    t);
        }
        if (t instanceof AbortedException) {
            return new CancelledException("call aborted", providerId, endpoint, 0, null, t);
        }
        for (Throwable c = t; c != null; c = c.getCause()) {
            String m = c.getMessage();
            if (m != null && m.toLowerCase(java.util.Locale.ROOT).contains("checksum failure")) {
                return new MalformedResponseException(
                        "the event stream from SageMaker is corrupt: " + m, providerId, endpoint, 0, null, t);
            }
            if (c instanceof IOException) {
                return HttpErrors.forIo(providerId, endpoint, (IOException) c, ctx);
            }
        }
        if (t instanceof SdkClientException) {
            return new ProviderUnavailableException(
                    "the AWS SDK failed: " + t.getMessage(), providerId, endpoint, 0, null, t);
        }
        return new InferenceException(
                "unexpected " + t.getClass().getSimpleName() + " from the AWS SDK: " + t.getMessage(),
                providerId,
                endpoint,
                0,
                null,
                t);
    }

    /** The service's own message and the request id (for AWS support), without the SDK's decoration. */
    private static String message(AwsServiceException e) {
        String m = e.awsErrorDetails() != null && e.awsErrorDetails().errorMessage() != null
                ? e.awsErrorDetails().errorMessage()
                : e.getMessage();
        return e.requestId() == null ? m : m + " (request id " + e.requestId() + ")";
    }

    static Throwable unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
