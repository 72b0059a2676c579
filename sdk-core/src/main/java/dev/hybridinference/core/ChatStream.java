package dev.hybridinference.core;

import java.util.Iterator;

/**
 * A streamed answer read by pulling: iterate the chunks, then read {@link #response()}. Closing it
 * before the end cancels the call and closes its connection. Not thread-safe: one reader at a time,
 * though {@link #close()} may be called from any thread, also while the reader is blocked.
 *
 * <p>{@link Iterator#hasNext()} blocks until the next chunk arrives and throws the call's {@link
 * InferenceException} if it fails.
 */
public interface ChatStream extends Iterator<ChatChunk>, Iterable<ChatChunk>, AutoCloseable {
    /**
     * The whole answer and its receipt.
     *
     * @throws InferenceException the failure that ended the stream early, such as the {@link
     *     CancelledException} of a close from another thread (with its partial receipt)
     * @throws IllegalStateException if the stream is still running and has not been read to the end
     */
    ChatResponse response();

    /** This stream, so that it can be used in a for-each loop; it can be iterated only once. */
    @Override
    default Iterator<ChatChunk> iterator() {
        return this;
    }

    /**
     * Cancels the call if it is still running and frees its connection. Idempotent, and safe from any
     * thread while another reads: a read blocked in {@link #hasNext()} then throws a {@link
     * CancelledException} carrying the partial receipt, and the call is recorded once (in the cost ledger
     * and by the routing policy), whichever thread gets there first. After a close, {@link #hasNext()}
     * answers false.
     */
    @Override
    void close();
}
