package dev.hybridinference.testkit.azure;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hybridinference.testkit.internal.GeneratedText;
import dev.hybridinference.testkit.internal.LoopbackHttp;
import dev.hybridinference.testkit.internal.LoopbackHttp.Exchange;
import dev.hybridinference.testkit.internal.OpenAiChatShapes;
import dev.hybridinference.testkit.internal.Stalls;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLContext;
import javax.net.ssl.X509TrustManager;
import okhttp3.tls.HandshakeCertificates;
import okhttp3.tls.HeldCertificate;

/**
 * An in-process Azure AI Foundry / Azure OpenAI endpoint on loopback, served over HTTPS (HTTP/1.1 only) with a
 * certificate made at start for {@code localhost} and {@code 127.0.0.1}; clients trust it through {@link
 * #clientSslContext()}, {@link #clientTrustManager()} or the PEM file of {@link #writeCertificatePem(Path)}.
 *
 * <p><b>Routes.</b>
 *
 * <ul>
 *   <li>The OpenAI-compatible v1 API under {@link #openAiV1Url()}: {@code POST /openai/v1/chat/completions} (no
 *       {@code api-version}; one that is sent is ignored, and kept in the {@link #recorded() recorded} query) and
 *       {@code GET /openai/v1/models}, which lists the deployments.
 *   <li>The Azure AI Inference API (the {@code azure-ai-inference} SDK's) under {@link #inferenceUrl()}: {@code
 *       POST /models/chat/completions} and {@code GET /models/info}, and the same at the root ({@code POST
 *       /chat/completions}, {@code GET /info}) as a serverless endpoint serves them. These need {@code
 *       api-version} to be one of {@link #API_VERSIONS}: without it, or with another, 400 {@code BadRequest}.
 * </ul>
 *
 * Other paths get 404 {@code {"error":{"code":"404","message":"Resource not found"}}}, another method on a known
 * path 405.
 *
 * <p><b>Auth</b>, when the builder set an {@link Builder#apiKey API key} or a {@link Builder#bearerToken bearer
 * token} (otherwise nothing is checked): a request passes with {@code api-key: <key>}, or {@code Authorization:
 * Bearer <token>} with an accepted token (on the v1 route the key itself is also taken as a bearer token, which
 * is what OpenAI's own SDKs send), or, on the inference routes only, {@code Authorization: <key>} with the raw key
 * (the SDK's key credential sends both headers). A request without valid credentials gets 401 {@code
 * {"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. ..."}}};
 * one whose bearer token is not accepted gets 401 with code {@code invalid_token} and a message about an
 * invalid or expired token. Messages never repeat what the client sent.
 *
 * <p><b>Chat requests.</b> The body's {@code model} names one of the {@link Builder#deployment deployments}; an
 * unknown one gets 404 {@code DeploymentNotFound}. The v1 route requires {@code model} (400 without); the
 * inference routes take a request without it when exactly one deployment exists. {@code messages} must be a
 * non-empty array (400 {@code BadRequest}, param {@code messages}). On the inference routes every top-level field
 * outside {@link #DEFINED_PARAMETERS} is an extra parameter, handled as the {@code extra-parameters} header says:
 * absent or {@code error}, 400 {@code Invalid input} naming the extra fields; {@code drop}, ignored; {@code
 * pass-through} (or the older {@code allow}), accepted. The v1 route accepts unknown fields. Prompt tokens (the
 * whitespace words of all message contents) plus {@code max_tokens} (or {@code max_completion_tokens}) over
 * the {@link Builder#contextWindow context window} get 400 {@code context_length_exceeded}.
 *
 * <p><b>Answers</b> have OpenAI's {@code chat.completion} shape plus Azure's content-filter annotations: {@code
 * prompt_filter_results} for prompt 0 and each choice's {@code content_filter_results}, every category ({@link
 * #FILTER_CATEGORIES}) {@code {"filtered":false,"severity":"safe"}} unless a filter is scripted. Without a
 * script the text is deterministic generated words (see {@link Builder#seed}): {@code max_tokens} of them with
 * finish reason {@code length}, or 16 with {@code stop} when the request sets no limit; with {@code
 * response_format} {@code json_object} or {@code json_schema}, a small JSON object (finish {@code stop}). Token
 * counts are whitespace words, not a tokenizer's.
 *
 * <p><b>Streams</b> ({@code "stream": true}) are server-sent events written as they are made, one flushed HTTP
 * chunk per event with the {@link Builder#tokenLatency token latency} before each word: first a chunk with {@code
 * "choices": []} and {@code prompt_filter_results} (as Azure sends it, with empty {@code id}, {@code model} and
 * {@code object} and {@code created} 0), then the role chunk, one chunk per word, the finish chunk, a usage chunk
 * ({@code "choices": []}) when {@code stream_options.include_usage} is true or {@link Builder#usageInStreams} is
 * set, then {@code data: [DONE]}.
 *
 * <p><b>Headers.</b> Every response carries {@code apim-request-id} and {@code x-request-id} (one random UUID)
 * and {@code x-ms-region: East US}; 200 responses also {@code x-ratelimit-remaining-requests} and {@code
 * x-ratelimit-remaining-tokens}, counted down from 1000 requests and 150000 tokens (prompt plus requested
 * completion tokens) in each minute since the emulator started.
 *
 * <p><b>Scripts</b> ({@link #answerNext}, {@link #answerNextWithToolCall}, {@link #filterPromptNext}, {@link
 * #filterAnswerNext}, {@link #failNext}, {@link #rateLimitNext}, {@link #stallNext}, {@link #cutNextAfter})
 * queue in order, and each is taken by the next chat request that passed auth and the {@code api-version} check;
 * requests refused before that, and the other routes, leave them queued. Failures, rate limits, stalls and prompt
 * filters act before the body is read; the others apply to the answer, and are used up by their request even
 * when its body is then refused.
 *
 * <p>Wording of errors follows Azure's where it is known and is approximate elsewhere. For tests, examples and
 * benchmarks; not a model. Thread-safe; close it to stop.
 */
public final class AzureEmulator implements AutoCloseable {
    /** The {@code api-version} values the inference routes accept. */
    public static final List<String> API_VERSIONS = List.of("2024-05-01-preview", "2024-08-01-preview");

    /** The request fields the Azure AI Inference API defines; any other top-level field is an extra parameter. */
    public static final Set<String> DEFINED_PARAMETERS = Set.of(
            "messages",
            "model",
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "response_format",
            "tools",
            "tool_choice",
            "stream",
            "stream_options",
            "n",
            "user");

    /** The content-filter categories annotated on prompts and answers, in the order they are written. */
    public static final List<String> FILTER_CATEGORIES = List.of("hate", "self_harm", "sexual", "violence");

    /** The region every response names in {@code x-ms-region}. */
    public static final String REGION = "East US";

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final int MAX_RECORDED = 1000;
    private static final int DEFAULT_GENERATED_WORDS = 16;
    private static final int JSON_ANSWER_WORDS = 6;
    private static final long REQUESTS_PER_MINUTE = 1000;
    private static final long TOKENS_PER_MINUTE = 150_000;
    private static final String ACCESS_DENIED = "Access denied due to invalid subscription key or wrong API endpoint."
            + " Make sure to provide a valid key for an active subscription and use a correct regional API endpoint"
            + " for your resource.";
    private static final String INVALID_TOKEN = "Unauthorized. Access token is missing, invalid, audience is"
            + " incorrect (https://cognitiveservices.azure.com), or have expired.";
    private static final String DEPLOYMENT_NOT_FOUND = "The API deployment for this resource does not exist. If you"
            + " created the deployment within the last 5 minutes, please wait a moment and try again.";
    private static final String PROMPT_FILTERED = "The response was filtered due to the prompt triggering Azure"
            + " OpenAI's content management policy. Please modify your prompt and retry.";

    /** The header a scripted 429 tells the client how long to wait in. */
    public enum RetryHeader {
        /** {@code Retry-After}, in whole seconds (rounded up). */
        RETRY_AFTER("Retry-After"),
        /** {@code retry-after-ms}, in milliseconds. */
        RETRY_AFTER_MS("retry-after-ms"),
        /** {@code x-ms-retry-after-ms}, in milliseconds. */
        X_MS_RETRY_AFTER_MS("x-ms-retry-after-ms");

        private final String headerName;

        RetryHeader(String headerName) {
            this.headerName = headerName;
        }

        /** The header's name as it is sent. */
        public String headerName() {
            return headerName;
        }

        /** The header's value for a wait: whole seconds rounded up, or milliseconds. */
        String value(Duration wait) {
            if (this == RETRY_AFTER) {
                long millis = wait.toMillis();
                return Long.toString(millis / 1000 + (millis % 1000 == 0 ? 0 : 1));
            }
            return Long.toString(wait.toMillis());
        }
    }

    /**
     * One request as it arrived: method, decoded path, raw query string (without {@code ?}, empty when there is
     * none), headers by lower-cased name (repeated headers joined with commas) and the body as UTF-8 text, exactly
     * as sent (extra parameters that were dropped included).
     *
     * @param method the HTTP method
     * @param path the path without the query string
     * @param query the raw query string, or an empty string
     * @param headers the headers by lower-cased name
     * @param body the body
     */
    public record RecordedRequest(String method, String path, String query, Map<String, String> headers, String body) {
        /** Copies the headers. */
        public RecordedRequest {
            headers = Map.copyOf(headers);
        }

        /** The value of a header, by its name in any case, or null. */
        public String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }

        /** A parameter of the query string, decoded, or null. */
        public String queryParameter(String name) {
            return LoopbackHttp.formFields(query).get(name);
        }

        /**
         * The top-level fields of a JSON object body outside {@link #DEFINED_PARAMETERS}, in the order sent: the
         * extra parameters of an inference-route request, which its {@code extra-parameters} header (see {@link
         * #header}) says were refused, dropped or passed through. Empty when the body is not a JSON object.
         */
        public List<String> extraParameters() {
            return extraFields(lenientJson(body.getBytes(StandardCharsets.UTF_8)));
        }

        /** The method, path and query, with the credentials in {@code api-key} and {@code authorization} masked. */
        @Override
        public String toString() {
            Map<String, String> shown = new LinkedHashMap<>(headers);
            shown.computeIfPresent("api-key", (k, v) -> "***");
            shown.computeIfPresent("authorization", (k, v) -> "***");
            return method + " " + path + (query.isEmpty() ? "" : "?" + query) + " " + shown + " (" + body.length()
                    + " chars)";
        }
    }

    private enum Route {
        V1,
        INFERENCE,
        SERVERLESS
    }

    private enum ScriptKind {
        ANSWER,
        TOOL_CALL,
        FILTER_PROMPT,
        FILTER_ANSWER,
        FAIL,
        RATE_LIMIT,
        STALL,
        CUT
    }

    private record Script(
            ScriptKind kind, String text, String name, String category, int count, RetryHeader header, Duration delay) {
        static Script of(ScriptKind kind) {
            return new Script(kind, null, null, null, -1, null, null);
        }
    }

    private final LoopbackHttp http;
    private final HeldCertificate held;
    private final HandshakeCertificates clientTrust;
    private final String apiKey;
    private final Set<String> tokens = ConcurrentHashMap.newKeySet();
    private volatile boolean authRequired;
    private final List<String> deployments;
    private final int contextWindow;
    private final Duration tokenLatency;
    private final long seed;
    private final boolean usageInStreams;
    private final long startedAtMillis = System.currentTimeMillis();

    private final ConcurrentLinkedQueue<Script> scripts = new ConcurrentLinkedQueue<>();
    private final AtomicLong requests = new AtomicLong();
    private final Stalls stalls;
    private final Deque<RecordedRequest> recorded = new ArrayDeque<>();
    private final Object rateWindow = new Object();
    private long windowIndex;
    private long windowRequests;
    private long windowTokens;

    private AzureEmulator(Builder b) throws IOException {
        this.apiKey = b.apiKey;
        this.tokens.addAll(b.tokens);
        this.authRequired = b.apiKey != null || !b.tokens.isEmpty();
        this.deployments = b.deployments.isEmpty() ? List.of("gpt-4o-mini") : List.copyOf(b.deployments);
        this.contextWindow = b.contextWindow;
        this.tokenLatency = b.tokenLatency;
        this.seed = b.seed;
        this.usageInStreams = b.usageInStreams;
        this.held = new HeldCertificate.Builder()
                .commonName("localhost")
                .addSubjectAlternativeName("localhost")
                .addSubjectAlternativeName("127.0.0.1")
                .duration(2, TimeUnit.DAYS)
                .build();
        this.clientTrust = new HandshakeCertificates.Builder()
                .addTrustedCertificate(held.certificate())
                .build();
        SSLContext server = LoopbackHttp.serverSslContext(held.keyPair().getPrivate(), held.certificate());
        this.http = new LoopbackHttp(this::handle, "azure-emulator", server);
        this.stalls = new Stalls(http);
    }

    /**
     * A builder for an endpoint with one deployment, {@code gpt-4o-mini}, that checks no credentials until one is
     * configured.
     */
    public static Builder builder() {
        return new Builder();
    }

    // ---- addresses and TLS ----

    /** The endpoint's base URL, {@code https://127.0.0.1:PORT}. */
    public String url() {
        return "https://" + http.address().getHostAddress() + ":" + http.port();
    }

    /** The base URL of the OpenAI-compatible v1 API: {@link #url()} + {@code /openai/v1}. */
    public String openAiV1Url() {
        return url() + "/openai/v1";
    }

    /** The endpoint to give the {@code azure-ai-inference} SDK (Foundry models route): {@link #url()} + {@code /models}. */
    public String inferenceUrl() {
        return url() + "/models";
    }

    /** The server's certificate: self-signed, for {@code localhost} and {@code 127.0.0.1}, made at start. */
    public X509Certificate certificate() {
        return held.certificate();
    }

    /** A client TLS context that trusts only this endpoint's certificate (no platform CAs). */
    public SSLContext clientSslContext() {
        return clientTrust.sslContext();
    }

    /** A trust manager that trusts only this endpoint's certificate (no platform CAs). */
    public X509TrustManager clientTrustManager() {
        return clientTrust.trustManager();
    }

    /** The certificate as PEM text ({@code -----BEGIN CERTIFICATE-----} ...). */
    public String certificatePem() {
        return held.certificatePem();
    }

    /**
     * Writes the certificate as PEM to {@code azure-emulator.pem} in {@code dir} (created when missing), replacing
     * a file of that name.
     *
     * @param dir the folder
     * @return the file written
     * @throws UncheckedIOException when it cannot be written
     */
    public Path writeCertificatePem(Path dir) {
        Path file = dir.resolve("azure-emulator.pem");
        try {
            Files.createDirectories(dir);
            Files.writeString(file, certificatePem(), StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the certificate to " + file + ": " + e.getMessage(), e);
        }
        return file;
    }

    /** Stops the endpoint; stalled and streaming requests end with their connections closed. */
    @Override
    public void close() {
        http.close();
    }

    // ---- runtime credentials ----

    /**
     * Accepts {@code token} as a bearer token from now on. An emulator built with neither key nor token starts
     * checking credentials with the first token accepted here.
     */
    public void acceptBearerToken(String token) {
        tokens.add(nonBlank(token, "token"));
        authRequired = true;
    }

    /** Stops accepting {@code token}: requests bearing it get 401 {@code invalid_token}, as with an expired token. */
    public void revokeBearerToken(String token) {
        tokens.remove(Objects.requireNonNull(token, "token"));
    }

    // ---- scripts ----

    /**
     * The next chat request (after those already scripted) answers exactly {@code text}, finish reason {@code
     * stop}, whatever its {@code max_tokens}. Streamed, each chunk is a word with the whitespace before it, so the
     * chunks join to {@code text}. Completion tokens are its words.
     */
    public void answerNext(String text) {
        scripts.add(new Script(ScriptKind.ANSWER, Objects.requireNonNull(text, "text"), null, null, -1, null, null));
    }

    /**
     * The next chat request (after those already scripted) answers a call of tool {@code name} with {@code
     * argumentsJson}, finish reason {@code tool_calls}: as {@code message.tool_calls} (content null), or streamed
     * as two chunks that carry half of the arguments each. A request without {@code tools} gets the arguments as
     * its text instead, finish reason {@code stop}.
     */
    public void answerNextWithToolCall(String name, String argumentsJson) {
        scripts.add(new Script(
                ScriptKind.TOOL_CALL,
                Objects.requireNonNull(argumentsJson, "argumentsJson"),
                nonBlank(name, "name"),
                null,
                -1,
                null,
                null));
    }

    /**
     * The next chat request (after those already scripted), streamed or not, is refused with 400 {@code
     * content_filter} (param {@code prompt}), its {@code innererror} ({@code ResponsibleAIPolicyViolation}) marking
     * {@code category} {@code {"filtered":true,"severity":"high"}} and the other categories safe.
     *
     * @param category one of {@link #FILTER_CATEGORIES}
     */
    public void filterPromptNext(String category) {
        scripts.add(new Script(ScriptKind.FILTER_PROMPT, null, null, category(category), -1, null, null));
    }

    /**
     * The answer to the next chat request (after those already scripted) is stopped by the content filter after
     * {@code afterWords} generated words: blocking, 200 with those words, finish reason {@code content_filter},
     * the choice's {@code content_filter_results} marking {@code category} {@code
     * {"filtered":true,"severity":"medium"}}, usage counting the words produced; streamed, the words' chunks, then
     * a chunk with {@code "delta": {}}, that finish reason and those results, then the usage chunk (if asked) and
     * {@code [DONE]}.
     *
     * @param category one of {@link #FILTER_CATEGORIES}
     * @param afterWords the words produced before the filter stops the answer, 0 or more
     */
    public void filterAnswerNext(String category, int afterWords) {
        if (afterWords < 0) {
            throw new IllegalArgumentException("afterWords must not be negative, got " + afterWords);
        }
        scripts.add(new Script(ScriptKind.FILTER_ANSWER, null, null, category(category), afterWords, null, null));
    }

    /**
     * The next chat request (after those already scripted) gets {@code status} with {@code jsonBody} as {@code
     * application/json}, before its body is read; such as 500 {@code {"error":{"code":"InternalServerError",
     * ...}}} or 503.
     */
    public void failNext(int status, String jsonBody) {
        if (status < 100 || status > 599) {
            throw new IllegalArgumentException("an HTTP status is 100 to 599, got " + status);
        }
        scripts.add(new Script(
                ScriptKind.FAIL, Objects.requireNonNull(jsonBody, "jsonBody"), null, null, status, null, null));
    }

    /**
     * The next chat request (after those already scripted) gets 429 {@code {"error":{"code":"429","message":
     * "Requests to the ChatCompletions_Create Operation have exceeded call rate limit ..."}}} with {@code
     * x-ratelimit-remaining-requests: 0} and, of the retry headers, only {@code header}: {@code Retry-After} in
     * whole seconds rounded up, the others in milliseconds.
     */
    public void rateLimitNext(RetryHeader header, Duration delay) {
        Objects.requireNonNull(header, "header");
        if (delay == null || delay.isNegative()) {
            throw new IllegalArgumentException("the delay must not be negative, got " + delay);
        }
        scripts.add(new Script(ScriptKind.RATE_LIMIT, null, null, null, -1, header, delay));
    }

    /**
     * The next chat request (after those already scripted) stalls: it is accepted and answered nothing (a
     * blocking request not even headers; a streamed one its 200 and event-stream headers, then no event) until
     * the client closes the connection (counted in {@link #disconnects()}) or the emulator closes.
     */
    public void stallNext() {
        scripts.add(Script.of(ScriptKind.STALL));
    }

    /**
     * The next chat request (after those already scripted) is cut: streamed, after the prompt-filter chunk, the
     * role chunk and {@code chunks} word chunks (or all there are, if fewer) the TCP connection is closed, with no
     * finish chunk, {@code [DONE]}, end of the chunked body or TLS {@code close_notify}; blocking, half of the body
     * declared by {@code Content-Length} is sent and the connection closed likewise. The close is an orderly TCP
     * close, not a reset, so the client reads everything sent before it and then meets the early end.
     */
    public void cutNextAfter(int chunks) {
        if (chunks < 0) {
            throw new IllegalArgumentException("chunks must not be negative, got " + chunks);
        }
        scripts.add(new Script(ScriptKind.CUT, null, null, null, chunks, null, null));
    }

    // ---- state ----

    /** Requests received on any route, refused ones included. */
    public long requests() {
        return requests.get();
    }

    /** Every request received (any route, refused ones included), in order of arrival; the last 1000 are kept. */
    public List<RecordedRequest> recorded() {
        synchronized (recorded) {
            return List.copyOf(recorded);
        }
    }

    /** Requests that have stalled so far ({@link #stallNext()}). */
    public long stallsStarted() {
        return stalls.started();
    }

    /** Requests stalled now. */
    public int stalledNow() {
        return stalls.now();
    }

    /**
     * Requests whose client went away first: stalls the client gave up on, and answers whose writes failed because
     * the connection was closed.
     */
    public long disconnects() {
        return stalls.disconnects();
    }

    /** The deployments this endpoint serves, in the order configured. */
    public List<String> deployments() {
        return deployments;
    }

    /** The URL, the deployments and how clients authenticate; never a key or token. */
    @Override
    public String toString() {
        String auth;
        if (!authRequired) {
            auth = "no auth";
        } else {
            auth = (apiKey != null ? "api key" : "no api key") + ", " + tokens.size() + " bearer token(s)";
        }
        return "AzureEmulator[" + url() + ", deployments " + deployments + ", " + auth + "]";
    }

    // ---- the front door ----

    private void handle(Exchange ex) throws IOException {
        requests.incrementAndGet();
        record(ex);
        String requestId = UUID.randomUUID().toString();
        String path = ex.path();
        Route route;
        boolean chat;
        switch (path) {
            case "/openai/v1/chat/completions" -> {
                route = Route.V1;
                chat = true;
            }
            case "/openai/v1/models" -> {
                route = Route.V1;
                chat = false;
            }
            case "/models/chat/completions" -> {
                route = Route.INFERENCE;
                chat = true;
            }
            case "/models/info" -> {
                route = Route.INFERENCE;
                chat = false;
            }
            case "/chat/completions" -> {
                route = Route.SERVERLESS;
                chat = true;
            }
            case "/info" -> {
                route = Route.SERVERLESS;
                chat = false;
            }
            default -> {
                sendJson(ex, requestId, 404, error("404", "Resource not found", null));
                return;
            }
        }
        String method = chat ? "POST" : "GET";
        if (!ex.method().equals(method)) {
            sendJson(
                    ex,
                    requestId,
                    405,
                    error("405", "The method " + ex.method() + " is not allowed here; use " + method + ".", null));
            return;
        }
        String refused = checkAuth(ex, route);
        if (refused != null) {
            Map<String, String> headers = headers("application/json", requestId, false);
            if (refused.equals("invalid_token")) {
                headers.put("WWW-Authenticate", "Bearer error=\"invalid_token\"");
                sendJson(ex, headers, 401, error("invalid_token", INVALID_TOKEN, null));
            } else {
                sendJson(ex, headers, 401, error("401", ACCESS_DENIED, null));
            }
            return;
        }
        if (route != Route.V1) {
            String version = ex.queryParameter("api-version");
            if (version == null || !API_VERSIONS.contains(version)) {
                String message = version == null
                        ? "The api-version query parameter (?api-version=) is required for all requests."
                        : "Unsupported api-version '" + version + "'. The supported api-versions are "
                                + String.join(", ", API_VERSIONS) + ".";
                sendJson(ex, requestId, 400, error("BadRequest", message, null));
                return;
            }
        }
        if (!chat) {
            sendJson(ex, headers("application/json", requestId, true), 200, route == Route.V1 ? models() : info());
            return;
        }
        chat(ex, route, requestId);
    }

    /** Null when the request may pass; else {@code "key"} or {@code "invalid_token"}. */
    private String checkAuth(Exchange ex, Route route) {
        if (!authRequired) {
            return null;
        }
        if (apiKey != null && same(apiKey, ex.header("api-key"))) {
            return null;
        }
        String authorization = ex.header("authorization");
        if (authorization != null) {
            String value = authorization.trim();
            if (value.regionMatches(true, 0, "Bearer ", 0, 7)) {
                String token = value.substring(7).trim();
                if (tokens.contains(token) || (route == Route.V1 && apiKey != null && same(apiKey, token))) {
                    return null;
                }
                return "invalid_token";
            }
            if (route != Route.V1 && apiKey != null && same(apiKey, value)) {
                return null;
            }
        }
        return "key";
    }

    private static boolean same(String expected, String given) {
        return given != null
                && MessageDigest.isEqual(
                        expected.getBytes(StandardCharsets.UTF_8), given.getBytes(StandardCharsets.UTF_8));
    }

    private void record(Exchange ex) {
        RecordedRequest r = new RecordedRequest(
                ex.method(), ex.path(), ex.query(), ex.headers(), new String(ex.body(), StandardCharsets.UTF_8));
        synchronized (recorded) {
            recorded.addLast(r);
            while (recorded.size() > MAX_RECORDED) {
                recorded.removeFirst();
            }
        }
    }

    private ObjectNode models() {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        for (String d : deployments) {
            data.addObject()
                    .put("id", d)
                    .put("object", "model")
                    .put("created", startedAtMillis / 1000)
                    .put("owned_by", "system");
        }
        return root;
    }

    /** The model info of the first deployment, as {@code GET /info} answers it. */
    private ObjectNode info() {
        String name = deployments.get(0);
        return MAPPER.createObjectNode()
                .put("model_name", name)
                .put("model_type", "chat_completion")
                .put("model_provider_name", providerOf(name));
    }

    private static String providerOf(String deployment) {
        String d = deployment.toLowerCase(Locale.ROOT);
        if (d.startsWith("gpt") || d.matches("o\\d.*")) {
            return "OpenAI";
        }
        if (d.contains("llama")) {
            return "Meta";
        }
        if (d.contains("mistral") || d.contains("codestral")) {
            return "Mistral AI";
        }
        if (d.contains("deepseek")) {
            return "DeepSeek";
        }
        if (d.contains("cohere") || d.contains("command")) {
            return "Cohere";
        }
        return "Microsoft";
    }

    // ---- chat ----

    /** What a chat request asks for. */
    private record Chat(
            String model,
            String prompt,
            int promptTokens,
            Integer maxTokens,
            Long seed,
            boolean stream,
            boolean includeUsage,
            boolean hasTools,
            String responseFormat,
            JsonNode schema) {}

    /** A request the endpoint refuses: the status and its error body. */
    private static final class Refusal extends Exception {
        final int status;
        final transient ObjectNode body;

        Refusal(int status, ObjectNode body) {
            super(null, null, false, false);
            this.status = status;
            this.body = body;
        }
    }

    /** What a chat request is answered with. */
    private record Answer(
            List<ObjectNode> deltas,
            String text,
            String toolName,
            String finish,
            int completionTokens,
            String filtered) {}

    private void chat(Exchange ex, Route route, String requestId) throws IOException {
        Script script = scripts.poll();
        ScriptKind kind = script == null ? null : script.kind();
        if (kind == ScriptKind.FAIL) {
            sendJson(ex, headers("application/json", requestId, script.count() == 200), script.count(), script.text());
            return;
        }
        if (kind == ScriptKind.RATE_LIMIT) {
            rateLimited(ex, requestId, script.header(), script.delay());
            return;
        }
        if (kind == ScriptKind.STALL) {
            boolean streamed = lenientJson(ex.body()).path("stream").asBoolean(false);
            stalls.hold(ex, 200, streamed ? headers("text/event-stream; charset=utf-8", requestId, true) : null);
            return;
        }
        if (kind == ScriptKind.FILTER_PROMPT) {
            sendJson(ex, requestId, 400, promptFiltered(script.category()));
            return;
        }
        Chat chat;
        try {
            chat = parse(route, ex);
        } catch (Refusal r) {
            sendJson(ex, requestId, r.status, r.body);
            return;
        }
        Answer answer = answer(chat, script);
        int budget = chat.promptTokens() + (chat.maxTokens() != null ? chat.maxTokens() : answer.completionTokens());
        String[] remaining = consume(budget);
        Map<String, String> okHeaders =
                headers(chat.stream() ? "text/event-stream; charset=utf-8" : "application/json", requestId, false);
        okHeaders.put("x-ratelimit-remaining-requests", remaining[0]);
        okHeaders.put("x-ratelimit-remaining-tokens", remaining[1]);
        String id = "chatcmpl-" + HexFormat.of().formatHex(randomBytes(15));
        long created = System.currentTimeMillis() / 1000;
        int cutAfter = kind == ScriptKind.CUT ? script.count() : -1;
        if (chat.stream()) {
            stream(ex, okHeaders, chat, answer, id, created, cutAfter);
        } else {
            blocking(ex, okHeaders, chat, answer, id, created, cutAfter);
        }
    }

    private Answer answer(Chat chat, Script script) {
        ScriptKind kind = script == null ? null : script.kind();
        if (kind == ScriptKind.ANSWER) {
            return textAnswer(GeneratedText.exactPieces(script.text()), "stop", null);
        }
        if (kind == ScriptKind.TOOL_CALL) {
            if (!chat.hasTools()) {
                return textAnswer(GeneratedText.exactPieces(script.text()), "stop", null);
            }
            String args = script.text();
            int half = args.length() / 2;
            ObjectNode first = MAPPER.createObjectNode();
            ObjectNode call0 = first.putArray("tool_calls").addObject();
            call0.put("index", 0)
                    .put("id", "call_" + HexFormat.of().formatHex(randomBytes(12)))
                    .put("type", "function");
            call0.putObject("function").put("name", script.name()).put("arguments", args.substring(0, half));
            ObjectNode second = MAPPER.createObjectNode();
            ObjectNode call1 = second.putArray("tool_calls").addObject();
            call1.put("index", 0);
            call1.putObject("function").put("arguments", args.substring(half));
            return new Answer(
                    List.of(first, second),
                    args,
                    script.name(),
                    "tool_calls",
                    Math.max(1, GeneratedText.words(args)),
                    null);
        }
        if (kind == ScriptKind.FILTER_ANSWER) {
            List<String> words = GeneratedText.pieces(chat.prompt(), chat.seed(), seed, script.count());
            return textAnswer(words, "content_filter", script.category());
        }
        if (chat.responseFormat() != null) {
            int n = Math.min(JSON_ANSWER_WORDS, chat.maxTokens() != null ? chat.maxTokens() : JSON_ANSWER_WORDS);
            List<String> words = GeneratedText.pieces(chat.prompt(), chat.seed(), seed, n);
            String json = jsonAnswer(chat.schema(), words).toString();
            return textAnswer(GeneratedText.exactPieces(json), "stop", null);
        }
        int n = chat.maxTokens() != null ? chat.maxTokens() : DEFAULT_GENERATED_WORDS;
        return textAnswer(
                GeneratedText.pieces(chat.prompt(), chat.seed(), seed, n),
                chat.maxTokens() != null ? "length" : "stop",
                null);
    }

    private static Answer textAnswer(List<String> pieces, String finish, String filtered) {
        List<ObjectNode> deltas = new ArrayList<>(pieces.size());
        for (String p : pieces) {
            deltas.add(MAPPER.createObjectNode().put("content", p));
        }
        String text = String.join("", pieces);
        return new Answer(deltas, text, null, finish, GeneratedText.words(text), filtered);
    }

    /**
     * A small JSON object: for a {@code json_schema} whose schema has {@code properties}, each property with a
     * value of its type (strings from the generated words); else {@code {"answer": "<words>"}}.
     */
    private static ObjectNode jsonAnswer(JsonNode schema, List<String> words) {
        ObjectNode out = MAPPER.createObjectNode();
        JsonNode properties = schema == null ? null : schema.get("properties");
        if (properties == null || !properties.isObject() || properties.isEmpty()) {
            out.put("answer", String.join("", words));
            return out;
        }
        Iterator<Map.Entry<String, JsonNode>> fields = properties.fields();
        int i = 0;
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> field = fields.next();
            String word = words.get(i++ % words.size()).strip();
            switch (field.getValue().path("type").asText("string")) {
                case "integer" -> out.put(field.getKey(), i);
                case "number" -> out.put(field.getKey(), i + 0.5);
                case "boolean" -> out.put(field.getKey(), i % 2 == 1);
                case "array" -> out.putArray(field.getKey()).add(word);
                case "object" -> out.putObject(field.getKey());
                case "null" -> out.putNull(field.getKey());
                default -> out.put(field.getKey(), word);
            }
        }
        return out;
    }

    private Chat parse(Route route, Exchange ex) throws Refusal {
        JsonNode root;
        try {
            root = MAPPER.readTree(ex.body());
        } catch (IOException e) {
            throw badRequest("BadRequest", "The request body is not valid JSON.", null);
        }
        if (root == null || !root.isObject()) {
            throw badRequest("BadRequest", "The request body must be a JSON object.", null);
        }
        JsonNode modelNode = root.get("model");
        String model;
        if (modelNode == null || modelNode.isNull()) {
            if (route != Route.V1 && deployments.size() == 1) {
                model = deployments.get(0);
            } else {
                throw badRequest(
                        "BadRequest",
                        "The 'model' field is required: it names the deployment, one of " + deployments + ".",
                        "model");
            }
        } else if (!modelNode.isTextual()) {
            throw badRequest("BadRequest", "The 'model' field must be a string naming a deployment.", "model");
        } else {
            model = modelNode.asText();
            if (!deployments.contains(model)) {
                throw new Refusal(404, error("DeploymentNotFound", DEPLOYMENT_NOT_FOUND, null));
            }
        }
        JsonNode messages = root.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw badRequest("BadRequest", "'messages' must be a non-empty array of messages.", "messages");
        }
        if (route != Route.V1) {
            checkExtraParameters(root, ex.header("extra-parameters"));
        }
        JsonNode max = root.hasNonNull("max_tokens") ? root.get("max_tokens") : root.get("max_completion_tokens");
        String maxName = root.hasNonNull("max_tokens") ? "max_tokens" : "max_completion_tokens";
        Integer maxTokens = null;
        if (max != null && !max.isNull()) {
            if (!max.isIntegralNumber() || !max.canConvertToInt() || max.asInt() < 1) {
                throw badRequest(
                        "BadRequest", "'" + maxName + "' must be an integer of at least 1, got " + max + ".", maxName);
            }
            maxTokens = max.asInt();
        }
        JsonNode seedNode = root.get("seed");
        Long requestSeed = null;
        if (seedNode != null && !seedNode.isNull()) {
            if (!seedNode.isIntegralNumber()) {
                throw badRequest("BadRequest", "'seed' must be an integer, got " + seedNode + ".", "seed");
            }
            requestSeed = seedNode.asLong();
        }
        StringBuilder prompt = new StringBuilder();
        for (JsonNode m : messages) {
            String content = OpenAiChatShapes.contentText(m.path("content"));
            if (!content.isEmpty()) {
                if (prompt.length() > 0) {
                    prompt.append('\n');
                }
                prompt.append(content);
            }
        }
        int promptTokens = GeneratedText.words(prompt.toString());
        long requested = promptTokens + (maxTokens != null ? maxTokens : 0L);
        if (requested > contextWindow) {
            ObjectNode body = error(
                    "context_length_exceeded",
                    "This model's maximum context length is " + contextWindow + " tokens. However, you requested "
                            + requested + " tokens (" + promptTokens + " in the messages, "
                            + (maxTokens != null ? maxTokens : 0) + " in the completion). Please reduce the length of"
                            + " the messages or completion.",
                    "messages");
            ((ObjectNode) body.get("error")).put("type", "invalid_request_error");
            throw new Refusal(400, body);
        }
        JsonNode format = root.path("response_format");
        String formatType = format.path("type").asText("");
        boolean json = formatType.equals("json_object") || formatType.equals("json_schema");
        JsonNode schema =
                formatType.equals("json_schema") ? format.path("json_schema").get("schema") : null;
        JsonNode tools = root.get("tools");
        boolean stream = root.path("stream").asBoolean(false);
        return new Chat(
                model,
                prompt.toString(),
                promptTokens,
                maxTokens,
                requestSeed,
                stream,
                usageInStreams
                        || root.path("stream_options").path("include_usage").asBoolean(false),
                tools != null && tools.isArray() && !tools.isEmpty(),
                json ? formatType : null,
                schema);
    }

    private static void checkExtraParameters(JsonNode root, String header) throws Refusal {
        String mode = header == null ? "error" : header.trim().toLowerCase(Locale.ROOT);
        if (!Set.of("error", "drop", "pass-through", "allow").contains(mode)) {
            throw badRequest(
                    "BadRequest",
                    "Invalid value '" + header + "' for header 'extra-parameters': expected error, drop or"
                            + " pass-through.",
                    "extra-parameters");
        }
        if (!mode.equals("error")) {
            return;
        }
        List<String> extras = extraFields(root);
        if (extras.isEmpty()) {
            return;
        }
        ObjectNode body = MAPPER.createObjectNode();
        ObjectNode error = body.putObject("error");
        error.put("code", "Invalid input")
                .put(
                        "message",
                        "Extra parameters " + extras + " are not allowed when the extra-parameters header is not set"
                                + " or set to 'error'. Set it to 'drop' to ignore them or to 'pass-through' to pass"
                                + " them to the model.")
                .put("status", 400);
        ArrayNode details = error.putArray("details");
        for (String extra : extras) {
            ObjectNode detail = details.addObject();
            detail.put("type", "extra_forbidden");
            detail.putArray("loc").add("body").add(extra);
            detail.put("msg", "Extra inputs are not permitted");
        }
        throw new Refusal(400, body);
    }

    /** The top-level fields of {@code root} outside {@link #DEFINED_PARAMETERS}, in order. */
    private static List<String> extraFields(JsonNode root) {
        List<String> extras = new ArrayList<>();
        root.fieldNames().forEachRemaining(f -> {
            if (!DEFINED_PARAMETERS.contains(f)) {
                extras.add(f);
            }
        });
        return extras;
    }

    private static Refusal badRequest(String code, String message, String param) {
        ObjectNode body = error(code, message, param);
        return new Refusal(400, body);
    }

    private void blocking(
            Exchange ex, Map<String, String> headers, Chat chat, Answer answer, String id, long created, int cutAfter) {
        ObjectNode message;
        if (answer.toolName() != null) {
            message = MAPPER.createObjectNode().put("role", "assistant");
            message.putNull("content");
            ObjectNode call = message.putArray("tool_calls").addObject();
            call.put("id", answer.deltas().get(0).at("/tool_calls/0/id").asText())
                    .put("type", "function");
            call.putObject("function").put("name", answer.toolName()).put("arguments", answer.text());
        } else {
            message = OpenAiChatShapes.assistantMessage(answer.text());
        }
        ObjectNode body = OpenAiChatShapes.completion(
                id, created, chat.model(), message, answer.finish(), chat.promptTokens(), answer.completionTokens());
        ((ObjectNode) body.get("choices").get(0))
                .set("content_filter_results", filterResults(answer.filtered(), "medium"));
        body.set("prompt_filter_results", promptFilterResults());
        if (!tokenLatency.isZero()
                && !sleepNanos(tokenLatency.toNanos() * answer.deltas().size())) {
            ex.abort();
            return;
        }
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        try {
            if (cutAfter >= 0) {
                ex.sendTruncated(200, headers, bytes, bytes.length / 2);
            } else {
                ex.sendFixed(200, headers, bytes);
            }
        } catch (IOException e) {
            stalls.clientGone(ex);
        }
    }

    private void stream(
            Exchange ex, Map<String, String> headers, Chat chat, Answer answer, String id, long created, int cutAfter) {
        String model = chat.model();
        try {
            ex.startChunked(200, headers);
            ObjectNode filterChunk = MAPPER.createObjectNode();
            filterChunk.putArray("choices");
            filterChunk.put("created", 0).put("id", "").put("model", "").put("object", "");
            filterChunk.set("prompt_filter_results", promptFilterResults());
            event(ex, filterChunk);
            ObjectNode role = OpenAiChatShapes.roleChunk(id, created, model);
            ((ObjectNode) role.get("choices").get(0)).putObject("content_filter_results");
            event(ex, role);
            List<ObjectNode> deltas = answer.deltas();
            for (int i = 0; i < deltas.size(); i++) {
                if (i == cutAfter) {
                    ex.abort();
                    return;
                }
                if (!tokenLatency.isZero() && !sleepNanos(tokenLatency.toNanos())) {
                    ex.abort();
                    return;
                }
                ObjectNode chunk = OpenAiChatShapes.chunk(id, created, model, deltas.get(i), null);
                ((ObjectNode) chunk.get("choices").get(0)).set("content_filter_results", filterResults(null, null));
                event(ex, chunk);
            }
            if (cutAfter >= 0) {
                ex.abort();
                return;
            }
            ObjectNode finish = OpenAiChatShapes.finishChunk(id, created, model, answer.finish());
            ((ObjectNode) finish.get("choices").get(0))
                    .set(
                            "content_filter_results",
                            answer.filtered() != null
                                    ? filterResults(answer.filtered(), "medium")
                                    : MAPPER.createObjectNode());
            event(ex, finish);
            if (chat.includeUsage()) {
                event(
                        ex,
                        OpenAiChatShapes.usageChunk(
                                id, created, model, chat.promptTokens(), answer.completionTokens()));
            }
            ex.writeChunk("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            ex.endChunked();
        } catch (IOException e) {
            stalls.clientGone(ex);
        }
    }

    private static void event(Exchange ex, ObjectNode chunk) throws IOException {
        ex.writeChunk(("data: " + chunk + "\n\n").getBytes(StandardCharsets.UTF_8));
    }

    // ---- content filters ----

    /** Each category {@code {"filtered":false,"severity":"safe"}}, except {@code flagged}: filtered, {@code severity}. */
    private static ObjectNode filterResults(String flagged, String severity) {
        ObjectNode results = MAPPER.createObjectNode();
        for (String c : FILTER_CATEGORIES) {
            boolean hit = c.equals(flagged);
            results.putObject(c).put("filtered", hit).put("severity", hit ? severity : "safe");
        }
        return results;
    }

    private static ArrayNode promptFilterResults() {
        ArrayNode results = MAPPER.createArrayNode();
        ObjectNode prompt = results.addObject();
        prompt.put("prompt_index", 0);
        prompt.set("content_filter_results", filterResults(null, null));
        return results;
    }

    private static ObjectNode promptFiltered(String category) {
        ObjectNode body = MAPPER.createObjectNode();
        ObjectNode error = body.putObject("error");
        error.put("code", "content_filter").put("message", PROMPT_FILTERED).put("param", "prompt");
        error.putNull("type");
        error.put("status", 400);
        ObjectNode inner = error.putObject("innererror");
        inner.put("code", "ResponsibleAIPolicyViolation");
        inner.set("content_filter_result", filterResults(category, "high"));
        return body;
    }

    private static String category(String category) {
        if (category == null || !FILTER_CATEGORIES.contains(category)) {
            throw new IllegalArgumentException(
                    "the content-filter category must be one of " + FILTER_CATEGORIES + ", got " + category);
        }
        return category;
    }

    // ---- responses ----

    private void rateLimited(Exchange ex, String requestId, RetryHeader header, Duration delay) throws IOException {
        Map<String, String> headers = headers("application/json", requestId, false);
        headers.put(header.headerName(), header.value(delay));
        headers.put("x-ratelimit-remaining-requests", "0");
        String seconds = RetryHeader.RETRY_AFTER.value(delay);
        sendJson(
                ex,
                headers,
                429,
                error(
                        "429",
                        "Requests to the ChatCompletions_Create Operation have exceeded call rate limit of your"
                                + " current pricing tier. Please retry after " + seconds + " second"
                                + (seconds.equals("1") ? "" : "s") + ".",
                        null));
    }

    /** Counts a served request in the current minute; the remaining requests and tokens as header values. */
    private String[] consume(int tokens) {
        synchronized (rateWindow) {
            long index = (System.currentTimeMillis() - startedAtMillis) / 60_000;
            if (index != windowIndex) {
                windowIndex = index;
                windowRequests = 0;
                windowTokens = 0;
            }
            windowRequests++;
            windowTokens += tokens;
            return new String[] {
                Long.toString(Math.max(0, REQUESTS_PER_MINUTE - windowRequests)),
                Long.toString(Math.max(0, TOKENS_PER_MINUTE - windowTokens))
            };
        }
    }

    /** The headers of every response; with {@code ok}, the rate-limit headers of a 200 as they stand now. */
    private Map<String, String> headers(String contentType, String requestId, boolean ok) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Content-Type", contentType);
        headers.put(
                "Date",
                DateTimeFormatter.RFC_1123_DATE_TIME.format(Instant.now().atZone(ZoneOffset.UTC)));
        headers.put("apim-request-id", requestId);
        headers.put("x-request-id", requestId);
        headers.put("x-ms-region", REGION);
        if (ok) {
            synchronized (rateWindow) {
                long index = (System.currentTimeMillis() - startedAtMillis) / 60_000;
                boolean current = index == windowIndex;
                headers.put(
                        "x-ratelimit-remaining-requests",
                        Long.toString(Math.max(0, REQUESTS_PER_MINUTE - (current ? windowRequests : 0))));
                headers.put(
                        "x-ratelimit-remaining-tokens",
                        Long.toString(Math.max(0, TOKENS_PER_MINUTE - (current ? windowTokens : 0))));
            }
        }
        return headers;
    }

    private void sendJson(Exchange ex, String requestId, int status, ObjectNode body) throws IOException {
        sendJson(ex, headers("application/json", requestId, status == 200), status, body.toString());
    }

    private static void sendJson(Exchange ex, Map<String, String> headers, int status, ObjectNode body)
            throws IOException {
        sendJson(ex, headers, status, body.toString());
    }

    private static void sendJson(Exchange ex, Map<String, String> headers, int status, String body) throws IOException {
        ex.sendFixed(status, headers, body.getBytes(StandardCharsets.UTF_8));
    }

    /** Azure's error body: {@code {"error": {"code", "message"}}}, with {@code param} when given. */
    private static ObjectNode error(String code, String message, String param) {
        ObjectNode root = MAPPER.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("code", code).put("message", message);
        if (param != null) {
            error.put("param", param);
        }
        return root;
    }

    private static JsonNode lenientJson(byte[] body) {
        try {
            JsonNode node = MAPPER.readTree(body);
            return node == null ? MAPPER.createObjectNode() : node;
        } catch (IOException e) {
            return MAPPER.createObjectNode();
        }
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        ThreadLocalRandom.current().nextBytes(b);
        return b;
    }

    /** Sleeps; false when interrupted, which happens when the emulator closes. */
    private static boolean sleepNanos(long nanos) {
        try {
            TimeUnit.NANOSECONDS.sleep(nanos);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static String nonBlank(String value, String name) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(name + " must not be blank");
        }
        return value;
    }

    /** Builds an {@link AzureEmulator}. */
    public static final class Builder {
        private String apiKey;
        private final Set<String> tokens = new LinkedHashSet<>();
        private final List<String> deployments = new ArrayList<>();
        private int contextWindow = 8192;
        private Duration tokenLatency = Duration.ZERO;
        private long seed;
        private boolean usageInStreams;

        private Builder() {}

        /** The API key requests must carry in {@code api-key} (or, on the inference routes, raw in {@code Authorization}). */
        public Builder apiKey(String key) {
            this.apiKey = nonBlank(key, "apiKey");
            return this;
        }

        /** A bearer token accepted from the start (repeatable); see {@link AzureEmulator#acceptBearerToken}. */
        public Builder bearerToken(String token) {
            tokens.add(nonBlank(token, "bearerToken"));
            return this;
        }

        /**
         * A deployment the endpoint serves (repeatable; default one, {@code gpt-4o-mini}, when none is given).
         * The first is the one {@code GET /info} describes and a request without {@code model} uses when it is
         * the only one.
         */
        public Builder deployment(String name) {
            String n = nonBlank(name, "deployment");
            if (deployments.contains(n)) {
                throw new IllegalArgumentException("deployment '" + n + "' is given twice");
            }
            deployments.add(n);
            return this;
        }

        /** The context window in tokens (default 8192): prompt tokens plus {@code max_tokens} over it get 400. */
        public Builder contextWindow(int tokens) {
            if (tokens < 1) {
                throw new IllegalArgumentException("contextWindow must be at least 1, got " + tokens);
            }
            this.contextWindow = tokens;
            return this;
        }

        /** The wait before each streamed word (default none); a blocking answer waits words times this. */
        public Builder tokenLatency(Duration d) {
            if (d == null || d.isNegative()) {
                throw new IllegalArgumentException("tokenLatency must not be negative, got " + d);
            }
            this.tokenLatency = d;
            return this;
        }

        /**
         * The seed of generated text (default 0). Unscripted answers are words from a fixed list chosen by the
         * prompt text (all message contents), the request's own {@code seed} if any, and this seed.
         */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Whether every stream ends with a usage chunk even when the request does not ask for it with {@code
         * stream_options.include_usage} (default false). The {@code azure-ai-inference} SDK never asks, and reads
         * usage when a chunk carries it.
         */
        public Builder usageInStreams(boolean usage) {
            this.usageInStreams = usage;
            return this;
        }

        /** Makes the certificate and starts the endpoint on a free loopback port. */
        public AzureEmulator start() {
            try {
                return new AzureEmulator(this);
            } catch (IOException e) {
                throw new IllegalStateException("cannot start the Azure emulator: " + e.getMessage(), e);
            }
        }
    }
}
