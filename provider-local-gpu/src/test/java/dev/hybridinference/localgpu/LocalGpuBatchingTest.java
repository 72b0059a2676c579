package dev.hybridinference.localgpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.RandomModels;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Continuous batching: concurrent calls share the engine's forward passes, yet each gets the answer it
 * gets alone; a long prompt is read in turns beside running streams; an ended call leaves the batch while
 * the others go on; calls on one session wait for each other; close ends everything. Interleaving is
 * observed through the order in which chunks and answers arrive, never through timing.
 */
@Timeout(120)
class LocalGpuBatchingTest {
    @TempDir
    static Path dir;

    static Path model;
    static LocalGpuClient client;

    @BeforeAll
    static void load() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        model = dir.resolve("batching.gguf");
        RandomModels.write(
                model, new RandomModels.Shape("llama", 256, 2, 4, 2, 512, 4096, 300, true), GgufWriter.Q8_0, 11);
        client = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(model)
                .threads(2)
                .contextSize(2048)
                .maxBatch(8)
                // Each test counts the steps its prompts take: none may find another test's prompt cached.
                .reusePrefixes(false)
                .build();
    }

    @AfterAll
    static void close() {
        if (client != null) {
            client.close();
        }
    }

    private static ChatRequest ask(String text, int maxTokens) {
        return ChatRequest.builder().user(text).maxTokens(maxTokens).build();
    }

    private static ChatRequest ask(String text, int maxTokens, String session) {
        return ChatRequest.builder()
                .user(text)
                .maxTokens(maxTokens)
                .options(RequestOptions.builder().sessionId(session).build())
                .build();
    }

    @Test
    void concurrentGreedyCallsGiveTheTextsTheyGiveAlone() throws Exception {
        List<ChatRequest> requests = new ArrayList<>();
        String[] prompts = {"Hello", "the world", "Hello world ".repeat(12), "a b c d", "once upon", "x", "hi there"};
        for (int i = 0; i < prompts.length; i++) {
            requests.add(ask(prompts[i], 6 + 5 * i));
        }
        List<String> alone = new ArrayList<>();
        try (LocalGpuClient serial = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(model)
                .threads(2)
                .contextSize(2048)
                .maxBatch(1)
                .build()) {
            for (ChatRequest r : requests) {
                alone.add(serial.chat(r).text());
            }
        }
        // Blocking calls from their own threads, and one stream, all at once.
        List<CompletableFuture<String>> calls = new ArrayList<>();
        for (ChatRequest r : requests.subList(0, requests.size() - 1)) {
            calls.add(client.chatAsync(r).thenApply(ChatResponse::text));
        }
        StringBuilder streamed = new StringBuilder();
        try (ChatStream s = client.stream(requests.get(requests.size() - 1))) {
            for (ChatChunk c : s) {
                streamed.append(c.text());
            }
        }
        for (int i = 0; i < calls.size(); i++) {
            assertThat(calls.get(i).get()).as("call %d", i).isEqualTo(alone.get(i));
        }
        assertThat(streamed.toString()).isEqualTo(alone.get(alone.size() - 1));
    }

    @Test
    void aStreamKeepsProducingWhileAnotherCallReadsALongPrompt() throws Exception {
        String longText = "Hello world ".repeat(150);
        List<String> recorded = traced();
        try (ChatStream running = client.stream(ask("Hello", 1500))) {
            assertThat(running.hasNext()).isTrue(); // the stream is decoding
            // About 1500 prompt tokens: at most 63 rows a step beside the running stream, so 24 steps or more.
            ChatResponse r = client.chat(ask(longText, 1));
            assertThat(r.usage().inputTokens()).isGreaterThan(1400);
            assertThat(running.hasNext()).isTrue(); // still running
        } finally {
            client.engineTrace((e, r) -> {});
        }
        // A copy: the engine thread may still be adding the step it was in when the trace was reset.
        List<String> events = List.copyOf(recorded);
        // The prompt's last step is traced before its answer returns (its end may come after).
        int from = events.indexOf("admitted " + longText + "/-");
        int to = events.lastIndexOf("computed " + longText + "/-") + 1;
        assertThat(from).isNotNegative();
        List<String> during = events.subList(from, to);
        long promptSteps = during.stream()
                .filter(e -> e.equals("computed " + longText + "/-"))
                .count();
        long streamSteps =
                during.stream().filter(e -> e.equals("computed Hello/-")).count();
        assertThat(promptSteps).as("steps that read the long prompt").isGreaterThanOrEqualTo(24);
        // The stream decoded a token in every one of those steps: it was not held up by the prompt.
        assertThat(streamSteps).as("tokens the stream decoded meanwhile").isGreaterThanOrEqualTo(promptSteps);
    }

    @Test
    void aShortPromptIsNotStarvedByLongOnesReadAtTheSameTime() throws Exception {
        String longText = "Hello world ".repeat(150); // about 1500 tokens: 24 steps or more each
        List<String> recorded = traced();
        // Streams open on this thread: the short prompt arrives last.
        try (ChatStream long1 = client.stream(ask(longText, 1));
                ChatStream long2 = client.stream(ask("the world " + longText, 1));
                ChatStream small = client.stream(ask("Hello", 1))) {
            for (ChatStream s : List.of(small, long1, long2)) {
                s.forEachRemaining(c -> {});
            }
        } finally {
            client.engineTrace((e, r) -> {});
        }
        // A copy: the engine thread may still be adding the step it was in when the trace was reset.
        List<String> events = List.copyOf(recorded);
        // Prompts take turns at the step's rows: the short one is read within a few steps, not after the
        // long ones that came before it.
        int shortDone = events.lastIndexOf("computed Hello/-");
        assertThat(shortDone).isNotNegative();
        assertThat(shortDone).isLessThan(events.lastIndexOf("computed " + longText + "/-"));
        assertThat(shortDone).isLessThan(events.lastIndexOf("computed the world " + longText + "/-"));
    }

    @Test
    void anExpiredAndACancelledCallLeaveWhileTheOthersFinishIntact() throws Exception {
        ChatRequest a = ask("Hello", 40);
        ChatRequest b = ask("the world", 30);
        String aloneA = client.chat(a).text();
        String aloneB = client.chat(b).text();

        CompletableFuture<ChatResponse> fa = client.chatAsync(a);
        // 2000 tokens take this model 300 ms or more alone on a fast 2-core machine (a step at least 0.06 ms
        // and more in a batch): a deadline well below that passes while the call is queued or decoding.
        ChatRequest expiring = ChatRequest.builder()
                .user("Hello world")
                .maxTokens(2000)
                .options(RequestOptions.builder().timeout(Duration.ofMillis(60)).build())
                .build();
        CompletableFuture<ChatResponse> fe = client.chatAsync(expiring);
        AtomicReference<Throwable> cancelled = new AtomicReference<>();
        Thread caller = new Thread(() -> {
            try {
                client.chat(ask("once upon", 2000));
            } catch (RuntimeException e) {
                cancelled.set(e);
            }
        });
        caller.start();
        CompletableFuture<ChatResponse> fb = client.chatAsync(b);
        // The cancelled call is in the batch or queued: either way it ends as cancelled.
        Thread.sleep(100);
        caller.interrupt();
        caller.join();

        assertThat(cancelled.get()).isInstanceOf(CancelledException.class);
        assertThatThrownBy(fe::get)
                .isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(InferenceTimeoutException.class);
        assertThat(fa.get().text()).isEqualTo(aloneA);
        assertThat(fb.get().text()).isEqualTo(aloneB);
        // The engine is free of the ended calls: a new call answers as it does alone.
        assertThat(client.chat(a).text()).isEqualTo(aloneA);
    }

    @Test
    void callsOnOneSessionRunOneAfterTheOtherWhileOtherSessionsGoOn() throws Exception {
        ChatRequest first = ask("Hello world", 200, "same");
        ChatRequest second = ask("the world", 4, "same");
        ChatRequest other = ask("the world", 4, "other");
        String alone = client.chat(ask("the world", 4)).text();
        List<String> recorded = traced();
        try (ChatStream s1 = client.stream(first)) {
            assertThat(s1.hasNext()).isTrue(); // running
            CompletableFuture<ChatResponse> f2 = client.chatAsync(second);
            CompletableFuture<ChatResponse> f3 = client.chatAsync(other);
            s1.forEachRemaining(c -> {});
            assertThat(s1.response().usage().outputTokens()).isEqualTo(200);
            assertThat(f2.get().text()).isEqualTo(alone);
            assertThat(f3.get().text()).isEqualTo(alone);
        } finally {
            client.engineTrace((e, r) -> {});
        }
        // A copy: the engine thread may still be adding the step it was in when the trace was reset.
        List<String> events = List.copyOf(recorded);
        // In the engine's order: the second call on the session joined only after the first left; the call
        // on another session joined and finished while the first ran.
        assertThat(events).containsSubsequence("ended Hello world/same", "admitted the world/same");
        assertThat(events)
                .containsSubsequence("admitted the world/other", "ended the world/other", "ended Hello world/same");
    }

    @Test
    void aCallWithoutASessionTakesTheIdleScratchCacheHoldingMostOfItsPrompt() throws Exception {
        ChatRequest a = ask("Hello world ".repeat(20), 300);
        ChatRequest b = ask("the world ".repeat(20), 6);
        try (LocalGpuClient c = LocalGpuClient.builder()
                        .device("cpu")
                        .modelPath(model)
                        .threads(2)
                        .contextSize(1024)
                        .maxBatch(2)
                        .build();
                LocalGpuClient clearing = LocalGpuClient.builder()
                        .device("cpu")
                        .modelPath(model)
                        .threads(2)
                        .contextSize(1024)
                        .maxBatch(2)
                        .reusePrefixes(false)
                        .build()) {
            java.util.concurrent.CountDownLatch aEnded = new java.util.concurrent.CountDownLatch(1);
            c.engineTrace((event, r) -> {
                if (event.equals("ended") && r == a) {
                    aEnded.countDown();
                }
            });
            String bText;
            // a holds one scratch cache (its unread stream keeps it decoding) while b takes the other.
            try (ChatStream s = c.stream(a)) {
                assertThat(s.hasNext()).isTrue();
                ChatResponse first = c.chat(b);
                assertThat(first.usage().cachedInputTokens()).isZero();
                bText = first.text();
            }
            assertThat(aEnded.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            // a's cache was freed last, and holds a's prompt: a again reuses all of it but the last token.
            ChatResponse again = c.chat(a.toBuilder().maxTokens(4).build());
            assertThat(again.usage().cachedInputTokens())
                    .isEqualTo(again.usage().inputTokens() - 1);
            // b again passes over the cache freed last (a's) for the one holding b's prompt.
            ChatResponse bAgain = c.chat(b);
            assertThat(bAgain.usage().cachedInputTokens())
                    .isEqualTo(bAgain.usage().inputTokens() - 1);
            assertThat(bAgain.text()).isEqualTo(bText);
            // Without reuse the same calls compute their whole prompts, and answer the same.
            clearing.chat(b);
            ChatResponse fresh = clearing.chat(b);
            assertThat(fresh.usage().cachedInputTokens()).isZero();
            assertThat(fresh.text()).isEqualTo(bText);
        }
    }

    /** Records the engine's admissions and ends as {@code "admitted <user text>/<session>"}, in its order. */
    private static List<String> traced() {
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        client.engineTrace((event, r) -> events.add(event + " "
                + r.messages().get(r.messages().size() - 1).content() + "/"
                + r.options().sessionId().orElse("-")));
        return events;
    }

    @Test
    void closeEndsRunningAndQueuedCalls() throws Exception {
        LocalGpuClient own = LocalGpuClient.builder()
                .device("cpu")
                .modelPath(model)
                .threads(1)
                .contextSize(4096)
                .maxBatch(2)
                .build();
        ChatStream running1 = own.stream(ask("Hello", 3000));
        ChatStream running2 = own.stream(ask("the world", 3000));
        assertThat(running1.hasNext()).isTrue();
        assertThat(running2.hasNext()).isTrue();
        // Two more than maxBatch: they wait.
        ChatStream queued1 = own.stream(ask("once upon", 3000));
        CompletableFuture<ChatResponse> queued2 = own.chatAsync(ask("a b c", 3000));
        own.close();
        for (ChatStream s : List.of(running1, running2)) {
            assertThatThrownBy(() -> s.forEachRemaining(c -> {}))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .hasMessageContaining("closed");
        }
        assertThatThrownBy(() -> queued1.forEachRemaining(c -> {}))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("closed before the call ran");
        assertThatThrownBy(queued2::get)
                .isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(ProviderUnavailableException.class);
        assertThatThrownBy(() -> own.chat(ask("Hello", 2))).isInstanceOf(IllegalStateException.class);
    }
}
