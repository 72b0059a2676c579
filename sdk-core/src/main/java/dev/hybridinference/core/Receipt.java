package dev.hybridinference.core;

import dev.hybridinference.core.spi.Secrets;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Where a call ran, how long it took, whether it hit a cold start and what it cost. Every {@link
 * ChatResponse} carries one, and every stream ends with one. Immutable.
 *
 * <p>Build receipts with {@link #builder()} (or change one with {@link #toBuilder()}): the record's
 * canonical constructor gains a parameter with every new fact, so code that calls it breaks when one is
 * added; the builder does not.
 *
 * <p>Every figure that a cost depends on is here, so that the cost can be recomputed by hand from the
 * provider's {@link Pricing}: tokens for per-token pricing, {@link #computeTime()} (and the bytes) for
 * per-compute-time and per-GB-second pricing, {@link #instanceTime()} for instance-priced capacity. Where
 * the SDK cannot see what the platform bills, {@link #costEstimated()} says so.
 *
 * @param providerId the provider that produced the answer (for a failed call, the last one tried)
 * @param deploymentKind that provider's deployment kind
 * @param model the model that answered, as the provider named it
 * @param route why the call went where it went, in words
 * @param routeFacts the routing decision as facts (tier, spillover, fallback, skipped members); {@link
 *     RouteFacts#NONE} for a call to a single provider
 * @param attempts every attempt, in order; the last is the one that answered
 * @param startedAt wall-clock time the call started
 * @param totalTime from the call's start to its last byte, as the caller saw it
 * @param timeToFirstToken for streams, from the start to the first content; for blocking calls, empty
 * @param queueTime time spent waiting for a slot before the first attempt
 * @param computeTime the call's billable compute time: the provider's own figure when it reports one,
 *     otherwise the time the SDK waited on the provider's work, which leaves out the time a stream's
 *     reader held the stream between reads
 * @param coldStart cold start predicted or observed, with its duration when known
 * @param usage token counts; {@link Usage#estimated()} when the SDK counted them itself
 * @param instanceTime for instance-priced capacity, the share of instance time attributed to this call;
 *     {@link Duration#ZERO} otherwise
 * @param requestBytes bytes of the request as the provider sent it; zero when not reported
 * @param responseBytes bytes of the response as the provider received it; zero when not reported
 * @param cost what the call cost in USD, exact
 * @param costEstimated whether the cost rests on figures the platform does not report (instance counts,
 *     the SDK's own measure of compute time, estimated tokens) rather than on the platform's bill
 * @param sessionId the request's session id, or null
 * @param tags the request's cost-attribution tags
 * @param attributes free-form facts about where the call ran ({@code backend}, {@code device}, {@code
 *     variant}, {@code region}, ...), as the provider reported them
 * @param id the receipt's id, unique across processes: {@code r-} and 26 lower-case hex digits; the
 *     receipt of a composite call carries the id its listeners saw ({@link InferenceListener.Call#id()})
 */
public record Receipt(
        String providerId,
        DeploymentKind deploymentKind,
        String model,
        String route,
        RouteFacts routeFacts,
        List<Attempt> attempts,
        Instant startedAt,
        Duration totalTime,
        Optional<Duration> timeToFirstToken,
        Duration queueTime,
        Duration computeTime,
        ColdStart coldStart,
        Usage usage,
        Duration instanceTime,
        long requestBytes,
        long responseBytes,
        BigDecimal cost,
        boolean costEstimated,
        String sessionId,
        Map<String, String> tags,
        Map<String, String> attributes,
        String id) {

    /**
     * Checks the required parts and copies the collections. Prefer {@link #builder()}: this constructor
     * changes whenever a fact is added.
     */
    public Receipt {
        Objects.requireNonNull(providerId, "providerId");
        Objects.requireNonNull(deploymentKind, "deploymentKind");
        model = model == null ? "" : model;
        route = route == null ? "" : route;
        routeFacts = routeFacts == null ? RouteFacts.NONE : routeFacts;
        attempts = attempts == null ? List.of() : List.copyOf(attempts);
        Objects.requireNonNull(startedAt, "startedAt");
        totalTime = nonNegative(totalTime, "totalTime");
        timeToFirstToken = timeToFirstToken == null ? Optional.empty() : timeToFirstToken;
        queueTime = nonNegative(queueTime, "queueTime");
        computeTime = nonNegative(computeTime, "computeTime");
        coldStart = coldStart == null ? ColdStart.NONE : coldStart;
        Objects.requireNonNull(usage, "usage");
        instanceTime = nonNegative(instanceTime, "instanceTime");
        if (requestBytes < 0 || responseBytes < 0) {
            throw new IllegalArgumentException("byte counts must not be negative");
        }
        Objects.requireNonNull(cost, "cost");
        tags = tags == null ? Map.of() : Map.copyOf(tags);
        attributes = Secrets.redactedCopy(attributes);
        id = id == null || id.isEmpty() ? dev.hybridinference.core.internal.ReceiptIds.next() : id;
    }

    private static Duration nonNegative(Duration d, String name) {
        if (d == null) {
            return Duration.ZERO;
        }
        if (d.isNegative()) {
            throw new IllegalArgumentException(name + " must not be negative, got " + d);
        }
        return d;
    }

    /** A builder with nothing set; {@code providerId}, {@code deploymentKind} and {@code startedAt} are required. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding every fact of this receipt, to change some of them. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.providerId = providerId;
        b.deploymentKind = deploymentKind;
        b.model = model;
        b.route = route;
        b.routeFacts = routeFacts;
        b.attempts = attempts;
        b.startedAt = startedAt;
        b.totalTime = totalTime;
        b.timeToFirstToken = timeToFirstToken;
        b.queueTime = queueTime;
        b.computeTime = computeTime;
        b.coldStart = coldStart;
        b.usage = usage;
        b.instanceTime = instanceTime;
        b.requestBytes = requestBytes;
        b.responseBytes = responseBytes;
        b.cost = cost;
        b.costEstimated = costEstimated;
        b.sessionId = sessionId;
        b.tags = tags;
        b.attributes = attributes;
        b.id = id;
        return b;
    }

    /**
     * One line for logs: provider, model, time, tokens and cost. Amounts are written without trailing
     * zeros ({@code $0.000465}); the exact value is {@link #cost()}.
     */
    public String summary() {
        StringBuilder sb = new StringBuilder();
        sb.append(providerId)
                .append(" (")
                .append(deploymentKind)
                .append(", ")
                .append(model)
                .append(')');
        sb.append(": ").append(totalTime.toMillis()).append(" ms");
        timeToFirstToken.ifPresent(
                t -> sb.append(", first token ").append(t.toMillis()).append(" ms"));
        sb.append(", ")
                .append(usage.inputTokens())
                .append(" in / ")
                .append(usage.outputTokens())
                .append(" out");
        if (usage.estimated()) {
            sb.append(" (estimated)");
        }
        if (coldStart.observed()) {
            sb.append(", cold start");
        } else if (coldStart.predicted()) {
            sb.append(", cold start predicted");
        }
        coldStart.duration().ifPresent(d -> sb.append(' ').append(d.toMillis()).append(" ms"));
        sb.append(", cost ").append(Pricing.formatUsd(cost));
        if (costEstimated) {
            sb.append(" (estimated)");
        }
        if (attempts.size() > 1) {
            sb.append(", ").append(attempts.size()).append(" attempts");
        }
        if (!route.isEmpty()) {
            sb.append(" [").append(route).append(']');
        }
        return sb.toString();
    }

    /** Builds a {@link Receipt}; unset facts take their empty value (zero, none, empty). Not thread-safe. */
    public static final class Builder {
        private String providerId;
        private DeploymentKind deploymentKind;
        private String model = "";
        private String route = "";
        private RouteFacts routeFacts = RouteFacts.NONE;
        private List<Attempt> attempts = List.of();
        private Instant startedAt;
        private Duration totalTime = Duration.ZERO;
        private Optional<Duration> timeToFirstToken = Optional.empty();
        private Duration queueTime = Duration.ZERO;
        private Duration computeTime = Duration.ZERO;
        private ColdStart coldStart = ColdStart.NONE;
        private Usage usage = Usage.ZERO;
        private Duration instanceTime = Duration.ZERO;
        private long requestBytes;
        private long responseBytes;
        private BigDecimal cost = BigDecimal.ZERO;
        private boolean costEstimated;
        private String sessionId;
        private Map<String, String> tags = Map.of();
        private Map<String, String> attributes = Map.of();
        private String id;

        private Builder() {}

        /**
         * The receipt's id; a new unique one when unset (unique across processes too, so that a durable log
         * shared by a fleet can key on it). {@link #toBuilder()} keeps the id: a changed receipt is still the
         * record of the same call.
         */
        public Builder id(String id) {
            this.id = id;
            return this;
        }

        /** The provider that answered (for a failed call, the last one tried). Required. */
        public Builder providerId(String providerId) {
            this.providerId = providerId;
            return this;
        }

        /** That provider's deployment kind. Required. */
        public Builder deploymentKind(DeploymentKind deploymentKind) {
            this.deploymentKind = deploymentKind;
            return this;
        }

        /** The model that answered. */
        public Builder model(String model) {
            this.model = model;
            return this;
        }

        /** The route in words. */
        public Builder route(String route) {
            this.route = route;
            return this;
        }

        /** The routing decision as facts. */
        public Builder routeFacts(RouteFacts routeFacts) {
            this.routeFacts = routeFacts;
            return this;
        }

        /** Every attempt, in order. */
        public Builder attempts(List<Attempt> attempts) {
            this.attempts = attempts;
            return this;
        }

        /** Wall-clock start of the call. Required. */
        public Builder startedAt(Instant startedAt) {
            this.startedAt = startedAt;
            return this;
        }

        /** From the call's start to its last byte. */
        public Builder totalTime(Duration totalTime) {
            this.totalTime = totalTime;
            return this;
        }

        /** Time to the first content of a stream; empty for blocking calls. */
        public Builder timeToFirstToken(Optional<Duration> timeToFirstToken) {
            this.timeToFirstToken = timeToFirstToken;
            return this;
        }

        /** Time to the first content of a stream. */
        public Builder timeToFirstToken(Duration timeToFirstToken) {
            this.timeToFirstToken = Optional.ofNullable(timeToFirstToken);
            return this;
        }

        /** Time spent waiting for a slot. */
        public Builder queueTime(Duration queueTime) {
            this.queueTime = queueTime;
            return this;
        }

        /** Billable compute time. */
        public Builder computeTime(Duration computeTime) {
            this.computeTime = computeTime;
            return this;
        }

        /** Cold start predicted or observed. */
        public Builder coldStart(ColdStart coldStart) {
            this.coldStart = coldStart;
            return this;
        }

        /** Token counts. */
        public Builder usage(Usage usage) {
            this.usage = usage;
            return this;
        }

        /** Instance time attributed to the call. */
        public Builder instanceTime(Duration instanceTime) {
            this.instanceTime = instanceTime;
            return this;
        }

        /** Bytes of the request as sent. */
        public Builder requestBytes(long requestBytes) {
            this.requestBytes = requestBytes;
            return this;
        }

        /** Bytes of the response as received. */
        public Builder responseBytes(long responseBytes) {
            this.responseBytes = responseBytes;
            return this;
        }

        /** The cost in USD. */
        public Builder cost(BigDecimal cost) {
            this.cost = cost;
            return this;
        }

        /** Whether the cost is an estimate. */
        public Builder costEstimated(boolean costEstimated) {
            this.costEstimated = costEstimated;
            return this;
        }

        /** The request's session id, or null. */
        public Builder sessionId(String sessionId) {
            this.sessionId = sessionId;
            return this;
        }

        /** The request's cost-attribution tags. */
        public Builder tags(Map<String, String> tags) {
            this.tags = tags;
            return this;
        }

        /** Free-form facts about where the call ran, replacing those set before. */
        public Builder attributes(Map<String, String> attributes) {
            this.attributes = attributes;
            return this;
        }

        /** Adds one free-form fact. */
        public Builder attribute(String key, String value) {
            Map<String, String> copy = new TreeMap<>(attributes == null ? Map.of() : attributes);
            copy.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
            this.attributes = copy;
            return this;
        }

        /** Adds an attempt after those set before. */
        public Builder attempt(Attempt attempt) {
            List<Attempt> copy = new ArrayList<>(attempts == null ? List.of() : attempts);
            copy.add(Objects.requireNonNull(attempt, "attempt"));
            this.attempts = copy;
            return this;
        }

        /**
         * The receipt.
         *
         * @throws NullPointerException when the provider id, deployment kind or start time is missing
         * @throws IllegalArgumentException for a negative duration or byte count
         */
        public Receipt build() {
            return new Receipt(
                    providerId,
                    deploymentKind,
                    model,
                    route,
                    routeFacts,
                    attempts,
                    startedAt,
                    totalTime,
                    timeToFirstToken,
                    queueTime,
                    computeTime,
                    coldStart,
                    usage,
                    instanceTime,
                    requestBytes,
                    responseBytes,
                    cost,
                    costEstimated,
                    sessionId,
                    tags,
                    attributes,
                    id);
        }
    }
}
