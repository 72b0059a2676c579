package dev.hybridinference.testkit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A hostile OpenAI-compatible server on loopback, for fault tests: it speaks HTTP/1.1 and SSE byte by
 * byte over a plain {@link ServerSocket} (one thread per connection, keep-alive, chunked or
 * content-length bodies) and can misbehave the way real servers do, on demand.
 *
 * <p>When no fault is switched on it behaves like a well-mannered vLLM: {@code POST /v1/chat/completions}
 * blocking and streamed (SSE, the usage chunk when {@code stream_options.include_usage}, {@code data:
 * [DONE]}), {@code GET /v1/models}, {@code GET /health} and a Prometheus {@code GET /metrics}. The answer is
 * split into words, one per streamed chunk; token counts are word counts.
 *
 * <p>Every fault is a knob that can be switched at any time, from any thread; a request reads the knobs
 * when it arrives (connection knobs when the connection next waits). {@link #reset()} switches them all
 * off. Every request is recorded with its connection, so tests can count what reached the server and see
 * whether a connection was reused.
 *
 * <p>What the knobs imitate:
 *
 * <ul>
 *   <li>connections: {@link #closeAfterStream} (llama.cpp closes after each streamed answer), {@link
 *       #idleTimeout} (uvicorn closes a keep-alive connection after 5 s idle), both without notice;
 *   <li>errors: {@link #failAlways}, {@link #failNext}, {@link #failWhenPromptContains} with any status,
 *       headers ({@code Retry-After}, {@code retry-after-ms}) and body; {@link #echoHeaders} copies the
 *       request's headers, {@code Authorization} included, into an error body;
 *   <li>unbounded input: {@link #endlessSseLine}, {@link #hugeBody}, {@link #hugeMetrics}, {@link
 *       #toolCallIndex}, {@link #manyToolCalls}; every size is capped, and bodies are generated as they are
 *       written, so the server itself stays small;
 *   <li>stream endings: {@link #streamError} (llama.cpp's {@code error:} event, a chunk with {@code
 *       "error": null}, a {@code data:} error object followed by {@code [DONE]}), {@link #cutStreamAfter};
 *   <li>bytes: {@link #invalidUtf8}, {@link #slowBytes}, {@link #chunkDelay}, {@link #chatDelay};
 *   <li>monitoring: {@link #health}, {@link #metrics} (vLLM or llama.cpp names, unknown names, garbage, a
 *       500, a cut body), {@link #modelsDelay};
 *   <li>{@link #redirectChat}: a 307/308 to another origin.
 * </ul>
 *
 * <p>Thread-safe. Close it to stop: every open connection is closed and every handler thread interrupted.
 */
public final class FaultServer implements AutoCloseable {
    /** llama.cpp's message when a prompt does not fit the context (HTTP 400, or 500 in older builds). */
    public static final String LLAMA_CPP_CONTEXT_EXCEEDED =
            "the request exceeds the available context size, try increasing it";

    /** llama.cpp's message when generation reaches the end of the context with context shift off. */
    public static final String LLAMA_CPP_CONTEXT_SHIFT_DISABLED = "context shift is disabled";

    /** vLLM's message for a prompt plus {@code max_tokens} beyond {@code max_model_len} (HTTP 400). */
    public static final String VLLM_CONTEXT_EXCEEDED = "This model's maximum context length is 4096 tokens. However,"
            + " you requested 5120 tokens (4096 in the messages, 1024 in the completion). Please reduce the"
            + " length of the messages or completion.";

    /** The text of {@link #invalidUtf8} answers once decoded with replacement characters. */
    public static final String INVALID_UTF8_DECODED = "Hello \uFFFD wor\uFFFDld";

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final int MAX_LINE = 64 * 1024;
    private static final int BLOCK = 64 * 1024;
    private static final String DEFAULT_ANSWER = "The fault server answers one word at a time.";
    private static final byte[][] INVALID_UTF8_PIECES = {
        ascii("Hello"), {' ', (byte) 0xFF}, {' ', 'w', 'o', 'r', (byte) 0xC3, 'l', 'd'}
    };

    /** How {@link #echoHeaders} puts the request's headers into the error body. */
    public enum EchoStyle {
        /** {@code "bad request, headers: Authorization: Bearer sk-..., Content-Type: ..."} in the message. */
        HEADER_LINES,
        /** The bearer token alone in the message, as OpenAI's {@code "Incorrect API key provided: sk-..."}. */
        KEY_VALUE
    }

    /** What {@code GET /metrics} answers. */
    public enum MetricsStyle {
        /** vLLM's gauges: {@code vllm:num_requests_running}, {@code _waiting}, {@code kv_cache_usage_perc}. */
        VLLM,
        /** llama.cpp's: {@code llamacpp:requests_processing}, {@code _deferred}, {@code kv_cache_usage_ratio}. */
        LLAMA_CPP,
        /** Valid exposition text with no name an inference client knows. */
        UNKNOWN_NAMES,
        /** Bytes that are not the exposition format (and not UTF-8). */
        GARBAGE,
        /** HTTP 500. */
        ERROR_500,
        /** A content length that is never delivered: the connection closes mid-body. */
        CUT
    }

    /** How a stream reports a failure. */
    public enum StreamError {
        /** No error. */
        NONE,
        /**
         * llama.cpp's: an SSE line {@code error: {"code":500,"message":...,"type":"server_error"}} (a field
         * name that is not {@code data}), then {@code data: [DONE]}.
         */
        LLAMA_CPP_ERROR_EVENT,
        /** Not a failure: every chunk carries {@code "error": null}, which must be read as no error. */
        NULL_ERROR_FIELD,
        /** {@code data: {"error":{...}}}, then {@code data: [DONE]}. */
        DATA_ERROR_THEN_DONE
    }

    /**
     * An error response: status, extra headers and body.
     *
     * @param status the HTTP status
     * @param headers extra response headers, such as {@code Retry-After}
     * @param body the body, JSON text
     */
    public record Failure(int status, Map<String, String> headers, String body) {
        /** Copies the headers. */
        public Failure {
            headers = Collections.unmodifiableMap(new LinkedHashMap<>(headers));
            body = body == null ? "" : body;
        }

        /** A status with an OpenAI-style error body. */
        public static Failure status(int status) {
            return new Failure(
                    status, Map.of(), errorJson(reasonPhrase(status).toLowerCase(Locale.ROOT), "server_error", status));
        }

        /** HTTP 503 with {@code Retry-After: value} (any text, passed through as is). */
        public static Failure serviceUnavailable(String retryAfter) {
            return status(503).withHeader("Retry-After", retryAfter);
        }

        /** llama.cpp's error shape: {@code {"error":{"code":...,"message":...,"type":...}}}. */
        public static Failure llamaCpp(int status, String message, String type) {
            var root = MAPPER.createObjectNode();
            root.putObject("error").put("code", status).put("message", message).put("type", type);
            return new Failure(status, Map.of(), root.toString());
        }

        /** vLLM's error shape: {@code {"object":"error","message":...,"type":...,"param":null,"code":...}}. */
        public static Failure vllm(int status, String message) {
            var root = MAPPER.createObjectNode();
            root.put("object", "error")
                    .put("message", message)
                    .put("type", status == 400 ? "BadRequestError" : "InternalServerError")
                    .putNull("param")
                    .put("code", status);
            return new Failure(status, Map.of(), root.toString());
        }

        /** This failure with one more response header. */
        public Failure withHeader(String name, String value) {
            Map<String, String> h = new LinkedHashMap<>(headers);
            h.put(name, value);
            return new Failure(status, h, body);
        }

        /** This failure with another body. */
        public Failure withBody(String body) {
            return new Failure(status, headers, body);
        }
    }

    /**
     * A request as it reached the server.
     *
     * @param connection the connection it came on, numbered from 1 in order of acceptance
     * @param sequence its place on that connection, from 1; above 1 means the connection was reused
     * @param method the HTTP method
     * @param path the path, query included
     * @param headers the headers in arrival order, names as sent
     * @param body the body bytes
     * @param at when its head was read
     */
    public record Recorded(
            long connection,
            int sequence,
            String method,
            String path,
            Map<String, String> headers,
            byte[] body,
            Instant at) {
        /** Copies the parts. */
        public Recorded {
            headers = Collections.unmodifiableMap(new LinkedHashMap<>(headers));
            body = body.clone();
        }

        /** A header's value, matching the name without regard to case; null when absent. */
        public String header(String name) {
            for (Map.Entry<String, String> e : headers.entrySet()) {
                if (e.getKey().equalsIgnoreCase(name)) {
                    return e.getValue();
                }
            }
            return null;
        }

        /** The body as UTF-8 text. */
        public String bodyText() {
            return new String(body, StandardCharsets.UTF_8);
        }

        /** Whether it came on a connection that had carried an earlier request. */
        public boolean reusedConnection() {
            return sequence > 1;
        }

        /** The path without its query. */
        public String pathOnly() {
            int q = path.indexOf('?');
            return q < 0 ? path : path.substring(0, q);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Recorded
                    && ((Recorded) o).connection == connection
                    && ((Recorded) o).sequence == sequence;
        }

        @Override
        public int hashCode() {
            return Long.hashCode(connection) * 31 + sequence;
        }

        @Override
        public String toString() {
            return method + " " + path + " (connection " + connection + " #" + sequence + ", " + body.length
                    + " bytes)";
        }
    }

    private final String model;
    private final ServerSocket listener;
    private final Thread acceptor;
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private final Set<Thread> handlers = ConcurrentHashMap.newKeySet();
    private final List<Recorded> recorded = Collections.synchronizedList(new ArrayList<>());
    private final AtomicLong connections = new AtomicLong();
    private final AtomicLong ids = new AtomicLong();
    private volatile boolean closed;

    // Knobs. Each is read once per request (or per wait, for the connection knobs).
    private volatile String answer;
    private volatile Duration chunkDelay;
    private volatile Duration chatDelay;
    private volatile Duration slowBytes;
    private volatile Duration idleTimeout;
    private volatile Duration modelsDelay;
    private volatile boolean closeAfterStream;
    private volatile boolean invalidUtf8;
    private volatile Failure failAlways;
    private volatile Failure failNext;
    private final AtomicInteger failNextLeft = new AtomicInteger();
    private volatile String failMarker;
    private volatile Failure failMarked;
    private volatile int echoStatus;
    private volatile EchoStyle echoStyle;
    private volatile long endlessLineCap;
    private volatile long hugeBodyBytes;
    private volatile long hugeMetricsBytes;
    private volatile long toolCallIndex;
    private volatile int manyToolCalls;
    private volatile StreamError streamError;
    private volatile int streamErrorAfter;
    private volatile String streamErrorMessage;
    private volatile int cutAfter;
    private volatile boolean cutWithUsage;
    private volatile int healthStatus;
    private volatile MetricsStyle metricsStyle;
    private volatile double running;
    private volatile double waiting;
    private volatile double kvCache;
    private volatile List<String> models;
    private volatile int redirectStatus;
    private volatile String redirectLocation;

    private FaultServer(String model) throws IOException {
        this.model = model;
        reset();
        this.listener = new ServerSocket(0, 256, InetAddress.getLoopbackAddress());
        this.acceptor = new Thread(this::acceptLoop, "fault-server-" + listener.getLocalPort() + "-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /** Starts a server on a free loopback port, serving the model {@code fault-model}. */
    public static FaultServer start() {
        return start("fault-model");
    }

    /** Starts a server on a free loopback port, serving {@code model}. */
    public static FaultServer start(String model) {
        try {
            return new FaultServer(Objects.requireNonNull(model, "model"));
        } catch (IOException e) {
            throw new IllegalStateException("cannot start the fault server: " + e.getMessage(), e);
        }
    }

    /** The base URL, such as {@code http://127.0.0.1:41234}. */
    public String baseUrl() {
        return "http://" + listener.getInetAddress().getHostAddress() + ":" + listener.getLocalPort();
    }

    /** The port. */
    public int port() {
        return listener.getLocalPort();
    }

    /** The model it serves. */
    public String model() {
        return model;
    }

    // ---------------------------------------------------------------- knobs

    /** Switches every fault off and restores the default answer, health, metrics and models. */
    public FaultServer reset() {
        answer = DEFAULT_ANSWER;
        chunkDelay = Duration.ZERO;
        chatDelay = Duration.ZERO;
        slowBytes = Duration.ZERO;
        idleTimeout = null;
        modelsDelay = Duration.ZERO;
        closeAfterStream = false;
        invalidUtf8 = false;
        failAlways = null;
        failNext = null;
        failNextLeft.set(0);
        failMarker = null;
        failMarked = null;
        echoStatus = 0;
        echoStyle = EchoStyle.HEADER_LINES;
        endlessLineCap = 0;
        hugeBodyBytes = 0;
        hugeMetricsBytes = 0;
        toolCallIndex = -1;
        manyToolCalls = 0;
        streamError = StreamError.NONE;
        streamErrorAfter = 0;
        streamErrorMessage = "the model crashed while generating";
        cutAfter = -1;
        cutWithUsage = false;
        healthStatus = 200;
        metricsStyle = MetricsStyle.VLLM;
        running = 0;
        waiting = 0;
        kvCache = 0;
        models = List.of(model);
        redirectStatus = 0;
        redirectLocation = null;
        return this;
    }

    /** The answer text; it is split into words, one streamed chunk (and one token) each. */
    public FaultServer answer(String text) {
        this.answer = Objects.requireNonNull(text, "text");
        return this;
    }

    /** The answer as {@code count} tokens {@code " token1 token2 ..."}. */
    public FaultServer answerTokens(int count) {
        StringBuilder sb = new StringBuilder();
        for (int i = 1; i <= count; i++) {
            sb.append(i == 1 ? "token" : " token").append(i);
        }
        return answer(sb.toString());
    }

    /** Waits this long before each streamed content chunk. */
    public FaultServer chunkDelay(Duration delay) {
        this.chunkDelay = nonNegative(delay);
        return this;
    }

    /** Waits this long before answering a chat request at all (before any fault). */
    public FaultServer chatDelay(Duration delay) {
        this.chatDelay = nonNegative(delay);
        return this;
    }

    /** Writes chat responses (head and body) one byte at a time, this long apart; zero for normal writes. */
    public FaultServer slowBytes(Duration perByte) {
        this.slowBytes = nonNegative(perByte);
        return this;
    }

    /**
     * Closes a connection that has waited this long for its next request, without a {@code Connection:
     * close} or any other notice; null or zero for never.
     */
    public FaultServer idleTimeout(Duration idle) {
        this.idleTimeout = idle == null || idle.isZero() ? null : nonNegative(idle);
        return this;
    }

    /** Closes the connection after every streamed answer, without notice, as llama.cpp's server does. */
    public FaultServer closeAfterStream(boolean on) {
        this.closeAfterStream = on;
        return this;
    }

    /** Answers every chat request with {@code failure}; null to stop. */
    public FaultServer failAlways(Failure failure) {
        this.failAlways = failure;
        return this;
    }

    /** Answers the next {@code count} chat requests with {@code failure}, then normally again. */
    public FaultServer failNext(int count, Failure failure) {
        this.failNext = Objects.requireNonNull(failure, "failure");
        this.failNextLeft.set(count);
        return this;
    }

    /** Answers chat requests whose body contains {@code marker} with {@code failure}; null marker to stop. */
    public FaultServer failWhenPromptContains(String marker, Failure failure) {
        this.failMarked = failure;
        this.failMarker = marker;
        return this;
    }

    /**
     * Answers chat requests with {@code status} and the request's headers, {@code Authorization}
     * included, in the error message; 0 to stop.
     */
    public FaultServer echoHeaders(int status, EchoStyle style) {
        this.echoStyle = Objects.requireNonNull(style, "style");
        this.echoStatus = status;
        return this;
    }

    /** {@link #echoHeaders(int, EchoStyle)} in the {@link EchoStyle#HEADER_LINES} style. */
    public FaultServer echoHeaders(int status) {
        return echoHeaders(status, EchoStyle.HEADER_LINES);
    }

    /**
     * Streams answers as one SSE line that never ends: <code>data: {...,"content":"aaaa...</code> with no
     * newline, until {@code capBytes} have been sent; then closes the connection. 0 to stop.
     */
    public FaultServer endlessSseLine(long capBytes) {
        this.endlessLineCap = capBytes;
        return this;
    }

    /**
     * Answers blocking chat requests with a valid completion of about {@code bytes} bytes (a huge
     * {@code padding} array of short strings, then the choices), generated while it is written. 0 to stop.
     */
    public FaultServer hugeBody(long bytes) {
        this.hugeBodyBytes = bytes;
        return this;
    }

    /** Answers {@code /metrics} with about {@code bytes} bytes of comment lines before the gauges; 0 to stop. */
    public FaultServer hugeMetrics(long bytes) {
        this.hugeMetricsBytes = bytes;
        return this;
    }

    /** Streams a tool-call fragment whose {@code index} is {@code index} (such as 100000000); -1 to stop. */
    public FaultServer toolCallIndex(long index) {
        this.toolCallIndex = index;
        return this;
    }

    /** Streams {@code count} tool calls, indexes 0 to count - 1, a hundred per chunk; 0 to stop. */
    public FaultServer manyToolCalls(int count) {
        this.manyToolCalls = count;
        return this;
    }

    /**
     * Ends streams with {@code shape} after {@code afterTokens} content chunks (for {@link
     * StreamError#NULL_ERROR_FIELD}, every chunk carries the null error and the stream ends normally).
     */
    public FaultServer streamError(StreamError shape, int afterTokens, String message) {
        this.streamErrorAfter = afterTokens;
        this.streamErrorMessage = Objects.requireNonNull(message, "message");
        this.streamError = Objects.requireNonNull(shape, "shape");
        return this;
    }

    /** {@link #streamError(StreamError, int, String)} with a generic server-error message. */
    public FaultServer streamError(StreamError shape, int afterTokens) {
        return streamError(shape, afterTokens, "the model crashed while generating");
    }

    /**
     * Cuts streams after {@code tokens} content chunks: the connection closes with no {@code [DONE]} (and
     * no end of the chunked body), after a usage chunk when {@code usageFirst}. -1 to stop.
     */
    public FaultServer cutStreamAfter(int tokens, boolean usageFirst) {
        this.cutWithUsage = usageFirst;
        this.cutAfter = tokens;
        return this;
    }

    /** Puts invalid UTF-8 bytes in answers, blocking and streamed; decoded, the text is {@link #INVALID_UTF8_DECODED}. */
    public FaultServer invalidUtf8(boolean on) {
        this.invalidUtf8 = on;
        return this;
    }

    /** The status of {@code GET /health}: 200, 404 (llama.cpp builds and proxies without it), 503. */
    public FaultServer health(int status) {
        this.healthStatus = status;
        return this;
    }

    /** What {@code GET /metrics} answers. */
    public FaultServer metrics(MetricsStyle style) {
        this.metricsStyle = Objects.requireNonNull(style, "style");
        return this;
    }

    /** The gauges {@code /metrics} reports: requests running, requests waiting, KV-cache usage 0 to 1. */
    public FaultServer load(double running, double waiting, double kvCacheUsage) {
        this.running = running;
        this.waiting = waiting;
        this.kvCache = kvCacheUsage;
        return this;
    }

    /** Waits this long before answering {@code GET /v1/models}. */
    public FaultServer modelsDelay(Duration delay) {
        this.modelsDelay = nonNegative(delay);
        return this;
    }

    /** The model ids {@code GET /v1/models} lists. */
    public FaultServer models(String... ids) {
        this.models = List.of(ids);
        return this;
    }

    /** Answers chat requests with {@code status} (307, 308) and {@code Location: location}; 0 to stop. */
    public FaultServer redirectChat(int status, String location) {
        this.redirectLocation = location;
        this.redirectStatus = status;
        return this;
    }

    // ---------------------------------------------------------------- records

    /** Every request received so far, in arrival order. */
    public List<Recorded> requests() {
        synchronized (recorded) {
            return List.copyOf(recorded);
        }
    }

    /** The requests with this method and path (query ignored). */
    public List<Recorded> requests(String method, String path) {
        List<Recorded> out = new ArrayList<>();
        for (Recorded r : requests()) {
            if (r.method().equals(method) && r.pathOnly().equals(path)) {
                out.add(r);
            }
        }
        return out;
    }

    /** How many requests with this method and path arrived. */
    public int count(String method, String path) {
        return requests(method, path).size();
    }

    /** How many chat completion requests (POSTs) arrived. */
    public int chatPosts() {
        return count("POST", "/v1/chat/completions");
    }

    /** How many connections were accepted. */
    public long connectionsAccepted() {
        return connections.get();
    }

    /** How many connections are open now. */
    public int openConnections() {
        return sockets.size();
    }

    /** Forgets the requests recorded so far. */
    public FaultServer clearRequests() {
        recorded.clear();
        return this;
    }

    @Override
    public void close() {
        closed = true;
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        for (Socket s : sockets) {
            closeQuietly(s);
        }
        for (Thread t : handlers) {
            t.interrupt();
        }
        acceptor.interrupt();
        try {
            acceptor.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---------------------------------------------------------------- connections

    private void acceptLoop() {
        while (!closed) {
            Socket s;
            try {
                s = listener.accept();
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                continue;
            }
            long id = connections.incrementAndGet();
            sockets.add(s);
            try {
                Thread t = new Thread(() -> serve(s, id), "fault-server-" + port() + "-conn-" + id);
                t.setDaemon(true);
                handlers.add(t);
                t.start();
            } catch (RuntimeException | Error e) {
                sockets.remove(s);
                closeQuietly(s);
            }
            if (closed) {
                closeQuietly(s);
            }
        }
    }

    private void serve(Socket s, long connection) {
        try {
            s.setTcpNoDelay(true);
            InputStream in = new BufferedInputStream(s.getInputStream());
            int sequence = 0;
            while (!closed) {
                Duration idle = idleTimeout;
                s.setSoTimeout(idle == null ? 0 : (int) Math.max(1, idle.toMillis()));
                int first;
                try {
                    first = in.read();
                } catch (SocketTimeoutException e) {
                    return; // idle too long: close without a word, as uvicorn does
                }
                if (first < 0) {
                    return;
                }
                s.setSoTimeout(30_000);
                String requestLine = readLine(in, first);
                if (requestLine == null) {
                    return;
                }
                if (requestLine.isEmpty()) {
                    continue;
                }
                String[] parts = requestLine.split(" ");
                if (parts.length < 3) {
                    return;
                }
                Map<String, String> headers = new LinkedHashMap<>();
                while (true) {
                    String line = readLine(in, -2);
                    if (line == null) {
                        return;
                    }
                    if (line.isEmpty()) {
                        break;
                    }
                    int colon = line.indexOf(':');
                    if (colon > 0) {
                        String name = line.substring(0, colon).trim();
                        String value = line.substring(colon + 1).trim();
                        headers.merge(name, value, (a, b) -> a + ", " + b);
                    }
                }
                byte[] body = readBody(in, headers);
                sequence++;
                Recorded r = new Recorded(connection, sequence, parts[0], parts[1], headers, body, Instant.now());
                recorded.add(r);
                s.setSoTimeout(0);
                Reply reply = new Reply(s);
                boolean keep = respond(r, reply);
                reply.flush();
                if (!keep || "close".equalsIgnoreCase(r.header("Connection"))) {
                    return;
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            // The client went away, the server is closing, or this thread failed (even out of memory, when a
            // test fills the heap on purpose): either way the connection ends here and the server goes on.
        } finally {
            closeQuietly(s);
            sockets.remove(s);
            handlers.remove(Thread.currentThread());
        }
    }

    /** A line without its CR LF; {@code first} is a byte already read, or -2 for none. Null at EOF. */
    private static String readLine(InputStream in, int first) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream(128);
        int b = first == -2 ? in.read() : first;
        if (b < 0) {
            return null;
        }
        while (b >= 0 && b != '\n') {
            if (line.size() >= MAX_LINE) {
                throw new IOException("request line or header too long");
            }
            line.write(b);
            b = in.read();
        }
        byte[] bytes = line.toByteArray();
        int len = bytes.length;
        if (len > 0 && bytes[len - 1] == '\r') {
            len--;
        }
        return new String(bytes, 0, len, StandardCharsets.ISO_8859_1);
    }

    private static byte[] readBody(InputStream in, Map<String, String> headers) throws IOException {
        String length = null;
        String encoding = null;
        for (Map.Entry<String, String> e : headers.entrySet()) {
            if (e.getKey().equalsIgnoreCase("Content-Length")) {
                length = e.getValue();
            } else if (e.getKey().equalsIgnoreCase("Transfer-Encoding")) {
                encoding = e.getValue();
            }
        }
        if (encoding != null && encoding.toLowerCase(Locale.ROOT).contains("chunked")) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            while (true) {
                String size = readLine(in, -2);
                if (size == null) {
                    throw new IOException("request body cut");
                }
                int semi = size.indexOf(';');
                int n = Integer.parseInt((semi < 0 ? size : size.substring(0, semi)).trim(), 16);
                if (n == 0) {
                    while (true) {
                        String trailer = readLine(in, -2);
                        if (trailer == null || trailer.isEmpty()) {
                            return out.toByteArray();
                        }
                    }
                }
                out.write(in.readNBytes(n));
                readLine(in, -2);
            }
        }
        if (length == null) {
            return new byte[0];
        }
        int n = Integer.parseInt(length.trim());
        byte[] body = in.readNBytes(n);
        if (body.length < n) {
            throw new IOException("request body cut");
        }
        return body;
    }

    // ---------------------------------------------------------------- routes

    private boolean respond(Recorded r, Reply reply) throws IOException {
        switch (r.pathOnly()) {
            case "/v1/chat/completions":
                if (!r.method().equals("POST")) {
                    reply.fixed(
                            405, "application/json", ascii(errorJson("method not allowed", "invalid_request", 405)));
                    return true;
                }
                Duration slow = slowBytes;
                if (!slow.isZero()) {
                    reply.slow(slow);
                }
                return chat(r, reply);
            case "/v1/models":
                return models(reply);
            case "/health":
                int status = healthStatus;
                String body = status == 200
                        ? "{\"status\":\"ok\"}"
                        : status == 404
                                ? "{\"error\":{\"code\":404,\"message\":\"File Not Found\",\"type\":\"not_found_error\"}}"
                                : errorJson("unhealthy", "server_error", status);
                reply.fixed(status, "application/json", ascii(body));
                return true;
            case "/metrics":
                return metrics(reply);
            default:
                reply.fixed(404, "application/json", ascii(errorJson("no route " + r.path(), "not_found_error", 404)));
                return true;
        }
    }

    private boolean chat(Recorded r, Reply reply) throws IOException {
        int redirect = redirectStatus;
        if (redirect > 0) {
            Map<String, String> h = new LinkedHashMap<>();
            h.put("Location", redirectLocation);
            reply.fixed(redirect, "text/plain", ascii("moved"), h);
            return true;
        }
        pause(chatDelay);
        int echo = echoStatus;
        if (echo > 0) {
            reply.fixed(echo, "application/json", echoBody(r, echoStyle, echo));
            return true;
        }
        Failure f = failureFor(r);
        if (f != null) {
            reply.fixed(f.status(), "application/json", f.body().getBytes(StandardCharsets.UTF_8), f.headers());
            return true;
        }
        JsonNode req;
        try {
            req = MAPPER.readTree(r.body());
        } catch (IOException e) {
            reply.fixed(400, "application/json", ascii(errorJson("body is not JSON", "invalid_request_error", 400)));
            return true;
        }
        if (req == null || !req.path("messages").isArray()) {
            reply.fixed(
                    400, "application/json", ascii(errorJson("messages is required", "invalid_request_error", 400)));
            return true;
        }
        String id = "chatcmpl-" + ids.incrementAndGet();
        String served = req.path("model").asText(model);
        long prompt = promptTokens(req.path("messages"));
        List<byte[]> pieces = pieces();
        int maxTokens = req.path("max_tokens").asInt(Integer.MAX_VALUE);
        String finish = "stop";
        if (pieces.size() > maxTokens) {
            pieces = pieces.subList(0, maxTokens);
            finish = "length";
        }
        if (req.path("stream").asBoolean(false)) {
            boolean usage = req.path("stream_options").path("include_usage").asBoolean(false);
            return stream(reply, id, served, prompt, pieces, finish, usage);
        }
        long huge = hugeBodyBytes;
        if (huge > 0) {
            hugeCompletion(reply, id, served, huge);
            return true;
        }
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.write(ascii("{\"id\":\"" + id + "\",\"object\":\"chat.completion\",\"created\":" + created()
                + ",\"model\":" + quote(served) + ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                + "\"content\":"));
        jsonString(body, concat(pieces));
        body.write(
                ascii("},\"finish_reason\":\"" + finish + "\"}],\"usage\":" + usageJson(prompt, pieces.size()) + "}"));
        reply.fixed(200, "application/json", body.toByteArray());
        return true;
    }

    private Failure failureFor(Recorded r) {
        String marker = failMarker;
        Failure marked = failMarked;
        if (marker != null && marked != null && r.bodyText().contains(marker)) {
            return marked;
        }
        Failure next = failNext;
        if (next != null && failNextLeft.getAndUpdate(n -> n > 0 ? n - 1 : n) > 0) {
            return next;
        }
        return failAlways;
    }

    private boolean stream(
            Reply reply, String id, String served, long prompt, List<byte[]> pieces, String finish, boolean usage)
            throws IOException {
        reply.startChunks(200, "text/event-stream");
        long endless = endlessLineCap;
        if (endless > 0) {
            endlessLine(reply, id, endless);
            return false;
        }
        StreamError error = streamError;
        int errorAt = streamErrorAfter;
        String errorMessage = streamErrorMessage;
        int cut = cutAfter;
        boolean cutUsage = cutWithUsage;
        boolean nullError = error == StreamError.NULL_ERROR_FIELD;
        String head = "{" + (nullError ? "\"error\":null," : "") + "\"id\":\"" + id
                + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created() + ",\"model\":" + quote(served)
                + ",\"choices\":[{\"index\":0,\"delta\":";
        reply.event(ascii("data: " + head + "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}"));
        Duration delay = chunkDelay;
        for (int i = 0; i <= pieces.size(); i++) {
            if (cut >= 0 && i == Math.min(cut, pieces.size())) {
                if (cutUsage) {
                    reply.event(ascii("data: {\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":"
                            + created() + ",\"model\":" + quote(served) + ",\"choices\":[],\"usage\":"
                            + usageJson(prompt, i) + "}"));
                }
                return false; // cut: the chunked body never ends
            }
            if (error != StreamError.NONE && !nullError && i == Math.min(errorAt, pieces.size())) {
                if (error == StreamError.LLAMA_CPP_ERROR_EVENT) {
                    var e = MAPPER.createObjectNode()
                            .put("code", 500)
                            .put("message", errorMessage)
                            .put("type", "server_error");
                    reply.event(ascii("error: " + e));
                } else {
                    var root = MAPPER.createObjectNode();
                    root.putObject("error")
                            .put("message", errorMessage)
                            .put("type", "server_error")
                            .put("code", 500);
                    reply.event(ascii("data: " + root));
                }
                reply.event(ascii("data: [DONE]"));
                reply.endChunks();
                return !closeAfterStream;
            }
            if (i == pieces.size()) {
                break;
            }
            pause(delay);
            ByteArrayOutputStream ev = new ByteArrayOutputStream();
            ev.write(ascii("data: " + head + "{\"content\":"));
            jsonString(ev, pieces.get(i));
            ev.write(ascii("},\"finish_reason\":null}]}"));
            reply.event(ev.toByteArray());
        }
        long index = toolCallIndex;
        if (index >= 0) {
            reply.event(ascii("data: " + head + "{\"tool_calls\":[{\"index\":" + index
                    + ",\"id\":\"call_big\",\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"arguments\":"
                    + "\"{}\"}}]},\"finish_reason\":null}]}"));
            finish = "tool_calls";
        }
        int many = manyToolCalls;
        for (int start = 0; start < many; start += 100) {
            StringBuilder sb = new StringBuilder("data: ").append(head).append("{\"tool_calls\":[");
            for (int k = start; k < Math.min(many, start + 100); k++) {
                if (k > start) {
                    sb.append(',');
                }
                sb.append("{\"index\":")
                        .append(k)
                        .append(",\"id\":\"call_")
                        .append(k)
                        .append("\",\"type\":\"function\",\"function\":{\"name\":\"f")
                        .append(k)
                        .append("\",\"arguments\":\"{}\"}}");
            }
            sb.append("]},\"finish_reason\":null}]}");
            reply.event(ascii(sb.toString()));
            finish = "tool_calls";
        }
        reply.event(ascii("data: " + head + "{},\"finish_reason\":\"" + finish + "\"}]}"));
        if (usage) {
            reply.event(ascii("data: {" + (nullError ? "\"error\":null," : "") + "\"id\":\"" + id
                    + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created() + ",\"model\":"
                    + quote(served) + ",\"choices\":[],\"usage\":" + usageJson(prompt, pieces.size()) + "}"));
        }
        reply.event(ascii("data: [DONE]"));
        reply.endChunks();
        return !closeAfterStream;
    }

    private void endlessLine(Reply reply, String id, long cap) throws IOException {
        byte[] start = ascii("data: {\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\""
                + ":0,\"delta\":{\"content\":\"");
        reply.chunk(start);
        byte[] block = new byte[BLOCK];
        Arrays.fill(block, (byte) 'a');
        long sent = start.length;
        while (sent < cap && !closed) {
            int n = (int) Math.min(block.length, cap - sent);
            reply.chunk(n == block.length ? block : Arrays.copyOf(block, n));
            sent += n;
        }
    }

    private void hugeCompletion(Reply reply, String id, String served, long bytes) throws IOException {
        reply.startChunks(200, "application/json");
        byte[] start = ascii("{\"id\":\"" + id + "\",\"object\":\"chat.completion\",\"created\":" + created()
                + ",\"model\":" + quote(served) + ",\"padding\":[");
        reply.chunk(start);
        StringBuilder item = new StringBuilder("\"");
        item.append("p".repeat(62)).append("\",");
        byte[] one = ascii(item.toString());
        byte[] block = new byte[(BLOCK / one.length) * one.length];
        for (int i = 0; i < block.length; i += one.length) {
            System.arraycopy(one, 0, block, i, one.length);
        }
        long sent = start.length;
        while (sent < bytes && !closed) {
            reply.chunk(block);
            sent += block.length;
        }
        reply.chunk(ascii("\"end\"],\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                + "\"huge\"},\"finish_reason\":\"stop\"}],\"usage\":" + usageJson(1, 1) + "}"));
        reply.endChunks();
    }

    private boolean models(Reply reply) throws IOException {
        pause(modelsDelay);
        var root = MAPPER.createObjectNode();
        root.put("object", "list");
        var data = root.putArray("data");
        for (String m : models) {
            data.addObject()
                    .put("id", m)
                    .put("object", "model")
                    .put("created", created())
                    .put("owned_by", "fault-server");
        }
        reply.fixed(200, "application/json", ascii(root.toString()));
        return true;
    }

    private boolean metrics(Reply reply) throws IOException {
        MetricsStyle style = metricsStyle;
        long huge = hugeMetricsBytes;
        String gauges = gauges(style);
        switch (style) {
            case ERROR_500:
                reply.fixed(500, "text/plain", ascii("metrics exporter failed"));
                return true;
            case CUT:
                reply.head(200, "text/plain; version=0.0.4", Map.of("Content-Length", "4096"));
                reply.raw(ascii("# HELP vllm:num_requests_wai"));
                return false;
            case GARBAGE:
                byte[] junk = new byte[2048];
                for (int i = 0; i < junk.length; i++) {
                    junk[i] = (byte) (i * 131 + 7);
                }
                ByteArrayOutputStream g = new ByteArrayOutputStream();
                g.write(ascii("{{{ not prometheus\nvllm:num_requests_waiting{model_name=\"m\" 3\n"
                        + "vllm:num_requests_running NaNx\n"));
                g.write(junk);
                reply.fixed(200, "text/plain; version=0.0.4", g.toByteArray());
                return true;
            default:
                break;
        }
        if (huge <= 0) {
            reply.fixed(200, "text/plain; version=0.0.4; charset=utf-8", ascii(gauges));
            return true;
        }
        reply.startChunks(200, "text/plain; version=0.0.4; charset=utf-8");
        byte[] line = ascii("# padding " + "x".repeat(1013) + "\n");
        byte[] block = new byte[(BLOCK / line.length) * line.length];
        for (int i = 0; i < block.length; i += line.length) {
            System.arraycopy(line, 0, block, i, line.length);
        }
        long sent = 0;
        while (sent < huge && !closed) {
            reply.chunk(block);
            sent += block.length;
        }
        reply.chunk(ascii(gauges));
        reply.endChunks();
        return true;
    }

    private String gauges(MetricsStyle style) {
        String labels = "{model_name=\"" + model + "\"}";
        switch (style) {
            case LLAMA_CPP:
                return "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
                        + "# TYPE llamacpp:prompt_tokens_total counter\n"
                        + "llamacpp:prompt_tokens_total 1234\n"
                        + "# HELP llamacpp:tokens_predicted_total Number of generation tokens processed.\n"
                        + "# TYPE llamacpp:tokens_predicted_total counter\n"
                        + "llamacpp:tokens_predicted_total 5678\n"
                        + "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.\n"
                        + "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
                        + "llamacpp:kv_cache_usage_ratio " + kvCache + "\n"
                        + "# HELP llamacpp:kv_cache_tokens KV-cache tokens.\n"
                        + "# TYPE llamacpp:kv_cache_tokens gauge\n"
                        + "llamacpp:kv_cache_tokens 321\n"
                        + "# HELP llamacpp:requests_processing Number of requests processing.\n"
                        + "# TYPE llamacpp:requests_processing gauge\n"
                        + "llamacpp:requests_processing " + running + "\n"
                        + "# HELP llamacpp:requests_deferred Number of requests deferred.\n"
                        + "# TYPE llamacpp:requests_deferred gauge\n"
                        + "llamacpp:requests_deferred " + waiting + "\n";
            case UNKNOWN_NAMES:
                return "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                        + "# TYPE process_cpu_seconds_total counter\n"
                        + "process_cpu_seconds_total 12.5\n"
                        + "# HELP http_requests_total Requests served.\n"
                        + "# TYPE http_requests_total counter\n"
                        + "http_requests_total{code=\"200\"} 41\n"
                        + "inference_queue_depth " + waiting + "\n";
            default:
                return "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                        + "# TYPE vllm:num_requests_running gauge\n"
                        + "vllm:num_requests_running" + labels + " " + running + "\n"
                        + "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
                        + "# TYPE vllm:num_requests_waiting gauge\n"
                        + "vllm:num_requests_waiting" + labels + " " + waiting + "\n"
                        + "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
                        + "# TYPE vllm:kv_cache_usage_perc gauge\n"
                        + "vllm:kv_cache_usage_perc" + labels + " " + kvCache + "\n";
        }
    }

    // ---------------------------------------------------------------- bodies

    private List<byte[]> pieces() {
        if (invalidUtf8) {
            return List.of(INVALID_UTF8_PIECES);
        }
        String text = answer;
        List<byte[]> out = new ArrayList<>();
        int start = 0;
        for (int i = 1; i <= text.length(); i++) {
            if (i == text.length() || text.charAt(i) == ' ') {
                if (i > start) {
                    out.add(text.substring(start, i).getBytes(StandardCharsets.UTF_8));
                }
                start = i;
            }
        }
        return out;
    }

    private static long promptTokens(JsonNode messages) {
        long n = 0;
        for (JsonNode m : messages) {
            String content = m.path("content").asText("");
            n += 4 + (content.isBlank() ? 0 : content.trim().split("\\s+").length);
        }
        return n;
    }

    private static String usageJson(long prompt, long completion) {
        return "{\"prompt_tokens\":" + prompt + ",\"completion_tokens\":" + completion + ",\"total_tokens\":"
                + (prompt + completion) + "}";
    }

    private static byte[] echoBody(Recorded r, EchoStyle style, int status) {
        String message;
        if (style == EchoStyle.KEY_VALUE) {
            String auth = r.header("Authorization");
            String token = auth == null ? "" : auth.replaceFirst("(?i)^bearer\\s+", "");
            message = "Incorrect API key provided: " + token + ". You can find your API key in your account settings.";
        } else {
            StringBuilder sb = new StringBuilder("bad request, headers: ");
            boolean first = true;
            for (Map.Entry<String, String> e : r.headers().entrySet()) {
                if (!first) {
                    sb.append(", ");
                }
                first = false;
                sb.append(e.getKey()).append(": ").append(e.getValue());
            }
            message = sb.toString();
        }
        var root = MAPPER.createObjectNode();
        root.putObject("error")
                .put("message", message)
                .put("type", style == EchoStyle.KEY_VALUE ? "invalid_request_error" : "BadRequestError")
                .put("code", style == EchoStyle.KEY_VALUE ? "invalid_api_key" : String.valueOf(status));
        return root.toString().getBytes(StandardCharsets.UTF_8);
    }

    static String errorJson(String message, String type, int code) {
        var root = MAPPER.createObjectNode();
        root.putObject("error")
                .put("message", message)
                .put("type", type)
                .putNull("param")
                .put("code", code);
        return root.toString();
    }

    /** Writes {@code bytes} as a JSON string, escaping only what JSON requires and passing other bytes raw. */
    private static void jsonString(ByteArrayOutputStream out, byte[] bytes) {
        out.write('"');
        for (byte b : bytes) {
            int c = b & 0xff;
            if (c == '"' || c == '\\') {
                out.write('\\');
                out.write(c);
            } else if (c < 0x20) {
                byte[] esc = ascii(String.format("\\u%04x", c));
                out.write(esc, 0, esc.length);
            } else {
                out.write(c);
            }
        }
        out.write('"');
    }

    private static byte[] concat(List<byte[]> pieces) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : pieces) {
            out.write(p, 0, p.length);
        }
        return out.toByteArray();
    }

    private static String quote(String s) {
        try {
            return MAPPER.writeValueAsString(s);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long created() {
        return System.currentTimeMillis() / 1000;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static Duration nonNegative(Duration d) {
        if (d == null || d.isNegative()) {
            throw new IllegalArgumentException("expected a non-negative duration, got " + d);
        }
        return d;
    }

    private static void pause(Duration d) throws InterruptedIOException {
        if (d == null || d.isZero()) {
            return;
        }
        try {
            Thread.sleep(d.toMillis(), d.toNanosPart() % 1_000_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("server closing");
        }
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // already gone
        }
    }

    static String reasonPhrase(int status) {
        switch (status) {
            case 200:
                return "OK";
            case 301:
                return "Moved Permanently";
            case 302:
                return "Found";
            case 307:
                return "Temporary Redirect";
            case 308:
                return "Permanent Redirect";
            case 400:
                return "Bad Request";
            case 401:
                return "Unauthorized";
            case 403:
                return "Forbidden";
            case 404:
                return "Not Found";
            case 405:
                return "Method Not Allowed";
            case 429:
                return "Too Many Requests";
            case 500:
                return "Internal Server Error";
            case 502:
                return "Bad Gateway";
            case 503:
                return "Service Unavailable";
            case 504:
                return "Gateway Timeout";
            default:
                return "Status " + status;
        }
    }

    /** Writes one response on a connection: a head, then a fixed or chunked body, optionally slowly. */
    private static final class Reply {
        private OutputStream out;

        Reply(Socket s) throws IOException {
            this.out = new BufferedOutputStream(s.getOutputStream(), 16 * 1024);
        }

        /** From now on every byte is written and flushed on its own, {@code perByte} apart. */
        void slow(Duration perByte) {
            OutputStream inner = out;
            this.out = new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    inner.write(b);
                    inner.flush();
                    pause(perByte);
                }
            };
        }

        void head(int status, String contentType, Map<String, String> extra) throws IOException {
            StringBuilder sb = new StringBuilder();
            sb.append("HTTP/1.1 ")
                    .append(status)
                    .append(' ')
                    .append(reasonPhrase(status))
                    .append("\r\n");
            sb.append("Content-Type: ").append(contentType).append("\r\n");
            for (Map.Entry<String, String> e : extra.entrySet()) {
                sb.append(e.getKey()).append(": ").append(e.getValue()).append("\r\n");
            }
            sb.append("\r\n");
            out.write(sb.toString().getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
        }

        void fixed(int status, String contentType, byte[] body) throws IOException {
            fixed(status, contentType, body, Map.of());
        }

        void fixed(int status, String contentType, byte[] body, Map<String, String> extra) throws IOException {
            Map<String, String> h = new LinkedHashMap<>(extra);
            h.put("Content-Length", String.valueOf(body.length));
            head(status, contentType, h);
            out.write(body);
            out.flush();
        }

        void startChunks(int status, String contentType) throws IOException {
            Map<String, String> h = new LinkedHashMap<>();
            if (contentType.startsWith("text/event-stream")) {
                h.put("Cache-Control", "no-cache");
            }
            h.put("Transfer-Encoding", "chunked");
            head(status, contentType, h);
        }

        /** One SSE event ({@code line} plus the blank line that ends it) as one HTTP chunk. */
        void event(byte[] line) throws IOException {
            byte[] ev = Arrays.copyOf(line, line.length + 2);
            ev[line.length] = '\n';
            ev[line.length + 1] = '\n';
            chunk(ev);
        }

        void chunk(byte[] data) throws IOException {
            out.write((Integer.toHexString(data.length) + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
            out.write(data);
            out.write('\r');
            out.write('\n');
            out.flush();
        }

        void endChunks() throws IOException {
            out.write("0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
        }

        void raw(byte[] bytes) throws IOException {
            out.write(bytes);
            out.flush();
        }

        void flush() throws IOException {
            out.flush();
        }
    }
}
