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
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;

/**
 * Talks to one or more OpenAI-compatible servers over OkHttp: chat completions blocking and streamed
 * (SSE with the usage chunk), model listing, and plain GETs for health and metrics. One instance per
 * provider; thread-safe. Never retries by itself: retrying is the caller's decision. Internal: not part
 * of the public API.
 */
public final class OpenAiTransport {
    private static final MediaType JSON = MediaType.get("application/json");
    private static final int MAX_ERROR_BODY = 16 * 1024;

    private final OkHttpClient http;
    private final String providerId;
    private final String authorization;
    private final OpenAiCodec.Dialect dialect;
    private final Clock clock;
    private final Duration callTimeout;

    /**
     * Creates a transport.
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
        this.http = Objects.requireNonNull(http, "http");
        this.providerId = providerId;
        this.authorization = apiKey == null || apiKey.isEmpty() ? null : "Bearer " + apiKey;
        this.dialect = dialect;
        this.clock = clock;
        this.callTimeout = callTimeout;
    }

    /**
     * An OkHttp client with the given connect and read timeouts (zero: none) and a pool that keeps up to
     * 32 idle connections for 5 minutes, enough for concurrent callers to reuse their connections.
     */
    public static OkHttpClient newHttpClient(Duration connect, Duration read) {
        return new OkHttpClient.Builder()
                .connectionPool(new okhttp3.ConnectionPool(32, 5, TimeUnit.MINUTES))
                .connectTimeout(connect)
                .readTimeout(read)
                .writeTimeout(read)
                .retryOnConnectionFailure(false)
                .build();
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
        Call call = newCall(
                server.chatCompletions(), OpenAiCodec.encodeRequest(request, model, false, dialect), ctx, endpoint);
        try (Response response = call.execute()) {
            ResponseBody body = response.body();
            if (!response.isSuccessful()) {
                throw error(endpoint, response);
            }
            JsonNode root;
            try {
                root = OpenAiCodec.MAPPER.readTree(body.byteStream());
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                throw malformed(endpoint, "response is not valid JSON: " + e.getOriginalMessage(), e);
            }
            if (root == null || !root.isObject()) {
                throw malformed(endpoint, "response is not a JSON object", null);
            }
            if (root.has("error") && !root.has("choices")) {
                throw HttpErrors.fromStreamError(providerId, endpoint, root.get("error"));
            }
            try {
                return OpenAiCodec.decodeCompletion(root);
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
     * Opens a streamed chat completion; returns once the response headers arrived with a success status.
     */
    public ProviderStream stream(Server server, ChatRequest request, String model, CallContext ctx) {
        String endpoint = server.label();
        Call call = newCall(
                server.chatCompletions(), OpenAiCodec.encodeRequest(request, model, true, dialect), ctx, endpoint);
        Response response;
        try {
            response = call.execute();
        } catch (IOException e) {
            ctx.onCancel(null);
            throw HttpErrors.fromIo(providerId, endpoint, e, ctx);
        }
        if (!response.isSuccessful()) {
            try (response) {
                throw error(endpoint, response);
            } finally {
                ctx.onCancel(null);
            }
        }
        return new SseStream(call, response, endpoint, model, ctx);
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
     * A plain GET with its own timeout; I/O errors become {@link InferenceException}s.
     *
     * @param authorize whether to send the API key (only {@code /v1/*} routes check it)
     */
    public HttpText get(HttpUrl url, Duration timeout, boolean authorize) {
        Request.Builder rb = new Request.Builder().url(url).get();
        if (authorize && authorization != null) {
            rb.header("Authorization", authorization);
        }
        Call call = http.newCall(rb.build());
        call.timeout().timeout(timeout.toNanos(), TimeUnit.NANOSECONDS);
        try (Response response = call.execute()) {
            return new HttpText(response.code(), response.body().string());
        } catch (IOException e) {
            throw HttpErrors.fromIo(providerId, label(url), e, null);
        }
    }

    private Call newCall(HttpUrl url, byte[] body, CallContext ctx, String endpoint) {
        ctx.checkActive(endpoint);
        Request.Builder rb = new Request.Builder()
                .url(url)
                .post(RequestBody.create(body, JSON))
                .header("Accept", "application/json, text/event-stream");
        if (authorization != null) {
            rb.header("Authorization", authorization);
        }
        Call call = http.newCall(rb.build());
        long limit = callTimeout.isZero() ? Long.MAX_VALUE : callTimeout.toNanos();
        long remaining = ctx.remaining().map(Duration::toNanos).orElse(Long.MAX_VALUE);
        long timeout = Math.min(limit, remaining);
        if (timeout != Long.MAX_VALUE) {
            call.timeout().timeout(Math.max(1, timeout), TimeUnit.NANOSECONDS);
        }
        ctx.onCancel(call::cancel);
        return call;
    }

    private InferenceException error(String endpoint, Response response) {
        String text;
        try (ResponseBody body = response.body()) {
            okio.BufferedSource source = body.source();
            source.request(MAX_ERROR_BODY);
            okio.Buffer buffer = source.getBuffer();
            text = buffer.readUtf8(Math.min(buffer.size(), MAX_ERROR_BODY));
        } catch (IOException e) {
            text = "";
        }
        return HttpErrors.fromResponse(
                providerId,
                endpoint,
                response.code(),
                response.header("Retry-After"),
                response.header("retry-after-ms"),
                text,
                clock);
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
        private final StringBuilder text = new StringBuilder();
        private final List<ToolCallBuilder> toolCalls = new ArrayList<>();
        private final boolean eventStream;
        private FinishReason finish;
        private Usage usage;
        private String model;
        private volatile boolean ended;
        private final Object lock = new Object();
        private boolean reading;
        private boolean closed;
        private boolean responseClosed;

        SseStream(Call call, Response response, String endpoint, String model, CallContext ctx) {
            this.call = call;
            this.response = response;
            this.reader = new SseReader(response.body().source());
            this.endpoint = endpoint;
            this.model = model;
            this.ctx = ctx;
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
                    if (data.equals("[DONE]")) {
                        ended = true;
                        return null;
                    }
                    ChatChunk chunk = decodeChunk(data);
                    if (chunk != null) {
                        return chunk;
                    }
                }
            } catch (IOException e) {
                throw HttpErrors.fromIo(providerId, endpoint, e, ctx);
            }
        }

        /** A server that ignored {@code stream: true} and answered with one JSON completion. */
        private ChatChunk wholeResponse() throws IOException {
            ended = true;
            JsonNode root;
            try {
                root = OpenAiCodec.MAPPER.readTree(response.body().byteStream());
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
            } catch (com.fasterxml.jackson.core.JacksonException | IllegalArgumentException e) {
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
                    int index = c.path("index").asInt(toolCalls.size());
                    while (toolCalls.size() <= index) {
                        toolCalls.add(new ToolCallBuilder());
                    }
                    ToolCallBuilder b = toolCalls.get(index);
                    if (c.hasNonNull("id")) {
                        b.id = c.get("id").asText();
                    }
                    JsonNode fn = c.path("function");
                    if (fn.hasNonNull("name")) {
                        b.name.append(fn.get("name").asText());
                    }
                    b.arguments.append(OpenAiCodec.argumentsText(fn.get("arguments")));
                }
            }
            FinishReason fr = f.finishReason == null ? null : FinishReason.fromWire(f.finishReason);
            if (fr != null) {
                finish = fr;
            }
            String piece = f.content;
            if (piece != null && !piece.isEmpty()) {
                text.append(piece);
                return new ChatChunk(piece, fr);
            }
            return fr != null || toolFragment ? new ChatChunk("", fr) : null;
        }

        @Override
        public ProviderResult result() {
            List<ToolCall> calls = new ArrayList<>(toolCalls.size());
            for (ToolCallBuilder b : toolCalls) {
                calls.add(new ToolCall(b.id == null ? "" : b.id, b.name.toString(), b.arguments.toString()));
            }
            return new ProviderResult(
                    text.toString(),
                    calls,
                    finish == null ? FinishReason.OTHER : finish,
                    usage == null ? Usage.ZERO : usage,
                    model,
                    null,
                    null);
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
