package dev.hybridinference.core;

/** A handle on a running call. */
@FunctionalInterface
public interface Cancellable {
    /**
     * Cancels the call: its connection is closed and its handler gets a {@link CancelledException}
     * unless it has already finished. Idempotent and safe from any thread.
     */
    void cancel();
}
