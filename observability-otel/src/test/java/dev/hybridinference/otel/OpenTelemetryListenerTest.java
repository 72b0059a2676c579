package dev.hybridinference.otel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.Budget;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.RetryPolicy;
import dev.hybridinference.core.routing.StandardRoutingPolicy;
import dev.hybridinference.core.spi.VirtualTime;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.MeterProvider;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.TracerProvider;
import io.opentelemetry.context.Scope;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.metrics.data.DoublePointData;
import io.opentelemetry.sdk.metrics.data.HistogramPointData;
import io.opentelemetry.sdk.metrics.data.LongPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.trace.data.EventData;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class OpenTelemetryListenerTest {
    private static final String PROMPT = "the quarterly figures of the merger, confidential";

    private final InMemoryTelemetry telemetry = new InMemoryTelemetry();
    private final OpenTelemetryListener listener = OpenTelemetryListener.builder()
            .openTelemetry(telemetry.sdk)
            .metricTags("tenant")
            .build();

    @AfterEach
    void close() {
        listener.close();
        telemetry.close();
    }

    /** A request for model {@code llama} with a session, a listed tag and an unlisted one. */
    private static ChatRequest request() {
        return ChatRequest.builder()
                .model("llama")
                .user(PROMPT)
                .maxTokens(64)
                .temperature(0.25)
                .options(RequestOptions.builder()
                        .tag("tenant", "acme")
                        .tag("user", "u-123")
                        .sessionId("session-42")
                        .build())
                .build();
    }

    private HybridClient.Builder client() {
        return HybridClient.builder()
                .id("hybrid")
                .listener(listener)
                .sleeper(d -> {})
                .retry(new RetryPolicy(2, Duration.ZERO, Duration.ZERO, 1.0, 0, Duration.ZERO, Duration.ofSeconds(1)));
    }

    private static double seconds(Duration d) {
        return d.toNanos() / 1e9;
    }

    private static <T> T attr(SpanData span, AttributeKey<T> key) {
        return span.getAttributes().get(key);
    }

    private static HistogramPointData onlyHistogramPoint(MetricData m) {
        Collection<HistogramPointData> points = m.getHistogramData().getPoints();
        assertThat(points).hasSize(1);
        return points.iterator().next();
    }

    private static HistogramPointData histogramPoint(MetricData m, AttributeKey<String> key, String value) {
        return m.getHistogramData().getPoints().stream()
                .filter(p -> value.equals(p.getAttributes().get(key)))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no point with " + key + "=" + value + " in " + m));
    }

    private static LongPointData counterPoint(MetricData m, Attributes subset) {
        return m.getLongSumData().getPoints().stream()
                .filter(p -> contains(p.getAttributes(), subset))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no point with " + subset + " in " + m));
    }

    private static boolean contains(Attributes all, Attributes subset) {
        for (Map.Entry<AttributeKey<?>, Object> e : subset.asMap().entrySet()) {
            if (!e.getValue().equals(all.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    /** Fails when a metric point anywhere carries a session id, a call id, an unlisted tag or the prompt. */
    private void assertNoHighCardinalityMetricAttributes(String... callIds) {
        Collection<MetricData> all = telemetry.metrics().values();
        assertThat(InMemoryTelemetry.keyNames(all))
                .isNotEmpty()
                .doesNotContain(
                        "hybrid_inference.tag.user",
                        "gen_ai.conversation.id",
                        "hybrid_inference.call.id",
                        "hybrid_inference.streamed");
        for (Attributes a : InMemoryTelemetry.pointAttributes(all)) {
            assertThat(a.asMap().values())
                    .map(String::valueOf)
                    .doesNotContain("session-42", "u-123", PROMPT)
                    .doesNotContain(callIds);
        }
    }

    @Test
    void aCallIsOneClientSpanWithItsAttemptAsAChildAndTheGenAiMetrics() {
        ChatResponse r;
        try (HybridClient c =
                client().member("main", TestMember.perToken("main")).build()) {
            r = c.chat(request());
        }
        Receipt receipt = r.receipt();
        assertThat(telemetry.spans()).hasSize(2);
        SpanData call = telemetry.span("chat llama");
        SpanData attempt = telemetry.span("attempt main");
        assertThat(call.getKind()).isEqualTo(SpanKind.CLIENT);
        assertThat(call.getParentSpanContext().isValid()).isFalse();
        assertThat(attempt.getKind()).isEqualTo(SpanKind.INTERNAL);
        assertThat(attempt.getTraceId()).isEqualTo(call.getTraceId());
        assertThat(attempt.getParentSpanId()).isEqualTo(call.getSpanId());

        assertThat(attr(call, OpenTelemetryListener.OPERATION_NAME)).isEqualTo("chat");
        assertThat(attr(call, OpenTelemetryListener.REQUEST_MODEL)).isEqualTo("llama");
        assertThat(attr(call, OpenTelemetryListener.PROVIDER_NAME)).isEqualTo("main");
        assertThat(attr(call, OpenTelemetryListener.RESPONSE_MODEL)).isEqualTo("model-main");
        assertThat(attr(call, OpenTelemetryListener.INPUT_TOKENS)).isEqualTo(10L);
        assertThat(attr(call, OpenTelemetryListener.OUTPUT_TOKENS)).isEqualTo(5L);
        assertThat(attr(call, OpenTelemetryListener.REQUEST_MAX_TOKENS)).isEqualTo(64L);
        assertThat(attr(call, OpenTelemetryListener.REQUEST_TEMPERATURE)).isEqualTo(0.25);
        assertThat(attr(call, OpenTelemetryListener.SERVER_ADDRESS)).isEqualTo("10.0.0.7");
        assertThat(attr(call, OpenTelemetryListener.SERVER_PORT)).isEqualTo(8000L);
        assertThat(attr(call, OpenTelemetryListener.CONVERSATION_ID)).isEqualTo("session-42");
        assertThat(attr(call, OpenTelemetryListener.CALL_ID)).isEqualTo(receipt.id());
        assertThat(attr(call, OpenTelemetryListener.CLIENT_ID)).isEqualTo("hybrid");
        assertThat(attr(call, OpenTelemetryListener.STREAMED)).isFalse();
        assertThat(attr(call, OpenTelemetryListener.DEPLOYMENT_KIND)).isEqualTo("server");
        assertThat(attr(call, OpenTelemetryListener.SPILLED_OVER)).isFalse();
        assertThat(attr(call, OpenTelemetryListener.FELL_BACK)).isFalse();
        assertThat(attr(call, OpenTelemetryListener.COLD_PREDICTED)).isFalse();
        assertThat(attr(call, OpenTelemetryListener.COLD_OBSERVED)).isFalse();
        assertThat(attr(call, OpenTelemetryListener.ATTEMPTS)).isEqualTo(1L);
        // 10 tokens at $1 and 5 at $2 per million
        assertThat(receipt.cost()).isEqualByComparingTo("0.00002");
        assertThat(attr(call, OpenTelemetryListener.COST)).isEqualTo(0.00002);
        assertThat(attr(call, OpenTelemetryListener.COST_ESTIMATED)).isFalse();
        assertThat(attr(call, AttributeKey.stringKey("hybrid_inference.tag.tenant")))
                .isEqualTo("acme");
        assertThat(attr(call, AttributeKey.stringKey("hybrid_inference.tag.user")))
                .isNull();
        assertThat(call.getStatus().getStatusCode()).isEqualTo(StatusCode.UNSET);
        assertThat(attr(call, OpenTelemetryListener.ERROR_TYPE)).isNull();
        assertThat(attr(call, OpenTelemetryListener.TIME_TO_FIRST_CHUNK)).isNull();

        assertThat(attr(attempt, OpenTelemetryListener.MEMBER)).isEqualTo("main");
        assertThat(attr(attempt, OpenTelemetryListener.ATTEMPT_NUMBER)).isEqualTo(1L);
        assertThat(attr(attempt, OpenTelemetryListener.REQUEST_MODEL)).isEqualTo("llama");
        assertThat(attr(attempt, OpenTelemetryListener.RESPONSE_MODEL)).isEqualTo("model-main");
        assertThat(attr(attempt, OpenTelemetryListener.SERVER_ADDRESS)).isEqualTo("10.0.0.7");
        assertThat(attr(attempt, OpenTelemetryListener.INPUT_TOKENS)).isEqualTo(10L);

        for (SpanData s : telemetry.spans()) {
            assertThat(s.getAttributes().asMap().values())
                    .map(String::valueOf)
                    .noneMatch(v -> v.contains("quarterly figures"));
        }

        Map<String, MetricData> metrics = telemetry.metrics();
        MetricData duration = metrics.get("gen_ai.client.operation.duration");
        assertThat(duration.getUnit()).isEqualTo("s");
        HistogramPointData d = onlyHistogramPoint(duration);
        assertThat(d.getCount()).isEqualTo(1);
        assertThat(d.getSum()).isCloseTo(seconds(receipt.totalTime()), within(1e-9));
        assertThat(d.getBoundaries()).isEqualTo(OpenTelemetryListener.DURATION_BUCKETS);
        assertThat(d.getAttributes().asMap())
                .containsEntry(OpenTelemetryListener.OPERATION_NAME, "chat")
                .containsEntry(OpenTelemetryListener.PROVIDER_NAME, "main")
                .containsEntry(OpenTelemetryListener.REQUEST_MODEL, "llama")
                .containsEntry(OpenTelemetryListener.RESPONSE_MODEL, "model-main")
                .containsEntry(OpenTelemetryListener.SERVER_ADDRESS, "10.0.0.7")
                .containsEntry(OpenTelemetryListener.SERVER_PORT, 8000L)
                .containsEntry(OpenTelemetryListener.DEPLOYMENT_KIND, "server")
                .containsEntry(OpenTelemetryListener.SPILLED_OVER, false)
                .containsEntry(OpenTelemetryListener.FELL_BACK, false)
                .containsEntry(AttributeKey.stringKey("hybrid_inference.tag.tenant"), "acme")
                .doesNotContainKey(OpenTelemetryListener.ERROR_TYPE);

        MetricData tokens = metrics.get("gen_ai.client.token.usage");
        assertThat(tokens.getUnit()).isEqualTo("{token}");
        assertThat(histogramPoint(tokens, OpenTelemetryListener.TOKEN_TYPE, "input")
                        .getSum())
                .isEqualTo(10.0);
        assertThat(histogramPoint(tokens, OpenTelemetryListener.TOKEN_TYPE, "output")
                        .getSum())
                .isEqualTo(5.0);

        MetricData cost = metrics.get("hybrid_inference.cost");
        assertThat(cost.getUnit()).isEqualTo("USD");
        DoublePointData spent = cost.getDoubleSumData().getPoints().iterator().next();
        assertThat(spent.getValue()).isCloseTo(0.00002, within(1e-12));
        assertThat(spent.getAttributes().asMap())
                .containsEntry(OpenTelemetryListener.PROVIDER_NAME, "main")
                .containsEntry(OpenTelemetryListener.RESPONSE_MODEL, "model-main")
                .containsEntry(OpenTelemetryListener.DEPLOYMENT_KIND, "server")
                .containsEntry(OpenTelemetryListener.COST_ESTIMATED, false)
                .containsEntry(AttributeKey.stringKey("hybrid_inference.tag.tenant"), "acme");

        assertThat(counterPoint(
                                metrics.get("hybrid_inference.attempts"),
                                Attributes.of(
                                        OpenTelemetryListener.MEMBER,
                                        "main",
                                        OpenTelemetryListener.ATTEMPT_OUTCOME,
                                        "succeeded"))
                        .getValue())
                .isEqualTo(1);
        assertThat(metrics).doesNotContainKeys("gen_ai.client.operation.time_to_first_chunk");
        assertNoHighCardinalityMetricAttributes(receipt.id());
    }

    @Test
    void theCallSpanIsAChildOfTheSpanCurrentWhenTheCallStarted() {
        Span outer =
                telemetry.sdk.getTracer("app").spanBuilder("handle request").startSpan();
        try (HybridClient c =
                        client().member("main", TestMember.perToken("main")).build();
                Scope ignored = outer.makeCurrent()) {
            c.chat(request());
        } finally {
            outer.end();
        }
        SpanData call = telemetry.span("chat llama");
        assertThat(call.getParentSpanId()).isEqualTo(outer.getSpanContext().getSpanId());
        assertThat(telemetry.span("attempt main").getParentSpanId()).isEqualTo(call.getSpanId());
    }

    @Test
    void aFallbackShowsTheFailedAttemptAndTheOneThatAnswered() {
        TestMember first = TestMember.perToken("first")
                .thenFail(new ProviderUnavailableException("overloaded", "first", null, 503, null, null));
        TestMember second = TestMember.perToken("second");
        Receipt receipt;
        try (HybridClient c =
                client().member("first", first).member("second", second).build()) {
            receipt = c.chat(request()).receipt();
        }
        assertThat(telemetry.spans()).hasSize(3);
        SpanData call = telemetry.span("chat llama");
        SpanData failed = telemetry.span("attempt first");
        SpanData answered = telemetry.span("attempt second");
        assertThat(failed.getParentSpanId()).isEqualTo(call.getSpanId());
        assertThat(answered.getParentSpanId()).isEqualTo(call.getSpanId());
        assertThat(failed.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);
        assertThat(attr(failed, OpenTelemetryListener.ERROR_TYPE)).isEqualTo("ProviderUnavailableException");
        assertThat(attr(failed, OpenTelemetryListener.ATTEMPT_NUMBER)).isEqualTo(1L);
        assertThat(attr(failed, OpenTelemetryListener.SERVER_ADDRESS)).isEqualTo("10.0.0.7");
        assertThat(attr(failed, OpenTelemetryListener.RESPONSE_MODEL)).isNull();
        assertThat(answered.getStatus().getStatusCode()).isEqualTo(StatusCode.UNSET);
        assertThat(attr(answered, OpenTelemetryListener.ATTEMPT_NUMBER)).isEqualTo(2L);
        assertThat(attr(answered, OpenTelemetryListener.PROVIDER_NAME)).isEqualTo("second");

        assertThat(call.getStatus().getStatusCode()).isEqualTo(StatusCode.UNSET);
        assertThat(attr(call, OpenTelemetryListener.PROVIDER_NAME)).isEqualTo("second");
        assertThat(attr(call, OpenTelemetryListener.RESPONSE_MODEL)).isEqualTo("model-second");
        assertThat(attr(call, OpenTelemetryListener.FELL_BACK)).isTrue();
        assertThat(attr(call, OpenTelemetryListener.ATTEMPTS)).isEqualTo(2L);
        assertThat(receipt.routeFacts().fellBack()).isTrue();

        Map<String, MetricData> metrics = telemetry.metrics();
        MetricData attempts = metrics.get("hybrid_inference.attempts");
        assertThat(attempts.getUnit()).isEqualTo("{attempt}");
        assertThat(counterPoint(
                                attempts,
                                Attributes.of(
                                        OpenTelemetryListener.MEMBER,
                                        "first",
                                        OpenTelemetryListener.ATTEMPT_OUTCOME,
                                        "failed",
                                        OpenTelemetryListener.ERROR_TYPE,
                                        "ProviderUnavailableException"))
                        .getValue())
                .isEqualTo(1);
        assertThat(counterPoint(
                                attempts,
                                Attributes.of(
                                        OpenTelemetryListener.MEMBER,
                                        "second",
                                        OpenTelemetryListener.ATTEMPT_OUTCOME,
                                        "succeeded"))
                        .getValue())
                .isEqualTo(1);
        HistogramPointData d = onlyHistogramPoint(metrics.get("gen_ai.client.operation.duration"));
        assertThat(d.getAttributes().asMap())
                .containsEntry(OpenTelemetryListener.PROVIDER_NAME, "second")
                .containsEntry(OpenTelemetryListener.FELL_BACK, true)
                .doesNotContainKey(OpenTelemetryListener.ERROR_TYPE);
    }

    @Test
    void aFailedCallHasAnErrorStatusAndAnErrorTypeOnItsDuration() {
        TestMember main = TestMember.perToken("main")
                .thenFail(new InvalidRequestException("bad request", "main", null, 400, null, null));
        String callId;
        try (HybridClient c = client().member("main", main).build()) {
            InvalidRequestException e = (InvalidRequestException) catchThrowable(() -> c.chat(request()));
            callId = e.partialReceipt().orElseThrow().id();
        }
        SpanData call = telemetry.span("chat llama");
        assertThat(call.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);
        assertThat(call.getStatus().getDescription()).contains("bad request");
        assertThat(attr(call, OpenTelemetryListener.ERROR_TYPE)).isEqualTo("InvalidRequestException");
        assertThat(attr(call, OpenTelemetryListener.PROVIDER_NAME)).isEqualTo("main");
        assertThat(attr(call, OpenTelemetryListener.RESPONSE_MODEL)).isNull();
        assertThat(attr(call, OpenTelemetryListener.CALL_ID)).isEqualTo(callId);
        assertThat(telemetry.span("attempt main").getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);

        Map<String, MetricData> metrics = telemetry.metrics();
        HistogramPointData d = onlyHistogramPoint(metrics.get("gen_ai.client.operation.duration"));
        assertThat(d.getAttributes().asMap())
                .containsEntry(OpenTelemetryListener.ERROR_TYPE, "InvalidRequestException")
                .containsEntry(OpenTelemetryListener.PROVIDER_NAME, "main")
                .containsEntry(OpenTelemetryListener.REQUEST_MODEL, "llama")
                .doesNotContainKey(OpenTelemetryListener.RESPONSE_MODEL);
        assertThat(metrics).doesNotContainKeys("gen_ai.client.token.usage", "hybrid_inference.cost");
        assertNoHighCardinalityMetricAttributes(callId);
    }

    @Test
    void aStreamRecordsItsTimeToFirstChunk() {
        Receipt receipt;
        StringBuilder text = new StringBuilder();
        try (HybridClient c =
                        client().member("main", TestMember.perToken("main")).build();
                ChatStream s = c.stream(request())) {
            while (s.hasNext()) {
                ChatChunk chunk = s.next();
                text.append(chunk.text());
            }
            receipt = s.response().receipt();
        }
        assertThat(text).hasToString("hello world");
        SpanData call = telemetry.span("chat llama");
        assertThat(attr(call, OpenTelemetryListener.STREAMED)).isTrue();
        Double ttfc = attr(call, OpenTelemetryListener.TIME_TO_FIRST_CHUNK);
        assertThat(ttfc).isNotNull().isPositive().isLessThanOrEqualTo(seconds(receipt.totalTime()));
        assertThat(attr(call, OpenTelemetryListener.OUTPUT_TOKENS)).isEqualTo(5L);
        assertThat(telemetry.span("attempt main").getParentSpanId()).isEqualTo(call.getSpanId());

        MetricData first =
                telemetry.metric("gen_ai.client.operation.time_to_first_chunk").orElseThrow();
        assertThat(first.getUnit()).isEqualTo("s");
        HistogramPointData p = onlyHistogramPoint(first);
        assertThat(p.getCount()).isEqualTo(1);
        assertThat(p.getSum()).isEqualTo(ttfc);
        assertThat(p.getAttributes().asMap())
                .containsEntry(OpenTelemetryListener.PROVIDER_NAME, "main")
                .containsEntry(OpenTelemetryListener.RESPONSE_MODEL, "model-main");
        assertThat(onlyHistogramPoint(telemetry
                                .metric("gen_ai.client.operation.duration")
                                .orElseThrow())
                        .getCount())
                .isEqualTo(1);
        assertNoHighCardinalityMetricAttributes(receipt.id());
    }

    @Test
    void aSpilloverIsCountedByPrimaryAndMarkedOnTheSpanAndTheDuration() {
        TestMember primary = TestMember.perToken("primary").waiting(10);
        TestMember burst = TestMember.perToken("burst");
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("primary"))
                .spillover("primary", List.of("burst"), Duration.ZERO)
                .build();
        try (HybridClient c = client().member(
                        "primary",
                        primary,
                        MemberOptions.builder().maxWaiting(4).build())
                .member("burst", burst)
                .policy(policy)
                .build()) {
            assertThat(c.chat(request()).receipt().providerId()).isEqualTo("burst");
        }
        assertThat(primary.calls()).isZero();
        SpanData call = telemetry.span("chat llama");
        assertThat(attr(call, OpenTelemetryListener.SPILLED_OVER)).isTrue();
        assertThat(attr(call, OpenTelemetryListener.TIER)).isEqualTo("t");
        assertThat(attr(call, OpenTelemetryListener.PROVIDER_NAME)).isEqualTo("burst");
        List<EventData> events = call.getEvents();
        assertThat(events).extracting(EventData::getName).containsExactly("hybrid_inference.spillover");
        assertThat(events.get(0).getAttributes().get(OpenTelemetryListener.PRIMARY))
                .isEqualTo("primary");

        Map<String, MetricData> metrics = telemetry.metrics();
        MetricData spillovers = metrics.get("hybrid_inference.spillovers");
        assertThat(spillovers.getUnit()).isEqualTo("{call}");
        assertThat(counterPoint(spillovers, Attributes.of(OpenTelemetryListener.PRIMARY, "primary"))
                        .getValue())
                .isEqualTo(1);
        assertThat(onlyHistogramPoint(metrics.get("gen_ai.client.operation.duration"))
                        .getAttributes()
                        .asMap())
                .containsEntry(OpenTelemetryListener.SPILLED_OVER, true)
                .containsEntry(OpenTelemetryListener.TIER, "t")
                .containsEntry(OpenTelemetryListener.PROVIDER_NAME, "burst");
    }

    @Test
    void aBudgetRefusalIsCountedWithTheListedTagsOnly() {
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("main", List.of("main"))
                .budget(new Budget("all", Duration.ofDays(1), new BigDecimal("0.00001"), Map.of(), null))
                .build();
        try (HybridClient c = client().member("main", TestMember.perToken("main"))
                .policy(policy)
                .build()) {
            c.chat(request()); // $0.00002: the budget is spent
            assertThatThrownBy(() -> c.chat(request())).isInstanceOf(BudgetExceededException.class);
        }
        List<SpanData> calls = telemetry.spans().stream()
                .filter(s -> s.getName().equals("chat llama"))
                .toList();
        assertThat(calls).hasSize(2);
        SpanData refused = calls.get(1);
        assertThat(refused.getEvents())
                .extracting(EventData::getName)
                .containsExactly("hybrid_inference.budget_refused");
        assertThat(attr(refused, OpenTelemetryListener.ERROR_TYPE)).isEqualTo("BudgetExceededException");
        MetricData refusals =
                telemetry.metric("hybrid_inference.budget.refusals").orElseThrow();
        LongPointData p = refusals.getLongSumData().getPoints().iterator().next();
        assertThat(p.getValue()).isEqualTo(1);
        assertThat(p.getAttributes().asMap())
                .containsEntry(OpenTelemetryListener.REQUEST_MODEL, "llama")
                .containsEntry(AttributeKey.stringKey("hybrid_inference.tag.tenant"), "acme")
                .doesNotContainKey(AttributeKey.stringKey("hybrid_inference.tag.user"));
    }

    @Test
    void aCircuitThatOpensIsCountedByMember() {
        TestMember main = TestMember.perToken("main")
                .thenFail(new ProviderUnavailableException("down", "main", null, 503, null, null));
        try (HybridClient c = client().member("main", main)
                .member("backup", TestMember.perToken("backup"))
                .circuitBreaker(1, Duration.ofMinutes(5))
                .build()) {
            c.chat(request());
        }
        MetricData openings =
                telemetry.metric("hybrid_inference.circuit.openings").orElseThrow();
        assertThat(openings.getUnit()).isEqualTo("{opening}");
        assertThat(counterPoint(
                                openings,
                                Attributes.of(
                                        OpenTelemetryListener.MEMBER,
                                        "main",
                                        OpenTelemetryListener.CLIENT_ID,
                                        "hybrid"))
                        .getValue())
                .isEqualTo(1);
        assertThat(openings.getLongSumData().getPoints()).hasSize(1);
    }

    @Test
    void withoutAttemptSpansACallIsOneSpan() {
        try (OpenTelemetryListener quiet = OpenTelemetryListener.builder()
                        .openTelemetry(telemetry.sdk)
                        .attemptSpans(false)
                        .build();
                HybridClient c = HybridClient.builder()
                        .listener(quiet)
                        .member("main", TestMember.perToken("main"))
                        .build()) {
            assertThat(quiet.attemptSpans()).isFalse();
            c.chat(request());
        }
        assertThat(telemetry.spans()).extracting(SpanData::getName).containsExactly("chat llama");
        // Without listed tags no tag becomes a metric attribute.
        assertThat(InMemoryTelemetry.keyNames(telemetry.metrics().values()))
                .noneMatch(k -> k.startsWith(OpenTelemetryListener.TAG_PREFIX));
    }

    @Test
    void theCapacityGaugesReadTheLedgerUntilClosed() {
        VirtualTime time = new VirtualTime(Instant.parse("2026-01-01T00:00:00Z"));
        CostLedger ledger = new CostLedger(time.clock(), Duration.ofDays(1));
        ledger.registerCapacity("vllm", new Pricing.PerInstanceHour(new BigDecimal("3.60"), 1));
        time.advance(Duration.ofSeconds(1000)); // $1.00 billed
        ledger.record(Receipt.builder()
                .providerId("vllm")
                .deploymentKind(DeploymentKind.SERVER)
                .startedAt(time.clock().instant())
                .cost(new BigDecimal("0.25"))
                .build());
        OpenTelemetryListener gauges = OpenTelemetryListener.builder()
                .openTelemetry(telemetry.sdk)
                .capacity(ledger, List.of("vllm", "unregistered"))
                .build();
        Map<String, MetricData> metrics = telemetry.metrics();
        assertThat(gauge(metrics.get("hybrid_inference.capacity.billed"))).isCloseTo(1.0, within(1e-12));
        assertThat(gauge(metrics.get("hybrid_inference.capacity.attributed"))).isCloseTo(0.25, within(1e-12));
        assertThat(gauge(metrics.get("hybrid_inference.capacity.idle"))).isCloseTo(0.75, within(1e-12));
        assertThat(metrics.get("hybrid_inference.capacity.billed").getUnit()).isEqualTo("USD");

        gauges.close();
        gauges.close(); // idempotent
        assertThat(telemetry.metrics()).doesNotContainKeys("hybrid_inference.capacity.billed");
    }

    /** The value of a gauge's one point, which must be for provider {@code vllm}. */
    private static double gauge(MetricData m) {
        Collection<DoublePointData> points = m.getDoubleGaugeData().getPoints();
        assertThat(points).hasSize(1);
        DoublePointData p = points.iterator().next();
        assertThat(p.getAttributes().get(OpenTelemetryListener.PROVIDER_NAME)).isEqualTo("vllm");
        return p.getValue();
    }

    /** Records how many entries listeners had put in each call's attributes when it started. */
    private static final class AttributeProbe implements InferenceListener {
        final List<Integer> sizes = new ArrayList<>();

        @Override
        public void onCallStarted(Call call) {
            sizes.add(call.attributes().size());
        }
    }

    @Test
    void overANoOpOpenTelemetryTheListenerKeepsNothingPerCall() {
        AttributeProbe probe = new AttributeProbe();
        OpenTelemetryListener noop = OpenTelemetryListener.builder()
                .openTelemetry(OpenTelemetry.noop())
                .metricTags("tenant")
                .build();
        try (HybridClient c = HybridClient.builder()
                .listener(noop)
                .listener(probe)
                .member("main", TestMember.perToken("main"))
                .build()) {
            c.chat(request());
        }
        try (HybridClient c = HybridClient.builder()
                .listener(listener)
                .listener(probe)
                .member("main", TestMember.perToken("main"))
                .build()) {
            c.chat(request());
        }
        assertThat(probe.sizes).containsExactly(0, 1);
    }

    @Test
    void withMetricsOnlyCallsAreMeteredAndNoSpanIsStarted() {
        OpenTelemetry metricsOnly = new OpenTelemetry() {
            @Override
            public TracerProvider getTracerProvider() {
                return TracerProvider.noop();
            }

            @Override
            public MeterProvider getMeterProvider() {
                return telemetry.sdk.getMeterProvider();
            }

            @Override
            public ContextPropagators getPropagators() {
                return ContextPropagators.noop();
            }
        };
        OpenTelemetryListener l =
                OpenTelemetryListener.builder().openTelemetry(metricsOnly).build();
        try (HybridClient c = HybridClient.builder()
                        .listener(l)
                        .member("main", TestMember.perToken("main"))
                        .build();
                ChatStream s = c.stream(request())) {
            while (s.hasNext()) {
                s.next();
            }
        }
        assertThat(telemetry.spans()).isEmpty();
        Map<String, MetricData> metrics = telemetry.metrics();
        assertThat(onlyHistogramPoint(metrics.get("gen_ai.client.operation.duration"))
                        .getCount())
                .isEqualTo(1);
        assertThat(onlyHistogramPoint(metrics.get("gen_ai.client.operation.time_to_first_chunk"))
                        .getCount())
                .isEqualTo(1);
    }

    @Test
    void callsOfOneKindShareAPointAndEachListedTagValueHasItsOwn() {
        ChatRequest beta = request().toBuilder()
                .options(RequestOptions.builder().tag("tenant", "beta").build())
                .build();
        try (HybridClient c =
                client().member("main", TestMember.perToken("main")).build()) {
            c.chat(request());
            c.chat(request());
            c.chat(beta);
        }
        AttributeKey<String> tenant = AttributeKey.stringKey("hybrid_inference.tag.tenant");
        MetricData duration =
                telemetry.metric("gen_ai.client.operation.duration").orElseThrow();
        assertThat(duration.getHistogramData().getPoints()).hasSize(2);
        assertThat(histogramPoint(duration, tenant, "acme").getCount()).isEqualTo(2);
        assertThat(histogramPoint(duration, tenant, "beta").getCount()).isEqualTo(1);
        MetricData cost = telemetry.metric("hybrid_inference.cost").orElseThrow();
        assertThat(cost.getDoubleSumData().getPoints())
                .extracting(p -> p.getAttributes().get(tenant), DoublePointData::getValue)
                .containsExactlyInAnyOrder(
                        org.assertj.core.groups.Tuple.tuple("acme", 0.00004),
                        org.assertj.core.groups.Tuple.tuple("beta", 0.00002));
    }

    @Test
    void badBuilderInputIsRefusedWithTheTagAtFault() {
        OpenTelemetryListener.Builder b = OpenTelemetryListener.builder();
        assertThatThrownBy(() -> b.metricTags("tenant", "tenant"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tag 1 (\"tenant\"): listed twice");
        assertThatThrownBy(() -> b.metricTags("tenant", "two words"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("tag 1 (\"two words\"): expected a tag name");
        assertThatThrownBy(() -> b.capacity(new CostLedger(), new ArrayList<>(java.util.Arrays.asList("a", " "))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("provider 1: expected a provider id");
        assertThat(b.metricTags(List.of("tenant", "feature"))
                        .openTelemetry(telemetry.sdk)
                        .build()
                        .metricTags())
                .containsExactly("tenant", "feature");
    }

    private static Throwable catchThrowable(Runnable r) {
        try {
            r.run();
        } catch (Throwable t) {
            return t;
        }
        throw new AssertionError("expected a failure");
    }
}
