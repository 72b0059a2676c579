package dev.hybridinference.core.internal.openai;

import com.fasterxml.jackson.databind.JsonNode;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.Secrets;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.EventListener;
import okhttp3.HttpUrl;
import okhttp3.Interceptor;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Talks to one or more OpenAI-compatible servers over OkHttp: chat completions blocking and streamed
 * (SSE with the usage chunk), model listing, and plain GETs for health and metrics. One instance per
 * provider; thread-safe. Never retries by itself: retrying is the caller's decision. Internal: not part
 * of the public API.
 */
public final class OpenAiTransport {
    private static final Logger LOG = LoggerFactory.getLogger(OpenAiTransport.class);
    private static final MediaType JSON = MediaType.get("application/json");
    private static final int MAX_ERROR_BODY = 16 * 1024;

    /**
     * Where a 503's {@code Retry-After} is kept out of OkHttp's sight: OkHttp silently re-sends a request
     * answered 503 with {@code Retry-After: 0}, which would hide a request that reached the server.
     */
    private static final String HELD_RETRY_AFTER = "X-Hybrid-Inference-Retry-After";

    /** How often a request that failed on a dead pooled connection is sent again on a new one. */
    private static final int MAX_RECONNECTS = 2;

    /** How long idle pooled connections are kept by default: under the 5 s of uvicorn and llama.cpp. */
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(4);

    /**
     * Bounds on what a server may send, so that a broken or hostile server fails the call with a {@link
     * MalformedResponseException} instead of exhausting the heap.
     *
     * @param maxLineBytes the longest event-stream line
     * @param maxResponseBytes the largest blocking completion body
     * @param maxToolCalls the most tool calls in one answer (and the highest tool-call index plus one)
     * @param maxStreamChars the most characters of text and tool-call arguments one stream may assemble
     * @param maxGetBytes the largest body of a plain GET ({@code /metrics}, {@code /health}, {@code
     *     /v1/models})
     */
    public record Limits(
            long maxLineBytes, long maxResponseBytes, int maxToolCalls, long maxStreamChars, long maxGetBytes) {
        /** Generous defaults: 1 MiB lines, 32 MiB bodies, 128 tool calls, 64 Mi characters, 8 MiB GETs. */
        public static final Limits DEFAULTS = new Limits(1 << 20, 32L << 20, 128, 64L << 20, 8L << 20);

        /** Checks that every bound is positive. */
        public Limits {
            if (maxLineBytes <= 0
                    || maxResponseBytes <= 0
                    || maxToolCalls <= 0
                    || maxStreamChars <= 0
                    || maxGetBytes <= 0) {
                throw new IllegalArgumentException("limits must be positive");
            }
        }
    }

    private final OkHttpClient http;
    private final String providerId;
    private final String authorization;
    private final OpenAiCodec.Dialect dialect;
    private final Clock clock;
    private final Duration callTimeout;
    private final Limits limits;

    /**
     * Creates a transport with the default {@link Limits}.
     *
     * @param http the client, built with {@link #newHttpClient}; shared, never closed here
     * @param providerId the provider, for messages
     * @param apiKey sent as a bearer token; null or empty for none
     * @param dialect which extra request fields the server accepts
     * @param clock for HTTP-date Retry-After values
     * @param callTimeout the limit on a whole call; zero for none
     */
    public OpenAiTransport(
            OkHttpClient http,
            String providerId,
            String apiKey,
            OpenAiCodec.Dialect dialect,
            Clock clock,
            Duration callTimeout) {
        this(http, providerId, apiKey, dialect, clock, callTimeout, Limits.DEFAULTS);
    }

    /** Creates a transport with the given bounds on what servers may send; see the other constructor. */
    public OpenAiTransport(
            OkHttpClient http,
            String providerId,
            String apiKey,
            OpenAiCodec.Dialect dialect,
            Clock clock,
            Duration callTimeout,
            Limits limits) {
        this.http = Objects.requireNonNull(http, "http");
        this.providerId = providerId;
        Secrets.register(apiKey);
        this.authorization = apiKey == null || apiKey.isEmpty() ? null : "Bearer " + apiKey;
        this.dialect = dialect;
        this.clock = clock;
        this.callTimeout = callTimeout;
        this.limits = Objects.requireNonNull(limits, "limits");
    }

    /**
     * An OkHttp client with the given connect and read timeouts (zero: none) and a pool that keeps up to
     * 32 idle connections for {@link #DEFAULT_IDLE_TIMEOUT}.
     */
    public static OkHttpClient newHttpClient(Duration connect, Duration read) {
        return newHttpClient(connect, read, DEFAULT_IDLE_TIMEOUT);
    }

    /**
     * An OkHttp client with the given connect and read timeouts (zero: none) and a pool that keeps up to
     * 32 idle connections for {@code idleTimeout}. Servers close idle keep-alive connections without notice
     * (uvicorn, which vLLM runs on, and llama.cpp's server after about 5 s), so the pool must let go of
     * them first; a request that still meets a dead connection is sent again on a new one (see {@link
     * #complete}). The client never retries or follows redirects by itself: retrying is the caller's
     * decision, and following a POST to another origin would hand it the prompt.
     */
    public static OkHttpClient newHttpClient(Duration connect, Duration read, Duration idleTimeout) {
        long idleMillis = Math.max(1, idleTimeout.toMillis());
        return new OkHttpClient.Builder()
                .connectionPool(new okhttp3.ConnectionPool(32, idleMillis, TimeUnit.MILLISECONDS))
                .connectTimeout(connect)
                .readTimeout(read)
                .writeTimeout(read)
                .retryOnConnectionFailure(false)
                .followRedirects(false)
                .followSslRedirects(false)
                .eventListenerFactory(call -> ConnectionTrace.LISTENER)
                .addNetworkInterceptor(OpenAiTransport::holdRetryAfter)
                .build();
    }

    private static Response holdRetryAfter(Interceptor.Chain chain) throws IOException {
        Response response = chain.proceed(chain.request());
        String retryAfter = response.header("Retry-After");
        if (response.code() == 503 && retryAfter != null) {
            return response.newBuilder()
                    .removeHeader("Retry-After")
                    .header(HELD_RETRY_AFTER, retryAfter)
                    .build();
        }
        return response;
    }

    /**
     * What happened to one HTTP call's connection, attached to the request as a tag and filled in by an
     * event listener: whether the call got a pooled connection (rather than opening one) and whether any
     * response byte arrived. A call that fails on a pooled connection before any response byte met a
     * connection the server had already closed: the server never saw the request, so it is safe to send
     * again.
     */
    private static final class ConnectionTrace {
        static final EventListener LISTENER = new EventListener() {
            @Override
            public void connectStart(Call call, java.net.InetSocketAddress address, java.net.Proxy proxy) {
                ConnectionTrace t = call.request().tag(ConnectionTrace.class);
                if (t != null) {
                    t.opened = true;
                }
            }

            @Override
            public void connectionAcquired(Call call, okhttp3.Connection connection) {
                ConnectionTrace t = call.request().tag(ConnectionTrace.class);
                if (t != null) {
                    t.acquired = true;
                }
            }

            @Override
            public void responseHeadersStart(Call call) {
                ConnectionTrace t = call.request().tag(ConnectionTrace.class);
                if (t != null) {
                    t.responseStarted = true;
                }
            }
        };

        volatile boolean opened;
        volatile boolean acquired;
        volatile boolean responseStarted;

        boolean failedOnDeadPooledConnection(IOException e) {
            return acquired && !opened && !responseStarted && !(e instanceof InterruptedIOException);
        }
    }

    /** Frees the client's connections and threads. */
    public void shutdown() {
        http.dispatcher().executorService().shutdown();
        http.connectionPool().evictAll();
    }

    /**
     * Normalizes a server base URL: strips a trailing slash and a trailing {@code /v1}.
     *
     * @throws IllegalArgumentException when it is not an http(s) URL
     */
    public static HttpUrl baseUrl(String url) {
        HttpUrl parsed = HttpUrl.parse(url.trim());
        if (parsed == null) {
            throw new IllegalArgumentException("expected an http:// or https:// URL, got \"" + url + "\"");
        }
        List<String> segments = new ArrayList<>(parsed.pathSegments());
        while (!segments.isEmpty() && segments.get(segments.size() - 1).isEmpty()) {
            segments.remove(segments.size() - 1);
        }
        if (!segments.isEmpty() && segments.get(segments.size() - 1).equals("v1")) {
            segments.remove(segments.size() - 1);
        }
        HttpUrl.Builder b = parsed.newBuilder().encodedPath("/").query(null).fragment(null);
        for (String s : segments) {
            b.addPathSegment(s);
        }
        return b.build();
    }

    /** A URL with any user name and password removed, for messages and receipts. */
    public static String label(HttpUrl url) {
        String s =
                url.newBuilder().username("").password("").query(null).build().toString();
        return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
    }

    /**
     * One server's URLs, resolved once.
     *
     * @param base the normalized base URL
     * @param chatCompletions {@code base + /v1/chat/completions}
     * @param label the base URL without credentials, for messages and receipts
     */
    public record Server(HttpUrl base, HttpUrl chatCompletions, String label) {
        /** Parses and normalizes a base URL; see {@link #baseUrl(String)}. */
        public static Server of(String url) {
            HttpUrl base = baseUrl(url);
            return new Server(base, base.resolve("v1/chat/completions"), OpenAiTransport.label(base));
        }

        /** A URL under the base, such as {@code metrics}. */
        public HttpUrl resolve(String path) {
            return base.resolve(path);
        }
    }

    /** Sends a blocking chat completion to {@code server}. */
    public OpenAiCodec.Completion complete(Server server, ChatRequest request, String model, CallContext ctx) {
        String endpoint = server.label();
        Request httpRequest = post(server.chatCompletions(), OpenAiCodec.encodeRequest(request, model, false, dialect));
        try (Response response = execute(httpRequest, ctx, endpoint).response()) {
            if (!response.isSuccessful()) {
                throw error(endpoint, response);
            }
            byte[] bytes = readBounded(response.body(), limits.maxResponseBytes(), endpoint, "response body");
            JsonNode root = parseJson(bytes, endpoint);
            if (root == null || !root.isObject()) {
                throw malformed(endpoint, "response is not a JSON object", null);
            }
            if ((root.has("error") && !root.has("choices"))
                    || "error".equals(root.path("object").asText())) {
                throw HttpErrors.fromStreamError(providerId, endpoint, root.has("error") ? root.get("error") : root);
            }
            try {
                OpenAiCodec.Completion c = OpenAiCodec.decodeCompletion(root);
                if (c.toolCalls().size() > limits.maxToolCalls()) {
                    throw malformed(
                            endpoint,
                            "response has " + c.toolCalls().size() + " tool calls, more than the limit of "
                                    + limits.maxToolCalls(),
                            null);
                }
                return c;
            } catch (IllegalArgumentException e) {
                throw malformed(endpoint, e.getMessage(), e);
            }
        } catch (IOException e) {
            throw HttpErrors.fromIo(providerId, endpoint, e, ctx);
        } finally {
            ctx.onCancel(null);
        }
    }

    /**
     * Parses a JSON body. Invalid UTF-8 is replaced with U+FFFD, as servers and the streaming path do,
     * rather than failing the call: the text a caller gets does not depend on whether it streamed.
     */
    private JsonNode parseJson(byte[] bytes, String endpoint) {
        try {
            return OpenAiCodec.MAPPER.readTree(bytes);
        } catch (IOException first) {
            try {
                return OpenAiCodec.MAPPER.readTree(new String(bytes, StandardCharsets.UTF_8));
            } catch (IOException e) {
                String detail = e instanceof com.fasterxml.jackson.core.JacksonException
                        ? ((com.fasterxml.jackson.core.JacksonException) e).getOriginalMessage()
                        : e.getMessage();
                throw malformed(endpoint, "response is not valid JSON: " + detail, e);
            }
        }
    }

    /**
     * Reads a whole body, refusing one larger than {@code max} bytes before buffering more than that.
     *
     * @throws MalformedResponseException when the body is larger
     */
    private byte[] readBounded(ResponseBody body, long max, String endpoint, String what) throws IOException {
        long declared = body.contentLength();
        if (declared > max) {
            throw tooLarge(endpoint, what, max);
        }
        okio.BufferedSource source = body.source();
        if (source.request(max + 1)) {
            throw tooLarge(endpoint, what, max);
        }
        return source.readByteArray();
    }

    private MalformedResponseException tooLarge(String endpoint, String what, long max) {
        return malformed(endpoint, what + " exceeds the limit of " + max + " bytes", null);
    }

    /**
     * Opens a streamed chat completion; returns once the response headers arrived with a success status.
     */
    public ProviderStream stream(Server server, ChatRequest request, String model, CallContext ctx) {
        String endpoint = server.label();
        Request httpRequest = post(server.chatCompletions(), OpenAiCodec.encodeRequest(request, model, true, dialect));
        Exchange exchange;
        try {
            exchange = execute(httpRequest, ctx, endpoint);
        } catch (IOException e) {
            ctx.onCancel(null);
            throw HttpErrors.fromIo(providerId, endpoint, e, ctx);
        }
        Response response = exchange.response();
        if (!response.isSuccessful()) {
            try (response) {
                throw error(endpoint, response);
            } finally {
                ctx.onCancel(null);
            }
        }
        return new SseStream(exchange.call(), response, endpoint, model, ctx, promptChars(request));
    }

    private static long promptChars(ChatRequest request) {
        long n = 0;
        for (dev.hybridinference.core.Message m : request.messages()) {
            n += m.content().length();
        }
        return n;
    }

    /** The model ids the server lists at {@code GET /v1/models}. */
    public List<String> listModels(Server server, Duration timeout) {
        String endpoint = server.label();
        HttpText r = get(server.resolve("v1/models"), timeout, true);
        if (r.status() / 100 != 2) {
            throw HttpErrors.fromResponse(providerId, endpoint, r.status(), null, null, r.body(), clock);
        }
        try {
            JsonNode root = OpenAiCodec.MAPPER.readTree(r.body());
            List<String> ids = new ArrayList<>();
            for (JsonNode m : root.path("data")) {
                if (m.hasNonNull("id")) {
                    ids.add(m.get("id").asText());
                }
            }
            return ids;
        } catch (IOException e) {
            throw malformed(endpoint, "/v1/models is not valid JSON", e);
        }
    }

    /** The status and text of a GET response. */
    public record HttpText(int status, String body) {}

    /**
     * A plain GET with its own timeout; I/O errors become {@link InferenceException}s. The body is bounded
     * by {@link Limits#maxGetBytes()}: a larger one fails with {@link MalformedResponseException}. A
     * redirect is returned as its status, never followed.
     *
     * @param authorize whether to send the API key (only {@code /v1/*} routes check it)
     */
    public HttpText get(HttpUrl url, Duration timeout, boolean authorize) {
        Request.Builder rb = new Request.Builder().url(url).get();
        if (authorize && authorization != null) {
            rb.header("Authorization", authorization);
        }
        String endpoint = label(url);
        Request request = rb.build();
        for (int reconnects = 0; ; reconnects++) {
            ConnectionTrace trace = new ConnectionTrace();
            Call call = http.newCall(
                    request.newBuilder().tag(ConnectionTrace.class, trace).build());
            call.timeout().timeout(timeout.toNanos(), TimeUnit.NANOSECONDS);
            try (Response response = call.execute()) {
                byte[] body = response.isRedirect()
                        ? new byte[0]
                        : readBounded(response.body(), limits.maxGetBytes(), endpoint, "GET " + url.encodedPath());
                return new HttpText(response.code(), new String(body, StandardCharsets.UTF_8));
            } catch (IOException e) {
                if (reconnects < MAX_RECONNECTS && trace.failedOnDeadPooledConnection(e)) {
                    reconnecting(endpoint, e);
                    continue;
                }
                throw HttpErrors.fromIo(providerId, endpoint, e, null);
            }
        }
    }

    private static Request post(HttpUrl url, byte[] body) {
        return new Request.Builder()
                .url(url)
                .post(RequestBody.create(body, JSON))
                .header("Accept", "application/json, text/event-stream")
                .build();
    }

    /** A call in flight and its response. */
    private record Exchange(Call call, Response response) {}

    /**
     * Executes a POST within the call's deadline, registering its cancellation with {@code ctx}. A request
     * that fails on a pooled connection the server had already closed, before any response byte, is sent
     * again on a new connection (the server never saw it); any other failure is the caller's to handle.
     */
    private Exchange execute(Request request, CallContext ctx, String endpoint) throws IOException {
        for (int reconnects = 0; ; reconnects++) {
            ctx.checkActive(endpoint);
            Request.Builder rb = request.newBuilder();
            if (authorization != null) {
                rb.header("Authorization", authorization);
            }
            ConnectionTrace trace = new ConnectionTrace();
            Call call = http.newCall(rb.tag(ConnectionTrace.class, trace).build());
            long limit = callTimeout.isZero() ? Long.MAX_VALUE : callTimeout.toNanos();
            long remaining =
                    ctx.remaining().map(OpenAiTransport::saturatedNanos).orElse(Long.MAX_VALUE);
            long timeout = Math.min(limit, remaining);
            if (timeout != Long.MAX_VALUE) {
                call.timeout().timeout(Math.max(1, timeout), TimeUnit.NANOSECONDS);
            }
            ctx.onCancel(call::cancel);
            try {
                Response response = call.execute();
                if (response.isRedirect()) {
                    try (response) {
                        throw HttpErrors.redirect(providerId, endpoint, response.code(), response.header("Location"));
                    }
                }
                return new Exchange(call, response);
            } catch (IOException e) {
                if (reconnects < MAX_RECONNECTS && !ctx.isCancelled() && trace.failedOnDeadPooledConnection(e)) {
                    reconnecting(endpoint, e);
                    continue;
                }
                throw e;
            }
        }
    }

    private void reconnecting(String endpoint, IOException e) {
        // The dead connection's idle siblings are most likely dead too: drop them rather than meet each.
        http.connectionPool().evictAll();
        if (LOG.isDebugEnabled()) {
            LOG.debug(
                    "{} ({}): pooled connection was closed by the server ({}); sending again on a new connection",
                    providerId,
                    endpoint,
                    Secrets.redact(e.toString()));
        }
    }

    private static long saturatedNanos(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return d.isNegative() ? 0 : Long.MAX_VALUE;
        }
    }

    private InferenceException error(String endpoint, Response response) {
        String text;
        try (ResponseBody body = response.body()) {
            okio.BufferedSource source = body.source();
            source.request(MAX_ERROR_BODY);
            okio.Buffer buffer = source.getBuffer();
            byte[] bytes = buffer.readByteArray(Math.min(buffer.size(), MAX_ERROR_BODY));
            text = new String(bytes, StandardCharsets.UTF_8);
        } catch (IOException e) {
            text = "";
        }
        String retryAfter = response.header("Retry-After");
        if (retryAfter == null) {
            retryAfter = response.header(HELD_RETRY_AFTER);
        }
        String retryAfterMs = response.header("retry-after-ms");
        if (retryAfterMs == null) {
            retryAfterMs = response.header("x-ms-retry-after-ms");
        }
        return HttpErrors.fromResponse(providerId, endpoint, response.code(), retryAfter, retryAfterMs, text, clock);
    }

    private MalformedResponseException malformed(String endpoint, String message, Throwable cause) {
        return new MalformedResponseException(message, providerId, endpoint, 0, null, cause);
    }

    /** Reads chat-completion chunks from an SSE response and assembles the whole answer. */
    private final class SseStream implements ProviderStream {
        private final Call call;
        private final Response response;
        private final SseReader reader;
        private final String endpoint;
        private final CallContext ctx;
        private final long promptChars;
        private final StringBuilder text = new StringBuilder();
        private final List<ToolCallBuilder> toolCalls = new ArrayList<>();
        private final boolean eventStream;
        private FinishReason finish;
        private Usage usage;
        private String model;
        /** Chunks that carried content or a tool-call fragment: about one token each. */
        private long contentChunks;

        private long assembledChars;
        private volatile boolean ended;
        private final Object lock = new Object();
        private boolean reading;
        private boolean closed;
        private boolean responseClosed;

        SseStream(Call call, Response response, String endpoint, String model, CallContext ctx, long promptChars) {
            this.call = call;
            this.response = response;
            this.reader = new SseReader(response.body().source(), limits.maxLineBytes());
            this.endpoint = endpoint;
            this.model = model;
            this.ctx = ctx;
            this.promptChars = promptChars;
            String type = response.header("Content-Type", "");
            this.eventStream = type.startsWith("text/event-stream");
        }

        @Override
        public ChatChunk next() {
            if (ended) {
                return null;
            }
            synchronized (lock) {
                if (closed) {
                    throw new dev.hybridinference.core.CancelledException(
                            "stream closed", providerId, endpoint, 0, null, null);
                }
                reading = true;
            }
            try {
                return read();
            } finally {
                synchronized (lock) {
                    reading = false;
                    if (closed) {
                        closeResponse();
                    }
                }
            }
        }

        private ChatChunk read() {
            try {
                if (!eventStream) {
                    return wholeResponse();
                }
                while (true) {
                    String data = reader.next();
                    if (data == null) {
                        throw malformed(
                                endpoint,
                                "stream ended before \"data: [DONE]\" (connection cut or server crashed)",
                                null);
                    }
                    if (reader.isError()) {
                        throw streamError(data);
                    }
                    if (data.equals("[DONE]")) {
                        ended = true;
                        return null;
                    }
                    ChatChunk chunk = decodeChunk(data);
                    if (chunk != null) {
                        return chunk;
                    }
                }
            } catch (SseReader.LineTooLongException e) {
                throw malformed(endpoint, e.getMessage(), e);
            } catch (IOException e) {
                throw HttpErrors.fromIo(providerId, endpoint, e, ctx);
            }
        }

        /** The exception for an error event: its data is usually a JSON error object, sometimes text. */
        private InferenceException streamError(String data) {
            JsonNode node;
            try {
                node = OpenAiCodec.MAPPER.readTree(data);
            } catch (IOException e) {
                node = OpenAiCodec.MAPPER.getNodeFactory().textNode(data);
            }
            if (node != null && node.has("error") && !node.get("error").isNull()) {
                node = node.get("error");
            }
            return HttpErrors.fromStreamError(providerId, endpoint, node);
        }

        /** A server that ignored {@code stream: true} and answered with one JSON completion. */
        private ChatChunk wholeResponse() throws IOException {
            ended = true;
            byte[] bytes = readBounded(response.body(), limits.maxResponseBytes(), endpoint, "response body");
            try {
                JsonNode root = parseJson(bytes, endpoint);
                OpenAiCodec.Completion c = OpenAiCodec.decodeCompletion(root);
                text.append(c.text());
                for (ToolCall t : c.toolCalls()) {
                    ToolCallBuilder b = new ToolCallBuilder();
                    b.id = t.id();
                    b.name.append(t.name());
                    b.arguments.append(t.argumentsJson());
                    toolCalls.add(b);
                }
                finish = c.finishReason();
                usage = c.usage();
                if (!c.model().isEmpty()) {
                    model = c.model();
                }
                return new ChatChunk(c.text(), finish);
            } catch (MalformedResponseException | IllegalArgumentException e) {
                throw malformed(endpoint, "expected an event stream or a JSON completion: " + e.getMessage(), e);
            }
        }

        /**
         * Decodes one {@code chat.completion.chunk} with a token parser rather than a tree: a stream has
         * one per token, so this is the hot path. Only the fields it uses are read; the rest is skipped.
         */
        private ChatChunk decodeChunk(String data) {
            OpenAiCodec.ChunkFields f;
            try {
                f = OpenAiCodec.decodeChunk(data);
            } catch (IOException e) {
                throw malformed(endpoint, "stream event is not valid JSON: " + abbreviate(data), e);
            } catch (IllegalArgumentException e) {
                throw malformed(endpoint, "stream event is not a JSON object: " + abbreviate(data), e);
            }
            if (f.error != null) {
                throw HttpErrors.fromStreamError(providerId, endpoint, f.error);
            }
            if (f.errorObject) {
                throw streamError(data);
            }
            if (f.usage != null) {
                usage = f.usage;
            }
            if (f.model != null && !f.model.isEmpty()) {
                model = f.model;
            }
            if (!f.hasChoice) {
                return null;
            }
            JsonNode tc = f.toolCalls;
            boolean toolFragment = tc != null && tc.isArray() && tc.size() > 0;
            if (toolFragment) {
                for (JsonNode c : tc) {
                    appendToolFragment(c);
                }
            }
            FinishReason fr = f.finishReason == null ? null : FinishReason.fromWire(f.finishReason);
            if (fr != null) {
                finish = fr;
            }
            String piece = f.content;
            boolean content = piece != null && !piece.isEmpty();
            if (content || toolFragment) {
                contentChunks++;
            }
            if (content) {
                grow(piece.length());
                text.append(piece);
                return new ChatChunk(piece, fr);
            }
            return fr != null || toolFragment ? new ChatChunk("", fr) : null;
        }

        /** Adds one tool-call fragment; its index is bounded, so a hostile index cannot size a list. */
        private void appendToolFragment(JsonNode c) {
            JsonNode idx = c.get("index");
            long index = idx != null && idx.canConvertToLong() ? idx.asLong() : toolCalls.size();
            if (index < 0 || index >= limits.maxToolCalls()) {
                throw malformed(
                        endpoint,
                        "tool-call index " + abbreviate(idx == null ? "" : idx.toString()) + " is outside 0.."
                                + (limits.maxToolCalls() - 1) + " (the limit on tool calls per answer)",
                        null);
            }
            while (toolCalls.size() <= index) {
                toolCalls.add(new ToolCallBuilder());
            }
            ToolCallBuilder b = toolCalls.get((int) index);
            if (c.hasNonNull("id")) {
                b.id = c.get("id").asText();
            }
            JsonNode fn = c.path("function");
            if (fn.hasNonNull("name")) {
                String name = fn.get("name").asText();
                grow(name.length());
                b.name.append(name);
            }
            String args = OpenAiCodec.argumentsText(fn.get("arguments"));
            grow(args.length());
            b.arguments.append(args);
        }

        private void grow(int chars) {
            assembledChars += chars;
            if (assembledChars > limits.maxStreamChars()) {
                throw malformed(
                        endpoint, "the answer exceeds the limit of " + limits.maxStreamChars() + " characters", null);
            }
        }

        /**
         * The answer so far; at the end, the whole answer. Before the end (a stream that failed or was
         * closed), the usage is the server's if it sent one, otherwise estimated: one output token per chunk
         * that carried content, and the prompt at about four characters a token.
         */
        @Override
        public ProviderResult result() {
            List<ToolCall> calls = new ArrayList<>(toolCalls.size());
            for (ToolCallBuilder b : toolCalls) {
                calls.add(new ToolCall(b.id == null ? "" : b.id, b.name.toString(), b.arguments.toString()));
            }
            Usage u = usage;
            if (u == null) {
                u = ended && contentChunks == 0
                        ? Usage.ZERO
                        : Usage.estimated(Math.max(1, (promptChars + 3) / 4), contentChunks);
            }
            return ProviderResult.builder()
                    .text(text.toString())
                    .toolCalls(calls)
                    .finishReason(finish == null ? FinishReason.OTHER : finish)
                    .usage(u)
                    .model(model)
                    .build();
        }

        /**
         * Cancels the call if it has not ended. May run on any thread: the response is closed here only
         * when no read is in progress, otherwise by the reader as its read fails.
         */
        @Override
        public void close() {
            synchronized (lock) {
                if (closed) {
                    return;
                }
                closed = true;
            }
            if (!ended) {
                call.cancel();
            }
            synchronized (lock) {
                if (!reading) {
                    closeResponse();
                }
            }
            ctx.onCancel(null);
        }

        private void closeResponse() {
            if (!responseClosed) {
                responseClosed = true;
                response.close();
            }
        }
    }

    private static final class ToolCallBuilder {
        String id;
        final StringBuilder name = new StringBuilder();
        final StringBuilder arguments = new StringBuilder();
    }

    private static String abbreviate(String s) {
        return s.length() <= 120 ? s : s.substring(0, 120) + "...";
    }
}
