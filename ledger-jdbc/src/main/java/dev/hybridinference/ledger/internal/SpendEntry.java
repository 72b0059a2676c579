package dev.hybridinference.ledger.internal;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.Receipt;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * One receipt as the spend log stores it: a row of the receipts table with its tags and attributes, and the
 * same as one line of JSON in the spool. Durations are whole microseconds; the cost is exact, written in
 * JSON as a string so no reader turns it into a double. Immutable. Internal.
 *
 * @param id the receipt's id, the row's key
 * @param startedAt when the call started
 * @param providerId the provider (for a composite call, the member) that answered or was tried last
 * @param deploymentKind its deployment kind's name
 * @param model the model
 * @param route the route in words
 * @param tier the tier routing chose, or null
 * @param spilledOver whether the call spilled over
 * @param fellBack whether the call fell back
 * @param attempts how many attempts the call made
 * @param outcome {@value #COMPLETED} or {@value #FAILED}
 * @param errorType for a failed call, the simple name of its exception's class; otherwise null
 * @param totalTimeUs the call's total time
 * @param timeToFirstTokenUs a stream's time to its first token, or null
 * @param queueTimeUs time waiting for a slot
 * @param computeTimeUs billable compute time
 * @param instanceTimeUs attributed instance time
 * @param coldStartPredicted whether routing predicted a cold start
 * @param coldStartObserved whether the call saw one
 * @param coldStartUs the cold start's duration, or null
 * @param inputTokens prompt tokens
 * @param outputTokens generated tokens
 * @param cachedInputTokens prompt tokens served from a cache
 * @param tokensEstimated whether the counts are estimates
 * @param requestBytes request bytes
 * @param responseBytes response bytes
 * @param cost the cost in USD, exact
 * @param costEstimated whether the cost is an estimate
 * @param sessionId the session id, or null
 * @param tags the cost-attribution tags
 * @param attributes where the call ran, in the provider's words
 * @param receivedAt when the spend log received the receipt
 */
public record SpendEntry(
        String id,
        Instant startedAt,
        String providerId,
        String deploymentKind,
        String model,
        String route,
        String tier,
        boolean spilledOver,
        boolean fellBack,
        int attempts,
        String outcome,
        String errorType,
        long totalTimeUs,
        Long timeToFirstTokenUs,
        long queueTimeUs,
        long computeTimeUs,
        long instanceTimeUs,
        boolean coldStartPredicted,
        boolean coldStartObserved,
        Long coldStartUs,
        long inputTokens,
        long outputTokens,
        long cachedInputTokens,
        boolean tokensEstimated,
        long requestBytes,
        long responseBytes,
        BigDecimal cost,
        boolean costEstimated,
        String sessionId,
        Map<String, String> tags,
        Map<String, String> attributes,
        Instant receivedAt) {

    /** The outcome of a call that answered. */
    public static final String COMPLETED = "completed";

    /** The outcome of a call that failed. */
    public static final String FAILED = "failed";

    /** The version of the JSON line format, written as {@code "v"}. */
    static final int FORMAT = 1;

    /** The longest spool line read back; a receipt's line is a few hundred bytes plus its route and tags. */
    static final int MAX_LINE_CHARS = 16 << 20;

    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxStringLength(MAX_LINE_CHARS)
                    .build())
            .build());

    /** Checks the parts every row needs and copies the maps. */
    public SpendEntry {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(startedAt, "startedAt");
        Objects.requireNonNull(providerId, "providerId");
        Objects.requireNonNull(deploymentKind, "deploymentKind");
        model = model == null ? "" : model;
        route = route == null ? "" : route;
        Objects.requireNonNull(outcome, "outcome");
        Objects.requireNonNull(cost, "cost");
        tags = tags == null ? Map.of() : Map.copyOf(tags);
        attributes = attributes == null ? Map.of() : Map.copyOf(attributes);
        Objects.requireNonNull(receivedAt, "receivedAt");
    }

    /**
     * The entry of a receipt.
     *
     * @param receipt the receipt
     * @param failure the call's failure, or null when it answered
     * @param receivedAt when the spend log received it
     */
    public static SpendEntry of(Receipt receipt, InferenceException failure, Instant receivedAt) {
        return new SpendEntry(
                receipt.id(),
                receipt.startedAt(),
                receipt.providerId(),
                receipt.deploymentKind().name(),
                receipt.model(),
                receipt.route(),
                receipt.routeFacts().tier().orElse(null),
                receipt.routeFacts().spilledOver(),
                receipt.routeFacts().fellBack(),
                receipt.attempts().size(),
                failure == null ? COMPLETED : FAILED,
                failure == null ? null : failure.getClass().getSimpleName(),
                micros(receipt.totalTime()),
                receipt.timeToFirstToken().map(SpendEntry::micros).orElse(null),
                micros(receipt.queueTime()),
                micros(receipt.computeTime()),
                micros(receipt.instanceTime()),
                receipt.coldStart().predicted(),
                receipt.coldStart().observed(),
                receipt.coldStart().duration().map(SpendEntry::micros).orElse(null),
                receipt.usage().inputTokens(),
                receipt.usage().outputTokens(),
                receipt.usage().cachedInputTokens(),
                receipt.usage().estimated(),
                receipt.requestBytes(),
                receipt.responseBytes(),
                receipt.cost(),
                receipt.costEstimated(),
                receipt.sessionId(),
                receipt.tags(),
                receipt.attributes(),
                receivedAt);
    }

    /** Whole microseconds of a duration, rounded down; durations past 292,000 years saturate. */
    static long micros(Duration d) {
        try {
            return Math.addExact(Math.multiplyExact(d.getSeconds(), 1_000_000L), d.getNano() / 1_000);
        } catch (ArithmeticException e) {
            return d.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
    }

    /** This entry as one line of JSON, without the line end. */
    public String toJson() {
        StringWriter out = new StringWriter(512);
        try (JsonGenerator g = JSON.getFactory().createGenerator(out)) {
            g.writeStartObject();
            g.writeNumberField("v", FORMAT);
            g.writeStringField("id", id);
            g.writeStringField("startedAt", startedAt.toString());
            g.writeStringField("providerId", providerId);
            g.writeStringField("deploymentKind", deploymentKind);
            g.writeStringField("model", model);
            g.writeStringField("route", route);
            writeNullable(g, "tier", tier);
            g.writeBooleanField("spilledOver", spilledOver);
            g.writeBooleanField("fellBack", fellBack);
            g.writeNumberField("attempts", attempts);
            g.writeStringField("outcome", outcome);
            writeNullable(g, "errorType", errorType);
            g.writeNumberField("totalTimeUs", totalTimeUs);
            writeNullable(g, "timeToFirstTokenUs", timeToFirstTokenUs);
            g.writeNumberField("queueTimeUs", queueTimeUs);
            g.writeNumberField("computeTimeUs", computeTimeUs);
            g.writeNumberField("instanceTimeUs", instanceTimeUs);
            g.writeBooleanField("coldStartPredicted", coldStartPredicted);
            g.writeBooleanField("coldStartObserved", coldStartObserved);
            writeNullable(g, "coldStartUs", coldStartUs);
            g.writeNumberField("inputTokens", inputTokens);
            g.writeNumberField("outputTokens", outputTokens);
            g.writeNumberField("cachedInputTokens", cachedInputTokens);
            g.writeBooleanField("tokensEstimated", tokensEstimated);
            g.writeNumberField("requestBytes", requestBytes);
            g.writeNumberField("responseBytes", responseBytes);
            g.writeStringField("cost", cost.toPlainString());
            g.writeBooleanField("costEstimated", costEstimated);
            writeNullable(g, "sessionId", sessionId);
            writeMap(g, "tags", tags);
            writeMap(g, "attributes", attributes);
            g.writeStringField("receivedAt", receivedAt.toString());
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a StringWriter does not fail
        }
        return out.toString();
    }

    /**
     * An entry read back from a line of JSON.
     *
     * @throws IllegalArgumentException when the line is not an entry of a known format
     */
    public static SpendEntry fromJson(String line) {
        JsonNode n;
        try {
            n = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new IllegalArgumentException("not JSON: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException("expected a JSON object");
        }
        int format = n.path("v").asInt(-1);
        if (format != FORMAT) {
            throw new IllegalArgumentException("expected format version " + FORMAT + ", got " + n.path("v"));
        }
        try {
            return new SpendEntry(
                    text(n, "id"),
                    Instant.parse(text(n, "startedAt")),
                    text(n, "providerId"),
                    text(n, "deploymentKind"),
                    text(n, "model"),
                    text(n, "route"),
                    nullableText(n, "tier"),
                    bool(n, "spilledOver"),
                    bool(n, "fellBack"),
                    Math.toIntExact(number(n, "attempts")),
                    text(n, "outcome"),
                    nullableText(n, "errorType"),
                    number(n, "totalTimeUs"),
                    nullableNumber(n, "timeToFirstTokenUs"),
                    number(n, "queueTimeUs"),
                    number(n, "computeTimeUs"),
                    number(n, "instanceTimeUs"),
                    bool(n, "coldStartPredicted"),
                    bool(n, "coldStartObserved"),
                    nullableNumber(n, "coldStartUs"),
                    number(n, "inputTokens"),
                    number(n, "outputTokens"),
                    number(n, "cachedInputTokens"),
                    bool(n, "tokensEstimated"),
                    number(n, "requestBytes"),
                    number(n, "responseBytes"),
                    new BigDecimal(text(n, "cost")),
                    bool(n, "costEstimated"),
                    nullableText(n, "sessionId"),
                    map(n, "tags"),
                    map(n, "attributes"),
                    Instant.parse(text(n, "receivedAt")));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("not a spend entry: " + e.getMessage(), e);
        }
    }

    private static void writeNullable(JsonGenerator g, String name, String value) throws IOException {
        if (value == null) {
            g.writeNullField(name);
        } else {
            g.writeStringField(name, value);
        }
    }

    private static void writeNullable(JsonGenerator g, String name, Long value) throws IOException {
        if (value == null) {
            g.writeNullField(name);
        } else {
            g.writeNumberField(name, value);
        }
    }

    private static void writeMap(JsonGenerator g, String name, Map<String, String> map) throws IOException {
        g.writeObjectFieldStart(name);
        for (Map.Entry<String, String> e : new TreeMap<>(map).entrySet()) {
            g.writeStringField(e.getKey(), e.getValue());
        }
        g.writeEndObject();
    }

    private static JsonNode field(JsonNode n, String name) {
        JsonNode v = n.get(name);
        if (v == null) {
            throw new IllegalArgumentException("the field " + name + " is missing");
        }
        return v;
    }

    private static String text(JsonNode n, String name) {
        JsonNode v = field(n, name);
        if (!v.isTextual()) {
            throw new IllegalArgumentException("the field " + name + " is not a string");
        }
        return v.textValue();
    }

    private static String nullableText(JsonNode n, String name) {
        return field(n, name).isNull() ? null : text(n, name);
    }

    private static long number(JsonNode n, String name) {
        JsonNode v = field(n, name);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw new IllegalArgumentException("the field " + name + " is not a whole number");
        }
        return v.longValue();
    }

    private static Long nullableNumber(JsonNode n, String name) {
        return field(n, name).isNull() ? null : number(n, name);
    }

    private static boolean bool(JsonNode n, String name) {
        JsonNode v = field(n, name);
        if (!v.isBoolean()) {
            throw new IllegalArgumentException("the field " + name + " is not true or false");
        }
        return v.booleanValue();
    }

    private static Map<String, String> map(JsonNode n, String name) {
        JsonNode v = field(n, name);
        if (!v.isObject()) {
            throw new IllegalArgumentException("the field " + name + " is not an object");
        }
        Map<String, String> out = new TreeMap<>();
        for (Map.Entry<String, JsonNode> e : v.properties()) {
            if (!e.getValue().isTextual()) {
                throw new IllegalArgumentException("the field " + name + "." + e.getKey() + " is not a string");
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
        return out;
    }
}
