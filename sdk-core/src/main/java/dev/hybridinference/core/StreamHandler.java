package dev.hybridinference.core;

/**
 * Receives a streamed answer pushed by {@link InferenceClient#stream(ChatRequest, StreamHandler)}.
 *
 * <p>Calls come from one thread at a time, in order: any number of {@link #onChunk}, then exactly one of
 * {@link #onComplete} or {@link #onError}. That last call always comes, once, however the stream ends: it
 * completes, it fails, or it is cancelled through its {@link Cancellable} (before it opens, while it
 * opens, mid-stream, from several threads at once). A cancelled stream ends with {@link #onError} and a
 * {@link CancelledException} carrying the partial receipt where the client has one (a stream cancelled
 * before it was sent anywhere may have none). A cancel after the end adds no call.
 *
 * <p>An exception thrown by {@link #onChunk} cancels the stream and is reported once, as the cause of
 * the {@link CancelledException} passed to {@link #onError}. An exception thrown by {@link #onComplete}
 * or {@link #onError} is logged and otherwise ignored.
 */
public interface StreamHandler {
    /** A new piece of the answer. */
    void onChunk(ChatChunk chunk);

    /** The stream ended normally; {@code response} holds the whole answer and its receipt. */
    void onComplete(ChatResponse response);

    /**
     * The stream failed or was cancelled; no further calls follow. Always an {@link InferenceException},
     * whatever went wrong inside the client.
     */
    void onError(InferenceException error);
}
