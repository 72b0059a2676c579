package dev.hybridinference.otel;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.core.cost.CostLedger;
import io.opentelemetry.api.GlobalOpenTelemetry;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.common.AttributesBuilder;
import io.opentelemetry.api.metrics.BatchCallback;
import io.opentelemetry.api.metrics.DoubleCounter;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.LongHistogram;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.MeterBuilder;
import io.opentelemetry.api.metrics.MeterProvider;
import io.opentelemetry.api.metrics.ObservableDoubleMeasurement;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanBuilder;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.api.trace.TracerBuilder;
import io.opentelemetry.api.trace.TracerProvider;
import io.opentelemetry.context.Context;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Traces and meters the calls of a composite client with OpenTelemetry, following the semantic
 * conventions for generative AI, and adds the SDK's own facts (route, cold start, cost) under {@code
 * hybrid_inference.*}.
 *
 * <p>Register it with {@link dev.hybridinference.core.routing.HybridClient.Builder#listener}, with {@link
 * dev.hybridinference.core.InferenceClients.Loader#listener}, or in a configuration's {@code listeners}
 * section as {@code {type: otel}} (see {@link OpenTelemetryListenerFactory}). Nothing of this class runs,
 * and nothing is created, unless it is registered.
 *
 * <h2>Conventions followed</h2>
 *
 * The GenAI semantic conventions (status: development) as published in OpenTelemetry semantic-conventions
 * 1.37 to 1.40: {@code gen_ai.provider.name} (which replaced {@code gen_ai.system} in 1.37), the client
 * metrics {@code gen_ai.client.operation.duration} and {@code gen_ai.client.token.usage}, and {@code
 * gen_ai.client.operation.time_to_first_chunk}, the most recent of them, with the bucket boundaries the
 * conventions advise. The conventions have since moved to their own repository, whose drafts rename the
 * inference metrics ({@code gen_ai.client.inference.*}); those drafts are not followed. Attributes the
 * conventions define but a listener cannot see are left out: {@code gen_ai.response.finish_reasons} and
 * {@code gen_ai.response.id} (the listener events carry the receipt, not the response).
 *
 * <h2>Spans</h2>
 *
 * <ul>
 *   <li>One {@link SpanKind#CLIENT} span per call, named {@code chat {gen_ai.request.model}} ({@code chat}
 *       when the request names no model), a child of the context current when the call started: {@code
 *       gen_ai.operation.name}, {@code gen_ai.request.model}, {@code gen_ai.request.max_tokens}, {@code
 *       .temperature}, {@code .top_p} when set, {@code gen_ai.conversation.id} (the request's session id),
 *       {@code gen_ai.provider.name} (the provider that answered, or was tried last; the composite client's id
 *       when none was tried), {@code
 *       gen_ai.response.model}, {@code gen_ai.usage.input_tokens}, {@code gen_ai.usage.output_tokens}, {@code
 *       server.address} and {@code server.port} when the answering attempt's endpoint is a URL, {@code
 *       gen_ai.response.time_to_first_chunk} (seconds) for streams; on failure {@code error.type} (the
 *       exception's simple class name) and an error status. The SDK's own: {@code hybrid_inference.call.id}
 *       (the receipt's id), {@code .client.id}, {@code .streamed}, {@code .deployment_kind}, {@code .tier},
 *       {@code .spilled_over}, {@code .fell_back}, {@code .cold_start.predicted}, {@code
 *       .cold_start.observed}, {@code .cold_start.duration} (seconds), {@code .attempts} (sent to members),
 *       {@code .cost} (USD), {@code .cost_estimated}, and the allow-listed tags as {@code
 *       hybrid_inference.tag.<name>}; events {@code hybrid_inference.spillover} and {@code
 *       hybrid_inference.budget_refused}.
 *   <li>With {@link Builder#attemptSpans} (the default), one {@link SpanKind#INTERNAL} child span per attempt
 *       sent to a member, named {@code attempt {member}}: {@code hybrid_inference.member}, {@code
 *       .attempt.number}, {@code .cold_start.predicted}, {@code gen_ai.request.model} (the model the member
 *       was asked for), and from the member's receipt {@code gen_ai.provider.name}, {@code
 *       gen_ai.response.model}, the token counts, the server and the attempt's cost; {@code error.type} and
 *       an error status when it failed. Attempts are internal spans so that each call is one client
 *       operation in the trace, as the conventions count operations; a provider's HTTP client spans, where
 *       an agent records them, are its own.
 * </ul>
 *
 * Prompts and answers are never recorded.
 *
 * <h2>Metrics</h2>
 *
 * <ul>
 *   <li>{@code gen_ai.client.operation.duration} (histogram, s): every call, with {@code
 *       gen_ai.operation.name}, {@code gen_ai.provider.name}, {@code gen_ai.request.model}, {@code
 *       gen_ai.response.model}, {@code server.address}, {@code server.port}, {@code error.type} on failure,
 *       and {@code hybrid_inference.deployment_kind}, {@code .tier}, {@code .spilled_over}, {@code
 *       .fell_back}, {@code .cold_start.observed};
 *   <li>{@code gen_ai.client.token.usage} (histogram, {token}): input and output tokens ({@code
 *       gen_ai.token.type}) of every call that reports them;
 *   <li>{@code gen_ai.client.operation.time_to_first_chunk} (histogram, s): streamed calls that received a
 *       chunk;
 *   <li>{@code hybrid_inference.cost} (counter, USD): what calls cost, with {@code
 *       hybrid_inference.deployment_kind} and {@code .cost_estimated}; failed calls count what their
 *       attempts cost;
 *   <li>{@code hybrid_inference.cold_start.duration} (histogram, s): calls that saw a cold start of known
 *       duration;
 *   <li>{@code hybrid_inference.attempts} (counter): attempts sent to members, by {@code
 *       hybrid_inference.member} and {@code hybrid_inference.attempt.outcome} ({@code succeeded}, {@code
 *       failed}), with {@code error.type};
 *   <li>{@code hybrid_inference.spillovers} (counter): calls that spilled over, by {@code
 *       hybrid_inference.primary};
 *   <li>{@code hybrid_inference.budget.refusals} (counter): calls a spent budget refused;
 *   <li>{@code hybrid_inference.circuit.openings} (counter): circuits that opened (or opened again after a
 *       failed trial call), by {@code hybrid_inference.member};
 *   <li>with {@link Builder#capacity}, the gauges {@code hybrid_inference.capacity.billed}, {@code
 *       .attributed} and {@code .idle} (USD, since the capacity was registered), by {@code
 *       gen_ai.provider.name}, read from {@link CostLedger#capacity} when metrics are collected.
 * </ul>
 *
 * The per-call metrics also carry the allow-listed request tags ({@link Builder#metricTags}) as {@code
 * hybrid_inference.tag.<name>}; no other tag, and never a session id, a call id or a prompt, becomes a
 * metric attribute, so that the number of series stays bounded. Amounts are exact on receipts and in the
 * ledger; as metric values and span attributes they are doubles, the only decimal type OpenTelemetry has.
 *
 * <p>Thread-safe. Instruments and attribute keys are created once, when the listener is built, and the
 * attribute sets of the metrics once per kind of call (provider, models, server, route facts, error type,
 * tag values; a few thousand kinds at most are kept): a call costs its spans and the recordings. Over the
 * no-op providers ({@link OpenTelemetry#noop()}, or a global instance nobody installed) the listener does
 * nothing per call; over a no-op tracer provider alone it starts no span. {@link #close()} removes the
 * capacity gauges' callback.
 */
public final class OpenTelemetryListener implements InferenceListener, AutoCloseable {
    /** The instrumentation scope name of the tracer and the meter. */
    public static final String INSTRUMENTATION_SCOPE = "dev.hybridinference.otel";

    // ---- attribute keys of the GenAI conventions and the general ones they use ----------------------
    static final AttributeKey<String> OPERATION_NAME = AttributeKey.stringKey("gen_ai.operation.name");
    static final AttributeKey<String> PROVIDER_NAME = AttributeKey.stringKey("gen_ai.provider.name");
    static final AttributeKey<String> REQUEST_MODEL = AttributeKey.stringKey("gen_ai.request.model");
    static final AttributeKey<String> RESPONSE_MODEL = AttributeKey.stringKey("gen_ai.response.model");
    static final AttributeKey<Long> REQUEST_MAX_TOKENS = AttributeKey.longKey("gen_ai.request.max_tokens");
    static final AttributeKey<Double> REQUEST_TEMPERATURE = AttributeKey.doubleKey("gen_ai.request.temperature");
    static final AttributeKey<Double> REQUEST_TOP_P = AttributeKey.doubleKey("gen_ai.request.top_p");
    static final AttributeKey<String> CONVERSATION_ID = AttributeKey.stringKey("gen_ai.conversation.id");
    static final AttributeKey<Long> INPUT_TOKENS = AttributeKey.longKey("gen_ai.usage.input_tokens");
    static final AttributeKey<Long> OUTPUT_TOKENS = AttributeKey.longKey("gen_ai.usage.output_tokens");
    static final AttributeKey<String> TOKEN_TYPE = AttributeKey.stringKey("gen_ai.token.type");
    static final AttributeKey<Double> TIME_TO_FIRST_CHUNK =
            AttributeKey.doubleKey("gen_ai.response.time_to_first_chunk");
    static final AttributeKey<String> SERVER_ADDRESS = AttributeKey.stringKey("server.address");
    static final AttributeKey<Long> SERVER_PORT = AttributeKey.longKey("server.port");
    static final AttributeKey<String> ERROR_TYPE = AttributeKey.stringKey("error.type");

    // ---- the SDK's own ------------------------------------------------------------------------------
    static final String NS = "hybrid_inference.";
    static final AttributeKey<String> CALL_ID = AttributeKey.stringKey(NS + "call.id");
    static final AttributeKey<String> CLIENT_ID = AttributeKey.stringKey(NS + "client.id");
    static final AttributeKey<Boolean> STREAMED = AttributeKey.booleanKey(NS + "streamed");
    static final AttributeKey<String> MEMBER = AttributeKey.stringKey(NS + "member");
    static final AttributeKey<Long> ATTEMPT_NUMBER = AttributeKey.longKey(NS + "attempt.number");
    static final AttributeKey<String> ATTEMPT_OUTCOME = AttributeKey.stringKey(NS + "attempt.outcome");
    static final AttributeKey<String> DEPLOYMENT_KIND = AttributeKey.stringKey(NS + "deployment_kind");
    static final AttributeKey<String> TIER = AttributeKey.stringKey(NS + "tier");
    static final AttributeKey<Boolean> SPILLED_OVER = AttributeKey.booleanKey(NS + "spilled_over");
    static final AttributeKey<Boolean> FELL_BACK = AttributeKey.booleanKey(NS + "fell_back");
    static final AttributeKey<Boolean> COLD_PREDICTED = AttributeKey.booleanKey(NS + "cold_start.predicted");
    static final AttributeKey<Boolean> COLD_OBSERVED = AttributeKey.booleanKey(NS + "cold_start.observed");
    static final AttributeKey<Double> COLD_DURATION = AttributeKey.doubleKey(NS + "cold_start.duration");
    static final AttributeKey<Long> ATTEMPTS = AttributeKey.longKey(NS + "attempts");
    static final AttributeKey<Double> COST = AttributeKey.doubleKey(NS + "cost");
    static final AttributeKey<Boolean> COST_ESTIMATED = AttributeKey.booleanKey(NS + "cost_estimated");
    static final AttributeKey<String> PRIMARY = AttributeKey.stringKey(NS + "primary");
    static final AttributeKey<String> REASON = AttributeKey.stringKey(NS + "reason");

    /** The prefix of an allow-listed tag's attribute key. */
    public static final String TAG_PREFIX = NS + "tag.";

    /** Bucket boundaries the conventions advise for durations, in seconds. */
    static final List<Double> DURATION_BUCKETS =
            List.of(0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92);

    /** Bucket boundaries the conventions advise for token counts. */
    static final List<Long> TOKEN_BUCKETS = List.of(
            1L, 4L, 16L, 64L, 256L, 1024L, 4096L, 16384L, 65536L, 262144L, 1048576L, 4194304L, 16777216L, 67108864L);

    /** How many kinds of call (and of attempt) keep their attribute sets built; more are built per call. */
    private static final int MAX_CACHED_KINDS = 4096;

    private final Tracer tracer;
    /** Whether spans go anywhere: false over a no-op tracer provider, and then no span is started. */
    private final boolean tracing;
    /** Whether metrics go anywhere: false over a no-op meter provider, and then nothing is recorded. */
    private final boolean metering;

    private final boolean attemptSpans;
    private final List<String> tags;
    private final String[] tagNames;
    private final List<AttributeKey<String>> tagKeys;
    /** The key of this listener's state in each call's attributes. */
    private final Object stateKey = new Object();

    private final DoubleHistogram duration;
    private final LongHistogram tokens;
    private final DoubleHistogram timeToFirstChunk;
    private final DoubleCounter cost;
    private final DoubleHistogram coldStartDuration;
    private final LongCounter attempts;
    private final LongCounter spillovers;
    private final LongCounter budgetRefusals;
    private final LongCounter circuitOpenings;
    private final BatchCallback capacity;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Facts.BoundedCache<Facts.CallKey, CallAttributes> callAttributes =
            new Facts.BoundedCache<>(MAX_CACHED_KINDS, this::callAttributes);
    private final Facts.BoundedCache<AttemptKey, Attributes> attemptAttributes =
            new Facts.BoundedCache<>(MAX_CACHED_KINDS, OpenTelemetryListener::attemptAttributes);

    private OpenTelemetryListener(Builder b) {
        OpenTelemetry otel = b.openTelemetry != null ? b.openTelemetry : GlobalOpenTelemetry.get();
        String version = OpenTelemetryListener.class.getPackage().getImplementationVersion();
        TracerBuilder tb = otel.getTracerProvider().tracerBuilder(INSTRUMENTATION_SCOPE);
        MeterBuilder mb = otel.getMeterProvider().meterBuilder(INSTRUMENTATION_SCOPE);
        if (version != null) {
            tb.setInstrumentationVersion(version);
            mb.setInstrumentationVersion(version);
        }
        this.tracer = tb.build();
        Meter meter = mb.build();
        // The no-op providers are singletons (a global instance nobody set hands them out too): over them the
        // listener does nothing per call, rather than build attributes that go nowhere.
        this.tracing = otel.getTracerProvider() != TracerProvider.noop();
        this.metering = otel.getMeterProvider() != MeterProvider.noop();
        this.attemptSpans = b.attemptSpans;
        this.tags = b.tags;
        this.tagNames = b.tags.toArray(new String[0]);
        List<AttributeKey<String>> keys = new ArrayList<>(tagNames.length);
        for (String t : tagNames) {
            keys.add(AttributeKey.stringKey(TAG_PREFIX + t));
        }
        this.tagKeys = List.copyOf(keys);

        this.duration = meter.histogramBuilder("gen_ai.client.operation.duration")
                .setUnit("s")
                .setDescription("GenAI operation duration.")
                .setExplicitBucketBoundariesAdvice(DURATION_BUCKETS)
                .build();
        this.tokens = meter.histogramBuilder("gen_ai.client.token.usage")
                .ofLongs()
                .setUnit("{token}")
                .setDescription("Number of input and output tokens used.")
                .setExplicitBucketBoundariesAdvice(TOKEN_BUCKETS)
                .build();
        this.timeToFirstChunk = meter.histogramBuilder("gen_ai.client.operation.time_to_first_chunk")
                .setUnit("s")
                .setDescription("Time from the request to the first chunk of a streamed response.")
                .setExplicitBucketBoundariesAdvice(DURATION_BUCKETS)
                .build();
        this.cost = meter.counterBuilder(NS + "cost")
                .ofDoubles()
                .setUnit("USD")
                .setDescription("What calls cost, in US dollars (attempts that failed included).")
                .build();
        this.coldStartDuration = meter.histogramBuilder(NS + "cold_start.duration")
                .setUnit("s")
                .setDescription("How long the cold starts calls saw took.")
                .setExplicitBucketBoundariesAdvice(DURATION_BUCKETS)
                .build();
        this.attempts = meter.counterBuilder(NS + "attempts")
                .setUnit("{attempt}")
                .setDescription("Attempts sent to members, by outcome.")
                .build();
        this.spillovers = meter.counterBuilder(NS + "spillovers")
                .setUnit("{call}")
                .setDescription("Calls that spilled over from a full primary to its overflow members.")
                .build();
        this.budgetRefusals = meter.counterBuilder(NS + "budget.refusals")
                .setUnit("{call}")
                .setDescription("Calls that a spent budget refused.")
                .build();
        this.circuitOpenings = meter.counterBuilder(NS + "circuit.openings")
                .setUnit("{opening}")
                .setDescription("Times a member's circuit breaker opened.")
                .build();
        this.capacity = b.ledger == null || b.capacityProviders.isEmpty()
                ? null
                : capacityGauges(meter, b.ledger, b.capacityProviders);
    }

    /** A builder: the global OpenTelemetry, no metric tags, attempt spans, no capacity gauges. */
    public static Builder builder() {
        return new Builder();
    }

    /** The request tags that become metric attributes, in order. */
    public List<String> metricTags() {
        return tags;
    }

    /** Whether each attempt gets a span of its own. */
    public boolean attemptSpans() {
        return attemptSpans;
    }

    /**
     * One callback for the three capacity gauges, so that a collection reads each provider's report once.
     */
    private static BatchCallback capacityGauges(Meter meter, CostLedger ledger, List<String> providers) {
        ObservableDoubleMeasurement billed = meter.gaugeBuilder(NS + "capacity.billed")
                .setUnit("USD")
                .setDescription("What instance-billed capacity has cost since it was registered.")
                .buildObserver();
        ObservableDoubleMeasurement attributed = meter.gaugeBuilder(NS + "capacity.attributed")
                .setUnit("USD")
                .setDescription("The part of the capacity's bill attributed to calls.")
                .buildObserver();
        ObservableDoubleMeasurement idle = meter.gaugeBuilder(NS + "capacity.idle")
                .setUnit("USD")
                .setDescription("The part of the capacity's bill no call used.")
                .buildObserver();
        String[] ids = providers.toArray(new String[0]);
        Attributes[] attributes = new Attributes[ids.length];
        for (int i = 0; i < ids.length; i++) {
            attributes[i] = Attributes.of(PROVIDER_NAME, ids[i]);
        }
        return meter.batchCallback(
                () -> {
                    for (int i = 0; i < ids.length; i++) {
                        Attributes a = attributes[i];
                        ledger.capacity(ids[i]).ifPresent(r -> {
                            billed.record(r.billed().doubleValue(), a);
                            attributed.record(r.attributed().doubleValue(), a);
                            idle.record(r.idle().doubleValue(), a);
                        });
                    }
                },
                billed,
                attributed,
                idle);
    }

    // ---- events ---------------------------------------------------------------------------------------

    @Override
    public void onCallStarted(Call call) {
        if (!tracing) {
            if (metering) {
                call.attributes().put(stateKey, new State(Span.getInvalid(), null));
            }
            return;
        }
        ChatRequest request = call.request();
        String model = request.model().orElse("");
        // Everything known at the start goes on the builder, where a sampler can read it.
        SpanBuilder b = tracer.spanBuilder(model.isEmpty() ? Facts.OPERATION : Facts.OPERATION + " " + model)
                .setSpanKind(SpanKind.CLIENT)
                .setAttribute(OPERATION_NAME, Facts.OPERATION)
                .setAttribute(CALL_ID, call.id())
                .setAttribute(CLIENT_ID, call.clientId())
                .setAttribute(STREAMED, call.streamed());
        if (!model.isEmpty()) {
            b.setAttribute(REQUEST_MODEL, model);
        }
        if (request.maxTokens().isPresent()) {
            b.setAttribute(REQUEST_MAX_TOKENS, (long) request.maxTokens().getAsInt());
        }
        if (request.temperature().isPresent()) {
            b.setAttribute(REQUEST_TEMPERATURE, request.temperature().getAsDouble());
        }
        if (request.topP().isPresent()) {
            b.setAttribute(REQUEST_TOP_P, request.topP().getAsDouble());
        }
        String session = request.options().sessionId().orElse(null);
        if (session != null) {
            b.setAttribute(CONVERSATION_ID, session);
        }
        if (tagNames.length > 0) {
            Map<String, String> requestTags = request.options().tags();
            for (int i = 0; i < tagNames.length; i++) {
                String v = requestTags.get(tagNames[i]);
                if (v != null) {
                    b.setAttribute(tagKeys.get(i), v);
                }
            }
        }
        Span span = b.startSpan();
        call.attributes().put(stateKey, new State(span, Context.current().with(span)));
    }

    @Override
    public void onAttemptStarted(Call call, AttemptStart attempt) {
        if (!tracing || !attemptSpans) {
            return;
        }
        State s = state(call);
        if (s == null) {
            return;
        }
        SpanBuilder b = tracer.spanBuilder("attempt " + attempt.member())
                .setParent(s.context)
                .setSpanKind(SpanKind.INTERNAL)
                .setAttribute(OPERATION_NAME, Facts.OPERATION)
                .setAttribute(MEMBER, attempt.member())
                .setAttribute(ATTEMPT_NUMBER, (long) attempt.number())
                .setAttribute(COLD_PREDICTED, attempt.predictedCold());
        if (!attempt.model().isEmpty()) {
            b.setAttribute(REQUEST_MODEL, attempt.model());
        }
        Span previous = s.attempt;
        if (previous != null) {
            previous.end(); // an attempt whose end was not told (cannot happen in order; never leak a span)
        }
        s.attemptNumber = attempt.number();
        s.attempt = b.startSpan();
    }

    @Override
    public void onAttemptEnded(Call call, AttemptEnd attempt) {
        Receipt r = attempt.receipt();
        InferenceException error = attempt.error();
        String provider = r != null ? r.providerId() : attempt.member();
        String errorType = error == null ? null : Facts.errorType(error);
        if (metering) {
            attempts.add(1, attemptAttributes.get(new AttemptKey(attempt.member(), provider, errorType)));
        }
        if (!tracing) {
            return;
        }
        State s = state(call);
        if (s == null) {
            return;
        }
        Span span = s.attempt;
        if (span == null || s.attemptNumber != attempt.number()) {
            return;
        }
        s.attempt = null;
        if (span.isRecording()) {
            span.setAttribute(PROVIDER_NAME, provider);
            Facts.Server server = error != null ? Facts.server(error, r) : Facts.server(r);
            if (server.known()) {
                span.setAttribute(SERVER_ADDRESS, server.address());
                if (server.port() >= 0) {
                    span.setAttribute(SERVER_PORT, (long) server.port());
                }
            }
            if (r != null) {
                if (error == null && !r.model().isEmpty()) {
                    span.setAttribute(RESPONSE_MODEL, r.model());
                }
                if (r.usage().totalTokens() > 0) {
                    span.setAttribute(INPUT_TOKENS, r.usage().inputTokens());
                    span.setAttribute(OUTPUT_TOKENS, r.usage().outputTokens());
                }
                span.setAttribute(COST, r.cost().doubleValue());
                span.setAttribute(COST_ESTIMATED, r.costEstimated());
                span.setAttribute(COLD_OBSERVED, r.coldStart().observed());
            }
            if (error != null) {
                span.setAttribute(ERROR_TYPE, errorType);
                span.setStatus(StatusCode.ERROR, error.getMessage());
            }
        }
        span.end();
    }

    @Override
    public void onFirstToken(Call call, Duration timeToFirstToken) {
        State s = state(call);
        if (s != null) {
            s.timeToFirstChunk = timeToFirstToken;
        }
    }

    @Override
    public void onSpillover(Call call, String primary, String reason) {
        State s = state(call);
        if (s != null) {
            if (s.spilled) {
                return; // one call spills over once, however many times its route tells it
            }
            s.spilled = true;
            if (s.span.isRecording()) {
                s.span.addEvent(NS + "spillover", Attributes.of(PRIMARY, primary, REASON, reason));
            }
        }
        if (metering) {
            spillovers.add(1, Attributes.of(OPERATION_NAME, Facts.OPERATION, PRIMARY, primary));
        }
    }

    @Override
    public void onBudgetRefused(Call call, BudgetExceededException refusal) {
        State s = state(call);
        if (s != null && s.span.isRecording()) {
            s.span.addEvent(NS + "budget_refused", Attributes.of(REASON, refusal.getMessage()));
        }
        if (!metering) {
            return;
        }
        AttributesBuilder a = Attributes.builder().put(OPERATION_NAME, Facts.OPERATION);
        call.request().model().ifPresent(m -> a.put(REQUEST_MODEL, m));
        Map<String, String> requestTags = call.request().options().tags();
        for (int i = 0; i < tagNames.length; i++) {
            String v = requestTags.get(tagNames[i]);
            if (v != null) {
                a.put(tagKeys.get(i), v);
            }
        }
        budgetRefusals.add(1, a.build());
    }

    @Override
    public void onCircuitChanged(CircuitChange change) {
        if (metering && change.open()) {
            circuitOpenings.add(1, Attributes.of(MEMBER, change.member(), CLIENT_ID, change.clientId()));
        }
    }

    @Override
    public void onCompleted(Call call, Receipt receipt) {
        State s = (State) call.attributes().remove(stateKey);
        if (s == null) {
            return; // nothing is kept over no-op providers
        }
        Facts.Server server = Facts.server(receipt);
        if (metering) {
            CallAttributes a = callAttributes.get(
                    Facts.callKey(call, receipt.providerId(), receipt.model(), server, receipt, null, tagNames));
            duration.record(Facts.seconds(receipt.totalTime()), a.duration);
            recordCommon(a, receipt, s);
        }
        endCall(s, receipt, server, null);
    }

    @Override
    public void onFailed(Call call, InferenceException error) {
        State s = (State) call.attributes().remove(stateKey);
        if (s == null) {
            return;
        }
        Receipt receipt = error.partialReceipt().orElse(null);
        Facts.Server server = Facts.server(error, receipt);
        if (metering) {
            String provider =
                    receipt != null ? receipt.providerId() : error.providerId().orElse(call.clientId());
            CallAttributes a = callAttributes.get(
                    Facts.callKey(call, provider, "", server, receipt, Facts.errorType(error), tagNames));
            Duration total;
            if (receipt != null) {
                total = receipt.totalTime();
            } else {
                Duration since = Duration.between(call.startedAt(), Instant.now());
                total = since.isNegative() ? Duration.ZERO : since;
            }
            duration.record(Facts.seconds(total), a.duration);
            if (receipt != null) {
                recordCommon(a, receipt, s);
            } else if (s.timeToFirstChunk != null) {
                timeToFirstChunk.record(Facts.seconds(s.timeToFirstChunk), a.genAi);
            }
        }
        endCall(s, receipt, server, error);
    }

    /** Tokens, time to first chunk, cost and cold start: the recordings a success and a failure share. */
    private void recordCommon(CallAttributes a, Receipt receipt, State s) {
        if (receipt.usage().totalTokens() > 0) {
            tokens.record(receipt.usage().inputTokens(), a.tokensIn);
            tokens.record(receipt.usage().outputTokens(), a.tokensOut);
        }
        Duration ttfc = s.timeToFirstChunk != null
                ? s.timeToFirstChunk
                : receipt.timeToFirstToken().orElse(null);
        if (ttfc != null) {
            timeToFirstChunk.record(Facts.seconds(ttfc), a.genAi);
        }
        if (receipt.cost().signum() > 0) {
            cost.add(receipt.cost().doubleValue(), a.cost);
        }
        if (receipt.coldStart().observed() && receipt.coldStart().duration().isPresent()) {
            coldStartDuration.record(
                    Facts.seconds(receipt.coldStart().duration().get()), a.coldStart);
        }
    }

    /** Builds the attribute sets of one kind of call (see {@link CallAttributes}). */
    private CallAttributes callAttributes(Facts.CallKey k) {
        AttributesBuilder b =
                Attributes.builder().put(OPERATION_NAME, Facts.OPERATION).put(PROVIDER_NAME, k.provider());
        if (k.requestModel() != null) {
            b.put(REQUEST_MODEL, k.requestModel());
        }
        if (k.responseModel() != null) {
            b.put(RESPONSE_MODEL, k.responseModel());
        }
        if (k.server().known()) {
            b.put(SERVER_ADDRESS, k.server().address());
            if (k.server().port() >= 0) {
                b.put(SERVER_PORT, (long) k.server().port());
            }
        }
        for (int i = 0; i < tagNames.length; i++) {
            String v = k.tagValues().get(i);
            if (v != null) {
                b.put(tagKeys.get(i), v);
            }
        }
        Attributes genAi = b.build();
        AttributesBuilder d = genAi.toBuilder();
        AttributesBuilder c = genAi.toBuilder();
        AttributesBuilder cold = genAi.toBuilder();
        if (k.errorType() != null) {
            d.put(ERROR_TYPE, k.errorType());
        }
        if (k.kind() != null) {
            String kind = Facts.kind(k.kind());
            d.put(DEPLOYMENT_KIND, kind)
                    .put(SPILLED_OVER, k.has(Facts.CallKey.SPILLED))
                    .put(FELL_BACK, k.has(Facts.CallKey.FELL_BACK))
                    .put(COLD_OBSERVED, k.has(Facts.CallKey.COLD_OBSERVED));
            if (k.tier() != null) {
                d.put(TIER, k.tier());
            }
            c.put(DEPLOYMENT_KIND, kind).put(COST_ESTIMATED, k.has(Facts.CallKey.COST_ESTIMATED));
            cold.put(DEPLOYMENT_KIND, kind);
        }
        return new CallAttributes(
                genAi,
                d.build(),
                genAi.toBuilder().put(TOKEN_TYPE, "input").build(),
                genAi.toBuilder().put(TOKEN_TYPE, "output").build(),
                c.build(),
                cold.build());
    }

    private static Attributes attemptAttributes(AttemptKey k) {
        AttributesBuilder b = Attributes.builder()
                .put(OPERATION_NAME, Facts.OPERATION)
                .put(MEMBER, k.member())
                .put(PROVIDER_NAME, k.provider())
                .put(ATTEMPT_OUTCOME, k.errorType() == null ? "succeeded" : "failed");
        if (k.errorType() != null) {
            b.put(ERROR_TYPE, k.errorType());
        }
        return b.build();
    }

    /** Completes the call's span from its receipt (partial for a failure) and ends it. */
    private void endCall(State s, Receipt receipt, Facts.Server server, InferenceException error) {
        Span open = s.attempt;
        if (open != null) {
            s.attempt = null;
            open.end();
        }
        Span span = s.span;
        if (!span.isRecording()) {
            span.end();
            return;
        }
        if (receipt != null) {
            span.setAttribute(PROVIDER_NAME, receipt.providerId());
            if (error == null && !receipt.model().isEmpty()) {
                span.setAttribute(RESPONSE_MODEL, receipt.model());
            }
            if (receipt.usage().totalTokens() > 0) {
                span.setAttribute(INPUT_TOKENS, receipt.usage().inputTokens());
                span.setAttribute(OUTPUT_TOKENS, receipt.usage().outputTokens());
            }
            RouteFacts route = receipt.routeFacts();
            span.setAttribute(DEPLOYMENT_KIND, Facts.kind(receipt.deploymentKind()));
            route.tier().ifPresent(t -> span.setAttribute(TIER, t));
            span.setAttribute(SPILLED_OVER, route.spilledOver() || s.spilled);
            span.setAttribute(FELL_BACK, route.fellBack());
            span.setAttribute(COLD_PREDICTED, receipt.coldStart().predicted());
            span.setAttribute(COLD_OBSERVED, receipt.coldStart().observed());
            receipt.coldStart().duration().ifPresent(d -> span.setAttribute(COLD_DURATION, Facts.seconds(d)));
            span.setAttribute(ATTEMPTS, (long) Facts.attemptsSent(receipt));
            span.setAttribute(COST, receipt.cost().doubleValue());
            span.setAttribute(COST_ESTIMATED, receipt.costEstimated());
        } else if (error != null) {
            error.providerId().ifPresent(p -> span.setAttribute(PROVIDER_NAME, p));
        }
        if (server.known()) {
            span.setAttribute(SERVER_ADDRESS, server.address());
            if (server.port() >= 0) {
                span.setAttribute(SERVER_PORT, (long) server.port());
            }
        }
        Duration ttfc = s.timeToFirstChunk;
        if (ttfc != null) {
            span.setAttribute(TIME_TO_FIRST_CHUNK, Facts.seconds(ttfc));
        }
        if (error != null) {
            span.setAttribute(ERROR_TYPE, Facts.errorType(error));
            span.setStatus(StatusCode.ERROR, error.getMessage());
        }
        span.end();
    }

    private State state(Call call) {
        return (State) call.attributes().get(stateKey);
    }

    /** Removes the capacity gauges' callback; calls after it are still traced and metered. Idempotent. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true) && capacity != null) {
            capacity.close();
        }
    }

    /**
     * The attribute sets of one kind of call: the GenAI ones with the allow-listed tags ({@code genAi}, also
     * those of the time to first chunk), and those of the duration, the two token counts, the cost and the
     * cold start.
     */
    private record CallAttributes(
            Attributes genAi,
            Attributes duration,
            Attributes tokensIn,
            Attributes tokensOut,
            Attributes cost,
            Attributes coldStart) {}

    /** What an attempt's counter attributes depend on; {@code errorType} null for one that succeeded. */
    private record AttemptKey(String member, String provider, String errorType) {}

    /** What this listener keeps across one call's events, in the call's attributes. */
    private static final class State {
        /** The call's span; the invalid span when nothing is traced. */
        final Span span;
        /** The context with the call's span, the parent of its attempts' spans; null when nothing is traced. */
        final Context context;

        volatile Span attempt;
        volatile int attemptNumber;
        volatile Duration timeToFirstChunk;
        volatile boolean spilled;

        State(Span span, Context context) {
            this.span = span;
            this.context = context;
        }
    }

    /** Builds an {@link OpenTelemetryListener}. Not thread-safe. */
    public static final class Builder {
        private OpenTelemetry openTelemetry;
        private List<String> tags = List.of();
        private boolean attemptSpans = true;
        private CostLedger ledger;
        private List<String> capacityProviders = List.of();

        private Builder() {}

        /**
         * The OpenTelemetry to record to. Unset, the listener takes {@link GlobalOpenTelemetry#get()} when it is
         * built: a no-op unless the application installed an SDK before (that call also fixes the global
         * instance, so install the SDK first).
         */
        public Builder openTelemetry(OpenTelemetry openTelemetry) {
            this.openTelemetry = Objects.requireNonNull(openTelemetry, "openTelemetry");
            return this;
        }

        /**
         * The request tags ({@link dev.hybridinference.core.RequestOptions#tags()}) that become attributes of
         * the per-call metrics and spans, as {@code hybrid_inference.tag.<name>}; none by default. List only
         * tags with few values (tenant, feature): each value is a series of every metric.
         *
         * @throws IllegalArgumentException for a name that is blank, too long, of other characters than
         *     letters, digits, {@code .}, {@code _} and {@code -}, or listed twice
         */
        public Builder metricTags(Collection<String> tags) {
            this.tags = Facts.checkTags(Objects.requireNonNull(tags, "tags"));
            return this;
        }

        /** The request tags that become metric attributes; see {@link #metricTags(Collection)}. */
        public Builder metricTags(String... tags) {
            return metricTags(List.of(tags));
        }

        /** Whether each attempt gets a span, a child of the call's; true by default. */
        public Builder attemptSpans(boolean attemptSpans) {
            this.attemptSpans = attemptSpans;
            return this;
        }

        /**
         * Adds the capacity gauges of {@code providerIds}, read from {@code ledger} ({@link
         * CostLedger#capacity}) whenever metrics are collected; a provider the ledger has no capacity for has no
         * value.
         */
        public Builder capacity(CostLedger ledger, Collection<String> providerIds) {
            this.ledger = Objects.requireNonNull(ledger, "ledger");
            this.capacityProviders = Facts.checkProviders(providerIds);
            return this;
        }

        /** The listener, its instruments created. */
        public OpenTelemetryListener build() {
            return new OpenTelemetryListener(this);
        }
    }
}
