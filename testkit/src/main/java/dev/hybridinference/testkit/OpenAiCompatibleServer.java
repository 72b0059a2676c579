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
import java.util.Objects;
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
                String question = lastUserMessage(messages);
                String answer = responder.apply(question);
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
                if (req.path("stream").asBoolean(false)) {
                    boolean usage =
                            req.path("stream_options").path("include_usage").asBoolean(false);
                    stream(ex, id, created, servedModel, pieces, finish, usage, promptTokens);
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
            long promptTokens)
            throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream");
        ex.getResponseHeaders().set("Cache-Control", "no-cache");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        String prefix = "data: {\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created
                + ",\"model\":" + MAPPER.writeValueAsString(servedModel) + ",\"choices\":[{\"index\":0,\"delta\":";
        event(out, prefix + "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}");
        for (int i = 0; i < pieces.size(); i++) {
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
