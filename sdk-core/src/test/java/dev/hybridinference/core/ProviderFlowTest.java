package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.cost.CostLedger;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The flow every provider inherits: receipts, ledger, streaming in both styles, cancellation. */
@Timeout(20)
class ProviderFlowTest {
    private final CostLedger ledger = new CostLedger();

    private InferenceClient echo(String delay) {
        return InferenceClients.loader()
                .ledger(ledger)
                .load("providers:\n  e: {type: echo, delay: " + delay
                        + ", pricing: {type: per-token, inputPerMillion: 1, outputPerMillion: 1}}\n");
    }

    @Test
    void pullStreamDeliversChunksInOrderThenTheReceipt() {
        try (InferenceClient c = echo("0s");
                ChatStream s = c.stream(ChatRequest.of("alpha beta gamma"))) {
            List<String> pieces = new ArrayList<>();
            for (ChatChunk chunk : s) {
                pieces.add(chunk.text());
            }
            assertThat(pieces).containsExactly("alpha", " beta", " gamma");
            ChatResponse r = s.response();
            assertThat(r.text()).isEqualTo("alpha beta gamma");
            assertThat(r.receipt().timeToFirstToken()).isPresent();
            assertThat(r.receipt().timeToFirstToken().get())
                    .isLessThanOrEqualTo(r.receipt().totalTime());
            assertThat(r.receipt().usage()).isEqualTo(new Usage(3, 3, 0));
            assertThat(r.receipt().cost()).isEqualByComparingTo("0.000006");
        }
        assertThat(ledger.totals().calls()).isEqualTo(1);
    }

    @Test
    void responseBeforeTheEndIsAnError() {
        try (InferenceClient c = echo("0s");
                ChatStream s = c.stream(ChatRequest.of("a b"))) {
            s.next();
            assertThatThrownBy(s::response).isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void pushStreamCallsTheHandlerInOrder() throws Exception {
        try (InferenceClient c = echo("0s")) {
            List<String> events = new ArrayList<>();
            CountDownLatch done = new CountDownLatch(1);
            c.stream(ChatRequest.of("one two"), new StreamHandler() {
                @Override
                public void onChunk(ChatChunk chunk) {
                    events.add("chunk:" + chunk.text());
                }

                @Override
                public void onComplete(ChatResponse response) {
                    events.add("complete:" + response.text());
                    done.countDown();
                }

                @Override
                public void onError(InferenceException error) {
                    events.add("error");
                    done.countDown();
                }
            });
            assertThat(done.await(5, TimeUnit.SECONDS)).isTrue();
            assertThat(events).containsExactly("chunk:one", "chunk: two", "complete:one two");
        }
    }

    @Test
    void aHandlerThatThrowsCancelsTheStreamAndHearsWhy() throws Exception {
        try (InferenceClient c = echo("0s")) {
            AtomicReference<InferenceException> error = new AtomicReference<>();
            CountDownLatch done = new CountDownLatch(1);
            c.stream(ChatRequest.of("one two three"), new StreamHandler() {
                @Override
                public void onChunk(ChatChunk chunk) {
                    throw new IllegalStateException("boom");
                }

                @Override
                public void onComplete(ChatResponse response) {
                    done.countDown();
                }

                @Override
                public void onError(InferenceException e) {
                    error.set(e);
                    done.countDown();
                }
            });
            assertThat(done.await(5, TimeUnit.SECONDS)).isTrue();
            assertThat(error.get()).isInstanceOf(CancelledException.class).hasMessageContaining("handler threw");
            assertThat(error.get().getCause()).hasMessage("boom");
        }
    }

    @Test
    void cancellingAnAsyncCallCancelsTheProviderWorkAndRecordsAPartialReceipt() throws Exception {
        try (InferenceClient c = echo("30s")) {
            CompletableFuture<ChatResponse> f = c.chatAsync(ChatRequest.of("slow"));
            Thread.sleep(100);
            f.cancel(true);
            // The provider's wait ends through its cancel hook, long before its 30 s delay.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (ledger.totals().calls() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertThat(ledger.totals().calls()).isEqualTo(1);
        }
    }

    @Test
    void asyncCallCompletesWithTheReceipt() throws Exception {
        try (InferenceClient c = echo("0s")) {
            ChatResponse r = c.chatAsync(ChatRequest.of("hi there")).get(5, TimeUnit.SECONDS);
            assertThat(r.text()).isEqualTo("hi there");
            assertThat(r.receipt().providerId()).isEqualTo("e");
            assertThat(r.receipt().deploymentKind()).isEqualTo(DeploymentKind.LOCAL);
        }
    }

    @Test
    void closingAStreamEarlyCancelsItAndRecordsItOnce() {
        try (InferenceClient c = echo("0s")) {
            ChatStream s = c.stream(ChatRequest.of("a b c d"));
            s.next();
            s.close();
            s.close();
            assertThat(s.hasNext()).isFalse();
        }
        assertThat(ledger.totals().calls()).isEqualTo(1);
    }

    @Test
    void aClosedClientRefusesCalls() {
        InferenceClient c = echo("0s");
        c.close();
        c.close();
        assertThatThrownBy(() -> c.chat(ChatRequest.of("x")))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
    }

    @Test
    void requestsValidateTheirValues() {
        assertThatThrownBy(() -> ChatRequest.builder().build()).hasMessageContaining("at least one message");
        assertThatThrownBy(() -> ChatRequest.builder().temperature(3)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> ChatRequest.builder().maxTokens(0)).hasMessageContaining("maxTokens");
        assertThatThrownBy(() -> Message.tool(" ", "x")).hasMessageContaining("toolCallId");
        ChatRequest r = ChatRequest.builder().user("secret prompt").maxTokens(5).build();
        assertThat(r.toString()).doesNotContain("secret prompt");
        assertThat(r.toBuilder().maxTokens(9).build().maxTokens().getAsInt()).isEqualTo(9);
    }
}
