package dev.hybridinference.vllm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.StreamHandler;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The vLLM client against a local server speaking the OpenAI-compatible protocol. */
@Timeout(30)
class VllmClientHttpTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String COMPLETION = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
            + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello!\"},"
            + "\"finish_reason\":\"stop\"}],"
            + "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}";

    private final MockWebServer server = new MockWebServer();
    private final CostLedger ledger = new CostLedger();
    private VllmClient client;

    @BeforeEach
    void start() throws Exception {
        server.start();
        client = client(b -> {});
    }

    @AfterEach
    void stop() {
        client.close();
        server.close();
    }

    private VllmClient client(java.util.function.Consumer<VllmClient.Builder> custom) {
        VllmClient.Builder b = VllmClient.builder()
                .id("vllm-main")
                .baseUrl(server.url("/v1").toString())
                .model("m")
                .apiKey("sk-test-secret")
                .scrapeInterval(Duration.ZERO)
                .pricing(new Pricing.PerInstanceHour(new BigDecimal("3.60"), 1))
                .ledger(ledger);
        custom.accept(b);
        return b.build();
    }

    static String sse(String... events) {
        StringBuilder sb = new StringBuilder();
        for (String e : events) {
            sb.append("data: ").append(e).append("\n\n");
        }
        return sb.toString();
    }

    static String chunk(String deltaJson, String finish) {
        return "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
                + "\"delta\":" + deltaJson + ",\"finish_reason\":" + (finish == null ? "null" : "\"" + finish + "\"")
                + "}]}";
    }

    static final String USAGE_CHUNK =
            "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
                    + "\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}";

    static MockResponse sseResponse(String body) {
        return new MockResponse.Builder()
                .addHeader("Content-Type", "text/event-stream")
                .body(body)
                .build();
    }

    static MockResponse json(int code, String body) {
        return new MockResponse.Builder()
                .code(code)
                .addHeader("Content-Type", "application/json")
                .body(body)
                .build();
    }

    @Test
    void blockingCallSendsTheOpenAiBodyAndReturnsTextUsageAndCost() throws Exception {
        server.enqueue(json(200, COMPLETION));
        ChatResponse r = client.chat(ChatRequest.builder()
                .system("Be brief.")
                .user("Hi")
                .maxTokens(16)
                .temperature(0.2)
                .topK(5)
                .stop("\n\n")
                .seed(42)
                .options(RequestOptions.builder().tag("tenant", "acme").build())
                .build());
        assertThat(r.text()).isEqualTo("Hello!");
        assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(r.usage()).isEqualTo(new Usage(12, 3, 0));

        RecordedRequest req = server.takeRequest();
        assertThat(req.getMethod()).isEqualTo("POST");
        assertThat(req.getUrl().encodedPath()).isEqualTo("/v1/chat/completions");
        assertThat(req.getHeaders().get("Authorization")).isEqualTo("Bearer sk-test-secret");
        JsonNode body = JSON.readTree(req.getBody().utf8());
        assertThat(body.get("model").asText()).isEqualTo("m");
        assertThat(body.get("messages").toString())
                .isEqualTo("[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}]");
        assertThat(body.get("max_tokens").asInt()).isEqualTo(16);
        assertThat(body.get("temperature").asDouble()).isEqualTo(0.2);
        assertThat(body.get("top_k").asInt()).isEqualTo(5);
        assertThat(body.get("stop").toString()).isEqualTo("[\"\\n\\n\"]");
        assertThat(body.get("seed").asLong()).isEqualTo(42);
        assertThat(body.has("stream")).isFalse();

        var receipt = r.receipt();
        assertThat(receipt.providerId()).isEqualTo("vllm-main");
        assertThat(receipt.model()).isEqualTo("m");
        assertThat(receipt.attempts()).hasSize(1);
        assertThat(receipt.attempts().get(0).endpoint())
                .isEqualTo(server.url("/").toString().replaceAll("/$", ""));
        assertThat(receipt.route())
                .isEqualTo("single replica " + receipt.attempts().get(0).endpoint());
        assertThat(receipt.attributes())
                .containsEntry("replica", receipt.attempts().get(0).endpoint());
        assertThat(receipt.computeTime()).isPositive().isLessThanOrEqualTo(receipt.totalTime());
        assertThat(receipt.costEstimated()).isFalse();
        assertThat(receipt.instanceTime()).isPositive().isLessThanOrEqualTo(receipt.totalTime());
        // $3.60 per hour is $0.001 per second of attributed instance time.
        BigDecimal expected = new BigDecimal("0.001")
                .multiply(BigDecimal.valueOf(receipt.instanceTime().toNanos()))
                .movePointLeft(9);
        assertThat(receipt.cost().subtract(expected).abs()).isLessThan(new BigDecimal("0.000000000001"));
        assertThat(ledger.totals().tag("tenant", "acme")).isEqualByComparingTo(receipt.cost());
    }

    @Test
    void asyncCallCompletes() throws Exception {
        server.enqueue(json(200, COMPLETION));
        CompletableFuture<ChatResponse> f = client.chatAsync(ChatRequest.of("Hi"));
        assertThat(f.get(10, TimeUnit.SECONDS).text()).isEqualTo("Hello!");
    }

    @Test
    void streamingDeliversChunksAndEndsWithUsageInTheReceipt() throws Exception {
        server.enqueue(sseResponse(sse(
                chunk("{\"role\":\"assistant\",\"content\":\"\"}", null),
                chunk("{\"content\":\"Hel\"}", null),
                chunk("{\"content\":\"lo\"}", "stop"),
                USAGE_CHUNK,
                "[DONE]")));
        List<String> pieces = new ArrayList<>();
        try (ChatStream s = client.stream(ChatRequest.of("Hi"))) {
            for (ChatChunk c : s) {
                pieces.add(c.text());
            }
            ChatResponse r = s.response();
            assertThat(r.text()).isEqualTo("Hello");
            assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(r.receipt().usage()).isEqualTo(new Usage(7, 2, 0));
            assertThat(r.receipt().timeToFirstToken()).isPresent();
            assertThat(r.receipt().cost()).isPositive();
        }
        assertThat(pieces).containsExactly("Hel", "lo");
        JsonNode body = JSON.readTree(server.takeRequest().getBody().utf8());
        assertThat(body.get("stream").asBoolean()).isTrue();
        assertThat(body.get("stream_options").get("include_usage").asBoolean()).isTrue();
        assertThat(client.load().inFlight()).isZero();
    }

    @Test
    void pushStreamingDeliversTheSameChunks() throws Exception {
        server.enqueue(
                sseResponse(sse(chunk("{\"content\":\"a\"}", null), chunk("{\"content\":\"b\"}", "length"), "[DONE]")));
        List<String> got = new ArrayList<>();
        AtomicReference<ChatResponse> done = new AtomicReference<>();
        CountDownLatch latch = new CountDownLatch(1);
        client.stream(ChatRequest.of("Hi"), new StreamHandler() {
            @Override
            public void onChunk(ChatChunk chunk) {
                got.add(chunk.text());
            }

            @Override
            public void onComplete(ChatResponse response) {
                done.set(response);
                latch.countDown();
            }

            @Override
            public void onError(InferenceException error) {
                latch.countDown();
            }
        });
        assertThat(latch.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(got).containsExactly("a", "b");
        assertThat(done.get().finishReason()).isEqualTo(FinishReason.LENGTH);
    }

    @Test
    void toolsAndJsonFormatAreEncodedAndToolCallsDecoded() throws Exception {
        server.enqueue(
                json(
                        200,
                        "{\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                                + "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
                                + "{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}"));
        ChatResponse r = client.chat(ChatRequest.builder()
                .user("Weather in Paris?")
                .addMessage(Message.assistant("", List.of(new ToolCall("call_0", "weather", "{}"))))
                .addMessage(Message.tool("call_0", "sunny"))
                .addTool(new ToolDefinition(
                        "weather",
                        "Current weather",
                        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}"))
                .responseFormat(ResponseFormat.JSON_OBJECT)
                .build());
        assertThat(r.finishReason()).isEqualTo(FinishReason.TOOL_CALLS);
        assertThat(r.toolCalls()).containsExactly(new ToolCall("call_1", "weather", "{\"city\":\"Paris\"}"));
        assertThat(r.usage()).isEqualTo(Usage.ZERO);
        JsonNode body = JSON.readTree(server.takeRequest().getBody().utf8());
        assertThat(body.at("/tools/0/function/name").asText()).isEqualTo("weather");
        assertThat(body.at("/tools/0/function/parameters/properties/city/type").asText())
                .isEqualTo("string");
        assertThat(body.at("/response_format/type").asText()).isEqualTo("json_object");
        assertThat(body.at("/messages/1/tool_calls/0/function/name").asText()).isEqualTo("weather");
        assertThat(body.at("/messages/1/content").isNull()).isTrue();
        assertThat(body.at("/messages/2/tool_call_id").asText()).isEqualTo("call_0");
    }

    @Test
    void streamedToolCallFragmentsAreAssembled() {
        server.enqueue(sseResponse(sse(
                chunk(
                        "{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]}",
                        null),
                chunk("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}", null),
                chunk("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Oslo\\\"}\"}}]}", "tool_calls"),
                "[DONE]")));
        try (ChatStream s = client.stream(ChatRequest.of("Weather?"))) {
            s.forEachRemaining(c -> {});
            assertThat(s.response().toolCalls())
                    .containsExactly(new ToolCall("call_9", "weather", "{\"city\":\"Oslo\"}"));
            assertThat(s.response().finishReason()).isEqualTo(FinishReason.TOOL_CALLS);
        }
    }

    @ParameterizedTest(name = "HTTP {0} {1}")
    @CsvSource({
        "400, nested, dev.hybridinference.core.InvalidRequestException",
        "400, flat, dev.hybridinference.core.InvalidRequestException",
        "401, nested, dev.hybridinference.core.AuthenticationException",
        "404, flat, dev.hybridinference.core.InvalidRequestException",
        "422, nested, dev.hybridinference.core.InvalidRequestException",
        "429, nested, dev.hybridinference.core.RateLimitedException",
        "500, flat, dev.hybridinference.core.ProviderUnavailableException",
        "503, nested, dev.hybridinference.core.ProviderUnavailableException"
    })
    void errorStatusesBecomeTypedExceptions(int status, String shape, String type) throws Exception {
        String msg = "boom " + status;
        String body = shape.equals("nested")
                ? "{\"error\":{\"message\":\"" + msg + "\",\"type\":\"X\",\"param\":null,\"code\":" + status + "}}"
                : "{\"object\":\"error\",\"message\":\"" + msg + "\",\"type\":\"X\",\"param\":null,\"code\":" + status
                        + "}";
        server.enqueue(json(status, body));
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi")))
                .isInstanceOf(Class.forName(type))
                .hasMessageContaining(msg)
                .hasMessageContaining("vllm-main")
                .hasMessageNotContaining("sk-test-secret")
                .satisfies(
                        e -> assertThat(((InferenceException) e).statusCode()).isEqualTo(status))
                .satisfies(e ->
                        assertThat(((InferenceException) e).partialReceipt()).isPresent());
    }

    @Test
    void rateLimitCarriesRetryAfterAndIsNotRetriedOnTheSameReplica() {
        server.enqueue(new MockResponse.Builder()
                .code(429)
                .addHeader("Retry-After", "3")
                .body("{\"error\":{\"message\":\"slow down\"}}")
                .build());
        server.enqueue(json(200, COMPLETION));
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi")))
                .isInstanceOfSatisfying(RateLimitedException.class, e -> {
                    assertThat(e.retryAfter()).contains(Duration.ofSeconds(3));
                    assertThat(e.isRetryable()).isTrue();
                });
        assertThat(server.getRequestCount()).isEqualTo(1);
    }

    @Test
    void contextOverflowIsReportedAsSuch() {
        server.enqueue(json(
                400,
                "{\"error\":{\"message\":\"This model's maximum context length is 2048 tokens."
                        + " However, you requested 4000 tokens\",\"type\":\"BadRequestError\",\"code\":400}}"));
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi"))).isInstanceOf(ContextLengthExceededException.class);
    }

    @Test
    void unauthorizedSaysToCheckTheKeyWithoutShowingIt() {
        server.enqueue(json(401, "{\"error\":\"Unauthorized\"}"));
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi")))
                .isInstanceOf(AuthenticationException.class)
                .hasMessageContaining("check the API key")
                .hasMessageNotContaining("sk-test-secret");
    }

    @Test
    void malformedJsonIsAClearError() {
        server.enqueue(json(200, "{\"choices\": [ {\"message\": "));
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi")))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("not valid JSON");
        server.enqueue(json(200, "{\"object\":\"chat.completion\"}"));
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi")))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("no choices");
    }

    @Test
    void truncatedStreamIsAClearErrorNotAHang() {
        server.enqueue(sseResponse(sse(chunk("{\"content\":\"Hel\"}", null)) + "data: {\"id\":\"c1\",\"choi"));
        try (ChatStream s = client.stream(ChatRequest.of("Hi"))) {
            assertThat(s.next().text()).isEqualTo("Hel");
            assertThatThrownBy(s::hasNext)
                    .isInstanceOf(MalformedResponseException.class)
                    .hasMessageContaining("stream ended before \"data: [DONE]\"")
                    .satisfies(e -> assertThat(((InferenceException) e).partialReceipt())
                            .isPresent());
        }
        assertThat(client.load().inFlight()).isZero();
    }

    @Test
    void anErrorEventInsideTheStreamSurfacesTyped() {
        server.enqueue(sseResponse(sse(
                chunk("{\"content\":\"x\"}", null),
                "{\"error\":{\"message\":\"engine died\",\"type\":\"InternalServerError\",\"code\":500}}",
                "[DONE]")));
        try (ChatStream s = client.stream(ChatRequest.of("Hi"))) {
            s.next();
            assertThatThrownBy(s::hasNext)
                    .isInstanceOf(ProviderUnavailableException.class)
                    .hasMessageContaining("engine died");
        }
    }

    @Test
    void aMalformedStreamEventIsAClearError() {
        server.enqueue(sseResponse(sse("{not json", "[DONE]")));
        try (ChatStream s = client.stream(ChatRequest.of("Hi"))) {
            assertThatThrownBy(s::hasNext)
                    .isInstanceOf(MalformedResponseException.class)
                    .hasMessageContaining("not valid JSON");
        }
    }

    @Test
    void aSlowServerTimesOut() {
        client.close();
        client = client(b -> b.readTimeout(Duration.ofMillis(300)));
        server.enqueue(new MockResponse.Builder()
                .body(COMPLETION)
                .headersDelay(5, TimeUnit.SECONDS)
                .build());
        long start = System.nanoTime();
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi")))
                .isInstanceOfSatisfying(
                        InferenceTimeoutException.class,
                        e -> assertThat(e.isRetryable()).isTrue());
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(4));
    }

    @Test
    void theRequestDeadlineBoundsTheCall() {
        server.enqueue(new MockResponse.Builder()
                .body(COMPLETION)
                .headersDelay(5, TimeUnit.SECONDS)
                .build());
        ChatRequest r = ChatRequest.builder()
                .user("Hi")
                .options(
                        RequestOptions.builder().timeout(Duration.ofMillis(300)).build())
                .build();
        assertThatThrownBy(() -> client.chat(r)).isInstanceOfSatisfying(InferenceTimeoutException.class, e -> {
            assertThat(e.isDeadlineExceeded()).isTrue();
            assertThat(e.isRetryable()).isFalse();
        });
    }

    @Test
    void aServerThatIgnoresStreamingStillYieldsTheAnswer() {
        server.enqueue(json(200, COMPLETION));
        try (ChatStream s = client.stream(ChatRequest.of("Hi"))) {
            assertThat(s.next().text()).isEqualTo("Hello!");
            assertThat(s.hasNext()).isFalse();
            assertThat(s.response().usage()).isEqualTo(new Usage(12, 3, 0));
        }
    }

    @Test
    void theModelIsDiscoveredFromTheServerWhenNotConfigured() throws Exception {
        client.close();
        client = client(b -> b.model(null));
        server.enqueue(json(200, "{\"object\":\"list\",\"data\":[{\"id\":\"served-model\",\"object\":\"model\"}]}"));
        server.enqueue(json(200, COMPLETION));
        server.enqueue(json(200, COMPLETION));
        client.chat(ChatRequest.of("Hi"));
        client.chat(ChatRequest.of("Hi again"));
        assertThat(server.takeRequest().getUrl().encodedPath()).isEqualTo("/v1/models");
        assertThat(JSON.readTree(server.takeRequest().getBody().utf8())
                        .get("model")
                        .asText())
                .isEqualTo("served-model");
        assertThat(server.takeRequest().getUrl().encodedPath()).isEqualTo("/v1/chat/completions");
        assertThat(client.info().models()).containsExactly("served-model");
    }

    @Test
    void aBadRequestIsNotRetried() {
        server.enqueue(json(400, "{\"error\":{\"message\":\"bad\"}}"));
        assertThatThrownBy(() -> client.chat(ChatRequest.of("Hi"))).isInstanceOf(InvalidRequestException.class);
        assertThat(server.getRequestCount()).isEqualTo(1);
    }
}
