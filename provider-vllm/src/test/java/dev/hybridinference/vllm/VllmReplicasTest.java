package dev.hybridinference.vllm;

import static dev.hybridinference.vllm.Closer.await;
import static dev.hybridinference.vllm.VllmClientHttpTest.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import mockwebserver3.MockWebServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Several replicas: failover, session affinity, load from /metrics, health. */
@Timeout(30)
class VllmReplicasTest {
    @RegisterExtension
    final Closer closer = new Closer();

    private OpenAiCompatibleServer server(String name) {
        return closer.closing(OpenAiCompatibleServer.builder()
                .model("m")
                .responder(q -> "from " + name)
                .start());
    }

    private VllmClient client(List<String> urls, Duration scrapeInterval) {
        return closer.closing(VllmClient.builder()
                .baseUrls(urls)
                .model("m")
                .scrapeInterval(scrapeInterval)
                .replicaCooldown(Duration.ofMinutes(5))
                .build());
    }

    private static int freePortWithNothingListening() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static ChatRequest session(String id) {
        return ChatRequest.builder()
                .user("hi")
                .options(RequestOptions.builder().sessionId(id).build())
                .build();
    }

    @Test
    void aFailingReplicaIsMarkedDownAndTheCallRetriedOnAnother() throws Exception {
        MockWebServer failing = closer.closing(new MockWebServer());
        failing.start();
        failing.enqueue(json(503, "{\"error\":{\"message\":\"engine dead\",\"code\":503}}"));
        OpenAiCompatibleServer good = server("good");
        VllmClient client = client(List.of(failing.url("/").toString(), good.baseUrl()), Duration.ZERO);

        // With no load known, ties rotate: make sure the failing replica is tried first.
        ChatResponse r = null;
        for (int i = 0; i < 2 && (r == null || r.receipt().attempts().size() < 2); i++) {
            r = client.chat(ChatRequest.of("hi"));
        }
        assertThat(r.text()).isEqualTo("from good");
        List<Attempt> attempts = r.receipt().attempts();
        assertThat(attempts).hasSize(2);
        assertThat(attempts.get(0).outcome()).isEqualTo(Attempt.Outcome.FAILED);
        assertThat(attempts.get(0).error())
                .contains("ProviderUnavailableException")
                .contains("engine dead");
        assertThat(attempts.get(1).outcome()).isEqualTo(Attempt.Outcome.SUCCEEDED);
        assertThat(attempts.get(1).reason()).startsWith("failover after");
        assertThat(r.receipt().route())
                .contains("failed over to " + attempts.get(1).endpoint());
        assertThat(client.replicas().get(0).up()).isFalse();

        // While it is down, calls go straight to the healthy replica.
        for (int i = 0; i < 5; i++) {
            assertThat(client.chat(ChatRequest.of("hi")).receipt().attempts()).hasSize(1);
        }
        assertThat(failing.getRequestCount()).isEqualTo(1);
    }

    @Test
    void aRefusedConnectionFailsOverToo() throws Exception {
        OpenAiCompatibleServer good = server("good");
        String dead = "http://127.0.0.1:" + freePortWithNothingListening();
        VllmClient client = client(List.of(dead, good.baseUrl()), Duration.ZERO);
        for (int i = 0; i < 4; i++) {
            assertThat(client.chat(ChatRequest.of("hi")).text()).isEqualTo("from good");
        }
        assertThat(client.replicas().get(0).up()).isFalse();
    }

    @Test
    void whenEveryReplicaFailsTheLastErrorSurfacesWithAllAttempts() throws Exception {
        String dead1 = "http://127.0.0.1:" + freePortWithNothingListening();
        String dead2 = "http://127.0.0.1:" + freePortWithNothingListening();
        VllmClient client = client(List.of(dead1, dead2), Duration.ZERO);
        assertThatThrownBy(() -> client.chat(ChatRequest.of("hi")))
                .isInstanceOfSatisfying(ProviderUnavailableException.class, e -> {
                    assertThat(e.getMessage()).contains("cannot connect");
                    assertThat(e.partialReceipt().orElseThrow().attempts()).hasSize(2);
                });
    }

    @Test
    void aStreamFailsOverBeforeItStarts() throws Exception {
        MockWebServer failing = closer.closing(new MockWebServer());
        failing.start();
        for (int i = 0; i < 2; i++) {
            failing.enqueue(json(502, "bad gateway"));
        }
        OpenAiCompatibleServer good = server("good");
        VllmClient client = client(List.of(failing.url("/").toString(), good.baseUrl()), Duration.ZERO);
        for (int i = 0; i < 2; i++) {
            try (ChatStream s = client.stream(ChatRequest.of("hi"))) {
                StringBuilder sb = new StringBuilder();
                for (ChatChunk c : s) {
                    sb.append(c.text());
                }
                assertThat(sb.toString()).isEqualTo("from good");
            }
        }
        assertThat(failing.getRequestCount()).isEqualTo(1);
    }

    @Test
    void aSessionStaysOnItsReplicaAndSessionsSpreadOverAll() {
        List<String> urls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            urls.add(server("r" + i).baseUrl());
        }
        VllmClient client = client(urls, Duration.ZERO);
        Map<String, String> home = new HashMap<>();
        for (int s = 0; s < 30; s++) {
            String first = client.chat(session("session-" + s)).text();
            home.put("session-" + s, first);
            assertThat(client.chat(session("session-" + s)).receipt().route()).startsWith("session affinity");
        }
        for (int round = 0; round < 3; round++) {
            for (int s = 0; s < 30; s++) {
                assertThat(client.chat(session("session-" + s)).text()).isEqualTo(home.get("session-" + s));
            }
        }
        assertThat(new HashSet<>(home.values())).containsExactlyInAnyOrder("from r0", "from r1", "from r2");
    }

    @Test
    void affinityIsStableAcrossClientsAndMovesOnlyTheDeadReplicasSessions() throws Exception {
        List<OpenAiCompatibleServer> servers = new ArrayList<>();
        List<String> urls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            servers.add(server("r" + i));
            urls.add(servers.get(i).baseUrl());
        }
        Map<String, String> before = new HashMap<>();
        VllmClient one = client(urls, Duration.ZERO);
        for (int s = 0; s < 60; s++) {
            before.put("s" + s, one.chat(session("s" + s)).text());
        }
        // A second client (another JVM, say) hashes each session to the same replica.
        VllmClient two = client(urls, Duration.ZERO);
        for (int s = 0; s < 60; s++) {
            assertThat(two.chat(session("s" + s)).text()).isEqualTo(before.get("s" + s));
        }
        // Stop r1: its sessions move, each to one successor, and everyone else's stay.
        servers.get(1).close();
        VllmClient three = client(urls, Duration.ZERO);
        Set<String> moved = new HashSet<>();
        for (int round = 0; round < 2; round++) {
            for (int s = 0; s < 60; s++) {
                String now = three.chat(session("s" + s)).text();
                if (!before.get("s" + s).equals("from r1")) {
                    assertThat(now).isEqualTo(before.get("s" + s));
                } else {
                    assertThat(now).isNotEqualTo("from r1");
                    if (round == 0) {
                        before.put("moved-" + s, now);
                    } else {
                        assertThat(now).isEqualTo(before.get("moved-" + s));
                    }
                    moved.add("s" + s);
                }
            }
        }
        assertThat(moved).isNotEmpty();
    }

    @Test
    void loadComesFromMetricsAndTheLeastLoadedReplicaIsChosen() {
        OpenAiCompatibleServer busy = server("busy");
        OpenAiCompatibleServer idle = server("idle");
        busy.setWaiting(12);
        busy.setKvCacheUsage(0.9);
        idle.setWaiting(0);
        idle.setKvCacheUsage(0.1);
        VllmClient client = client(List.of(busy.baseUrl(), idle.baseUrl()), Duration.ofHours(1));
        client.refreshLoad();
        List<ReplicaStatus> status = client.replicas();
        assertThat(status.get(0).waiting()).isEqualTo(12.0);
        assertThat(status.get(0).kvCacheUsage()).isEqualTo(0.9);
        assertThat(status.get(1).waiting()).isEqualTo(0.0);
        assertThat(client.load().waiting()).isEqualTo(12.0);
        assertThat(client.load().kvCacheUsage()).isEqualTo(0.9);
        assertThat(client.load().healthyReplicas()).isEqualTo(2);
        for (int i = 0; i < 6; i++) {
            ChatResponse r = client.chat(ChatRequest.of("hi"));
            assertThat(r.text()).isEqualTo("from idle");
            assertThat(r.receipt().route()).contains("least loaded").contains("0 waiting");
        }
        // A session whose replica is saturated goes to the least-loaded one instead.
        for (int s = 0; s < 10; s++) {
            assertThat(client.chat(session("x" + s)).text()).isEqualTo("from idle");
        }
    }

    @Test
    void theDeprecatedKvCacheGaugeIsAccepted() throws Exception {
        MockWebServer old = closer.closing(new MockWebServer());
        old.setDispatcher(new mockwebserver3.Dispatcher() {
            @Override
            public mockwebserver3.MockResponse dispatch(mockwebserver3.RecordedRequest request) {
                String path = request.getUrl().encodedPath();
                if (path.equals("/metrics")) {
                    return new mockwebserver3.MockResponse.Builder()
                            .body("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.42\nvllm:num_requests_waiting 1\n")
                            .build();
                }
                return new mockwebserver3.MockResponse.Builder().code(200).build();
            }
        });
        old.start();
        VllmClient client = client(List.of(old.url("/").toString()), Duration.ofHours(1));
        client.refreshLoad();
        assertThat(client.replicas().get(0).kvCacheUsage()).isEqualTo(0.42);
        assertThat(client.replicas().get(0).waiting()).isEqualTo(1.0);
    }

    @Test
    void aFailingHealthCheckTakesAReplicaOutAndAPassingOneBringsItBack() {
        OpenAiCompatibleServer a = server("a");
        OpenAiCompatibleServer b = server("b");
        VllmClient client = client(List.of(a.baseUrl(), b.baseUrl()), Duration.ofHours(1));
        a.setHealthy(false);
        client.refreshLoad();
        assertThat(client.replicas().get(0).up()).isFalse();
        for (int i = 0; i < 4; i++) {
            assertThat(client.chat(ChatRequest.of("hi")).text()).isEqualTo("from b");
        }
        a.setHealthy(true);
        client.refreshLoad();
        assertThat(client.replicas().get(0).up()).isTrue();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 4; i++) {
            seen.add(client.chat(ChatRequest.of("hi")).text());
        }
        assertThat(seen).containsExactlyInAnyOrder("from a", "from b");
    }

    @Test
    void theMonitorScrapesOnItsOwnSchedule() throws Exception {
        OpenAiCompatibleServer a = server("a");
        a.setWaiting(5);
        VllmClient client = client(List.of(a.baseUrl()), Duration.ofMillis(50));
        await(() -> client.replicas().get(0).scrapedAt() != null);
        assertThat(client.replicas().get(0).waiting()).isEqualTo(5.0);
    }
}
