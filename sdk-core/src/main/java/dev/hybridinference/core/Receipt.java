package dev.hybridinference.core;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Where a call ran, how long it took, whether it hit a cold start and what it cost. Every {@link
 * ChatResponse} carries one, and every stream ends with one.
 *
 * @param providerId the provider that produced the answer (for a failed call, the last one tried)
 * @param deploymentKind that provider's deployment kind
 * @param model the model that answered, as the provider named it
 * @param route why the call went where it went, in words
 * @param attempts every attempt, in order; the last is the one that answered
 * @param startedAt wall-clock time the call started
 * @param totalTime from the call's start to its last byte
 * @param timeToFirstToken for streams, from the start to the first content; for blocking calls, empty
 * @param queueTime time spent waiting for a slot before the first attempt
 * @param coldStart cold start predicted or observed
 * @param usage token counts
 * @param instanceTime for instance-hour capacity, the share of instance time attributed to this call;
 *     {@link Duration#ZERO} otherwise
 * @param cost what the call cost in USD, exact
 * @param sessionId the request's session id, or null
 * @param tags the request's cost-attribution tags
 */
public record Receipt(
        String providerId,
        DeploymentKind deploymentKind,
        String model,
        String route,
        List<Attempt> attempts,
        Instant startedAt,
        Duration totalTime,
        Optional<Duration> timeToFirstToken,
        Duration queueTime,
        ColdStart coldStart,
        Usage usage,
        Duration instanceTime,
        BigDecimal cost,
        String sessionId,
        Map<String, String> tags) {

    /** Checks the required parts and copies the collections. */
    public Receipt {
        Objects.requireNonNull(providerId, "providerId");
        Objects.requireNonNull(deploymentKind, "deploymentKind");
        model = model == null ? "" : model;
        route = route == null ? "" : route;
        attempts = List.copyOf(attempts);
        Objects.requireNonNull(startedAt, "startedAt");
        Objects.requireNonNull(totalTime, "totalTime");
        timeToFirstToken = timeToFirstToken == null ? Optional.empty() : timeToFirstToken;
        queueTime = queueTime == null ? Duration.ZERO : queueTime;
        coldStart = coldStart == null ? ColdStart.NONE : coldStart;
        Objects.requireNonNull(usage, "usage");
        instanceTime = instanceTime == null ? Duration.ZERO : instanceTime;
        Objects.requireNonNull(cost, "cost");
        tags = tags == null ? Map.of() : Map.copyOf(tags);
    }

    /** One line for logs: provider, model, time, tokens and cost. */
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
        if (coldStart.observed()) {
            sb.append(", cold start");
        } else if (coldStart.predicted()) {
            sb.append(", cold start predicted");
        }
        sb.append(", cost $").append(cost.toPlainString());
        if (attempts.size() > 1) {
            sb.append(", ").append(attempts.size()).append(" attempts");
        }
        if (!route.isEmpty()) {
            sb.append(" [").append(route).append(']');
        }
        return sb.toString();
    }
}
