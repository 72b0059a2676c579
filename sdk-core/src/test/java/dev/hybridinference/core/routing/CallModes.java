package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.StreamHandler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** The four ways to make a call, behind one method, so that a test can run the same scenario all four ways. */
enum CallModes {
    BLOCKING,
    ASYNC,
    PULL,
    PUSH;

    /**
     * Makes the call and returns the answer's text, or throws the failure as this way of calling delivers
     * it (unwrapped from the future, or passed to the push handler). Waits at most 5 s for an asynchronous
     * result, so that a lost callback fails the test instead of hanging it.
     */
    String call(InferenceClient client, ChatRequest request) throws Throwable {
        switch (this) {
            case BLOCKING:
                return client.chat(request).text();
            case ASYNC:
                try {
                    return client.chatAsync(request).get(5, TimeUnit.SECONDS).text();
                } catch (ExecutionException e) {
                    throw e.getCause();
                }
            case PULL:
                try (ChatStream s = client.stream(request)) {
                    StringBuilder sb = new StringBuilder();
                    for (ChatChunk c : s) {
                        sb.append(c.text());
                    }
                    assertThat(s.response().text()).isEqualTo(sb.toString());
                    return sb.toString();
                }
            case PUSH:
                CompletableFuture<String> done = new CompletableFuture<>();
                AtomicInteger ends = new AtomicInteger();
                StringBuilder sb = new StringBuilder();
                client.stream(request, new StreamHandler() {
                    @Override
                    public void onChunk(ChatChunk chunk) {
                        sb.append(chunk.text());
                    }

                    @Override
                    public void onComplete(ChatResponse response) {
                        ends.incrementAndGet();
                        done.complete(sb.toString());
                    }

                    @Override
                    public void onError(InferenceException error) {
                        ends.incrementAndGet();
                        done.completeExceptionally(error);
                    }
                });
                try {
                    return done.get(5, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    throw e.getCause();
                } finally {
                    assertThat(ends).hasValue(1);
                }
            default:
                throw new AssertionError(this);
        }
    }
}
