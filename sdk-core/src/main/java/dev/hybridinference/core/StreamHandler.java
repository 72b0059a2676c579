package dev.hybridinference.core;

/**
 * Receives a streamed answer pushed by {@link InferenceClient#stream(ChatRequest, StreamHandler)}.
 *
 * <p>Calls come from one thread at a time, in order: any number of {@link #onChunk}, then exactly one of
 * {@link #onComplete} or {@link #onError}. An exception thrown by a handler method cancels the stream
 * and is reported once through {@link #onError}.
 */
public interface StreamHandler {
    /** A new piece of the answer. */
    void onChunk(ChatChunk chunk);

    /** The stream ended normally; {@code response} holds the whole answer and its receipt. */
    void onComplete(ChatResponse response);

    /** The stream failed or was cancelled; no further calls follow. */
    void onError(InferenceException error);
}
