package dev.hybridinference.sagemaker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ColdStartTimeoutException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator.Container;
import dev.hybridinference.testkit.sagemaker.SageMakerEmulator.Failure;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The provider end to end against the SageMaker Runtime emulator: each payload format blocking and streamed
 * (parts cut mid-line), SageMaker's errors, cold starts through the core's retries, sessions, and bills
 * checked by hand.
 */
@Timeout(60)
class SageMakerClientTest {
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) {
            closeables.get(i).close();
        }
    }

    private SageMakerEmulator emulator(Consumer<SageMakerEmulator.Builder> setup) {
        SageMakerEmulator.Builder b = SageMakerEmulator.builder().endpointName("e1");
        setup.accept(b);
        SageMakerEmulator e = b.start();
        closeables.add(e);
        return e;
    }

    private SageMakerClient.Builder client(SageMakerEmulator e) {
        return SageMakerClient.builder()
                .id("sm")
                .endpointName("e1")
                .region("us-east-1")
                .endpointOverride(e.endpoint())
                .staticCredentials("AKIDEXAMPLE", "test-secret-access-key", null);
    }

    private <T extends AutoCloseable> T closing(T c) {
        closeables.add(c);
        return c;
    }

    private InferenceClient fromConfig(String yaml) {
        return closing(InferenceClients.fromConfig(yaml));
    }

    private static String text(ChatStream s) {
        StringBuilder b = new StringBuilder();
        for (ChatChunk c : s) {
            b.append(c.text());
        }
        return b.toString();
    }

    @Test
    void aBlockingCallIsSignedAndCarriesTheConfiguredHeadersAndTheReceiptSaysWhereItRan() {
        SageMakerEmulator e = emulator(
                b -> b.container(Container.MESSAGES_SSE).variant("blue").inferenceComponents("ic-1"));
        SageMakerClient c = closing(client(e)
                .inferenceComponent("ic-1")
                .targetVariant("blue")
                .customAttributes("trace=abc")
                .model("served-model")
                .build());
        e.answerNext("Hello from the container");
        ChatResponse r = c.chat(ChatRequest.builder().user("hi").maxTokens(8).build());

        assertThat(r.text()).isEqualTo("Hello from the container");
        assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
        Receipt receipt = r.receipt();
        assertThat(receipt.deploymentKind()).isEqualTo(DeploymentKind.SERVER);
        assertThat(receipt.attributes())
                .containsEntry("variant", "blue")
                .containsEntry("region", "us-east-1")
                .containsEntry("endpoint", "e1")
                .containsEntry("inferenceComponent", "ic-1")
                .containsEntry("deployment", "real-time");
        assertThat(receipt.usage().estimated()).isFalse();
        assertThat(receipt.requestBytes()).isPositive();
        assertThat(receipt.responseBytes()).isPositive();

        SageMakerEmulator.RecordedRequest req = e.requests().get(e.requests().size() - 1);
        assertThat(req.path()).isEqualTo("/endpoints/e1/invocations");
        assertThat(req.header("authorization"))
                .startsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                .contains("/us-east-1/sagemaker/aws4_request")
                .contains("SignedHeaders=")
                .contains("Signature=");
        assertThat(req.header("x-amz-date")).isNotBlank();
        assertThat(req.header("x-amzn-sagemaker-inference-component")).isEqualTo("ic-1");
        assertThat(req.header("x-amzn-sagemaker-target-variant")).isEqualTo("blue");
        assertThat(req.header("x-amzn-sagemaker-custom-attributes")).isEqualTo("trace=abc");
        assertThat(req.header("content-type")).isEqualTo("application/json");
        assertThat(req.bodyUtf8()).contains("\"model\":\"served-model\"").contains("\"content\":\"hi\"");
        assertThat(req.header("amz-sdk-request"))
                .as("the SDK's own retries are off")
                .contains("max=1");
    }

    @Test
    void everyResultSaysWhereItRanBesideWhatItsCodecAdds() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE).variant("green"));
        PayloadCodec messages = PayloadCodec.messages();
        PayloadCodec tagging = new PayloadCodec() {
            @Override
            public byte[] encode(ChatRequest request, String model, boolean stream) {
                return messages.encode(request, model, stream);
            }

            @Override
            public ProviderResult decode(byte[] body, Context context) {
                return messages.decode(body, context).toBuilder()
                        .attribute("container", "tagged")
                        .attribute("region", "from-codec")
                        .build();
            }

            @Override
            public StreamDecoder streamDecoder(Context context) {
                return messages.streamDecoder(context);
            }
        };
        SageMakerClient plain = closing(client(e).build());
        SageMakerClient tagged = closing(client(e).payloadCodec(tagging).build());
        ChatRequest req = ChatRequest.builder().user("hi").maxTokens(4).build();

        for (int i = 0; i < 2; i++) {
            assertThat(plain.chat(req).receipt().attributes())
                    .as("blocking call " + i)
                    .containsExactlyInAnyOrderEntriesOf(java.util.Map.of(
                            "endpoint", "e1", "region", "us-east-1", "deployment", "real-time", "variant", "green"));
            try (ChatStream s = plain.stream(req)) {
                text(s);
                assertThat(s.response().receipt().attributes())
                        .as("stream " + i)
                        .containsExactlyInAnyOrderEntriesOf(java.util.Map.of(
                                "endpoint", "e1",
                                "region", "us-east-1",
                                "deployment", "real-time",
                                "variant", "green"));
            }
        }
        assertThat(tagged.chat(req).receipt().attributes())
                .as("the codec's attributes, the client's taking precedence")
                .containsExactlyInAnyOrderEntriesOf(java.util.Map.of(
                        "container", "tagged",
                        "endpoint", "e1",
                        "region", "us-east-1",
                        "deployment", "real-time",
                        "variant", "green"));
    }

    @Test
    void everyPayloadFormatStreamsPartsCutMidLineAndAnswersBlockingTheSame() {
        record Case(Container container, PayloadCodec codec, boolean usageReported) {}
        List<Case> cases = List.of(
                new Case(Container.MESSAGES_SSE, PayloadCodec.messages(), true),
                new Case(Container.MESSAGES_JSONLINES, PayloadCodec.messages(), false),
                new Case(Container.TGI, PayloadCodec.tgi(PromptTemplate.CHATML), false),
                new Case(Container.LMI_JSONLINES, PayloadCodec.lmi(PromptTemplate.LLAMA3), false));
        for (Case k : cases) {
            SageMakerEmulator e =
                    emulator(b -> b.container(k.container()).partSize(7).seed(11));
            SageMakerClient c = closing(client(e).payloadCodec(k.codec()).build());
            ChatRequest req = ChatRequest.builder()
                    .user("tell me about tides")
                    .maxTokens(12)
                    .build();
            ChatResponse blocking = c.chat(req);
            assertThat(blocking.text()).as(k.container() + " blocking").isNotBlank();
            assertThat(blocking.usage().outputTokens())
                    .as(k.container() + " output tokens")
                    .isEqualTo(12);
            try (ChatStream s = c.stream(req)) {
                String streamed = text(s);
                assertThat(streamed).as(k.container() + " streamed").isEqualTo(blocking.text());
                ChatResponse end = s.response();
                assertThat(end.usage().outputTokens())
                        .as(k.container() + " streamed tokens")
                        .isEqualTo(12);
                assertThat(end.usage().estimated())
                        .as(k.container() + " usage estimated")
                        .isEqualTo(!k.usageReported());
                assertThat(end.finishReason()).isEqualTo(FinishReason.LENGTH);
                assertThat(end.receipt().responseBytes()).isPositive();
            }
            SageMakerEmulator.RecordedRequest last =
                    e.requests().get(e.requests().size() - 1);
            assertThat(last.path()).isEqualTo("/endpoints/e1/invocations-response-stream");
        }
    }

    @Test
    void aModelStreamErrorMidStreamGivesTheChunksThenUnavailableWithAPartialReceipt() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        CostLedger ledger = new CostLedger();
        SageMakerClient c = closing(client(e).ledger(ledger).build());
        e.streamErrorNextAfter(3, "ModelStreamError", "ModelInvocationTimeExceeded", "the model took too long");
        List<String> got = new ArrayList<>();
        ChatStream s = c.stream(ChatRequest.builder().user("go").maxTokens(10).build());
        assertThatThrownBy(() -> {
                    for (ChatChunk ch : s) {
                        got.add(ch.text());
                    }
                })
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("ModelInvocationTimeExceeded")
                .satisfies(t -> {
                    Receipt partial = ((InferenceException) t).partialReceipt().orElseThrow();
                    assertThat(partial.usage().outputTokens()).isPositive();
                    assertThat(partial.attempts()
                                    .get(partial.attempts().size() - 1)
                                    .outcome())
                            .isEqualTo(Attempt.Outcome.FAILED);
                });
        assertThat(got)
                .as("what the three parts before the error carried")
                .isNotEmpty()
                .hasSizeLessThanOrEqualTo(3);
        assertThat(ledger.totals().calls()).isEqualTo(1);
    }

    @Test
    void aCorruptedFrameFailsTheStreamWithAClearError() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        SageMakerClient c = closing(client(e).build());
        e.corruptNextAfter(2);
        try (ChatStream s = c.stream(ChatRequest.of("go"))) {
            assertThatThrownBy(() -> text(s))
                    .isInstanceOf(MalformedResponseException.class)
                    .hasMessageContaining("corrupt");
        }
    }

    @Test
    void aStreamClosedQuietlyBeforeTheContainersEndFailsRatherThanEndingShort() {
        for (Container container : List.of(Container.MESSAGES_SSE, Container.LMI_JSONLINES)) {
            SageMakerEmulator e = emulator(b -> b.container(container));
            PayloadCodec codec = container == Container.MESSAGES_SSE
                    ? PayloadCodec.messages()
                    : PayloadCodec.lmi(PromptTemplate.CHATML);
            SageMakerClient c = closing(client(e).payloadCodec(codec).build());
            e.truncateNextAfter(3);
            try (ChatStream s =
                    c.stream(ChatRequest.builder().user("go").maxTokens(10).build())) {
                assertThatThrownBy(() -> text(s))
                        .as(container.toString())
                        .isInstanceOf(ProviderUnavailableException.class)
                        .hasMessageContaining("before the container finished");
            }
        }
    }

    @Test
    void aRequestHeldWhileTheEndpointStartsIsSeenAsAColdStartByItsLatency() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE)
                .coldStart(Duration.ofMillis(1500), SageMakerEmulator.ColdStartMode.HOLD));
        SageMakerClient c = closing(client(e)
                .deployment(SageMakerClient.Deployment.SERVERLESS)
                .coldStartThreshold(Duration.ofMillis(700))
                .build());
        for (int i = 0; i < 3; i++) {
            assertThat(c.chat(ChatRequest.of("warm " + i)).receipt().coldStart().observed())
                    .isFalse();
        }
        e.scaleToZero();
        Receipt cold = c.chat(ChatRequest.of("after scale-in")).receipt();
        assertThat(cold.coldStart().observed()).isTrue();
        assertThat(cold.coldStart().duration().orElseThrow()).isGreaterThan(Duration.ofMillis(700));
        assertThat(cold.attempts()).as("held, not refused: one attempt").hasSize(1);
    }

    @Test
    void throttlingThenSuccessIsRetriedByTheCoresRetryLayer() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        InferenceClient c =
                fromConfig(config(e, "", "retry: {maxAttempts: 3, initialBackoff: 10ms, maxBackoff: 50ms}\n"));
        e.failNext(Failure.throttling("Rate exceeded"));
        e.answerNext("after the throttle");
        ChatResponse r = c.chat(ChatRequest.of("hi"));
        assertThat(r.text()).isEqualTo("after the throttle");
        assertThat(r.receipt().attempts()).hasSize(2);
        assertThat(r.receipt().attempts().get(0).error()).contains("RateLimitedException");
        assertThat(e.invocations()).isEqualTo(2);
    }

    @Test
    void aValidationErrorIsNotRetried() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        InferenceClient c = fromConfig(config(e, "", "retry: {maxAttempts: 4, initialBackoff: 10ms}\n"));
        e.failNext(Failure.validation("1 validation error detected"));
        assertThatThrownBy(() -> c.chat(ChatRequest.of("hi")))
                .isInstanceOf(InvalidRequestException.class)
                .hasMessageContaining("validation error");
        assertThat(e.invocations()).isEqualTo(1);
    }

    @Test
    void aServerlessEndpointThatIsNotReadyIsRetriedWithinTheDeadlineAndTheColdStartRecorded() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE)
                .coldStart(Duration.ofMillis(600), SageMakerEmulator.ColdStartMode.NOT_READY)
                .startCold(true));
        InferenceClient c = fromConfig(config(
                e,
                "    deployment: serverless\n",
                "retry: {maxAttempts: 20, initialBackoff: 50ms, maxBackoff: 200ms, maxTotalWait: 10s}\n"));
        assertThat(c.info().members().get(0).coldStart().canColdStart()).isTrue();
        ChatResponse r = c.chat(ChatRequest.builder()
                .user("wake up")
                .options(
                        RequestOptions.builder().timeout(Duration.ofSeconds(20)).build())
                .build());
        Receipt receipt = r.receipt();
        assertThat(receipt.attempts().size()).isGreaterThan(1);
        assertThat(receipt.attempts().get(0).error()).contains(ColdStartTimeoutException.class.getSimpleName());
        assertThat(receipt.coldStart().observed()).isTrue();
        assertThat(receipt.coldStart().duration().orElseThrow()).isGreaterThanOrEqualTo(Duration.ofMillis(500));
        assertThat(e.coldStarts()).isEqualTo(1);
        // Warm now: the next call meets no cold start.
        assertThat(c.chat(ChatRequest.of("again")).receipt().coldStart().observed())
                .isFalse();
    }

    @Test
    void sessionsOpenOnABlockingCallPinLaterCallsAndEndWhenThePlatformClosesThem() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE).sessions(true, Duration.ofMinutes(20)));
        SageMakerClient c = closing(client(e).statefulSessions(true, 100).build());
        ChatRequest inSession = ChatRequest.builder()
                .user("remember me")
                .options(RequestOptions.builder().sessionId("user-42").build())
                .build();
        c.chat(inSession);
        assertThat(lastHeader(e, "x-amzn-sagemaker-session-id")).isEqualTo("NEW_SESSION");
        String platformId = e.sessions().iterator().next();

        c.chat(inSession);
        assertThat(lastHeader(e, "x-amzn-sagemaker-session-id")).isEqualTo(platformId);
        try (ChatStream s = c.stream(inSession)) {
            text(s);
        }
        assertThat(lastHeader(e, "x-amzn-sagemaker-session-id"))
                .as("a stream joins the session")
                .isEqualTo(platformId);

        e.closeSession(platformId);
        c.chat(inSession); // told the session closed
        c.chat(inSession);
        assertThat(lastHeader(e, "x-amzn-sagemaker-session-id")).isEqualTo("NEW_SESSION");

        // Without a session of its own, a stream sends none (SageMaker refuses NEW_SESSION on streams).
        try (ChatStream s = c.stream(ChatRequest.builder()
                .user("new")
                .options(RequestOptions.builder().sessionId("user-43").build())
                .build())) {
            text(s);
        }
        assertThat(lastHeader(e, "x-amzn-sagemaker-session-id")).isNull();
    }

    private static String lastHeader(SageMakerEmulator e, String name) {
        List<SageMakerEmulator.RecordedRequest> all = e.requests();
        return all.get(all.size() - 1).header(name);
    }

    @Test
    void aServerlessCallIsBilledPerGbSecondOfMemoryPlusTheDataProcessed() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        InferenceClient c = fromConfig(config(
                e,
                "    deployment: serverless\n"
                        + "    pricing: {type: per-gb-second, perGbSecond: 0.0000200, memoryGb: 6, perGbProcessed: 0.016}\n",
                ""));
        Receipt r = c.chat(ChatRequest.of("bill me")).receipt();
        // Hand-computed: milliseconds rounded up, times 6 GB at $0.00002 per GB-second, plus bytes in and out
        // at $0.016 per GB (2^30 bytes).
        long ms = (r.computeTime().toNanos() + 999_999) / 1_000_000;
        BigDecimal compute = BigDecimal.valueOf(ms)
                .multiply(new BigDecimal("0.001"))
                .multiply(new BigDecimal("6"))
                .multiply(new BigDecimal("0.0000200"));
        BigDecimal data = BigDecimal.valueOf(r.requestBytes() + r.responseBytes())
                .multiply(new BigDecimal("0.016"))
                .divide(BigDecimal.valueOf(1L << 30), 20, RoundingMode.HALF_UP);
        assertThat(r.requestBytes()).isPositive();
        assertThat(r.cost().setScale(12, RoundingMode.HALF_UP))
                .isEqualByComparingTo(compute.add(data).setScale(12, RoundingMode.HALF_UP));
        assertThat(r.deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
    }

    @Test
    void aRealTimeCallIsBilledItsShareOfTheEndpointsInstanceHours() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        InferenceClient c =
                fromConfig(config(e, "    pricing: {type: per-instance-hour, perHour: 1.41, instances: 2}\n", ""));
        assertThat(c.info().pricing()).isEqualTo(new Pricing.PerInstanceHour(new BigDecimal("1.41"), 2));
        Receipt r = c.chat(ChatRequest.of("bill me")).receipt();
        // One call alone on an endpoint of two instances occupies both for its duration.
        BigDecimal seconds = BigDecimal.valueOf(r.instanceTime().toNanos()).movePointLeft(9);
        BigDecimal expected =
                seconds.multiply(new BigDecimal("1.41")).divide(BigDecimal.valueOf(3600), 20, RoundingMode.HALF_UP);
        assertThat(r.instanceTime()).isPositive();
        assertThat(r.cost().setScale(12, RoundingMode.HALF_UP))
                .isEqualByComparingTo(expected.setScale(12, RoundingMode.HALF_UP));
    }

    @Test
    void toolCallsTravelInTheMessagesFormat() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        SageMakerClient c = closing(client(e).build());
        e.answerToolCallNext("get_weather", "{\"city\":\"Oslo\"}");
        ChatRequest req = ChatRequest.builder()
                .user("weather?")
                .addTool(new dev.hybridinference.core.ToolDefinition("get_weather", "weather", "{\"type\":\"object\"}"))
                .build();
        ChatResponse r = c.chat(req);
        assertThat(r.toolCalls()).hasSize(1);
        assertThat(r.toolCalls().get(0).name()).isEqualTo("get_weather");
        assertThat(r.toolCalls().get(0).argumentsJson()).isEqualTo("{\"city\":\"Oslo\"}");
        assertThat(r.finishReason()).isEqualTo(FinishReason.TOOL_CALLS);
        assertThat(e.requests().get(0).bodyUtf8()).contains("\"tools\"");
        e.answerToolCallNext("get_weather", "{\"city\":\"Bergen\"}");
        try (ChatStream s = c.stream(req)) {
            text(s);
            ChatResponse end = s.response();
            assertThat(end.toolCalls().get(0).argumentsJson()).isEqualTo("{\"city\":\"Bergen\"}");
        }
    }

    @Test
    void theSecretKeyNeverAppearsInErrors() {
        SageMakerEmulator e = emulator(b -> b.container(Container.MESSAGES_SSE));
        SageMakerClient c = closing(client(e).build());
        e.failNext(Failure.validation("bad input"));
        assertThatThrownBy(() -> c.chat(ChatRequest.of("x"))).satisfies(t -> {
            for (Throwable x = t; x != null; x = x.getCause()) {
                assertThat(String.valueOf(x.getMessage())).doesNotContain("test-secret-access-key");
            }
        });
        assertThat(c.toString()).doesNotContain("test-secret-access-key");
    }

    private static String config(SageMakerEmulator e, String extra, String topLevel) {
        return "providers:\n"
                + "  sm:\n"
                + "    type: sagemaker\n"
                + "    endpointName: e1\n"
                + "    region: us-east-1\n"
                + "    endpointOverride: " + e.endpoint() + "\n"
                + "    credentials: {accessKeyId: AKIDEXAMPLE, secretAccessKey: test-secret-access-key}\n"
                + extra
                + topLevel;
    }
}
