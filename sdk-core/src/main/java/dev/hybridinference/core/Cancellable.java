package dev.hybridinference.core;

/** A handle on a running call. */
@FunctionalInterface
public interface Cancellable {
    /**
     * Cancels the call: its connection is closed and, unless it has already ended, its handler gets one
     * {@link StreamHandler#onError} with a {@link CancelledException} that carries the partial receipt
     * (what was tried and what it cost so far). The handler's end comes once, whenever the cancel comes:
     * before the stream opens, while it opens, mid-stream, or from several threads at once. After the
     * stream has ended, a cancel does nothing and no further callback follows.
     *
     * <p>Returns without waiting for the handler's last callback, which comes on the stream's own thread
     * as soon as that thread is free: at once if it is waiting for the provider, after the handler's
     * current {@link StreamHandler#onChunk} returns if it is in one. Idempotent, safe from any thread,
     * the handler's own callbacks included.
     */
    void cancel();
}
