package dev.hybridinference.testkit.sagemaker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.testkit.internal.GeneratedText;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator.ColdStartMode;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator.Container;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator.Failure;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.client.config.ClientOverrideConfiguration;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.Protocol;
import software.amazon.awssdk.http.SdkHttpClient;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.http.async.SdkAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.sagemakerruntime.SageMakerRuntimeAsyncClient;
import software.amazon.awssdk.services.sagemakerruntime.SageMakerRuntimeClient;
import software.amazon.awssdk.services.sagemakerruntime.model.InternalDependencyException;
import software.amazon.awssdk.services.sagemakerruntime.model.InternalFailureException;
import software.amazon.awssdk.services.sagemakerruntime.model.InternalStreamFailureException;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointRequest;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointResponse;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointWithResponseStreamRequest;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointWithResponseStreamResponse;
import software.amazon.awssdk.services.sagemakerruntime.model.InvokeEndpointWithResponseStreamResponseHandler;
import software.amazon.awssdk.services.sagemakerruntime.model.ModelErrorException;
import software.amazon.awssdk.services.sagemakerruntime.model.ModelNotReadyException;
import software.amazon.awssdk.services.sagemakerruntime.model.ModelStreamErrorException;
import software.amazon.awssdk.services.sagemakerruntime.model.SageMakerRuntimeException;
import software.amazon.awssdk.services.sagemakerruntime.model.ServiceUnavailableException;
import software.amazon.awssdk.services.sagemakerruntime.model.ValidationErrorException;

/** The emulator seen through the AWS SDK's own SageMaker Runtime clients, as a provider would use them. */
@Timeout(30)
class SageMakerEmulatorTest {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final StaticCredentialsProvider CREDENTIALS =
            StaticCredentialsProvider.create(AwsBasicCredentials.create("AKIDEXAMPLE", "fake-secret"));

    private static SdkHttpClient apache;
    private static SdkAsyncHttpClient netty;

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeAll
    static void httpClients() {
        apache = ApacheHttpClient.builder().build();
        netty = NettyNioAsyncHttpClient.builder().protocol(Protocol.HTTP1_1).build();
    }

    @AfterAll
    static void closeHttpClients() {
        apache.close();
        netty.close();
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    // ---- helpers ----

    private SageMakerEmulator start(SageMakerEmulator.Builder builder) {
        SageMakerEmulator emulator = builder.start();
        toClose.add(emulator);
        return emulator;
    }

    private SageMakerRuntimeClient sync(SageMakerEmulator emulator) {
        return sync(emulator, o -> {});
    }

    private SageMakerRuntimeClient sync(
            SageMakerEmulator emulator, Consumer<ClientOverrideConfiguration.Builder> more) {
        SageMakerRuntimeClient client = SageMakerRuntimeClient.builder()
                .endpointOverride(emulator.endpoint())
                .region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS)
                .httpClient(apache)
                .overrideConfiguration(o -> {
                    o.retryStrategy(AwsRetryStrategy.doNotRetry());
                    more.accept(o);
                })
                .build();
        toClose.add(client);
        return client;
    }

    private SageMakerRuntimeAsyncClient async(SageMakerEmulator emulator) {
        SageMakerRuntimeAsyncClient client = SageMakerRuntimeAsyncClient.builder()
                .endpointOverride(emulator.endpoint())
                .region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS)
                .httpClient(netty)
                .overrideConfiguration(o -> o.retryStrategy(AwsRetryStrategy.doNotRetry()))
                .build();
        toClose.add(client);
        return client;
    }

    private static InvokeEndpointRequest.Builder invoke(String body) {
        return InvokeEndpointRequest.builder()
                .endpointName("test-endpoint")
                .contentType("application/json")
                .body(SdkBytes.fromUtf8String(body));
    }

    private static InvokeEndpointWithResponseStreamRequest.Builder invokeStream(String body) {
        return InvokeEndpointWithResponseStreamRequest.builder()
                .endpointName("test-endpoint")
                .contentType("application/json")
                .body(SdkBytes.fromUtf8String(body));
    }

    private static String chatBody(String content, String extra) {
        return "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                + "{\"role\":\"user\",\"content\":" + quote(content) + "}]" + extra + "}";
    }

    private static String generateBody(String inputs, String parameters, boolean stream) {
        return "{\"inputs\":" + quote(inputs) + ",\"parameters\":{" + parameters + "},\"stream\":" + stream + "}";
    }

    private static String bodyFor(Container c, String prompt, boolean stream) {
        return switch (c) {
            case MESSAGES_SSE, MESSAGES_JSONLINES -> chatBody(prompt, ",\"stream\":" + stream);
            case TGI, LMI_JSONLINES -> generateBody(prompt, "\"max_new_tokens\":32,\"details\":true", stream);
        };
    }

    private static String quote(String s) {
        try {
            return MAPPER.writeValueAsString(s);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode json(String s) {
        try {
            return MAPPER.readTree(s);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + s, e);
        }
    }

    /** What a streaming call delivered. */
    private record Streamed(
            InvokeEndpointWithResponseStreamResponse response, List<byte[]> parts, Throwable error, boolean completed) {
        String joined() {
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            parts.forEach(all::writeBytes);
            return all.toString(StandardCharsets.UTF_8);
        }
    }

    private static Streamed stream(SageMakerRuntimeAsyncClient client, InvokeEndpointWithResponseStreamRequest request)
            throws Exception {
        return stream(client, request, p -> {});
    }

    private static Streamed stream(
            SageMakerRuntimeAsyncClient client,
            InvokeEndpointWithResponseStreamRequest request,
            Consumer<byte[]> onPart)
            throws Exception {
        List<byte[]> parts = new CopyOnWriteArrayList<>();
        AtomicReference<InvokeEndpointWithResponseStreamResponse> response = new AtomicReference<>();
        AtomicReference<Throwable> error = new AtomicReference<>();
        AtomicReference<Boolean> completed = new AtomicReference<>(false);
        InvokeEndpointWithResponseStreamResponseHandler handler =
                InvokeEndpointWithResponseStreamResponseHandler.builder()
                        .onResponse(response::set)
                        .onError(error::set)
                        .onComplete(() -> completed.set(true))
                        .subscriber(InvokeEndpointWithResponseStreamResponseHandler.Visitor.builder()
                                .onPayloadPart(p -> {
                                    byte[] bytes = p.bytes().asByteArray();
                                    parts.add(bytes);
                                    onPart.accept(bytes);
                                })
                                .build())
                        .build();
        Throwable failure = null;
        try {
            client.invokeEndpointWithResponseStream(request, handler).get(15, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            failure = e.getCause();
        }
        Throwable seen = error.get() != null ? error.get() : failure;
        return new Streamed(response.get(), List.copyOf(parts), unwrap(seen), completed.get());
    }

    /** The SDK hands errors to onError and the future wrapped in a CompletionException. */
    private static Throwable unwrap(Throwable t) {
        Throwable u = t;
        while ((u instanceof CompletionException || u instanceof ExecutionException) && u.getCause() != null) {
            u = u.getCause();
        }
        return u;
    }

    /** The first exception of {@code type} in the cause chain of {@code t}. */
    private static <T extends Throwable> T causeOfType(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) {
                return type.cast(c);
            }
        }
        throw new AssertionError("no " + type.getSimpleName() + " in the cause chain of " + t, t);
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out waiting until " + what);
            }
            Thread.sleep(10);
        }
    }

    /** The JSON events of a container's stream: SSE {@code data:} lines or JSON lines, without {@code [DONE]}. */
    private static List<JsonNode> events(Container c, String body) {
        List<JsonNode> out = new ArrayList<>();
        boolean sse = c == Container.MESSAGES_SSE || c == Container.TGI;
        for (String line : body.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            if (sse) {
                assertThat(line).startsWith("data:");
                line = line.substring(5).strip();
                if (line.equals("[DONE]")) {
                    continue;
                }
            }
            out.add(json(line));
        }
        return out;
    }

    private static String rawPost(URI base, String path, String authorization) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(chatBody("hi", "")));
        if (authorization != null) {
            request.header("Authorization", authorization).header("X-Amz-Date", "20260101T000000Z");
        }
        HttpResponse<String> response = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .build()
                .send(request.build(), HttpResponse.BodyHandlers.ofString());
        return response.statusCode() + " "
                + response.headers().firstValue("x-amzn-ErrorType").orElse("-") + " "
                + response.headers()
                        .firstValue("x-amzn-RequestId")
                        .map(id -> "rid")
                        .orElse("no-rid") + " "
                + response.body();
    }

    // ---- blocking calls, each container ----

    @ParameterizedTest
    @EnumSource(Container.class)
    void blockingCallAnswersInTheContainersShape(Container c) {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().container(c));
        emulator.answerNext("Hello   there\n world");
        String body = bodyFor(c, "three word prompt", false);

        InvokeEndpointResponse r = sync(emulator)
                .invokeEndpoint(invoke(body).customAttributes("trace=abc").build());

        assertThat(r.contentType()).isEqualTo("application/json");
        assertThat(r.invokedProductionVariant()).isEqualTo("AllTraffic");
        assertThat(r.customAttributes()).isEqualTo("trace=abc");
        JsonNode answer = json(r.body().asUtf8String());
        switch (c) {
            case MESSAGES_SSE, MESSAGES_JSONLINES -> {
                assertThat(answer.path("object").asText()).isEqualTo("chat.completion");
                JsonNode choice = answer.path("choices").get(0);
                assertThat(choice.path("message").path("role").asText()).isEqualTo("assistant");
                assertThat(choice.path("message").path("content").asText()).isEqualTo("Hello there world");
                assertThat(choice.path("finish_reason").asText()).isEqualTo("stop");
                // "be brief" + "three word prompt"
                assertThat(answer.path("usage").path("prompt_tokens").asInt()).isEqualTo(5);
                assertThat(answer.path("usage").path("completion_tokens").asInt())
                        .isEqualTo(3);
                assertThat(answer.path("usage").path("total_tokens").asInt()).isEqualTo(8);
            }
            case TGI -> {
                assertThat(answer.isArray()).isTrue();
                assertThat(answer.get(0).path("generated_text").asText()).isEqualTo("Hello there world");
                assertThat(answer.get(0).path("details").path("finish_reason").asText())
                        .isEqualTo("eos_token");
                assertThat(answer.get(0)
                                .path("details")
                                .path("generated_tokens")
                                .asInt())
                        .isEqualTo(3);
            }
            case LMI_JSONLINES -> {
                assertThat(answer.isObject()).isTrue();
                assertThat(answer.path("generated_text").asText()).isEqualTo("Hello there world");
                assertThat(answer.path("details").path("generated_tokens").asInt())
                        .isEqualTo(3);
            }
        }
        SageMakerEmulator.RecordedRequest recorded = emulator.requests().get(0);
        assertThat(recorded.method()).isEqualTo("POST");
        assertThat(recorded.path()).isEqualTo("/endpoints/test-endpoint/invocations");
        assertThat(recorded.bodyUtf8()).isEqualTo(body);
        assertThat(recorded.header("Authorization"))
                .startsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                .contains("/us-east-1/sagemaker/aws4_request");
        assertThat(recorded.headers()).containsEntry("x-amzn-sagemaker-custom-attributes", "trace=abc");
        assertThat(emulator.invocations()).isEqualTo(1);
    }

    @Test
    void generateDetailsOnlyWhenAsked() {
        SageMakerEmulator tgi = start(SageMakerEmulator.builder().container(Container.TGI));
        JsonNode plain = json(sync(tgi)
                        .invokeEndpoint(invoke(generateBody("hi", "\"max_new_tokens\":3", false))
                                .build())
                        .body()
                        .asUtf8String())
                .get(0);
        assertThat(plain.has("details")).isFalse();
        assertThat(plain.path("generated_text").asText().split(" ")).hasSize(3);

        SageMakerEmulator lmi = start(SageMakerEmulator.builder().container(Container.LMI_JSONLINES));
        JsonNode lmiAnswer = json(sync(lmi)
                .invokeEndpoint(invoke(generateBody("hi", "\"max_new_tokens\":2", false))
                        .build())
                .body()
                .asUtf8String());
        assertThat(lmiAnswer.has("details")).isFalse();
        assertThat(lmiAnswer.path("generated_text").asText().split(" ")).hasSize(2);
    }

    @Test
    void asyncClientInvokesTheBlockingRouteToo() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().variant("Blue"));
        emulator.answerNext("from the async client");

        InvokeEndpointResponse r = async(emulator)
                .invokeEndpoint(invoke(chatBody("hi", "")).build())
                .get(10, TimeUnit.SECONDS);

        assertThat(r.invokedProductionVariant()).isEqualTo("Blue");
        assertThat(json(r.body().asUtf8String())
                        .path("choices")
                        .get(0)
                        .path("message")
                        .path("content")
                        .asText())
                .isEqualTo("from the async client");
    }

    // ---- streaming, each container ----

    @ParameterizedTest
    @EnumSource(Container.class)
    void streamSlicedIntoSevenBytePartsReassemblesToTheContainersStream(Container c) throws Exception {
        SageMakerEmulator emulator =
                start(SageMakerEmulator.builder().container(c).partSize(7).variant("Green"));
        emulator.answerNext("alpha beta gamma delta");

        Streamed s = stream(
                async(emulator),
                invokeStream(bodyFor(c, "stream this", true))
                        .customAttributes("k=v")
                        .build());

        assertThat(s.error()).isNull();
        assertThat(s.completed()).isTrue();
        assertThat(s.response().contentType())
                .isEqualTo(
                        c == Container.MESSAGES_SSE || c == Container.TGI
                                ? "text/event-stream"
                                : "application/jsonlines");
        assertThat(s.response().invokedProductionVariant()).isEqualTo("Green");
        assertThat(s.response().customAttributes()).isEqualTo("k=v");
        for (int i = 0; i < s.parts().size() - 1; i++) {
            assertThat(s.parts().get(i)).hasSize(7);
        }
        assertThat(s.parts().get(s.parts().size() - 1).length).isBetween(1, 7);
        long partsEndingMidLine =
                s.parts().stream().filter(p -> p[p.length - 1] != '\n').count();
        assertThat(partsEndingMidLine).isGreaterThan(1);

        String body = s.joined();
        List<JsonNode> events = events(c, body);
        StringBuilder text = new StringBuilder();
        switch (c) {
            case MESSAGES_SSE, MESSAGES_JSONLINES -> {
                for (JsonNode e : events) {
                    assertThat(e.path("object").asText()).isEqualTo("chat.completion.chunk");
                    text.append(e.path("choices")
                            .get(0)
                            .path("delta")
                            .path("content")
                            .asText(""));
                }
                assertThat(events.get(0)
                                .path("choices")
                                .get(0)
                                .path("delta")
                                .path("role")
                                .asText())
                        .isEqualTo("assistant");
                assertThat(events.get(events.size() - 1)
                                .path("choices")
                                .get(0)
                                .path("finish_reason")
                                .asText())
                        .isEqualTo("stop");
                if (c == Container.MESSAGES_SSE) {
                    assertThat(body).startsWith("data: {").endsWith("\n\ndata: [DONE]\n\n");
                } else {
                    assertThat(body).doesNotContain("data:").doesNotContain("[DONE]");
                }
            }
            case TGI -> {
                assertThat(body).startsWith("data:{\"index\":0,\"token\":{");
                for (JsonNode e : events) {
                    text.append(e.path("token").path("text").asText());
                    assertThat(e.path("token").path("special").asBoolean(true)).isFalse();
                }
                assertThat(events.get(0).path("generated_text").isNull()).isTrue();
                JsonNode last = events.get(events.size() - 1);
                assertThat(last.path("generated_text").asText()).isEqualTo("alpha beta gamma delta");
                assertThat(last.path("details").path("generated_tokens").asInt())
                        .isEqualTo(4);
            }
            case LMI_JSONLINES -> {
                assertThat(body).startsWith("{\"token\":{");
                for (JsonNode e : events) {
                    text.append(e.path("token").path("text").asText());
                    assertThat(e.path("token").has("log_prob")).isTrue();
                }
                JsonNode last = events.get(events.size() - 1);
                assertThat(last.path("generated_text").asText()).isEqualTo("alpha beta gamma delta");
                assertThat(last.path("details").path("finish_reason").asText()).isEqualTo("eos_token");
                assertThat(events.get(0).has("generated_text")).isFalse();
            }
        }
        assertThat(text.toString()).isEqualTo("alpha beta gamma delta");
        assertThat(emulator.requests().get(0).path()).isEqualTo("/endpoints/test-endpoint/invocations-response-stream");
    }

    @Test
    void withoutPartSizeEachEventIsOnePart() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.answerNext("one two three");

        Streamed s = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());

        // role chunk, three tokens, finish chunk, [DONE]
        assertThat(s.parts()).hasSize(6);
        for (byte[] p : s.parts()) {
            String part = new String(p, StandardCharsets.UTF_8);
            assertThat(part).startsWith("data: ").endsWith("\n\n");
        }
    }

    @Test
    void usageChunkOnlyWhenAskedAndNeverInLmiLines() throws Exception {
        SageMakerEmulator sse = start(SageMakerEmulator.builder());
        String withUsage =
                chatBody("four words of prompt", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        sse.answerNext("a b");
        List<JsonNode> events = events(
                Container.MESSAGES_SSE,
                stream(async(sse), invokeStream(withUsage).build()).joined());
        JsonNode last = events.get(events.size() - 1);
        assertThat(last.path("choices").isArray()).isTrue();
        assertThat(last.path("choices")).isEmpty();
        assertThat(last.path("usage").path("prompt_tokens").asInt()).isEqualTo(6);
        assertThat(last.path("usage").path("completion_tokens").asInt()).isEqualTo(2);

        sse.answerNext("a b");
        String plain = stream(
                        async(sse),
                        invokeStream(chatBody("x", ",\"stream\":true")).build())
                .joined();
        assertThat(plain).doesNotContain("usage");

        SageMakerEmulator lmi = start(SageMakerEmulator.builder().container(Container.MESSAGES_JSONLINES));
        String lines = stream(async(lmi), invokeStream(withUsage).build()).joined();
        assertThat(lines).doesNotContain("usage");
    }

    @Test
    void partsArriveAsTokensAreProduced() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().tokenLatency(Duration.ofMillis(80)));
        emulator.answerNext("w1 w2 w3 w4 w5 w6");
        AtomicInteger inFlightAtFirstPart = new AtomicInteger(-1);
        List<Long> arrivals = new CopyOnWriteArrayList<>();

        Streamed s = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build(),
                p -> {
                    arrivals.add(System.nanoTime());
                    inFlightAtFirstPart.compareAndSet(-1, emulator.inFlight());
                });

        assertThat(s.error()).isNull();
        // When the first part arrived the emulator was still producing the others.
        assertThat(inFlightAtFirstPart.get()).isEqualTo(1);
        // Six tokens 80 ms apart cannot arrive in less than the five gaps between them, unless buffered.
        long spreadMillis = (arrivals.get(arrivals.size() - 1) - arrivals.get(0)) / 1_000_000;
        assertThat(spreadMillis).isGreaterThanOrEqualTo(300);
    }

    // ---- tool calls ----

    @Test
    void toolCallBlockingAndStreamed() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        String args = "{\"city\":\"Paris\",\"unit\":\"celsius\"}";
        emulator.answerToolCallNext("get_weather", args);

        JsonNode choice = json(sync(emulator)
                        .invokeEndpoint(invoke(chatBody("weather?", "")).build())
                        .body()
                        .asUtf8String())
                .path("choices")
                .get(0);
        assertThat(choice.path("finish_reason").asText()).isEqualTo("tool_calls");
        assertThat(choice.path("message").path("content").isNull()).isTrue();
        JsonNode call = choice.path("message").path("tool_calls").get(0);
        assertThat(call.path("type").asText()).isEqualTo("function");
        assertThat(call.path("id").asText()).startsWith("call_");
        assertThat(call.path("function").path("name").asText()).isEqualTo("get_weather");
        assertThat(call.path("function").path("arguments").asText()).isEqualTo(args);

        emulator.answerToolCallNext("get_weather", args);
        List<JsonNode> events = events(
                Container.MESSAGES_SSE,
                stream(
                                async(emulator),
                                invokeStream(chatBody("weather?", ",\"stream\":true"))
                                        .build())
                        .joined());
        List<JsonNode> fragments = new ArrayList<>();
        for (JsonNode e : events) {
            JsonNode tc = e.path("choices").get(0).path("delta").path("tool_calls");
            if (tc.isArray()) {
                fragments.add(tc.get(0));
            }
        }
        assertThat(fragments).hasSize(2);
        assertThat(fragments.get(0).path("function").path("name").asText()).isEqualTo("get_weather");
        String streamedArgs =
                fragments.get(0).path("function").path("arguments").asText()
                        + fragments.get(1).path("function").path("arguments").asText();
        assertThat(streamedArgs).isEqualTo(args);
        assertThat(fragments.get(0).path("function").path("arguments").asText()).isNotEqualTo(args);
        assertThat(events.get(events.size() - 1)
                        .path("choices")
                        .get(0)
                        .path("finish_reason")
                        .asText())
                .isEqualTo("tool_calls");
    }

    // ---- failures ----

    static Stream<Arguments> failures() {
        return Stream.of(
                Arguments.of(Failure.validation("bad input"), ValidationErrorException.class, 400, "ValidationError"),
                Arguments.of(
                        Failure.modelNotReady("warming"), ModelNotReadyException.class, 429, "ModelNotReadyException"),
                Arguments.of(
                        Failure.throttling("slow down"), SageMakerRuntimeException.class, 400, "ThrottlingException"),
                Arguments.of(Failure.internal("oops"), InternalFailureException.class, 500, "InternalFailure"),
                Arguments.of(
                        Failure.serviceUnavailable("busy"),
                        ServiceUnavailableException.class,
                        503,
                        "ServiceUnavailable"),
                Arguments.of(
                        Failure.dependency("dep down"),
                        InternalDependencyException.class,
                        530,
                        "InternalDependencyException"),
                // sent without a namespace after the code
                Arguments.of(Failure.of(424, "ModelError", "plain code"), ModelErrorException.class, 424, "ModelError"),
                Arguments.of(
                        Failure.of(409, "SomethingElse", "other"),
                        SageMakerRuntimeException.class,
                        409,
                        "SomethingElse"));
    }

    @ParameterizedTest
    @MethodSource("failures")
    void failureReachesTheSdkAsItsException(
            Failure failure, Class<? extends AwsServiceException> type, int status, String code) throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.failNext(failure);
        emulator.failNext(failure);

        Throwable blocking = null;
        try {
            sync(emulator).invokeEndpoint(invoke(chatBody("hi", "")).build());
        } catch (SdkException e) {
            blocking = e;
        }
        Streamed streamed = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());

        for (Throwable t : List.of(blocking, streamed.error())) {
            assertThat(t).isExactlyInstanceOf(type);
            AwsServiceException e = (AwsServiceException) t;
            assertThat(e.statusCode()).isEqualTo(status);
            assertThat(e.awsErrorDetails().errorCode()).isEqualTo(code);
            assertThat(e.awsErrorDetails().errorMessage()).isEqualTo(failure.message());
            assertThat(e.requestId()).isNotBlank();
        }
        assertThat(streamed.parts()).isEmpty();
        assertThat(emulator.invocations()).isEqualTo(2);
    }

    @Test
    void modelErrorCarriesTheContainersAnswer() {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.failNext(Failure.modelError(500, "{\"error\":\"CUDA out of memory\"}"));

        assertThatThrownBy(() ->
                        sync(emulator).invokeEndpoint(invoke(chatBody("hi", "")).build()))
                .isInstanceOfSatisfying(ModelErrorException.class, e -> {
                    assertThat(e.statusCode()).isEqualTo(424);
                    assertThat(e.originalStatusCode()).isEqualTo(500);
                    assertThat(e.originalMessage()).isEqualTo("{\"error\":\"CUDA out of memory\"}");
                    assertThat(e.logStreamArn())
                            .isEqualTo(
                                    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/test-endpoint");
                    assertThat(e.awsErrorDetails().errorMessage())
                            .startsWith("Received server error (500) from primary with message");
                });
    }

    @Test
    void unparseableBodiesAreModelErrorsWithOriginalStatus400() {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        SageMakerRuntimeClient client = sync(emulator);

        for (String body : List.of("not json", "{\"prompt\":\"hi\"}", generateBody("vLLM has no inputs", "", false))) {
            assertThatThrownBy(() -> client.invokeEndpoint(invoke(body).build()))
                    .isInstanceOfSatisfying(ModelErrorException.class, e -> {
                        assertThat(e.originalStatusCode()).isEqualTo(400);
                        assertThat(json(e.originalMessage()).path("error_type").asText())
                                .isEqualTo("validation");
                    });
        }
        SageMakerEmulator tgi = start(SageMakerEmulator.builder().container(Container.TGI));
        assertThat(sync(tgi)
                        .invokeEndpoint(invoke(generateBody("TGI takes inputs", "", false))
                                .build())
                        .body()
                        .asUtf8String())
                .contains("generated_text");
    }

    @Test
    void blockingAcceptMustAllowJson() {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        SageMakerRuntimeClient client = sync(emulator);

        assertThatThrownBy(() -> client.invokeEndpoint(
                        invoke(chatBody("hi", "")).accept("text/csv").build()))
                .isInstanceOfSatisfying(
                        ModelErrorException.class,
                        e -> assertThat(e.originalStatusCode()).isEqualTo(406));
        assertThat(client.invokeEndpoint(invoke(chatBody("hi", ""))
                                .accept("application/json")
                                .build())
                        .contentType())
                .isEqualTo("application/json");
        assertThat(emulator.requests().get(1).header("accept")).isEqualTo("application/json");
    }

    @Test
    void modelStreamErrorReachesOnErrorAfterTheParts() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.streamErrorNextAfter(3, "ModelStreamError", "ModelInvocationTimeExceeded", "took too long");

        Streamed s = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());

        assertThat(s.parts()).hasSize(3);
        ModelStreamErrorException e = causeOfType(s.error(), ModelStreamErrorException.class);
        assertThat(e.errorCode()).isEqualTo("ModelInvocationTimeExceeded");
        assertThat(e.getMessage()).contains("took too long");
    }

    @Test
    void internalStreamFailureReachesOnError() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().partSize(5));
        emulator.streamErrorNextAfter(2, "InternalStreamFailure", null, "try again");

        Streamed s = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());

        assertThat(s.parts()).hasSize(2);
        assertThat(causeOfType(s.error(), InternalStreamFailureException.class).getMessage())
                .contains("try again");
    }

    @Test
    void corruptFrameFailsTheStream() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.corruptNextAfter(2);

        Streamed s = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());

        assertThat(s.error()).isNotNull();
        assertThat(s.completed()).isFalse();
        assertThat(s.parts()).hasSize(2);
    }

    @Test
    void cutConnectionsFailBothRoutes() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.cutNextAfter(2);

        Streamed s = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());

        assertThat(s.parts()).hasSize(2);
        assertThat(s.completed()).isFalse();
        assertThat(s.error()).isInstanceOf(SdkClientException.class);

        emulator.cutNextAfter(0);
        assertThatThrownBy(() ->
                        sync(emulator).invokeEndpoint(invoke(chatBody("hi", "")).build()))
                .isInstanceOf(SdkClientException.class);
        // The emulator serves again afterwards.
        assertThat(sync(emulator)
                        .invokeEndpoint(invoke(chatBody("hi", "")).build())
                        .body()
                        .asUtf8String())
                .contains("chat.completion");
        assertThat(emulator.disconnects()).isZero();
    }

    @Test
    void truncatedStreamLooksCompleteToTheSdk() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.answerNext("never finished");
        emulator.truncateNextAfter(2);

        Streamed whole = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());
        Streamed truncated = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).build());

        assertThat(whole.joined()).endsWith("data: [DONE]\n\n");
        // An orderly close without the last chunk: the SDK calls it complete, and only the content shows the loss.
        assertThat(truncated.error()).isNull();
        assertThat(truncated.completed()).isTrue();
        assertThat(truncated.parts()).hasSize(2);
        assertThat(truncated.joined()).doesNotContain("[DONE]").doesNotContain("finish_reason\":\"");

        emulator.truncateNextAfter(0);
        assertThatThrownBy(() ->
                        sync(emulator).invokeEndpoint(invoke(chatBody("hi", "")).build()))
                .isInstanceOf(SdkClientException.class);
    }

    @Test
    void streamingLoopCountsAClientThatGoesAway() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().tokenLatency(Duration.ofMillis(20)));
        AtomicReference<CompletableFuture<Void>> call = new AtomicReference<>();
        CompletableFuture<Void> firstPart = new CompletableFuture<>();
        call.set(async(emulator)
                .invokeEndpointWithResponseStream(
                        invokeStream(chatBody("hi", ",\"stream\":true,\"max_tokens\":400"))
                                .build(),
                        InvokeEndpointWithResponseStreamResponseHandler.builder()
                                .subscriber(InvokeEndpointWithResponseStreamResponseHandler.Visitor.builder()
                                        .onPayloadPart(p -> firstPart.complete(null))
                                        .build())
                                .build()));
        firstPart.get(10, TimeUnit.SECONDS);
        assertThat(emulator.inFlight()).isEqualTo(1);

        call.get().cancel(true);

        await(() -> emulator.disconnects() == 1 && emulator.inFlight() == 0, "the stream notices the client left");
        assertThat(emulator.stallsStarted()).isZero();
    }

    // ---- endpoint, variant, inference components, SigV4 ----

    @Test
    void unknownEndpointVariantAndComponentAreValidationErrors() {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().endpointName("mine"));
        SageMakerRuntimeClient client = sync(emulator);
        String body = chatBody("hi", "");

        assertThatThrownBy(() ->
                        client.invokeEndpoint(invoke(body).endpointName("other").build()))
                .isInstanceOfSatisfying(
                        ValidationErrorException.class,
                        e -> assertThat(e.awsErrorDetails().errorMessage())
                                .isEqualTo("Endpoint other of account 123456789012 not found."));
        assertThatThrownBy(() -> client.invokeEndpoint(invoke(body)
                        .endpointName("mine")
                        .targetVariant("Canary")
                        .build()))
                .isInstanceOf(ValidationErrorException.class);
        assertThat(client.invokeEndpoint(invoke(body)
                                .endpointName("mine")
                                .targetVariant("AllTraffic")
                                .build())
                        .invokedProductionVariant())
                .isEqualTo("AllTraffic");
        assertThatThrownBy(() -> client.invokeEndpoint(invoke(body)
                        .endpointName("mine")
                        .inferenceComponentName("ic")
                        .build()))
                .isInstanceOf(ValidationErrorException.class);

        SageMakerEmulator components = start(SageMakerEmulator.builder().inferenceComponents("ic-a", "ic-b"));
        SageMakerRuntimeClient c2 = sync(components);
        assertThatThrownBy(() -> c2.invokeEndpoint(invoke(body).build()))
                .isInstanceOfSatisfying(
                        ValidationErrorException.class,
                        e -> assertThat(e.awsErrorDetails().errorMessage())
                                .contains("Inference Component Name header is required"));
        assertThatThrownBy(() -> c2.invokeEndpoint(
                        invoke(body).inferenceComponentName("ic-z").build()))
                .isInstanceOf(ValidationErrorException.class);
        assertThat(c2.invokeEndpoint(invoke(body).inferenceComponentName("ic-b").build())
                        .body()
                        .asUtf8String())
                .contains("chat.completion");
        assertThat(components.requests().get(2).header("X-Amzn-SageMaker-Inference-Component"))
                .isEqualTo("ic-b");
        assertThat(emulator.invocations()).isEqualTo(4);
    }

    @Test
    void sigV4IsRequiredButNotVerified() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        URI base = emulator.endpoint();

        assertThat(rawPost(base, "/endpoints/test-endpoint/invocations", null))
                .startsWith("403 MissingAuthenticationTokenException rid ")
                .contains("Missing Authentication Token");
        assertThat(rawPost(
                        base,
                        "/endpoints/test-endpoint/invocations",
                        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, "
                                + "Signature=" + "0".repeat(64)))
                .startsWith("403 InvalidSignatureException rid ");
        // A well-formed header with a signature nobody computed passes: signatures are not checked.
        assertThat(rawPost(
                        base,
                        "/endpoints/test-endpoint/invocations",
                        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sagemaker/aws4_request, "
                                + "SignedHeaders=host;x-amz-date, Signature=" + "ab".repeat(32)))
                .startsWith("200 - rid ");
        // and the SDK's signed call passes
        assertThat(sync(emulator)
                        .invokeEndpoint(invoke(chatBody("hi", "")).build())
                        .body()
                        .asUtf8String())
                .contains("chat.completion");

        SageMakerEmulator open = start(SageMakerEmulator.builder().requireSigV4(false));
        assertThat(rawPost(open.endpoint(), "/endpoints/test-endpoint/invocations", null))
                .startsWith("200 - rid ");
    }

    @Test
    void unknownRouteIsUnknownOperation() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());

        assertThat(rawPost(emulator.endpoint(), "/endpoints/test-endpoint/ping", null))
                .startsWith("404 UnknownOperationException rid ");
        assertThat(emulator.invocations()).isZero();
        assertThat(emulator.requests()).hasSize(1);
    }

    // ---- cold starts and concurrency ----

    @Test
    void coldStartNotReadyUntilTheDelayHasPassed() throws Exception {
        SageMakerEmulator emulator = start(
                SageMakerEmulator.builder().startCold(true).coldStart(Duration.ofMillis(300), ColdStartMode.NOT_READY));
        SageMakerRuntimeClient client = sync(emulator);
        String body = chatBody("hi", "");

        assertThatThrownBy(() -> client.invokeEndpoint(invoke(body).build()))
                .isInstanceOfSatisfying(
                        ModelNotReadyException.class,
                        e -> assertThat(e.statusCode()).isEqualTo(429));
        assertThat(emulator.coldStarts()).isEqualTo(1);
        AtomicLong refusals = new AtomicLong(1);
        await(
                () -> {
                    try {
                        client.invokeEndpoint(invoke(body).build());
                        return true;
                    } catch (ModelNotReadyException e) {
                        refusals.incrementAndGet();
                        return false;
                    }
                },
                "the model is ready");
        assertThat(emulator.coldStarts()).isEqualTo(1);
        client.invokeEndpoint(invoke(body).build());

        emulator.scaleToZero();
        assertThatThrownBy(() -> client.invokeEndpoint(invoke(body).build()))
                .isInstanceOf(ModelNotReadyException.class);
        assertThat(emulator.coldStarts()).isEqualTo(2);
        assertThat(emulator.invocations()).isEqualTo(refusals.get() + 3);
    }

    @Test
    void coldStartHoldHoldsTheCallsThenServesThem() throws Exception {
        SageMakerEmulator emulator = start(
                SageMakerEmulator.builder().startCold(true).coldStart(Duration.ofMillis(300), ColdStartMode.HOLD));
        SageMakerRuntimeAsyncClient client = async(emulator);
        String body = chatBody("hi", "");

        long t0 = System.nanoTime();
        CompletableFuture<InvokeEndpointResponse> first =
                client.invokeEndpoint(invoke(body).build());
        CompletableFuture<InvokeEndpointResponse> second =
                client.invokeEndpoint(invoke(body).build());
        first.get(10, TimeUnit.SECONDS);
        second.get(10, TimeUnit.SECONDS);
        long elapsedMillis = (System.nanoTime() - t0) / 1_000_000;

        assertThat(elapsedMillis).isGreaterThanOrEqualTo(250);
        assertThat(emulator.coldStarts()).isEqualTo(1);
        client.invokeEndpoint(invoke(body).build()).get(10, TimeUnit.SECONDS);
        assertThat(emulator.coldStarts()).isEqualTo(1);
    }

    @Test
    void idleTimeoutScalesToZero() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().idleTimeout(Duration.ofMillis(200)));
        SageMakerRuntimeClient client = sync(emulator);

        client.invokeEndpoint(invoke(chatBody("hi", "")).build());
        // Building the client may itself take longer than the idle timeout on a loaded machine, so the first
        // call may or may not find the endpoint cold; what is specified is that idleness after it does.
        long before = emulator.coldStarts();
        Thread.sleep(400);
        client.invokeEndpoint(invoke(chatBody("hi", "")).build());
        assertThat(emulator.coldStarts()).isEqualTo(before + 1);
    }

    @Test
    void concurrencyLimitQueues() throws Exception {
        SageMakerEmulator emulator =
                start(SageMakerEmulator.builder().maxConcurrency(1, true).tokenLatency(Duration.ofMillis(20)));
        SageMakerRuntimeAsyncClient client = async(emulator);

        List<CompletableFuture<InvokeEndpointResponse>> calls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            calls.add(client.invokeEndpoint(
                    invoke(chatBody("call " + i, ",\"max_tokens\":4")).build()));
        }
        for (CompletableFuture<InvokeEndpointResponse> call : calls) {
            assertThat(call.get(10, TimeUnit.SECONDS).body().asUtf8String()).contains("chat.completion");
        }
        assertThat(emulator.maxInFlightSeen()).isEqualTo(1);
        assertThat(emulator.invocations()).isEqualTo(3);
    }

    @Test
    void concurrencyLimitRejectsWithThrottling() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().maxConcurrency(1, false));
        emulator.stallNext();
        SageMakerRuntimeAsyncClient client = async(emulator);
        CompletableFuture<InvokeEndpointResponse> stalled =
                client.invokeEndpoint(invoke(chatBody("hi", "")).build());
        await(() -> emulator.stalledNow() == 1, "the first call stalls");

        assertThatThrownBy(() ->
                        sync(emulator).invokeEndpoint(invoke(chatBody("hi", "")).build()))
                .isInstanceOfSatisfying(SageMakerRuntimeException.class, e -> {
                    assertThat(e.statusCode()).isEqualTo(400);
                    assertThat(e.awsErrorDetails().errorCode()).isEqualTo("ThrottlingException");
                    assertThat(e.awsErrorDetails().errorMessage()).isNull();
                });
        assertThat(emulator.maxInFlightSeen()).isEqualTo(1);
        stalled.cancel(true);
    }

    // ---- sessions ----

    @Test
    void sessionsOpenReuseRefuseAndClose() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().sessions(true, Duration.ofMinutes(5)));
        SageMakerRuntimeClient client = sync(emulator);
        String body = chatBody("hi", "");

        InvokeEndpointResponse opened =
                client.invokeEndpoint(invoke(body).sessionId("NEW_SESSION").build());
        assertThat(opened.newSessionId()).matches("[0-9a-f-]{36}; Expires=\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z");
        String id = opened.newSessionId().substring(0, opened.newSessionId().indexOf(';'));
        assertThat(emulator.sessions()).containsExactly(id);

        InvokeEndpointResponse reused =
                client.invokeEndpoint(invoke(body).sessionId(id).build());
        assertThat(reused.newSessionId()).isNull();
        assertThat(reused.closedSessionId()).isNull();
        assertThat(emulator.requests().get(1).header("x-amzn-sagemaker-session-id"))
                .isEqualTo(id);

        Streamed inSession = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true")).sessionId(id).build());
        assertThat(inSession.error()).isNull();

        Streamed refused = stream(
                async(emulator),
                invokeStream(chatBody("hi", ",\"stream\":true"))
                        .sessionId("NEW_SESSION")
                        .build());
        assertThat(refused.error()).isInstanceOf(ValidationErrorException.class);

        assertThatThrownBy(() -> client.invokeEndpoint(
                        invoke(body).sessionId("no-such-session").build()))
                .isInstanceOfSatisfying(
                        ValidationErrorException.class,
                        e -> assertThat(e.awsErrorDetails().errorMessage()).contains("no-such-session"));

        emulator.closeSession(id);
        InvokeEndpointResponse closing =
                client.invokeEndpoint(invoke(body).sessionId(id).build());
        assertThat(closing.closedSessionId()).isEqualTo(id);
        assertThat(emulator.sessions()).isEmpty();
        assertThatThrownBy(
                        () -> client.invokeEndpoint(invoke(body).sessionId(id).build()))
                .isInstanceOf(ValidationErrorException.class);
    }

    @Test
    void sessionsExpire() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().sessions(true, Duration.ofMillis(200)));
        SageMakerRuntimeClient client = sync(emulator);
        String body = chatBody("hi", "");
        String header = client.invokeEndpoint(
                        invoke(body).sessionId("NEW_SESSION").build())
                .newSessionId();
        String id = header.substring(0, header.indexOf(';'));

        Thread.sleep(400);

        assertThatThrownBy(
                        () -> client.invokeEndpoint(invoke(body).sessionId(id).build()))
                .isInstanceOf(ValidationErrorException.class)
                .hasMessageContaining(id);
    }

    // ---- stalls and disconnects ----

    @Test
    void blockingStallSendsNoHeadersAndCountsTheDisconnect() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.stallNext();
        SageMakerRuntimeClient client = sync(emulator, o -> o.apiCallTimeout(Duration.ofMillis(500)));

        assertThatThrownBy(
                        () -> client.invokeEndpoint(invoke(chatBody("hi", "")).build()))
                .isInstanceOf(ApiCallTimeoutException.class);

        await(() -> emulator.disconnects() == 1 && emulator.stalledNow() == 0, "the stall sees the client go");
        assertThat(emulator.stallsStarted()).isEqualTo(1);
        // the next call is served normally
        assertThat(client.invokeEndpoint(invoke(chatBody("hi", "")).build())
                        .body()
                        .asUtf8String())
                .contains("chat.completion");
    }

    @Test
    void streamingStallSendsTheHeadersAndCountsTheDisconnectWhenCancelled() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.stallNext();
        AtomicReference<InvokeEndpointWithResponseStreamResponse> response = new AtomicReference<>();
        List<String> parts = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> call = async(emulator)
                .invokeEndpointWithResponseStream(
                        invokeStream(chatBody("hi", ",\"stream\":true")).build(),
                        InvokeEndpointWithResponseStreamResponseHandler.builder()
                                .onResponse(response::set)
                                .subscriber(InvokeEndpointWithResponseStreamResponseHandler.Visitor.builder()
                                        .onPayloadPart(p -> parts.add(p.bytes().asUtf8String()))
                                        .build())
                                .build());

        await(() -> response.get() != null, "the stalled stream's headers arrive");
        assertThat(response.get().contentType()).isEqualTo("text/event-stream");
        assertThatThrownBy(() -> call.get(300, TimeUnit.MILLISECONDS)).isInstanceOf(TimeoutException.class);
        assertThat(emulator.stalledNow()).isEqualTo(1);

        call.cancel(true);

        await(() -> emulator.disconnects() == 1 && emulator.stalledNow() == 0, "the stall sees the client go");
        assertThat(emulator.stallsStarted()).isEqualTo(1);
        assertThat(parts).isEmpty();
    }

    @Test
    void closingTheEmulatorEndsAStallWithoutCountingADisconnect() throws Exception {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder());
        emulator.stallNext();
        CompletableFuture<InvokeEndpointResponse> call =
                async(emulator).invokeEndpoint(invoke(chatBody("hi", "")).build());
        await(() -> emulator.stalledNow() == 1, "the call stalls");

        emulator.close();

        assertThatThrownBy(() -> call.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class);
        assertThat(emulator.disconnects()).isZero();
        assertThat(emulator.stalledNow()).isZero();
    }

    // ---- generated text ----

    @Test
    void generatedTextIsDeterministicAndAsLongAsAsked() {
        SageMakerEmulator emulator = start(SageMakerEmulator.builder().seed(42));
        SageMakerRuntimeClient client = sync(emulator);

        JsonNode a = json(client.invokeEndpoint(invoke(chatBody("tell me a story", ",\"max_tokens\":12,\"seed\":7"))
                        .build())
                .body()
                .asUtf8String());
        String textA = a.path("choices").get(0).path("message").path("content").asText();
        String textA2 = content(client, chatBody("tell me a story", ",\"max_tokens\":12,\"seed\":7"));
        String otherPrompt = content(client, chatBody("tell me a poem", ",\"max_tokens\":12,\"seed\":7"));
        String otherSeed = content(client, chatBody("tell me a story", ",\"max_tokens\":12,\"seed\":8"));
        String defaultLength = content(client, chatBody("tell me a story", ""));

        assertThat(textA2).isEqualTo(textA);
        assertThat(otherPrompt).isNotEqualTo(textA);
        assertThat(otherSeed).isNotEqualTo(textA);
        assertThat(textA.split(" "))
                .hasSize(12)
                .allSatisfy(w -> assertThat(GeneratedText.WORDS).contains(w));
        assertThat(defaultLength.split(" ")).hasSize(16);
        JsonNode choice = a.path("choices").get(0);
        assertThat(choice.path("finish_reason").asText()).isEqualTo("length");
        assertThat(a.path("usage").path("prompt_tokens").asInt()).isEqualTo(6);
        assertThat(a.path("usage").path("completion_tokens").asInt()).isEqualTo(12);

        SageMakerEmulator otherEmulator = start(SageMakerEmulator.builder().seed(43));
        assertThat(content(sync(otherEmulator), chatBody("tell me a story", ",\"max_tokens\":12,\"seed\":7")))
                .isNotEqualTo(textA);

        // The generate API of TGI uses parameters.max_new_tokens and reports length.
        SageMakerEmulator tgi =
                start(SageMakerEmulator.builder().container(Container.TGI).seed(42));
        JsonNode g = json(sync(tgi)
                        .invokeEndpoint(invoke(generateBody("x y", "\"max_new_tokens\":5,\"details\":true", false))
                                .build())
                        .body()
                        .asUtf8String())
                .get(0);
        assertThat(g.path("generated_text").asText().split(" ")).hasSize(5);
        assertThat(g.path("details").path("finish_reason").asText()).isEqualTo("length");
    }

    private static String content(SageMakerRuntimeClient client, String body) {
        return json(client.invokeEndpoint(invoke(body).build()).body().asUtf8String())
                .path("choices")
                .get(0)
                .path("message")
                .path("content")
                .asText();
    }
}
