package dev.hybridinference.core;

import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.LoggerFactory;

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
 *
 * <p>Only {@link #onChunk} must be written, so a lambda is a handler: {@code client.stream(request, c ->
 * System.out.print(c.text()))}. Its end then goes to the defaults: {@link #onComplete} does nothing and
 * {@link #onError} logs the failure at warning level. {@link #of} takes all three as lambdas.
 */
@FunctionalInterface
public interface StreamHandler {
    /** A new piece of the answer. */
    void onChunk(ChatChunk chunk);

    /**
     * The stream ended normally; {@code response} holds the whole answer and its receipt. Does nothing
     * unless overridden.
     */
    default void onComplete(ChatResponse response) {}

    /**
     * The stream failed or was cancelled; no further calls follow. Always an {@link InferenceException},
     * whatever went wrong inside the client. Unless overridden, logs the failure at warning level (through
     * SLF4J), so that a handler written as a lambda never loses an error silently.
     */
    default void onError(InferenceException error) {
        LoggerFactory.getLogger(StreamHandler.class)
                .warn(
                        "a stream from {} failed and its handler has no onError: {}: {}",
                        error.providerId().orElse("a client"),
                        error.getClass().getSimpleName(),
                        error.getMessage());
    }

    /**
     * A handler from three functions, with the same contract: chunks in order, then exactly one of {@code
     * onComplete} or {@code onError}.
     */
    static StreamHandler of(
            Consumer<ChatChunk> onChunk, Consumer<ChatResponse> onComplete, Consumer<InferenceException> onError) {
        Objects.requireNonNull(onChunk, "onChunk");
        Objects.requireNonNull(onComplete, "onComplete");
        Objects.requireNonNull(onError, "onError");
        return new StreamHandler() {
            @Override
            public void onChunk(ChatChunk chunk) {
                onChunk.accept(chunk);
            }

            @Override
            public void onComplete(ChatResponse response) {
                onComplete.accept(response);
            }

            @Override
            public void onError(InferenceException error) {
                onError.accept(error);
            }
        };
    }
}
