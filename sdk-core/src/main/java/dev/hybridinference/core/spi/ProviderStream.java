package dev.hybridinference.core.spi;

import dev.hybridinference.core.ChatChunk;

/**
 * A provider's open stream, read by the core on one thread. {@link #close()} may come from any thread
 * and must unblock a pending {@link #next()}.
 */
public interface ProviderStream extends AutoCloseable {
    /**
     * The next chunk, blocking until it arrives; null at the normal end of the stream.
     *
     * @throws dev.hybridinference.core.InferenceException when the stream fails or is cut
     */
    ChatChunk next();

    /**
     * The whole result once {@link #next()} has returned null. Before that (the stream failed or was
     * closed), what was assembled so far: the core calls it then to put the tokens already streamed on
     * the failed call's receipt, so a provider reports the usage it knows, or an estimate marked with
     * {@link dev.hybridinference.core.Usage#estimated()}.
     */
    ProviderResult result();

    /** Releases the connection, cancelling the call if it has not ended. Idempotent. */
    @Override
    void close();
}
