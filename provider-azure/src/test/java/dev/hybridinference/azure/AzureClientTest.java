package dev.hybridinference.azure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.azure.core.credential.AccessToken;
import com.azure.core.credential.TokenCredential;
import com.azure.core.credential.TokenRequestContext;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ContentFilteredException;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.azure.AzureEmulator;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import reactor.core.publisher.Mono;

/** Both Azure routes against the emulator over HTTPS: requests as the service expects them, answers, errors, filters. */
class AzureClientTest {
    private static final String KEY = "azure-test-key-7d1e0b";
    /** $0.30 per million input tokens, $0.60 per million output tokens. */
    private static final Pricing PRICING = new Pricing.PerToken(new BigDecimal("0.30"), new BigDecimal("0.60"), null);

    private AzureEmulator emulator;
    private final List<AzureClient> clients = new ArrayList<>();

    @BeforeEach
    void start() {
        emulator = AzureEmulator.builder()
                .apiKey(KEY)
                .bearerToken("token-1")
                .bearerToken("token-2")
                .deployment("llama-8b")
                .start();
    }

    @AfterEach
    void stop() {
        clients.forEach(AzureClient::close);
        emulator.close();
    }

    private AzureClient.Builder builder(AzureClient.Api api) {
        return AzureClient.builder()
                .id("azure")
                .api(api)
                .endpoint(api == AzureClient.Api.OPENAI_V1 ? emulator.openAiV1Url() : emulator.inferenceUrl())
                .model("llama-8b")
                .trust(emulator.clientTrustManager())
                .pricing(PRICING);
    }

    private AzureClient client(AzureClient.Api api) {
        return track(builder(api).apiKey(KEY).build());
    }

    private AzureClient track(AzureClient c) {
        clients.add(c);
        return c;
    }

    private AzureEmulator.RecordedRequest lastChat() {
        List<AzureEmulator.RecordedRequest> all = emulator.recorded();
        for (int i = all.size() - 1; i >= 0; i--) {
            if (all.get(i).path().endsWith("/chat/completions")) {
                return all.get(i);
            }
        }
        throw new AssertionError("no chat request recorded: " + all);
    }

    private static BigDecimal perToken(long in, long out) {
        return new BigDecimal("0.30")
                .multiply(BigDecimal.valueOf(in))
                .add(new BigDecimal("0.60").multiply(BigDecimal.valueOf(out)))
                .divide(BigDecimal.valueOf(1_000_000));
    }

    @Test
    void theV1RouteSendsTheOpenAiBodyWithTheKeyAndNoApiVersion() {
        emulator.answerNext("four words of answer");
        ChatResponse r = client(AzureClient.Api.OPENAI_V1).chat(ChatRequest.of("hello there"));

        assertThat(r.text()).isEqualTo("four words of answer");
        AzureEmulator.RecordedRequest req = lastChat();
        assertThat(req.method()).isEqualTo("POST");
        assertThat(req.path()).isEqualTo("/openai/v1/chat/completions");
        assertThat(req.query()).as("the v1 route has no api-version").isNullOrEmpty();
        assertThat(req.header("api-key")).isEqualTo(KEY);
        assertThat(req.header("authorization")).isNull();
        assertThat(req.header("extra-parameters")).isNull();
        assertThat(req.body()).contains("\"model\":\"llama-8b\"").doesNotContain("top_k");
        Receipt receipt = r.receipt();
        assertThat(receipt.usage().estimated()).isFalse();
        assertThat(receipt.usage().outputTokens()).isEqualTo(4);
        assertThat(receipt.cost())
                .isEqualByComparingTo(
                        perToken(receipt.usage().inputTokens(), receipt.usage().outputTokens()));
        assertThat(receipt.attributes()).containsEntry("api", "openai-v1");
    }

    @Test
    void aBareResourceUrlGetsTheV1Path() {
        AzureClient c = track(builder(AzureClient.Api.OPENAI_V1)
                .endpoint(emulator.url())
                .apiKey(KEY)
                .build());
        c.chat(ChatRequest.of("hi"));
        assertThat(lastChat().path()).isEqualTo("/openai/v1/chat/completions");
    }

    @Test
    void theSdkRouteSendsItsApiVersionAndTheKeyAsTheSdkDoes() {
        emulator.answerNext("sdk answer");
        ChatResponse r = client(AzureClient.Api.INFERENCE_SDK).chat(ChatRequest.of("hello"));

        assertThat(r.text()).isEqualTo("sdk answer");
        AzureEmulator.RecordedRequest req = lastChat();
        assertThat(req.path()).isEqualTo("/models/chat/completions");
        assertThat(req.query()).contains("api-version=2024-05-01-preview");
        assertThat(req.header("api-key")).isEqualTo(KEY);
        assertThat(r.receipt().usage().estimated()).isFalse();
        assertThat(r.receipt().attributes()).containsEntry("api", "inference-sdk");
    }

    @Test
    void theSdkRouteTakesTheOtherApiVersion() {
        AzureClient c = track(builder(AzureClient.Api.INFERENCE_SDK)
                .apiKey(KEY)
                .apiVersion("2024-08-01-preview")
                .build());
        c.chat(ChatRequest.of("hello"));
        assertThat(lastChat().query()).contains("api-version=2024-08-01-preview");
        assertThatThrownBy(() -> AzureClient.builder().apiVersion("2023-01-01"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("2024-05-01-preview");
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void toolsAndJsonOutputReachTheServiceAndComeBack(AzureClient.Api api) {
        emulator.answerNextWithToolCall("get_weather", "{\"city\":\"Oslo\"}");
        ChatRequest withTools = ChatRequest.builder()
                .user("weather in Oslo?")
                .addTool(new ToolDefinition(
                        "get_weather",
                        "the weather",
                        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}"))
                .build();
        ChatResponse r = client(api).chat(withTools);
        assertThat(r.finishReason()).isEqualTo(FinishReason.TOOL_CALLS);
        assertThat(r.toolCalls()).hasSize(1);
        assertThat(r.toolCalls().get(0).name()).isEqualTo("get_weather");
        assertThat(r.toolCalls().get(0).argumentsJson()).contains("Oslo");
        assertThat(lastChat().body()).contains("\"tools\"").contains("get_weather");

        ChatResponse json = client(api)
                .chat(ChatRequest.builder()
                        .user("a JSON object please")
                        .responseFormat(ResponseFormat.JSON_OBJECT)
                        .build());
        assertThat(lastChat().body()).contains("json_object");
        assertThat(json.text().trim()).startsWith("{");
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void aStreamDeliversItsFirstChunkBeforeTheServerHasFinished(AzureClient.Api api) {
        emulator.close();
        emulator = AzureEmulator.builder()
                .apiKey(KEY)
                .deployment("llama-8b")
                .tokenLatency(Duration.ofMillis(60))
                .start();
        AzureClient c = client(api);
        long start = System.nanoTime();
        StringBuilder text = new StringBuilder();
        long firstAt = 0;
        try (ChatStream s =
                c.stream(ChatRequest.builder().user("count").maxTokens(30).build())) {
            for (ChatChunk chunk : s) {
                if (firstAt == 0 && !chunk.text().isEmpty()) {
                    firstAt = System.nanoTime();
                }
                text.append(chunk.text());
            }
            long total = System.nanoTime() - start;
            // 30 words at 60 ms each take the server at least 1.8 s; the first arrives long before the end.
            assertThat(total).isGreaterThan(Duration.ofMillis(1700).toNanos());
            assertThat(firstAt - start).isLessThan(total / 2);
            ChatResponse r = s.response();
            assertThat(r.text()).isEqualTo(text.toString());
            assertThat(r.receipt().timeToFirstToken()).isPresent();
            if (api == AzureClient.Api.OPENAI_V1) {
                assertThat(r.receipt().usage().estimated())
                        .as("v1 asks for usage")
                        .isFalse();
                assertThat(r.receipt().usage().outputTokens()).isEqualTo(30);
                assertThat(lastChat().body()).contains("include_usage");
            } else {
                assertThat(r.receipt().usage().estimated())
                        .as("the SDK does not ask for usage in streams")
                        .isTrue();
                assertThat(r.receipt().costEstimated()).isTrue();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(AzureEmulator.RetryHeader.class)
    void rateLimitsCarryTheWaitFromEachRetryHeaderOnBothRoutes(AzureEmulator.RetryHeader header) {
        for (AzureClient.Api api : AzureClient.Api.values()) {
            emulator.rateLimitNext(header, Duration.ofMillis(2500));
            RateLimitedException e = catchThrowableOfType(
                    RateLimitedException.class, () -> client(api).chat(ChatRequest.of("hi")));
            assertThat(e).as(api + " " + header).isNotNull();
            assertThat(e.isRetryable()).isTrue();
            Duration expected =
                    header == AzureEmulator.RetryHeader.RETRY_AFTER ? Duration.ofSeconds(3) : Duration.ofMillis(2500);
            assertThat(e.retryAfter()).as(api + " " + header).contains(expected);
        }
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void neitherRouteRetriesAFailureItself(AzureClient.Api api) {
        AzureClient c = client(api);
        long before = emulator.requests();
        emulator.failNext(503, "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"try later\"}}");
        InferenceException unavailable =
                catchThrowableOfType(InferenceException.class, () -> c.chat(ChatRequest.of("hi")));
        assertThat(unavailable.statusCode()).isEqualTo(503);
        assertThat(unavailable.getMessage()).contains("try later");
        emulator.failNext(500, "{\"error\":{\"code\":\"InternalServerError\",\"message\":\"oops\"}}");
        assertThatThrownBy(() -> {
                    try (ChatStream s = c.stream(ChatRequest.of("hi"))) {
                        while (s.hasNext()) {
                            s.next();
                        }
                    }
                })
                .isInstanceOf(InferenceException.class)
                .hasMessageContaining("oops");
        emulator.rateLimitNext(AzureEmulator.RetryHeader.RETRY_AFTER_MS, Duration.ofMillis(10));
        assertThatThrownBy(() -> c.chat(ChatRequest.of("hi"))).isInstanceOf(RateLimitedException.class);
        assertThat(emulator.requests() - before)
                .as("one request per call: the pipeline's own retries are off")
                .isEqualTo(3);
        assertThat(c.chat(ChatRequest.of("hi")).text()).isNotEmpty();
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void aFilteredPromptFailsAsContentFilteredSayingWhat(AzureClient.Api api) {
        emulator.filterPromptNext("hate");
        ContentFilteredException e = catchThrowableOfType(
                ContentFilteredException.class, () -> client(api).chat(ChatRequest.of("something hateful")));
        assertThat(e).isNotNull();
        assertThat(e.isRetryable()).isFalse();
        assertThat(e.statusCode()).isEqualTo(400);
        assertThat(e.stage()).isEqualTo(ContentFilteredException.Stage.PROMPT);
        assertThat(e.filtered()).hasValueSatisfying(f -> assertThat(f).contains("hate (high)"));
        assertThat(e.partialReceipt()).isPresent();
        assertThat(e.partialReceipt().get().cost()).isEqualByComparingTo(BigDecimal.ZERO);
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void aFilteredAnswerFailsAndItsBilledTokensAreCharged(AzureClient.Api api) {
        emulator.filterAnswerNext("violence", 5);
        CostLedger ledger = new CostLedger();
        AzureClient c = track(builder(api).apiKey(KEY).ledger(ledger).build());
        ContentFilteredException e =
                catchThrowableOfType(ContentFilteredException.class, () -> c.chat(ChatRequest.of("tell a story")));
        assertThat(e).isNotNull();
        assertThat(e.stage()).isEqualTo(ContentFilteredException.Stage.ANSWER);
        if (api == AzureClient.Api.OPENAI_V1) {
            assertThat(e.filtered()).hasValueSatisfying(f -> assertThat(f).contains("violence (medium)"));
        }
        Receipt partial = e.partialReceipt().orElseThrow();
        assertThat(partial.usage().outputTokens()).isEqualTo(5);
        assertThat(partial.usage().estimated()).isFalse();
        assertThat(partial.cost())
                .isEqualByComparingTo(perToken(partial.usage().inputTokens(), 5))
                .isPositive();
        assertThat(ledger.totals().total()).isEqualByComparingTo(partial.cost());
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void anAnswerFilteredMidStreamEndsTheStreamAfterWhatWasSent(AzureClient.Api api) {
        emulator.filterAnswerNext("sexual", 3);
        List<String> got = new ArrayList<>();
        ContentFilteredException e;
        try (ChatStream s = client(api).stream(ChatRequest.of("go on"))) {
            e = catchThrowableOfType(
                    ContentFilteredException.class, () -> s.forEachRemaining(ch -> got.add(ch.text())));
        }
        assertThat(e).isNotNull();
        assertThat(e.stage()).isEqualTo(ContentFilteredException.Stage.ANSWER);
        assertThat(String.join("", got).trim().split("\\s+")).hasSize(3);
        Receipt partial = e.partialReceipt().orElseThrow();
        assertThat(partial.usage().outputTokens()).isEqualTo(3);
        assertThat(partial.cost()).isPositive();
        if (api == AzureClient.Api.OPENAI_V1) {
            assertThat(e.filtered()).hasValueSatisfying(f -> assertThat(f).contains("sexual"));
            assertThat(partial.usage().estimated())
                    .as("the usage chunk after the filter is read")
                    .isFalse();
        }
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void extraParametersAreSentOnlyWhenConfigured(AzureClient.Api api) {
        ChatRequest withTopK = ChatRequest.builder().user("hi").topK(5).build();
        client(api).chat(withTopK);
        assertThat(lastChat().body()).doesNotContain("top_k");
        assertThat(lastChat().header("extra-parameters")).isNull();

        AzureClient passing = track(builder(api)
                .apiKey(KEY)
                .extraParameters(AzureClient.ExtraParameters.PASS_THROUGH)
                .build());
        passing.chat(withTopK);
        assertThat(lastChat().body()).contains("\"top_k\":5");
        assertThat(lastChat().header("extra-parameters")).isEqualTo("pass-through");

        if (api == AzureClient.Api.INFERENCE_SDK) {
            AzureClient refusing = track(builder(api)
                    .apiKey(KEY)
                    .extraParameters(AzureClient.ExtraParameters.ERROR)
                    .build());
            assertThatThrownBy(() -> refusing.chat(withTopK))
                    .isInstanceOf(InferenceException.class)
                    .hasMessageContaining("top_k");
        }
    }

    /** A credential that hands out the given tokens in turn, each good for {@code life}. */
    private static final class FakeCredential implements TokenCredential {
        private final List<String> tokens;
        private final Duration life;
        final AtomicInteger calls = new AtomicInteger();
        final List<List<String>> scopes = new CopyOnWriteArrayList<>();

        FakeCredential(Duration life, String... tokens) {
            this.tokens = List.of(tokens);
            this.life = life;
        }

        @Override
        public Mono<AccessToken> getToken(TokenRequestContext request) {
            return Mono.fromCallable(() -> getTokenSync(request));
        }

        @Override
        public AccessToken getTokenSync(TokenRequestContext request) {
            scopes.add(request.getScopes());
            int n = calls.getAndIncrement();
            return new AccessToken(
                    tokens.get(Math.min(n, tokens.size() - 1)),
                    OffsetDateTime.now().plus(life));
        }
    }

    @Test
    void entraTokensAreCachedAndFetchedAgainBeforeTheyExpire() {
        FakeCredential longLived = new FakeCredential(Duration.ofHours(1), "token-1", "token-2");
        AzureClient c = track(
                builder(AzureClient.Api.OPENAI_V1).tokenCredential(longLived).build());
        c.chat(ChatRequest.of("a"));
        c.chat(ChatRequest.of("b"));
        assertThat(longLived.calls).hasValue(1);
        assertThat(lastChat().header("authorization")).isEqualTo("Bearer token-1");
        assertThat(lastChat().header("api-key")).isNull();
        assertThat(longLived.scopes.get(0)).containsExactly(AzureClient.COGNITIVE_SERVICES_SCOPE);

        // Tokens that expire within the refresh margin are replaced on the next call.
        FakeCredential shortLived = new FakeCredential(Duration.ofMinutes(2), "token-1", "token-2");
        AzureClient d = track(
                builder(AzureClient.Api.OPENAI_V1).tokenCredential(shortLived).build());
        d.chat(ChatRequest.of("a"));
        assertThat(lastChat().header("authorization")).isEqualTo("Bearer token-1");
        d.chat(ChatRequest.of("b"));
        assertThat(lastChat().header("authorization")).isEqualTo("Bearer token-2");
    }

    @Test
    void theSdkRouteSendsEntraTokensThroughItsOwnPolicy() {
        FakeCredential credential = new FakeCredential(Duration.ofHours(1), "token-2");
        AzureClient c = track(builder(AzureClient.Api.INFERENCE_SDK)
                .tokenCredential(credential)
                .scopes(List.of("https://ml.azure.com/.default"))
                .build());
        c.chat(ChatRequest.of("hello"));
        assertThat(lastChat().header("authorization")).isEqualTo("Bearer token-2");
        assertThat(credential.scopes.get(0)).containsExactly("https://ml.azure.com/.default");
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void aWrongKeyIsAnAuthenticationErrorThatNeverShowsTheKey(AzureClient.Api api) {
        String wrong = "wrong-key-5e5e5e5e";
        AzureClient c = track(builder(api).apiKey(wrong).build());
        AuthenticationException e =
                catchThrowableOfType(AuthenticationException.class, () -> c.chat(ChatRequest.of("hi")));
        assertThat(e).isNotNull();
        assertThat(e.statusCode()).isEqualTo(401);
        assertThat(e.getMessage()).doesNotContain(wrong);
        assertThat(String.valueOf(e.getCause())).doesNotContain(wrong);
        assertThat(c.toString()).doesNotContain(wrong);
    }

    @ParameterizedTest
    @EnumSource(AzureClient.Api.class)
    void aPromptOverTheContextWindowIsAContextLengthError(AzureClient.Api api) {
        String longText = "word ".repeat(9000);
        assertThatThrownBy(() -> client(api)
                        .chat(ChatRequest.builder()
                                .addMessage(Message.user(longText))
                                .build()))
                .isInstanceOf(ContextLengthExceededException.class);
    }

    @Test
    void aManagedEndpointChargesEachCallItsShareOfTheInstanceHours() {
        // $3600 an hour is $1 a second: a call's cost is its share of instance time in seconds.
        AzureClient c = track(builder(AzureClient.Api.OPENAI_V1)
                .apiKey(KEY)
                .deployment(dev.hybridinference.core.DeploymentKind.SERVER)
                .pricing(new Pricing.PerInstanceHour(new BigDecimal("3600"), 1))
                .build());
        assertThat(c.info().deploymentKind()).isEqualTo(dev.hybridinference.core.DeploymentKind.SERVER);
        Receipt r = c.chat(ChatRequest.of("hello")).receipt();
        assertThat(r.instanceTime()).isPositive();
        assertThat(r.cost())
                .isEqualByComparingTo(new BigDecimal(r.instanceTime().toNanos()).movePointLeft(9));
    }

    @Test
    void theBuilderRefusesPlainHttpAndMissingSettings() {
        assertThatThrownBy(() -> AzureClient.builder().endpoint("http://127.0.0.1:1/openai/v1"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("https");
        assertThatThrownBy(() -> AzureClient.builder()
                        .endpoint("https://x.openai.azure.com")
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("credentials");
        assertThatThrownBy(() -> AzureClient.builder()
                        .endpoint("https://x.openai.azure.com")
                        .apiKey("k")
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("model");
    }
}
