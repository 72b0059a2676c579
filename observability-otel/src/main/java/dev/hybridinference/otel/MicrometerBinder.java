package dev.hybridinference.otel;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

/**
 * The figures of {@link OpenTelemetryListener}'s metrics, as Micrometer meters: register it as a listener of
 * a composite client and bind it to a registry ({@link #bindTo}, which a framework that collects {@link
 * MeterBinder}s does for you), or name it in a configuration as {@code {type: micrometer}} (see {@link
 * MicrometerListenerFactory}, which binds it to {@link io.micrometer.core.instrument.Metrics#globalRegistry}).
 *
 * <p>Meters, by the names the OpenTelemetry listener uses (a Prometheus registry writes them with
 * underscores and unit suffixes, as {@code gen_ai_client_operation_duration_seconds}):
 *
 * <ul>
 *   <li>timer {@code gen_ai.client.operation.duration}: every call;
 *   <li>distribution summary {@code gen_ai.client.token.usage} (tokens), tagged {@code gen_ai.token.type}
 *       {@code input} or {@code output};
 *   <li>timer {@code gen_ai.client.operation.time_to_first_chunk}: streamed calls that received a chunk;
 *   <li>counter {@code hybrid_inference.cost} (usd), with {@code hybrid_inference.cost_estimated};
 *   <li>timer {@code hybrid_inference.cold_start.duration}: cold starts of known duration;
 *   <li>counters {@code hybrid_inference.attempts} (by {@code hybrid_inference.member} and {@code
 *       hybrid_inference.attempt.outcome}), {@code hybrid_inference.spillovers} (by {@code
 *       hybrid_inference.primary}), {@code hybrid_inference.budget.refusals} and {@code
 *       hybrid_inference.circuit.openings} (by {@code hybrid_inference.member});
 *   <li>with {@link Builder#capacity}, gauges {@code hybrid_inference.capacity.billed}, {@code .attributed}
 *       and {@code .idle} (usd), by {@code gen_ai.provider.name}.
 * </ul>
 *
 * <p>Tags are low-cardinality only: {@code gen_ai.operation.name}, {@code gen_ai.provider.name}, {@code
 * gen_ai.request.model}, {@code gen_ai.response.model}, {@code server.address}, {@code server.port}, {@code
 * error.type}, {@code hybrid_inference.deployment_kind}, {@code .tier}, {@code .spilled_over}, {@code
 * .fell_back}, {@code .cold_start.observed} (on the duration timer) and the allow-listed request tags as
 * {@code hybrid_inference.tag.<name>}; never a session id, a call id, a prompt or a tag that is not listed.
 * Every meter of one name has the same tag keys (registries such as Prometheus's require it): a value that
 * does not apply is {@code none}. Amounts are doubles here; the exact figures are on receipts and in the
 * ledger.
 *
 * <p>Thread-safe. Events before it is bound to a registry are not counted. {@link #close()} removes the
 * capacity gauges from the registries it was bound to.
 */
public final class MicrometerBinder implements MeterBinder, InferenceListener, AutoCloseable {
    /** The value of a tag that does not apply to a call (no error, no tier, an unset request tag). */
    public static final String NONE = "none";

    private static final String OPERATION_NAME = "gen_ai.operation.name";
    private static final String PROVIDER_NAME = "gen_ai.provider.name";
    private static final String REQUEST_MODEL = "gen_ai.request.model";
    private static final String RESPONSE_MODEL = "gen_ai.response.model";
    private static final String SERVER_ADDRESS = "server.address";
    private static final String SERVER_PORT = "server.port";
    private static final String ERROR_TYPE = "error.type";
    private static final String TOKEN_TYPE = "gen_ai.token.type";
    private static final String NS = OpenTelemetryListener.NS;

    private static final Tag CHAT = Tag.of(OPERATION_NAME, Facts.OPERATION);
    private static final Tag INPUT = Tag.of(TOKEN_TYPE, "input");
    private static final Tag OUTPUT = Tag.of(TOKEN_TYPE, "output");

    private final List<String> tags;
    private final String[] tagNames;
    private final String[] tagKeys;
    private final CostLedger ledger;
    private final List<String> capacityProviders;
    private final List<MeterRegistry> registries = new CopyOnWriteArrayList<>();
    private final List<Gauge> gauges = new CopyOnWriteArrayList<>();
    /** Keys of this binder's state in each call's attributes. */
    private final Object firstChunkKey = new Object();

    private final Object spilledKey = new Object();

    private MicrometerBinder(Builder b) {
        this.tags = b.tags;
        this.tagNames = b.tags.toArray(new String[0]);
        this.tagKeys = new String[tagNames.length];
        for (int i = 0; i < tagNames.length; i++) {
            tagKeys[i] = OpenTelemetryListener.TAG_PREFIX + tagNames[i];
        }
        this.ledger = b.ledger;
        this.capacityProviders = b.capacityProviders;
    }

    /** A builder: no metric tags, no capacity gauges. */
    public static Builder builder() {
        return new Builder();
    }

    /** The request tags that become meter tags, in order. */
    public List<String> metricTags() {
        return tags;
    }

    /**
     * Counts this binder's figures in {@code registry} too, from now on, and registers its capacity gauges
     * there.
     */
    @Override
    public void bindTo(MeterRegistry registry) {
        Objects.requireNonNull(registry, "registry");
        if (registries.contains(registry)) {
            return;
        }
        registries.add(registry);
        if (ledger == null) {
            return;
        }
        for (String id : capacityProviders) {
            gauges.add(
                    capacityGauge(registry, "billed", "What instance-billed capacity has cost.", id, r -> r.billed()));
            gauges.add(capacityGauge(
                    registry,
                    "attributed",
                    "The part of the capacity's bill attributed to calls.",
                    id,
                    r -> r.attributed()));
            gauges.add(capacityGauge(
                    registry, "idle", "The part of the capacity's bill no call used.", id, r -> r.idle()));
        }
    }

    private Gauge capacityGauge(
            MeterRegistry registry,
            String part,
            String description,
            String providerId,
            Function<CapacityReport, BigDecimal> figure) {
        CostLedger l = ledger;
        return Gauge.builder(
                        NS + "capacity." + part,
                        l,
                        x -> x.capacity(providerId)
                                .map(r -> figure.apply(r).doubleValue())
                                .orElse(Double.NaN))
                .description(description)
                .baseUnit("usd")
                .tag(PROVIDER_NAME, providerId)
                .strongReference(true)
                .register(registry);
    }

    // ---- events ---------------------------------------------------------------------------------------

    @Override
    public void onAttemptEnded(Call call, AttemptEnd attempt) {
        if (registries.isEmpty()) {
            return;
        }
        Receipt r = attempt.receipt();
        Tags t = Tags.of(
                CHAT,
                Tag.of(NS + "member", attempt.member()),
                Tag.of(PROVIDER_NAME, r != null ? r.providerId() : attempt.member()),
                Tag.of(NS + "attempt.outcome", attempt.succeeded() ? "succeeded" : "failed"),
                Tag.of(ERROR_TYPE, attempt.succeeded() ? NONE : Facts.errorType(attempt.error())));
        for (MeterRegistry registry : registries) {
            Counter.builder(NS + "attempts")
                    .description("Attempts sent to members, by outcome.")
                    .tags(t)
                    .register(registry)
                    .increment();
        }
    }

    @Override
    public void onFirstToken(Call call, Duration timeToFirstToken) {
        call.attributes().put(firstChunkKey, timeToFirstToken);
    }

    @Override
    public void onSpillover(Call call, String primary, String reason) {
        if (registries.isEmpty() || call.attributes().putIfAbsent(spilledKey, Boolean.TRUE) != null) {
            return;
        }
        Tags t = Tags.of(CHAT, Tag.of(NS + "primary", primary));
        for (MeterRegistry registry : registries) {
            Counter.builder(NS + "spillovers")
                    .description("Calls that spilled over from a full primary to its overflow members.")
                    .tags(t)
                    .register(registry)
                    .increment();
        }
    }

    @Override
    public void onBudgetRefused(Call call, BudgetExceededException refusal) {
        if (registries.isEmpty()) {
            return;
        }
        List<Tag> t = new ArrayList<>(2 + tagNames.length);
        t.add(CHAT);
        t.add(Tag.of(REQUEST_MODEL, call.request().model().orElse(NONE)));
        addTags(t, call);
        Tags all = Tags.of(t);
        for (MeterRegistry registry : registries) {
            Counter.builder(NS + "budget.refusals")
                    .description("Calls that a spent budget refused.")
                    .tags(all)
                    .register(registry)
                    .increment();
        }
    }

    @Override
    public void onCircuitChanged(CircuitChange change) {
        if (registries.isEmpty() || !change.open()) {
            return;
        }
        Tags t = Tags.of(Tag.of(NS + "member", change.member()), Tag.of(NS + "client.id", change.clientId()));
        for (MeterRegistry registry : registries) {
            Counter.builder(NS + "circuit.openings")
                    .description("Times a member's circuit breaker opened.")
                    .tags(t)
                    .register(registry)
                    .increment();
        }
    }

    @Override
    public void onCompleted(Call call, Receipt receipt) {
        Duration firstChunk = (Duration) call.attributes().remove(firstChunkKey);
        if (registries.isEmpty()) {
            return;
        }
        record(
                call,
                receipt,
                receipt.providerId(),
                receipt.model(),
                Facts.server(receipt),
                NONE,
                firstChunk,
                receipt.totalTime());
    }

    @Override
    public void onFailed(Call call, InferenceException error) {
        Duration firstChunk = (Duration) call.attributes().remove(firstChunkKey);
        if (registries.isEmpty()) {
            return;
        }
        Receipt receipt = error.partialReceipt().orElse(null);
        String provider =
                receipt != null ? receipt.providerId() : error.providerId().orElse(call.clientId());
        Duration total;
        if (receipt != null) {
            total = receipt.totalTime();
        } else {
            Duration since = Duration.between(call.startedAt(), Instant.now());
            total = since.isNegative() ? Duration.ZERO : since;
        }
        record(call, receipt, provider, "", Facts.server(error, receipt), Facts.errorType(error), firstChunk, total);
    }

    /**
     * Records one call's figures in every registry.
     *
     * @param receipt the whole call's receipt (partial for a failure), or null when a failure has none
     * @param responseModel the model that answered, empty for none
     */
    private void record(
            Call call,
            Receipt receipt,
            String provider,
            String responseModel,
            Facts.Server server,
            String errorType,
            Duration firstChunk,
            Duration total) {
        List<Tag> common = new ArrayList<>(6 + tagNames.length);
        common.add(CHAT);
        common.add(Tag.of(PROVIDER_NAME, provider));
        common.add(Tag.of(REQUEST_MODEL, call.request().model().orElse(NONE)));
        common.add(Tag.of(RESPONSE_MODEL, responseModel.isEmpty() ? NONE : responseModel));
        common.add(Tag.of(SERVER_ADDRESS, server.known() ? server.address() : NONE));
        common.add(Tag.of(SERVER_PORT, server.port() >= 0 ? Integer.toString(server.port()) : NONE));
        addTags(common, call);
        Tags genAi = Tags.of(common);
        String kind = receipt == null ? NONE : Facts.kind(receipt.deploymentKind());
        RouteFacts route = receipt == null ? RouteFacts.NONE : receipt.routeFacts();
        Tags durationTags = genAi.and(
                Tag.of(ERROR_TYPE, errorType),
                Tag.of(NS + "deployment_kind", kind),
                Tag.of(NS + "tier", route.tier().orElse(NONE)),
                Tag.of(NS + "spilled_over", Boolean.toString(route.spilledOver())),
                Tag.of(NS + "fell_back", Boolean.toString(route.fellBack())),
                Tag.of(
                        NS + "cold_start.observed",
                        Boolean.toString(receipt != null && receipt.coldStart().observed())));
        Duration ttfc = firstChunk != null
                ? firstChunk
                : receipt == null ? null : receipt.timeToFirstToken().orElse(null);
        for (MeterRegistry registry : registries) {
            Timer.builder("gen_ai.client.operation.duration")
                    .description("GenAI operation duration.")
                    .tags(durationTags)
                    .register(registry)
                    .record(total);
            if (ttfc != null) {
                Timer.builder("gen_ai.client.operation.time_to_first_chunk")
                        .description("Time from the request to the first chunk of a streamed response.")
                        .tags(genAi)
                        .register(registry)
                        .record(ttfc);
            }
            if (receipt == null) {
                continue;
            }
            if (receipt.usage().totalTokens() > 0) {
                tokens(registry, genAi.and(INPUT)).record(receipt.usage().inputTokens());
                tokens(registry, genAi.and(OUTPUT)).record(receipt.usage().outputTokens());
            }
            if (receipt.cost().signum() > 0) {
                Counter.builder(NS + "cost")
                        .description("What calls cost, in US dollars (attempts that failed included).")
                        .baseUnit("usd")
                        .tags(genAi.and(
                                Tag.of(NS + "deployment_kind", kind),
                                Tag.of(NS + "cost_estimated", Boolean.toString(receipt.costEstimated()))))
                        .register(registry)
                        .increment(receipt.cost().doubleValue());
            }
            if (receipt.coldStart().observed() && receipt.coldStart().duration().isPresent()) {
                Timer.builder(NS + "cold_start.duration")
                        .description("How long the cold starts calls saw took.")
                        .tags(genAi.and(NS + "deployment_kind", kind))
                        .register(registry)
                        .record(receipt.coldStart().duration().get());
            }
        }
    }

    private static DistributionSummary tokens(MeterRegistry registry, Tags tags) {
        return DistributionSummary.builder("gen_ai.client.token.usage")
                .description("Number of input and output tokens used.")
                .baseUnit("tokens")
                .tags(tags)
                .register(registry);
    }

    private void addTags(List<Tag> out, Call call) {
        if (tagNames.length == 0) {
            return;
        }
        Map<String, String> requestTags = call.request().options().tags();
        for (int i = 0; i < tagNames.length; i++) {
            String v = requestTags.get(tagNames[i]);
            out.add(Tag.of(tagKeys[i], v == null || v.isEmpty() ? NONE : v));
        }
    }

    /** Removes the capacity gauges from the registries this binder was bound to. Idempotent. */
    @Override
    public void close() {
        for (Gauge g : gauges) {
            for (MeterRegistry registry : registries) {
                Meter removed = registry.remove(g);
                if (removed != null) {
                    break;
                }
            }
        }
        gauges.clear();
    }

    /** Builds a {@link MicrometerBinder}. Not thread-safe. */
    public static final class Builder {
        private List<String> tags = List.of();
        private CostLedger ledger;
        private List<String> capacityProviders = List.of();

        private Builder() {}

        /**
         * The request tags that become meter tags, as {@code hybrid_inference.tag.<name>}; none by default. See
         * {@link OpenTelemetryListener.Builder#metricTags(Collection)} for the rules.
         *
         * @throws IllegalArgumentException for a name that is blank, too long, of other characters, or listed
         *     twice
         */
        public Builder metricTags(Collection<String> tags) {
            this.tags = Facts.checkTags(Objects.requireNonNull(tags, "tags"));
            return this;
        }

        /** The request tags that become meter tags; see {@link #metricTags(Collection)}. */
        public Builder metricTags(String... tags) {
            return metricTags(List.of(tags));
        }

        /** Adds capacity gauges of {@code providerIds}, read from {@code ledger} when the registry reads them. */
        public Builder capacity(CostLedger ledger, Collection<String> providerIds) {
            this.ledger = Objects.requireNonNull(ledger, "ledger");
            this.capacityProviders = Facts.checkProviders(providerIds);
            return this;
        }

        /** The binder, not yet bound to a registry. */
        public MicrometerBinder build() {
            return new MicrometerBinder(this);
        }
    }
}
