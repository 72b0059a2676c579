package dev.hybridinference.localgpu;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.internal.DaemonThreads;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderBuilder;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.StreamBridge;
import dev.hybridinference.localgpu.internal.ChatTemplate;
import dev.hybridinference.localgpu.internal.NativeEngineException;
import dev.hybridinference.localgpu.internal.NativeModel;
import dev.hybridinference.localgpu.internal.Sampler;
import dev.hybridinference.localgpu.internal.Tokenizer;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a GGUF model inside this process through the native engine: no server, no network, no per-call
 * bill (an optional amortized hourly figure prices the time calls occupy it).
 *
 * <p>Calls on one model run one at a time, in arrival order, on the client's engine thread. A call with a
 * session id reuses that session's KV cache: a follow-up turn only computes its new tokens. Up to {@code
 * maxSessions} sessions are kept, the least recently used evicted. Closing the client frees all native
 * memory. Thread-safe.
 *
 * <p>A call ends at its request's deadline ({@code timeout} or {@code deadline}) with an {@link
 * InferenceTimeoutException}, and when cancelled with a {@link CancelledException}, in every mode. The
 * engine checks both between prompt slices of {@value #PREFILL_SLICE} tokens and between generated tokens,
 * so an abandoned call stops computing within one slice or token and the next call in line starts.
 */
public final class LocalGpuClient extends AbstractProviderClient {
    /** The provider type name used in configuration. */
    public static final String TYPE = "local-gpu";

    /**
     * Prompt tokens computed per native call. The engine computes a prompt in batches of this size anyway,
     * so slicing it here costs no speed, and gives a point between slices to check the deadline and
     * cancellation. (A flag polled inside the native loop would stop sooner, within a layer, but would
     * share state across threads and JNI; between slices the KV cache is always consistent.)
     */
    static final int PREFILL_SLICE = 64;

    /**
     * Chunks (about a token each) that may wait for a stream's reader. A reader that falls this far behind
     * holds the engine, and the calls queued behind it, until it reads on, closes the stream or reaches its
     * deadline; the bound keeps an abandoned stream from filling memory.
     */
    static final int STREAM_CAPACITY = 256;

    private static final Logger LOG = LoggerFactory.getLogger(LocalGpuClient.class);

    /** The device calls run on, named in each receipt's {@code device} attribute: the CPU backend is the only one built. */
    private static final String DEVICE = "cpu";

    private final Path modelPath;
    private final String modelName;
    private final int contextSize;
    private final int maxSessions;
    private final double minP;
    private final double repetitionPenalty;
    private final NativeModel model;
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final Throwable unavailable;
    private final ExecutorService engine;
    private final Map<String, Cached> sessions;
    private Cached scratch;

    private LocalGpuClient(Builder b) {
        super(b.id(), TYPE, DeploymentKind.LOCAL, b.pricing, b.ledger(), b.clock());
        this.modelPath = b.modelPath;
        this.maxSessions = b.maxSessions;
        this.minP = b.minP;
        this.repetitionPenalty = b.repetitionPenalty;
        String name = b.modelPath.getFileName().toString();
        NativeModel m = null;
        Tokenizer t = null;
        ChatTemplate tpl = ChatTemplate.PLAIN;
        Throwable cause = LocalRuntime.unavailabilityCause().orElse(null);
        int ctx = b.contextSize;
        if (cause == null) {
            try {
                GgufMetadata meta = GgufMetadata.read(b.modelPath);
                t = Tokenizer.of(meta);
                tpl = ChatTemplate.detect(meta.string("tokenizer.chat_template").orElse(null));
                name = meta.string("general.name").orElse(name);
                m = NativeModel.load(b.modelPath, b.threads, b.precision);
                if (ctx <= 0) {
                    ctx = Math.min(m.trainedContext(), 4096);
                }
                // A context whose KV cache cannot be allocated is refused now, not at the first call.
                m.sessionBytes(ctx);
            } catch (IOException | IllegalArgumentException | NativeEngineException e) {
                if (m != null) {
                    m.close();
                }
                throw new IllegalArgumentException("cannot load model " + b.modelPath + ": " + e.getMessage(), e);
            }
        }
        this.model = m;
        this.tokenizer = t;
        this.template = tpl;
        this.unavailable = cause;
        this.modelName = name;
        this.contextSize = ctx;
        this.engine = java.util.concurrent.Executors.newSingleThreadExecutor(DaemonThreads.factory(b.id() + "-engine"));
        this.sessions = new LinkedHashMap<>(16, 0.75f, true);
    }

    /** A builder; the model path is required. */
    public static Builder builder() {
        return new Builder();
    }

    /** Whether the native engine is loaded and the model ready. */
    public boolean isAvailable() {
        return unavailable == null;
    }

    /**
     * Why the native engine is not loaded here ({@code the local runtime is unavailable: ...}), when it is not:
     * a composite client then skips this member with that reason instead of calling it.
     */
    @Override
    public Optional<String> unavailableReason() {
        return unavailable == null
                ? Optional.empty()
                : Optional.of("the local runtime is unavailable: " + unavailable.getMessage());
    }

    /** The context size of every session, in tokens. */
    public int contextSize() {
        return contextSize;
    }

    /**
     * The name of the chat layout recognised from the model file's {@code tokenizer.chat_template}: one of
     * {@code chatml}, {@code llama3}, {@code llama2}, {@code zephyr}, {@code phi3}, or {@code plain} when none
     * was recognised (or the runtime is unavailable). For diagnostics; the layout itself is internal.
     */
    public String chatTemplate() {
        return template.name().toLowerCase(java.util.Locale.ROOT);
    }

    @Override
    protected List<String> models() {
        return List.of(modelName);
    }

    /**
     * No tool calling and no JSON response formats (a request with either is refused), streaming, and
     * the context of its sessions: the composite client sends such requests elsewhere.
     */
    @Override
    protected ClientInfo.Capabilities capabilities() {
        return new ClientInfo.Capabilities(false, false, false, true, contextSize);
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        Generation g = new Generation(request, ctx, null);
        g.start();
        return g.await();
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        StreamBridge bridge = new StreamBridge(ctx, modelPath.toString(), STREAM_CAPACITY);
        // The engine thread waits for room when the reader falls STREAM_CAPACITY chunks behind, and is let go
        // when the reader closes the stream or the deadline passes.
        Generation g = new Generation(request, ctx, bridge::put);
        // The outcome, whoever sets it (the engine, the deadline, a cancel), ends the stream after the
        // chunks handed over before it.
        g.outcome.whenComplete((r, t) -> {
            if (t != null) {
                bridge.onError(g.failure(t));
            } else {
                bridge.onComplete(r);
            }
        });
        // The bridge cancels when the reader closes early, is interrupted, or meets the deadline: the
        // generation ends the same way, and the engine stops at its next slice or token.
        bridge.onCancel(() -> {
            if (ctx.deadline().isExpired()) {
                g.expire();
            } else {
                g.cancel();
            }
        });
        bridge.partialResult(g::sofar);
        g.start();
        return bridge;
    }

    private void ensureAvailable() {
        if (unavailable != null) {
            throw new ProviderUnavailableException(
                    "the local runtime is unavailable: " + unavailable.getMessage(), id(), null, 0, null, unavailable);
        }
    }

    @Override
    protected void doClose() {
        // Calls still queued never run: end them, so that no caller waits for them forever.
        for (Runnable r : engine.shutdownNow()) {
            if (r instanceof Generation) {
                ((Generation) r).closed();
            }
        }
        try {
            if (!engine.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS)) {
                return; // a native call still running: leave its memory rather than free it under it
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        for (Cached c : sessions.values()) {
            c.session.close();
        }
        sessions.clear();
        if (scratch != null) {
            scratch.session.close();
        }
        if (model != null) {
            model.close();
        }
    }

    /** A KV cache and the tokens it holds. */
    private static final class Cached {
        final NativeModel.Session session;
        final List<Integer> tokens = new ArrayList<>();

        Cached(NativeModel.Session session) {
            this.session = session;
        }
    }

    /** Thrown on the engine thread to unwind a generation whose outcome is already set. */
    private static final class Stopped extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Stopped() {
            super(null, null, false, false);
        }
    }

    /**
     * One call's generation: prompt, sampling, stopping, streaming. {@link #run} computes on the engine
     * thread; the caller waits on {@link #outcome}, which the engine, the deadline or a cancel completes,
     * whichever comes first. The engine checks the outcome between prompt slices and between tokens, so a
     * call that ended at its deadline or was cancelled stops computing within one slice and frees the
     * engine for the next call.
     */
    private final class Generation implements Runnable {
        private final ChatRequest request;
        private final CallContext ctx;
        private final Consumer<ChatChunk> sink;
        final CompletableFuture<ProviderResult> outcome = new CompletableFuture<>();
        private final int[] prompt;
        private final int maxTokens;
        // Progress, read by the thread that ends the call at its deadline to say how far it got.
        private volatile int promptDone;
        private volatile int generatedCount;
        private volatile int reused;
        // When the engine thread took the call: the engine's time on it is what the call occupied.
        private long engineStartNanos;

        /** Tokenizes and checks the context on the caller's thread, so errors surface at once. */
        Generation(ChatRequest request, CallContext ctx, Consumer<ChatChunk> sink) {
            this.request = request;
            this.ctx = ctx;
            this.sink = sink;
            ensureAvailable();
            if (!request.tools().isEmpty()) {
                throw new InvalidRequestException(
                        "tool calling is not supported by the local runtime yet; send tools to a server provider",
                        id(),
                        null,
                        0,
                        null,
                        null);
            }
            if (request.responseFormat().type() != dev.hybridinference.core.ResponseFormat.Type.TEXT) {
                throw new InvalidRequestException(
                        "JSON response formats are not enforced by the local runtime yet", id(), null, 0, null, null);
            }
            String text = template.apply(request.messages());
            boolean bosInText = text.startsWith("<|begin_of_text|>") || text.startsWith("<s>");
            this.prompt = tokenizer.encode(text, tokenizer.addsBos() && !bosInText, true);
            int room = contextSize - prompt.length;
            this.maxTokens = request.maxTokens().orElse(Math.max(0, room));
            if (prompt.length + maxTokens > contextSize || room <= 0) {
                throw new ContextLengthExceededException(
                        "prompt of " + prompt.length + " tokens plus " + maxTokens
                                + " to generate exceeds the context of " + contextSize + " tokens",
                        id(),
                        modelPath.toString(),
                        0,
                        null,
                        null);
            }
        }

        /** Queues the generation on the engine thread: one at a time, first come first served. */
        void start() {
            ctx.onCancel(this::cancel);
            try {
                engine.execute(this);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                throw new ProviderUnavailableException("client is closed", id(), null, 0, null, e);
            }
        }

        /** Waits for the outcome, at most until the request's deadline. On the caller's thread. */
        ProviderResult await() {
            while (true) {
                try {
                    Optional<Duration> left = ctx.remaining();
                    if (left.isEmpty()) {
                        return outcome.get();
                    }
                    if (left.get().isNegative() || left.get().isZero()) {
                        expire();
                        return outcome.get();
                    }
                    return outcome.get(left.get().toNanos(), TimeUnit.NANOSECONDS);
                } catch (TimeoutException e) {
                    expire();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    ctx.cancel();
                    cancel();
                    throw new CancelledException("interrupted", id(), null, 0, null, e);
                } catch (ExecutionException e) {
                    throw failure(e.getCause());
                }
            }
        }

        /** Ends the call as cancelled, unless it already ended. From any thread. */
        void cancel() {
            outcome.completeExceptionally(
                    new CancelledException("call cancelled", id(), modelPath.toString(), 0, null, null));
        }

        /** Ends a call that the closing client will not run. */
        void closed() {
            outcome.completeExceptionally(new ProviderUnavailableException(
                    "the client was closed before the call ran", id(), modelPath.toString(), 0, null, null));
        }

        /** Ends the call at its deadline, unless it already ended; logs that it was abandoned. From any thread. */
        void expire() {
            int done = promptDone;
            int generated = generatedCount;
            long ms = (System.nanoTime() - ctx.startNanos()) / 1_000_000;
            InferenceTimeoutException e = new InferenceTimeoutException(
                    "the request's deadline passed after " + ms + " ms, with " + done + " of " + prompt.length
                            + " prompt tokens computed and " + generated + " generated",
                    id(),
                    modelPath.toString(),
                    true,
                    null);
            if (outcome.completeExceptionally(e)) {
                LOG.warn(
                        "{}: call abandoned at its deadline after {} ms ({} of {} prompt tokens computed, {} generated);"
                                + " the engine stops it at the next slice or token",
                        id(),
                        ms,
                        done,
                        prompt.length,
                        generated);
            }
        }

        /**
         * What the engine has done so far, for the receipt of a stream that ended early: the prompt tokens
         * computed (those reused from the session's cache included) and the tokens generated. Exact counts.
         */
        ProviderResult sofar() {
            int input = promptDone;
            Usage usage = new Usage(input, generatedCount, Math.min(reused, input));
            return ProviderResult.builder()
                    .finishReason(FinishReason.OTHER)
                    .usage(usage)
                    .model(modelName)
                    .build();
        }

        /** The exception an outcome failed with, as the SDK's type. */
        InferenceException failure(Throwable t) {
            if (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) {
                t = t.getCause();
            }
            if (t instanceof InferenceException) {
                return (InferenceException) t;
            }
            return new ProviderUnavailableException("engine failed: " + t, id(), modelPath.toString(), 0, null, t);
        }

        /** On the engine thread. */
        @Override
        public void run() {
            if (outcome.isDone()) {
                return; // ended while it waited in the queue: the engine moves straight on
            }
            engineStartNanos = System.nanoTime();
            try {
                outcome.complete(generate());
            } catch (Stopped e) {
                // the outcome is set already
            } catch (InferenceException e) {
                outcome.completeExceptionally(e);
            } catch (NativeEngineException | IllegalStateException e) {
                outcome.completeExceptionally(new InvalidRequestException(
                        "engine: " + e.getMessage(), id(), modelPath.toString(), 0, null, e));
            } catch (RuntimeException | Error e) {
                outcome.completeExceptionally(new ProviderUnavailableException(
                        "engine failed: " + e, id(), modelPath.toString(), 0, null, e));
                if (e instanceof Error) {
                    throw (Error) e;
                }
            }
        }

        /**
         * Between slices and tokens: stops the generation when its outcome is set, or sets it when the
         * call was cancelled, its deadline passed or the client is closing.
         */
        private void checkpoint() {
            if (!outcome.isDone()) {
                if (ctx.isCancelled()) {
                    cancel();
                } else if (Thread.currentThread().isInterrupted()) {
                    outcome.completeExceptionally(new ProviderUnavailableException(
                            "the client was closed during the call", id(), modelPath.toString(), 0, null, null));
                } else {
                    Optional<Duration> left = ctx.remaining();
                    if (left.isPresent()
                            && (left.get().isNegative() || left.get().isZero())) {
                        expire();
                    }
                }
            }
            if (outcome.isDone()) {
                throw new Stopped();
            }
        }

        private ProviderResult generate() {
            Cached cache = cacheFor(request.options().sessionId().orElse(null));
            try {
                return generate(cache);
            } finally {
                if (request.options().sessionId().isEmpty()) {
                    cache.tokens.clear();
                }
            }
        }

        private ProviderResult generate(Cached cache) {
            int reuse = 0;
            while (reuse < cache.tokens.size()
                    && reuse < prompt.length - 1
                    && cache.tokens.get(reuse) == prompt[reuse]) {
                reuse++;
            }
            reused = reuse;
            while (cache.tokens.size() > reuse) {
                cache.tokens.remove(cache.tokens.size() - 1);
            }
            float[] logits = prefill(cache, reuse);
            Sampler sampler = new Sampler(
                    request.temperature().orElse(0.0),
                    request.topK().orElse(0),
                    request.topP().orElse(1.0),
                    minP,
                    repetitionPenalty,
                    request.seed().orElse(0L));
            Tokenizer.StreamDecoder decoder = tokenizer.streamDecoder();
            StringBuilder text = new StringBuilder();
            int emitted = 0;
            List<Integer> generated = new ArrayList<>();
            FinishReason finish = FinishReason.LENGTH;
            List<String> stops = request.stop();
            while (generated.size() < maxTokens) {
                checkpoint();
                int next = sampler.sample(logits, cache.tokens);
                if (tokenizer.isEnd(next)) {
                    finish = FinishReason.STOP;
                    break;
                }
                generated.add(next);
                generatedCount = generated.size();
                text.append(decoder.next(next));
                int stopAt = firstStop(text, stops);
                if (stopAt >= 0) {
                    text.setLength(stopAt);
                    finish = FinishReason.STOP;
                    break;
                }
                int safe = text.length() - heldBack(text, stops);
                if (sink != null && safe > emitted) {
                    sink.accept(new ChatChunk(text.substring(emitted, safe), null));
                    emitted = safe;
                }
                if (generated.size() == maxTokens) {
                    break;
                }
                logits = cache.session.eval(new int[] {next}, cache.tokens.size());
                cache.tokens.add(next);
            }
            if (finish == FinishReason.LENGTH) {
                text.append(decoder.flush());
            }
            if (sink != null) {
                sink.accept(new ChatChunk(text.length() > emitted ? text.substring(emitted) : "", finish));
            }
            Usage usage = new Usage(prompt.length, generated.size(), reuse);
            // The engine runs one call at a time, so its time on this call is the hardware the call occupied
            // and the compute it used; time spent queued behind other calls is neither.
            Duration engine = Duration.ofNanos(System.nanoTime() - engineStartNanos);
            return ProviderResult.builder()
                    .text(text.toString())
                    .finishReason(finish)
                    .usage(usage)
                    .model(modelName)
                    .instanceTime(engine)
                    .computeTime(engine)
                    .attribute("device", DEVICE)
                    .build();
        }

        /**
         * Computes the prompt from position {@code from} in slices of {@link #PREFILL_SLICE} tokens, checking
         * the deadline and cancellation before each; returns the last token's logits. The cache records
         * each slice once computed, so a call stopped part way leaves it consistent.
         */
        private float[] prefill(Cached cache, int from) {
            float[] logits = null;
            promptDone = from;
            for (int at = from; at < prompt.length; at += PREFILL_SLICE) {
                checkpoint();
                int[] slice = Arrays.copyOfRange(prompt, at, Math.min(prompt.length, at + PREFILL_SLICE));
                logits = cache.session.eval(slice, at);
                for (int t : slice) {
                    cache.tokens.add(t);
                }
                promptDone = at + slice.length;
            }
            if (logits == null) {
                throw new InvalidRequestException("the prompt is empty", id(), modelPath.toString(), 0, null, null);
            }
            return logits;
        }

        private Cached cacheFor(String sessionId) {
            if (sessionId == null) {
                if (scratch == null) {
                    scratch = new Cached(model.newSession(contextSize));
                }
                return scratch;
            }
            Cached c = sessions.get(sessionId);
            if (c == null) {
                if (sessions.size() >= maxSessions) {
                    String eldest = sessions.keySet().iterator().next();
                    sessions.remove(eldest).session.close();
                }
                c = new Cached(model.newSession(contextSize));
                sessions.put(sessionId, c);
            }
            return c;
        }
    }

    /** Where the first stop sequence starts in {@code text}, or -1. */
    static int firstStop(CharSequence text, List<String> stops) {
        int best = -1;
        String s = text.toString();
        for (String stop : stops) {
            int i = s.indexOf(stop);
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
            }
        }
        return best;
    }

    /** How many trailing characters could be the start of a stop sequence, and so are not streamed yet. */
    static int heldBack(CharSequence text, List<String> stops) {
        int held = 0;
        for (String stop : stops) {
            for (int k = Math.min(stop.length() - 1, text.length()); k > held; k--) {
                if (text.subSequence(text.length() - k, text.length())
                        .toString()
                        .equals(stop.substring(0, k))) {
                    held = k;
                    break;
                }
            }
        }
        return held;
    }

    /** Builds a {@link LocalGpuClient}. Not thread-safe. */
    public static final class Builder extends ProviderBuilder<Builder> {
        private Path modelPath;
        private String device = "auto";
        private int threads = Runtime.getRuntime().availableProcessors();
        private Precision precision = Precision.FAST;
        private int contextSize;
        private int maxSessions = 8;
        private double minP;
        private double repetitionPenalty = 1.0;
        private Pricing pricing = Pricing.FREE;

        private Builder() {
            super(TYPE);
        }

        /** The GGUF file. */
        public Builder modelPath(Path modelPath) {
            this.modelPath = Objects.requireNonNull(modelPath, "modelPath");
            return this;
        }

        /** {@code auto} (the CPU until the CUDA backend lands), {@code cpu}, or {@code cuda:N}. */
        public Builder device(String device) {
            this.device = Objects.requireNonNull(device, "device");
            return this;
        }

        /** CPU threads; all cores unless set. */
        public Builder threads(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("threads must be at least 1, got " + threads);
            }
            this.threads = threads;
            return this;
        }

        /**
         * How quantized weights are multiplied: {@link Precision#FAST} (the default, 8-bit activations and
         * integer dot products) or {@link Precision#EXACT} (float).
         */
        public Builder precision(Precision precision) {
            this.precision = Objects.requireNonNull(precision, "precision");
            return this;
        }

        /** Tokens per session; the model's trained context (at most 4096) unless set. */
        public Builder contextSize(int contextSize) {
            if (contextSize < 1) {
                throw new IllegalArgumentException("contextSize must be at least 1, got " + contextSize);
            }
            this.contextSize = contextSize;
            return this;
        }

        /** Sessions whose KV caches are kept; the least recently used is evicted. */
        public Builder maxSessions(int maxSessions) {
            if (maxSessions < 1) {
                throw new IllegalArgumentException("maxSessions must be at least 1, got " + maxSessions);
            }
            this.maxSessions = maxSessions;
            return this;
        }

        /** Sampling drops tokens less likely than {@code minP} times the most likely; 0 (the default) for none. */
        public Builder minP(double minP) {
            if (!(minP >= 0 && minP < 1)) {
                throw new IllegalArgumentException("minP must be within [0, 1), got " + minP);
            }
            this.minP = minP;
            return this;
        }

        /** Sampling divides the logits of tokens already in the context by this; 1 (the default) for none. */
        public Builder repetitionPenalty(double penalty) {
            if (!(penalty >= 1)) {
                throw new IllegalArgumentException("repetitionPenalty must be at least 1, got " + penalty);
            }
            this.repetitionPenalty = penalty;
            return this;
        }

        /** An amortized hourly figure for the hardware and power; free unless set. */
        public Builder amortizedPerHour(BigDecimal perHour) {
            this.pricing = new Pricing.Amortized(perHour);
            return this;
        }

        /**
         * Loads the model.
         *
         * @throws IllegalArgumentException for a bad device or a file that is not a model the engine runs
         */
        public LocalGpuClient build() {
            if (modelPath == null) {
                throw new IllegalArgumentException("modelPath is required");
            }
            if (device.startsWith("cuda")) {
                throw new IllegalArgumentException(
                        "device " + device + ": the CUDA backend is not part of this build yet; use auto or cpu");
            }
            if (!device.equals("auto") && !device.equals("cpu")) {
                throw new IllegalArgumentException("device must be auto, cpu or cuda:N, got " + device);
            }
            return new LocalGpuClient(this);
        }
    }
}
