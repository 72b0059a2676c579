package dev.hybridinference.otel;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
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
 * <p>Thread-safe. Events before it is bound to a registry are not counted. The meters of each kind of call
 * are looked up once and kept (for at most a few thousand kinds), so a call costs the recordings, not the
 * registry's lookups; a meter removed from a registry by hand is therefore still recorded to by this binder.
 * {@link #close()} removes the capacity gauges from the registries it was bound to.
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

    private static final String DURATION = "gen_ai.client.operation.duration";
    private static final String TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk";
    private static final String TOKEN_USAGE = "gen_ai.client.token.usage";

    private static final Tag CHAT = Tag.of(OPERATION_NAME, Facts.OPERATION);

    /** How many kinds of call (and of attempt) keep their meters; more are looked up per call. */
    private static final int MAX_CACHED_KINDS = 4096;

    private final List<String> tags;
    private final String[] tagNames;
    private final String[] tagKeys;
    private final CostLedger ledger;
    private final List<String> capacityProviders;
    private final List<Bound> bound = new CopyOnWriteArrayList<>();
    private final List<Gauge> gauges = new CopyOnWriteArrayList<>();
    private final Facts.BoundedCache<Facts.CallKey, CallTags> callTags =
            new Facts.BoundedCache<>(MAX_CACHED_KINDS, this::callTags);
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
     * there. Binding the same registry again does nothing.
     */
    @Override
    public synchronized void bindTo(MeterRegistry registry) {
        Objects.requireNonNull(registry, "registry");
        for (Bound b : bound) {
            if (b.registry == registry) {
                return;
            }
        }
        bound.add(new Bound(registry, callTags::get));
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
        return Gauge.builder(
                        NS + "capacity." + part,
                        ledger,
                        l -> l.capacity(providerId)
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
        if (bound.isEmpty()) {
            return;
        }
        Receipt r = attempt.receipt();
        AttemptKey key = new AttemptKey(
                attempt.member(),
                r != null ? r.providerId() : attempt.member(),
                attempt.succeeded() ? null : Facts.errorType(attempt.error()));
        for (Bound b : bound) {
            b.attempts.get(key).increment();
        }
    }

    @Override
    public void onFirstToken(Call call, Duration timeToFirstToken) {
        call.attributes().put(firstChunkKey, timeToFirstToken);
    }

    @Override
    public void onSpillover(Call call, String primary, String reason) {
        if (bound.isEmpty() || call.attributes().putIfAbsent(spilledKey, Boolean.TRUE) != null) {
            return;
        }
        Tags t = Tags.of(CHAT, Tag.of(NS + "primary", primary));
        for (Bound b : bound) {
            Counter.builder(NS + "spillovers")
                    .description("Calls that spilled over from a full primary to its overflow members.")
                    .tags(t)
                    .register(b.registry)
                    .increment();
        }
    }

    @Override
    public void onBudgetRefused(Call call, BudgetExceededException refusal) {
        if (bound.isEmpty()) {
            return;
        }
        List<Tag> t = new ArrayList<>(2 + tagNames.length);
        t.add(CHAT);
        t.add(Tag.of(REQUEST_MODEL, call.request().model().orElse(NONE)));
        List<String> values = Facts.tagValues(call, tagNames);
        for (int i = 0; i < tagNames.length; i++) {
            t.add(Tag.of(tagKeys[i], orNone(values.get(i))));
        }
        Tags all = Tags.of(t);
        for (Bound b : bound) {
            Counter.builder(NS + "budget.refusals")
                    .description("Calls that a spent budget refused.")
                    .tags(all)
                    .register(b.registry)
                    .increment();
        }
    }

    @Override
    public void onCircuitChanged(CircuitChange change) {
        if (bound.isEmpty() || !change.open()) {
            return;
        }
        Tags t = Tags.of(Tag.of(NS + "member", change.member()), Tag.of(NS + "client.id", change.clientId()));
        for (Bound b : bound) {
            Counter.builder(NS + "circuit.openings")
                    .description("Times a member's circuit breaker opened.")
                    .tags(t)
                    .register(b.registry)
                    .increment();
        }
    }

    @Override
    public void onCompleted(Call call, Receipt receipt) {
        Duration firstChunk = (Duration) call.attributes().remove(firstChunkKey);
        if (bound.isEmpty()) {
            return;
        }
        Facts.CallKey key = Facts.callKey(
                call, receipt.providerId(), receipt.model(), Facts.server(receipt), receipt, null, tagNames);
        record(key, receipt, firstChunk, receipt.totalTime());
    }

    @Override
    public void onFailed(Call call, InferenceException error) {
        Duration firstChunk = (Duration) call.attributes().remove(firstChunkKey);
        if (bound.isEmpty()) {
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
        Facts.CallKey key = Facts.callKey(
                call, provider, "", Facts.server(error, receipt), receipt, Facts.errorType(error), tagNames);
        record(key, receipt, firstChunk, total);
    }

    /**
     * Records one call's figures in every registry.
     *
     * @param receipt the whole call's receipt (partial for a failure), or null when a failure has none
     */
    private void record(Facts.CallKey key, Receipt receipt, Duration firstChunk, Duration total) {
        Duration ttfc = firstChunk != null
                ? firstChunk
                : receipt == null ? null : receipt.timeToFirstToken().orElse(null);
        for (Bound b : bound) {
            CallMeters m = b.calls.get(key);
            m.duration.record(total);
            if (ttfc != null) {
                m.timeToFirstChunk().record(ttfc);
            }
            if (receipt == null) {
                continue;
            }
            if (receipt.usage().totalTokens() > 0) {
                m.tokensIn().record(receipt.usage().inputTokens());
                m.tokensOut().record(receipt.usage().outputTokens());
            }
            if (receipt.cost().signum() > 0) {
                m.cost().increment(receipt.cost().doubleValue());
            }
            if (receipt.coldStart().observed() && receipt.coldStart().duration().isPresent()) {
                m.coldStart().record(receipt.coldStart().duration().get());
            }
        }
    }

    /** Builds the tags of one kind of call (see {@link CallTags}). */
    private CallTags callTags(Facts.CallKey k) {
        List<Tag> common = new ArrayList<>(6 + tagNames.length);
        common.add(CHAT);
        common.add(Tag.of(PROVIDER_NAME, k.provider()));
        common.add(Tag.of(REQUEST_MODEL, orNone(k.requestModel())));
        common.add(Tag.of(RESPONSE_MODEL, orNone(k.responseModel())));
        common.add(Tag.of(SERVER_ADDRESS, k.server().known() ? k.server().address() : NONE));
        common.add(Tag.of(
                SERVER_PORT,
                k.server().port() >= 0 ? Integer.toString(k.server().port()) : NONE));
        for (int i = 0; i < tagNames.length; i++) {
            common.add(Tag.of(tagKeys[i], orNone(k.tagValues().get(i))));
        }
        Tags genAi = Tags.of(common);
        String kind = k.kind() == null ? NONE : Facts.kind(k.kind());
        Tags duration = genAi.and(
                Tag.of(ERROR_TYPE, k.errorType() == null ? NONE : k.errorType()),
                Tag.of(NS + "deployment_kind", kind),
                Tag.of(NS + "tier", orNone(k.tier())),
                Tag.of(NS + "spilled_over", Boolean.toString(k.has(Facts.CallKey.SPILLED))),
                Tag.of(NS + "fell_back", Boolean.toString(k.has(Facts.CallKey.FELL_BACK))),
                Tag.of(NS + "cold_start.observed", Boolean.toString(k.has(Facts.CallKey.COLD_OBSERVED))));
        return new CallTags(
                genAi,
                duration,
                genAi.and(TOKEN_TYPE, "input"),
                genAi.and(TOKEN_TYPE, "output"),
                genAi.and(
                        Tag.of(NS + "deployment_kind", kind),
                        Tag.of(NS + "cost_estimated", Boolean.toString(k.has(Facts.CallKey.COST_ESTIMATED)))),
                genAi.and(NS + "deployment_kind", kind));
    }

    private static String orNone(String v) {
        return v == null || v.isEmpty() ? NONE : v;
    }

    /** Removes the capacity gauges from the registries this binder was bound to. Idempotent. */
    @Override
    public synchronized void close() {
        for (Gauge g : gauges) {
            for (Bound b : bound) {
                if (b.registry.remove(g) != null) {
                    break;
                }
            }
        }
        gauges.clear();
    }

    /** The tags of one kind of call's meters, shared by every registry. */
    private record CallTags(Tags genAi, Tags duration, Tags tokensIn, Tags tokensOut, Tags cost, Tags coldStart) {}

    /** What an attempt's counter tags depend on; {@code errorType} null for one that succeeded. */
    private record AttemptKey(String member, String provider, String errorType) {}

    /** A registry this binder is bound to, with the meters it looked up there. */
    private static final class Bound {
        final MeterRegistry registry;
        final Facts.BoundedCache<Facts.CallKey, CallMeters> calls;
        final Facts.BoundedCache<AttemptKey, Counter> attempts;

        Bound(MeterRegistry registry, Function<Facts.CallKey, CallTags> tags) {
            this.registry = registry;
            this.calls = new Facts.BoundedCache<>(MAX_CACHED_KINDS, k -> new CallMeters(registry, tags.apply(k)));
            this.attempts = new Facts.BoundedCache<>(
                    MAX_CACHED_KINDS,
                    k -> Counter.builder(NS + "attempts")
                            .description("Attempts sent to members, by outcome.")
                            .tags(Tags.of(
                                    CHAT,
                                    Tag.of(NS + "member", k.member()),
                                    Tag.of(PROVIDER_NAME, k.provider()),
                                    Tag.of(NS + "attempt.outcome", k.errorType() == null ? "succeeded" : "failed"),
                                    Tag.of(ERROR_TYPE, k.errorType() == null ? NONE : k.errorType())))
                            .register(registry));
        }
    }

    /**
     * One kind of call's meters in one registry: the duration timer at once, the others when first recorded
     * (so that a kind of call that never streams has no time-to-first-chunk timer, for instance).
     */
    private static final class CallMeters {
        private final MeterRegistry registry;
        private final CallTags tags;
        final Timer duration;
        private volatile Timer timeToFirstChunk;
        private volatile DistributionSummary tokensIn;
        private volatile DistributionSummary tokensOut;
        private volatile Counter cost;
        private volatile Timer coldStart;

        CallMeters(MeterRegistry registry, CallTags tags) {
            this.registry = registry;
            this.tags = tags;
            this.duration = Timer.builder(DURATION)
                    .description("GenAI operation duration.")
                    .tags(tags.duration())
                    .register(registry);
        }

        // A race registers the same meter twice; the registry hands back the one it holds.
        Timer timeToFirstChunk() {
            Timer t = timeToFirstChunk;
            if (t == null) {
                t = Timer.builder(TIME_TO_FIRST_CHUNK)
                        .description("Time from the request to the first chunk of a streamed response.")
                        .tags(tags.genAi())
                        .register(registry);
                timeToFirstChunk = t;
            }
            return t;
        }

        DistributionSummary tokensIn() {
            DistributionSummary s = tokensIn;
            if (s == null) {
                s = tokens(tags.tokensIn());
                tokensIn = s;
            }
            return s;
        }

        DistributionSummary tokensOut() {
            DistributionSummary s = tokensOut;
            if (s == null) {
                s = tokens(tags.tokensOut());
                tokensOut = s;
            }
            return s;
        }

        private DistributionSummary tokens(Tags t) {
            return DistributionSummary.builder(TOKEN_USAGE)
                    .description("Number of input and output tokens used.")
                    .baseUnit("tokens")
                    .tags(t)
                    .register(registry);
        }

        Counter cost() {
            Counter c = cost;
            if (c == null) {
                c = Counter.builder(NS + "cost")
                        .description("What calls cost, in US dollars (attempts that failed included).")
                        .baseUnit("usd")
                        .tags(tags.cost())
                        .register(registry);
                cost = c;
            }
            return c;
        }

        Timer coldStart() {
            Timer t = coldStart;
            if (t == null) {
                t = Timer.builder(NS + "cold_start.duration")
                        .description("How long the cold starts calls saw took.")
                        .tags(tags.coldStart())
                        .register(registry);
                coldStart = t;
            }
            return t;
        }
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
