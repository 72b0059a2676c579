package dev.hybridinference.localgpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.Cancellable;
import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.RandomModels;
import dev.hybridinference.testkit.LogCapture;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Deadlines and cancellation on the local engine, in every call mode. The model is small but the work is
 * long: a 3000-token answer, or a 3500-token prompt, takes seconds on one thread, far past the 200 ms
 * limit. Each test checks the exception, that the call returned within the limit plus a generous margin
 * (this catches a deadline that is ignored; it is not a speed test), and that the next call in line runs
 * at once, which shows the engine stopped the abandoned work. The clients compute on the CPU ({@code device:
 * cpu}) on every machine: the work must stay long, as a GPU would not keep it.
 */
@Timeout(60)
class LocalGpuDeadlineTest {
    private static final Duration LIMIT = Duration.ofMillis(200);
    private static final long BOUND_MS = LIMIT.toMillis() + 2_000;
    private static final String LONG_PROMPT = "Hello world ".repeat(350);

    @TempDir
    static Path dir;

    static LocalGpuClient client;

    @BeforeAll
    static void load() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        Path model = dir.resolve("long-work.gguf");
        RandomModels.write(
                model, new RandomModels.Shape("llama", 384, 4, 6, 2, 1024, 4096, 300, true), GgufWriter.Q8_0, 3);
        client = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(model)
                .threads(1)
                .contextSize(4096)
                .build();
    }

    @AfterAll
    static void close() {
        if (client != null) {
            client.close();
        }
    }

    /** A long answer to a short prompt: the time goes to generated tokens. */
    private static ChatRequest longAnswer(Duration timeout) {
        return request("Hello world", 3000, timeout);
    }

    /** A long prompt and one token: the time goes to the prompt. */
    private static ChatRequest longPrompt(Duration timeout) {
        return request(LONG_PROMPT, 1, timeout);
    }

    private static ChatRequest request(String user, int maxTokens, Duration timeout) {
        RequestOptions options = timeout == null
                ? RequestOptions.DEFAULTS
                : RequestOptions.builder().timeout(timeout).build();
        return ChatRequest.builder()
                .user(user)
                .maxTokens(maxTokens)
                .options(options)
                .build();
    }

    private static long millisSince(long start) {
        return (System.nanoTime() - start) / 1_000_000;
    }

    /** Runs a call that must time out at its deadline, within the bound, with a partial receipt. */
    private static void timesOut(ThrowingCallable call) {
        long start = System.nanoTime();
        assertThatThrownBy(call).isInstanceOfSatisfying(InferenceTimeoutException.class, e -> {
            assertThat(e.isDeadlineExceeded()).isTrue();
            assertThat(e.partialReceipt()).isPresent();
        });
        assertThat(millisSince(start)).as("ms until the call returned").isLessThan(BOUND_MS);
    }

    /** The call after an abandoned one starts at once: the engine is free. */
    private static void nextCallRunsPromptly() {
        long start = System.nanoTime();
        ChatResponse r = client.chat(request("Hi", 2, null));
        // A sanity bound against an engine still held by the abandoned call, not a speed check.
        assertThat(millisSince(start)).as("ms for the next call").isLessThan(5_000);
        assertThat(r.usage().inputTokens()).isPositive();
    }

    @Test
    void aBlockingCallEndsAtItsDeadlineWhileGenerating() {
        timesOut(() -> client.chat(longAnswer(LIMIT)));
        nextCallRunsPromptly();
    }

    @Test
    void aBlockingCallEndsAtItsDeadlineWhileReadingItsPromptAndTheAbandonIsLogged() {
        try (LogCapture log = LogCapture.start()) {
            timesOut(() -> client.chat(longPrompt(LIMIT)));
            nextCallRunsPromptly();
            assertThat(String.join("", log.lines(Level.WARNING)))
                    .contains("call abandoned at its deadline")
                    .contains("of 3518 prompt tokens computed");
        }
    }

    @Test
    void anAsyncCallEndsAtItsDeadline() {
        timesOut(() -> unwrap(client.chatAsync(longPrompt(LIMIT))));
        nextCallRunsPromptly();
        timesOut(() -> unwrap(client.chatAsync(longAnswer(LIMIT))));
        nextCallRunsPromptly();
    }

    @Test
    void aPulledStreamEndsAtItsDeadline() {
        timesOut(() -> {
            try (ChatStream s = client.stream(longAnswer(LIMIT))) {
                s.forEachRemaining(c -> {});
            }
        });
        nextCallRunsPromptly();
        timesOut(() -> {
            try (ChatStream s = client.stream(longPrompt(LIMIT))) {
                s.forEachRemaining(c -> {});
            }
        });
        nextCallRunsPromptly();
    }

    @Test
    void aPushedStreamEndsAtItsDeadline() {
        timesOut(() -> unwrap(push(longAnswer(LIMIT))));
        nextCallRunsPromptly();
    }

    @Test
    void aCallWaitingBehindAnotherEndsAtItsDeadline() {
        // One call at a time: the second waits in the queue, not in the batch.
        try (LocalGpuClient serial = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(dir.resolve("long-work.gguf"))
                .threads(1)
                .contextSize(4096)
                .maxBatch(1)
                .build()) {
            // 4000 tokens take this model a second or more on a fast machine's core: the first call is still
            // running when its deadline, and the second's before it, pass.
            CompletableFuture<ChatResponse> first =
                    serial.chatAsync(request("Hello world", 4000, Duration.ofMillis(400)));
            // Queued behind the first call for all of its 200 ms.
            timesOut(() -> serial.chat(longPrompt(LIMIT)));
            assertThatThrownBy(first::get).hasCauseInstanceOf(InferenceTimeoutException.class);
        }
        nextCallRunsPromptly();
    }

    @Test
    void aCallBatchedBesideAnotherEndsAtItsDeadlineAndTheOtherGoesOn() {
        CompletableFuture<ChatResponse> other = client.chatAsync(request("Hello world", 40, null));
        timesOut(() -> client.chat(longPrompt(LIMIT)));
        assertThat(other.join().usage().outputTokens()).isEqualTo(40);
    }

    @Test
    void anInterruptedBlockingCallIsCancelled() throws InterruptedException {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread caller = new Thread(() -> {
            try {
                client.chat(longAnswer(null));
            } catch (RuntimeException e) {
                failure.set(e);
            }
        });
        caller.start();
        Thread.sleep(150);
        long start = System.nanoTime();
        caller.interrupt();
        caller.join(BOUND_MS);
        assertThat(caller.isAlive()).isFalse();
        assertThat(millisSince(start)).isLessThan(BOUND_MS);
        assertThat(failure.get())
                .isInstanceOfSatisfying(
                        CancelledException.class,
                        e -> assertThat(e.partialReceipt()).isPresent());
        nextCallRunsPromptly();
    }

    @Test
    void aCancelledAsyncCallFreesTheEngine() throws InterruptedException {
        CompletableFuture<ChatResponse> f = client.chatAsync(longAnswer(null));
        Thread.sleep(150);
        f.cancel(true);
        nextCallRunsPromptly();
    }

    @Test
    void closingAPulledStreamEarlyFreesTheEngine() {
        try (ChatStream s = client.stream(longAnswer(null))) {
            assertThat(s.hasNext()).isTrue();
            s.next();
        }
        nextCallRunsPromptly();
    }

    @Test
    void aCancelledPushedStreamEndsWithCancelledException() throws Exception {
        // Cancelled while the engine reads the long prompt, so the pushing thread waits for its first chunk.
        // (The core's push loop does not report a cancel that lands between two chunks, or before the
        // stream opened; this test keeps clear of both windows.)
        CompletableFuture<ChatResponse> done = push(longPrompt(null));
        Thread.sleep(300);
        long start = System.nanoTime();
        cancellable.get().cancel();
        assertThatThrownBy(() -> done.get(BOUND_MS, TimeUnit.MILLISECONDS))
                .isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(CancelledException.class);
        assertThat(millisSince(start)).isLessThan(BOUND_MS);
        nextCallRunsPromptly();
    }

    @Test
    void closingTheClientEndsTheRunningAndTheQueuedCalls() throws InterruptedException {
        LocalGpuClient own = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(dir.resolve("long-work.gguf"))
                .threads(1)
                .contextSize(4096)
                .build();
        CompletableFuture<ChatResponse> running = own.chatAsync(longAnswer(null));
        CompletableFuture<ChatResponse> queued = own.chatAsync(longPrompt(null));
        Thread.sleep(100);
        long start = System.nanoTime();
        own.close();
        assertThatThrownBy(() -> unwrap(running)).isInstanceOf(ProviderUnavailableException.class);
        assertThatThrownBy(() -> unwrap(queued))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("closed");
        assertThat(millisSince(start)).isLessThan(BOUND_MS);
    }

    private static final AtomicReference<Cancellable> cancellable = new AtomicReference<>();

    /** A pushed stream as a future of its response. */
    private static CompletableFuture<ChatResponse> push(ChatRequest request) {
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        cancellable.set(client.stream(request, new StreamHandler() {
            @Override
            public void onChunk(ChatChunk chunk) {}

            @Override
            public void onComplete(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(InferenceException error) {
                done.completeExceptionally(error);
            }
        }));
        return done;
    }

    /** The future's value, or the exception it failed with. */
    private static ChatResponse unwrap(CompletableFuture<ChatResponse> f) throws InterruptedException {
        try {
            return f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException) {
                throw (RuntimeException) e.getCause();
            }
            throw new AssertionError(e.getCause());
        }
    }
}
