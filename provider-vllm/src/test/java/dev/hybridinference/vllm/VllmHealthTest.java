package dev.hybridinference.vllm;

import static dev.hybridinference.vllm.Closer.await;
import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.testkit.LogCapture;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** /health: a missing route is no verdict, load is read regardless, and one stale connection is no outage. */
@Timeout(30)
class VllmHealthTest {
    @RegisterExtension
    final Closer closer = new Closer();

    @Test
    void aReplicaWithoutAHealthRouteKeepsTakingItsShareOfCalls() throws Exception {
        // Ollama has neither /health nor /metrics; the monitor runs on its own schedule as in production.
        OpenAiCompatibleServer ollama = closer.closing(OpenAiCompatibleServer.builder()
                .model("m")
                .responder(q -> "ollama")
                .healthRoute(false)
                .metricsStyle(OpenAiCompatibleServer.MetricsStyle.NONE)
                .start());
        OpenAiCompatibleServer vllm = closer.closing(OpenAiCompatibleServer.builder()
                .model("m")
                .responder(q -> "vllm")
                .start());
        try (LogCapture logs = LogCapture.start()) {
            VllmClient client = closer.closing(VllmClient.builder()
                    .baseUrls(List.of(ollama.baseUrl(), vllm.baseUrl()))
                    .model("m")
                    .scrapeInterval(Duration.ofMillis(20))
                    .build());
            await(() -> client.replicas().get(0).health() == ReplicaStatus.Health.NO_SIGNAL
                    && client.replicas().get(1).health() == ReplicaStatus.Health.PASSING);
            Thread.sleep(100); // several more monitor passes

            Map<String, Integer> served = new HashMap<>();
            for (int i = 0; i < 100; i++) {
                served.merge(client.chat(ChatRequest.of("hi")).text(), 1, Integer::sum);
            }
            assertThat(served.get("ollama"))
                    .as("calls served without a health route: %s", served)
                    .isGreaterThanOrEqualTo(20);
            assertThat(served.get("vllm")).as("%s", served).isGreaterThanOrEqualTo(20);
            assertThat(client.replicas().get(0).up()).isTrue();
            assertThat(logs.lines(Level.WARNING)).noneMatch(l -> l.contains("marked down"));
            assertThat(logs.lines(Level.INFO))
                    .filteredOn(l -> l.contains("gives no health signal"))
                    .hasSize(1);
        }
    }

    @Test
    void loadIsReadWhetherOrNotHealthAnswers() {
        OpenAiCompatibleServer noHealth = closer.closing(
                OpenAiCompatibleServer.builder().healthRoute(false).start());
        OpenAiCompatibleServer unhealthy =
                closer.closing(OpenAiCompatibleServer.builder().start());
        noHealth.setWaiting(9);
        unhealthy.setWaiting(4);
        unhealthy.setHealthy(false);
        VllmClient client = closer.closing(VllmClient.builder()
                .baseUrls(List.of(noHealth.baseUrl(), unhealthy.baseUrl()))
                .model("m")
                .scrapeInterval(Duration.ZERO)
                .build());
        client.refreshLoad();
        assertThat(client.replicas().get(0).waiting()).isEqualTo(9.0);
        assertThat(client.replicas().get(0).up()).isTrue();
        assertThat(client.replicas().get(1).health()).isEqualTo(ReplicaStatus.Health.FAILING);
        assertThat(client.replicas().get(1).up()).isFalse();
        assertThat(client.replicas().get(1).waiting()).isEqualTo(4.0);
    }

    @Test
    void aFailedCallStillTakesAReplicaWithoutHealthOutForTheCooldownOnly() throws Exception {
        OpenAiCompatibleServer a = closer.closing(OpenAiCompatibleServer.builder()
                .responder(q -> "a")
                .healthRoute(false)
                .start());
        OpenAiCompatibleServer b = closer.closing(
                OpenAiCompatibleServer.builder().responder(q -> "b").start());
        VllmClient client = closer.closing(VllmClient.builder()
                .baseUrls(List.of(a.baseUrl(), b.baseUrl()))
                .model("m")
                .scrapeInterval(Duration.ZERO)
                .replicaCooldown(Duration.ofSeconds(1)) // long enough to outlast the checks below on a busy machine
                .build());
        client.refreshLoad();
        a.setHealthy(false); // chat calls now answer 503; /health is still missing
        for (int i = 0; i < 4; i++) {
            assertThat(client.chat(ChatRequest.of("hi")).text()).isEqualTo("b");
        }
        assertThat(client.replicas().get(0).up()).isFalse();
        a.setHealthy(true);
        client.refreshLoad(); // no verdict from /health: the cooldown decides
        assertThat(client.replicas().get(0).up()).isFalse();
        await(() -> client.replicas().get(0).up());
        List<String> seen = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            seen.add(client.chat(ChatRequest.of("hi")).text());
        }
        assertThat(seen).contains("a", "b");
    }

    /** A client of {@code server} whose checks run only when the test calls {@code refreshLoad()}. */
    private VllmClient checkedByHand(RawHttpServer server) {
        return closer.closing(VllmClient.builder()
                .baseUrl(server.baseUrl())
                .model("m")
                .scrapeInterval(Duration.ZERO)
                .build());
    }

    @Test
    void oneStaleConnectionDoesNotMarkAReplicaDown() throws Exception {
        // The first connection answers the first pass (/health, then /metrics) and then dies as a server
        // closing an idle connection would: the next request on it gets no answer. Fresh connections answer.
        RawHttpServer server = closer.closing(new RawHttpServer(connection -> connection == 1 ? 2 : Integer.MAX_VALUE));
        VllmClient client = checkedByHand(server);
        try (LogCapture logs = LogCapture.start()) {
            client.refreshLoad();
            client.refreshLoad();
            client.refreshLoad();
            ReplicaStatus s = client.replicas().get(0);
            assertThat(s.health()).isEqualTo(ReplicaStatus.Health.PASSING);
            assertThat(s.up()).isTrue();
            assertThat(server.connections()).isGreaterThanOrEqualTo(2);
            assertThat(logs.text()).doesNotContain("marked down");
        }
    }

    @Test
    void anUnreachableReplicaIsMarkedDownOnTheSecondFailedCheckAndBackWhenItPasses() throws Exception {
        RawHttpServer server = closer.closing(new RawHttpServer(connection -> 0)); // every connection dies unanswered
        VllmClient client = checkedByHand(server);
        try (LogCapture logs = LogCapture.start()) {
            client.refreshLoad();
            assertThat(client.replicas().get(0).up())
                    .as("one failed check is not enough")
                    .isTrue();
            // That check already asked twice: the second time on a fresh connection.
            assertThat(server.connections()).isGreaterThanOrEqualTo(2);
            client.refreshLoad();
            assertThat(client.replicas().get(0).health()).isEqualTo(ReplicaStatus.Health.FAILING);
            assertThat(client.replicas().get(0).up()).isFalse();
            assertThat(logs.lines(Level.WARNING))
                    .filteredOn(l -> l.contains("marked down"))
                    .hasSize(1);

            server.answerEveryRequest();
            client.refreshLoad();
            assertThat(client.replicas().get(0).up()).isTrue();
            assertThat(logs.lines(Level.INFO)).anyMatch(l -> l.contains("is healthy"));
        }
    }

    /**
     * A bare HTTP/1.1 server on loopback: {@code GET /health} answers 200 and anything else 404, keeping the
     * connection alive; connection number {@code n} (from 1) serves {@code answers.applyAsInt(n)} requests
     * and then closes without answering the next one.
     */
    static final class RawHttpServer implements AutoCloseable {
        private final ServerSocket listener;
        private final Thread acceptor;
        private final AtomicInteger connections = new AtomicInteger();
        private volatile java.util.function.IntUnaryOperator answers;

        RawHttpServer(java.util.function.IntUnaryOperator answers) throws IOException {
            this.answers = answers;
            this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            this.acceptor = new Thread(this::accept, "raw-http-server");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        String baseUrl() {
            return "http://127.0.0.1:" + listener.getLocalPort();
        }

        int connections() {
            return connections.get();
        }

        void answerEveryRequest() {
            answers = n -> Integer.MAX_VALUE;
        }

        private void accept() {
            while (!listener.isClosed()) {
                try {
                    Socket s = listener.accept();
                    int n = connections.incrementAndGet();
                    int budget = answers.applyAsInt(n);
                    Thread t = new Thread(() -> serve(s, budget), "raw-http-connection-" + n);
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return;
                }
            }
        }

        private static void serve(Socket s, int budget) {
            try (s) {
                BufferedReader in =
                        new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.ISO_8859_1));
                OutputStream out = s.getOutputStream();
                for (int served = 0; ; served++) {
                    String requestLine = in.readLine();
                    if (requestLine == null) {
                        return;
                    }
                    String line;
                    while ((line = in.readLine()) != null && !line.isEmpty()) {
                        // headers are ignored
                    }
                    if (served >= budget) {
                        return; // closes without an answer
                    }
                    boolean health = requestLine.startsWith("GET /health ");
                    String body = health ? "ok" : "not found";
                    String response = "HTTP/1.1 " + (health ? "200 OK" : "404 Not Found") + "\r\n"
                            + "Content-Type: text/plain\r\nContent-Length: " + body.length() + "\r\n\r\n" + body;
                    out.write(response.getBytes(StandardCharsets.ISO_8859_1));
                    out.flush();
                }
            } catch (IOException e) {
                // the client went away
            }
        }

        @Override
        public void close() throws IOException {
            listener.close();
        }
    }
}
