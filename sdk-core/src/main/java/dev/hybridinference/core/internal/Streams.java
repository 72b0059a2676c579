package dev.hybridinference.core.internal;

import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.StreamHandler;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/** Push streaming built on pull streaming, shared by every client. Internal: not part of the public API. */
public final class Streams {
    private Streams() {}

    /**
     * Opens a stream with {@code opener} on {@code executor} and pushes it to {@code handler}: chunks in
     * order, then exactly one of complete or error. A handler that throws cancels the stream.
     *
     * @param providerId the client's id, for the error a throwing handler gets
     * @return a handle that closes the stream, cancelling the call
     */
    public static Cancellable push(
            Supplier<ChatStream> opener, StreamHandler handler, Executor executor, String providerId) {
        AtomicBoolean cancelled = new AtomicBoolean();
        ChatStream[] current = new ChatStream[1];
        executor.execute(() -> {
            ChatStream s;
            try {
                s = opener.get();
            } catch (InferenceException e) {
                handler.onError(e);
                return;
            }
            synchronized (current) {
                current[0] = s;
            }
            if (cancelled.get()) {
                s.close();
            }
            pump(s, handler, providerId);
        });
        return () -> {
            if (cancelled.compareAndSet(false, true)) {
                synchronized (current) {
                    if (current[0] != null) {
                        current[0].close();
                    }
                }
            }
        };
    }

    private static void pump(ChatStream s, StreamHandler handler, String providerId) {
        try (s) {
            while (s.hasNext()) {
                ChatChunk c = s.next();
                try {
                    handler.onChunk(c);
                } catch (RuntimeException e) {
                    s.close();
                    handler.onError(new CancelledException(
                            "stream handler threw " + e.getClass().getSimpleName() + "; stream cancelled",
                            providerId,
                            null,
                            0,
                            null,
                            e));
                    return;
                }
            }
            handler.onComplete(s.response());
        } catch (InferenceException e) {
            handler.onError(e);
        }
    }
}
