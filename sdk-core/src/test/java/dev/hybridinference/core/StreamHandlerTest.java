package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A {@link StreamHandler} written as a lambda, or from three lambdas with {@link StreamHandler#of}. */
@Timeout(30)
class StreamHandlerTest {
    private static InferenceClient echo(String delay) {
        return InferenceClients.loader().env(Map.of()).load("providers:\n  e: {type: echo, delay: " + delay + "}\n");
    }

    @Test
    void aLambdaReceivesTheChunks() throws InterruptedException {
        List<String> chunks = new CopyOnWriteArrayList<>();
        CountDownLatch last = new CountDownLatch(1);
        try (InferenceClient c = echo("0ms")) {
            c.stream(ChatRequest.of("one two three"), chunk -> {
                chunks.add(chunk.text());
                if (chunk.finishReason() != null) {
                    last.countDown();
                }
            });
            assertThat(last.await(10, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(String.join("", chunks)).isEqualTo("one two three");
    }

    @Test
    void ofCallsExactlyOneEndOnCompletion() throws InterruptedException {
        StringBuilder text = new StringBuilder();
        List<ChatResponse> completed = new CopyOnWriteArrayList<>();
        List<InferenceException> failed = new CopyOnWriteArrayList<>();
        CountDownLatch end = new CountDownLatch(1);
        try (InferenceClient c = echo("0ms")) {
            c.stream(
                    ChatRequest.of("one two"),
                    StreamHandler.of(
                            chunk -> text.append(chunk.text()),
                            r -> {
                                completed.add(r);
                                end.countDown();
                            },
                            e -> {
                                failed.add(e);
                                end.countDown();
                            }));
            assertThat(end.await(10, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(text).hasToString("one two");
        assertThat(completed)
                .singleElement()
                .satisfies(r -> assertThat(r.text()).isEqualTo("one two"));
        assertThat(failed).isEmpty();
    }

    @Test
    void ofCallsExactlyOneEndOnCancellation() throws InterruptedException {
        List<ChatResponse> completed = new CopyOnWriteArrayList<>();
        List<InferenceException> failed = new CopyOnWriteArrayList<>();
        CountDownLatch end = new CountDownLatch(1);
        try (InferenceClient c = echo("5s")) {
            Cancellable call = c.stream(
                    ChatRequest.of("one two"),
                    StreamHandler.of(
                            chunk -> {},
                            r -> {
                                completed.add(r);
                                end.countDown();
                            },
                            e -> {
                                failed.add(e);
                                end.countDown();
                            }));
            call.cancel();
            call.cancel();
            assertThat(end.await(10, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(completed).isEmpty();
        assertThat(failed).singleElement().isInstanceOf(CancelledException.class);
    }
}
