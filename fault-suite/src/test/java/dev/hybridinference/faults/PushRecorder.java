package dev.hybridinference.faults;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.StreamHandler;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** A stream handler that records what was pushed to it and counts terminal callbacks. Thread-safe. */
final class PushRecorder implements StreamHandler {
    private final StringBuilder text = new StringBuilder();
    private final AtomicInteger chunks = new AtomicInteger();
    private final AtomicInteger terminals = new AtomicInteger();
    private final CountDownLatch done = new CountDownLatch(1);
    private volatile ChatResponse response;
    private volatile InferenceException error;
    volatile Throwable startFailure;
    volatile dev.hybridinference.core.Cancellable handle;
    volatile boolean hung;

    @Override
    public void onChunk(ChatChunk chunk) {
        synchronized (text) {
            text.append(chunk.text());
        }
        chunks.incrementAndGet();
    }

    @Override
    public void onComplete(ChatResponse response) {
        this.response = response;
        terminals.incrementAndGet();
        done.countDown();
    }

    @Override
    public void onError(InferenceException error) {
        this.error = error;
        terminals.incrementAndGet();
        done.countDown();
    }

    /** Waits for the first terminal callback; false when none came in time. */
    boolean await(Duration limit) {
        try {
            return done.await(limit.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    String text() {
        synchronized (text) {
            return text.toString();
        }
    }

    int chunks() {
        return chunks.get();
    }

    int terminals() {
        return terminals.get();
    }

    ChatResponse response() {
        return response;
    }

    InferenceException error() {
        return error;
    }

    /** How it ended, in a few words, for assertion messages. */
    String describe() {
        if (startFailure != null) {
            return "start threw " + startFailure;
        }
        if (hung) {
            return "no terminal callback in time (" + chunks() + " chunks)";
        }
        if (error != null) {
            return "onError " + error.getClass().getSimpleName() + ": " + error.getMessage();
        }
        return response != null ? "onComplete" : "still running";
    }
}
