package dev.hybridinference.core.http;

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
import dev.hybridinference.core.internal.openai.ChunkDecoder;
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
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Maps the failures of OpenAI-compatible servers (an error status, an error event inside a stream, an
 * I/O failure, a redirect) to the {@link InferenceException} hierarchy, so that every provider on this SPI
 * reports the same failure the same way and the core's retry decides by type alone. Error bodies are read
 * in the shapes servers send: {@code {"error":{"message","type","code"}}}, vLLM's flat {@code
 * {"object":"error",...}}, {@code {"error":"text"}}, {@code {"detail":...}} and plain text. Messages are
 * shortened and name the provider and endpoint; secrets are redacted by the exceptions themselves.
 * Stateless and thread-safe.
 *
 * <table>
 *   <caption>status to exception</caption>
 *   <tr><th>status</th><th>exception</th><th>retryable</th></tr>
 *   <tr><td>an overflow message (400, 413, 422, 500) or code {@code context_length*}</td>
 *       <td>{@link ContextLengthExceededException}</td><td>no</td></tr>
 *   <tr><td>code or type {@code content_filter}</td><td>{@link ContentFilteredException}</td><td>no</td></tr>
 *   <tr><td>401, 403</td><td>{@link AuthenticationException}</td><td>no</td></tr>
 *   <tr><td>408</td><td>{@link InferenceTimeoutException}</td><td>yes</td></tr>
 *   <tr><td>429</td><td>{@link RateLimitedException}, with the retry-after headers</td><td>yes</td></tr>
 *   <tr><td>5xx</td><td>{@link ProviderUnavailableException}, with the retry-after headers</td><td>yes</td></tr>
 *   <tr><td>other 4xx</td><td>{@link InvalidRequestException}</td><td>no</td></tr>
 * </table>
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
     * @param headers the response's headers by name, case-insensitive; null for an absent header. Read for
     *     {@code Retry-After} (seconds or an HTTP date), {@code retry-after-ms} and Azure's {@code
     *     x-ms-retry-after-ms}
     * @param body the response body as text (may be empty); only its start is kept in the message
     * @param clock the wall clock, for HTTP-date {@code Retry-After} values
     */
    public static InferenceException forStatus(
            String providerId,
            String endpoint,
            int status,
            Function<String, String> headers,
            String body,
            Clock clock) {
        ErrorBody err = parseBody(body);
        Duration retryAfter = status == 429 || status >= 500 ? retryAfter(headers, clock) : null;
        return classify(providerId, endpoint, status, err, retryAfter);
    }

    /**
     * The exception for an error event inside a stream (an SSE {@code event: error}, a bare {@code error:}
     * line, or a JSON chunk that is an error object); its status is the error's {@code code} when that is
     * a three-digit number, otherwise 500.
     *
     * @param data the event's data: a JSON error object (nested or flat) or plain text
     */
    public static InferenceException forStreamError(String providerId, String endpoint, String data) {
        JsonNode node;
        try {
            node = ChunkDecoder.MAPPER.readTree(data);
        } catch (IOException e) {
            node = null;
        }
        if (node == null || node.isMissingNode()) {
            node = ChunkDecoder.MAPPER.getNodeFactory().textNode(data);
        }
        if (node.has("error") && !node.get("error").isNull()) {
            node = node.get("error");
        }
        return forStreamError(providerId, endpoint, node);
    }

    /** The exception for an error object that arrived inside a stream or a success body. */
    static InferenceException forStreamError(String providerId, String endpoint, JsonNode error) {
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
            target = to == null ? "an unparsable location" : OpenAiTransport.Server.label(to);
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
            String what = err.filtered == null ? "" : " [filtered: " + err.filtered + "]";
            return new ContentFilteredException(
                    ContentFilteredException.Stage.PROMPT, err.filtered, msg + what, providerId, endpoint, status);
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

    /**
     * The exception for an I/O failure of a call, telling cancellation (the context says so) and timeouts
     * apart: a timeout when the call's deadline has all but passed is marked as the deadline's.
     *
     * @param ctx the call's context, or null outside a call (a health check)
     */
    public static InferenceException forIo(String providerId, String endpoint, IOException e, CallContext ctx) {
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
     * How long the server asks the client to wait, from the response's headers in the order Azure's own
     * clients read them: {@code x-ms-retry-after-ms}, {@code retry-after-ms} (milliseconds), then {@code
     * Retry-After} (delta-seconds or an HTTP date; a past date gives zero). Null when none is usable.
     *
     * @param headers the response's headers by name, case-insensitive; null for an absent header
     * @param clock the wall clock, for HTTP dates
     */
    public static Duration retryAfter(Function<String, String> headers, Clock clock) {
        Duration ms = millis(headers.apply("x-ms-retry-after-ms"));
        if (ms == null) {
            ms = millis(headers.apply("retry-after-ms"));
        }
        return ms != null ? ms : retryAfterValue(headers.apply("Retry-After"), clock);
    }

    private static Duration millis(String value) {
        if (value == null) {
            return null;
        }
        try {
            double ms = Double.parseDouble(value.trim());
            return ms >= 0 && ms <= 1e15 ? Duration.ofNanos((long) (ms * 1_000_000)) : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static Duration retryAfterValue(String header, Clock clock) {
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

    /** An error object's parts; {@code filtered} is what Azure's content filter blocked, or null. */
    private record ErrorBody(String message, String type, String code, String filtered) {
        ErrorBody(String message, String type, String code) {
            this(message, type, code, null);
        }
    }

    private static ErrorBody parseBody(String body) {
        if (body == null || body.isBlank()) {
            return new ErrorBody("", null, null);
        }
        String trimmed = body.trim();
        if (trimmed.startsWith("{")) {
            try {
                JsonNode root = ChunkDecoder.MAPPER.readTree(trimmed);
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
        // Azure: {"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{...}}}
        String filtered = ChunkDecoder.contentFilter(e.path("innererror").get("content_filter_result"));
        return new ErrorBody(truncate(message), type, code, filtered);
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
