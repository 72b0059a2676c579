package dev.hybridinference.testkit.cloudrun;

import static dev.hybridinference.testkit.cloudrun.Calls.MAPPER;
import static dev.hybridinference.testkit.cloudrun.Calls.await;
import static dev.hybridinference.testkit.cloudrun.Calls.chat;
import static dev.hybridinference.testkit.cloudrun.Calls.chatCall;
import static dev.hybridinference.testkit.cloudrun.Calls.events;
import static dev.hybridinference.testkit.cloudrun.Calls.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.auth.oauth2.ServiceAccountCredentials;
import dev.hybridinference.testkit.cloudrun.CloudRunEmulator.RecordedRequest;
import dev.hybridinference.testkit.internal.GeneratedText;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The emulated Cloud Run service as a plain HTTP client sees it, with ID tokens from Google's auth library. */
@Timeout(30)
class CloudRunEmulatorTest {
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    private CloudRunEmulator start(CloudRunEmulator.Builder builder) {
        CloudRunEmulator emulator = builder.start();
        toClose.add(emulator);
        return emulator;
    }

    private static ObjectNode chatWithMax(String prompt, int maxTokens) {
        ObjectNode body = chat(prompt);
        body.put("max_tokens", maxTokens);
        return body;
    }

    private static String content(HttpResponse<String> response) {
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return json(response).at("/choices/0/message/content").asText();
    }

    private static List<CompletableFuture<HttpResponse<String>>> parallel(String url, int n, JsonNode body) {
        return IntStream.range(0, n).mapToObj(i -> Calls.chatAsync(url, body)).toList();
    }

    // ---- the container ----

    @Test
    void aWarmInstanceAnswersAChatCompletionLikeVllm() {
        CloudRunEmulator run = start(CloudRunEmulator.builder().minInstances(1));
        HttpResponse<String> response =
                Calls.send(Calls.post(run.url(), "/v1/chat/completions", chatWithMax("hi there", 5))
                        .header("X-Trace", "abc"));

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
        assertThat(response.headers().firstValue("server")).hasValue("Google Frontend");
        JsonNode body = json(response);
        assertThat(body.path("object").asText()).isEqualTo("chat.completion");
        assertThat(body.path("id").asText()).startsWith("chatcmpl-");
        assertThat(body.path("model").asText()).isEqualTo("gemma-3-4b");
        assertThat(body.at("/choices/0/message/role").asText()).isEqualTo("assistant");
        assertThat(body.at("/choices/0/finish_reason").asText()).isEqualTo("length");
        assertThat(body.at("/choices/0/message/content").asText().split(" ")).hasSize(5);
        assertThat(body.at("/usage/prompt_tokens").asInt()).isEqualTo(2);
        assertThat(body.at("/usage/completion_tokens").asInt()).isEqualTo(5);
        assertThat(body.at("/usage/total_tokens").asInt()).isEqualTo(7);
        assertThat(run.coldStarts()).isZero();
        assertThat(run.requests()).isEqualTo(1);

        RecordedRequest recorded = run.recorded().get(0);
        assertThat(recorded.method()).isEqualTo("POST");
        assertThat(recorded.path()).isEqualTo("/v1/chat/completions");
        assertThat(recorded.headers()).containsEntry("x-trace", "abc");
        assertThat(recorded.header("X-TRACE")).isEqualTo("abc");
        assertThat(recorded.body()).contains("hi there");
    }

    @Test
    void generatedTextIsDeterministicAndMaxTokensLong() {
        CloudRunEmulator run = start(CloudRunEmulator.builder().seed(7));
        CloudRunEmulator other = start(CloudRunEmulator.builder().seed(8));

        String first = content(chatCall(run.url(), chatWithMax("tell me", 12)));
        assertThat(first.split(" "))
                .hasSize(12)
                .allSatisfy(w -> assertThat(GeneratedText.WORDS).contains(w));
        assertThat(content(chatCall(run.url(), chatWithMax("tell me", 12)))).isEqualTo(first);
        assertThat(content(chatCall(other.url(), chatWithMax("tell me", 12)))).isNotEqualTo(first);
        assertThat(content(chatCall(run.url(), chatWithMax("tell me", 12).put("seed", 3))))
                .isNotEqualTo(first);
        assertThat(content(chatCall(run.url(), chatWithMax("ask me", 12)))).isNotEqualTo(first);
        assertThat(content(chatCall(run.url(), chat("tell me"))).split(" ")).hasSize(16);
        ObjectNode newer = chat("tell me");
        newer.put("max_completion_tokens", 3);
        assertThat(content(chatCall(run.url(), newer)).split(" ")).hasSize(3);
    }

    @Test
    void modelsListsTheServedModelAndAnotherModelIsNotFound() {
        CloudRunEmulator run = start(CloudRunEmulator.builder().model("qwen3-8b"));

        JsonNode models = json(Calls.get(run.url(), "/v1/models"));
        assertThat(models.at("/data/0/id").asText()).isEqualTo("qwen3-8b");
        assertThat(models.at("/data/0/owned_by").asText()).isEqualTo("vllm");

        ObjectNode body = chat("hi");
        body.put("model", "llama-3-8b");
        HttpResponse<String> refused = chatCall(run.url(), body);
        assertThat(refused.statusCode()).isEqualTo(404);
        assertThat(json(refused).at("/error/type").asText()).isEqualTo("NotFoundError");
        assertThat(json(refused).at("/error/code").asInt()).isEqualTo(404);
        assertThat(json(refused).at("/error/message").asText()).contains("llama-3-8b");

        body.put("model", "qwen3-8b");
        assertThat(json(chatCall(run.url(), body)).path("model").asText()).isEqualTo("qwen3-8b");
        assertThat(chatCall(run.url(), MAPPER.createObjectNode()).statusCode()).isEqualTo(400);
        assertThat(Calls.get(run.url(), "/nowhere").statusCode()).isEqualTo(404);
        assertThat(Calls.get(run.url(), "/health").statusCode()).isEqualTo(200);
        assertThat(run.requests()).as("only /v1/* requests are counted").isEqualTo(4);
    }

    @Test
    void streamingSendsOneWordPerChunkThenTheUsageChunkWhenAsked() {
        CloudRunEmulator run = start(CloudRunEmulator.builder());
        run.answerNext("Hello from  Cloud Run");
        ObjectNode body = chat("hi");
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);

        HttpResponse<String> response = chatCall(run.url(), body);
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type").orElse("")).startsWith("text/event-stream");
        List<String> events = events(response.body());
        assertThat(events).last().isEqualTo("[DONE]");
        List<JsonNode> chunks = events.subList(0, events.size() - 1).stream()
                .map(Calls::readJson)
                .toList();
        assertThat(chunks.get(0).at("/choices/0/delta/role").asText()).isEqualTo("assistant");
        assertThat(chunks.subList(1, 5))
                .extracting(c -> c.at("/choices/0/delta/content").asText())
                .containsExactly("Hello", " from", "  Cloud", " Run");
        assertThat(chunks.get(5).at("/choices/0/finish_reason").asText()).isEqualTo("stop");
        assertThat(chunks.get(6).path("choices")).isEmpty();
        assertThat(chunks.get(6).at("/usage/completion_tokens").asInt()).isEqualTo(4);
        assertThat(chunks.get(6).at("/usage/prompt_tokens").asInt()).isEqualTo(1);
        assertThat(chunks)
                .hasSize(7)
                .allSatisfy(c -> assertThat(c.path("object").asText()).isEqualTo("chat.completion.chunk"));

        body.remove("stream_options");
        List<String> plain = events(chatCall(run.url(), body).body());
        assertThat(plain).hasSize(1 + 16 + 1 + 1).noneMatch(e -> e.contains("\"usage\""));
    }

    @Test
    void scriptsAreTakenInOrderByChatRequestsThatReachAnInstance() {
        CloudRunEmulator run = start(CloudRunEmulator.builder());
        run.failNext(503, "{\"error\":{\"message\":\"engine dead\",\"type\":\"ServiceUnavailableError\"}}");
        run.failNext(500, "upstream connect error");
        run.answerNext("exactly this");

        assertThat(Calls.get(run.url(), "/v1/models").statusCode())
                .as("other routes leave the scripts queued")
                .isEqualTo(200);
        HttpResponse<String> first = chatCall(run.url(), chat("a"));
        assertThat(first.statusCode()).isEqualTo(503);
        assertThat(json(first).at("/error/message").asText()).isEqualTo("engine dead");
        HttpResponse<String> second = chatCall(run.url(), chat("a"));
        assertThat(second.statusCode()).isEqualTo(500);
        assertThat(second.body()).isEqualTo("upstream connect error");
        HttpResponse<String> third = chatCall(run.url(), chatWithMax("a", 1));
        assertThat(content(third)).isEqualTo("exactly this");
        assertThat(json(third).at("/choices/0/finish_reason").asText()).isEqualTo("stop");
        assertThat(content(chatCall(run.url(), chatWithMax("a", 2))).split(" ")).hasSize(2);
    }

    @Test
    void aScriptedAnswerIsTheExactTextBlockingOrStreamed() {
        CloudRunEmulator run = start(CloudRunEmulator.builder());
        String text = "  two\nlines,  spaced ";
        run.answerNext(text);
        run.answerNext(text);
        run.answerNext("");

        HttpResponse<String> blocking = chatCall(run.url(), chat("a"));
        assertThat(content(blocking)).isEqualTo(text);
        assertThat(json(blocking).at("/usage/completion_tokens").asInt()).isEqualTo(3);

        ObjectNode body = chat("a");
        body.put("stream", true);
        List<String> events = events(chatCall(run.url(), body).body());
        List<String> pieces = events.subList(1, events.size() - 2).stream()
                .map(e -> Calls.readJson(e).at("/choices/0/delta/content").asText())
                .toList();
        assertThat(pieces).containsExactly("  two", "\nlines,", "  spaced ");
        assertThat(String.join("", pieces)).isEqualTo(text);

        assertThat(content(chatCall(run.url(), chat("a")))).isEmpty();
    }

    @Test
    void aCutStreamEndsWithAResetAndNoEnd() throws Exception {
        CloudRunEmulator run = start(CloudRunEmulator.builder());
        run.cutNextAfter(2);
        ObjectNode body = chatWithMax("hi", 6);
        body.put("stream", true);

        HttpResponse<InputStream> response = Calls.HTTP.send(
                Calls.post(run.url(), "/v1/chat/completions", body).build(), HttpResponse.BodyHandlers.ofInputStream());
        assertThat(response.statusCode()).isEqualTo(200);
        List<String> lines = new ArrayList<>();
        assertThatThrownBy(() -> {
                    try (BufferedReader reader =
                            new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
                        for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                            lines.add(line);
                        }
                    }
                })
                .isInstanceOf(IOException.class);
        assertThat(lines).noneMatch(l -> l.contains("[DONE]") || l.contains("\"finish_reason\":\"length\""));
        assertThat(lines.stream().filter(l -> l.contains("\"content\":\"") && !l.contains("\"role\"")))
                .hasSizeLessThanOrEqualTo(2);

        run.cutNextAfter(0);
        assertThatThrownBy(() -> chatCall(run.url(), chatWithMax("hi", 6)))
                .as("a blocking answer cut half way")
                .isInstanceOf(UncheckedIOException.class);
        assertThat(content(chatCall(run.url(), chatWithMax("hi", 6))).split(" "))
                .hasSize(6);
    }

    @Test
    void aStallHoldsItsSlotUntilTheClientLeaves() throws Exception {
        CloudRunEmulator run =
                start(CloudRunEmulator.builder().maxInstances(1).concurrency(1).holdLimit(Duration.ofSeconds(5)));
        run.stallNext();
        Socket stalled = Calls.rawChat(run.url(), chat("wait"));
        await("the stall", Duration.ofSeconds(5), () -> run.stalledNow() == 1);
        assertThat(run.stallsStarted()).isEqualTo(1);

        CompletableFuture<HttpResponse<String>> queued = Calls.chatAsync(run.url(), chatWithMax("next", 2));
        Calls.sleep(Duration.ofMillis(200));
        assertThat(queued).as("the only slot is taken by the stall").isNotDone();
        assertThat(stalled.getInputStream().available()).as("no headers").isZero();

        stalled.close();
        await("the disconnect", Duration.ofSeconds(5), () -> run.disconnects() == 1);
        assertThat(content(queued.get()))
                .as("the freed slot serves the queued request")
                .isNotEmpty();
        assertThat(run.stalledNow()).isZero();
        assertThat(run.coldStarts()).isEqualTo(1);
    }

    // ---- instances ----

    @Test
    void aColdStartHoldsTheFirstRequestThenTheInstanceIsWarm() {
        Duration startup = Duration.ofMillis(400);
        CloudRunEmulator run = start(CloudRunEmulator.builder().coldStart(startup));
        assertThat(run.liveInstances()).isZero();

        long t0 = System.nanoTime();
        assertThat(content(chatCall(run.url(), chatWithMax("hi", 2)))).isNotEmpty();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(startup);
        assertThat(run.coldStarts()).isEqualTo(1);
        assertThat(run.liveInstances()).isEqualTo(1);

        assertThat(content(chatCall(run.url(), chatWithMax("hi", 2)))).isNotEmpty();
        assertThat(run.coldStarts())
                .as("the second request finds the instance warm")
                .isEqualTo(1);
    }

    @Test
    void aHoldShorterThanTheStartupGets429ThenTheStartedInstanceServes() {
        CloudRunEmulator run = start(
                CloudRunEmulator.builder().coldStart(Duration.ofMillis(700)).holdLimit(Duration.ofMillis(150)));

        long t0 = System.nanoTime();
        HttpResponse<String> refused = chatCall(run.url(), chat("hi"));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(Duration.ofMillis(150));
        assertThat(refused.statusCode()).isEqualTo(429);
        assertThat(refused.headers().firstValue("content-type").orElse("")).startsWith("text/html");
        assertThat(refused.body()).contains("no available instance");
        assertThat(run.coldStarts()).isEqualTo(1);
        assertThat(run.liveInstances()).as("the instance goes on starting").isEqualTo(1);

        Calls.sleep(Duration.ofMillis(700));
        assertThat(chatCall(run.url(), chat("hi")).statusCode()).isEqualTo(200);
        assertThat(run.coldStarts()).isEqualTo(1);
    }

    @Test
    void theStartupFailureReplaces429WhileAnInstanceStarts() {
        String message = "The request was aborted because there was no available instance.";
        CloudRunEmulator run = start(CloudRunEmulator.builder()
                .coldStart(Duration.ofMillis(600))
                .holdLimit(Duration.ofMillis(100))
                .maxInstances(1)
                .concurrency(1)
                .startupFailure(500, message));

        HttpResponse<String> refused = chatCall(run.url(), chat("hi"));
        assertThat(refused.statusCode()).isEqualTo(500);
        assertThat(refused.body()).isEqualTo(message);

        Calls.sleep(Duration.ofMillis(600));
        run.stallNext();
        CompletableFuture<HttpResponse<String>> stalled = Calls.chatAsync(run.url(), chat("a"));
        await("the stall", Duration.ofSeconds(5), () -> run.stalledNow() == 1);
        assertThat(chatCall(run.url(), chat("b")).statusCode())
                .as("no instance is starting: a full service answers 429")
                .isEqualTo(429);
        assertThat(stalled).isNotDone();
    }

    @Test
    void parallelRequestsStartOneInstancePerConcurrencySlotsUpToTheMax() {
        ObjectNode body = chatWithMax("hi", 4);
        CloudRunEmulator run = start(CloudRunEmulator.builder()
                .coldStart(Duration.ofMillis(700))
                .tokenLatency(Duration.ofMillis(50))
                .concurrency(2)
                .maxInstances(5));
        parallel(run.url(), 5, body).forEach(f -> assertThat(content(f.join())).isNotEmpty());
        assertThat(run.coldStarts()).as("ceil(5 / 2)").isEqualTo(3);
        assertThat(run.maxInstancesSeen()).isEqualTo(3);

        CloudRunEmulator capped = start(CloudRunEmulator.builder()
                .coldStart(Duration.ofMillis(700))
                .tokenLatency(Duration.ofMillis(50))
                .concurrency(2)
                .maxInstances(3));
        parallel(capped.url(), 8, body)
                .forEach(f -> assertThat(content(f.join())).isNotEmpty());
        assertThat(capped.coldStarts()).isEqualTo(3);
        assertThat(capped.maxInstancesSeen()).isEqualTo(3);
        assertThat(capped.liveInstances()).isEqualTo(3);
    }

    @Test
    void anIdleInstanceIsRemovedAndItsTimeIsBilledUntilThen() {
        Duration startup = Duration.ofMillis(100);
        Duration idle = Duration.ofMillis(800);
        CloudRunEmulator run =
                start(CloudRunEmulator.builder().coldStart(startup).idleTimeout(idle));
        assertThat(run.billableInstanceTime()).isZero();

        long sent = System.nanoTime();
        assertThat(chatCall(run.url(), chat("hi")).statusCode()).isEqualTo(200);
        Duration afterRequest = run.billableInstanceTime();
        assertThat(afterRequest).isGreaterThanOrEqualTo(startup);
        Calls.sleep(Duration.ofMillis(150));
        assertThat(run.billableInstanceTime())
                .as("idle time is billed")
                .isGreaterThanOrEqualTo(afterRequest.plusMillis(150));

        await("scale-in", Duration.ofSeconds(10), () -> run.liveInstances() == 0);
        assertThat(Duration.ofNanos(System.nanoTime() - sent))
                .as("the instance was removed after its startup, its request and its idle timeout")
                .isGreaterThanOrEqualTo(startup.plus(idle));
        Duration billed = run.billableInstanceTime();
        assertThat(billed).isGreaterThanOrEqualTo(startup.plus(idle));
        Calls.sleep(Duration.ofMillis(50));
        assertThat(run.billableInstanceTime())
                .as("nothing is billed after scale-in")
                .isEqualTo(billed);

        assertThat(chatCall(run.url(), chat("hi")).statusCode()).isEqualTo(200);
        assertThat(run.coldStarts()).as("the next request cold starts again").isEqualTo(2);
    }

    @Test
    void minInstancesServeWithoutColdStartsAndAreNeverRemoved() {
        CloudRunEmulator run = start(CloudRunEmulator.builder()
                .minInstances(1)
                .concurrency(1)
                .tokenLatency(Duration.ofMillis(100))
                .idleTimeout(Duration.ofMillis(200)));
        assertThat(run.liveInstances()).isEqualTo(1);

        assertThat(chatCall(run.url(), chatWithMax("hi", 1)).statusCode()).isEqualTo(200);
        assertThat(run.coldStarts()).isZero();

        parallel(run.url(), 2, chatWithMax("hi", 3))
                .forEach(f -> assertThat(content(f.join())).isNotEmpty());
        assertThat(run.coldStarts())
                .as("the second parallel request needs a second instance")
                .isEqualTo(1);
        assertThat(run.maxInstancesSeen()).isEqualTo(2);

        Calls.sleep(Duration.ofMillis(400));
        assertThat(run.liveInstances())
                .as("the extra instance is gone, the min instance stays")
                .isEqualTo(1);
        assertThat(run.billableInstanceTime())
                .as("the min instance is billed since the start")
                .isGreaterThanOrEqualTo(Duration.ofMillis(400));
        run.scaleToZero();
        assertThat(run.liveInstances()).isEqualTo(1);
        assertThat(chatCall(run.url(), chatWithMax("hi", 1)).statusCode()).isEqualTo(200);
        assertThat(run.coldStarts()).isEqualTo(1);
    }

    @Test
    void scaleToZeroDropsTheInstancesAboveTheMin() {
        CloudRunEmulator run = start(CloudRunEmulator.builder());
        assertThat(chatCall(run.url(), chat("hi")).statusCode()).isEqualTo(200);
        assertThat(run.liveInstances()).isEqualTo(1);

        run.scaleToZero();
        assertThat(run.liveInstances()).isZero();
        assertThat(chatCall(run.url(), chat("hi")).statusCode()).isEqualTo(200);
        assertThat(run.coldStarts()).isEqualTo(2);
    }

    // ---- the front end ----

    @Test
    void idTokensAreCheckedBeforeAnyInstance() throws Exception {
        try (GoogleTokenServer google = GoogleTokenServer.start(0)) {
            CloudRunEmulator run = start(CloudRunEmulator.builder().requireIdToken(google));
            run.answerNext("kept for the first accepted request");
            ServiceAccountCredentials invoker = ServiceAccountCredentials.fromStream(new ByteArrayInputStream(
                    google.serviceAccountKeyJson("invoker@emulated-project.iam.gserviceaccount.com")
                            .getBytes(StandardCharsets.UTF_8)));

            HttpResponse<String> missing = chatCall(run.url(), chat("hi"));
            assertThat(missing.statusCode()).isEqualTo(401);
            assertThat(missing.headers().firstValue("content-type").orElse("")).startsWith("text/html");
            assertThat(missing.body()).contains("Your client does not have permission");
            assertThat(chatCall(run.url(), chat("hi"), "not-a-jwt").statusCode())
                    .isEqualTo(401);

            String wrongAudience = invoker.idTokenWithAudience("https://other-service.example", List.of())
                    .getTokenValue();
            HttpResponse<String> forbidden = chatCall(run.url(), chat("hi"), wrongAudience);
            assertThat(forbidden.statusCode()).isEqualTo(403);
            assertThat(forbidden.body()).contains("Your client does not have permission to get URL");

            String expired = jwt(google.issuer(), run.url(), System.currentTimeMillis() / 1000 - 10);
            assertThat(chatCall(run.url(), chat("hi"), expired).statusCode()).isEqualTo(403);
            String otherIssuer = jwt("https://issuer.example", run.url(), System.currentTimeMillis() / 1000 + 600);
            assertThat(chatCall(run.url(), chat("hi"), otherIssuer).statusCode())
                    .isEqualTo(401);
            assertThat(run.coldStarts())
                    .as("refused requests start no instance")
                    .isZero();
            assertThat(run.requests()).isEqualTo(5);

            String token = invoker.idTokenWithAudience(run.url(), List.of()).getTokenValue();
            assertThat(content(chatCall(run.url(), chat("hi"), token)))
                    .as("refused requests left the script queued")
                    .isEqualTo("kept for the first accepted request");
            HttpResponse<String> serverless = Calls.send(Calls.post(run.url(), "/v1/chat/completions", chat("hi"))
                    .header("X-Serverless-Authorization", "Bearer " + token));
            assertThat(serverless.statusCode()).isEqualTo(200);
            assertThat(Calls.send(HttpRequest.newBuilder(URI.create(run.url() + "/v1/models"))
                                    .header("Authorization", "Bearer " + token))
                            .statusCode())
                    .isEqualTo(200);
            assertThat(Calls.get(run.url(), "/v1/models").statusCode()).isEqualTo(401);
            assertThat(google.audiencesRequested()).containsExactly("https://other-service.example", run.url());
            assertThat(google.idTokensIssued()).isEqualTo(2);
        }
    }

    @Test
    void aCustomAudienceReplacesTheUrl() throws Exception {
        try (GoogleTokenServer google = GoogleTokenServer.start(0)) {
            CloudRunEmulator run =
                    start(CloudRunEmulator.builder().requireIdToken(google).audience("https://llm.example.com"));
            long exp = System.currentTimeMillis() / 1000 + 600;
            assertThat(chatCall(run.url(), chat("hi"), jwt(google.issuer(), "https://llm.example.com", exp))
                            .statusCode())
                    .isEqualTo(200);
            assertThat(chatCall(run.url(), chat("hi"), jwt(google.issuer(), run.url(), exp))
                            .statusCode())
                    .isEqualTo(403);
        }
    }

    /** An unsigned JWT with the given claims, as the emulator reads tokens without checking signatures. */
    static String jwt(String iss, String aud, long exp) {
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        ObjectNode payload = MAPPER.createObjectNode();
        payload.put("iss", iss)
                .put("aud", aud)
                .put("sub", "1")
                .put("iat", exp - 3600)
                .put("exp", exp);
        return b64.encodeToString("{\"alg\":\"RS256\",\"typ\":\"JWT\"}".getBytes(StandardCharsets.UTF_8)) + "."
                + b64.encodeToString(payload.toString().getBytes(StandardCharsets.UTF_8)) + "."
                + b64.encodeToString("signature".getBytes(StandardCharsets.UTF_8));
    }
}
