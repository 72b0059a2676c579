package dev.hybridinference.core.internal;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceException;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The iterator side of a {@link ChatStream}, written once: a subclass pulls chunks and builds the final
 * response; this class buffers one chunk for {@link #hasNext()} and guards {@link #response()}. Not
 * thread-safe, like the streams it serves, except that {@link #close()} may run on another thread.
 *
 * <p>It also keeps the one failure that ended the stream early. A subclass whose {@link #close()} builds
 * a {@link dev.hybridinference.core.CancelledException} with the partial receipt hands it to {@link
 * #recordFailure}; a reader whose read then fails gets that exception rather than whatever the closed
 * connection threw, and the push layer ({@link Streams}) reads it through {@link #failure()}. Internal: not
 * part of the public API.
 */
public abstract class PulledStream implements ChatStream {
    private final AtomicReference<InferenceException> failure = new AtomicReference<>();
    private ChatChunk pending;
    private volatile boolean ended;
    private ChatResponse response;

    /** The next chunk, blocking; null at the normal end. Throws the stream's failure. */
    protected abstract ChatChunk pull();

    /** The whole answer; called once, after {@link #pull()} returned null. */
    protected abstract ChatResponse finish();

    /** Marks the stream ended (it failed or was closed): {@link #hasNext()} answers false from now on. */
    protected final void end() {
        ended = true;
    }

    /** Whether the stream has ended, normally or not. */
    protected final boolean isEnded() {
        return ended;
    }

    /**
     * Records why the stream ended early, unless a failure was recorded already.
     *
     * @return the failure now recorded: {@code e}, or the one recorded before it
     */
    protected final InferenceException recordFailure(InferenceException e) {
        InferenceException before = failure.compareAndExchange(null, e);
        return before == null ? e : before;
    }

    /**
     * The failure that ended the stream: what a read threw, or what its close recorded; empty while it
     * runs, after its normal end, and where the implementation recorded nothing.
     */
    public final Optional<InferenceException> failure() {
        return Optional.ofNullable(failure.get());
    }

    @Override
    public final boolean hasNext() {
        if (pending != null) {
            return true;
        }
        if (ended) {
            return false;
        }
        try {
            ChatChunk c = pull();
            if (c == null) {
                ended = true;
                response = finish();
                return false;
            }
            pending = c;
            return true;
        } catch (InferenceException e) {
            ended = true;
            // A close on another thread may have recorded the stream's failure first: that one wins.
            throw recordFailure(e);
        }
    }

    @Override
    public final ChatChunk next() {
        if (!hasNext()) {
            throw new NoSuchElementException("stream has ended");
        }
        ChatChunk c = pending;
        pending = null;
        return c;
    }

    @Override
    public final ChatResponse response() {
        if (response == null) {
            // Ended early (closed, possibly by another thread, or failed): the reason, with its receipt.
            InferenceException f = failure.get();
            if (f != null) {
                throw f;
            }
            throw new IllegalStateException("the stream has not been read to its end");
        }
        return response;
    }
}
