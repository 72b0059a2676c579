package dev.hybridinference.localgpu;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
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
import dev.hybridinference.localgpu.internal.ChatTemplate;
import dev.hybridinference.localgpu.internal.NativeEngineException;
import dev.hybridinference.localgpu.internal.NativeModel;
import dev.hybridinference.localgpu.internal.Sampler;
import dev.hybridinference.localgpu.internal.Tokenizer;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;

/**
 * Runs a GGUF model inside this process through the native engine: no server, no network, no per-call
 * bill (an optional amortized hourly figure prices the time calls occupy it).
 *
 * <p>Calls on one model run one at a time, in arrival order, on the client's engine thread. A call with a
 * session id reuses that session's KV cache: a follow-up turn only computes its new tokens. Up to {@code
 * maxSessions} sessions are kept, the least recently used evicted. Closing the client frees all native
 * memory. Thread-safe.
 */
public final class LocalGpuClient extends AbstractProviderClient {
    /** The provider type name used in configuration. */
    public static final String TYPE = "local-gpu";

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
                m = NativeModel.load(b.modelPath, b.threads);
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

    /** The context size of every session, in tokens. */
    public int contextSize() {
        return contextSize;
    }

    /** The chat template recognised from the model file. */
    public ChatTemplate chatTemplate() {
        return template;
    }

    @Override
    protected List<String> models() {
        return List.of(modelName);
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        Generation g = new Generation(request, ctx, null);
        return run(g, ctx);
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        BlockingQueue<Object> queue = new LinkedBlockingQueue<>();
        Generation g = new Generation(request, ctx, queue::add);
        g.prepare();
        Future<ProviderResult> f = submit(g);
        return new ProviderStream() {
            private ProviderResult result;

            @Override
            public ChatChunk next() {
                if (result != null) {
                    return null;
                }
                Object o;
                try {
                    o = queue.take();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    ctx.cancel();
                    throw new CancelledException("interrupted", id(), null, 0, null, e);
                }
                if (o instanceof ChatChunk) {
                    return (ChatChunk) o;
                }
                if (o instanceof InferenceException) {
                    throw (InferenceException) o;
                }
                result = (ProviderResult) o;
                return null;
            }

            @Override
            public ProviderResult result() {
                return result;
            }

            @Override
            public void close() {
                if (result == null) {
                    ctx.cancel();
                    f.cancel(false);
                }
            }
        };
    }

    private ProviderResult run(Generation g, CallContext ctx) {
        g.prepare();
        Future<ProviderResult> f = submit(g);
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ctx.cancel();
            throw new CancelledException("interrupted", id(), null, 0, null, e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof InferenceException) {
                throw (InferenceException) c;
            }
            throw new ProviderUnavailableException("engine failed: " + c, id(), modelPath.toString(), 0, null, c);
        }
    }

    /** Queues a generation on the engine thread: one at a time, first come first served. */
    private Future<ProviderResult> submit(Generation g) {
        try {
            return engine.submit(g::run);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            throw new ProviderUnavailableException("client is closed", id(), null, 0, null, e);
        }
    }

    private void ensureAvailable() {
        if (unavailable != null) {
            throw new ProviderUnavailableException(
                    "the local runtime is unavailable: " + unavailable.getMessage(), id(), null, 0, null, unavailable);
        }
    }

    @Override
    protected void doClose() {
        engine.shutdownNow();
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

    /** One call's generation: prompt, sampling, stopping, streaming. Runs on the engine thread. */
    private final class Generation {
        private final ChatRequest request;
        private final CallContext ctx;
        private final Consumer<Object> sink;
        private int[] prompt;
        private int maxTokens;

        Generation(ChatRequest request, CallContext ctx, Consumer<Object> sink) {
            this.request = request;
            this.ctx = ctx;
            this.sink = sink;
        }

        /** Tokenizes and checks the context on the caller's thread, so errors surface at once. */
        void prepare() {
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
            prompt = tokenizer.encode(text, tokenizer.addsBos() && !bosInText, true);
            int room = contextSize - prompt.length;
            maxTokens = request.maxTokens().orElse(Math.max(0, room));
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

        ProviderResult run() {
            try {
                ProviderResult r = generate();
                if (sink != null) {
                    sink.accept(r);
                }
                return r;
            } catch (InferenceException e) {
                if (sink != null) {
                    sink.accept(e);
                }
                throw e;
            } catch (NativeEngineException | IllegalStateException e) {
                InferenceException ie = new InvalidRequestException(
                        "engine: " + e.getMessage(), id(), modelPath.toString(), 0, null, e);
                if (sink != null) {
                    sink.accept(ie);
                }
                throw ie;
            }
        }

        private ProviderResult generate() {
            Cached cache = cacheFor(request.options().sessionId().orElse(null));
            int reuse = 0;
            while (reuse < cache.tokens.size()
                    && reuse < prompt.length - 1
                    && cache.tokens.get(reuse) == prompt[reuse]) {
                reuse++;
            }
            while (cache.tokens.size() > reuse) {
                cache.tokens.remove(cache.tokens.size() - 1);
            }
            int[] fresh = java.util.Arrays.copyOfRange(prompt, reuse, prompt.length);
            float[] logits = cache.session.eval(fresh, reuse);
            for (int t : fresh) {
                cache.tokens.add(t);
            }
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
                if (ctx.isCancelled() || Thread.currentThread().isInterrupted()) {
                    throw new CancelledException("call cancelled", id(), null, 0, null, null);
                }
                int next = sampler.sample(logits, cache.tokens);
                if (tokenizer.isEnd(next)) {
                    finish = FinishReason.STOP;
                    break;
                }
                generated.add(next);
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
            if (request.options().sessionId().isEmpty()) {
                cache.tokens.clear();
            }
            Usage usage = new Usage(prompt.length, generated.size(), reuse);
            return new ProviderResult(text.toString(), List.of(), finish, usage, modelName, null, null);
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
