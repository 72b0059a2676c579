package dev.hybridinference.core.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.internal.openai.ChunkDecoder;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.Deadline;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.Secrets;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.Connection;
import okhttp3.ConnectionPool;
import okhttp3.EventListener;
import okhttp3.HttpUrl;
import okhttp3.Interceptor;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okio.BufferedSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Talks to OpenAI-compatible servers over OkHttp: chat completions blocking ({@link #complete}) and
 * streamed ({@link #stream}: SSE with the usage chunk, or newline-delimited JSON), model listing and plain
 * GETs for health and metrics. One instance per provider, shared by its calls; thread-safe.
 *
 * <p>What it guarantees, each against something real servers did:
 *
 * <ul>
 *   <li><b>No request is sent twice</b> unless the server never saw it. OkHttp's own resends and redirects
 *       are off (a resend hides a request that reached the server; following a POST to another origin
 *       would hand it the prompt). A request that fails on a pooled connection the server had closed while
 *       idle, before any response byte, is sent again on a new connection, at most twice; anything else is
 *       the caller's to retry.
 *   <li><b>Bounded memory</b>: lines, bodies, tool calls and the assembled answer are bounded by {@link
 *       ResponseLimits}.
 *   <li><b>Credentials per request</b>: {@link RequestHeaders} is asked for each request and each resend,
 *       and every credential it returns is registered for redaction.
 *   <li><b>Failures as {@link InferenceException}s</b> only, mapped by {@link HttpErrors}; a stream that
 *       fails or is closed still yields what it assembled, with estimated usage (see {@link
 *       StreamAssembler#result()}).
 * </ul>
 *
 * <p>It never retries by itself otherwise: retrying is the core's decision.
 */
public final class OpenAiTransport {
    private static final Logger LOG = LoggerFactory.getLogger(OpenAiTransport.class);
    private static final MediaType JSON = MediaType.get("application/json");
    private static final int MAX_ERROR_BODY = 16 * 1024;
    private static final int MAX_ARRAY = Integer.MAX_VALUE - 16;

    /**
     * Where a 503's {@code Retry-After} is kept out of OkHttp's sight: OkHttp silently re-sends a request
     * answered 503 with {@code Retry-After: 0}, which would hide a request that reached the server.
     */
    private static final String HELD_RETRY_AFTER = "X-Hybrid-Inference-Retry-After";

    /** How often a request that failed on a dead pooled connection is sent again on a new one. */
    private static final int MAX_RECONNECTS = 2;

    /** How long idle pooled connections are kept by default: under the 5 s of uvicorn and llama.cpp. */
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(4);

    private final OkHttpClient http;
    private final boolean ownsClient;
    private final String providerId;
    private final RequestHeaders headers;
    private final OpenAiCodec.Dialect dialect;
    private final Clock clock;
    private final long callTimeoutNanos;
    private final ResponseLimits limits;
    /** The header map whose credentials were registered last; a supplier that returns the same map skips it. */
    private volatile Map<String, String> registered;

    private OpenAiTransport(Builder b) {
        this.providerId = b.providerId;
        this.ownsClient = b.shared == null;
        OkHttpClient.Builder client;
        if (b.shared != null) {
            client = b.shared.newBuilder();
        } else {
            client = new OkHttpClient.Builder()
                    .connectionPool(
                            new ConnectionPool(32, Math.max(1, b.idleTimeout.toMillis()), TimeUnit.MILLISECONDS))
                    .connectTimeout(b.connectTimeout)
                    .readTimeout(b.readTimeout)
                    .writeTimeout(b.readTimeout);
            if (b.sslSocketFactory != null) {
                client.sslSocketFactory(b.sslSocketFactory, b.trustManager);
            }
        }
        this.http = configure(client);
        this.headers = b.headers;
        this.dialect = b.dialect;
        this.clock = b.clock;
        this.callTimeoutNanos = b.callTimeout.isZero() ? Long.MAX_VALUE : Deadline.saturatedNanos(b.callTimeout);
        this.limits = b.limits;
    }

    /**
     * The settings every client of this transport needs, whether it built the client or was given one: no
     * silent resends or redirects, the trace of each call's connection, and the held {@code Retry-After}.
     */
    private static OkHttpClient configure(OkHttpClient.Builder b) {
        return b.retryOnConnectionFailure(false)
                .followRedirects(false)
                .followSslRedirects(false)
                .eventListenerFactory(call -> ConnectionTrace.LISTENER)
                .addNetworkInterceptor(OpenAiTransport::holdRetryAfter)
                .build();
    }

    /**
     * A builder for a provider's transport.
     *
     * @param providerId the provider, for messages and logs
     */
    public static Builder builder(String providerId) {
        return new Builder(providerId);
    }

    private static Response holdRetryAfter(Interceptor.Chain chain) throws IOException {
        Response response = chain.proceed(chain.request());
        if (response.code() == 503) {
            String retryAfter = response.header("Retry-After");
            if (retryAfter != null) {
                return response.newBuilder()
                        .removeHeader("Retry-After")
                        .header(HELD_RETRY_AFTER, retryAfter)
                        .build();
            }
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
            public void connectStart(Call call, InetSocketAddress address, Proxy proxy) {
                ConnectionTrace t = call.request().tag(ConnectionTrace.class);
                if (t != null) {
                    t.opened = true;
                }
            }

            @Override
            public void connectionAcquired(Call call, Connection connection) {
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

    /** The client calls go through (for tests of its settings). */
    OkHttpClient httpClient() {
        return http;
    }

    /**
     * Drops the idle pooled connections, so the next request opens a fresh one (a health check that failed
     * on a connection the server may have closed, say).
     */
    public void evictIdleConnections() {
        http.connectionPool().evictAll();
    }

    /**
     * Frees the connections and threads of a client this transport built. A client the caller passed in
     * ({@link Builder#httpClient}) is left alone, dispatcher and pool: it is the caller's to shut down.
     */
    public void shutdown() {
        if (ownsClient) {
            http.dispatcher().executorService().shutdown();
            http.connectionPool().evictAll();
        }
    }

    /**
     * One server, its URLs resolved once. Immutable.
     *
     * <p>The base URL is normalized: a trailing slash and a trailing {@code /v1} are dropped, and the chat
     * route is {@code <base>/v1/chat/completions}. So {@code http://gpu-1:8000}, {@code
     * http://gpu-1:8000/v1/} and, for Azure, {@code https://res.openai.azure.com/openai/v1} all work.
     */
    public static final class Server {
        private final HttpUrl base;
        private final HttpUrl chatCompletions;
        private final String label;

        private Server(HttpUrl base) {
            this.base = base;
            this.chatCompletions = base.resolve("v1/chat/completions");
            this.label = label(base);
        }

        /**
         * Parses and normalizes a base URL.
         *
         * @throws IllegalArgumentException when it is not an http(s) URL
         */
        public static Server of(String url) {
            Objects.requireNonNull(url, "url");
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
            if (!segments.isEmpty()) {
                b.addPathSegment(""); // a trailing slash, so routes resolve under the path, not beside it
            }
            return new Server(b.build());
        }

        /** The URL of the chat route, credentials included: for the request, never for messages. */
        String chatCompletionsUrl() {
            return chatCompletions.toString();
        }

        /**
         * The base URL without user name, password, query or trailing slash: for messages, receipts and
         * as a Google ID token's audience.
         */
        public String label() {
            return label;
        }

        HttpUrl url(String path) {
            HttpUrl url = base.resolve(path);
            if (url == null) {
                throw new IllegalArgumentException("cannot resolve \"" + path + "\" against " + label);
            }
            return url;
        }

        static String label(HttpUrl url) {
            String s = url.newBuilder()
                    .username("")
                    .password("")
                    .query(null)
                    .build()
                    .toString();
            return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
        }

        /** The label. */
        @Override
        public String toString() {
            return label;
        }
    }

    /**
     * Sends a blocking chat completion to {@code server}.
     *
     * @param model the model to name in the body; null or empty to leave it out
     * @param ctx the call's context: its deadline bounds the call, its cancellation cancels it
     * @throws InferenceException on any failure
     */
    public OpenAiCodec.Completion complete(Server server, ChatRequest request, String model, CallContext ctx) {
        String endpoint = server.label();
        byte[] body = OpenAiCodec.encodeRequest(request, model, false, dialect);
        Exchange exchange = null;
        try {
            exchange = execute(server, body, ctx);
            try (Response response = exchange.response()) {
                if (!response.isSuccessful()) {
                    throw error(endpoint, response);
                }
                // Parsed from an array rather than a stream: Jackson reads an array in place, while a stream
                // costs it an 8 KB read buffer per parse, more than the body.
                byte[] bytes = readBounded(response.body(), limits.maxResponseBytes(), endpoint, "response body");
                return OpenAiCodec.decodeCompletion(bytes, providerId, endpoint, limits);
            }
        } catch (IOException e) {
            throw HttpErrors.forIo(providerId, endpoint, exchange == null ? e : exchange.explain(e), ctx);
        } finally {
            if (exchange != null) {
                exchange.release();
            }
            ctx.onCancel(null);
        }
    }

    /**
     * Reads a whole body, refusing one larger than {@code max} bytes before buffering more than that.
     *
     * @throws MalformedResponseException when the body is larger
     */
    private byte[] readBounded(ResponseBody body, long max, String endpoint, String what) throws IOException {
        long bound = Math.min(max, MAX_ARRAY);
        long declared = body.contentLength();
        if (declared > bound) {
            throw tooLarge(endpoint, what, max);
        }
        BufferedSource source = body.source();
        if (source.request(bound + 1)) {
            throw tooLarge(endpoint, what, max);
        }
        return source.readByteArray();
    }

    private MalformedResponseException tooLarge(String endpoint, String what, long max) {
        return OpenAiCodec.malformed(providerId, endpoint, what + " exceeds the limit of " + max + " bytes", null);
    }

    /**
     * Opens a streamed chat completion; returns once the response headers arrived with a success status.
     * The stream reads {@code text/event-stream} as SSE, {@code application/jsonlines} and {@code
     * application/x-ndjson} as JSON lines, and any other body as one JSON completion (a server that ignored
     * {@code stream: true}).
     *
     * @throws InferenceException when the request fails or the status is an error
     */
    public ProviderStream stream(Server server, ChatRequest request, String model, CallContext ctx) {
        String endpoint = server.label();
        byte[] body = OpenAiCodec.encodeRequest(request, model, true, dialect);
        Exchange exchange;
        try {
            exchange = execute(server, body, ctx);
        } catch (IOException e) {
            ctx.onCancel(null);
            throw HttpErrors.forIo(providerId, endpoint, e, ctx);
        }
        Response response = exchange.response();
        if (!response.isSuccessful()) {
            try (response) {
                throw error(endpoint, response);
            } finally {
                exchange.release();
                ctx.onCancel(null);
            }
        }
        return new HttpStream(exchange, endpoint, model, ctx, StreamAssembler.promptChars(request));
    }

    /** The model ids the server lists at {@code GET /v1/models}. */
    public List<String> listModels(Server server, Duration timeout) {
        String endpoint = server.label();
        HttpText r = get(server, "v1/models", timeout, true);
        if (r.status() / 100 != 2) {
            throw HttpErrors.forStatus(providerId, endpoint, r.status(), name -> null, r.body(), clock);
        }
        try {
            JsonNode root = ChunkDecoder.MAPPER.readTree(r.body());
            List<String> ids = new ArrayList<>();
            for (JsonNode m : root.path("data")) {
                if (m.hasNonNull("id")) {
                    ids.add(m.get("id").asText());
                }
            }
            return ids;
        } catch (IOException e) {
            throw OpenAiCodec.malformed(providerId, endpoint, "/v1/models is not valid JSON", e);
        }
    }

    /**
     * The status and text of a GET response.
     *
     * @param status the HTTP status
     * @param body the body as UTF-8 text; empty for a redirect
     */
    public record HttpText(int status, String body) {}

    /**
     * A plain GET of a path under the server's base URL ({@code health}, {@code metrics}), with its own
     * timeout; I/O errors become {@link InferenceException}s. The body is bounded by {@link
     * ResponseLimits#maxGetBytes()}: a larger one fails with {@link MalformedResponseException}. A redirect
     * is returned as its status, never followed.
     *
     * @param path relative to the base URL, without a leading slash
     * @param authorize whether to send the {@link RequestHeaders} (vLLM checks them only on {@code /v1/*})
     */
    public HttpText get(Server server, String path, Duration timeout, boolean authorize) {
        HttpUrl url = server.url(path);
        String endpoint = Server.label(url);
        for (int reconnects = 0; ; reconnects++) {
            Request.Builder rb = new Request.Builder().url(url).get();
            if (authorize) {
                applyHeaders(rb, server);
            }
            ConnectionTrace trace = new ConnectionTrace();
            Call call = http.newCall(rb.tag(ConnectionTrace.class, trace).build());
            call.timeout().timeout(Math.max(1, Deadline.saturatedNanos(timeout)), TimeUnit.NANOSECONDS);
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
                throw HttpErrors.forIo(providerId, endpoint, e, null);
            }
        }
    }

    /**
     * Asks the {@link RequestHeaders} for this request's headers and adds them, registering every
     * credential among them for redaction the first time the supplier returns a map.
     */
    private void applyHeaders(Request.Builder rb, Server server) {
        Map<String, String> h;
        try {
            h = headers.headers(server);
        } catch (InferenceException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new AuthenticationException(
                    "could not get the request's credentials: " + e, providerId, server.label(), 0, null, e);
        }
        if (h == null) {
            throw new AuthenticationException(
                    "the request-headers supplier returned null", providerId, server.label(), 0, null, null);
        }
        if (h != registered) {
            h.forEach(OpenAiTransport::registerCredential);
            registered = h;
        }
        h.forEach(rb::header);
    }

    /** Registers a credential header's value, and the token of a {@code Bearer}/{@code Basic} value. */
    static void registerCredential(String name, String value) {
        if (!isCredential(name) || value == null) {
            return;
        }
        Secrets.register(value);
        int space = value.indexOf(' ');
        if (space > 0) {
            Secrets.register(value.substring(space + 1));
        }
    }

    /** Whether a header carries a credential. */
    static boolean isCredential(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return n.equals("cookie")
                || n.contains("auth")
                || n.contains("key")
                || n.contains("token")
                || n.contains("secret")
                || n.contains("signature")
                || n.contains("credential");
    }

    /**
     * POSTs {@code body} to the server's chat route within the call's deadline, registering its
     * cancellation with {@code ctx}. A request that fails on a pooled connection the server had already
     * closed, before any response byte, is sent again on a new connection (the server never saw it); any
     * other failure is the caller's to handle. The exchange returned is under {@link CallDeadlines}' watch
     * until it is {@link Exchange#release() released}.
     */
    private Exchange execute(Server server, byte[] body, CallContext ctx) throws IOException {
        String endpoint = server.label();
        RequestBody requestBody = RequestBody.create(body, JSON);
        for (int reconnects = 0; ; reconnects++) {
            ctx.checkActive(endpoint);
            Request.Builder rb = new Request.Builder()
                    .url(server.chatCompletions)
                    .post(requestBody)
                    .addHeader("Accept", "application/json, text/event-stream"); // a fresh builder: no lookup
            applyHeaders(rb, server);
            ConnectionTrace trace = new ConnectionTrace();
            Call call = http.newCall(rb.tag(ConnectionTrace.class, trace).build());
            long timeout = Math.min(callTimeoutNanos, ctx.deadline().remainingNanos());
            CallDeadlines.Watch watch = timeout == Long.MAX_VALUE ? null : CallDeadlines.SHARED.watch(call, timeout);
            ctx.onCancel(call::cancel);
            try {
                Response response = call.execute();
                if (response.isRedirect()) {
                    CallDeadlines.SHARED.release(watch);
                    try (response) {
                        throw HttpErrors.redirect(providerId, endpoint, response.code(), response.header("Location"));
                    }
                }
                return new Exchange(call, response, watch);
            } catch (IOException e) {
                CallDeadlines.SHARED.release(watch);
                IOException failure = watch == null ? e : watch.explain(e);
                if (reconnects < MAX_RECONNECTS && !ctx.isCancelled() && trace.failedOnDeadPooledConnection(failure)) {
                    reconnecting(endpoint, e);
                    continue;
                }
                throw failure;
            }
        }
    }

    /** A call in flight, its response, and the watch on its deadline (null when it has none). */
    private record Exchange(Call call, Response response, CallDeadlines.Watch watch) {
        /** A failure of reading the response, told as a timeout when the deadline caused it. */
        IOException explain(IOException e) {
            return watch == null ? e : watch.explain(e);
        }

        /** Ends the watch: the call is over. */
        void release() {
            CallDeadlines.SHARED.release(watch);
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

    private InferenceException error(String endpoint, Response response) {
        String text;
        try (ResponseBody body = response.body()) {
            BufferedSource source = body.source();
            source.request(MAX_ERROR_BODY);
            okio.Buffer buffer = source.getBuffer();
            byte[] bytes = buffer.readByteArray(Math.min(buffer.size(), MAX_ERROR_BODY));
            text = new String(bytes, StandardCharsets.UTF_8);
        } catch (IOException e) {
            text = "";
        }
        return HttpErrors.forStatus(
                providerId,
                endpoint,
                response.code(),
                name -> {
                    String v = response.header(name);
                    return v == null && name.equalsIgnoreCase("Retry-After") ? response.header(HELD_RETRY_AFTER) : v;
                },
                text,
                clock);
    }

    /**
     * Reads a streamed response through a {@link StreamSplitter} into a {@link StreamAssembler}: the same
     * two a provider with its own transport uses on the byte chunks it receives.
     */
    private final class HttpStream implements ProviderStream {
        private final Exchange exchange;
        private final Call call;
        private final Response response;
        private final BufferedSource source;
        private final StreamSplitter splitter;
        private final StreamAssembler assembler;
        private final String endpoint;
        private final CallContext ctx;
        /** Null for a body that is one JSON completion. */
        private final StreamSplitter.Format format;

        private boolean endOfBody;
        private volatile boolean ended;
        private final Object lock = new Object();
        private boolean reading;
        private boolean closed;
        private boolean responseClosed;

        HttpStream(Exchange exchange, String endpoint, String model, CallContext ctx, long promptChars) {
            this.exchange = exchange;
            this.call = exchange.call();
            this.response = exchange.response();
            this.source = response.body().source();
            this.endpoint = endpoint;
            this.ctx = ctx;
            String type = response.header("Content-Type", "");
            this.format = type.startsWith("text/event-stream")
                    ? StreamSplitter.Format.SSE
                    : type.startsWith("application/jsonlines") || type.startsWith("application/x-ndjson")
                            ? StreamSplitter.Format.JSON_LINES
                            : null;
            this.splitter = format == null ? null : new StreamSplitter(format, limits.maxLineBytes());
            this.assembler = new StreamAssembler(providerId, endpoint, model, promptChars, limits);
        }

        @Override
        public ChatChunk next() {
            if (ended) {
                return null;
            }
            synchronized (lock) {
                if (closed) {
                    throw new CancelledException("stream closed", providerId, endpoint, 0, null, null);
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
                if (format == null) {
                    return wholeResponse();
                }
                while (true) {
                    if (!splitter.advance()) {
                        if (endOfBody) {
                            return endOfInput();
                        }
                        if (splitter.readFrom(source) < 0) {
                            endOfBody = true;
                            splitter.finish();
                        }
                        continue;
                    }
                    ChatChunk chunk = assembler.accept(splitter.data(), splitter.dataLength(), splitter.isError());
                    if (assembler.isEnded()) {
                        ended = true;
                        return null;
                    }
                    if (chunk != null) {
                        return chunk;
                    }
                }
            } catch (StreamSplitter.LineTooLongException e) {
                throw assembler.malformed(e.getMessage(), e);
            } catch (IOException e) {
                throw HttpErrors.forIo(providerId, endpoint, exchange.explain(e), ctx);
            }
        }

        /** The body ended: normal for JSON lines, a cut for SSE, whose end is {@code data: [DONE]}. */
        private ChatChunk endOfInput() {
            if (format == StreamSplitter.Format.JSON_LINES) {
                assembler.end();
                ended = true;
                return null;
            }
            throw assembler.malformed("stream ended before \"data: [DONE]\" (connection cut or server crashed)", null);
        }

        /** A server that ignored {@code stream: true} and answered with one JSON completion. */
        private ChatChunk wholeResponse() throws IOException {
            ended = true;
            byte[] bytes = readBounded(response.body(), limits.maxResponseBytes(), endpoint, "response body");
            OpenAiCodec.Completion c;
            try {
                c = OpenAiCodec.decodeCompletion(bytes, providerId, endpoint, limits);
            } catch (MalformedResponseException e) {
                throw assembler.malformed("expected an event stream or a JSON completion: " + e.getMessage(), e);
            }
            return assembler.acceptCompletion(c);
        }

        @Override
        public ProviderResult result() {
            return assembler.result();
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
                exchange.release();
            }
        }
    }

    /**
     * Builds an {@link OpenAiTransport}. Not thread-safe. Defaults: the {@link OpenAiCodec.Dialect#OPENAI}
     * dialect, no headers, the system UTC clock, 10 s to connect, 60 s between reads, 5 minutes for a
     * whole call, idle connections kept {@link #DEFAULT_IDLE_TIMEOUT}, {@link ResponseLimits#DEFAULTS}.
     */
    public static final class Builder {
        private final String providerId;
        private OkHttpClient shared;
        private RequestHeaders headers = RequestHeaders.NONE;
        private OpenAiCodec.Dialect dialect = OpenAiCodec.Dialect.OPENAI;
        private Clock clock = Clock.systemUTC();
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration readTimeout = Duration.ofSeconds(60);
        private Duration callTimeout = Duration.ofMinutes(5);
        private Duration idleTimeout = DEFAULT_IDLE_TIMEOUT;
        private ResponseLimits limits = ResponseLimits.DEFAULTS;
        private javax.net.ssl.SSLSocketFactory sslSocketFactory;
        private javax.net.ssl.X509TrustManager trustManager;

        private Builder(String providerId) {
            this.providerId = Objects.requireNonNull(providerId, "providerId");
        }

        /**
         * The headers of each request (credentials); see {@link RequestHeaders}. Replaces an {@link
         * #apiKey}.
         */
        public Builder headers(RequestHeaders headers) {
            this.headers = Objects.requireNonNull(headers, "headers");
            return this;
        }

        /**
         * Sends {@code Authorization: Bearer <apiKey>} (vLLM's {@code --api-key}); null or empty for none.
         * Shorthand for {@code headers(RequestHeaders.bearer(apiKey))}.
         */
        public Builder apiKey(String apiKey) {
            Secrets.register(apiKey);
            this.headers = RequestHeaders.bearer(apiKey);
            return this;
        }

        /** Which extra request fields the server accepts. */
        public Builder dialect(OpenAiCodec.Dialect dialect) {
            this.dialect = Objects.requireNonNull(dialect, "dialect");
            return this;
        }

        /** The wall clock, for HTTP-date {@code Retry-After} values. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** The limit on opening a connection; zero for none. Ignored with {@link #httpClient}. */
        public Builder connectTimeout(Duration d) {
            this.connectTimeout = nonNegative(d, "connectTimeout");
            return this;
        }

        /** The limit on the gap between two reads or writes; zero for none. Ignored with {@link #httpClient}. */
        public Builder readTimeout(Duration d) {
            this.readTimeout = nonNegative(d, "readTimeout");
            return this;
        }

        /** The limit on a whole call, streaming included, under the request's own deadline; zero for none. */
        public Builder callTimeout(Duration d) {
            this.callTimeout = nonNegative(d, "callTimeout");
            return this;
        }

        /**
         * How long idle pooled connections are kept: shorter than the server's own idle timeout (5 s for
         * uvicorn, which vLLM runs on, and llama.cpp's server), so the pool lets go first. Ignored with
         * {@link #httpClient}.
         */
        public Builder idleTimeout(Duration d) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("idleTimeout must be positive, got " + d);
            }
            this.idleTimeout = d;
            return this;
        }

        /** Bounds on what servers may send. */
        public Builder limits(ResponseLimits limits) {
            this.limits = Objects.requireNonNull(limits, "limits");
            return this;
        }

        /**
         * Trusts the servers this trust manager accepts instead of the JVM's default certificate authorities
         * (a private CA, a proxy's certificate, a test server's). Ignored with {@link #httpClient}, whose own
         * TLS settings apply.
         */
        public Builder tls(javax.net.ssl.SSLSocketFactory socketFactory, javax.net.ssl.X509TrustManager trustManager) {
            this.sslSocketFactory = Objects.requireNonNull(socketFactory, "socketFactory");
            this.trustManager = Objects.requireNonNull(trustManager, "trustManager");
            return this;
        }

        /**
         * Calls through the caller's OkHttp client (its pool, dispatcher, TLS, proxy and interceptors) instead
         * of one of the transport's own. The transport derives a client from it with {@link
         * OkHttpClient#newBuilder()} that shares its pool and dispatcher, with OkHttp's resends and redirects
         * off and the transport's own event listener (which replaces the client's). {@link #shutdown()} then
         * leaves the caller's client alone.
         */
        public Builder httpClient(OkHttpClient client) {
            this.shared = Objects.requireNonNull(client, "client");
            return this;
        }

        private static Duration nonNegative(Duration d, String name) {
            if (d == null || d.isNegative()) {
                throw new IllegalArgumentException(name + " must not be negative, got " + d);
            }
            return d;
        }

        /** Builds the transport. */
        public OpenAiTransport build() {
            return new OpenAiTransport(this);
        }
    }
}
