package dev.hybridinference.core.internal;

import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.StreamHandler;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Push streaming built on pull streaming, shared by every client. Internal: not part of the public API.
 *
 * <p>The one rule it keeps: each push stream ends with exactly one call of {@link
 * StreamHandler#onComplete} or {@link StreamHandler#onError}, whenever and however often it is cancelled.
 * All handler calls come from the stream's pump thread, one at a time, so a cancel never delivers a
 * callback itself: it wakes the pump (closing the pull stream, or cutting the opening short) and the pump
 * reports the end. A cancelled stream's error is a {@link CancelledException} carrying the partial receipt
 * when the pull stream kept one (see {@link PulledStream#failure()}).
 */
public final class Streams {
    private static final Logger LOG = LoggerFactory.getLogger(Streams.class);

    private Streams() {}

    /** How a push stream opens the pull stream it reads. */
    public interface Opener {
        /**
         * Opens the stream, or throws. Called once, on the pump thread, even when {@link #cancel()} came
         * first: an opener that knows it was cancelled throws a {@link CancelledException}, with its partial
         * receipt if it has one; a stream it returns anyway is closed unread.
         */
        ChatStream open();

        /**
         * Cuts an opening in progress short, or makes a later {@link #open()} fail fast. Any thread.
         * (Abstract, so that a lambda still means the {@code Supplier} overload of {@code push}.)
         */
        void cancel();
    }

    /**
     * Opens a stream with {@code opener} on {@code executor} and pushes it to {@code handler}: chunks in
     * order, then exactly one of complete or error. A stream cancelled before it started to open is not
     * opened at all; its handler gets a {@link CancelledException} without a receipt, as nothing was sent.
     *
     * @param providerId the client's id, for the errors made here
     * @return a handle that cancels the stream
     */
    public static Cancellable push(
            Supplier<ChatStream> opener, StreamHandler handler, Executor executor, String providerId) {
        Objects.requireNonNull(opener, "opener");
        AtomicBoolean cancelledEarly = new AtomicBoolean();
        return push(
                new Opener() {
                    @Override
                    public ChatStream open() {
                        if (cancelledEarly.get()) {
                            throw new CancelledException(
                                    "stream cancelled before it opened", providerId, null, 0, null, null);
                        }
                        return opener.get();
                    }

                    @Override
                    public void cancel() {
                        cancelledEarly.set(true);
                    }
                },
                handler,
                executor,
                providerId);
    }

    /**
     * Opens a stream with {@code opener} on {@code executor} and pushes it to {@code handler}: chunks in
     * order, then exactly one of complete or error. A handler that throws cancels the stream.
     *
     * @param providerId the client's id, for the errors made here
     * @return a handle that cancels the stream
     */
    public static Cancellable push(Opener opener, StreamHandler handler, Executor executor, String providerId) {
        Push p = new Push(
                Objects.requireNonNull(opener, "opener"), Objects.requireNonNull(handler, "handler"), providerId);
        try {
            executor.execute(p);
        } catch (RejectedExecutionException e) {
            // The client's threads are gone (it was closed): the handler still hears of the end.
            p.terminate(new CancelledException("client is closed", providerId, null, 0, null, e));
        }
        return p;
    }

    /** One push stream: the pump that reads and delivers, and the cancel handle. */
    private static final class Push implements Runnable, Cancellable {
        private final Opener opener;
        private final StreamHandler handler;
        private final String providerId;
        private final Object lock = new Object();
        private final AtomicBoolean terminated = new AtomicBoolean();
        private final AtomicBoolean closeStarted = new AtomicBoolean();
        private final CountDownLatch closeDone = new CountDownLatch(1);
        private boolean cancelled;
        private ChatStream stream;

        Push(Opener opener, StreamHandler handler, String providerId) {
            this.opener = opener;
            this.handler = handler;
            this.providerId = providerId;
        }

        @Override
        public void cancel() {
            ChatStream s;
            synchronized (lock) {
                if (cancelled) {
                    return;
                }
                cancelled = true;
                s = stream;
            }
            if (s == null) {
                try {
                    opener.cancel();
                } catch (RuntimeException e) {
                    LOG.debug(
                            "{}: cancelling a stream's opening threw {}",
                            providerId,
                            e.getClass().getSimpleName());
                }
            } else {
                close(s);
            }
        }

        private boolean isCancelled() {
            synchronized (lock) {
                return cancelled;
            }
        }

        @Override
        public void run() {
            ChatStream s;
            try {
                s = opener.open();
            } catch (Throwable t) {
                // Read the flag after the failure: a cancel that came before it explains it.
                terminate(isCancelled() ? asCancelled(t, null) : asInference(t));
                return;
            }
            boolean cancelledWhileOpening;
            synchronized (lock) {
                stream = s;
                cancelledWhileOpening = cancelled;
            }
            if (cancelledWhileOpening) {
                close(s);
                terminate(asCancelled(null, s));
                return;
            }
            pump(s);
        }

        private void pump(ChatStream s) {
            while (true) {
                ChatChunk chunk;
                try {
                    if (!s.hasNext()) {
                        break;
                    }
                    chunk = s.next();
                } catch (Throwable t) {
                    endOnFailure(s, t);
                    return;
                }
                try {
                    handler.onChunk(chunk);
                } catch (Throwable t) {
                    close(s);
                    InferenceException why = failureOf(s, null);
                    CancelledException e = new CancelledException(
                            "stream handler threw " + t.getClass().getSimpleName() + "; stream cancelled",
                            providerId,
                            null,
                            0,
                            null,
                            t);
                    why.partialReceipt().ifPresent(e::withPartialReceipt);
                    terminate(e);
                    return;
                }
            }
            ChatResponse response;
            try {
                response = s.response();
            } catch (Throwable t) {
                // The stream ended without its answer: it was closed before its end, by a cancel.
                endOnFailure(s, t);
                return;
            }
            close(s);
            if (terminated.compareAndSet(false, true)) {
                try {
                    handler.onComplete(response);
                } catch (Throwable t) {
                    LOG.warn(
                            "{}: a stream handler's onComplete threw {}; ignored",
                            providerId,
                            t.getClass().getSimpleName(),
                            t);
                }
            }
        }

        /**
         * Closes the stream after it failed with {@code t} and delivers the failure: as a cancellation when a
         * cancel came before it (the flag is read before the close), else as the failure itself.
         */
        private void endOnFailure(ChatStream s, Throwable t) {
            boolean byCancel = isCancelled();
            close(s);
            terminate(byCancel ? asCancelled(t, s) : asInference(t));
        }

        /** Delivers the stream's one error, unless it has ended already. */
        void terminate(InferenceException e) {
            if (!terminated.compareAndSet(false, true)) {
                return;
            }
            try {
                handler.onError(e);
            } catch (Throwable t) {
                LOG.warn(
                        "{}: a stream handler's onError threw {}; ignored",
                        providerId,
                        t.getClass().getSimpleName(),
                        t);
            }
        }

        /**
         * Closes the stream once; a second caller waits for the first to finish, so that what the close
         * recorded (the partial receipt) is there to read afterwards.
         */
        private void close(ChatStream s) {
            if (closeStarted.compareAndSet(false, true)) {
                try {
                    s.close();
                } catch (Throwable t) {
                    LOG.debug(
                            "{}: closing a stream threw {}",
                            providerId,
                            t.getClass().getSimpleName());
                } finally {
                    closeDone.countDown();
                }
                return;
            }
            try {
                closeDone.await();
            } catch (InterruptedException e) {
                // The client is shutting down: report without waiting any longer.
                Thread.currentThread().interrupt();
            }
        }

        /** The failure that best explains the stream's end: what the stream recorded, else {@code seen}. */
        private InferenceException failureOf(ChatStream s, Throwable seen) {
            Optional<InferenceException> recorded =
                    s instanceof PulledStream ? ((PulledStream) s).failure() : Optional.empty();
            InferenceException fromSeen = seen == null ? null : asInference(seen);
            if (recorded.isPresent()
                    && (fromSeen == null
                            || recorded.get().partialReceipt().isPresent()
                            || fromSeen.partialReceipt().isEmpty())) {
                return recorded.get();
            }
            return fromSeen != null
                    ? fromSeen
                    : new CancelledException("stream closed before its end", providerId, null, 0, null, null);
        }

        /** A cancelled stream's error: a {@link CancelledException}, with the partial receipt if there is one. */
        private InferenceException asCancelled(Throwable seen, ChatStream s) {
            InferenceException why = s != null ? failureOf(s, seen) : seen != null ? asInference(seen) : null;
            if (why instanceof CancelledException) {
                return why;
            }
            CancelledException e = new CancelledException("stream cancelled", providerId, null, 0, null, why);
            if (why != null) {
                why.partialReceipt().ifPresent(e::withPartialReceipt);
            }
            return e;
        }

        private InferenceException asInference(Throwable t) {
            if (t instanceof InferenceException) {
                return (InferenceException) t;
            }
            return new InferenceException(
                    "unexpected " + t.getClass().getSimpleName() + " in stream"
                            + (t.getMessage() == null ? "" : ": " + t.getMessage()),
                    providerId,
                    null,
                    0,
                    null,
                    t);
        }
    }
}
