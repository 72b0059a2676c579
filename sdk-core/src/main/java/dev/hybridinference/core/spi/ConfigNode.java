package dev.hybridinference.core.spi;

import com.fasterxml.jackson.databind.JsonNode;
import dev.hybridinference.core.ConfigurationException;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A section of a configuration document, read with typed getters that fail with the key's full path
 * and what was expected. Environment references ({@code ${VAR}}, {@code ${VAR:-default}}) in string
 * values are already resolved. Values of keys that look secret are never quoted in messages.
 */
public final class ConfigNode {
    private static final Pattern DURATION = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ns|us|ms|s|m|h|d)");
    private static final Pattern SECRET_KEY = Pattern.compile("(?i).*(key|secret|token|password|credential).*");

    private final String path;
    private final JsonNode node;

    /**
     * Wraps a parsed node.
     *
     * @param path the node's key path; empty for the document
     * @param node the node, already environment-resolved
     */
    public ConfigNode(String path, JsonNode node) {
        this.path = path;
        this.node = node;
    }

    /** This node's key path. */
    public String path() {
        return path;
    }

    /** The underlying node. */
    public JsonNode raw() {
        return node;
    }

    /** The path of a child key. */
    public String pathOf(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /** Whether the key is present and not null. */
    public boolean has(String key) {
        JsonNode v = node.get(key);
        return v != null && !v.isNull();
    }

    /** The child object at {@code key}, if present. */
    public Optional<ConfigNode> object(String key) {
        if (!has(key)) {
            return Optional.empty();
        }
        JsonNode v = node.get(key);
        if (!v.isObject()) {
            throw error(key, "expected a mapping of keys to values", v);
        }
        return Optional.of(new ConfigNode(pathOf(key), v));
    }

    /** The child object at {@code key}; fails when it is missing. */
    public ConfigNode requireObject(String key) {
        return object(key).orElseThrow(() -> missing(key, "a mapping of keys to values"));
    }

    /** The entries of this object, in document order. */
    public Map<String, ConfigNode> entries() {
        if (!node.isObject()) {
            throw new ConfigurationException(path, "expected a mapping of keys to values, got " + kind(node));
        }
        Map<String, ConfigNode> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            out.put(e.getKey(), new ConfigNode(pathOf(e.getKey()), e.getValue()));
        }
        return out;
    }

    /** Fails when this object holds a key that is not in {@code allowed}, naming the nearest allowed key. */
    public void allowOnly(Set<String> allowed) {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!allowed.contains(key)) {
                String near = nearest(key, allowed);
                throw new ConfigurationException(
                        pathOf(key),
                        "unknown key" + (near == null ? "" : " (did you mean '" + near + "'?)") + "; allowed here: "
                                + String.join(", ", new TreeSet<>(allowed)));
            }
        }
    }

    /** The string at {@code key}, if present. Numbers and booleans are accepted as their text. */
    public Optional<String> string(String key) {
        if (!has(key)) {
            return Optional.empty();
        }
        JsonNode v = node.get(key);
        if (!v.isValueNode()) {
            throw error(key, "expected a single value", v);
        }
        return Optional.of(v.asText());
    }

    /** The string at {@code key}; fails when it is missing or blank. */
    public String requireString(String key) {
        String s = string(key).orElseThrow(() -> missing(key, "a value"));
        if (s.isBlank()) {
            throw new ConfigurationException(pathOf(key), "must not be empty");
        }
        return s;
    }

    /** A list of strings at {@code key}; a single string counts as a list of one. Empty when absent. */
    public List<String> stringList(String key) {
        if (!has(key)) {
            return List.of();
        }
        JsonNode v = node.get(key);
        List<String> out = new ArrayList<>();
        if (v.isArray()) {
            for (int i = 0; i < v.size(); i++) {
                JsonNode item = v.get(i);
                if (!item.isValueNode() || item.isNull()) {
                    throw new ConfigurationException(
                            pathOf(key) + "[" + i + "]", "expected a string, got " + kind(item));
                }
                out.add(item.asText());
            }
        } else if (v.isValueNode()) {
            out.add(v.asText());
        } else {
            throw error(key, "expected a string or a list of strings", v);
        }
        return out;
    }

    /** A non-negative decimal at {@code key} (a number or a numeric string), if present. */
    public Optional<BigDecimal> nonNegativeDecimal(String key) {
        if (!has(key)) {
            return Optional.empty();
        }
        JsonNode v = node.get(key);
        BigDecimal d;
        try {
            d = v.isNumber() ? v.decimalValue() : new BigDecimal(v.asText().trim());
        } catch (NumberFormatException e) {
            throw error(key, "expected a non-negative decimal number", v);
        }
        if (!v.isValueNode() || d.signum() < 0) {
            throw error(key, "expected a non-negative decimal number", v);
        }
        return Optional.of(d);
    }

    /** An integer of at least {@code min} at {@code key}, if present. */
    public Optional<Integer> integer(String key, int min) {
        if (!has(key)) {
            return Optional.empty();
        }
        JsonNode v = node.get(key);
        int i;
        try {
            i = v.isIntegralNumber() && v.canConvertToInt()
                    ? v.intValue()
                    : Integer.parseInt(v.asText().trim());
        } catch (NumberFormatException e) {
            throw error(key, "expected a whole number of at least " + min, v);
        }
        if (!v.isValueNode() || i < min) {
            throw error(key, "expected a whole number of at least " + min, v);
        }
        return Optional.of(i);
    }

    /** A boolean at {@code key}, if present ({@code true}/{@code false}, case-insensitive). */
    public Optional<Boolean> bool(String key) {
        if (!has(key)) {
            return Optional.empty();
        }
        JsonNode v = node.get(key);
        if (v.isBoolean()) {
            return Optional.of(v.booleanValue());
        }
        String s = v.asText().trim().toLowerCase(Locale.ROOT);
        if (v.isValueNode() && (s.equals("true") || s.equals("false"))) {
            return Optional.of(Boolean.parseBoolean(s));
        }
        throw error(key, "expected true or false", v);
    }

    /**
     * A non-negative duration at {@code key}, if present: {@code 250ms}, {@code 5s}, {@code 2m}, {@code 1h},
     * {@code 1d}, {@code 1.5s}, or ISO-8601 ({@code PT5S}).
     */
    public Optional<Duration> duration(String key) {
        if (!has(key)) {
            return Optional.empty();
        }
        JsonNode v = node.get(key);
        Duration d = v.isValueNode() ? parseDuration(v.asText()) : null;
        if (d == null || d.isNegative()) {
            throw error(key, "expected a duration such as 250ms, 5s, 2m or PT1H", v);
        }
        return Optional.of(d);
    }

    /** Parses a duration in the forms {@link #duration} accepts; null when it is none of them. */
    public static Duration parseDuration(String text) {
        String s = text.trim();
        if (s.startsWith("P") || s.startsWith("p")) {
            try {
                return Duration.parse(s);
            } catch (DateTimeParseException e) {
                return null;
            }
        }
        Matcher m = DURATION.matcher(s.toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            return null;
        }
        BigDecimal amount = new BigDecimal(m.group(1));
        long nanosPerUnit;
        switch (m.group(2)) {
            case "ns":
                nanosPerUnit = 1;
                break;
            case "us":
                nanosPerUnit = 1_000;
                break;
            case "ms":
                nanosPerUnit = 1_000_000;
                break;
            case "s":
                nanosPerUnit = 1_000_000_000L;
                break;
            case "m":
                nanosPerUnit = 60_000_000_000L;
                break;
            case "h":
                nanosPerUnit = 3_600_000_000_000L;
                break;
            default:
                nanosPerUnit = 86_400_000_000_000L;
                break;
        }
        try {
            return Duration.ofNanos(
                    amount.multiply(BigDecimal.valueOf(nanosPerUnit)).longValueExact());
        } catch (ArithmeticException e) {
            return null;
        }
    }

    /** An error about {@code key}: what was expected and, unless the key looks secret, what was found. */
    public ConfigurationException error(String key, String expected, JsonNode found) {
        String got = SECRET_KEY.matcher(key).matches() ? "" : ", got " + describe(found);
        return new ConfigurationException(pathOf(key), expected + got);
    }

    /** An error about a missing key. */
    public ConfigurationException missing(String key, String expected) {
        return new ConfigurationException(pathOf(key), "is required: expected " + expected);
    }

    private static String describe(JsonNode v) {
        if (v == null || v.isNull()) {
            return "nothing";
        }
        if (v.isTextual()) {
            String t = v.asText();
            return "\"" + (t.length() > 60 ? t.substring(0, 60) + "..." : t) + "\"";
        }
        return v.isValueNode() ? v.asText() : kind(v);
    }

    private static String kind(JsonNode v) {
        if (v.isObject()) {
            return "a mapping";
        }
        if (v.isArray()) {
            return "a list";
        }
        return v.isNull() ? "nothing" : "a value";
    }

    private static String nearest(String key, Set<String> allowed) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String a : allowed) {
            int d = distance(key.toLowerCase(Locale.ROOT), a.toLowerCase(Locale.ROOT));
            if (d < bestDistance) {
                bestDistance = d;
                best = a;
            }
        }
        return bestDistance <= Math.max(2, key.length() / 3) ? best : null;
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
