package dev.hybridinference.testkit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * An in-process server that speaks the OpenAI-compatible protocol of vLLM on loopback: {@code POST
 * /v1/chat/completions} (blocking and SSE streaming with the usage chunk and {@code data: [DONE]}),
 * {@code GET /v1/models}, {@code GET /health} and a Prometheus {@code GET /metrics} with vLLM's gauges.
 * Answers come from a function of the last user message, streamed one word per chunk. Token counts are
 * words, not a real tokenizer's counts. To stand in for other servers, {@code /metrics} can speak
 * llama.cpp's vocabulary or be absent, and {@code /health} can be absent (as with Ollama): an absent route
 * answers 404.
 *
 * <p>For the contract tests, the next chat calls can be scripted, one script per call in the order queued:
 * {@link #answerNext} answers a given text, {@link #failNext} sends an error response, {@link #stallNext}
 * starts the response and then sends nothing but keep-alive bytes until the client goes away (which the
 * server notices at its next write and counts in {@link #disconnects()}), and {@link #cutNextAfter} drops
 * the connection part way through the answer.
 *
 * <p>For examples, tests and benchmarks; not a model. Thread-safe; close it to stop.
 */
public final class OpenAiCompatibleServer implements AutoCloseable {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** Which gauges {@code GET /metrics} publishes. */
    public enum MetricsStyle {
        /** vLLM's: {@code vllm:num_requests_running}, {@code vllm:num_requests_waiting}, {@code vllm:kv_cache_usage_perc}. */
        VLLM,
        /**
         * llama.cpp's llama-server started with {@code --metrics}: {@code llamacpp:requests_processing},
         * {@code llamacpp:requests_deferred} and (as builds before late 2025 do) {@code
         * llamacpp:kv_cache_usage_ratio}.
         */
        LLAMACPP,
        /** No {@code /metrics} route at all: it answers 404. */
        NONE
    }

    static {
        // The JDK server writes headers and body separately; without TCP_NODELAY each response can wait
        // for the client's delayed ACK (about 40 ms on Linux). Read once, when the server classes load.
        if (System.getProperty("sun.net.httpserver.nodelay") == null) {
            System.setProperty("sun.net.httpserver.nodelay", "true");
        }
    }

    private final HttpServer server;
    private final ExecutorService executor;
    private final String model;
    private final Function<String, String> responder;
    private final String apiKey;
    private final Duration delayPerChunk;
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger maxRunning = new AtomicInteger();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong ids = new AtomicLong();
    private volatile double waitingGauge;
    private volatile double kvCacheUsage;
    private volatile boolean healthy = true;
    private final ConcurrentLinkedQueue<Script> scripts = new ConcurrentLinkedQueue<>();
    private final AtomicLong stallsStarted = new AtomicLong();
    private final AtomicInteger stalledNow = new AtomicInteger();
    private final AtomicLong disconnects = new AtomicLong();

    /** How often a stalled response writes a keep-alive byte, which is how it notices a client gone. */
    private static final long STALL_PROBE_MILLIS = 20;

    /** What one scripted chat call does instead of answering from the responder. */
    private static final class Script {
        final String answer;
        final int status;
        final String body;
        final Map<String, String> headers;
        final boolean stall;
        final int cutAfter;

        private Script(
                String answer, int status, String body, Map<String, String> headers, boolean stall, int cutAfter) {
            this.answer = answer;
            this.status = status;
            this.body = body;
            this.headers = headers;
            this.stall = stall;
            this.cutAfter = cutAfter;
        }
    }

    private OpenAiCompatibleServer(Builder b) throws IOException {
        this.model = b.model;
        this.responder = b.responder;
        this.apiKey = b.apiKey;
        this.delayPerChunk = b.delayPerChunk;
        this.server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), b.port), 128);
        AtomicInteger n = new AtomicInteger();
        this.executor = Executors.newFixedThreadPool(b.threads, r -> {
            Thread t = new Thread(r, "openai-test-server-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.createContext("/v1/chat/completions", this::chat);
        server.createContext("/v1/models", this::models);
        if (b.healthRoute) {
            server.createContext("/health", this::health);
        }
        if (b.metricsStyle == MetricsStyle.VLLM) {
            server.createContext("/metrics", this::metrics);
        } else if (b.metricsStyle == MetricsStyle.LLAMACPP) {
            server.createContext("/metrics", this::llamaCppMetrics);
        }
        server.start();
    }

    /** A builder with a default model name and an answer that repeats the question. */
    public static Builder builder() {
        return new Builder();
    }

    /** The base URL, such as {@code http://127.0.0.1:41234}. */
    public String baseUrl() {
        return "http://" + server.getAddress().getAddress().getHostAddress() + ":"
                + server.getAddress().getPort();
    }

    /** The chat requests served so far. */
    public long requestCount() {
        return requests.get();
    }

    /** The most chat requests this server has had in progress at once. */
    public int maxConcurrentRequests() {
        return maxRunning.get();
    }

    /**
     * Sets what {@code vllm:num_requests_waiting} (or {@code llamacpp:requests_deferred}) reports, on top of
     * nothing: the server never queues.
     */
    public void setWaiting(double waiting) {
        this.waitingGauge = waiting;
    }

    /** Sets what {@code vllm:kv_cache_usage_perc} (or {@code llamacpp:kv_cache_usage_ratio}) reports, 0 to 1. */
    public void setKvCacheUsage(double usage) {
        this.kvCacheUsage = usage;
    }

    /** Makes {@code /health} answer 200 (true) or 503 (false), and chat calls 503 when false. */
    public void setHealthy(boolean healthy) {
        this.healthy = healthy;
    }

    /** The next chat call (after those already scripted) answers {@code text}, blocking or streamed. */
    public void answerNext(String text) {
        scripts.add(new Script(Objects.requireNonNull(text), 0, null, Map.of(), false, -1));
    }

    /**
     * The next chat call (after those already scripted) gets an error response: {@code status} with {@code
     * body} as {@code application/json}, plus {@code headers} (such as {@code Retry-After}). A status of 200
     * with a body that is not a chat completion makes a malformed answer.
     */
    public void failNext(int status, String body, Map<String, String> headers) {
        scripts.add(new Script(null, status, Objects.requireNonNull(body), Map.copyOf(headers), false, -1));
    }

    /**
     * The next chat call (after those already scripted) stalls: its response starts (status and headers)
     * and then only keep-alive bytes follow (spaces before a JSON body, SSE comment lines in a stream),
     * until the client closes the connection or the server stops. A stall that ends because the client went
     * away counts in {@link #disconnects()}.
     */
    public void stallNext() {
        scripts.add(new Script(null, 0, null, Map.of(), true, -1));
    }

    /**
     * The next chat call (after those already scripted) is cut: a stream after {@code chunks} chunks of
     * content, a blocking answer half way through its body; the server then drops the connection without
     * ending the response.
     */
    public void cutNextAfter(int chunks) {
        if (chunks < 0) {
            throw new IllegalArgumentException("chunks must not be negative, got " + chunks);
        }
        scripts.add(new Script(null, 0, null, Map.of(), false, chunks));
    }

    /** Chat calls that have stalled so far. */
    public long stallsStarted() {
        return stallsStarted.get();
    }

    /** Chat calls stalled now. */
    public int stalledNow() {
        return stalledNow.get();
    }

    /** Stalled calls that ended because the client closed the connection. */
    public long disconnects() {
        return disconnects.get();
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
        try {
            executor.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void chat(HttpExchange ex) throws IOException {
        try (ex) {
            if (!ex.getRequestMethod().equals("POST")) {
                send(ex, 405, error("method not allowed", "BadRequestError", 405));
                return;
            }
            if (apiKey != null
                    && !("Bearer " + apiKey).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                send(ex, 401, "{\"error\":\"Unauthorized\"}");
                return;
            }
            if (!healthy) {
                send(ex, 503, error("engine is not healthy", "ServiceUnavailableError", 503));
                return;
            }
            JsonNode req;
            try {
                req = MAPPER.readTree(ex.getRequestBody());
            } catch (IOException e) {
                send(ex, 400, error("request body is not valid JSON", "BadRequestError", 400));
                return;
            }
            JsonNode messages = req.path("messages");
            if (!messages.isArray() || messages.size() == 0) {
                send(ex, 400, error("messages must be a non-empty list", "BadRequestError", 400));
                return;
            }
            requests.incrementAndGet();
            maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
            try {
                boolean streaming = req.path("stream").asBoolean(false);
                Script script = scripts.poll();
                if (script != null && script.body != null) {
                    script.headers.forEach((k, v) -> ex.getResponseHeaders().set(k, v));
                    send(ex, script.status, script.body);
                    return;
                }
                if (script != null && script.stall) {
                    stall(ex, streaming);
                    return;
                }
                int cutAfter = script == null ? -1 : script.cutAfter;
                String question = lastUserMessage(messages);
                String answer = script != null && script.answer != null ? script.answer : responder.apply(question);
                List<String> pieces = words(answer);
                int maxTokens = req.path("max_tokens").asInt(Integer.MAX_VALUE);
                String finish = "stop";
                if (pieces.size() > maxTokens) {
                    pieces = pieces.subList(0, maxTokens);
                    finish = "length";
                }
                long promptTokens = 0;
                for (JsonNode m : messages) {
                    promptTokens += words(m.path("content").asText("")).size() + 4;
                }
                String id = "chatcmpl-" + ids.incrementAndGet();
                long created = System.currentTimeMillis() / 1000;
                String servedModel = req.path("model").asText(model);
                if (streaming) {
                    boolean usage =
                            req.path("stream_options").path("include_usage").asBoolean(false);
                    stream(ex, id, created, servedModel, pieces, finish, usage, promptTokens, cutAfter);
                } else {
                    ObjectNode root = MAPPER.createObjectNode();
                    root.put("id", id)
                            .put("object", "chat.completion")
                            .put("created", created)
                            .put("model", servedModel);
                    ObjectNode choice = root.putArray("choices").addObject();
                    choice.put("index", 0);
                    choice.putObject("message").put("role", "assistant").put("content", String.join("", pieces));
                    choice.put("finish_reason", finish);
                    usage(root.putObject("usage"), promptTokens, pieces.size());
                    pause(pieces.size());
                    if (cutAfter >= 0) {
                        byte[] body = MAPPER.writeValueAsBytes(root);
                        ex.getResponseHeaders().set("Content-Type", "application/json");
                        ex.sendResponseHeaders(200, body.length);
                        ex.getResponseBody().write(body, 0, body.length / 2);
                        ex.getResponseBody().flush();
                        dropConnection(ex);
                        return;
                    }
                    send(ex, 200, MAPPER.writeValueAsString(root));
                }
            } finally {
                running.decrementAndGet();
            }
        }
    }

    private void stream(
            HttpExchange ex,
            String id,
            long created,
            String servedModel,
            List<String> pieces,
            String finish,
            boolean includeUsage,
            long promptTokens,
            int cutAfter)
            throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream");
        ex.getResponseHeaders().set("Cache-Control", "no-cache");
        // A stream to be cut declares a length it never reaches, so that ending it early drops the
        // connection instead of ending the body cleanly.
        ex.sendResponseHeaders(200, cutAfter >= 0 ? UNREACHED_LENGTH : 0);
        OutputStream out = ex.getResponseBody();
        String prefix = "data: {\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created
                + ",\"model\":" + MAPPER.writeValueAsString(servedModel) + ",\"choices\":[{\"index\":0,\"delta\":";
        event(out, prefix + "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}");
        for (int i = 0; i < pieces.size(); i++) {
            if (i == cutAfter) {
                dropConnection(ex);
                return;
            }
            pause(1);
            boolean last = i == pieces.size() - 1;
            event(
                    out,
                    prefix + "{\"content\":" + MAPPER.writeValueAsString(pieces.get(i)) + "},\"finish_reason\":"
                            + (last ? "\"" + finish + "\"" : "null") + "}]}");
        }
        if (pieces.isEmpty()) {
            event(out, prefix + "{},\"finish_reason\":\"" + finish + "\"}]}");
        }
        if (includeUsage) {
            ObjectNode u = MAPPER.createObjectNode();
            u.put("id", id)
                    .put("object", "chat.completion.chunk")
                    .put("created", created)
                    .put("model", servedModel);
            u.putArray("choices");
            usage(u.putObject("usage"), promptTokens, pieces.size());
            event(out, "data: " + MAPPER.writeValueAsString(u));
        }
        event(out, "data: [DONE]");
    }

    /** A content length no response reaches. */
    private static final long UNREACHED_LENGTH = 1L << 40;

    /**
     * Ends a response whose declared length was not reached: closing the exchange then fails to end the body
     * and closes the connection, so the client sees it end before the body does.
     */
    private static void dropConnection(HttpExchange ex) {
        ex.close();
    }

    /** Holds a started response open with keep-alive bytes until the client goes away or the server stops. */
    private void stall(HttpExchange ex, boolean streaming) throws IOException {
        ex.getResponseHeaders().set("Content-Type", streaming ? "text/event-stream" : "application/json");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        out.flush();
        byte[] keepAlive = (streaming ? ": keep-alive\n\n" : " ").getBytes(StandardCharsets.UTF_8);
        stallsStarted.incrementAndGet();
        stalledNow.incrementAndGet();
        try {
            while (true) {
                try {
                    Thread.sleep(STALL_PROBE_MILLIS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return; // the server is stopping
                }
                try {
                    out.write(keepAlive);
                    out.flush();
                } catch (IOException e) {
                    disconnects.incrementAndGet();
                    return;
                }
            }
        } finally {
            stalledNow.decrementAndGet();
        }
    }

    private void pause(int chunks) {
        if (!delayPerChunk.isZero()) {
            try {
                Thread.sleep(delayPerChunk.toMillis() * chunks);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static void event(OutputStream out, String line) throws IOException {
        out.write((line + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void usage(ObjectNode u, long prompt, long completion) {
        u.put("prompt_tokens", prompt).put("completion_tokens", completion).put("total_tokens", prompt + completion);
    }

    private void models(HttpExchange ex) throws IOException {
        try (ex) {
            ObjectNode root = MAPPER.createObjectNode();
            root.put("object", "list");
            ArrayNode data = root.putArray("data");
            data.addObject().put("id", model).put("object", "model").put("owned_by", "vllm");
            send(ex, 200, MAPPER.writeValueAsString(root));
        }
    }

    private void health(HttpExchange ex) throws IOException {
        try (ex) {
            send(ex, healthy ? 200 : 503, "");
        }
    }

    private void metrics(HttpExchange ex) throws IOException {
        try (ex) {
            String labels = "{engine=\"0\",model_name=\"" + model + "\"}";
            String body = "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                    + "# TYPE vllm:num_requests_running gauge\n"
                    + "vllm:num_requests_running" + labels + " " + running.get() + ".0\n"
                    + "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
                    + "# TYPE vllm:num_requests_waiting gauge\n"
                    + "vllm:num_requests_waiting" + labels + " " + waitingGauge + "\n"
                    + "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
                    + "# TYPE vllm:kv_cache_usage_perc gauge\n"
                    + "vllm:kv_cache_usage_perc" + labels + " " + kvCacheUsage + "\n";
            ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, bytes.length);
            ex.getResponseBody().write(bytes);
        }
    }

    private void llamaCppMetrics(HttpExchange ex) throws IOException {
        try (ex) {
            String body = "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
                    + "# TYPE llamacpp:prompt_tokens_total counter\n"
                    + "llamacpp:prompt_tokens_total 0\n"
                    + "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.\n"
                    + "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
                    + "llamacpp:kv_cache_usage_ratio " + kvCacheUsage + "\n"
                    + "# HELP llamacpp:requests_processing Number of requests processing.\n"
                    + "# TYPE llamacpp:requests_processing gauge\n"
                    + "llamacpp:requests_processing " + running.get() + "\n"
                    + "# HELP llamacpp:requests_deferred Number of requests deferred.\n"
                    + "# TYPE llamacpp:requests_deferred gauge\n"
                    + "llamacpp:requests_deferred " + waitingGauge + "\n";
            ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4");
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, bytes.length);
            ex.getResponseBody().write(bytes);
        }
    }

    private static String lastUserMessage(JsonNode messages) {
        for (int i = messages.size() - 1; i >= 0; i--) {
            if ("user".equals(messages.get(i).path("role").asText())) {
                return messages.get(i).path("content").asText("");
            }
        }
        return "";
    }

    /** Splits text into word pieces that keep their leading space, so joining them gives the text back. */
    static List<String> words(String text) {
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 1; i <= text.length(); i++) {
            if (i == text.length() || text.charAt(i) == ' ') {
                if (i > start) {
                    out.add(text.substring(start, i));
                }
                start = i;
            }
        }
        return out;
    }

    private static String error(String message, String type, int code) {
        ObjectNode root = MAPPER.createObjectNode();
        root.putObject("error")
                .put("message", message)
                .put("type", type)
                .putNull("param")
                .put("code", code);
        return root.toString();
    }

    private static void send(HttpExchange ex, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            ex.getResponseBody().write(bytes);
        }
    }

    /** Builds an {@link OpenAiCompatibleServer}. */
    public static final class Builder {
        private String model = "test-model";
        private Function<String, String> responder =
                q -> "You asked: \"" + q + "\". This answer comes from the in-process test server.";
        private String apiKey;
        private Duration delayPerChunk = Duration.ZERO;
        private int port;
        private int threads = 8;
        private boolean healthRoute = true;
        private MetricsStyle metricsStyle = MetricsStyle.VLLM;

        private Builder() {}

        /** The model name it lists and reports. */
        public Builder model(String model) {
            this.model = Objects.requireNonNull(model);
            return this;
        }

        /** Computes the answer from the last user message. */
        public Builder responder(Function<String, String> responder) {
            this.responder = Objects.requireNonNull(responder);
            return this;
        }

        /** Requires {@code Authorization: Bearer <key>} on chat calls. */
        public Builder apiKey(String apiKey) {
            this.apiKey = apiKey;
            return this;
        }

        /** Waits this long before each streamed chunk (and chunks times this before a blocking answer). */
        public Builder delayPerChunk(Duration delay) {
            this.delayPerChunk = Objects.requireNonNull(delay);
            return this;
        }

        /** The port; 0 (the default) picks a free one. */
        public Builder port(int port) {
            this.port = port;
            return this;
        }

        /** Whether {@code GET /health} exists (the default); without it the path answers 404, as on Ollama. */
        public Builder healthRoute(boolean present) {
            this.healthRoute = present;
            return this;
        }

        /** Which gauges {@code GET /metrics} publishes; vLLM's unless set. */
        public Builder metricsStyle(MetricsStyle style) {
            this.metricsStyle = Objects.requireNonNull(style);
            return this;
        }

        /** Request-handling threads. */
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        /** Starts the server on loopback. */
        public OpenAiCompatibleServer start() {
            try {
                return new OpenAiCompatibleServer(this);
            } catch (IOException e) {
                throw new IllegalStateException("cannot start the test server: " + e.getMessage(), e);
            }
        }
    }
}
