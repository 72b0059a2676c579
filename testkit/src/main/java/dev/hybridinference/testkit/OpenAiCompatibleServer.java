package dev.hybridinference.testkit;

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
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * An in-process server that speaks the OpenAI-compatible protocol of vLLM on loopback (plain HTTP/1.1), with the
 * capacity of one replica: a concurrency limit, scale to zero with a cold start, and injected failures.
 *
 * <p><b>Routes.</b> {@code POST /v1/chat/completions}: blocking, or SSE with {@code stream: true} (a role chunk,
 * one chunk per word, a finish chunk, the usage chunk ({@code "choices": []}) when {@code
 * stream_options.include_usage} is set, then {@code data: [DONE]}). {@code GET /v1/models} lists the {@link
 * Builder#model model}; {@code GET /health} answers 200, or 503 while {@link #setHealthy unhealthy}; {@code GET
 * /metrics} publishes vLLM's gauges in Prometheus text (or llama.cpp's, see {@link MetricsStyle}). To stand in for
 * other servers {@code /metrics} and {@code /health} can be absent ({@link Builder#metricsStyle}, {@link
 * Builder#healthRoute}, as with Ollama); an absent route, like any unknown path, answers 404 {@code
 * {"detail":"Not Found"}}. Errors are vLLM's {@code {"error": {"message","type","param","code"}}}, {@code code}
 * being the status. The answer names the model the request names (any is accepted), else the server's.
 *
 * <p><b>A chat request</b> goes through these steps in order (after waiting for one of the {@link Builder#threads}
 * when those are limited). A request refused in the first two steps takes no script and no failure draw, and is
 * not counted in {@link #requestCount()}:
 *
 * <ol>
 *   <li><i>Checks:</i> another method than POST gets 405; with an {@link Builder#apiKey API key}, a request
 *       without {@code Authorization: Bearer <key>} gets 401 {@code {"error":"Unauthorized"}} (as vLLM's {@code
 *       --api-key} sends it); while {@link #setHealthy unhealthy}, 503; a body that is not JSON, without a
 *       non-empty {@code messages} list, with a {@code max_tokens} (or {@code max_completion_tokens}) below 1 or
 *       a {@code seed} that is not an integer gets 400.
 *   <li><i>The concurrency limit</i> ({@link Builder#maxConcurrent}; none by default): a request finds a free
 *       slot, or, with {@link Overflow#QUEUE} (the default), waits for one in order of arrival, unless {@link
 *       Builder#queueLimit} requests already wait; with {@link Overflow#REJECT}, or past the queue limit, it gets
 *       429 at once, with {@code Retry-After: 1} and a {@code RateLimitError} body, counted in {@link
 *       #rejected()}. A request gives its slot back just before the last bytes of its answer, so the counts are
 *       up to date once a client has its answer.
 *   <li><i>The cold start:</i> the server is scaled to zero when it starts so ({@link Builder#startCold}), after
 *       {@link #scaleToZero()}, or once no chat request has been in progress for {@link Builder#scaleToZeroAfter}
 *       (counted from the end of the last one, or from the server's start when it has served none). The first
 *       request that finds it so begins a cold start of {@link Builder#coldStart} (counted in {@link
 *       #coldStarts()}) and waits it out, holding its slot; requests that arrive meanwhile wait until the same
 *       moment, as they would queue behind a single vLLM replica loading its model. Only chat requests wake the
 *       server or keep it awake: {@code /health}, {@code /metrics} and {@code /v1/models} answer at once, cold or
 *       not.
 *   <li><i>Serving</i> ({@link #inFlight()} counts these, {@link #requestCount()} all that got here): the next
 *       script, if any, decides the answer: {@link #answerNext} a given text, {@link #failNext} an error
 *       response, {@link #stallNext} a response that starts and then sends nothing but keep-alive bytes until the
 *       client goes away, {@link #cutNextAfter} an answer dropped part way. Without a script, an injected failure
 *       ({@link Builder#failureRate}) answers {@link Builder#failureStatus} (503 by default), counted in {@link
 *       #injectedFailures()}; otherwise the answer is the {@link Builder#responder responder}'s text when one is
 *       set, else generated text (see {@link Builder#seed}).
 * </ol>
 *
 * <p><b>Answers and tokens.</b> Token counts are whitespace-separated words, not a tokenizer's: prompt tokens are
 * the words of all message contents (the text parts of content arrays included), completion tokens the words of
 * the answer; a blocking answer's {@code usage} and a stream's usage chunk agree with each other and with the text.
 * A scripted or responder text is streamed one word per chunk (each chunk a word with the whitespace before it), so
 * the chunks join to the text; it is cut to the request's {@code max_tokens} (or {@code max_completion_tokens})
 * words when longer, with finish reason {@code length}, else its finish reason is {@code stop}. Generated text is
 * exactly that many words ({@link Builder#defaultMaxTokens} when the request sets neither), finish reason {@code
 * length}. {@link Builder#tokenLatency} paces the words.
 *
 * <p>For examples, tests and benchmarks; not a model. Thread-safe; close it to stop.
 */
public final class OpenAiCompatibleServer implements AutoCloseable {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** How often a stalled response writes a keep-alive byte, which is how it notices a client gone. */
    private static final long STALL_PROBE_MILLIS = 20;

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

    /** What a chat request gets when {@link Builder#maxConcurrent} requests are being served already. */
    public enum Overflow {
        /**
         * It waits for a slot, in order of arrival, as vLLM queues requests beyond its batch; past {@link
         * Builder#queueLimit} waiting requests it gets 429.
         */
        QUEUE,
        /** It gets 429 at once, with {@code Retry-After: 1}, as a gateway with a concurrency cap answers. */
        REJECT
    }

    private enum ScriptKind {
        ANSWER,
        FAIL,
        STALL,
        CUT
    }

    /** What one scripted chat request does instead of answering from the responder or generated text. */
    private record Script(ScriptKind kind, String text, int status, Map<String, String> headers, int chunks) {}

    /** What a valid chat request asks for. */
    private record Chat(
            String model,
            String lastUserMessage,
            String prompt,
            int promptTokens,
            Integer maxTokens,
            Long seed,
            boolean stream,
            boolean includeUsage) {}

    /** A request body the server refuses with 400. */
    private static final class Refusal extends Exception {
        final String param;

        Refusal(String param, String message) {
            super(message, null, false, false);
            this.param = param;
        }
    }

    private final LoopbackHttp http;
    private final Stalls stalls;
    private final String model;
    private final Function<String, String> responder;
    private final String apiKey;
    private final Duration tokenLatency;
    private final long seed;
    private final int defaultMaxTokens;
    private final boolean healthRoute;
    private final MetricsStyle metricsStyle;
    private final Semaphore threads;
    private final int maxConcurrent;
    private final Semaphore slots;
    private final Overflow overflow;
    private final int queueLimit;
    private final double failureRate;
    private final int failureStatus;
    private final Random failureDraws;
    private final long coldStartNanos;
    private final long idleNanos;

    private volatile double waitingGauge;
    private volatile double kvCacheUsage;
    private volatile boolean healthy = true;
    private final ConcurrentLinkedQueue<Script> scripts = new ConcurrentLinkedQueue<>();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong ids = new AtomicLong();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger maxInFlight = new AtomicInteger();
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicInteger slotWaiters = new AtomicInteger();
    private final AtomicLong rejected = new AtomicLong();
    private final AtomicLong injectedFailures = new AtomicLong();
    private final AtomicLong coldStarts = new AtomicLong();

    // The replica's warmth, guarded by coldLock. "present" counts chat requests from the moment they hold a slot
    // (waiting out a cold start or being served) to their end; the server can only go idle without any.
    private final Object coldLock = new Object();
    private boolean cold;
    private long readyAt;
    private int present;
    private long lastActivity;

    private OpenAiCompatibleServer(Builder b) throws IOException {
        this.model = b.model;
        this.responder = b.responder;
        this.apiKey = b.apiKey;
        this.tokenLatency = b.tokenLatency;
        this.seed = b.seed;
        this.defaultMaxTokens = b.defaultMaxTokens;
        this.healthRoute = b.healthRoute;
        this.metricsStyle = b.metricsStyle;
        this.threads = b.threads > 0 ? new Semaphore(b.threads, true) : null;
        this.maxConcurrent = b.maxConcurrent;
        this.slots = b.maxConcurrent > 0 ? new Semaphore(b.maxConcurrent, true) : null;
        this.overflow = b.overflow;
        this.queueLimit = b.queueLimit;
        this.failureRate = b.failureRate;
        this.failureStatus = b.failureStatus;
        this.failureDraws = new Random(b.seed);
        this.coldStartNanos = b.coldStart.toNanos();
        this.idleNanos = b.scaleToZeroAfter == null ? 0 : b.scaleToZeroAfter.toNanos();
        this.cold = b.startCold;
        this.lastActivity = System.nanoTime();
        this.readyAt = lastActivity;
        this.http = new LoopbackHttp(this::handle, "openai-test-server", b.port);
        this.stalls = new Stalls(http);
    }

    /**
     * A builder for a server of {@code test-model} that answers generated text, with no limits, never cold and
     * never failing unless scripted.
     */
    public static Builder builder() {
        return new Builder();
    }

    /** The base URL, such as {@code http://127.0.0.1:41234}. */
    public String baseUrl() {
        return "http://" + http.address().getHostAddress() + ":" + http.port();
    }

    /** Stops the server; stalled, queued and streaming requests end with their connections closed. */
    @Override
    public void close() {
        http.close();
    }

    // ---- scripts ----

    /**
     * The next chat request served (after those already scripted) answers {@code text}, blocking or streamed (cut
     * to the request's {@code max_tokens} words when longer).
     */
    public void answerNext(String text) {
        scripts.add(new Script(ScriptKind.ANSWER, Objects.requireNonNull(text, "text"), 0, Map.of(), -1));
    }

    /**
     * The next chat request served (after those already scripted) gets an error response: {@code status} with
     * {@code body} as {@code application/json}, plus {@code headers} (such as {@code Retry-After}). A status of 200
     * with a body that is not a chat completion makes a malformed answer.
     */
    public void failNext(int status, String body, Map<String, String> headers) {
        if (status < 100 || status > 599) {
            throw new IllegalArgumentException("status: expected an HTTP status of 100 to 599, got " + status);
        }
        scripts.add(new Script(ScriptKind.FAIL, Objects.requireNonNull(body, "body"), status, Map.copyOf(headers), -1));
    }

    /**
     * The next chat request served (after those already scripted) stalls: its response starts (200 and headers)
     * and then only keep-alive bytes follow (spaces before a JSON body, SSE comment lines {@code : keep-alive} in a
     * stream) until the client closes the connection, which the server notices at its next write (within some tens
     * of milliseconds) and counts in {@link #disconnects()}, or the server stops. It keeps its slot meanwhile.
     */
    public void stallNext() {
        scripts.add(new Script(ScriptKind.STALL, null, 0, Map.of(), -1));
    }

    /**
     * The next chat request served (after those already scripted) is cut: streamed, after the role chunk and
     * {@code chunks} content chunks (or all it has, if fewer) the connection is closed with no finish chunk, usage
     * or {@code [DONE]} and no end of the chunked body; blocking, half of the body declared by {@code
     * Content-Length} is sent and the connection closed.
     */
    public void cutNextAfter(int chunks) {
        if (chunks < 0) {
            throw new IllegalArgumentException("chunks must not be negative, got " + chunks);
        }
        scripts.add(new Script(ScriptKind.CUT, null, 0, Map.of(), chunks));
    }

    // ---- gauges and switches ----

    /**
     * Sets a number of waiting requests that {@code vllm:num_requests_waiting} (or {@code
     * llamacpp:requests_deferred}) reports on top of the chat requests really waiting now ({@link #queued()}).
     */
    public void setWaiting(double waiting) {
        this.waitingGauge = waiting;
    }

    /** Sets what {@code vllm:kv_cache_usage_perc} (or {@code llamacpp:kv_cache_usage_ratio}) reports, 0 to 1. */
    public void setKvCacheUsage(double usage) {
        this.kvCacheUsage = usage;
    }

    /** Makes {@code /health} answer 200 (true) or 503 (false), and chat requests 503 when false. */
    public void setHealthy(boolean healthy) {
        this.healthy = healthy;
    }

    /**
     * Scales the server to zero now: the next chat request begins a cold start (see {@link Builder#coldStart}).
     * Requests already past their cold start are served as they are.
     */
    public void scaleToZero() {
        synchronized (coldLock) {
            cold = true;
        }
    }

    // ---- state ----

    /**
     * The chat requests served so far: those that passed the checks, the concurrency limit and the cold start,
     * whatever their answer (scripted and injected failures included).
     */
    public long requestCount() {
        return requests.get();
    }

    /** The most chat requests served at once so far; the same as {@link #maxInFlightSeen()}. */
    public int maxConcurrentRequests() {
        return maxInFlight.get();
    }

    /**
     * Chat requests being served now: past the concurrency limit and the cold start, not those queued for a slot
     * or waiting out a cold start. {@code vllm:num_requests_running} reports it.
     */
    public int inFlight() {
        return inFlight.get();
    }

    /** The most chat requests {@link #inFlight()} has counted at once. */
    public int maxInFlightSeen() {
        return maxInFlight.get();
    }

    /** Chat requests waiting now, for a slot under the concurrency limit or for a cold start to end. */
    public int queued() {
        return queued.get();
    }

    /**
     * Chat requests refused with 429 by the concurrency limit: at once with {@link Overflow#REJECT}, or because
     * {@link Builder#queueLimit} requests were already waiting.
     */
    public long rejected() {
        return rejected.get();
    }

    /** Chat requests answered with an injected failure ({@link Builder#failureRate}). */
    public long injectedFailures() {
        return injectedFailures.get();
    }

    /** Cold starts begun: after {@link Builder#startCold}, {@link #scaleToZero()} or the idle time. */
    public long coldStarts() {
        return coldStarts.get();
    }

    /** Whether the server is scaled to zero now, so that the next chat request would begin a cold start. */
    public boolean scaledToZero() {
        synchronized (coldLock) {
            return cold || idleSince(System.nanoTime());
        }
    }

    /** Chat requests that have stalled so far. */
    public long stallsStarted() {
        return stalls.started();
    }

    /** Chat requests stalled now. */
    public int stalledNow() {
        return stalls.now();
    }

    /**
     * Chat requests whose client went away first: stalls the client gave up on, and answers whose writes failed
     * because the connection was closed.
     */
    public long disconnects() {
        return stalls.disconnects();
    }

    @Override
    public String toString() {
        return "OpenAiCompatibleServer[" + baseUrl() + ", model " + model + "]";
    }

    // ---- routes ----

    private void handle(Exchange ex) throws IOException {
        if (threads == null) {
            route(ex);
            return;
        }
        try {
            threads.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ex.abort();
            return;
        }
        try {
            route(ex);
        } finally {
            threads.release();
        }
    }

    private void route(Exchange ex) throws IOException {
        switch (ex.path()) {
            case "/v1/chat/completions" -> chat(ex);
            case "/v1/models" -> models(ex);
            case "/health" -> {
                if (healthRoute) {
                    ex.sendFixed(healthy ? 200 : 503, headers("application/json"), new byte[0]);
                } else {
                    notFound(ex);
                }
            }
            case "/metrics" -> {
                switch (metricsStyle) {
                    case VLLM -> metrics(ex);
                    case LLAMACPP -> llamaCppMetrics(ex);
                    default -> notFound(ex);
                }
            }
            default -> notFound(ex);
        }
    }

    private static void notFound(Exchange ex) throws IOException {
        send(ex, 404, "{\"detail\":\"Not Found\"}");
    }

    private void models(Exchange ex) throws IOException {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        data.addObject().put("id", model).put("object", "model").put("owned_by", "vllm");
        send(ex, 200, root.toString());
    }

    private void metrics(Exchange ex) throws IOException {
        String labels = "{engine=\"0\",model_name=\"" + model + "\"}";
        String body = "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                + "# TYPE vllm:num_requests_running gauge\n"
                + "vllm:num_requests_running" + labels + " " + inFlight.get() + ".0\n"
                + "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
                + "# TYPE vllm:num_requests_waiting gauge\n"
                + "vllm:num_requests_waiting" + labels + " " + waiting() + "\n"
                + "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
                + "# TYPE vllm:kv_cache_usage_perc gauge\n"
                + "vllm:kv_cache_usage_perc" + labels + " " + kvCacheUsage + "\n";
        ex.sendFixed(200, headers("text/plain; version=0.0.4; charset=utf-8"), body.getBytes(StandardCharsets.UTF_8));
    }

    private void llamaCppMetrics(Exchange ex) throws IOException {
        String body = "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
                + "# TYPE llamacpp:prompt_tokens_total counter\n"
                + "llamacpp:prompt_tokens_total 0\n"
                + "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.\n"
                + "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
                + "llamacpp:kv_cache_usage_ratio " + kvCacheUsage + "\n"
                + "# HELP llamacpp:requests_processing Number of requests processing.\n"
                + "# TYPE llamacpp:requests_processing gauge\n"
                + "llamacpp:requests_processing " + inFlight.get() + "\n"
                + "# HELP llamacpp:requests_deferred Number of requests deferred.\n"
                + "# TYPE llamacpp:requests_deferred gauge\n"
                + "llamacpp:requests_deferred " + waiting() + "\n";
        ex.sendFixed(200, headers("text/plain; version=0.0.4"), body.getBytes(StandardCharsets.UTF_8));
    }

    private double waiting() {
        return waitingGauge + queued.get();
    }

    // ---- chat: checks, limit, cold start ----

    /**
     * A chat request's hold on the server: its slot under the concurrency limit, its presence (which keeps the
     * server awake) and its place among those served. Given back once, just before the last bytes of the answer.
     */
    private final class Turn {
        boolean holdsSlot;
        boolean awake;
        boolean serving;
        private boolean done;

        void done() {
            if (done) {
                return;
            }
            done = true;
            if (serving) {
                inFlight.decrementAndGet();
            }
            if (awake) {
                synchronized (coldLock) {
                    present--;
                    lastActivity = System.nanoTime();
                }
            }
            if (holdsSlot) {
                slots.release();
            }
        }
    }

    private void chat(Exchange ex) throws IOException {
        if (!ex.method().equals("POST")) {
            sendError(ex, 405, "method not allowed", "BadRequestError", null);
            return;
        }
        if (apiKey != null && !("Bearer " + apiKey).equals(ex.header("authorization"))) {
            send(ex, 401, "{\"error\":\"Unauthorized\"}");
            return;
        }
        if (!healthy) {
            sendError(ex, 503, "engine is not healthy", "ServiceUnavailableError", null);
            return;
        }
        Chat chat;
        try {
            chat = parse(ex.body());
        } catch (Refusal r) {
            sendError(ex, 400, r.getMessage(), "BadRequestError", r.param);
            return;
        }
        Turn turn = new Turn();
        try {
            if (!admit(ex, turn)) {
                return;
            }
            long wait = arrive(turn);
            if (wait > 0) {
                queued.incrementAndGet();
                try {
                    if (!sleepNanos(wait)) {
                        ex.abort();
                        return;
                    }
                } finally {
                    queued.decrementAndGet();
                }
            }
            turn.serving = true;
            maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            requests.incrementAndGet();
            serve(ex, chat, turn);
        } finally {
            turn.done();
        }
    }

    /**
     * Takes a slot under the concurrency limit, queueing for one if so configured; false when the request was
     * answered (429) or dropped instead.
     */
    private boolean admit(Exchange ex, Turn turn) throws IOException {
        if (slots == null) {
            return true;
        }
        try {
            // The timed form respects the semaphore's fairness: a newcomer does not pass those already queued.
            if (slots.tryAcquire(0, TimeUnit.NANOSECONDS)) {
                turn.holdsSlot = true;
                return true;
            }
            if (overflow == Overflow.REJECT) {
                reject(ex, "The server is already serving its limit of " + maxConcurrent + " requests; retry later.");
                return false;
            }
            if (!takeQueuePlace()) {
                reject(
                        ex,
                        "The server is serving its limit of " + maxConcurrent + " requests and " + queueLimit
                                + " more are queued; retry later.");
                return false;
            }
            queued.incrementAndGet();
            try {
                slots.acquire();
                turn.holdsSlot = true;
                return true;
            } finally {
                queued.decrementAndGet();
                slotWaiters.decrementAndGet();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ex.abort();
            return false;
        }
    }

    private boolean takeQueuePlace() {
        while (true) {
            int waiting = slotWaiters.get();
            if (queueLimit >= 0 && waiting >= queueLimit) {
                return false;
            }
            if (slotWaiters.compareAndSet(waiting, waiting + 1)) {
                return true;
            }
        }
    }

    private void reject(Exchange ex, String message) throws IOException {
        rejected.incrementAndGet();
        Map<String, String> headers = headers("application/json");
        headers.put("Retry-After", "1");
        ex.sendFixed(
                429,
                headers,
                OpenAiChatShapes.error(message, "RateLimitError", null, 429)
                        .toString()
                        .getBytes(StandardCharsets.UTF_8));
    }

    /**
     * A request holding its slot arrives at the model: begins a cold start if the server is scaled to zero, and
     * returns how long it must wait for the one under way (0 when warm).
     */
    private long arrive(Turn turn) {
        synchronized (coldLock) {
            long now = System.nanoTime();
            if (!cold && idleSince(now)) {
                cold = true;
            }
            present++;
            turn.awake = true;
            lastActivity = now;
            if (cold) {
                cold = false;
                readyAt = now + coldStartNanos;
                coldStarts.incrementAndGet();
            }
            return Math.max(0, readyAt - now);
        }
    }

    /** Whether the idle time has passed with no chat request present. Holds {@link #coldLock}. */
    private boolean idleSince(long now) {
        return idleNanos > 0 && present == 0 && now - lastActivity > idleNanos;
    }

    private Chat parse(byte[] body) throws Refusal {
        JsonNode root;
        try {
            root = MAPPER.readTree(body);
        } catch (IOException e) {
            throw new Refusal(null, "request body is not valid JSON");
        }
        if (root == null || !root.isObject()) {
            throw new Refusal(null, "request body must be a JSON object");
        }
        JsonNode messages = root.path("messages");
        if (!messages.isArray() || messages.isEmpty()) {
            throw new Refusal("messages", "messages must be a non-empty list");
        }
        StringBuilder prompt = new StringBuilder();
        String lastUser = "";
        for (JsonNode m : messages) {
            String content = OpenAiChatShapes.contentText(m.path("content"));
            if ("user".equals(m.path("role").asText())) {
                lastUser = content;
            }
            if (!content.isEmpty()) {
                if (prompt.length() > 0) {
                    prompt.append('\n');
                }
                prompt.append(content);
            }
        }
        JsonNode max =
                root.hasNonNull("max_completion_tokens") ? root.get("max_completion_tokens") : root.get("max_tokens");
        Integer maxTokens = null;
        if (max != null && !max.isNull()) {
            if (!max.isIntegralNumber() || !max.canConvertToInt() || max.asInt() < 1) {
                throw new Refusal("max_tokens", "max_tokens must be at least 1, got " + max);
            }
            maxTokens = max.asInt();
        }
        JsonNode seedNode = root.get("seed");
        Long requestSeed = null;
        if (seedNode != null && !seedNode.isNull()) {
            if (!seedNode.isIntegralNumber() || !seedNode.canConvertToLong()) {
                throw new Refusal("seed", "seed must be an integer, got " + seedNode);
            }
            requestSeed = seedNode.asLong();
        }
        String requested = root.path("model").isTextual() ? root.get("model").asText() : model;
        return new Chat(
                requested,
                lastUser,
                prompt.toString(),
                GeneratedText.words(prompt.toString()),
                maxTokens,
                requestSeed,
                root.path("stream").asBoolean(false),
                root.path("stream_options").path("include_usage").asBoolean(false));
    }

    // ---- chat: the answer ----

    private void serve(Exchange ex, Chat chat, Turn turn) throws IOException {
        Script script = scripts.poll();
        // One draw per request served, scripted or not, so that which requests fail depends only on the seed.
        boolean inject = failureRate > 0 && draw() < failureRate;
        ScriptKind kind = script == null ? null : script.kind();
        if (kind == ScriptKind.FAIL) {
            Map<String, String> headers = headers("application/json");
            headers.putAll(script.headers());
            turn.done();
            ex.sendFixed(script.status(), headers, script.text().getBytes(StandardCharsets.UTF_8));
            return;
        }
        if (kind == ScriptKind.STALL) {
            stall(ex, chat.stream());
            return;
        }
        if (script == null && inject) {
            injectedFailures.incrementAndGet();
            turn.done();
            sendInjectedFailure(ex);
            return;
        }
        List<String> pieces;
        String finish;
        if (kind == ScriptKind.ANSWER || responder != null) {
            String text = kind == ScriptKind.ANSWER ? script.text() : responder.apply(chat.lastUserMessage());
            pieces = GeneratedText.exactPieces(Objects.requireNonNull(text, "the responder's answer"));
            finish = "stop";
            if (chat.maxTokens() != null && pieces.size() > chat.maxTokens()) {
                pieces = pieces.subList(0, chat.maxTokens());
                finish = "length";
            }
        } else {
            int count = chat.maxTokens() != null ? chat.maxTokens() : defaultMaxTokens;
            pieces = GeneratedText.pieces(chat.prompt(), chat.seed(), seed, count);
            finish = "length";
        }
        int completionTokens = GeneratedText.words(String.join("", pieces));
        int cutAfter = kind == ScriptKind.CUT ? script.chunks() : -1;
        String id = "chatcmpl-" + ids.incrementAndGet();
        long created = System.currentTimeMillis() / 1000;
        if (chat.stream()) {
            stream(ex, turn, chat, pieces, finish, completionTokens, id, created, cutAfter);
            return;
        }
        ObjectNode body = OpenAiChatShapes.completion(
                id,
                created,
                chat.model(),
                OpenAiChatShapes.assistantMessage(String.join("", pieces)),
                finish,
                chat.promptTokens(),
                completionTokens);
        if (!tokenLatency.isZero() && !sleepNanos(tokenLatency.toNanos() * pieces.size())) {
            ex.abort();
            return;
        }
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        turn.done();
        try {
            if (cutAfter >= 0) {
                ex.sendTruncated(200, headers("application/json"), bytes, bytes.length / 2);
            } else {
                ex.sendFixed(200, headers("application/json"), bytes);
            }
        } catch (IOException e) {
            stalls.clientGone(ex);
        }
    }

    private double draw() {
        synchronized (failureDraws) {
            return failureDraws.nextDouble();
        }
    }

    private void sendInjectedFailure(Exchange ex) throws IOException {
        String type;
        String message;
        switch (failureStatus) {
            case 503 -> {
                type = "ServiceUnavailableError";
                message = "The engine is overloaded or restarting; try again later (injected failure).";
            }
            case 429 -> {
                type = "RateLimitError";
                message = "Too many requests; retry later (injected failure).";
            }
            case 500 -> {
                type = "InternalServerError";
                message = "The engine failed while serving the request (injected failure).";
            }
            default -> {
                type = failureStatus < 500 ? "BadRequestError" : "InternalServerError";
                message = "The request failed with status " + failureStatus + " (injected failure).";
            }
        }
        Map<String, String> headers = headers("application/json");
        if (failureStatus == 429) {
            headers.put("Retry-After", "1");
        }
        ex.sendFixed(
                failureStatus,
                headers,
                OpenAiChatShapes.error(message, type, null, failureStatus)
                        .toString()
                        .getBytes(StandardCharsets.UTF_8));
    }

    private void stream(
            Exchange ex,
            Turn turn,
            Chat chat,
            List<String> pieces,
            String finish,
            int completionTokens,
            String id,
            long created,
            int cutAfter) {
        try {
            Map<String, String> headers = headers("text/event-stream; charset=utf-8");
            headers.put("Cache-Control", "no-cache");
            ex.startChunked(200, headers);
            event(ex, OpenAiChatShapes.roleChunk(id, created, chat.model()));
            for (int i = 0; i < pieces.size(); i++) {
                if (i == cutAfter) {
                    break;
                }
                if (!tokenLatency.isZero() && !sleepNanos(tokenLatency.toNanos())) {
                    ex.abort();
                    return;
                }
                event(ex, OpenAiChatShapes.contentChunk(id, created, chat.model(), pieces.get(i)));
            }
            if (cutAfter >= 0) {
                // An orderly close without the end of the chunked body: the client has every chunk sent so far,
                // then sees the body end early.
                turn.done();
                ex.abort();
                return;
            }
            event(ex, OpenAiChatShapes.finishChunk(id, created, chat.model(), finish));
            if (chat.includeUsage()) {
                event(
                        ex,
                        OpenAiChatShapes.usageChunk(id, created, chat.model(), chat.promptTokens(), completionTokens));
            }
            turn.done();
            ex.writeChunk("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            ex.endChunked();
        } catch (IOException e) {
            stalls.clientGone(ex);
        }
    }

    private void stall(Exchange ex, boolean streaming) {
        stalls.holdWithKeepAlive(
                ex,
                200,
                headers(streaming ? "text/event-stream; charset=utf-8" : "application/json"),
                (streaming ? ": keep-alive\n\n" : " ").getBytes(StandardCharsets.UTF_8),
                Duration.ofMillis(STALL_PROBE_MILLIS));
    }

    private static void event(Exchange ex, ObjectNode chunk) throws IOException {
        ex.writeChunk(("data: " + chunk + "\n\n").getBytes(StandardCharsets.UTF_8));
    }

    // ---- responses ----

    private static Map<String, String> headers(String contentType) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Content-Type", contentType);
        return headers;
    }

    private static void send(Exchange ex, int status, String body) throws IOException {
        ex.sendFixed(status, headers("application/json"), body.getBytes(StandardCharsets.UTF_8));
    }

    private static void sendError(Exchange ex, int status, String message, String type, String param)
            throws IOException {
        send(ex, status, OpenAiChatShapes.error(message, type, param, status).toString());
    }

    /** Sleeps; false when interrupted, which happens when the server closes. */
    private static boolean sleepNanos(long nanos) {
        try {
            TimeUnit.NANOSECONDS.sleep(nanos);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Builds an {@link OpenAiCompatibleServer}. */
    public static final class Builder {
        private String model = "test-model";
        private Function<String, String> responder;
        private String apiKey;
        private Duration tokenLatency = Duration.ZERO;
        private int port;
        private int threads;
        private boolean healthRoute = true;
        private MetricsStyle metricsStyle = MetricsStyle.VLLM;
        private long seed;
        private int defaultMaxTokens = 16;
        private int maxConcurrent;
        private Overflow overflow = Overflow.QUEUE;
        private int queueLimit = -1;
        private double failureRate;
        private int failureStatus = 503;
        private Duration coldStart = Duration.ZERO;
        private Duration scaleToZeroAfter;
        private boolean startCold;

        private Builder() {}

        /** The model name it lists and reports (default {@code test-model}). */
        public Builder model(String model) {
            if (model == null || model.isBlank()) {
                throw new IllegalArgumentException("model: expected a non-blank name, got " + model);
            }
            this.model = model;
            return this;
        }

        /**
         * Answers with what this function makes of the last user message (its text parts), instead of generated
         * text; cut to the request's {@code max_tokens} words when longer.
         */
        public Builder responder(Function<String, String> responder) {
            this.responder = Objects.requireNonNull(responder, "responder");
            return this;
        }

        /** Requires {@code Authorization: Bearer <key>} on chat requests (default: none required). */
        public Builder apiKey(String apiKey) {
            this.apiKey = apiKey;
            return this;
        }

        /**
         * Waits this long before each streamed word, and words times this before a blocking answer (default
         * none); the request holds its slot meanwhile.
         */
        public Builder tokenLatency(Duration latency) {
            this.tokenLatency = nonNegative(latency, "tokenLatency");
            return this;
        }

        /** The same as {@link #tokenLatency}. */
        public Builder delayPerChunk(Duration delay) {
            return tokenLatency(delay);
        }

        /** The port; 0 (the default) picks a free one. */
        public Builder port(int port) {
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port: expected 0 to 65535, got " + port);
            }
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
            this.metricsStyle = Objects.requireNonNull(style, "style");
            return this;
        }

        /**
         * At most this many requests, on any route, are handled at once; the others wait their turn before any
         * check (default: no limit). {@link #maxConcurrent} is the model of a server's capacity; this limits the
         * whole server, its {@code /metrics} and {@code /health} included.
         */
        public Builder threads(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("threads: expected at least 1, got " + threads);
            }
            this.threads = threads;
            return this;
        }

        /**
         * The seed of generated text and of injected failures (default 0). Without a script or a {@link
         * #responder}, a chat request answers words from a fixed list, chosen by its prompt text (all message
         * contents), its own {@code seed} if any, and this seed: the same request to a server built with the same
         * seed always gets the same words. Injected failures ({@link #failureRate}) draw from a generator seeded
         * with this seed.
         */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** The words generated for a request that sets neither {@code max_tokens} nor {@code max_completion_tokens} (default 16). */
        public Builder defaultMaxTokens(int words) {
            if (words < 1) {
                throw new IllegalArgumentException("defaultMaxTokens: expected at least 1, got " + words);
            }
            this.defaultMaxTokens = words;
            return this;
        }

        /**
         * At most {@code n} chat requests served at once (default: no limit); what the others get is {@link
         * #whenFull}.
         */
        public Builder maxConcurrent(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("maxConcurrent: expected at least 1, got " + n);
            }
            this.maxConcurrent = n;
            return this;
        }

        /** What a chat request gets when {@link #maxConcurrent} are being served (default {@link Overflow#QUEUE}). */
        public Builder whenFull(Overflow mode) {
            this.overflow = Objects.requireNonNull(mode, "mode");
            return this;
        }

        /**
         * With {@link Overflow#QUEUE}, at most {@code n} chat requests wait for a slot; one more gets 429 (default:
         * no limit). 0 queues none, which answers as {@link Overflow#REJECT} does.
         */
        public Builder queueLimit(int n) {
            if (n < 0) {
                throw new IllegalArgumentException("queueLimit: expected 0 or more, got " + n);
            }
            this.queueLimit = n;
            return this;
        }

        /**
         * The fraction of chat requests, 0 to 1, that get an injected failure (default 0): each request served
         * takes the next draw of a generator seeded with {@link #seed}, and fails when it is below {@code p}, so
         * that a server built the same way fails the same number of a run of requests; a scripted request follows
         * its script whatever its draw.
         */
        public Builder failureRate(double p) {
            if (!(p >= 0 && p <= 1)) {
                throw new IllegalArgumentException("failureRate: expected 0 to 1, got " + p);
            }
            this.failureRate = p;
            return this;
        }

        /**
         * The status of injected failures (default 503, vLLM's {@code ServiceUnavailableError}), 400 to 599, with
         * a vLLM error body; 429 adds {@code Retry-After: 1}.
         */
        public Builder failureStatus(int status) {
            if (status < 400 || status > 599) {
                throw new IllegalArgumentException("failureStatus: expected 400 to 599, got " + status);
            }
            this.failureStatus = status;
            return this;
        }

        /**
         * How long a cold start takes, model load included (default zero, when cold starts are only counted): the
         * request that finds the server scaled to zero waits that long, and so do those that arrive meanwhile
         * until it ends.
         */
        public Builder coldStart(Duration delay) {
            this.coldStart = nonNegative(delay, "coldStart");
            return this;
        }

        /**
         * Scales the server to zero once no chat request has been in progress for {@code idle} (default never),
         * counted from the end of the last one, or from the start when none has been served.
         */
        public Builder scaleToZeroAfter(Duration idle) {
            if (idle == null || idle.isNegative() || idle.isZero()) {
                throw new IllegalArgumentException("scaleToZeroAfter: expected a positive duration, got " + idle);
            }
            this.scaleToZeroAfter = idle;
            return this;
        }

        /** Whether the server begins scaled to zero, so that its first chat request cold starts (default false). */
        public Builder startCold(boolean cold) {
            this.startCold = cold;
            return this;
        }

        /** Starts the server on loopback. */
        public OpenAiCompatibleServer start() {
            if (queueLimit >= 0 && maxConcurrent == 0) {
                throw new IllegalArgumentException("queueLimit needs maxConcurrent: without a limit nothing queues");
            }
            if (queueLimit >= 0 && overflow == Overflow.REJECT) {
                throw new IllegalArgumentException("queueLimit applies only when whenFull is QUEUE, not REJECT");
            }
            try {
                return new OpenAiCompatibleServer(this);
            } catch (IOException e) {
                throw new IllegalStateException("cannot start the test server: " + e.getMessage(), e);
            }
        }

        private static Duration nonNegative(Duration d, String name) {
            if (d == null || d.isNegative()) {
                throw new IllegalArgumentException(name + ": expected a duration of zero or more, got " + d);
            }
            return d;
        }
    }
}
