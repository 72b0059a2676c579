package dev.hybridinference.core.internal.openai;

import com.fasterxml.jackson.databind.JsonNode;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ContentFilteredException;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.spi.CallContext;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Maps HTTP failures of OpenAI-compatible servers to the {@link InferenceException} hierarchy.
 * Internal: not part of the public API.
 */
public final class HttpErrors {
    private static final int MAX_MESSAGE = 300;
    /**
     * Context-overflow messages of the servers we know: OpenAI and vLLM ("maximum context length is 4096
     * tokens"), llama.cpp ("the request exceeds the available context size", "context shift is
     * disabled", type {@code exceed_context_size_error}), TGI ("must have less than N input tokens",
     * "inputs tokens + max_new_tokens must be <="), and gateways.
     */
    private static final Pattern CONTEXT_OVERFLOW = Pattern.compile(
            "(?i).*(context length|context_length|max_model_len|maximum context|context window|too many tokens"
                    + "|prompt is too long|maximum model length|available context size|context shift is disabled"
                    + "|exceed_context_size|max_new_tokens must be|must have less than \\d+ input tokens).*",
            Pattern.DOTALL);

    private HttpErrors() {}

    /**
     * The exception for an error response.
     *
     * @param providerId the provider
     * @param endpoint the endpoint, without credentials
     * @param status the HTTP status
     * @param retryAfterHeader the {@code Retry-After} header, or null
     * @param retryAfterMsHeader the {@code retry-after-ms} header, or null
     * @param body the response body as text (may be empty)
     * @param clock the wall clock, for HTTP-date Retry-After values
     */
    public static InferenceException fromResponse(
            String providerId,
            String endpoint,
            int status,
            String retryAfterHeader,
            String retryAfterMsHeader,
            String body,
            Clock clock) {
        ErrorBody err = parseBody(body);
        Duration retryAfter = parseRetryAfter(retryAfterHeader, retryAfterMsHeader, clock);
        return classify(providerId, endpoint, status, err, retryAfter);
    }

    /** The exception for an error object that arrived inside an SSE stream. */
    public static InferenceException fromStreamError(String providerId, String endpoint, JsonNode error) {
        ErrorBody err = errorBody(error);
        int status = err.code != null && err.code.matches("\\d{3}") ? Integer.parseInt(err.code) : 500;
        InferenceException e = classify(providerId, endpoint, status, err, null);
        if (e instanceof ProviderUnavailableException && err.message.isEmpty()) {
            return new ProviderUnavailableException(
                    "the server sent an error event in the stream", providerId, endpoint, 0, null, null);
        }
        return e;
    }

    /**
     * The exception for a redirect: never followed, because following a POST to another origin would hand
     * it the prompt (and a same-origin redirect means the configured URL is wrong). The target is named
     * without its query or credentials.
     */
    public static InferenceException redirect(String providerId, String endpoint, int status, String location) {
        String target = "an unnamed location";
        if (location != null) {
            okhttp3.HttpUrl base = okhttp3.HttpUrl.parse(endpoint == null ? "" : endpoint);
            okhttp3.HttpUrl to = base == null ? okhttp3.HttpUrl.parse(location) : base.resolve(location);
            target = to == null ? "an unparsable location" : OpenAiTransport.label(to);
        }
        return new InvalidRequestException(
                "the server redirected the request to " + target
                        + "; redirects are not followed (configure the final URL of the server)",
                providerId,
                endpoint,
                status,
                null,
                null);
    }

    private static InferenceException classify(
            String providerId, String endpoint, int status, ErrorBody err, Duration retryAfter) {
        String msg = err.message.isEmpty() ? reason(status) : err.message;
        String code = err.code == null ? "" : err.code.toLowerCase(Locale.ROOT);
        String type = err.type == null ? "" : err.type.toLowerCase(Locale.ROOT);
        if (code.contains("content_filter") || type.contains("content_filter")) {
            return new ContentFilteredException(msg, providerId, endpoint, status, null, null);
        }
        // llama.cpp reports an overflow as HTTP 500 (and TGI as 422), so the message decides for those too.
        if (code.contains("context_length")
                || type.contains("exceed_context_size")
                || (status == 400 || status == 413 || status == 422 || status == 500)
                        && CONTEXT_OVERFLOW.matcher(msg).matches()) {
            return new ContextLengthExceededException(
                    msg + " (shorten the prompt or lower maxTokens, or route to a longer-context model)",
                    providerId,
                    endpoint,
                    status,
                    null,
                    null);
        }
        switch (status) {
            case 401:
            case 403:
                return new AuthenticationException(
                        msg + " (check the API key or credentials configured for this provider)",
                        providerId,
                        endpoint,
                        status,
                        null,
                        null);
            case 408:
                return new InferenceTimeoutException("server timed out: " + msg, providerId, endpoint, false, null);
            case 429:
                return new RateLimitedException(msg, providerId, endpoint, status, retryAfter, null);
            default:
                if (status >= 500) {
                    return new ProviderUnavailableException(msg, providerId, endpoint, status, retryAfter, null);
                }
                return new InvalidRequestException(msg, providerId, endpoint, status, null, null);
        }
    }

    /** The exception for an I/O failure of a call, telling cancellation and timeouts apart. */
    public static InferenceException fromIo(String providerId, String endpoint, IOException e, CallContext ctx) {
        if (ctx != null && ctx.isCancelled()) {
            return new CancelledException("call cancelled", providerId, endpoint, 0, null, e);
        }
        if (e instanceof SocketTimeoutException || e instanceof InterruptedIOException) {
            boolean deadline =
                    ctx != null && ctx.remaining().map(d -> d.toMillis() <= 5).orElse(false);
            String what = deadline ? "the request's deadline passed" : "timed out (" + e.getMessage() + ")";
            return new InferenceTimeoutException(what, providerId, endpoint, deadline, e);
        }
        if (e instanceof ConnectException || e instanceof UnknownHostException) {
            return new ProviderUnavailableException(
                    "cannot connect: " + e.getMessage() + " (is the server running and the URL right?)",
                    providerId,
                    endpoint,
                    0,
                    null,
                    e);
        }
        return new ProviderUnavailableException(
                "I/O error: " + e.getClass().getSimpleName() + ": " + e.getMessage(), providerId, endpoint, 0, null, e);
    }

    /**
     * Parses {@code retry-after-ms} (milliseconds) or {@code Retry-After} (delta-seconds or an HTTP
     * date); null when neither is usable. Past dates give zero.
     */
    public static Duration parseRetryAfter(String header, String msHeader, Clock clock) {
        if (msHeader != null) {
            try {
                double ms = Double.parseDouble(msHeader.trim());
                if (ms >= 0 && Double.isFinite(ms)) {
                    return Duration.ofNanos((long) (ms * 1_000_000));
                }
            } catch (NumberFormatException ignored) {
                // fall through to Retry-After
            }
        }
        if (header == null || header.isBlank()) {
            return null;
        }
        String h = header.trim();
        if (h.chars().allMatch(Character::isDigit)) {
            try {
                return Duration.ofSeconds(Long.parseLong(h));
            } catch (NumberFormatException e) {
                return null;
            }
        }
        try {
            Instant at =
                    ZonedDateTime.parse(h, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant();
            Duration d = Duration.between(clock.instant(), at);
            return d.isNegative() ? Duration.ZERO : d;
        } catch (DateTimeParseException e) {
            return null;
        }
    }

    private record ErrorBody(String message, String type, String code) {}

    private static ErrorBody parseBody(String body) {
        if (body == null || body.isBlank()) {
            return new ErrorBody("", null, null);
        }
        String trimmed = body.trim();
        if (trimmed.startsWith("{")) {
            try {
                JsonNode root = OpenAiCodec.MAPPER.readTree(trimmed);
                return errorBody(root.has("error") ? root.get("error") : root);
            } catch (IOException | RuntimeException ignored) {
                // not JSON after all: fall back to the text
            }
        }
        return new ErrorBody(truncate(trimmed), null, null);
    }

    /** Reads the nested {@code {"error":{...}}}, flat {@code {"object":"error",...}} and string shapes. */
    private static ErrorBody errorBody(JsonNode e) {
        if (e == null || e.isNull()) {
            return new ErrorBody("", null, null);
        }
        if (e.isTextual()) {
            return new ErrorBody(truncate(e.asText()), null, null);
        }
        String message = "";
        if (e.hasNonNull("message")) {
            message = e.get("message").asText();
        } else if (e.hasNonNull("detail")) {
            JsonNode d = e.get("detail");
            message = d.isTextual() ? d.asText() : d.toString();
        } else if (e.hasNonNull("error")) {
            message = e.get("error").asText();
        }
        String type = e.hasNonNull("type") ? e.get("type").asText() : null;
        String code = e.hasNonNull("code") ? e.get("code").asText() : null;
        return new ErrorBody(truncate(message), type, code);
    }

    private static String truncate(String s) {
        String one = s.replaceAll("\\s+", " ");
        return one.length() <= MAX_MESSAGE ? one : one.substring(0, MAX_MESSAGE) + "...";
    }

    private static String reason(int status) {
        switch (status) {
            case 400:
                return "bad request";
            case 401:
                return "unauthorized";
            case 403:
                return "forbidden";
            case 404:
                return "not found";
            case 429:
                return "rate limited";
            case 500:
                return "internal server error";
            case 502:
                return "bad gateway";
            case 503:
                return "service unavailable";
            case 504:
                return "gateway timeout";
            default:
                return "request failed";
        }
    }
}
