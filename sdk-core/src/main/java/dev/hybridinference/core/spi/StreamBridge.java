package dev.hybridinference.core.spi;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.http.StreamAssembler;
import java.util.ArrayDeque;
import java.util.Objects;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A bounded hand-over from a provider whose SDK pushes (a Reactive-Streams subscriber such as the AWS SDK's
 * event-stream handler, a callback, an engine thread) to the core, which pulls: the producer side takes the
 * SDK's signals ({@link #onChunk}, {@link #onComplete}, {@link #onError}), and the bridge is itself the
 * {@link ProviderStream} that a provider's {@code doStream} returns.
 *
 * <p><b>Bounded.</b> At most {@code capacity} chunks wait in the bridge. A producer is held back in one of
 * two ways, whichever its SDK allows:
 *
 * <ul>
 *   <li><b>Demand</b> ({@link #onDemand}): the bridge asks for chunks as the reader makes room, through a hook
 *       such as a Reactive-Streams {@code Subscription::request}: {@code capacity} at first, then more each
 *       time half of the room is free again. The producer calls {@link #onChunk}, which never blocks; a
 *       producer that sends more than it was asked for fails the stream. This is the way for the AWS SDK v2
 *       async clients: they deliver events on their I/O threads, which must never block (a blocked event
 *       loop stalls every other connection it serves), and their publishers honour {@code request(n)}, so
 *       the missing demand stops the reading of the socket and TCP flow control holds back the server.
 *       One upstream element may decode to several chunks: send them as one chunk (their texts joined), and
 *       report an element that decodes to none with {@link #onEmpty()}, so that its unit of demand is
 *       given back.
 *   <li><b>Blocking</b> ({@link #put}): a producer on a thread of its own (a local engine) waits for room,
 *       at most until the call's deadline, and is released at once when the reader goes away.
 * </ul>
 *
 * <p><b>Order.</b> Chunks reach the reader in the order sent, and a producer's failure comes after the
 * chunks sent before it: a stream that fails after N chunks gives the reader those N, then the failure.
 * A producer's failure that is not an {@link InferenceException} is mapped by the function given to {@link
 * #mapErrors} (a provider's own error table), or else wrapped in a non-retryable {@link
 * InferenceException} with it as the cause.
 *
 * <p><b>Cancellation.</b> {@link #close()} before the end, the call's deadline passing while the reader
 * waits (or while a blocking producer waits for room), an interrupted reader, and a producer that overruns
 * its demand all end the stream for the reader and run the cancel hook ({@link #onCancel}) exactly once,
 * unless the producer had already ended. The hook may be registered late (when the SDK hands over its
 * subscription, say): if the stream was cancelled before, it runs at registration. After the end, {@link
 * #onChunk} and {@link #put} return false and drop the chunk, and later terminal signals are ignored.
 *
 * <p><b>Deadline.</b> The reader waits at most until the call's deadline ({@link CallContext#deadline()}),
 * and once it has passed a read fails with an {@link InferenceTimeoutException} whose {@link
 * InferenceTimeoutException#isDeadlineExceeded()} is true, unless the producer had finished its answer.
 *
 * <p><b>Batches.</b> The reader takes every chunk waiting in one turn of the lock and hands them out one
 * by one without it. Chunks it took count against the bound until its next turn of the lock, which comes
 * at the last chunk of the batch or once half the capacity was handed out; that turn gives the room of the
 * chunks handed out back at once (as one request for demand, or to a blocked producer). A reader that
 * finds nothing waiting while chunks are arriving in quick succession spins for at most 50 microseconds,
 * yielding now and then, before it parks, so that a burst of chunks costs one wake-up rather than one per
 * chunk; once a wait outlasts 100 microseconds, the next one parks at once.
 *
 * <p>Thread-safe. The producer's signals must not overlap (as Reactive Streams requires of a publisher);
 * {@link #next()} is called by one reader at a time (a reader that hands the stream to another thread does
 * so through a hand-over that orders the two, such as a queue or a lock); {@link #close()} may come from any
 * thread and wakes a waiting reader and a waiting producer. Calls into the demand and cancel hooks never
 * overlap either (Reactive Streams requires that of a subscriber), and are never made while the bridge
 * holds its lock, so a hook may call back into the bridge.
 */
public final class StreamBridge implements ProviderStream {
    /** The capacity when none is given: chunks that may wait for the reader. */
    public static final int DEFAULT_CAPACITY = 64;

    /** The largest capacity allowed. */
    public static final int MAX_CAPACITY = 1 << 16;

    /** The longest a reader spins for a chunk before it parks, in nanoseconds. */
    static final long SPIN_NANOS = 50_000;

    /**
     * A wait for a chunk no longer than this (nanoseconds) means that chunks are arriving in a burst, so that
     * the next wait spins first; a longer one, that the producer is slow, so that the next wait parks at once.
     */
    static final long BURST_GAP_NANOS = 2 * SPIN_NANOS;

    private static final Logger LOG = LoggerFactory.getLogger(StreamBridge.class);

    private final CallContext ctx;
    private final String endpoint;
    private final int capacity;
    private final int refillAt;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition readable = lock.newCondition();
    private final Condition writable = lock.newCondition();
    /** Held while a hook runs, so that calls into the upstream never overlap. */
    private final ReentrantLock hooks = new ReentrantLock();

    // All guarded by lock.
    /** The chunks the producer handed over that the reader has not taken; swapped with {@link #taken}. */
    private ArrayDeque<ChatChunk> buffer;
    /** The chunks of the reader's batch not handed out as of its last turn of the lock: they hold room. */
    private int inReader;

    private LongConsumer demandHook;
    private long outstanding;
    private Runnable cancelHook;
    private boolean cancelWanted;
    private boolean cancelRan;
    /** The reader's end is queued: the result, or a failure (the producer's, or its overrun). */
    private boolean upstreamEnded;
    /** The producer itself ended ({@link #onComplete} or {@link #onError}): nothing to cancel. */
    private boolean producerDone;

    private ProviderResult result;
    private InferenceException upstreamFailure;
    /** Volatile: the reader's lock-free path sees a close from another thread. */
    private volatile InferenceException readerFailure;

    private boolean endRead;
    private long received;
    private long contentReceived;
    private Supplier<ProviderResult> partial;
    private Function<Throwable, InferenceException> errorMapper;
    /**
     * Counts the changes a waiting reader looks for (a chunk added, an end); written under lock, read by a
     * spinning reader without it.
     */
    private volatile int signals;

    // The reader's own: touched only by the thread in next(), one at a time.
    /** The reader's batch: the chunks it took in its last turn of the lock, handed out without the lock. */
    private ArrayDeque<ChatChunk> taken;
    /** Chunks handed out from the batch since the reader last took the lock. */
    private int handedSinceLock;
    /** Whether the reader's last wait for a chunk was short, so that the next one spins before parking. */
    private boolean burst = true;

    /**
     * A bridge with the {@link #DEFAULT_CAPACITY}.
     *
     * @param ctx the call, whose deadline bounds the waits
     * @param endpoint where the stream comes from, for messages (no credentials); may be null
     */
    public StreamBridge(CallContext ctx, String endpoint) {
        this(ctx, endpoint, DEFAULT_CAPACITY);
    }

    /**
     * A bridge.
     *
     * @param ctx the call, whose deadline bounds the waits
     * @param endpoint where the stream comes from, for messages (no credentials); may be null
     * @param capacity the most chunks that may wait for the reader, 1 to {@link #MAX_CAPACITY}
     */
    public StreamBridge(CallContext ctx, String endpoint, int capacity) {
        this.ctx = Objects.requireNonNull(ctx, "ctx");
        this.endpoint = endpoint;
        if (capacity < 1 || capacity > MAX_CAPACITY) {
            throw new IllegalArgumentException("capacity must be within [1, " + MAX_CAPACITY + "], got " + capacity);
        }
        this.capacity = capacity;
        // Demand goes upstream in batches of at least half the room, so that a request is not sent for
        // every chunk read.
        this.refillAt = Math.max(1, capacity / 2);
        this.buffer = new ArrayDeque<>(Math.min(capacity, 1024));
        this.taken = new ArrayDeque<>(Math.min(capacity, 1024));
    }

    /** The most chunks that may wait for the reader. */
    public int capacity() {
        return capacity;
    }

    /**
     * The chunks waiting for the reader now, counting those of the reader's batch not handed out as of its
     * last turn of the lock.
     */
    public int buffered() {
        lock.lock();
        try {
            return buffer.size() + inReader;
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- set-up, by the provider

    /**
     * Registers how to cancel the upstream (cancel the subscription, abort the SDK's request, stop the
     * engine), replacing a hook registered before that has not run. Runs at once, on this thread, if the
     * stream was cancelled already. The bridge runs a hook at most once.
     */
    public void onCancel(Runnable hook) {
        Objects.requireNonNull(hook, "hook");
        Runnable toRun;
        lock.lock();
        try {
            cancelHook = hook;
            toRun = claimCancelHook();
        } finally {
            lock.unlock();
        }
        if (toRun != null) {
            runCancel(toRun);
        }
    }

    /**
     * Switches the producer to demand: from now on the bridge calls {@code request} with how many more
     * chunks it may send (as {@code Subscription::request} takes), at once with the room there is, then
     * as the reader frees room. Call it once, when the upstream can take requests (in a subscriber's
     * {@code onSubscribe}, say). Not called once the stream has ended.
     */
    public void onDemand(LongConsumer request) {
        Objects.requireNonNull(request, "request");
        long n;
        lock.lock();
        try {
            demandHook = request;
            n = refill(true);
        } finally {
            lock.unlock();
        }
        request(n);
    }

    /**
     * Supplies what the producer assembled so far, for {@link #result()} before the end: a provider that
     * knows the true token counts of a stream that failed or was closed part way says so here. Without it
     * the bridge estimates: one output token per chunk with text, and the prompt at about four characters
     * a token, marked as estimated.
     */
    public void partialResult(Supplier<ProviderResult> partial) {
        lock.lock();
        try {
            this.partial = Objects.requireNonNull(partial, "partial");
        } finally {
            lock.unlock();
        }
    }

    /**
     * Maps the producer's failures that are not {@link InferenceException}s (an SDK's own exceptions) to the
     * SDK's types. A mapper that returns null or throws leaves the failure to the default wrapping.
     */
    public void mapErrors(Function<Throwable, InferenceException> mapper) {
        lock.lock();
        try {
            this.errorMapper = Objects.requireNonNull(mapper, "mapper");
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- producer side

    /**
     * Hands over a chunk without blocking. With demand ({@link #onDemand}) the producer may send only what
     * was requested; without it, only while there is room. A chunk beyond that fails the stream (the reader
     * gets the chunks before it, then an {@link InferenceException}) and cancels the upstream.
     *
     * @return false when the stream has ended (the reader closed it, its deadline passed, or it failed) and
     *     the chunk was dropped: the producer can stop
     */
    public boolean onChunk(ChatChunk chunk) {
        Objects.requireNonNull(chunk, "chunk");
        boolean overrun;
        lock.lock();
        try {
            if (ended()) {
                return false;
            }
            overrun = held() >= capacity || (demandHook != null && outstanding <= 0);
            if (!overrun) {
                add(chunk);
                if (demandHook != null) {
                    outstanding--;
                }
                return true;
            }
            endUpstream(
                    null,
                    new InferenceException(
                            "the provider's stream sent more than the " + capacity + " chunks the reader made room for",
                            ctx.providerId(),
                            endpoint,
                            0,
                            null,
                            null));
        } finally {
            lock.unlock();
        }
        cancelUpstream();
        return false;
    }

    /**
     * Reports an upstream element that carried no chunk (a keep-alive, a metadata event), giving its unit
     * of demand back. Needed only with demand ({@link #onDemand}).
     */
    public void onEmpty() {
        long n;
        lock.lock();
        try {
            if (demandHook == null || ended()) {
                return;
            }
            if (outstanding > 0) {
                outstanding--;
            }
            n = refill(false);
        } finally {
            lock.unlock();
        }
        request(n);
    }

    /**
     * Hands over a chunk, waiting for room while the buffer is full: at most until the call's deadline
     * (which then ends the stream as timed out), and no longer than the stream lasts. For a producer on its
     * own thread.
     *
     * @return false when the stream has ended (or ended while waiting, or the thread was interrupted, whose
     *     flag is then set again) and the chunk was dropped: the producer can stop
     */
    public boolean put(ChatChunk chunk) {
        Objects.requireNonNull(chunk, "chunk");
        lock.lock();
        try {
            while (true) {
                if (ended()) {
                    return false;
                }
                if (held() < capacity) {
                    add(chunk);
                    if (demandHook != null && outstanding > 0) {
                        outstanding--;
                    }
                    return true;
                }
                long left = ctx.deadline().remainingNanos();
                if (left <= 0) {
                    break;
                }
                await(writable, left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            lock.unlock();
        }
        expire();
        return false;
    }

    /**
     * Ends the stream normally with the whole result; the reader gets it after the chunks still waiting.
     * Ignored after the stream's end.
     */
    public void onComplete(ProviderResult result) {
        onComplete(null, result);
    }

    /**
     * Ends the stream normally with a last chunk and the whole result. The last chunk needs no demand nor
     * room: it is what the end of the body completes (a final line without a newline, say), one at most,
     * so the bound holds. Ignored after the stream's end.
     *
     * @param last the last chunk, or null for none
     * @param result the whole result
     */
    public void onComplete(ChatChunk last, ProviderResult result) {
        Objects.requireNonNull(result, "result");
        lock.lock();
        try {
            producerDone = true;
            if (upstreamEnded) {
                return;
            }
            if (last != null) {
                add(last);
            }
            endUpstream(result, null);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Ends the stream with a failure; the reader gets it after the chunks still waiting. Ignored after the
     * stream's end.
     */
    public void onError(Throwable error) {
        Objects.requireNonNull(error, "error");
        Function<Throwable, InferenceException> mapper;
        lock.lock();
        try {
            if (upstreamEnded) {
                return;
            }
            mapper = errorMapper;
        } finally {
            lock.unlock();
        }
        InferenceException e = asInference(error, mapper);
        lock.lock();
        try {
            producerDone = true;
            if (upstreamEnded) {
                return;
            }
            endUpstream(null, e);
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- reader side

    /**
     * The next chunk, waiting for it at most until the call's deadline; null at the normal end.
     *
     * @throws InferenceException the producer's failure (after the chunks sent before it), an {@link
     *     InferenceTimeoutException} once the deadline has passed, or a {@link CancelledException} once the
     *     stream was closed or the reader interrupted
     */
    @Override
    public ChatChunk next() {
        ArrayDeque<ChatChunk> batch = taken;
        // Without the lock while the batch holds more than its last chunk, the stream has not ended for the
        // reader, the deadline has not passed, and the room handed out since the last turn of the lock is
        // less than a refill's worth; the lock's turn frees the room and takes what came meanwhile.
        if (batch.size() > 1
                && handedSinceLock < refillAt
                && readerFailure == null
                && !ctx.deadline().isExpired()) {
            handedSinceLock++;
            return batch.poll();
        }
        return nextLocked();
    }

    /** {@link #next()} under the lock: frees the room handed out, takes a new batch, or waits for one. */
    private ChatChunk nextLocked() {
        ChatChunk chunk = null;
        long more = 0;
        InferenceException fail = null;
        long waitStart = 0;
        boolean spun = false;
        lock.lock();
        try {
            while (true) {
                if (readerFailure != null) {
                    taken.clear();
                    throw readerFailure;
                }
                boolean expired = !upstreamEnded && ctx.deadline().isExpired();
                if (expired) {
                    taken.clear();
                    fail = timedOut();
                    break;
                }
                if (!taken.isEmpty() || !buffer.isEmpty()) {
                    if (taken.isEmpty()) {
                        swap();
                    }
                    chunk = taken.poll();
                    if (taken.isEmpty() && !buffer.isEmpty()) {
                        // The last of the batch: take what came meanwhile in the same turn.
                        swap();
                    }
                    // Everything handed out so far is the reader's now: its room is free again.
                    inReader = taken.size();
                    handedSinceLock = 0;
                    writable.signal();
                    more = refill(false);
                    if (waitStart != 0) {
                        burst = System.nanoTime() - waitStart <= BURST_GAP_NANOS;
                    }
                    break;
                }
                if (upstreamFailure != null) {
                    endRead = true;
                    throw upstreamFailure;
                }
                if (result != null) {
                    endRead = true;
                    return null;
                }
                if (waitStart == 0) {
                    waitStart = System.nanoTime();
                }
                if (burst && !spun) {
                    // Chunks have been coming in quick succession: the next is likely microseconds away, and
                    // spinning for it costs less than parking and being woken.
                    spun = true;
                    int seen = signals;
                    lock.unlock();
                    try {
                        spin(seen);
                    } finally {
                        lock.lock();
                    }
                    continue;
                }
                await(readable, ctx.deadline().remainingNanos());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail = endForReader(new CancelledException(
                    "interrupted while waiting for the stream", ctx.providerId(), endpoint, 0, null, e));
        } finally {
            lock.unlock();
        }
        if (fail != null) {
            cancelUpstream();
            throw fail;
        }
        request(more);
        return chunk;
    }

    /**
     * Spins until {@link #signals} moves from {@code seen} or {@link #SPIN_NANOS} have passed, yielding now and
     * then so that a producer sharing the reader's core can run. Without the lock.
     */
    private void spin(int seen) {
        long start = System.nanoTime();
        for (int i = 1; signals == seen; i++) {
            if ((i & 15) == 0) {
                if (System.nanoTime() - start >= SPIN_NANOS) {
                    return;
                }
                Thread.yield();
            } else {
                Thread.onSpinWait();
            }
        }
    }

    /** Gives the reader every chunk waiting, in one step: the empty batch becomes the producer's buffer. Under lock. */
    private void swap() {
        ArrayDeque<ChatChunk> b = buffer;
        buffer = taken;
        taken = b;
    }

    /**
     * The whole result once {@link #next()} has returned null, or once the producer completed; before that,
     * what the provider's {@link #partialResult} supplier says, or an estimate.
     */
    @Override
    public ProviderResult result() {
        Supplier<ProviderResult> p;
        long content;
        lock.lock();
        try {
            if (result != null) {
                return result;
            }
            p = partial;
            content = contentReceived;
        } finally {
            lock.unlock();
        }
        if (p != null) {
            return p.get();
        }
        return estimate(content);
    }

    /**
     * Ends the stream for the reader, unless it has read the end: a waiting {@link #next()} and a waiting
     * {@link #put} return at once, the chunks waiting are dropped, and the upstream is cancelled unless it
     * had ended. Idempotent; any thread.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (endRead || readerFailure != null) {
                return;
            }
            endForReader(
                    new CancelledException("stream closed before its end", ctx.providerId(), endpoint, 0, null, null));
        } finally {
            lock.unlock();
        }
        cancelUpstream();
    }

    // ---------------------------------------------------------------- internals

    /** Whether the producer's chunks are no longer wanted. Under lock. */
    private boolean ended() {
        return upstreamEnded || readerFailure != null || cancelWanted;
    }

    /** Waits on {@code c} for at most {@code leftNanos}, or with no limit when it is {@link Long#MAX_VALUE}. */
    private static void await(Condition c, long leftNanos) throws InterruptedException {
        if (leftNanos == Long.MAX_VALUE) {
            c.await();
        } else {
            c.awaitNanos(leftNanos);
        }
    }

    /** The chunks that hold room: waiting in the buffer, or in the reader's batch. Under lock. */
    private int held() {
        return buffer.size() + inReader;
    }

    /** Under lock. */
    private void add(ChatChunk chunk) {
        buffer.add(chunk);
        received++;
        if (!chunk.text().isEmpty()) {
            contentReceived++;
        }
        signals++;
        readable.signal();
    }

    /**
     * How much more to request now, counted as requested: all the free room when it is at least half the
     * capacity (or on {@code first} request, any room), else nothing. Under lock.
     */
    private long refill(boolean first) {
        if (demandHook == null || ended()) {
            return 0;
        }
        long free = capacity - held() - outstanding;
        if (free <= 0 || (!first && free < refillAt)) {
            return 0;
        }
        outstanding += free;
        return free;
    }

    private void request(long n) {
        if (n <= 0) {
            return;
        }
        hooks.lock();
        try {
            LongConsumer hook;
            lock.lock();
            try {
                if (cancelWanted || upstreamEnded) {
                    return;
                }
                hook = demandHook;
            } finally {
                lock.unlock();
            }
            hook.accept(n);
        } catch (RuntimeException e) {
            onError(e);
        } finally {
            hooks.unlock();
        }
    }

    /** Ends the stream for the reader with {@code e}; wakes both sides. Under lock. */
    private InferenceException endForReader(InferenceException e) {
        readerFailure = e;
        // The reader's batch is its own: it drops it when it sees the end.
        buffer.clear();
        inReader = 0;
        wakeBoth();
        return e;
    }

    /** The producer's end is queued for the reader: the result, or a failure; wakes both sides. Under lock. */
    private void endUpstream(ProviderResult r, InferenceException failure) {
        upstreamEnded = true;
        result = r;
        upstreamFailure = failure;
        wakeBoth();
    }

    /** Wakes a waiting reader and a waiting producer. Under lock. */
    private void wakeBoth() {
        signals++;
        readable.signalAll();
        writable.signalAll();
    }

    /** The deadline passed: ends the stream for the reader. Under lock. */
    private InferenceException timedOut() {
        return endForReader(new InferenceTimeoutException(
                "the request's deadline passed while waiting for the stream (" + received + " chunks received)",
                ctx.providerId(),
                endpoint,
                true,
                null));
    }

    /** Ends the stream at its deadline (found by a waiting producer) and cancels the upstream. */
    private void expire() {
        lock.lock();
        try {
            if (readerFailure != null || endRead) {
                return;
            }
            timedOut();
        } finally {
            lock.unlock();
        }
        cancelUpstream();
    }

    /** Runs the cancel hook, once, unless the upstream ended by itself. */
    private void cancelUpstream() {
        Runnable hook;
        lock.lock();
        try {
            if (cancelWanted) {
                return;
            }
            cancelWanted = true;
            hook = claimCancelHook();
        } finally {
            lock.unlock();
        }
        if (hook != null) {
            runCancel(hook);
        }
    }

    /**
     * The cancel hook to run now, marked as run: null unless a cancel is wanted, a hook is registered that
     * has not run, and the producer has not ended by itself. Under lock.
     */
    private Runnable claimCancelHook() {
        if (!cancelWanted || cancelHook == null || cancelRan || producerDone) {
            return null;
        }
        cancelRan = true;
        return cancelHook;
    }

    private void runCancel(Runnable hook) {
        hooks.lock();
        try {
            hook.run();
        } catch (RuntimeException e) {
            LOG.debug(
                    "{}: cancelling a stream's upstream threw {}",
                    ctx.providerId(),
                    e.getClass().getSimpleName());
        } finally {
            hooks.unlock();
        }
    }

    private InferenceException asInference(Throwable t, Function<Throwable, InferenceException> mapper) {
        if (t instanceof InferenceException) {
            return (InferenceException) t;
        }
        if (mapper != null) {
            try {
                InferenceException mapped = mapper.apply(t);
                if (mapped != null) {
                    return mapped;
                }
            } catch (RuntimeException e) {
                LOG.debug(
                        "{}: mapping a stream's error threw {}",
                        ctx.providerId(),
                        e.getClass().getSimpleName());
            }
        }
        return new InferenceException(
                "the stream failed with " + t.getClass().getSimpleName()
                        + (t.getMessage() == null ? "" : ": " + t.getMessage()),
                ctx.providerId(),
                endpoint,
                0,
                null,
                t);
    }

    /** What a stream that has not ended produced, by estimate; nothing when no chunk with text came. */
    private ProviderResult estimate(long content) {
        Usage usage = Usage.ZERO;
        if (content > 0) {
            long chars = StreamAssembler.promptChars(ctx.request());
            usage = Usage.estimated(Math.max(1, (chars + 3) / 4), content);
        }
        return ProviderResult.builder()
                .finishReason(FinishReason.OTHER)
                .usage(usage)
                .model(ctx.request().model().orElse(""))
                .build();
    }

    @Override
    public String toString() {
        lock.lock();
        try {
            return "StreamBridge[" + held() + "/" + capacity + " buffered, " + received + " received"
                    + (upstreamEnded ? ", upstream ended" : "") + (readerFailure != null ? ", ended for reader" : "")
                    + "]";
        } finally {
            lock.unlock();
        }
    }
}
