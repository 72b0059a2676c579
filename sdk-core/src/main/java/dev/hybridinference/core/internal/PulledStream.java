package dev.hybridinference.core.internal;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import java.util.NoSuchElementException;

/**
 * The iterator side of a {@link ChatStream}, written once: a subclass pulls chunks and builds the final
 * response; this class buffers one chunk for {@link #hasNext()} and guards {@link #response()}. Not
 * thread-safe, like the streams it serves. Internal: not part of the public API.
 */
public abstract class PulledStream implements ChatStream {
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

    @Override
    public final boolean hasNext() {
        if (pending != null) {
            return true;
        }
        if (ended) {
            return false;
        }
        ChatChunk c = pull();
        if (c == null) {
            ended = true;
            response = finish();
            return false;
        }
        pending = c;
        return true;
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
            throw new IllegalStateException("the stream has not been read to its end");
        }
        return response;
    }
}
