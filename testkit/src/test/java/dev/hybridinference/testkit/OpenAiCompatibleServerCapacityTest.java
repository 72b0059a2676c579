package dev.hybridinference.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The OpenAI-compatible server as one replica: generated answers and their token counts, cold starts, the
 * concurrency limit and injected failures, seen through {@link HttpClient}.
 */
@Timeout(30)
class OpenAiCompatibleServerCapacityTest {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Duration COLD_START = Duration.ofMillis(300);

    private final HttpClient http = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
    }

    private OpenAiCompatibleServer start(OpenAiCompatibleServer.Builder builder) {
        OpenAiCompatibleServer server = builder.start();
        toClose.add(server);
        return server;
    }

    private static ObjectNode chat(String prompt) {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("model", "test-model");
        body.putArray("messages").addObject().put("role", "user").put("content", prompt);
        return body;
    }

    private static ObjectNode chat(String prompt, int maxTokens) {
        return chat(prompt).put("max_tokens", maxTokens);
    }

    private HttpRequest request(OpenAiCompatibleServer server, ObjectNode body) {
        return HttpRequest.newBuilder(URI.create(server.baseUrl() + "/v1/chat/completions"))
                .timeout(Duration.ofSeconds(20))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()))
                .build();
    }

    private HttpResponse<String> post(OpenAiCompatibleServer server, ObjectNode body) throws Exception {
        return http.send(request(server, body), HttpResponse.BodyHandlers.ofString());
    }

    private CompletableFuture<HttpResponse<String>> postAsync(OpenAiCompatibleServer server, ObjectNode body) {
        return http.sendAsync(request(server, body), HttpResponse.BodyHandlers.ofString());
    }

    private JsonNode answer(OpenAiCompatibleServer server, ObjectNode body) throws Exception {
        HttpResponse<String> r = post(server, body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return MAPPER.readTree(r.body());
    }

    private static String content(JsonNode completion) {
        return completion
                .path("choices")
                .path(0)
                .path("message")
                .path("content")
                .asText();
    }

    private static int words(String text) {
        String t = text.strip();
        return t.isEmpty() ? 0 : t.split("\\s+").length;
    }

    /** The data events of a stream, without {@code [DONE]}, parsed. */
    private static List<JsonNode> events(String sse) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : sse.split("\n")) {
            if (line.startsWith("data: ") && !line.equals("data: [DONE]")) {
                out.add(MAPPER.readTree(line.substring(6)));
            }
        }
        return out;
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > until) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(5);
        }
    }

    /** A streamed chat request the server is scripted to stall, sent on a raw socket that the test closes. */
    private static Socket stalledRequest(OpenAiCompatibleServer server) throws IOException {
        server.stallNext();
        String body = chat("wait").put("stream", true).toString();
        Socket s = new Socket(
                InetAddress.getLoopbackAddress(), URI.create(server.baseUrl()).getPort());
        s.setSoTimeout(10_000);
        s.getOutputStream()
                .write(("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body)
                        .getBytes(StandardCharsets.UTF_8));
        s.getOutputStream().flush();
        return s;
    }

    private static String readHead(InputStream in) throws IOException {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                break;
            }
            head.append((char) c);
        }
        return head.toString();
    }

    // ---- generated answers ----

    @Test
    void generatedTextHasTheRequestedLengthAndDependsOnlyOnPromptAndSeeds() throws Exception {
        OpenAiCompatibleServer seven = start(OpenAiCompatibleServer.builder().seed(7));
        OpenAiCompatibleServer alsoSeven =
                start(OpenAiCompatibleServer.builder().seed(7));
        OpenAiCompatibleServer eight = start(OpenAiCompatibleServer.builder().seed(8));

        JsonNode a = answer(seven, chat("tell me a story about the sea", 12));
        String text = content(a);
        assertThat(words(text)).isEqualTo(12);
        assertThat(a.path("choices").path(0).path("finish_reason").asText()).isEqualTo("length");
        JsonNode usage = a.path("usage");
        assertThat(usage.path("prompt_tokens").asInt()).isEqualTo(7);
        assertThat(usage.path("completion_tokens").asInt()).isEqualTo(12);
        assertThat(usage.path("total_tokens").asInt()).isEqualTo(19);

        assertThat(content(answer(seven, chat("tell me a story about the sea", 12))))
                .as("the same request again")
                .isEqualTo(text);
        assertThat(content(answer(alsoSeven, chat("tell me a story about the sea", 12))))
                .as("another server with the same seed")
                .isEqualTo(text);
        assertThat(content(answer(eight, chat("tell me a story about the sea", 12))))
                .as("another server seed")
                .isNotEqualTo(text);
        assertThat(content(
                        answer(seven, chat("tell me a story about the sea", 12).put("seed", 3))))
                .as("a request seed")
                .isNotEqualTo(text);
        assertThat(content(answer(seven, chat("tell me a poem about the sea", 12))))
                .as("another prompt")
                .isNotEqualTo(text);
        assertThat(content(answer(seven, chat("tell me a story about the sea", 5))))
                .as("fewer tokens: the same words, fewer of them")
                .isEqualTo(String.join(" ", List.of(text.split(" ")).subList(0, 5)));
    }

    @Test
    void withoutMaxTokensTheDefaultLengthIsGenerated() throws Exception {
        OpenAiCompatibleServer standard = start(OpenAiCompatibleServer.builder());
        OpenAiCompatibleServer shorter = start(OpenAiCompatibleServer.builder().defaultMaxTokens(5));
        JsonNode a = answer(standard, chat("hello"));
        assertThat(words(content(a))).isEqualTo(16);
        assertThat(a.path("usage").path("completion_tokens").asInt()).isEqualTo(16);
        assertThat(words(content(answer(shorter, chat("hello"))))).isEqualTo(5);
        assertThat(words(content(answer(shorter, chat("hello").put("max_completion_tokens", 9)))))
                .isEqualTo(9);
    }

    @Test
    void aStreamCarriesTheBlockingAnswersTextWithTheSameUsage() throws Exception {
        OpenAiCompatibleServer server = start(OpenAiCompatibleServer.builder().seed(11));
        JsonNode blocking = answer(server, chat("stream this please", 9));

        ObjectNode streamed = chat("stream this please", 9).put("stream", true);
        streamed.putObject("stream_options").put("include_usage", true);
        HttpResponse<String> r = post(server, streamed);
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("Content-Type"))
                .hasValueSatisfying(v -> assertThat(v).startsWith("text/event-stream"));
        assertThat(r.body()).endsWith("data: [DONE]\n\n");
        List<JsonNode> events = events(r.body());
        StringBuilder text = new StringBuilder();
        int contentChunks = 0;
        JsonNode usage = null;
        String finish = null;
        for (JsonNode e : events) {
            if (e.path("usage").isObject()) {
                usage = e.get("usage");
                assertThat(e.path("choices")).isEmpty();
                continue;
            }
            JsonNode choice = e.path("choices").path(0);
            if (choice.path("delta").path("content").isTextual()
                    && !choice.path("delta").path("content").asText().isEmpty()) {
                contentChunks++;
                text.append(choice.path("delta").path("content").asText());
            }
            if (choice.path("finish_reason").isTextual()) {
                finish = choice.path("finish_reason").asText();
            }
        }
        assertThat(text.toString()).isEqualTo(content(blocking));
        assertThat(contentChunks).isEqualTo(9);
        assertThat(finish).isEqualTo("length");
        assertThat(usage).isEqualTo(blocking.path("usage"));
        assertThat(events.get(events.size() - 1))
                .as("the usage chunk comes last")
                .isSameAs(events.stream()
                        .filter(e -> e.path("usage").isObject())
                        .findFirst()
                        .orElseThrow());
    }

    @Test
    void scriptedAndResponderAnswersKeepTheirTextAndCountItsWords() throws Exception {
        OpenAiCompatibleServer scripted = start(OpenAiCompatibleServer.builder());
        scripted.answerNext("one  two three ");
        JsonNode a = answer(scripted, chat("anything"));
        assertThat(content(a)).isEqualTo("one  two three ");
        assertThat(a.path("usage").path("completion_tokens").asInt()).isEqualTo(3);
        assertThat(a.path("choices").path(0).path("finish_reason").asText()).isEqualTo("stop");

        OpenAiCompatibleServer echo = start(OpenAiCompatibleServer.builder().responder(q -> "you said " + q));
        JsonNode b = answer(echo, chat("a b c d", 4));
        assertThat(content(b)).isEqualTo("you said a b");
        assertThat(b.path("usage").path("completion_tokens").asInt()).isEqualTo(4);
        assertThat(b.path("choices").path(0).path("finish_reason").asText()).isEqualTo("length");
    }

    @Test
    void tokenLatencyPacesEachStreamedWord() throws Exception {
        OpenAiCompatibleServer server = start(OpenAiCompatibleServer.builder().tokenLatency(Duration.ofMillis(40)));
        long start = System.nanoTime();
        HttpResponse<String> r = post(server, chat("slowly", 5).put("stream", true));
        long elapsed = System.nanoTime() - start;
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(elapsed).isGreaterThanOrEqualTo(Duration.ofMillis(200).toNanos());
    }

    // ---- cold starts ----

    @Test
    void aColdServerMakesItsFirstRequestWaitOutTheColdStartAndTheNextIsWarm() throws Exception {
        OpenAiCompatibleServer server =
                start(OpenAiCompatibleServer.builder().startCold(true).coldStart(COLD_START));
        assertThat(server.scaledToZero()).isTrue();

        long start = System.nanoTime();
        answer(server, chat("wake up", 3));
        assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(COLD_START.toNanos());
        assertThat(server.coldStarts()).isEqualTo(1);
        assertThat(server.scaledToZero()).isFalse();

        answer(server, chat("again", 3));
        assertThat(server.coldStarts()).as("the second request is warm").isEqualTo(1);

        server.scaleToZero();
        assertThat(server.scaledToZero()).isTrue();
        start = System.nanoTime();
        answer(server, chat("wake up again", 3));
        assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(COLD_START.toNanos());
        assertThat(server.coldStarts()).isEqualTo(2);
        assertThat(server.requestCount()).isEqualTo(3);
    }

    @Test
    void requestsArrivingDuringAColdStartQueueBehindIt() throws Exception {
        OpenAiCompatibleServer server =
                start(OpenAiCompatibleServer.builder().startCold(true).coldStart(COLD_START));
        long start = System.nanoTime();
        List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            calls.add(postAsync(server, chat("together " + i, 2)));
        }
        for (CompletableFuture<HttpResponse<String>> c : calls) {
            assertThat(c.get(20, TimeUnit.SECONDS).statusCode()).isEqualTo(200);
        }
        assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(COLD_START.toNanos());
        assertThat(server.coldStarts()).as("one cold start for all three").isEqualTo(1);
        assertThat(server.requestCount()).isEqualTo(3);
        assertThat(server.queued()).isZero();
    }

    @Test
    void anIdleServerScalesToZeroAndColdStartsAgain() throws Exception {
        Duration idle = Duration.ofMillis(500);
        OpenAiCompatibleServer server =
                start(OpenAiCompatibleServer.builder().coldStart(COLD_START).scaleToZeroAfter(idle));
        answer(server, chat("first", 2));
        long before = server.coldStarts();
        // Back to back, well within the idle time: warm. The idle time counts from the end of this request, which
        // comes after the moment it is sent.
        long sent = System.nanoTime();
        answer(server, chat("second", 2));
        assertThat(server.coldStarts()).isEqualTo(before);

        await(server::scaledToZero, "the idle server scales to zero");
        assertThat(System.nanoTime() - sent).as("not before the idle time").isGreaterThanOrEqualTo(idle.toNanos());
        long start = System.nanoTime();
        answer(server, chat("third", 2));
        assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(COLD_START.toNanos());
        assertThat(server.coldStarts()).isEqualTo(before + 1);
    }

    // ---- the concurrency limit ----

    @Test
    void rejectAnswers429AtOnceWhileTheOnlySlotIsTaken() throws Exception {
        OpenAiCompatibleServer server = start(
                OpenAiCompatibleServer.builder().maxConcurrent(1).whenFull(OpenAiCompatibleServer.Overflow.REJECT));
        Socket stalled = stalledRequest(server);
        assertThat(readHead(stalled.getInputStream())).startsWith("HTTP/1.1 200");
        await(() -> server.stalledNow() == 1, "the first request holds the slot");
        assertThat(server.inFlight()).isEqualTo(1);

        HttpResponse<String> r = post(server, chat("me too", 3));
        assertThat(r.statusCode()).isEqualTo(429);
        assertThat(r.headers().firstValue("Retry-After")).hasValue("1");
        JsonNode error = MAPPER.readTree(r.body()).path("error");
        assertThat(error.path("code").asInt()).isEqualTo(429);
        assertThat(error.path("type").asText()).isEqualTo("RateLimitError");
        assertThat(error.path("message").asText()).contains("limit of 1");
        assertThat(server.rejected()).isEqualTo(1);
        assertThat(server.requestCount()).as("a rejected request is not served").isEqualTo(1);

        stalled.close();
        await(() -> server.inFlight() == 0, "the stalled request gives its slot back");
        assertThat(post(server, chat("now", 3)).statusCode()).isEqualTo(200);
        assertThat(server.rejected()).isEqualTo(1);
        assertThat(server.maxInFlightSeen()).isEqualTo(1);
    }

    @Test
    void queueMakesTheNextRequestWaitForTheSlotAndReportsItWaiting() throws Exception {
        OpenAiCompatibleServer server = start(
                OpenAiCompatibleServer.builder().maxConcurrent(1).whenFull(OpenAiCompatibleServer.Overflow.QUEUE));
        Socket stalled = stalledRequest(server);
        await(() -> server.stalledNow() == 1, "the first request holds the slot");

        CompletableFuture<HttpResponse<String>> waiting = postAsync(server, chat("after you", 3));
        await(() -> server.queued() == 1, "the second request queues");
        assertThat(waiting).isNotDone();
        assertThat(server.inFlight()).isEqualTo(1);
        HttpResponse<String> metrics = http.send(
                HttpRequest.newBuilder(URI.create(server.baseUrl() + "/metrics"))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(metrics.body())
                .contains("vllm:num_requests_running{engine=\"0\",model_name=\"test-model\"} 1.0")
                .contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"test-model\"} 1.0");

        stalled.close();
        HttpResponse<String> r = waiting.get(10, TimeUnit.SECONDS);
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(words(content(MAPPER.readTree(r.body())))).isEqualTo(3);
        assertThat(server.rejected()).isZero();
        assertThat(server.maxInFlightSeen()).isEqualTo(1);
        assertThat(server.queued()).isZero();
    }

    @Test
    void aFullQueueRejectsTheRequestBeyondIt() throws Exception {
        OpenAiCompatibleServer server =
                start(OpenAiCompatibleServer.builder().maxConcurrent(1).queueLimit(1));
        Socket stalled = stalledRequest(server);
        await(() -> server.stalledNow() == 1, "the first request holds the slot");
        CompletableFuture<HttpResponse<String>> waiting = postAsync(server, chat("second", 2));
        await(() -> server.queued() == 1, "the second request queues");

        HttpResponse<String> third = post(server, chat("third", 2));
        assertThat(third.statusCode()).isEqualTo(429);
        assertThat(MAPPER.readTree(third.body()).path("error").path("message").asText())
                .contains("1 more are queued");
        assertThat(server.rejected()).isEqualTo(1);

        stalled.close();
        assertThat(waiting.get(10, TimeUnit.SECONDS).statusCode()).isEqualTo(200);
    }

    // ---- injected failures ----

    private List<Integer> statuses(OpenAiCompatibleServer server, int n) throws Exception {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(post(server, chat("call " + i, 2)).statusCode());
        }
        return out;
    }

    @Test
    void aFailureRateFailsTheSameRequestsForTheSameSeed() throws Exception {
        OpenAiCompatibleServer a =
                start(OpenAiCompatibleServer.builder().failureRate(0.3).seed(42));
        OpenAiCompatibleServer b =
                start(OpenAiCompatibleServer.builder().failureRate(0.3).seed(42));
        OpenAiCompatibleServer c =
                start(OpenAiCompatibleServer.builder().failureRate(0.3).seed(43));
        List<Integer> first = statuses(a, 40);
        long failed = first.stream().filter(s -> s == 503).count();
        assertThat(first).containsOnly(200, 503);
        assertThat(failed).as("about 30 percent of 40").isBetween(4L, 20L);
        assertThat(a.injectedFailures()).isEqualTo(failed);
        assertThat(a.requestCount()).isEqualTo(40);
        assertThat(statuses(b, 40)).as("the same seed").isEqualTo(first);
        assertThat(b.injectedFailures()).isEqualTo(failed);
        assertThat(statuses(c, 40)).as("another seed").isNotEqualTo(first);
    }

    @Test
    void anInjectedFailureIsAVllmErrorAndScriptsComeFirst() throws Exception {
        OpenAiCompatibleServer server = start(OpenAiCompatibleServer.builder().failureRate(1.0));
        server.answerNext("scripted answer");
        assertThat(content(answer(server, chat("first")))).isEqualTo("scripted answer");
        HttpResponse<String> r = post(server, chat("second").put("stream", true));
        assertThat(r.statusCode()).isEqualTo(503);
        JsonNode error = MAPPER.readTree(r.body()).path("error");
        assertThat(error.path("type").asText()).isEqualTo("ServiceUnavailableError");
        assertThat(error.path("code").asInt()).isEqualTo(503);
        assertThat(server.injectedFailures()).isEqualTo(1);

        OpenAiCompatibleServer five =
                start(OpenAiCompatibleServer.builder().failureRate(1.0).failureStatus(500));
        HttpResponse<String> e = post(five, chat("x"));
        assertThat(e.statusCode()).isEqualTo(500);
        assertThat(MAPPER.readTree(e.body()).path("error").path("code").asInt()).isEqualTo(500);
    }

    @Test
    void builderSettingsAreCheckedWithTheirNames() {
        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> OpenAiCompatibleServer.builder().failureRate(1.5))
                .hasMessageContaining("failureRate");
        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> OpenAiCompatibleServer.builder().maxConcurrent(0))
                .hasMessageContaining("maxConcurrent");
        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> OpenAiCompatibleServer.builder().coldStart(Duration.ofMillis(-1)))
                .hasMessageContaining("coldStart");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> OpenAiCompatibleServer.builder()
                        .maxConcurrent(1)
                        .whenFull(OpenAiCompatibleServer.Overflow.REJECT)
                        .queueLimit(2)
                        .start())
                .hasMessageContaining("queueLimit");
    }
}
