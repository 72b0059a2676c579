package dev.hybridinference.vllm;

import static dev.hybridinference.vllm.VllmClientHttpTest.COMPLETION;
import static dev.hybridinference.vllm.VllmClientHttpTest.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.LogCapture;
import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Without a configured model, concurrent first calls discover it once, each within its own deadline. */
@Timeout(30)
class VllmModelDiscoveryTest {
    private static final String MODELS =
            "{\"object\":\"list\",\"data\":[{\"id\":\"served-model\",\"object\":\"model\"}]}";

    private final MockWebServer server = new MockWebServer();
    private final AtomicInteger modelRequests = new AtomicInteger();
    private final AtomicReference<MockResponse> modelsAnswer = new AtomicReference<>(json(200, MODELS));
    private final CostLedger ledger = new CostLedger();
    private final ExecutorService callers = Executors.newFixedThreadPool(20);
    private VllmClient client;

    @RegisterExtension
    final Closer closer = new Closer();

    @BeforeEach
    void start() throws Exception {
        server.setDispatcher(new Dispatcher() {
            @Override
            public MockResponse dispatch(RecordedRequest request) {
                if (request.getUrl().encodedPath().equals("/v1/models")) {
                    modelRequests.incrementAndGet();
                    return modelsAnswer.get();
                }
                return json(200, COMPLETION);
            }
        });
        closer.closing(server).start();
        client = closer.closing(VllmClient.builder()
                .id("auto")
                .baseUrl(server.url("/").toString())
                .scrapeInterval(Duration.ZERO)
                .scrapeTimeout(Duration.ofSeconds(5))
                .ledger(ledger)
                .build());
        closer.closing(callers::shutdownNow); // registered last, so the callers stop first
    }

    private static ChatRequest within(Duration timeout) {
        return ChatRequest.builder()
                .user("hi")
                .options(RequestOptions.builder().timeout(timeout).build())
                .build();
    }

    /** The model list, its headers held back {@code millis} ms. */
    private static MockResponse modelsAfter(long millis) {
        return new MockResponse.Builder()
                .code(200)
                .addHeader("Content-Type", "application/json")
                .body(MODELS)
                .headersDelay(millis, TimeUnit.MILLISECONDS)
                .build();
    }

    private <T> List<Future<T>> concurrently(int n, Callable<T> call) {
        List<Future<T>> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(callers.submit(call));
        }
        return out;
    }

    @Test
    void concurrentFirstCallsShareOneDiscovery() throws Exception {
        modelsAnswer.set(modelsAfter(200));
        for (Future<ChatResponse> f : concurrently(20, () -> client.chat(ChatRequest.of("hi")))) {
            assertThat(f.get().text()).isEqualTo("Hello!");
        }
        assertThat(modelRequests.get()).isEqualTo(1);
        assertThat(client.info().models()).containsExactly("served-model");
    }

    @Test
    void eachCallerWaitsNoLongerThanItsOwnDeadlineWhileDiscoveryGoesOn() throws Exception {
        // Discovery takes 1.5 s; every caller allows 0.6 s.
        modelsAnswer.set(modelsAfter(1500));
        Duration deadline = Duration.ofMillis(600);
        List<Future<Long>> results = concurrently(20, () -> {
            long start = System.nanoTime();
            try {
                client.chat(within(deadline));
                throw new AssertionError("expected the deadline to pass");
            } catch (InferenceTimeoutException e) {
                assertThat(e.isDeadlineExceeded()).isTrue();
                assertThat(e.partialReceipt()).isPresent();
                return System.nanoTime() - start;
            }
        });
        for (Future<Long> f : results) {
            assertThat(Duration.ofNanos(f.get())).isLessThan(deadline.plusSeconds(1));
        }
        // The discovery the callers gave up on completes for the next ones, without a second request.
        long until = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (client.info().models().isEmpty() && System.nanoTime() < until) {
            Thread.sleep(20);
        }
        assertThat(client.chat(within(deadline)).text()).isEqualTo("Hello!");
        assertThat(modelRequests.get()).isEqualTo(1);
        assertThat(ledger.totals().calls()).isEqualTo(21);
    }

    @Test
    void aFailedDiscoveryIsRetriedAfterAShortBackoffNotAtOnce() throws Exception {
        modelsAnswer.set(json(503, "{\"error\":{\"message\":\"loading model\",\"code\":503}}"));
        try (LogCapture logs = LogCapture.start()) {
            assertThatThrownBy(() -> client.chat(ChatRequest.of("hi")))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .hasMessageContaining("loading model");
            assertThat(logs.lines(Level.WARNING)).anyMatch(l -> l.contains("model discovery failed"));
        }
        // Within the backoff the failure is answered from memory: the server is not asked again.
        assertThatThrownBy(() -> client.chat(ChatRequest.of("hi")))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("loading model")
                .hasMessageContaining("next try in");
        assertThat(modelRequests.get()).isEqualTo(1);

        modelsAnswer.set(json(200, MODELS));
        Thread.sleep(1100);
        assertThat(client.chat(ChatRequest.of("hi")).text()).isEqualTo("Hello!");
        assertThat(modelRequests.get()).isEqualTo(2);
        assertThat(client.chat(ChatRequest.of("hi")).text()).isEqualTo("Hello!");
        assertThat(modelRequests.get()).isEqualTo(2);
    }

    @Test
    void callersSharingAFailedDiscoveryEachGetTheirOwnErrorAndReceipt() throws Exception {
        modelsAnswer.set(new MockResponse.Builder()
                .code(503)
                .addHeader("Content-Type", "application/json")
                .body("{\"error\":{\"message\":\"loading model\",\"code\":503}}")
                .headersDelay(300, TimeUnit.MILLISECONDS)
                .build());
        List<Future<InferenceException>> results = concurrently(8, () -> {
            try {
                client.chat(ChatRequest.of("hi"));
                throw new AssertionError("expected discovery to fail");
            } catch (InferenceException e) {
                return e;
            }
        });
        IdentityHashMap<Object, Boolean> distinct = new IdentityHashMap<>();
        for (Future<InferenceException> f : results) {
            InferenceException e = f.get();
            assertThat(e).isInstanceOf(ProviderUnavailableException.class);
            assertThat(e.statusCode()).isEqualTo(503);
            assertThat(e.partialReceipt()).isPresent();
            distinct.put(e, true);
        }
        assertThat(distinct).hasSize(8);
        assertThat(modelRequests.get()).isEqualTo(1);
        assertThat(ledger.totals().calls()).isEqualTo(8);
    }
}
