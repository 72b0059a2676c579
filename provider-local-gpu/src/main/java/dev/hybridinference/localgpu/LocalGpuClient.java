package dev.hybridinference.localgpu;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.CapacityExceededException;
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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a GGUF model inside this process through the native engine: no server, no network, no per-call
 * bill (an optional amortized hourly figure prices the time calls occupy it).
 *
 * <p><b>Continuous batching.</b> One engine thread computes for every call on the model. Up to {@code
 * maxBatch} calls (default 8) are active at once; more wait in arrival order and join as active ones end.
 * Each engine step is one batched forward pass, in which every weight matrix is read once for all its
 * rows: each decoding call contributes its next token, and calls still reading their prompts share the
 * rest of a budget of {@value #STEP_ROWS} rows, taking turns from step to step, so that a long prompt
 * neither stalls the streams already running nor waits behind them for ever. After the pass each call
 * samples, streams its chunk and checks its stop sequences and length on its own: a call's answer is the
 * one it gets alone.
 *
 * <p><b>KV caches.</b> A call with a session id uses that session's cache: a follow-up turn only computes
 * its new tokens. Two calls on the same session never run at once; the later one waits. Up to {@code
 * maxSessions} session caches are kept, the least recently used one not in use evicted. A call without a
 * session takes a scratch cache from a pool of at most {@code maxBatch}: of the idle ones, the one holding
 * the longest prefix of its prompt, which it then does not compute again (a system prompt that many calls
 * share is computed once per scratch cache; {@code reusePrefixes(false)} clears scratch caches between
 * calls instead). Caches hold keys and values as
 * F32 or, with {@code kvCacheType(F16)}, as F16 (half the memory). Closing the client frees all native
 * memory.
 *
 * <p><b>Deadlines and cancellation.</b> A call ends at its request's deadline ({@code timeout} or {@code
 * deadline}) with an {@link InferenceTimeoutException}, and when cancelled with a {@link
 * CancelledException}, in every mode. The engine checks both before every step; an ended call leaves the
 * batch at once, its cache holding exactly the tokens computed. Closing the client ends queued and running
 * calls with a {@link ProviderUnavailableException}.
 *
 * <p><b>Receipts.</b> Both times are shares, so that the calls of a batch together account for the
 * engine's time once (an amortized price bills {@code instanceTime}: eight calls batched together pay for
 * the hardware's time once, not eight times). A call's {@code instanceTime} is its occupancy: each step it
 * took part in, from the step's start to its end, divided equally among the calls in the step. Its {@code
 * computeTime} is its work: each step's forward pass divided by rows (a prompt chunk of 40 tokens counts
 * 40, a decoded token 1, as the pass's work grows with its rows), plus the sampling and streaming the
 * engine did for it alone. Alone, a call's compute is its instance time less the engine's bookkeeping.
 *
 * <p>Thread-safe.
 */
public final class LocalGpuClient extends AbstractProviderClient {
    /** The provider type name used in configuration. */
    public static final String TYPE = "local-gpu";

    /**
     * Rows of one engine step: the forward pass's own slice, so a step is one pass. Decoding calls take one
     * row each; prompts share the rest (at least one row).
     */
    static final int STEP_ROWS = 64;

    /** The most calls that may be active at once ({@code maxBatch}). */
    static final int MAX_BATCH = 64;

    /**
     * Chunks (about a token each) that may wait for a stream's reader. A stream whose reader falls this far
     * behind sits out the engine's steps (the other calls go on) until the reader makes room, closes the
     * stream or the deadline passes; the bound keeps an abandoned stream from filling memory.
     */
    static final int STREAM_CAPACITY = 256;

    private static final Logger LOG = LoggerFactory.getLogger(LocalGpuClient.class);

    private final Path modelPath;
    private final String modelName;
    private final int contextSize;
    private final int maxSessions;
    private final int maxBatch;
    private final KvCacheType kvCacheType;
    private final double minP;
    private final double repetitionPenalty;
    private final NativeModel model;
    // Where calls run, as receipts' and info()'s attributes name it: "cpu" / "cpu", or "cuda" / "cuda:0 <name>".
    private final String backend;
    private final String device;
    // The CPU threads the engine computes with (engineThreads).
    private final int threads;
    // Set when the device failed (a launch error, a lost device): the client takes no more calls.
    private volatile Throwable deviceFailure;
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final Throwable unavailable;
    private final Thread engine;

    // Guarded by lock: calls handed to the engine and not yet taken, and whether the client is closing.
    private final Object lock = new Object();
    private final ArrayDeque<Generation> inbox = new ArrayDeque<>();
    private boolean closing;
    private Throwable engineFailure;

    // Engine thread only.
    private final List<Generation> pending = new ArrayList<>();
    private final List<Generation> active = new ArrayList<>();
    private final Map<String, Cached> sessions;
    private final ArrayDeque<Cached> freeScratch = new ArrayDeque<>();
    private final boolean reusePrefixes;
    private final List<Cached> allScratch = new ArrayList<>();
    private int turn;
    // For tests: told, on the engine thread and in its order, when a call joins the batch, takes part in a
    // step and leaves the batch.
    private volatile java.util.function.BiConsumer<String, ChatRequest> trace = (event, request) -> {};

    private LocalGpuClient(Builder b) {
        super(b.id(), TYPE, DeploymentKind.LOCAL, b.pricing, b.ledger(), b.clock());
        this.modelPath = b.modelPath;
        this.maxSessions = b.maxSessions;
        this.maxBatch = b.maxBatch;
        this.reusePrefixes = b.reusePrefixes;
        this.kvCacheType = b.kvCacheType;
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
                m = load(b, ctx);
                if (ctx <= 0) {
                    ctx = Math.min(m.trainedContext(), 4096);
                }
                // A context whose KV cache cannot be allocated is refused now, not at the first call.
                m.sessionBytes(ctx, b.kvCacheType);
            } catch (CapacityExceededException e) {
                throw e;
            } catch (IOException | IllegalArgumentException | NativeEngineException e) {
                if (m != null) {
                    m.close();
                }
                throw new IllegalArgumentException("cannot load model " + b.modelPath + ": " + e.getMessage(), e);
            }
        }
        this.model = m;
        this.backend = m == null ? "cpu" : m.backend();
        this.threads = m == null ? b.threads : m.threads();
        this.device = m == null ? "cpu" : m.device();
        this.tokenizer = t;
        this.template = tpl;
        this.unavailable = cause;
        this.modelName = name;
        this.contextSize = ctx;
        this.sessions = new LinkedHashMap<>(16, 0.75f, true);
        this.engine =
                m == null ? null : DaemonThreads.factory(b.id() + "-engine").newThread(this::engineLoop);
        if (engine != null) {
            engine.start();
        }
    }

    /**
     * Loads the model on the builder's device. {@code auto} takes the first CUDA device when the model and
     * its caches fit there, else the CPU; {@code cuda:N} takes device N or fails. On a CUDA device the weights
     * and every KV cache the client may hold ({@code maxSessions} sessions and {@code maxBatch} scratch
     * caches of {@code contextSize} tokens) must fit in its free memory, checked before allocating them.
     */
    private static NativeModel load(Builder b, int contextSize) {
        int ordinal = b.cudaOrdinal;
        int threads = engineThreads(b);
        if (ordinal == NativeModel.CPU) {
            return NativeModel.load(b.modelPath, threads, b.precision);
        }
        try {
            return loadOnDevice(b, ordinal, threads, contextSize);
        } catch (CapacityExceededException | NativeEngineException e) {
            if (!b.device.equals("auto")) {
                throw e;
            }
            LOG.warn(
                    "{}: device auto: cuda:{} cannot hold the model ({}); computing on the CPU",
                    b.id(),
                    ordinal,
                    e.getMessage());
            return NativeModel.load(b.modelPath, threads, b.precision);
        }
    }

    /**
     * The CPU threads the engine computes with: the builder's, but no more than the processors this JVM may
     * use. The engine's threads wait for one another dozens of times per forward pass, spinning briefly:
     * with more threads than processors one of them is always off a core, and a decode step took 70 times
     * as long (3 threads on 2 cores).
     */
    private static int engineThreads(Builder b) {
        int processors = Runtime.getRuntime().availableProcessors();
        if (b.threads <= processors) {
            return b.threads;
        }
        LOG.warn(
                "{}: threads {} is more than the {} processors available; computing with {}",
                b.id(),
                b.threads,
                processors,
                processors);
        return processors;
    }

    private static NativeModel loadOnDevice(Builder b, int ordinal, int threads, int contextSize) {
        NativeModel m = null;
        try {
            m = NativeModel.load(b.modelPath, threads, b.precision, ordinal);
            int ctx = contextSize > 0 ? contextSize : Math.min(m.trainedContext(), 4096);
            long caches = (long) b.maxSessions + b.maxBatch;
            long need = Math.multiplyExact(m.sessionBytes(ctx, b.kvCacheType), caches);
            long free = NativeModel.cudaDeviceMemory(ordinal)[1];
            if (need > free) {
                throw new CapacityExceededException(
                        "cuda:" + ordinal + " has " + (free >> 20) + " MiB free after the model's weights, and "
                                + caches + " KV caches (maxSessions " + b.maxSessions + " + maxBatch " + b.maxBatch
                                + ") of " + ctx + " tokens need " + (need >> 20)
                                + " MiB; use a smaller contextSize, fewer sessions, kvCacheType f16 or another device",
                        b.id(),
                        b.modelPath.toString(),
                        0,
                        null,
                        null);
            }
            return m;
        } catch (RuntimeException e) {
            if (m != null) {
                m.close();
            }
            if (e instanceof NativeEngineException n && n.kind() == NativeEngineException.Kind.DEVICE_MEMORY) {
                throw new CapacityExceededException(e.getMessage(), b.id(), b.modelPath.toString(), 0, null, e);
            }
            throw e;
        }
    }

    /** A builder; the model path is required. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Whether the native engine is loaded and the model ready: false when the runtime is unavailable, and
     * from the moment the client's CUDA device failed.
     */
    public boolean isAvailable() {
        return unavailable == null && deviceFailure == null;
    }

    /** The backend calls run on: {@code cpu} or {@code cuda}. */
    public String backend() {
        return backend;
    }

    /** The device calls run on, as receipts' {@code device} attribute names it: {@code cpu} or {@code cuda:0 <name>}. */
    public String device() {
        return device;
    }

    /**
     * Why the native engine is not loaded here ({@code the local runtime is unavailable: ...}), when it is not:
     * a composite client then skips this member with that reason instead of calling it.
     */
    @Override
    public Optional<String> unavailableReason() {
        Throwable failed = deviceFailure;
        if (failed != null) {
            return Optional.of("the device " + device + " failed: " + failed.getMessage());
        }
        return unavailable == null
                ? Optional.empty()
                : Optional.of("the local runtime is unavailable: " + unavailable.getMessage());
    }

    /**
     * The provider's info, with the {@code backend} and {@code device} it computes on and the CPU {@code
     * threads} it computes with as attributes.
     */
    @Override
    public ClientInfo info() {
        return super.info().toBuilder()
                .attribute("backend", backend)
                .attribute("device", device)
                .attribute("threads", Integer.toString(threads))
                .build();
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
        // The engine hands chunks over only while the bridge has room (a full stream sits out steps), so
        // its put never waits for the reader.
        Generation g = new Generation(request, ctx, bridge);
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
        // generation ends the same way, and leaves the batch before the engine's next step.
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
        Throwable failed = deviceFailure;
        if (failed != null) {
            throw new ProviderUnavailableException(
                    "the device " + device + " failed: " + failed.getMessage(), id(), null, 0, null, failed);
        }
    }

    /**
     * The SDK's exception for an engine error of a call: a device out of memory is a capacity problem, a
     * failed device makes the client unavailable from now on (a composite then sends calls elsewhere), and
     * anything else was the request's (checked before anything was computed).
     */
    private InferenceException engineError(RuntimeException e) {
        if (e instanceof NativeEngineException) {
            NativeEngineException n = (NativeEngineException) e;
            if (n.kind() == NativeEngineException.Kind.DEVICE_MEMORY) {
                return new CapacityExceededException(
                        "engine: " + e.getMessage(), id(), modelPath.toString(), 0, null, e);
            }
            if (n.kind() == NativeEngineException.Kind.DEVICE_FAILED) {
                if (deviceFailure == null) {
                    deviceFailure = e;
                    LOG.error("{}: the device {} failed; the client takes no more calls", id(), device, e);
                }
                return new ProviderUnavailableException(
                        "the device " + device + " failed: " + e.getMessage(), id(), modelPath.toString(), 0, null, e);
            }
        }
        return new InvalidRequestException("engine: " + e.getMessage(), id(), modelPath.toString(), 0, null, e);
    }

    @Override
    protected void doClose() {
        List<Generation> queued;
        synchronized (lock) {
            closing = true;
            queued = new ArrayList<>(inbox);
            inbox.clear();
            lock.notifyAll();
        }
        // Calls the engine never took end now, so that no caller waits for them; the engine ends the rest
        // before its next step.
        for (Generation g : queued) {
            g.closed();
        }
        if (engine != null) {
            try {
                engine.join(TimeUnit.SECONDS.toMillis(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (engine.isAlive()) {
                return; // a native pass still running: leave its memory rather than free it under it
            }
        }
        for (Cached c : sessions.values()) {
            c.session.close();
        }
        sessions.clear();
        for (Cached c : allScratch) {
            c.session.close();
        }
        allScratch.clear();
        freeScratch.clear();
        if (model != null) {
            model.close();
        }
    }

    /** For tests: the engine's next forward pass fails as a device does (see NativeModel#injectFault). */
    void injectFault(NativeEngineException.Kind kind) {
        model.injectFault(kind);
    }

    /**
     * For tests: {@code trace} is told, on the engine thread, when a call joins the batch ({@code admitted}),
     * takes part in a step ({@code computed}) and leaves the batch ({@code ended}).
     */
    void engineTrace(java.util.function.BiConsumer<String, ChatRequest> trace) {
        this.trace = Objects.requireNonNull(trace, "trace");
    }

    // ---------------------------------------------------------------- the engine thread

    /** Admits waiting calls and runs steps until the client closes; then ends every call it still holds. */
    private void engineLoop() {
        try {
            while (true) {
                synchronized (lock) {
                    while (!closing && inbox.isEmpty() && pending.isEmpty() && active.isEmpty()) {
                        lock.wait();
                    }
                    if (closing) {
                        break;
                    }
                    pending.addAll(inbox);
                    inbox.clear();
                }
                try {
                    admit();
                    step();
                } catch (RuntimeException e) {
                    // A failure outside any one call's own work: end the calls it may have left half done.
                    LOG.error("{}: engine step failed; ending the calls in it", id(), e);
                    for (Generation g : new ArrayList<>(active)) {
                        g.fail(new ProviderUnavailableException(
                                "engine failed: " + e, id(), modelPath.toString(), 0, null, e));
                        g.cache.tokens.clear(); // what the cache holds is no longer known
                        retire(g);
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Error e) {
            synchronized (lock) {
                engineFailure = e;
            }
            LOG.error("{}: engine thread failed; the client takes no more calls", id(), e);
            throw e;
        } finally {
            List<Generation> queued;
            synchronized (lock) {
                queued = new ArrayList<>(inbox);
                inbox.clear();
            }
            queued.addAll(pending);
            pending.clear();
            for (Generation g : queued) {
                g.closed();
            }
            for (Generation g : active) {
                g.fail(new ProviderUnavailableException(
                        "the client was closed during the call", id(), modelPath.toString(), 0, null, null));
            }
            active.clear();
        }
    }

    /**
     * Moves waiting calls into the batch in arrival order while there is room, skipping (for now) a call
     * whose session another active call holds, or whose new session has no cache to evict yet.
     */
    private void admit() {
        for (Iterator<Generation> it = pending.iterator(); it.hasNext() && active.size() < maxBatch; ) {
            Generation g = it.next();
            if (g.outcome.isDone()) {
                it.remove();
                continue;
            }
            Cached c;
            try {
                c = acquire(g.sessionId, g.prompt);
            } catch (NativeEngineException | IllegalStateException e) {
                it.remove();
                g.fail(engineError(e));
                continue;
            }
            if (c == null) {
                continue;
            }
            it.remove();
            active.add(g);
            trace.accept("admitted", g.request);
            try {
                g.begin(c);
            } catch (RuntimeException e) {
                g.fail(new InvalidRequestException(
                        "engine: " + e.getMessage(), id(), modelPath.toString(), 0, null, e));
                retire(g);
            }
        }
    }

    /**
     * The cache for a call: its session's (null while another call holds it) or a pooled scratch one, the
     * idle one sharing the longest prefix with {@code prompt} (the most recently freed on ties).
     */
    private Cached acquire(String sessionId, int[] prompt) {
        if (sessionId == null) {
            Cached best = null;
            int longest = -1;
            for (Cached c : freeScratch) {
                int shared = c.sharedPrefix(prompt);
                if (shared > longest) {
                    best = c;
                    longest = shared;
                }
            }
            if (best != null) {
                freeScratch.remove(best);
                return best;
            }
            Cached c = new Cached(model.newSession(contextSize, kvCacheType), false);
            allScratch.add(c);
            return c;
        }
        Cached c = sessions.get(sessionId);
        if (c == null) {
            if (sessions.size() >= maxSessions) {
                // The least recently used session that no active call holds.
                Map.Entry<String, Cached> victim = null;
                for (Map.Entry<String, Cached> e : sessions.entrySet()) {
                    if (!e.getValue().inUse) {
                        victim = e;
                        break;
                    }
                }
                if (victim == null) {
                    return null;
                }
                sessions.remove(victim.getKey()).session.close();
            }
            c = new Cached(model.newSession(contextSize, kvCacheType), true);
            sessions.put(sessionId, c);
        } else if (c.inUse) {
            return null;
        }
        c.inUse = true;
        return c;
    }

    /** Takes an ended call out of the batch and gives its cache back. */
    private void retire(Generation g) {
        active.remove(g);
        trace.accept("ended", g.request);
        Cached c = g.cache;
        if (c.forSession) {
            c.inUse = false;
        } else {
            if (!reusePrefixes) {
                c.tokens.clear();
            }
            freeScratch.push(c);
        }
    }

    /**
     * One step: drops the calls that ended, builds one batch (each decoding call's next token, then prompt
     * chunks from the rest of {@value #STEP_ROWS} rows, starting from the next prompt in turn), runs one
     * batched forward pass, and lets each call in it sample, stream and check its stop conditions.
     */
    private void step() {
        long start = System.nanoTime();
        for (Generation g : new ArrayList<>(active)) {
            if (g.checkpoint()) {
                retire(g);
            }
        }
        List<Generation> batch = new ArrayList<>();
        List<int[]> rows = new ArrayList<>();
        List<Generation> prompts = new ArrayList<>();
        for (Generation g : active) {
            if (!g.decoding) {
                prompts.add(g);
            } else if (g.hasRoom()) {
                batch.add(g);
                rows.add(new int[] {g.next});
            }
        }
        int budget = Math.max(1, STEP_ROWS - batch.size());
        for (int i = 0; i < prompts.size() && budget > 0; i++) {
            Generation g = prompts.get((turn + i) % prompts.size());
            int n = Math.min(budget, g.prompt.length - g.promptAt);
            batch.add(g);
            rows.add(Arrays.copyOfRange(g.prompt, g.promptAt, g.promptAt + n));
            budget -= n;
        }
        turn++;
        if (batch.isEmpty()) {
            // Every active call is a stream waiting for its reader: wait a moment for room.
            LockSupport.parkNanos(200_000);
            return;
        }
        int segments = batch.size();
        NativeModel.Session[] states = new NativeModel.Session[segments];
        int[] positions = new int[segments];
        float[][] logits = new float[segments][];
        int total = 0;
        for (int i = 0; i < segments; i++) {
            Generation g = batch.get(i);
            states[i] = g.cache.session;
            positions[i] = g.cache.tokens.size();
            logits[i] = g.logits;
            total += rows.get(i).length;
        }
        try {
            model.evalBatch(states, rows.toArray(new int[0][]), positions, logits);
        } catch (NativeEngineException | IllegalStateException | IllegalArgumentException e) {
            // An input error is checked before anything was computed: the caches are as they were. After a
            // device error what they hold is not known.
            boolean device = e instanceof NativeEngineException
                    && ((NativeEngineException) e).kind() != NativeEngineException.Kind.INPUT;
            InferenceException failure = engineError(e);
            for (Generation g : batch) {
                g.fail(failure);
                if (device) {
                    g.cache.tokens.clear();
                }
                retire(g);
            }
            return;
        }
        long passNanos = System.nanoTime() - start;
        List<Generation> ended = new ArrayList<>();
        for (int i = 0; i < segments; i++) {
            Generation g = batch.get(i);
            int[] r = rows.get(i);
            trace.accept("computed", g.request);
            g.stepStart = start;
            g.stepShare = segments;
            g.postFrom = System.nanoTime();
            g.computeNanos += (double) passNanos * r.length / total;
            boolean done;
            try {
                done = g.advance(r);
            } catch (RuntimeException e) {
                // This call's own sampling or decoding failed: it ends, the others go on.
                g.fail(new ProviderUnavailableException("engine failed: " + e, id(), modelPath.toString(), 0, null, e));
                done = true;
            }
            if (done) {
                ended.add(g);
            } else {
                g.computeNanos += System.nanoTime() - g.postFrom;
            }
        }
        double occupancy = (double) (System.nanoTime() - start) / segments;
        for (Generation g : batch) {
            g.instanceNanos += occupancy;
        }
        for (Generation g : ended) {
            retire(g);
        }
    }

    /** A KV cache and the tokens it holds. */
    private static final class Cached {
        final NativeModel.Session session;
        final List<Integer> tokens = new ArrayList<>();
        final boolean forSession;
        boolean inUse;

        Cached(NativeModel.Session session, boolean forSession) {
            this.session = session;
            this.forSession = forSession;
        }

        /** How many leading tokens of {@code prompt} this cache holds. */
        int sharedPrefix(int[] prompt) {
            int n = Math.min(tokens.size(), prompt.length);
            int k = 0;
            while (k < n && tokens.get(k) == prompt[k]) {
                k++;
            }
            return k;
        }
    }

    /**
     * One call's generation: prompt, sampling, stopping, streaming. The engine thread computes it step by
     * step ({@link #begin}, {@link #advance}); the caller waits on {@link #outcome}, which the engine, the
     * deadline or a cancel completes, whichever comes first. The engine checks the outcome before every
     * step, so a call that ended at its deadline or was cancelled leaves the batch at once.
     */
    private final class Generation {
        final ChatRequest request;
        private final CallContext ctx;
        private final StreamBridge sink;
        final String sessionId;
        final CompletableFuture<ProviderResult> outcome = new CompletableFuture<>();
        final int[] prompt;
        private final int maxTokens;
        // Progress, read by the thread that ends the call at its deadline to say how far it got.
        private volatile int promptDone;
        private volatile int generatedCount;
        private volatile int reused;

        // Engine thread only, from begin().
        Cached cache;
        float[] logits;
        int promptAt;
        boolean decoding;
        int next;
        private Sampler sampler;
        private Tokenizer.StreamDecoder decoder;
        private final StringBuilder text = new StringBuilder();
        private int emitted;
        private final List<Integer> generated = new ArrayList<>();
        // Receipt times: the shares of the steps so far, and the current step's start, calls and own work.
        double instanceNanos;
        double computeNanos;
        long stepStart;
        int stepShare;
        long postFrom;

        /** Tokenizes and checks the context on the caller's thread, so errors surface at once. */
        Generation(ChatRequest request, CallContext ctx, StreamBridge sink) {
            this.request = request;
            this.ctx = ctx;
            this.sink = sink;
            this.sessionId = request.options().sessionId().orElse(null);
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
            if (prompt.length == 0) {
                throw new InvalidRequestException("the prompt is empty", id(), modelPath.toString(), 0, null, null);
            }
        }

        /** Hands the generation to the engine thread, behind the calls that came before it. */
        void start() {
            ctx.onCancel(this::cancel);
            synchronized (lock) {
                if (engineFailure != null) {
                    throw new ProviderUnavailableException(
                            "the engine failed: " + engineFailure, id(), null, 0, null, engineFailure);
                }
                if (closing) {
                    throw new ProviderUnavailableException("client is closed", id(), null, 0, null, null);
                }
                inbox.add(this);
                lock.notifyAll();
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

        /** Ends the call with {@code e}, unless it already ended. */
        void fail(InferenceException e) {
            outcome.completeExceptionally(e);
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
                                + " it leaves the engine's batch before the next step",
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

        /**
         * Before a step, on the engine thread: whether the call has ended, ending it first when it was
         * cancelled, its deadline passed or the client is closing.
         */
        boolean checkpoint() {
            if (!outcome.isDone()) {
                if (ctx.isCancelled()) {
                    cancel();
                } else {
                    Optional<Duration> left = ctx.remaining();
                    if (left.isPresent()
                            && (left.get().isNegative() || left.get().isZero())) {
                        expire();
                    }
                }
            }
            return outcome.isDone();
        }

        /** Whether a stream's reader has room for the up to two chunks a step hands over. */
        boolean hasRoom() {
            return sink == null || sink.capacity() - sink.buffered() >= 2;
        }

        /**
         * On admission: takes the cache, keeps the longest prefix of the prompt it already holds (at least
         * one prompt token is always computed, for its logits), and sets up sampling.
         */
        void begin(Cached c) {
            cache = c;
            logits = new float[model.vocabSize()];
            int reuse = Math.min(c.sharedPrefix(prompt), prompt.length - 1);
            reused = reuse;
            c.tokens.subList(reuse, c.tokens.size()).clear();
            promptAt = reuse;
            promptDone = reuse;
            sampler = new Sampler(
                    request.temperature().orElse(0.0),
                    request.topK().orElse(0),
                    request.topP().orElse(1.0),
                    minP,
                    repetitionPenalty,
                    request.seed().orElse(0L));
            decoder = tokenizer.streamDecoder();
        }

        /**
         * After a step that computed {@code rows} of this call (a prompt chunk, or its last sampled token):
         * records them in the cache, and once the prompt is done samples the next token from {@link
         * #logits}. Returns whether the call has ended.
         */
        boolean advance(int[] rows) {
            for (int t : rows) {
                cache.tokens.add(t);
            }
            if (!decoding) {
                promptAt += rows.length;
                promptDone = promptAt;
                if (promptAt < prompt.length) {
                    return outcome.isDone();
                }
                decoding = true;
            }
            if (outcome.isDone()) {
                return true;
            }
            if (generated.size() >= maxTokens) {
                return finish(FinishReason.LENGTH);
            }
            int token = sampler.sample(logits, cache.tokens);
            if (tokenizer.isEnd(token)) {
                return finish(FinishReason.STOP);
            }
            generated.add(token);
            generatedCount = generated.size();
            text.append(decoder.next(token));
            List<String> stops = request.stop();
            int stopAt = firstStop(text, stops);
            if (stopAt >= 0) {
                text.setLength(stopAt);
                return finish(FinishReason.STOP);
            }
            int safe = text.length() - heldBack(text, stops);
            if (sink != null && safe > emitted) {
                sink.put(new ChatChunk(text.substring(emitted, safe), null));
                emitted = safe;
            }
            if (generated.size() == maxTokens) {
                return finish(FinishReason.LENGTH);
            }
            next = token;
            return false;
        }

        /** Ends the call with its answer. */
        private boolean finish(FinishReason finish) {
            if (finish == FinishReason.LENGTH) {
                text.append(decoder.flush());
            }
            if (sink != null) {
                sink.put(new ChatChunk(text.length() > emitted ? text.substring(emitted) : "", finish));
            }
            Usage usage = new Usage(prompt.length, generated.size(), reused);
            long end = System.nanoTime();
            // The current step counts up to now: its end is not known yet.
            double compute = computeNanos + (end - postFrom);
            double instance = instanceNanos + (double) (end - stepStart) / stepShare;
            outcome.complete(ProviderResult.builder()
                    .text(text.toString())
                    .finishReason(finish)
                    .usage(usage)
                    .model(modelName)
                    .instanceTime(Duration.ofNanos(Math.round(instance)))
                    .computeTime(Duration.ofNanos(Math.round(compute)))
                    .attribute("backend", backend)
                    .attribute("device", device)
                    .build());
            return true;
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

    /**
     * The CUDA ordinal a device name asks for, or {@link NativeModel#CPU}: {@code cpu}; {@code auto} is device
     * 0 when the runtime sees one; {@code cuda} and {@code cuda:N} must name a device the runtime sees.
     *
     * @throws IllegalArgumentException for any other name, and for a CUDA device not seen here (naming the
     *     devices seen, or why there are none)
     */
    static int resolveDevice(String device) {
        if (device.equals("cpu")) {
            return NativeModel.CPU;
        }
        // Counted and named only: asking a device for its memory would start a context on every device.
        int count = LocalRuntime.isAvailable() ? NativeModel.cudaDeviceCount() : 0;
        if (device.equals("auto")) {
            return count == 0 ? NativeModel.CPU : 0;
        }
        if (!device.matches("cuda(:\\d{1,9})?")) {
            throw new IllegalArgumentException("device must be auto, cpu or cuda:N, got " + device);
        }
        int ordinal = device.equals("cuda") ? 0 : Integer.parseInt(device.substring(5));
        if (ordinal >= count) {
            List<String> seen = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                seen.add("cuda:" + i + " " + NativeModel.cudaDeviceName(i));
            }
            String have = seen.isEmpty()
                    ? "none (" + LocalRuntime.cudaUnavailableReason().orElse("no CUDA device") + ")"
                    : String.join(", ", seen);
            throw new IllegalArgumentException(
                    "device " + device + ": no such CUDA device; devices seen: " + have + "; use auto or cpu");
        }
        return ordinal;
    }

    /** Builds a {@link LocalGpuClient}. Not thread-safe. */
    public static final class Builder extends ProviderBuilder<Builder> {
        private Path modelPath;
        private String device = "auto";
        // Resolved by build(): the CUDA ordinal to load on, or NativeModel.CPU.
        private int cudaOrdinal = NativeModel.CPU;
        private int threads = Runtime.getRuntime().availableProcessors();
        private Precision precision = Precision.FAST;
        private int contextSize;
        private int maxSessions = 8;
        private int maxBatch = 8;
        private boolean reusePrefixes = true;
        private KvCacheType kvCacheType = KvCacheType.F32;
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

        /**
         * Where the model computes: {@code auto} (the default: the first CUDA device when there is one and the
         * model and its caches fit there, else the CPU), {@code cpu}, or {@code cuda:N} (that device, or
         * {@link #build()} fails naming the devices seen). {@code cuda} means {@code cuda:0}.
         */
        public Builder device(String device) {
            this.device = Objects.requireNonNull(device, "device");
            return this;
        }

        /**
         * CPU threads; all cores unless set. More than the processors the JVM may use are cut to that
         * number, with a warning: the engine's threads must each have a core.
         */
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

        /**
         * Calls computed together, batched into shared forward passes; more wait in arrival order. 8 unless
         * set; 1 runs calls one at a time.
         */
        public Builder maxBatch(int maxBatch) {
            if (maxBatch < 1 || maxBatch > MAX_BATCH) {
                throw new IllegalArgumentException("maxBatch must be between 1 and " + MAX_BATCH + ", got " + maxBatch);
            }
            this.maxBatch = maxBatch;
            return this;
        }

        /**
         * Whether a call without a session reuses the longest prompt prefix an idle scratch cache holds from an
         * earlier call (true, the default), or every such call computes its whole prompt (false). Reuse gives
         * the same answers; what it reveals is timing: a call whose prompt starts like an earlier one's starts
         * sooner, which matters where callers must not learn of each other's prompts.
         */
        public Builder reusePrefixes(boolean reusePrefixes) {
            this.reusePrefixes = reusePrefixes;
            return this;
        }

        /** How KV caches store keys and values: {@link KvCacheType#F32} (the default) or F16, half the memory. */
        public Builder kvCacheType(KvCacheType kvCacheType) {
            this.kvCacheType = Objects.requireNonNull(kvCacheType, "kvCacheType");
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
            cudaOrdinal = resolveDevice(device);
            return new LocalGpuClient(this);
        }
    }
}
