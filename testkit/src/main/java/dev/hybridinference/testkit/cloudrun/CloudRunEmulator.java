package dev.hybridinference.testkit.cloudrun;

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
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Deque;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An in-process Google Cloud Run service with GPUs on loopback (plain HTTP/1.1), running vLLM's OpenAI-compatible
 * server: what a client of a private Cloud Run service meets, from the ID-token check at Google's front end through
 * cold starts, scaling and the request queue, to the container's chat completions.
 *
 * <p><b>The front end.</b> With {@link Builder#requireIdToken} every request must carry {@code Authorization:
 * Bearer <ID token>} (or {@code X-Serverless-Authorization}, which Cloud Run reads first when present) issued by
 * the given {@link GoogleTokenServer} for the {@link Builder#audience audience}; see there. Refusals and the 429 of
 * a full service are HTML pages like those of Google's front end (wording and markup approximate). Every response
 * carries {@code Server: Google Frontend}.
 *
 * <p><b>Instances.</b> Each emulated instance serves up to {@link Builder#concurrency} requests at once. A request
 * takes a free slot on a ready instance, else one on an instance still starting (and waits for it to be ready),
 * else starts a new instance while fewer than {@link Builder#maxInstances} live (a cold start of {@link
 * Builder#coldStart} that the request waits out), else waits for a slot. A request that has no slot on a ready
 * instance after {@link Builder#holdLimit} gets 429 (or the {@link Builder#startupFailure} while an instance is
 * starting). An instance without requests for {@link Builder#idleTimeout} is removed, except the {@link
 * Builder#minInstances} started with the emulator. This is simpler than Cloud Run's autoscaler, which works from
 * CPU and concurrency averages over a minute and can give a held request whichever slot frees first: here a request
 * stays with the instance it reserved, so it may wait for its new instance where Cloud Run would serve it sooner.
 * A request gives its slot back just before the last bytes of its answer, so the counts are up to date once a
 * client has its answer.
 *
 * <p><b>The container</b> is vLLM's OpenAI-compatible server: {@code POST /v1/chat/completions} (blocking, or SSE
 * with {@code stream: true}: a role chunk, one chunk per word, a finish chunk, the usage chunk ({@code "choices":
 * []}) when {@code stream_options.include_usage} is set, then {@code data: [DONE]}), {@code GET /v1/models} and
 * {@code GET /health}; other paths 404 {@code {"detail":"Not Found"}}. Errors are vLLM's {@code {"error":
 * {"message","type","param","code"}}}. Answers are scripted ({@link #answerNext}) or deterministic generated words
 * (see {@link Builder#seed}); token counts are whitespace words, not a tokenizer's.
 *
 * <p>Scripts ({@link #answerNext}, {@link #failNext}, {@link #stallNext}, {@link #cutNextAfter}) queue in order,
 * and each is taken by the next chat-completions request that reaches an instance: requests refused before that
 * (401, 403, 429) and other routes leave them queued.
 *
 * <p>For tests, examples and benchmarks; not a model. Thread-safe; close it to stop.
 */
public final class CloudRunEmulator implements AutoCloseable {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final int MAX_RECORDED = 1000;
    private static final String NO_INSTANCE = "The request was aborted because there was no available instance.";

    /**
     * One request as it arrived: method, decoded path (without the query), headers by lower-cased name (repeated
     * headers joined with commas) and the body as UTF-8 text.
     *
     * @param method the HTTP method
     * @param path the path without the query string
     * @param headers the headers by lower-cased name
     * @param body the body
     */
    public record RecordedRequest(String method, String path, Map<String, String> headers, String body) {
        /** Copies the headers. */
        public RecordedRequest {
            headers = Map.copyOf(headers);
        }

        /** The value of a header, by its name in any case, or null. */
        public String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }
    }

    private enum ScriptKind {
        ANSWER,
        FAIL,
        STALL,
        CUT
    }

    private record Script(ScriptKind kind, String text, int status, int chunks) {}

    /** One emulated instance; guarded by {@link #lock}. */
    private static final class Instance {
        final boolean min;
        final long startedAt;
        final long readyAt;
        long lastEnd;
        int active;
        boolean draining;

        Instance(boolean min, long startedAt, long readyAt) {
            this.min = min;
            this.startedAt = startedAt;
            this.readyAt = readyAt;
            this.lastEnd = readyAt;
        }
    }

    private final LoopbackHttp http;
    private final String model;
    private final GoogleTokenServer issuer;
    private final String audience;
    private final long startupNanos;
    private final long holdNanos;
    private final Integer startupFailureStatus;
    private final String startupFailureBody;
    private final long idleNanos;
    private final int maxInstances;
    private final int concurrency;
    private final Duration tokenLatency;
    private final long seed;
    private final long startedAt;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final List<Instance> instances = new ArrayList<>();
    private long retiredNanos;
    private int maxInstancesSeen;

    private final ConcurrentLinkedQueue<Script> scripts = new ConcurrentLinkedQueue<>();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong coldStarts = new AtomicLong();
    private final Stalls stalls;
    private final Deque<RecordedRequest> recorded = new ArrayDeque<>();

    private CloudRunEmulator(Builder b) throws IOException {
        this.model = b.model;
        this.issuer = b.issuer;
        this.startupNanos = b.coldStart.toNanos();
        this.holdNanos = b.holdLimit != null
                ? b.holdLimit.toNanos()
                : Math.max(Duration.ofSeconds(10).toNanos(), (long) (3.5 * startupNanos));
        this.startupFailureStatus = b.startupFailureStatus;
        this.startupFailureBody = b.startupFailureBody;
        this.idleNanos = b.idleTimeout.toNanos();
        this.maxInstances = b.maxInstances;
        this.concurrency = b.concurrency;
        this.tokenLatency = b.tokenLatency;
        this.seed = b.seed;
        this.startedAt = System.nanoTime();
        for (int i = 0; i < b.minInstances; i++) {
            instances.add(new Instance(true, startedAt, startedAt));
        }
        this.maxInstancesSeen = b.minInstances;
        this.http = new LoopbackHttp(this::handle, "cloud-run-emulator");
        this.stalls = new Stalls(http);
        this.audience = b.audience != null ? b.audience : url();
    }

    /** A builder for a service serving {@code gemma-3-4b}, scaled to zero, with no ID token required. */
    public static Builder builder() {
        return new Builder();
    }

    /** The service URL, {@code http://127.0.0.1:PORT}: the base of every route and the default audience. */
    public String url() {
        return "http://" + http.address().getHostAddress() + ":" + http.port();
    }

    /** Stops the service; stalled, held and streaming requests end with their connections closed. */
    @Override
    public void close() {
        http.close();
    }

    // ---- scripts ----

    /**
     * The next chat-completions request that reaches an instance (after those already scripted) answers exactly
     * {@code text}, whatever its {@code max_tokens}, with finish reason {@code stop}. Streamed, it comes one word
     * per chunk: each chunk a word with the whitespace before it (trailing whitespace stays with the last word), so
     * the first has no leading space unless the text has one, and the chunks join to {@code text}. Completion tokens are the words.
     */
    public void answerNext(String text) {
        scripts.add(new Script(ScriptKind.ANSWER, Objects.requireNonNull(text), 0, -1));
    }

    /**
     * The next chat-completions request that reaches an instance (after those already scripted) gets {@code
     * status} with {@code body}: sent as {@code application/json} when it starts with <code>{</code>, else as
     * {@code text/plain}. For a failing container, such as 500 with vLLM's error body, or 503 while the engine is
     * unhealthy.
     */
    public void failNext(int status, String body) {
        if (status < 100 || status > 599) {
            throw new IllegalArgumentException("an HTTP status is 100 to 599, got " + status);
        }
        scripts.add(new Script(ScriptKind.FAIL, Objects.requireNonNull(body), status, -1));
    }

    /**
     * The next chat-completions request that reaches an instance (after those already scripted) stalls: the
     * instance accepts it and sends nothing more (a blocking request not even headers; a streamed one its 200 and
     * event-stream headers, then no event) until the client closes the connection (counted in {@link
     * #disconnects()}) or the emulator closes. It keeps its slot on the instance meanwhile.
     */
    public void stallNext() {
        scripts.add(new Script(ScriptKind.STALL, null, 0, -1));
    }

    /**
     * The next chat-completions request that reaches an instance (after those already scripted) is cut: streamed,
     * after the role chunk and {@code chunks} content chunks (or all it has, if fewer) the connection is reset
     * (TCP RST) with no finish chunk, usage or {@code [DONE]}, and no end of the chunked body; blocking, half of
     * the body declared by {@code Content-Length} is sent and the connection closed.
     */
    public void cutNextAfter(int chunks) {
        if (chunks < 0) {
            throw new IllegalArgumentException("chunks must not be negative, got " + chunks);
        }
        scripts.add(new Script(ScriptKind.CUT, null, 0, chunks));
    }

    // ---- state ----

    /** Requests received at {@code /v1/*} routes, whatever became of them (refused ones included). */
    public long requests() {
        return requests.get();
    }

    /** Instances started for requests: cold starts. The {@link Builder#minInstances} are not counted. */
    public long coldStarts() {
        return coldStarts.get();
    }

    /** Instances alive now: starting, serving or idle (min instances included). */
    public int liveInstances() {
        lock.lock();
        try {
            reap(System.nanoTime());
            return instances.size();
        } finally {
            lock.unlock();
        }
    }

    /** The most instances alive at once so far. */
    public int maxInstancesSeen() {
        lock.lock();
        try {
            return maxInstancesSeen;
        } finally {
            lock.unlock();
        }
    }

    /**
     * The instance time billed so far, as GPU services are billed (per instance, for its whole life, idle time
     * included): the sum over instances of the time from start to removal, a removed instance's removal being its
     * last request's end plus {@link Builder#idleTimeout} (or the moment {@link #scaleToZero()} or the end of its
     * last request after that removed it), a live one's counted up to now, and min instances' from the emulator's
     * start. For checking cost estimates by hand.
     */
    public Duration billableInstanceTime() {
        lock.lock();
        try {
            long now = System.nanoTime();
            reap(now);
            long total = retiredNanos;
            for (Instance i : instances) {
                long end = i.min || i.active > 0 || i.draining ? now : Math.min(now, i.lastEnd + idleNanos);
                total += Math.max(0, end - i.startedAt);
            }
            return Duration.ofNanos(total);
        } finally {
            lock.unlock();
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

    /** Every request received (any route, refused ones included), in order of arrival; the last 1000 are kept. */
    public List<RecordedRequest> recorded() {
        synchronized (recorded) {
            return List.copyOf(recorded);
        }
    }

    /**
     * Removes every instance above the min instances now: the idle ones at once, the busy ones as soon as their
     * requests end (they take no new ones meanwhile). The next request then cold starts, unless min instances can
     * serve it.
     */
    public void scaleToZero() {
        lock.lock();
        try {
            long now = System.nanoTime();
            reap(now);
            for (Instance i : List.copyOf(instances)) {
                if (i.min) {
                    continue;
                }
                if (i.active == 0) {
                    retire(i, now);
                } else {
                    i.draining = true;
                }
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public String toString() {
        return "CloudRunEmulator[" + url() + ", model " + model + "]";
    }

    // ---- instances ----

    /** Removes idle instances whose idle timeout has passed. Holds the lock. */
    private void reap(long now) {
        for (Instance i : List.copyOf(instances)) {
            if (!i.min && i.active == 0 && now - i.lastEnd >= idleNanos) {
                retire(i, i.lastEnd + idleNanos);
            }
        }
    }

    /** Holds the lock. */
    private void retire(Instance i, long end) {
        instances.remove(i);
        retiredNanos += Math.max(0, end - i.startedAt);
    }

    /**
     * Reserves a slot for a request that arrived at {@code arrival}: on a ready instance, else a starting one,
     * else a new one; waits for a slot until the hold limit. Null when the hold limit passed first.
     */
    private Instance acquire(long arrival) throws InterruptedException {
        long deadline = arrival + holdNanos;
        lock.lock();
        try {
            while (true) {
                long now = System.nanoTime();
                reap(now);
                Instance chosen = null;
                int serving = 0;
                for (Instance i : instances) {
                    if (i.draining) {
                        continue;
                    }
                    serving++;
                    if (i.active >= concurrency) {
                        continue;
                    }
                    boolean ready = i.readyAt - now <= 0;
                    if (chosen == null) {
                        chosen = i;
                    } else if (ready && chosen.readyAt - now > 0) {
                        chosen = i;
                    } else if (!ready && chosen.readyAt - now > 0 && i.readyAt - chosen.readyAt < 0) {
                        chosen = i;
                    }
                }
                if (chosen == null && serving < maxInstances) {
                    chosen = new Instance(false, now, now + startupNanos);
                    instances.add(chosen);
                    coldStarts.incrementAndGet();
                    maxInstancesSeen = Math.max(maxInstancesSeen, instances.size());
                }
                if (chosen != null) {
                    chosen.active++;
                    return chosen;
                }
                long left = deadline - now;
                if (left <= 0) {
                    return null;
                }
                changed.awaitNanos(left);
            }
        } finally {
            lock.unlock();
        }
    }

    private void release(Instance i, boolean served) {
        lock.lock();
        try {
            long now = System.nanoTime();
            i.active--;
            if (served && now - i.lastEnd > 0) {
                i.lastEnd = now;
            }
            if (i.draining && i.active == 0 && instances.contains(i)) {
                retire(i, now);
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private boolean anyStarting() {
        lock.lock();
        try {
            long now = System.nanoTime();
            return instances.stream().anyMatch(i -> i.readyAt - now > 0);
        } finally {
            lock.unlock();
        }
    }

    // ---- the front end ----

    private void handle(Exchange ex) throws IOException {
        record(ex);
        if (ex.path().startsWith("/v1/")) {
            requests.incrementAndGet();
        }
        if (issuer != null) {
            int refused = checkIdToken(ex);
            if (refused != 0) {
                frontEndError(ex, refused);
                return;
            }
        }
        long arrival = System.nanoTime();
        Instance instance;
        try {
            instance = acquire(arrival);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ex.abort();
            return;
        }
        if (instance == null) {
            noInstance(ex, anyStarting());
            return;
        }
        Slot slot = new Slot(instance);
        try {
            long untilReady = instance.readyAt - System.nanoTime();
            if (untilReady > 0) {
                long held = arrival + holdNanos - System.nanoTime();
                if (untilReady > held) {
                    if (held > 0 && !sleepNanos(held)) {
                        ex.abort();
                        return;
                    }
                    slot.done();
                    noInstance(ex, true);
                    return;
                }
                if (!sleepNanos(untilReady)) {
                    ex.abort();
                    return;
                }
            }
            slot.served = true;
            container(ex, slot);
        } finally {
            slot.done();
        }
    }

    private void record(Exchange ex) {
        RecordedRequest r = new RecordedRequest(
                ex.method(), ex.path(), ex.headers(), new String(ex.body(), StandardCharsets.UTF_8));
        synchronized (recorded) {
            recorded.addLast(r);
            while (recorded.size() > MAX_RECORDED) {
                recorded.removeFirst();
            }
        }
    }

    /** 0 when the request carries an acceptable ID token, else the status to refuse it with (401 or 403). */
    private int checkIdToken(Exchange ex) {
        String authorization = ex.header("x-serverless-authorization");
        if (authorization == null) {
            authorization = ex.header("authorization");
        }
        if (authorization == null || !authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return 401;
        }
        String[] parts = authorization.substring(7).trim().split("\\.", -1);
        if (parts.length != 3) {
            return 401;
        }
        JsonNode claims;
        try {
            for (String part : parts) {
                if (part.isEmpty() || !part.matches("[A-Za-z0-9_-]+")) {
                    return 401;
                }
            }
            claims = MAPPER.readTree(Base64.getUrlDecoder().decode(parts[1]));
        } catch (IOException | IllegalArgumentException e) {
            return 401;
        }
        if (claims == null
                || !claims.isObject()
                || !issuer.issuer().equals(claims.path("iss").asText())) {
            return 401;
        }
        JsonNode exp = claims.get("exp");
        if (exp == null || !exp.isNumber()) {
            return 401;
        }
        if (!audience.equals(claims.path("aud").asText())) {
            return 403;
        }
        if (exp.asLong() * 1000 <= System.currentTimeMillis()) {
            return 403;
        }
        return 0;
    }

    private void frontEndError(Exchange ex, int status) throws IOException {
        String path = htmlEscape(ex.path());
        String page = status == 401
                ? googlePage(
                        "401 Unauthorized",
                        "Unauthorized",
                        "Your client does not have permission to the requested URL <code>" + path + "</code>.")
                : googlePage(
                        "403 Forbidden",
                        "Forbidden",
                        "Your client does not have permission to get URL <code>" + path + "</code> from this server.");
        send(ex, status, "text/html; charset=UTF-8", page);
    }

    private void noInstance(Exchange ex, boolean starting) throws IOException {
        if (starting && startupFailureStatus != null) {
            send(ex, startupFailureStatus, contentTypeOf(startupFailureBody), startupFailureBody);
        } else {
            send(
                    ex,
                    429,
                    "text/html; charset=UTF-8",
                    googlePage("429 Too Many Requests", "Too Many Requests", NO_INSTANCE));
        }
    }

    private static String googlePage(String title, String heading, String message) {
        return "<html><head>\n<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n<title>"
                + title + "</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>Error: " + heading
                + "</h1>\n<h2>" + message + "</h2>\n<h2></h2>\n</body></html>\n";
    }

    private static String htmlEscape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    // ---- the container (vLLM) ----

    /**
     * A request's slot on an instance. It is given back just before the last bytes of the answer are written, so
     * that a client that has its answer finds the emulator's counts up to date.
     */
    private final class Slot {
        final Instance instance;
        boolean served;
        private boolean released;

        Slot(Instance instance) {
            this.instance = instance;
        }

        void done() {
            if (!released) {
                released = true;
                release(instance, served);
            }
        }
    }

    private static void reply(Exchange ex, Slot slot, int status, String contentType, String body) throws IOException {
        slot.done();
        send(ex, status, contentType, body);
    }

    private void container(Exchange ex, Slot slot) throws IOException {
        String path = ex.path();
        String method = ex.method();
        switch (path) {
            case "/v1/chat/completions" -> {
                if (method.equals("POST")) {
                    chat(ex, slot);
                } else {
                    reply(ex, slot, 405, "application/json", "{\"detail\":\"Method Not Allowed\"}");
                }
            }
            case "/v1/models" -> {
                if (method.equals("GET")) {
                    models(ex, slot);
                } else {
                    reply(ex, slot, 405, "application/json", "{\"detail\":\"Method Not Allowed\"}");
                }
            }
            case "/health" -> reply(ex, slot, 200, "application/json", "");
            default -> reply(ex, slot, 404, "application/json", "{\"detail\":\"Not Found\"}");
        }
    }

    private void models(Exchange ex, Slot slot) throws IOException {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        data.addObject()
                .put("id", model)
                .put("object", "model")
                .put("created", startedAtEpochSecond())
                .put("owned_by", "vllm")
                .put("root", model)
                .putNull("parent")
                .put("max_model_len", 8192);
        reply(ex, slot, 200, "application/json", root.toString());
    }

    private long startedAtEpochSecond() {
        return (System.currentTimeMillis() - (System.nanoTime() - startedAt) / 1_000_000) / 1000;
    }

    /** What a chat request asks for. */
    private record Chat(String model, String prompt, int maxTokens, Long seed, boolean stream, boolean includeUsage) {}

    /** A request body vLLM refuses: status and its error body. */
    private static final class Refusal extends Exception {
        final int status;
        final String type;
        final String param;

        Refusal(int status, String type, String param, String message) {
            super(message, null, false, false);
            this.status = status;
            this.type = type;
            this.param = param;
        }
    }

    private void chat(Exchange ex, Slot slot) throws IOException {
        Script script = scripts.poll();
        ScriptKind kind = script == null ? null : script.kind();
        if (kind == ScriptKind.FAIL) {
            reply(ex, slot, script.status(), contentTypeOf(script.text()), script.text());
            return;
        }
        if (kind == ScriptKind.STALL) {
            boolean streamed = new String(ex.body(), StandardCharsets.UTF_8)
                    .replace(" ", "")
                    .contains("\"stream\":true");
            stalls.hold(ex, 200, streamed ? Map.of("Content-Type", "text/event-stream") : null);
            return;
        }
        Chat chat;
        try {
            chat = parse(ex.body());
        } catch (Refusal r) {
            reply(
                    ex,
                    slot,
                    r.status,
                    "application/json",
                    OpenAiChatShapes.error(r.getMessage(), r.type, r.param, r.status)
                            .toString());
            return;
        }
        List<String> pieces;
        String finish;
        if (kind == ScriptKind.ANSWER) {
            pieces = GeneratedText.exactPieces(script.text());
            finish = "stop";
        } else {
            pieces = GeneratedText.pieces(chat.prompt(), chat.seed(), seed, chat.maxTokens());
            finish = "length";
        }
        int cutAfter = kind == ScriptKind.CUT ? script.chunks() : -1;
        String id = "chatcmpl-" + HexFormat.of().formatHex(randomBytes(16));
        long created = System.currentTimeMillis() / 1000;
        int promptTokens = GeneratedText.words(chat.prompt());
        if (chat.stream()) {
            stream(ex, slot, chat, pieces, finish, promptTokens, id, created, cutAfter);
        } else {
            ObjectNode body = OpenAiChatShapes.completion(
                    id,
                    created,
                    chat.model(),
                    OpenAiChatShapes.assistantMessage(String.join("", pieces)),
                    finish,
                    promptTokens,
                    pieces.size());
            if (!tokenLatency.isZero() && !sleepNanos(tokenLatency.toNanos() * pieces.size())) {
                ex.abort();
                return;
            }
            byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
            slot.done();
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
    }

    private Chat parse(byte[] body) throws Refusal {
        JsonNode root;
        try {
            root = MAPPER.readTree(body);
        } catch (IOException e) {
            throw new Refusal(400, "BadRequestError", null, "The request body is not valid JSON.");
        }
        if (root == null || !root.isObject()) {
            throw new Refusal(400, "BadRequestError", null, "The request body must be a JSON object.");
        }
        String requested = root.path("model").isTextual() ? root.get("model").asText() : model;
        if (!requested.equals(model)) {
            throw new Refusal(404, "NotFoundError", "model", "The model `" + requested + "` does not exist.");
        }
        JsonNode messages = root.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw new Refusal(400, "BadRequestError", "messages", "messages: expected a non-empty list.");
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
        JsonNode max =
                root.hasNonNull("max_completion_tokens") ? root.get("max_completion_tokens") : root.get("max_tokens");
        int maxTokens = 16;
        if (max != null && !max.isNull()) {
            if (!max.isIntegralNumber() || !max.canConvertToInt() || max.asInt() < 1) {
                throw new Refusal(
                        400, "BadRequestError", "max_tokens", "max_tokens must be at least 1, got " + max + ".");
            }
            maxTokens = max.asInt();
        }
        JsonNode seedNode = root.get("seed");
        Long requestSeed = null;
        if (seedNode != null && !seedNode.isNull()) {
            if (!seedNode.isIntegralNumber()) {
                throw new Refusal(400, "BadRequestError", "seed", "seed: expected an integer.");
            }
            requestSeed = seedNode.asLong();
        }
        return new Chat(
                requested,
                prompt.toString(),
                maxTokens,
                requestSeed,
                root.path("stream").asBoolean(false),
                root.path("stream_options").path("include_usage").asBoolean(false));
    }

    private void stream(
            Exchange ex,
            Slot slot,
            Chat chat,
            List<String> pieces,
            String finish,
            int promptTokens,
            String id,
            long created,
            int cutAfter) {
        try {
            ex.startChunked(200, headers("text/event-stream; charset=utf-8"));
            event(ex, OpenAiChatShapes.roleChunk(id, created, chat.model()));
            for (int i = 0; i < pieces.size(); i++) {
                if (i == cutAfter) {
                    slot.done();
                    ex.reset();
                    return;
                }
                if (!tokenLatency.isZero() && !sleepNanos(tokenLatency.toNanos())) {
                    ex.abort();
                    return;
                }
                event(ex, OpenAiChatShapes.contentChunk(id, created, chat.model(), pieces.get(i)));
            }
            if (cutAfter >= 0) {
                slot.done();
                ex.reset();
                return;
            }
            event(ex, OpenAiChatShapes.finishChunk(id, created, chat.model(), finish));
            if (chat.includeUsage()) {
                event(ex, OpenAiChatShapes.usageChunk(id, created, chat.model(), promptTokens, pieces.size()));
            }
            slot.done();
            ex.writeChunk("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            ex.endChunked();
        } catch (IOException e) {
            stalls.clientGone(ex);
        }
    }

    private static void event(Exchange ex, ObjectNode chunk) throws IOException {
        ex.writeChunk(("data: " + chunk + "\n\n").getBytes(StandardCharsets.UTF_8));
    }

    // ---- responses ----

    private static Map<String, String> headers(String contentType) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Content-Type", contentType);
        headers.put(
                "Date",
                DateTimeFormatter.RFC_1123_DATE_TIME.format(Instant.now().atZone(ZoneOffset.UTC)));
        headers.put("Server", "Google Frontend");
        return headers;
    }

    private static void send(Exchange ex, int status, String contentType, String body) throws IOException {
        ex.sendFixed(status, headers(contentType), body.getBytes(StandardCharsets.UTF_8));
    }

    private static String contentTypeOf(String body) {
        return body.stripLeading().startsWith("{") ? "application/json" : "text/plain; charset=utf-8";
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

    /** Builds a {@link CloudRunEmulator}. */
    public static final class Builder {
        private String model = "gemma-3-4b";
        private GoogleTokenServer issuer;
        private String audience;
        private Duration coldStart = Duration.ZERO;
        private Duration holdLimit;
        private Integer startupFailureStatus;
        private String startupFailureBody;
        private Duration idleTimeout = Duration.ofMinutes(15);
        private int minInstances;
        private int maxInstances = 3;
        private int concurrency = 4;
        private Duration tokenLatency = Duration.ZERO;
        private long seed;

        private Builder() {}

        /**
         * The model the container serves (default {@code gemma-3-4b}): {@code /v1/models} lists it, answers name
         * it, and a request naming another gets vLLM's 404 {@code NotFoundError} "The model `X` does not exist.". A
         * request without {@code model} is served by it.
         */
        public Builder model(String id) {
            if (id == null || id.isBlank()) {
                throw new IllegalArgumentException("the model id must not be blank");
            }
            this.model = id;
            return this;
        }

        /**
         * Makes the service private: every request must carry {@code Authorization: Bearer <JWT>} (or {@code
         * X-Serverless-Authorization: Bearer <JWT>}) whose payload's {@code iss} is {@code issuer.issuer()}, whose
         * {@code aud} is the {@link #audience} and whose {@code exp} is ahead. A missing or malformed token (not
         * three base64url parts, a payload that is not JSON, another issuer, no {@code exp}) gets 401; a wrong
         * audience or an expired token 403. The bodies are HTML pages like Google's front end sends ("Your client
         * does not have permission to get URL ... from this server."; approximate). The signature is not verified,
         * so any JWT with those claims passes.
         */
        public Builder requireIdToken(GoogleTokenServer issuer) {
            this.issuer = Objects.requireNonNull(issuer, "issuer");
            return this;
        }

        /** The audience ID tokens must name (default: the service {@link CloudRunEmulator#url()}). */
        public Builder audience(String aud) {
            if (aud == null || aud.isBlank()) {
                throw new IllegalArgumentException("the audience must not be blank");
            }
            this.audience = aud;
            return this;
        }

        /**
         * How long an instance takes to start, container and model load included (default zero). The request
         * that starts an instance, and those that reserve its other slots meanwhile, wait that long.
         */
        public Builder coldStart(Duration startup) {
            this.coldStart = nonNegative(startup, "coldStart");
            return this;
        }

        /**
         * How long a request waits for a slot on a ready instance, its wait for a starting one included, before it
         * gets 429. Cloud Run waits up to the larger of 10 s and 3.5 times the average startup time; that is the
         * default here, from {@link #coldStart}.
         */
        public Builder holdLimit(Duration d) {
            this.holdLimit = nonNegative(d, "holdLimit");
            return this;
        }

        /**
         * What a request gets instead of 429 when its hold runs out while an instance is starting, such as 500
         * "The request was aborted because there was no available instance." (which users report while instances
         * start or fail to) or 503. The body is sent as {@code application/json} when it starts with <code>
         * {</code>, else as {@code text/plain}.
         */
        public Builder startupFailure(int status, String body) {
            if (status < 400 || status > 599) {
                throw new IllegalArgumentException("an error status is 400 to 599, got " + status);
            }
            this.startupFailureStatus = status;
            this.startupFailureBody = Objects.requireNonNull(body);
            return this;
        }

        /**
         * How long an instance stays without requests before it is removed (default 15 minutes, about what Cloud
         * Run keeps idle instances). Min instances are never removed.
         */
        public Builder idleTimeout(Duration d) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("idleTimeout must be positive, got " + d);
            }
            this.idleTimeout = d;
            return this;
        }

        /** Instances started, ready, with the emulator and never removed (default 0: the service scales to zero). */
        public Builder minInstances(int n) {
            if (n < 0) {
                throw new IllegalArgumentException("minInstances must not be negative, got " + n);
            }
            this.minInstances = n;
            return this;
        }

        /** The most instances alive at once (default 3); at least {@link #minInstances}. */
        public Builder maxInstances(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("maxInstances must be at least 1, got " + n);
            }
            this.maxInstances = n;
            return this;
        }

        /**
         * Requests one instance serves at once (default 4); more wait for a free slot, counted against the {@link
         * #holdLimit}, or start another instance while there are fewer than {@link #maxInstances}.
         */
        public Builder concurrency(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("concurrency must be at least 1, got " + n);
            }
            this.concurrency = n;
            return this;
        }

        /** The wait before each streamed word (default none); a blocking answer waits words times this. */
        public Builder tokenLatency(Duration d) {
            this.tokenLatency = nonNegative(d, "tokenLatency");
            return this;
        }

        /**
         * The seed of generated text (default 0). Without a script a chat request answers words from a fixed list,
         * chosen by its prompt text (all message contents), its own {@code seed} if any, and this seed; as many as
         * {@code max_completion_tokens} or {@code max_tokens} say (16 when neither does), finish reason {@code
         * length}. Prompt tokens are the prompt's whitespace words.
         */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Starts the emulator on a free loopback port, with its min instances ready. */
        public CloudRunEmulator start() {
            if (minInstances > maxInstances) {
                throw new IllegalArgumentException(
                        "minInstances (" + minInstances + ") exceeds maxInstances (" + maxInstances + ")");
            }
            try {
                return new CloudRunEmulator(this);
            } catch (IOException e) {
                throw new IllegalStateException("cannot start the Cloud Run emulator: " + e.getMessage(), e);
            }
        }

        private static Duration nonNegative(Duration d, String name) {
            if (d == null || d.isNegative()) {
                throw new IllegalArgumentException(name + " must not be negative, got " + d);
            }
            return d;
        }
    }
}
