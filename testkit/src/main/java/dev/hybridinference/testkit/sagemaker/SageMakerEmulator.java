package dev.hybridinference.testkit.sagemaker;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hybridinference.testkit.internal.LoopbackHttp;
import dev.hybridinference.testkit.internal.LoopbackHttp.Exchange;
import dev.hybridinference.testkit.internal.Stalls;
import dev.hybridinference.testkit.sagemaker.Containers.Answer;
import dev.hybridinference.testkit.sagemaker.Containers.BadBody;
import dev.hybridinference.testkit.sagemaker.Containers.Call;
import dev.hybridinference.testkit.sagemaker.Containers.StreamPiece;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
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
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An in-process SageMaker Runtime endpoint on loopback (plain HTTP/1.1) that speaks the service's real bytes, so
 * that the AWS SDK's {@code SageMakerRuntimeClient} and {@code SageMakerRuntimeAsyncClient} work against it
 * through {@code endpointOverride(emulator.endpoint())}.
 *
 * <p>Routes: {@code POST /endpoints/{name}/invocations} (InvokeEndpoint: the container's body as it is) and
 * {@code POST /endpoints/{name}/invocations-response-stream} (InvokeEndpointWithResponseStream: {@code
 * application/vnd.amazon.eventstream} frames, each carrying a slice of the container's streamed body as a
 * {@code PayloadPart}, the stream ending with the HTTP body). Any other route answers 404 {@code
 * UnknownOperationException}. Errors carry {@code x-amzn-ErrorType} (the code, then {@code :} and a namespace,
 * as AWS sends it), {@code x-amzn-RequestId} and a JSON body with {@code message}; every response carries
 * {@code x-amzn-RequestId}.
 *
 * <p>Behind the routes sits one emulated inference {@link Container}; it answers scripted text ({@link
 * #answerNext}), a scripted tool call ({@link #answerToolCallNext}) or deterministic generated words (see
 * {@link Builder#seed}). Around it the emulator plays the parts of SageMaker that a client meets: SigV4
 * presence, endpoint, variant and inference-component checks, serverless cold starts, a concurrency limit,
 * stateful sessions, and scripted failures, stalls, cut connections, corrupt frames and in-stream errors.
 *
 * <p>Error messages and some header values imitate the service's; where the real wording is not known they
 * are approximate, as each method says. For tests, examples and benchmarks; not a model. Thread-safe; close
 * it to stop.
 */
public final class SageMakerEmulator implements AutoCloseable {
    /** The account id in error messages and ARNs. */
    public static final String ACCOUNT_ID = "123456789012";

    /** The region in error messages and ARNs. */
    public static final String REGION = "us-east-1";

    private static final String CORAL_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.sagemaker/";
    private static final Pattern ROUTE =
            Pattern.compile("/endpoints/([^/]+)/(invocations|invocations-response-stream)");
    private static final Pattern AUTHORIZATION =
            Pattern.compile("AWS4-HMAC-SHA256 Credential=[^/\\s,]+/\\d{8}/[^/\\s,]+/sagemaker/aws4_request,\\s*"
                    + "SignedHeaders=[^,\\s]+,\\s*Signature=[0-9a-f]{64}");
    private static final Pattern AMZ_DATE = Pattern.compile("\\d{8}T\\d{6}Z");
    private static final int MAX_RECORDED = 1000;
    private static final String NEW_SESSION = "NEW_SESSION";
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** The emulated inference container behind the endpoint: what bodies it takes and answers with. */
    public enum Container {
        /**
         * vLLM (or TGI) serving the OpenAI messages API: a body with {@code messages} gets a {@code
         * chat.completion}; streamed, OpenAI chunks as server-sent events ({@code data: {...}}, blank line) ending
         * with {@code data: [DONE]}, and a usage chunk ({@code choices: []}) first when the request sets {@code
         * stream_options.include_usage}. A body with {@code inputs} is refused as vLLM refuses it (424
         * ModelError, original status 400).
         */
        MESSAGES_SSE,
        /**
         * DJL LMI serving the messages API: a body with {@code messages} gets a {@code chat.completion};
         * streamed, one {@code chat.completion.chunk} JSON object per line with no {@code data:} prefix, no
         * {@code [DONE]} and never a usage chunk. It is the same container as {@link #LMI_JSONLINES}, so a body
         * with {@code inputs} gets LMI's generate answer.
         */
        MESSAGES_JSONLINES,
        /**
         * Hugging Face TGI: a body {@code {inputs, parameters: {max_new_tokens, details, seed, ...}, stream}}
         * gets {@code [{"generated_text": ...}]}, with {@code details} ({@code finish_reason} {@code length} or
         * {@code eos_token}, {@code generated_tokens}, {@code seed}) when {@code parameters.details} is true;
         * streamed, one event per token, {@code data:{"index":n,"token":{"id","text","logprob","special"},
         * "generated_text":null,"details":null}} (no space after {@code data:}), the last one carrying {@code
         * generated_text} and {@code details}. A body with {@code messages} is served as by {@link #MESSAGES_SSE}.
         */
        TGI,
        /**
         * DJL LMI's generate API: a body {@code {inputs, parameters, stream}} gets {@code {"generated_text":
         * ...}}, with {@code details} when {@code parameters.details} is true; streamed, JSON lines {@code
         * {"token":{"id","text","log_prob"}}}, the last adding {@code generated_text} and {@code details}
         * ({@code finish_reason}, {@code generated_tokens}, {@code inputs}). A body with {@code messages} is
         * served as by {@link #MESSAGES_JSONLINES}.
         */
        LMI_JSONLINES
    }

    /** How a cold endpoint treats the calls that arrive while it starts. */
    public enum ColdStartMode {
        /** Answer 429 {@code ModelNotReadyException} until the start delay has passed, as Serverless Inference does. */
        NOT_READY,
        /** Hold each call until the start delay has passed, then serve it. */
        HOLD
    }

    /**
     * One request as it arrived: method, decoded path, headers by lower-cased name (repeated headers joined
     * with commas) and the body.
     *
     * @param method the HTTP method
     * @param path the path without the query string
     * @param headers the headers by lower-cased name
     * @param body the body bytes
     */
    public record RecordedRequest(String method, String path, Map<String, String> headers, byte[] body) {
        /** Copies the headers and the body. */
        public RecordedRequest {
            headers = Map.copyOf(headers);
            body = body.clone();
        }

        /** The value of a header, by its name in any case, or null. */
        public String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }

        /** The body decoded as UTF-8. */
        public String bodyUtf8() {
            return new String(body, StandardCharsets.UTF_8);
        }

        /** A copy of the body. */
        @Override
        public byte[] body() {
            return body.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof RecordedRequest r
                    && method.equals(r.method)
                    && path.equals(r.path)
                    && headers.equals(r.headers)
                    && Arrays.equals(body, r.body);
        }

        @Override
        public int hashCode() {
            return Objects.hash(method, path, headers, Arrays.hashCode(body));
        }

        @Override
        public String toString() {
            return method + " " + path + " " + headers + " (" + body.length + " bytes)";
        }
    }

    /**
     * A scripted error response: status, error code (sent in {@code x-amzn-ErrorType}) and message (sent as
     * {@code {"message": ...}}). The factories use the codes the AWS SDK maps to SageMaker Runtime's modelled
     * exceptions and send them with the namespace suffix AWS adds ({@code
     * ValidationError:http://internal.amazon.com/coral/com.amazon.sagemaker/}); the SDK keeps the text before
     * the colon.
     */
    public static final class Failure {
        private final int status;
        private final String errorType;
        private final String headerValue;
        private final String message;
        private final Integer originalStatus;
        private final String originalMessage;

        private Failure(
                int status,
                String errorType,
                String headerValue,
                String message,
                Integer originalStatus,
                String originalMessage) {
            this.status = status;
            this.errorType = errorType;
            this.headerValue = headerValue;
            this.message = message;
            this.originalStatus = originalStatus;
            this.originalMessage = originalMessage;
        }

        private static Failure coded(int status, String code, String message) {
            return new Failure(status, code, code + CORAL_NAMESPACE, Objects.requireNonNull(message), null, null);
        }

        /** 400 {@code ValidationError}: the SDK's {@code ValidationErrorException}. */
        public static Failure validation(String message) {
            return coded(400, "ValidationError", message);
        }

        /**
         * 424 {@code ModelError}: the container answered {@code originalStatus} with {@code originalMessage}. The
         * body adds {@code OriginalStatusCode}, {@code OriginalMessage} and a {@code LogStreamArn}, which the
         * SDK's {@code ModelErrorException} exposes; the message imitates SageMaker's "Received client error
         * (400) from primary with message ..." (approximate wording).
         */
        public static Failure modelError(int originalStatus, String originalMessage) {
            return new Failure(
                    424,
                    "ModelError",
                    "ModelError" + CORAL_NAMESPACE,
                    null,
                    originalStatus,
                    Objects.requireNonNull(originalMessage));
        }

        /** 429 {@code ModelNotReadyException}, which the SDK retries by default as throttling. */
        public static Failure modelNotReady(String message) {
            return coded(429, "ModelNotReadyException", message);
        }

        /**
         * 400 {@code ThrottlingException}, as AWS JSON services send throttling; the SDK has no modelled class for
         * it in SageMaker Runtime (a generic {@code SageMakerRuntimeException} with that error code) and retries
         * it by code. AWS does not document it for SageMaker Runtime; users report it (with {@code {"message":
         * null}}) when an endpoint's concurrency is exceeded. {@code message} may be null to send exactly that.
         */
        public static Failure throttling(String message) {
            return new Failure(
                    400, "ThrottlingException", "ThrottlingException" + CORAL_NAMESPACE, message, null, null);
        }

        /** 500 {@code InternalFailure}: the SDK's {@code InternalFailureException}. */
        public static Failure internal(String message) {
            return coded(500, "InternalFailure", message);
        }

        /** 503 {@code ServiceUnavailable}: the SDK's {@code ServiceUnavailableException}. */
        public static Failure serviceUnavailable(String message) {
            return coded(503, "ServiceUnavailable", message);
        }

        /** 530 {@code InternalDependencyException}, which the SDK does not retry by default. */
        public static Failure dependency(String message) {
            return coded(530, "InternalDependencyException", message);
        }

        /** Any status with {@code errorType} sent verbatim in {@code x-amzn-ErrorType} (add a namespace or not). */
        public static Failure of(int status, String errorType, String message) {
            if (status < 400 || status > 599) {
                throw new IllegalArgumentException("an error status is 400 to 599, got " + status);
            }
            int colon = errorType.indexOf(':');
            String code = colon >= 0 ? errorType.substring(0, colon) : errorType;
            return new Failure(status, code, errorType, Objects.requireNonNull(message), null, null);
        }

        /** The HTTP status. */
        public int status() {
            return status;
        }

        /** The error code, without any namespace: what the SDK reports as the error code. */
        public String errorType() {
            return errorType;
        }

        /**
         * The message: null for a model error, whose message names the endpoint it is sent from, and for a
         * throttling failure made without one.
         */
        public String message() {
            return message;
        }

        private String messageFor(String endpointName) {
            if (originalStatus == null) {
                return message;
            }
            return "Received " + (originalStatus >= 500 ? "server" : "client") + " error (" + originalStatus
                    + ") from primary with message \"" + originalMessage + "\". See https://" + REGION
                    + ".console.aws.amazon.com/cloudwatch/home?region=" + REGION
                    + "#logEventViewer:group=/aws/sagemaker/Endpoints/" + endpointName + " in account " + ACCOUNT_ID
                    + " for more information.";
        }

        @Override
        public String toString() {
            return "Failure[" + status + " " + errorType + ": "
                    + (message != null ? message : originalStatus + " " + originalMessage) + "]";
        }
    }

    private enum ScriptKind {
        ANSWER,
        TOOL_CALL,
        FAIL,
        STALL,
        CUT,
        TRUNCATE,
        CORRUPT,
        STREAM_ERROR
    }

    private record Script(
            ScriptKind kind,
            String text,
            String toolName,
            Failure failure,
            int parts,
            String exceptionType,
            String errorCode,
            String message) {
        static Script of(ScriptKind kind) {
            return new Script(kind, null, null, null, -1, null, null, null);
        }
    }

    private static final class Session {
        final Instant expires;
        volatile boolean closing;

        Session(Instant expires) {
            this.expires = expires;
        }
    }

    /** Thrown inside a stream to stop it once a scripted end (cut, corrupt frame, error) has been sent. */
    private static final class StreamEnded extends Exception {
        StreamEnded() {
            super(null, null, false, false);
        }
    }

    private final LoopbackHttp http;
    private final String endpointName;
    private final String variant;
    private final Set<String> inferenceComponents;
    private final Container container;
    private final int partSize;
    private final Duration tokenLatency;
    private final Duration coldStartDelay;
    private final ColdStartMode coldStartMode;
    private final Duration idleTimeout;
    private final Semaphore permits;
    private final boolean queueAboveLimit;
    private final long seed;
    private final boolean sessionsEnabled;
    private final Duration sessionTtl;
    private final boolean requireSigV4;

    private final ConcurrentLinkedQueue<Script> scripts = new ConcurrentLinkedQueue<>();
    private final AtomicLong invocations = new AtomicLong();
    private final AtomicLong coldStarts = new AtomicLong();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger maxInFlight = new AtomicInteger();
    private final Stalls stalls;
    private final Deque<RecordedRequest> recorded = new ArrayDeque<>();
    private final Map<String, Session> sessions = new ConcurrentHashMap<>();

    private final Object coldLock = new Object();
    private boolean cold;
    private boolean starting;
    private long readyAtNanos;
    private long lastActivityNanos = System.nanoTime();

    private SageMakerEmulator(Builder b) throws IOException {
        this.endpointName = b.endpointName;
        this.variant = b.variant;
        this.inferenceComponents = b.inferenceComponents;
        this.container = b.container;
        this.partSize = b.partSize;
        this.tokenLatency = b.tokenLatency;
        this.coldStartDelay = b.coldStartDelay;
        this.coldStartMode = b.coldStartMode;
        this.idleTimeout = b.idleTimeout;
        this.queueAboveLimit = b.queueAboveLimit;
        this.permits = b.maxConcurrency > 0 ? new Semaphore(b.maxConcurrency, true) : null;
        this.seed = b.seed;
        this.sessionsEnabled = b.sessionsEnabled;
        this.sessionTtl = b.sessionTtl;
        this.requireSigV4 = b.requireSigV4;
        this.cold = b.startCold;
        this.http = new LoopbackHttp(this::handle, "sagemaker-emulator");
        this.stalls = new Stalls(http);
    }

    /** A builder for an endpoint named {@code test-endpoint} with variant {@code AllTraffic}, {@link Container#MESSAGES_SSE}. */
    public static Builder builder() {
        return new Builder();
    }

    /** The base URI to give the SDK's {@code endpointOverride}, such as {@code http://127.0.0.1:41234}. */
    public URI endpoint() {
        return URI.create("http://" + http.address().getHostAddress() + ":" + http.port());
    }

    /** The name of the endpoint served. */
    public String endpointName() {
        return endpointName;
    }

    /** Stops the server; stalled and held calls end with their connections closed. */
    @Override
    public void close() {
        http.close();
    }

    // ---- scripts ----

    /**
     * The next call that reaches the container (after those already scripted) answers exactly {@code text}: its
     * whitespace-separated words re-joined with single spaces, one word per streamed token, each after the
     * first with its leading space. Finish reason {@code stop} (chat) or {@code eos_token} (generate), whatever
     * the request's token limit.
     */
    public void answerNext(String text) {
        scripts.add(new Script(ScriptKind.ANSWER, Objects.requireNonNull(text), null, null, -1, null, null, null));
    }

    /**
     * The next call (after those already scripted) answers a call of tool {@code name} with {@code
     * argumentsJson}: in a chat completion as {@code message.tool_calls} (content null), streamed as two chunks
     * that each carry half of the arguments, with finish reason {@code tool_calls}. A generate-style request
     * that takes it answers the arguments as its text.
     */
    public void answerToolCallNext(String name, String argumentsJson) {
        scripts.add(new Script(
                ScriptKind.TOOL_CALL,
                Objects.requireNonNull(argumentsJson),
                Objects.requireNonNull(name),
                null,
                -1,
                null,
                null,
                null));
    }

    /** The next call (after those already scripted) gets the error response {@code failure}. */
    public void failNext(Failure failure) {
        scripts.add(new Script(ScriptKind.FAIL, null, null, Objects.requireNonNull(failure), -1, null, null, null));
    }

    /**
     * The next call (after those already scripted) stalls: a blocking call never gets its response headers, a
     * streaming call gets its 200 and headers and then nothing more. It is held until the client closes the
     * connection (counted in {@link #disconnects()}) or the emulator closes.
     */
    public void stallNext() {
        scripts.add(Script.of(ScriptKind.STALL));
    }

    /**
     * The next call (after those already scripted) is cut abruptly: a stream after {@code parts} PayloadPart
     * frames (or at its end, if it has fewer) by resetting the connection (TCP RST) without the body's last
     * chunk, which the AWS SDK's Netty client reports as an {@code SdkClientException} ("Connection reset")
     * after delivering the parts; a blocking answer by sending half of the body it declared in {@code
     * Content-Length} and closing the connection.
     */
    public void cutNextAfter(int parts) {
        scripts.add(new Script(ScriptKind.CUT, null, null, null, nonNegative(parts), null, null, null));
    }

    /**
     * The next call (after those already scripted) is truncated quietly: a stream after {@code parts}
     * PayloadPart frames (or at its end, if it has fewer) by an orderly close of the connection (FIN) without
     * the chunked body's last chunk; a blocking answer as with {@link #cutNextAfter}. The AWS SDK's Netty
     * client (2.40.2, HTTP/1.1) reports such a stream as completed normally, so only the missing end of the
     * container's stream ({@code [DONE]}, a finish reason, the last line's {@code generated_text}) shows it.
     */
    public void truncateNextAfter(int parts) {
        scripts.add(new Script(ScriptKind.TRUNCATE, null, null, null, nonNegative(parts), null, null, null));
    }

    /**
     * The next streaming call (after those already scripted) sends {@code parts} good PayloadPart frames (or all
     * it has, if fewer), then one whose message CRC is wrong, and ends the body. A blocking call that takes it
     * gets a 200 whose body is the first half of its JSON, which does not parse.
     */
    public void corruptNextAfter(int parts) {
        scripts.add(new Script(ScriptKind.CORRUPT, null, null, null, nonNegative(parts), null, null, null));
    }

    /**
     * The next streaming call (after those already scripted) sends {@code parts} PayloadPart frames (or all it
     * has, if fewer), then a modelled exception frame ({@code :message-type=exception}, {@code
     * :exception-type=} {@code exceptionType}, such as {@code ModelStreamError} or {@code InternalStreamFailure},
     * payload {@code {"Message":..,"ErrorCode":..}}) and ends the body normally. A blocking call that takes it
     * gets 424 ModelError with original status 500 and {@code message}.
     */
    public void streamErrorNextAfter(int parts, String exceptionType, String errorCode, String message) {
        scripts.add(new Script(
                ScriptKind.STREAM_ERROR,
                null,
                null,
                null,
                nonNegative(parts),
                Objects.requireNonNull(exceptionType),
                errorCode,
                Objects.requireNonNull(message)));
    }

    private static int nonNegative(int parts) {
        if (parts < 0) {
            throw new IllegalArgumentException("parts must not be negative, got " + parts);
        }
        return parts;
    }

    // ---- state ----

    /** Requests that reached an endpoint route, whatever their outcome (refused ones included). */
    public long invocations() {
        return invocations.get();
    }

    /** Cold starts begun: after {@link #scaleToZero()}, the idle timeout, or {@link Builder#startCold}. */
    public long coldStarts() {
        return coldStarts.get();
    }

    /**
     * Requests the model is serving now: those past the cold start and the concurrency limit, not those held
     * or queued before them.
     */
    public int inFlight() {
        return inFlight.get();
    }

    /** The most requests {@link #inFlight()} has counted at once. */
    public int maxInFlightSeen() {
        return maxInFlight.get();
    }

    /** Calls that have stalled so far. */
    public long stallsStarted() {
        return stalls.started();
    }

    /** Calls stalled now. */
    public int stalledNow() {
        return stalls.now();
    }

    /**
     * Calls that ended because the client closed the connection: stalls the client gave up on, and streams
     * whose writes failed.
     */
    public long disconnects() {
        return stalls.disconnects();
    }

    /** Every request so far, in order of arrival; only the last 1000 are kept. */
    public List<RecordedRequest> requests() {
        synchronized (recorded) {
            return List.copyOf(recorded);
        }
    }

    /** The endpoint scales to zero: the next call begins a cold start. */
    public void scaleToZero() {
        synchronized (coldLock) {
            cold = true;
            starting = false;
        }
    }

    /** The session ids open now (created by {@code NEW_SESSION}, not yet expired or closed). */
    public Set<String> sessions() {
        Instant now = Instant.now();
        Set<String> open = new LinkedHashSet<>();
        sessions.forEach((id, s) -> {
            if (s.expires.isAfter(now)) {
                open.add(id);
            }
        });
        return open;
    }

    /**
     * The session {@code id} ends: the next call that names it is served with the response header {@code
     * X-Amzn-SageMaker-Closed-Session-Id: id}, and after that the id is unknown.
     *
     * @throws IllegalArgumentException when no open session has that id
     */
    public void closeSession(String id) {
        Session s = sessions.get(id);
        if (s == null) {
            throw new IllegalArgumentException("no open session " + id + "; open: " + sessions.keySet());
        }
        s.closing = true;
    }

    // ---- request handling ----

    private void handle(Exchange ex) throws IOException {
        record(ex);
        String requestId = UUID.randomUUID().toString();
        Matcher route = ROUTE.matcher(ex.path());
        if (!route.matches() || !ex.method().equals("POST")) {
            sendError(
                    ex,
                    requestId,
                    Failure.of(404, "UnknownOperationException", "Unknown operation " + ex.method() + " " + ex.path()),
                    null);
            return;
        }
        invocations.incrementAndGet();
        String name = route.group(1);
        boolean streaming = route.group(2).equals("invocations-response-stream");

        Failure refused = checkSignature(ex);
        if (refused == null) {
            refused = checkTarget(ex, name);
        }
        String sessionHeader = ex.header("x-amzn-sagemaker-session-id");
        if (refused == null && sessionsEnabled && sessionHeader != null) {
            refused = checkSession(sessionHeader, streaming);
        }
        if (refused != null) {
            sendError(ex, requestId, refused, name);
            return;
        }

        long wait = coldStartWait();
        if (wait > 0) {
            if (coldStartMode == ColdStartMode.NOT_READY) {
                sendError(
                        ex,
                        requestId,
                        Failure.modelNotReady("Model is not ready for invocation yet. Please retry after some time."),
                        name);
                return;
            }
            if (!sleepNanos(wait)) {
                ex.abort();
                return;
            }
        }

        boolean permitted = false;
        if (permits != null) {
            if (queueAboveLimit) {
                try {
                    permits.acquire();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    ex.abort();
                    return;
                }
            } else if (!permits.tryAcquire()) {
                sendError(ex, requestId, Failure.throttling(null), name);
                return;
            }
            permitted = true;
        }
        maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
        try {
            serve(ex, requestId, name, streaming, sessionHeader);
        } finally {
            inFlight.decrementAndGet();
            if (permitted) {
                permits.release();
            }
            synchronized (coldLock) {
                lastActivityNanos = System.nanoTime();
            }
        }
    }

    private void record(Exchange ex) {
        RecordedRequest r = new RecordedRequest(ex.method(), ex.path(), ex.headers(), ex.body());
        synchronized (recorded) {
            recorded.addLast(r);
            while (recorded.size() > MAX_RECORDED) {
                recorded.removeFirst();
            }
        }
    }

    /** The SigV4 checks: presence and shape of the Authorization header and X-Amz-Date; no signature maths. */
    private Failure checkSignature(Exchange ex) {
        if (!requireSigV4) {
            return null;
        }
        String authorization = ex.header("authorization");
        if (authorization == null || authorization.isBlank()) {
            return Failure.of(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
        }
        if (!AUTHORIZATION.matcher(authorization.trim()).matches()) {
            return Failure.of(
                    403,
                    "InvalidSignatureException",
                    authorization.contains("/aws4_request")
                            ? "Credential should be scoped to correct service: 'sagemaker'."
                            : "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"
                                    + " of an AWS4-HMAC-SHA256 signature.");
        }
        String date = ex.header("x-amz-date");
        if (date == null || !AMZ_DATE.matcher(date.trim()).matches()) {
            return Failure.of(
                    403,
                    "InvalidSignatureException",
                    "Authorization header requires existence of a valid 'X-Amz-Date' header.");
        }
        return null;
    }

    /** Endpoint name, target variant and inference component. Wording approximate. */
    private Failure checkTarget(Exchange ex, String name) {
        if (!name.equals(endpointName)) {
            return Failure.validation("Endpoint " + name + " of account " + ACCOUNT_ID + " not found.");
        }
        String target = ex.header("x-amzn-sagemaker-target-variant");
        if (target != null && !target.equals(variant)) {
            return Failure.validation(
                    "Target variant " + target + " not found for endpoint " + name + " of account " + ACCOUNT_ID + ".");
        }
        String component = ex.header("x-amzn-sagemaker-inference-component");
        if (inferenceComponents.isEmpty()) {
            if (component != null) {
                return Failure.validation("Inference component " + component + " not found for endpoint " + name
                        + " of account " + ACCOUNT_ID + ".");
            }
        } else if (component == null) {
            return Failure.validation("Inference Component Name header is required for endpoints to which you plan"
                    + " to deploy inference components. Please include Inference Component Name header or consider"
                    + " using SageMaker models.");
        } else if (!inferenceComponents.contains(component)) {
            return Failure.validation("Inference component " + component + " not found for endpoint " + name
                    + " of account " + ACCOUNT_ID + ".");
        }
        return null;
    }

    /** Session checks, wording approximate. */
    private Failure checkSession(String id, boolean streaming) {
        if (id.equals(NEW_SESSION)) {
            return streaming
                    ? Failure.validation(
                            "NEW_SESSION is not supported by InvokeEndpointWithResponseStream; create the session"
                                    + " with InvokeEndpoint.")
                    : null;
        }
        Session s = sessions.get(id);
        if (s == null || !s.expires.isAfter(Instant.now())) {
            sessions.remove(id);
            return Failure.validation("Session " + id + " is not valid: it does not exist, has expired or is closed.");
        }
        return null;
    }

    /** Nanoseconds a call must wait for a cold start to finish (0 when warm); begins a cold start when cold. */
    private long coldStartWait() {
        synchronized (coldLock) {
            long now = System.nanoTime();
            if (!cold
                    && !starting
                    && idleTimeout != null
                    && inFlight.get() == 0
                    && now - lastActivityNanos > idleTimeout.toNanos()) {
                cold = true;
            }
            lastActivityNanos = now;
            if (cold) {
                cold = false;
                starting = true;
                readyAtNanos = now + coldStartDelay.toNanos();
                coldStarts.incrementAndGet();
            }
            if (starting) {
                long left = readyAtNanos - now;
                if (left <= 0) {
                    starting = false;
                    return 0;
                }
                return left;
            }
            return 0;
        }
    }

    private void serve(Exchange ex, String requestId, String name, boolean streaming, String sessionHeader)
            throws IOException {
        Script script = scripts.poll();
        ScriptKind kind = script == null ? null : script.kind();
        if (kind == ScriptKind.FAIL) {
            sendError(ex, requestId, script.failure(), name);
            return;
        }
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("x-amzn-RequestId", requestId);
        headers.put("Date", httpDate());
        headers.put("x-Amzn-Invoked-Production-Variant", variant);
        String attributes = ex.header("x-amzn-sagemaker-custom-attributes");
        if (attributes != null) {
            headers.put("X-Amzn-SageMaker-Custom-Attributes", attributes);
        }
        if (streaming) {
            headers.put("Content-Type", "application/vnd.amazon.eventstream");
            headers.put("X-Amzn-SageMaker-Content-Type", Containers.streamContentType(container));
        } else {
            headers.put("Content-Type", "application/json");
        }
        if (kind == ScriptKind.STALL) {
            stalls.hold(ex, 200, streaming ? headers : null);
            return;
        }
        if (kind == ScriptKind.STREAM_ERROR && !streaming) {
            sendError(ex, requestId, Failure.modelError(500, script.message()), name);
            return;
        }
        Call call;
        try {
            call = Containers.parse(container, ex.body(), name);
        } catch (BadBody e) {
            sendError(ex, requestId, Failure.modelError(400, Containers.tgiError(e.getMessage(), "validation")), name);
            return;
        }
        if (!streaming && !acceptsJson(ex.header("accept"))) {
            sendError(
                    ex,
                    requestId,
                    Failure.modelError(
                            406,
                            Containers.tgiError("Accept " + ex.header("accept") + " is not supported", "validation")),
                    name);
            return;
        }
        Answer answer;
        if (kind == ScriptKind.ANSWER) {
            answer = Answer.text(script.text());
        } else if (kind == ScriptKind.TOOL_CALL) {
            answer = Answer.toolCall(script.toolName(), script.text());
        } else {
            answer = Containers.generate(call.prompt(), call.seed(), seed, call.maxTokens());
        }
        if (sessionsEnabled && sessionHeader != null) {
            if (sessionHeader.equals(NEW_SESSION)) {
                String id = UUID.randomUUID().toString();
                Instant expires = Instant.now().plus(sessionTtl).truncatedTo(ChronoUnit.MILLIS);
                sessions.put(id, new Session(expires));
                headers.put("X-Amzn-SageMaker-New-Session-Id", id + "; Expires=" + expires);
            } else {
                Session s = sessions.get(sessionHeader);
                if (s != null && s.closing) {
                    sessions.remove(sessionHeader);
                    headers.put("X-Amzn-SageMaker-Closed-Session-Id", sessionHeader);
                }
            }
        }
        String id = "chatcmpl-" + requestId.replace("-", "").substring(0, 24);
        long created = System.currentTimeMillis() / 1000;
        if (streaming) {
            stream(ex, headers, Containers.stream(container, call, answer, id, created), script);
        } else {
            byte[] body = Containers.blockingBody(container, call, answer, id, created);
            if (!tokenLatency.isZero() && !sleepNanos(tokenLatency.toNanos() * answer.completionTokens())) {
                ex.abort();
                return;
            }
            if (kind == ScriptKind.CUT || kind == ScriptKind.TRUNCATE) {
                ex.sendTruncated(200, headers, body, body.length / 2);
            } else if (kind == ScriptKind.CORRUPT) {
                ex.sendFixed(200, headers, Arrays.copyOf(body, body.length / 2));
            } else {
                ex.sendFixed(200, headers, body);
            }
        }
    }

    private static boolean acceptsJson(String accept) {
        if (accept == null || accept.isBlank()) {
            return true;
        }
        String a = accept.toLowerCase(Locale.ROOT);
        return a.contains("*/*") || a.contains("application/*") || a.contains("json");
    }

    private void stream(Exchange ex, Map<String, String> headers, List<StreamPiece> pieces, Script script)
            throws IOException {
        PartWriter writer = new PartWriter(ex, script);
        try {
            ex.startChunked(200, headers);
            for (StreamPiece piece : pieces) {
                if (piece.token() && !tokenLatency.isZero() && !sleepNanos(tokenLatency.toNanos())) {
                    ex.abort();
                    return;
                }
                writer.write(piece.bytes());
            }
            writer.finish();
        } catch (StreamEnded e) {
            // the scripted end has been sent
        } catch (IOException e) {
            stalls.clientGone(ex);
        }
    }

    /** Slices the container's streamed bytes into PayloadPart frames and plays a scripted end. */
    private final class PartWriter {
        private final Exchange ex;
        private final ScriptKind end;
        private final int endAfter;
        private final Script script;
        private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
        private int partsSent;

        PartWriter(Exchange ex, Script script) {
            this.ex = ex;
            this.script = script;
            ScriptKind kind = script == null ? null : script.kind();
            boolean scriptedEnd = kind == ScriptKind.CUT
                    || kind == ScriptKind.TRUNCATE
                    || kind == ScriptKind.CORRUPT
                    || kind == ScriptKind.STREAM_ERROR;
            this.end = scriptedEnd ? kind : null;
            this.endAfter = scriptedEnd ? script.parts() : -1;
        }

        void write(byte[] bytes) throws IOException, StreamEnded {
            if (partSize == 0) {
                part(bytes);
                return;
            }
            pending.writeBytes(bytes);
            while (pending.size() >= partSize) {
                byte[] all = pending.toByteArray();
                pending.reset();
                pending.write(all, partSize, all.length - partSize);
                part(Arrays.copyOf(all, partSize));
            }
        }

        void finish() throws IOException, StreamEnded {
            if (pending.size() > 0) {
                byte[] rest = pending.toByteArray();
                pending.reset();
                part(rest);
            }
            if (end != null) {
                playEnd(new byte[0]);
            }
            ex.endChunked();
        }

        private void part(byte[] bytes) throws IOException, StreamEnded {
            if (end != null && partsSent == endAfter) {
                playEnd(bytes);
            }
            ex.writeChunk(EventStreamFrames.payloadPart(bytes));
            partsSent++;
        }

        private void playEnd(byte[] next) throws IOException, StreamEnded {
            switch (end) {
                case CUT -> ex.reset();
                case TRUNCATE -> ex.abort();
                case CORRUPT -> {
                    byte[] frame = EventStreamFrames.payloadPart(
                            next.length > 0 ? next : "corrupt".getBytes(StandardCharsets.UTF_8));
                    frame[frame.length - 1] ^= (byte) 0x5A;
                    ex.writeChunk(frame);
                    ex.endChunked();
                }
                case STREAM_ERROR -> {
                    ObjectNode payload = MAPPER.createObjectNode();
                    payload.put("Message", script.message());
                    if (script.errorCode() != null) {
                        payload.put("ErrorCode", script.errorCode());
                    }
                    ex.writeChunk(
                            EventStreamFrames.exception(script.exceptionType(), MAPPER.writeValueAsBytes(payload)));
                    ex.endChunked();
                }
                default -> throw new IllegalStateException(String.valueOf(end));
            }
            throw new StreamEnded();
        }
    }

    private void sendError(Exchange ex, String requestId, Failure failure, String name) throws IOException {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("message", failure.messageFor(name));
        if (failure.originalStatus != null) {
            body.put("OriginalStatusCode", failure.originalStatus);
            body.put("OriginalMessage", failure.originalMessage);
            body.put(
                    "LogStreamArn",
                    "arn:aws:logs:" + REGION + ":" + ACCOUNT_ID + ":log-group:/aws/sagemaker/Endpoints/" + name);
        }
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("x-amzn-RequestId", requestId);
        headers.put("x-amzn-ErrorType", failure.headerValue);
        headers.put("Date", httpDate());
        headers.put("Content-Type", "application/json");
        ex.sendFixed(failure.status, headers, MAPPER.writeValueAsBytes(body));
    }

    private static String httpDate() {
        return DateTimeFormatter.RFC_1123_DATE_TIME.format(Instant.now().atZone(ZoneOffset.UTC));
    }

    /** Sleeps; false when interrupted, which happens when the emulator closes. */
    private static boolean sleepNanos(long nanos) {
        try {
            Thread.sleep(nanos / 1_000_000, (int) (nanos % 1_000_000));
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Builds a {@link SageMakerEmulator}. */
    public static final class Builder {
        private String endpointName = "test-endpoint";
        private String variant = "AllTraffic";
        private Set<String> inferenceComponents = Set.of();
        private Container container = Container.MESSAGES_SSE;
        private int partSize;
        private Duration tokenLatency = Duration.ZERO;
        private Duration coldStartDelay = Duration.ZERO;
        private ColdStartMode coldStartMode = ColdStartMode.HOLD;
        private boolean startCold;
        private Duration idleTimeout;
        private int maxConcurrency;
        private boolean queueAboveLimit;
        private long seed;
        private boolean sessionsEnabled;
        private Duration sessionTtl = Duration.ofMinutes(20);
        private boolean requireSigV4 = true;

        private Builder() {}

        /**
         * The endpoint served (default {@code test-endpoint}). Calls naming another get 400 ValidationError
         * "Endpoint X of account 123456789012 not found." (SageMaker's wording as far as known).
         */
        public Builder endpointName(String name) {
            if (name == null || name.isBlank() || name.contains("/")) {
                throw new IllegalArgumentException("endpoint name must be non-blank without '/': " + name);
            }
            this.endpointName = name;
            return this;
        }

        /**
         * The production variant (default {@code AllTraffic}), returned in {@code
         * x-Amzn-Invoked-Production-Variant}. A request whose {@code X-Amzn-SageMaker-Target-Variant} names
         * another gets 400 ValidationError (approximate wording).
         */
        public Builder variant(String name) {
            this.variant = Objects.requireNonNull(name);
            return this;
        }

        /**
         * The endpoint hosts these inference components: every request must name one in {@code
         * X-Amzn-SageMaker-Inference-Component}, else 400 ValidationError (approximate wording). Without any
         * (the default), a request naming one gets 400 ValidationError too.
         */
        public Builder inferenceComponents(String... names) {
            this.inferenceComponents = new LinkedHashSet<>(Arrays.asList(names));
            return this;
        }

        /** The inference container behind the endpoint (default {@link Container#MESSAGES_SSE}). */
        public Builder container(Container c) {
            this.container = Objects.requireNonNull(c);
            return this;
        }

        /**
         * Streaming: the container's body bytes are re-sliced into PayloadParts of this many bytes (the last
         * part of a stream may be shorter), regardless of line boundaries, so that lines and even UTF-8
         * characters split across parts. 0 (the default) sends one part per event or line.
         */
        public Builder partSize(int bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("partSize must not be negative, got " + bytes);
            }
            this.partSize = bytes;
            return this;
        }

        /**
         * The wait before each streamed token (default none); a blocking call waits tokens times this before it
         * answers.
         */
        public Builder tokenLatency(Duration d) {
            if (d.isNegative()) {
                throw new IllegalArgumentException("tokenLatency must not be negative");
            }
            this.tokenLatency = d;
            return this;
        }

        /**
         * What a cold start does, after {@link SageMakerEmulator#scaleToZero()}, the idle timeout or {@link
         * #startCold}: the first call begins it and it lasts {@code delay}. In {@link ColdStartMode#NOT_READY}
         * calls meanwhile get 429 ModelNotReadyException; in {@link ColdStartMode#HOLD} they are held until it
         * ends and then served. The default is a zero delay in HOLD mode, so a cold start is only counted.
         */
        public Builder coldStart(Duration delay, ColdStartMode mode) {
            if (delay.isNegative()) {
                throw new IllegalArgumentException("the cold start delay must not be negative");
            }
            this.coldStartDelay = delay;
            this.coldStartMode = Objects.requireNonNull(mode);
            return this;
        }

        /** Whether the endpoint begins scaled to zero (default false). */
        public Builder startCold(boolean cold) {
            this.startCold = cold;
            return this;
        }

        /** Scales to zero after this long without calls (default never). */
        public Builder idleTimeout(Duration d) {
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("idleTimeout must be positive");
            }
            this.idleTimeout = d;
            return this;
        }

        /**
         * At most {@code n} calls served at once (default no limit); a call above the limit waits for a free
         * slot when {@code queue} is true, else gets 400 ThrottlingException with a null message (see {@link
         * Failure#throttling}).
         */
        public Builder maxConcurrency(int n, boolean queue) {
            if (n < 1) {
                throw new IllegalArgumentException("maxConcurrency must be at least 1, got " + n);
            }
            this.maxConcurrency = n;
            this.queueAboveLimit = queue;
            return this;
        }

        /**
         * The seed of generated text (default 0). Without a script a call answers words from a fixed list, chosen
         * by the prompt text (all message contents, or {@code inputs}), the request's own {@code seed} (or {@code
         * parameters.seed}) if any, and this seed; as many as {@code max_tokens}, {@code max_completion_tokens}
         * or {@code parameters.max_new_tokens} say (16 when none does), with finish reason {@code length}. Usage
         * counts whitespace words: prompt tokens those of the prompt text, completion tokens the words answered.
         */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Stateful sessions (default off, when the session header passes through unused). On: {@code
         * X-Amzn-SageMaker-Session-Id: NEW_SESSION} on InvokeEndpoint opens a session and the response carries
         * {@code X-Amzn-SageMaker-New-Session-Id: <uuid>; Expires=<ISO-8601 instant>} ({@code ttl} ahead);
         * {@code NEW_SESSION} on the streaming route gets 400 ValidationError; an unknown, expired or closed id
         * gets 400 ValidationError naming it (approximate wording); an open id is served.
         */
        public Builder sessions(boolean enabled, Duration ttl) {
            if (ttl.isNegative() || ttl.isZero()) {
                throw new IllegalArgumentException("the session ttl must be positive");
            }
            this.sessionsEnabled = enabled;
            this.sessionTtl = ttl;
            return this;
        }

        /**
         * Whether calls must look SigV4-signed (default true): an {@code Authorization: AWS4-HMAC-SHA256
         * Credential=<key>/<date>/<region>/sagemaker/aws4_request, SignedHeaders=..., Signature=<64 hex>} header
         * and an {@code X-Amz-Date} header. Without Authorization the call gets 403
         * MissingAuthenticationTokenException; with a malformed one, a scope for another service or no
         * X-Amz-Date, 403 InvalidSignatureException. The signature itself is not verified, so any credentials
         * pass.
         */
        public Builder requireSigV4(boolean require) {
            this.requireSigV4 = require;
            return this;
        }

        /** Starts the emulator on a free loopback port. */
        public SageMakerEmulator start() {
            try {
                return new SageMakerEmulator(this);
            } catch (IOException e) {
                throw new IllegalStateException("cannot start the SageMaker emulator: " + e.getMessage(), e);
            }
        }
    }
}
