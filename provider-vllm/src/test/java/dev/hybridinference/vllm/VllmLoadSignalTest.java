package dev.hybridinference.vllm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.LoadSnapshot;
import dev.hybridinference.testkit.LogCapture;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Load from /metrics in the vocabulary of each server kind, and an honest "none" when there is none. */
@Timeout(30)
class VllmLoadSignalTest {
    @RegisterExtension
    final Closer closer = new Closer();

    private VllmClient client(List<String> urls) {
        return closer.closing(VllmClient.builder()
                .id("pool")
                .baseUrls(urls)
                .model("m")
                .scrapeInterval(Duration.ZERO)
                .build());
    }

    /** A server whose /health passes and whose /metrics answers what {@code metrics} holds at the time. */
    private MockWebServer metricsServer(AtomicReference<MockResponse> metrics) throws Exception {
        MockWebServer s = closer.closing(new MockWebServer());
        s.setDispatcher(new Dispatcher() {
            @Override
            public MockResponse dispatch(RecordedRequest request) {
                if (request.getUrl().encodedPath().equals("/metrics")) {
                    return metrics.get();
                }
                return new MockResponse.Builder().code(200).build();
            }
        });
        s.start();
        return s;
    }

    private static MockResponse text(String body) {
        return new MockResponse.Builder()
                .addHeader("Content-Type", "text/plain; version=0.0.4")
                .body(body)
                .build();
    }

    @Test
    void llamaCppGaugesAreReadAndRankTheReplicas() {
        OpenAiCompatibleServer llama = closer.closing(OpenAiCompatibleServer.builder()
                .responder(q -> "llama")
                .metricsStyle(OpenAiCompatibleServer.MetricsStyle.LLAMACPP)
                .start());
        OpenAiCompatibleServer vllm = closer.closing(
                OpenAiCompatibleServer.builder().responder(q -> "vllm").start());
        llama.setWaiting(7);
        llama.setKvCacheUsage(0.3);
        VllmClient client = client(List.of(llama.baseUrl(), vllm.baseUrl()));
        client.refreshLoad();

        ReplicaStatus s = client.replicas().get(0);
        assertThat(s.loadSignal()).isEqualTo("llamacpp");
        assertThat(s.loadSignalReason()).isNull();
        assertThat(s.waiting()).isEqualTo(7.0);
        assertThat(s.running()).isEqualTo(0.0);
        assertThat(s.kvCacheUsage()).isEqualTo(0.3);
        assertThat(s.scrapedAt()).isNotNull();
        assertThat(client.replicas().get(1).loadSignal()).isEqualTo("vllm");
        // The queue llama.cpp reports steers calls to the other replica.
        for (int i = 0; i < 5; i++) {
            assertThat(client.chat(ChatRequest.of("hi")).text()).isEqualTo("vllm");
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(
            delimiter = '|',
            value = {
                "vllm     | vllm:num_requests_running{model_name=\"m\"} 2.0\\nvllm:num_requests_waiting{model_name=\"m\"} 5.0\\n"
                        + "vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\\n | 2 | 5 | 0.25",
                "vllm     | vllm:num_requests_running 1\\nvllm:num_requests_waiting 4\\nvllm:gpu_cache_usage_perc 0.5\\n"
                        + " | 1 | 4 | 0.5",
                "sglang   | # TYPE sglang:num_running_reqs gauge\\nsglang:num_running_reqs{model_name=\"m\"} 3.0\\n"
                        + "sglang:num_queue_reqs{model_name=\"m\"} 6.0\\nsglang:token_usage{model_name=\"m\"} 0.28\\n"
                        + " | 3 | 6 | 0.28",
                "llamacpp | llamacpp:requests_processing 2\\nllamacpp:requests_deferred 9\\n | 2 | 9 | NaN",
                "tgi      | tgi_batch_current_size 4\\ntgi_queue_size 11\\ntgi_request_count 100\\n | 4 | 11 | NaN",
            })
    void eachServersVocabularyIsRecognised(String signal, String body, double running, double waiting, double kv)
            throws Exception {
        AtomicReference<MockResponse> metrics = new AtomicReference<>(text(body.replace("\\n", "\n")));
        MockWebServer server = metricsServer(metrics);
        VllmClient client = client(List.of(server.url("/").toString()));
        client.refreshLoad();
        ReplicaStatus s = client.replicas().get(0);
        assertThat(s.loadSignal()).isEqualTo(signal);
        assertThat(s.running()).isEqualTo(running);
        assertThat(s.waiting()).isEqualTo(waiting);
        assertThat((Double) s.kvCacheUsage()).isEqualTo((Double) kv); // boxed: NaN equals NaN
        assertThat(client.load().waiting()).isEqualTo(waiting);
    }

    @Test
    void aReplicaWithoutKnownGaugesSaysSoOnceAndClaimsNoFreshLoad() throws Exception {
        AtomicReference<MockResponse> metrics =
                new AtomicReference<>(text("# an exporter of something else\nprocess_cpu_seconds_total 12.5\n"));
        MockWebServer server = metricsServer(metrics);
        VllmClient client = client(List.of(server.url("/").toString()));
        try (LogCapture logs = LogCapture.start()) {
            for (int i = 0; i < 3; i++) {
                client.refreshLoad();
            }
            ReplicaStatus s = client.replicas().get(0);
            assertThat(s.loadSignal()).isEqualTo("none");
            assertThat(s.loadSignalReason()).contains("none of the known load gauges");
            assertThat(s.scrapedAt()).isNull();
            assertThat(s.waiting()).isNaN();
            LoadSnapshot load = client.load();
            assertThat(load.observedAt()).isNull();
            assertThat(load.waiting()).isNaN();
            assertThat(logs.lines(Level.WARNING))
                    .filteredOn(l -> l.contains("has no load signal"))
                    .hasSize(1)
                    .allSatisfy(l ->
                            assertThat(l).contains(server.url("/").toString().replaceAll("/$", "")));
        }
    }

    @Test
    void aMissingMetricsRouteIsNoLoadSignalWithItsStatus() {
        OpenAiCompatibleServer ollama = closer.closing(OpenAiCompatibleServer.builder()
                .metricsStyle(OpenAiCompatibleServer.MetricsStyle.NONE)
                .start());
        VllmClient client = client(List.of(ollama.baseUrl()));
        client.refreshLoad();
        ReplicaStatus s = client.replicas().get(0);
        assertThat(s.loadSignal()).isEqualTo("none");
        assertThat(s.loadSignalReason()).contains("HTTP 404");
        assertThat(s.up()).isTrue();
    }

    @Test
    void aSignalThatGoesAwayDropsTheOldFiguresAndComesBackLoggedOnce() throws Exception {
        AtomicReference<MockResponse> metrics = new AtomicReference<>(text("vllm:num_requests_waiting 12\n"));
        MockWebServer server = metricsServer(metrics);
        VllmClient client = client(List.of(server.url("/").toString()));
        try (LogCapture logs = LogCapture.start()) {
            client.refreshLoad();
            ReplicaStatus before = client.replicas().get(0);
            assertThat(before.waiting()).isEqualTo(12.0);

            metrics.set(new MockResponse.Builder().code(500).body("oops").build());
            client.refreshLoad();
            client.refreshLoad();
            ReplicaStatus during = client.replicas().get(0);
            assertThat(during.loadSignal()).isEqualTo("none");
            assertThat(during.loadSignalReason()).contains("HTTP 500");
            // Old figures are not passed off as current; the time of the last good scrape stays.
            assertThat(during.waiting()).isNaN();
            assertThat(during.scrapedAt()).isEqualTo(before.scrapedAt());

            metrics.set(text("vllm:num_requests_waiting 3\n"));
            client.refreshLoad();
            assertThat(client.replicas().get(0).waiting()).isEqualTo(3.0);
            assertThat(client.replicas().get(0).loadSignal()).isEqualTo("vllm");
            assertThat(logs.lines(Level.WARNING))
                    .filteredOn(l -> l.contains("has no load signal"))
                    .hasSize(1);
            assertThat(logs.text()).contains("has a load signal again");
            assertThat(logs.text()).doesNotContain("oops");
        }
    }
}
