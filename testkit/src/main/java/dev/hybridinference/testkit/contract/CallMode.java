package dev.hybridinference.testkit.contract;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.StreamHandler;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The four ways to make a call, behind one method, so that a contract test runs the same scenario all four
 * ways and compares what each delivered.
 */
public enum CallMode {
    /** {@link InferenceClient#chat}. */
    BLOCKING,
    /** {@link InferenceClient#chatAsync}. */
    ASYNC,
    /** {@link InferenceClient#stream(ChatRequest)}, read to the end, then {@link ChatStream#response()}. */
    PULL,
    /** {@link InferenceClient#stream(ChatRequest, StreamHandler)}. */
    PUSH;

    /**
     * What one call delivered.
     *
     * @param chunks the texts of the chunks, in order (streams only)
     * @param response the answer, or null when the call failed
     * @param error the failure, or null when the call answered
     * @param terminalCallbacks for a pushed stream, how many of onComplete and onError came (exactly one is
     *     right); 1 for the other modes
     */
    public record Outcome(List<String> chunks, ChatResponse response, InferenceException error, int terminalCallbacks) {
        /** Copies the list. */
        public Outcome {
            chunks = List.copyOf(chunks);
        }

        /** The chunks' texts joined. */
        public String streamedText() {
            return String.join("", chunks);
        }

        /** How many chunks carried text. */
        public long textChunks() {
            return chunks.stream().filter(c -> !c.isEmpty()).count();
        }
    }

    /**
     * Makes the call and returns what it delivered; never throws the call's {@link InferenceException}.
     * Anything else leaving the call, or a result that takes longer than {@code patience} (a lost callback,
     * a hang), fails with an {@link AssertionError}.
     */
    public Outcome run(InferenceClient client, ChatRequest request, Duration patience) {
        try {
            switch (this) {
                case BLOCKING:
                    try {
                        return new Outcome(List.of(), client.chat(request), null, 1);
                    } catch (InferenceException e) {
                        return new Outcome(List.of(), null, e, 1);
                    }
                case ASYNC:
                    return async(client, request, patience);
                case PULL:
                    return pull(client, request);
                case PUSH:
                    return push(client, request, patience);
                default:
                    throw new AssertionError(this);
            }
        } catch (InferenceException e) {
            throw new AssertionError(
                    this + ": the call threw " + e + " instead of reporting it through its future or handler", e);
        } catch (RuntimeException e) {
            throw new AssertionError(this + ": only InferenceExceptions may leave a call, got " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    private static Outcome async(InferenceClient client, ChatRequest request, Duration patience)
            throws InterruptedException {
        CompletableFuture<ChatResponse> f = client.chatAsync(request);
        try {
            return new Outcome(List.of(), f.get(patience.toMillis(), TimeUnit.MILLISECONDS), null, 1);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof InferenceException) {
                return new Outcome(List.of(), null, (InferenceException) e.getCause(), 1);
            }
            throw new AssertionError("ASYNC: the future failed with a non-InferenceException", e.getCause());
        } catch (TimeoutException e) {
            f.cancel(true);
            throw new AssertionError("ASYNC: no result within " + patience, e);
        }
    }

    private static Outcome pull(InferenceClient client, ChatRequest request) {
        List<String> chunks = new ArrayList<>();
        ChatStream s;
        try {
            s = client.stream(request);
        } catch (InferenceException e) {
            return new Outcome(chunks, null, e, 1);
        }
        try (s) {
            for (ChatChunk c : s) {
                chunks.add(c.text());
            }
            return new Outcome(chunks, s.response(), null, 1);
        } catch (InferenceException e) {
            return new Outcome(chunks, null, e, 1);
        }
    }

    private static Outcome push(InferenceClient client, ChatRequest request, Duration patience)
            throws InterruptedException {
        List<String> chunks = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger ends = new AtomicInteger();
        AtomicReference<ChatResponse> response = new AtomicReference<>();
        AtomicReference<InferenceException> error = new AtomicReference<>();
        CountDownLatch ended = new CountDownLatch(1);
        client.stream(request, new StreamHandler() {
            @Override
            public void onChunk(ChatChunk chunk) {
                if (ends.get() > 0) {
                    throw new AssertionError("a chunk after the end");
                }
                chunks.add(chunk.text());
            }

            @Override
            public void onComplete(ChatResponse r) {
                ends.incrementAndGet();
                response.set(r);
                ended.countDown();
            }

            @Override
            public void onError(InferenceException e) {
                ends.incrementAndGet();
                error.set(e);
                ended.countDown();
            }
        });
        if (!ended.await(patience.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("PUSH: no onComplete or onError within " + patience);
        }
        // A second terminal callback would follow at once if the client sent one; give it that moment.
        Thread.sleep(20);
        return new Outcome(chunks, response.get(), error.get(), ends.get());
    }
}
