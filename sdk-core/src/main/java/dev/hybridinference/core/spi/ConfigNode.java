package dev.hybridinference.core.spi;

import dev.hybridinference.core.ConfigurationException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
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
 *
 * <p>Every numeric getter takes (or defaults to) a range, so that a value the consumer cannot work with
 * (a 1 ms keep-warm interval, a 30-day timeout that overflows a millisecond int, a price of {@code
 * 1e999999999}) is refused at load time with the key path, rather than loaded and failing every call.
 * The defaults without a range: durations from 0 to {@link #DEFAULT_MAX_DURATION}, decimals from 0 to
 * {@link #MAX_AMOUNT} with at most {@link #MAX_DECIMAL_PLACES} decimal places, whole numbers up to
 * {@link Integer#MAX_VALUE}.
 *
 * <p>The document model is plain Java: mappings with string keys, lists, strings, numbers, booleans and
 * nulls; no parser type appears in this class's signatures. Immutable and thread-safe.
 */
public final class ConfigNode {
    /** How deep mappings and lists may nest in a document, the top-level mapping counting as 1. */
    public static final int MAX_DEPTH = 64;

    /** The longest key accepted, in characters. */
    public static final int MAX_KEY_LENGTH = 256;

    /** The largest price or amount the default decimal getter accepts: one billion (USD). */
    public static final BigDecimal MAX_AMOUNT = new BigDecimal("1000000000");

    /** The most decimal places a decimal value may carry (trailing zeros not counted). */
    public static final int MAX_DECIMAL_PLACES = 18;

    /** The longest duration {@link #duration(String)} accepts without an explicit range. */
    public static final Duration DEFAULT_MAX_DURATION = Duration.ofHours(24);

    /** Numbers written as text longer than this are refused before they are parsed. */
    private static final int MAX_NUMBER_TEXT = 100;

    private static final Pattern DURATION = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ns|us|ms|s|m|h|d)");

    /**
     * Key names whose values are secret, matched case-insensitively on the name with {@code -} and
     * {@code _} removed, at its end: {@code apiKey}, {@code api_key}, {@code x-api-key}, {@code
     * accessToken}, {@code clientSecret}, {@code password}, {@code credentials}, {@code
     * connectionString}. Plural {@code tokens} is not matched, so {@code maxTokens} stays readable.
     */
    private static final Pattern SECRET_KEY = Pattern.compile(
            "(?i).*(keys?|secrets?|token|password|passwd|pwd|credentials?|connectionstring|passphrase|authorization)");

    private final String path;
    private final Object value;

    private ConfigNode(String path, Object value) {
        this.path = path;
        this.value = value;
    }

    /**
     * A whole document given as nested maps and lists, as any YAML or JSON library parses them. Keys
     * must be strings (numbers and booleans are taken as their text); values must be maps, lists (or
     * arrays), strings, numbers, booleans or null. The content is copied.
     *
     * @throws ConfigurationException naming the key path of a value that is none of those, of a key
     *     longer than {@value #MAX_KEY_LENGTH} characters, or of nesting deeper than {@value #MAX_DEPTH}
     */
    public static ConfigNode of(Map<String, ?> document) {
        return of("", document);
    }

    /**
     * A section at {@code path} given as nested maps and lists; see {@link #of(Map)}.
     *
     * @param path the section's key path; empty for a whole document
     * @param section the section's content
     */
    public static ConfigNode of(String path, Map<String, ?> section) {
        if (section == null) {
            throw new ConfigurationException(path, "expected a mapping of keys to values, got nothing");
        }
        return new ConfigNode(path == null ? "" : path, copy(section, path == null ? "" : path, 1));
    }

    /** Whether values under a key of this name are secret (API keys, tokens, passwords and the like). */
    public static boolean isSecretKey(String key) {
        return key != null
                && key.length() <= MAX_KEY_LENGTH
                && SECRET_KEY.matcher(key.replace("-", "").replace("_", "")).matches();
    }

    /** This node's key path. */
    public String path() {
        return path;
    }

    /** The path of a child key. */
    public String pathOf(String key) {
        return join(path, key);
    }

    /** Whether this node is a mapping (rather than a list or a single value). */
    public boolean isObject() {
        return value instanceof Map;
    }

    /** Whether the key is present and not null. */
    public boolean has(String key) {
        return get(key) != null;
    }

    /** The child object at {@code key}, if present. */
    public Optional<ConfigNode> object(String key) {
        Object v = get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (!(v instanceof Map)) {
            throw error(key, "expected a mapping of keys to values");
        }
        return Optional.of(new ConfigNode(pathOf(key), v));
    }

    /** The child object at {@code key}; fails when it is missing. */
    public ConfigNode requireObject(String key) {
        return object(key).orElseThrow(() -> missing(key, "a mapping of keys to values"));
    }

    /** The entries of this object, in document order. */
    public Map<String, ConfigNode> entries() {
        Map<String, ConfigNode> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : map().entrySet()) {
            out.put(e.getKey(), new ConfigNode(pathOf(e.getKey()), e.getValue()));
        }
        return out;
    }

    /**
     * The items of the list at {@code key}, each with its path ({@code rules[0]}); empty when absent.
     * Items may be mappings, lists or single values.
     */
    public List<ConfigNode> list(String key) {
        Object v = get(key);
        if (v == null) {
            return List.of();
        }
        if (!(v instanceof List)) {
            throw error(key, "expected a list");
        }
        List<?> items = (List<?>) v;
        List<ConfigNode> out = new ArrayList<>(items.size());
        for (int i = 0; i < items.size(); i++) {
            out.add(new ConfigNode(pathOf(key) + "[" + i + "]", items.get(i)));
        }
        return out;
    }

    /** This node's own single value as text; fails when it is a mapping, a list or null. */
    public String text() {
        if (value == null || value instanceof Map || value instanceof List) {
            throw new ConfigurationException(path, "expected a single value, got " + kind(value));
        }
        return textOf(value);
    }

    /** Fails when this object holds a key that is not in {@code allowed}, naming the nearest allowed key. */
    public void allowOnly(Set<String> allowed) {
        for (String key : map().keySet()) {
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
        Object v = get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (!isScalar(v)) {
            throw error(key, "expected a single value");
        }
        return Optional.of(textOf(v));
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
        Object v = get(key);
        if (v == null) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (v instanceof List) {
            List<?> items = (List<?>) v;
            for (int i = 0; i < items.size(); i++) {
                Object item = items.get(i);
                if (!isScalar(item)) {
                    throw new ConfigurationException(
                            pathOf(key) + "[" + i + "]", "expected a string, got " + kind(item));
                }
                out.add(textOf(item));
            }
        } else if (isScalar(v)) {
            out.add(textOf(v));
        } else {
            throw error(key, "expected a string or a list of strings");
        }
        return out;
    }

    /**
     * A decimal from 0 to {@link #MAX_AMOUNT} at {@code key} (a number or a numeric string), if present;
     * see {@link #decimal(String, BigDecimal, BigDecimal)}.
     */
    public Optional<BigDecimal> nonNegativeDecimal(String key) {
        return decimal(key, BigDecimal.ZERO, MAX_AMOUNT);
    }

    /**
     * A decimal from {@code min} to {@code max} at {@code key} (a number or a numeric string), with at
     * most {@value #MAX_DECIMAL_PLACES} decimal places, if present. Infinities, NaN and numbers too long to
     * be prices are refused.
     */
    public Optional<BigDecimal> decimal(String key, BigDecimal min, BigDecimal max) {
        Object v = get(key);
        if (v == null) {
            return Optional.empty();
        }
        String expected = min.signum() == 0 ? "a non-negative decimal number" : "a decimal number";
        BigDecimal d = toDecimal(v);
        if (d == null) {
            throw error(key, "expected " + expected);
        }
        if (d.compareTo(min) < 0) {
            throw error(
                    key,
                    min.signum() == 0
                            ? "expected " + expected
                            : "expected a decimal number of at least " + min.toPlainString());
        }
        if (d.compareTo(max) > 0) {
            throw error(key, "expected " + expected + " of at most " + max.toPlainString());
        }
        // Within [min, max] the magnitude is bounded, so stripping zeros is cheap; a long tail of digits
        // (1e-999999999) would make every later multiplication slow.
        if (d.signum() != 0 && d.stripTrailingZeros().scale() > MAX_DECIMAL_PLACES) {
            throw error(key, "expected at most " + MAX_DECIMAL_PLACES + " decimal places");
        }
        return Optional.of(d);
    }

    /** A whole number of at least {@code min} (and at most {@link Integer#MAX_VALUE}) at {@code key}. */
    public Optional<Integer> integer(String key, int min) {
        return integer(key, min, Integer.MAX_VALUE);
    }

    /** A whole number from {@code min} to {@code max} at {@code key} (a number or a numeric string). */
    public Optional<Integer> integer(String key, int min, int max) {
        Object v = get(key);
        if (v == null) {
            return Optional.empty();
        }
        BigInteger i = toInteger(v);
        if (i == null) {
            throw error(
                    key,
                    "expected a whole number "
                            + (max == Integer.MAX_VALUE ? "of at least " + min : "from " + min + " to " + max));
        }
        if (i.compareTo(BigInteger.valueOf(min)) < 0) {
            throw error(key, "expected a whole number of at least " + min);
        }
        if (i.compareTo(BigInteger.valueOf(max)) > 0) {
            throw error(key, "expected a whole number of at most " + max);
        }
        return Optional.of(i.intValue());
    }

    /** A boolean at {@code key}, if present ({@code true}/{@code false}, case-insensitive). */
    public Optional<Boolean> bool(String key) {
        Object v = get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (v instanceof Boolean) {
            return Optional.of((Boolean) v);
        }
        if (v instanceof String) {
            String s = ((String) v).trim().toLowerCase(Locale.ROOT);
            if (s.equals("true") || s.equals("false")) {
                return Optional.of(Boolean.parseBoolean(s));
            }
        }
        throw error(key, "expected true or false");
    }

    /**
     * A duration from 0 to {@link #DEFAULT_MAX_DURATION} (24 h) at {@code key}, if present; see {@link
     * #duration(String, Duration, Duration)} for the forms and for other ranges.
     */
    public Optional<Duration> duration(String key) {
        return duration(key, Duration.ZERO, DEFAULT_MAX_DURATION);
    }

    /**
     * A duration from {@code min} to {@code max} at {@code key}, if present: {@code 250ms}, {@code 5s},
     * {@code 2m}, {@code 1h}, {@code 1d}, {@code 1.5s}, or ISO-8601 ({@code PT5S}).
     */
    public Optional<Duration> duration(String key, Duration min, Duration max) {
        Optional<Duration> d = anyDuration(key);
        if (d.isPresent() && (d.get().compareTo(min) < 0 || d.get().compareTo(max) > 0)) {
            throw error(key, "expected a duration from " + format(min) + " to " + format(max));
        }
        return d;
    }

    /**
     * A duration at {@code key} that is either 0, meaning off, or from {@code min} to {@code max}, if
     * present; for intervals where 0 disables the feature ({@code scrapeInterval: 0s}).
     */
    public Optional<Duration> durationOrOff(String key, Duration min, Duration max) {
        Optional<Duration> d = anyDuration(key);
        if (d.isPresent()
                && !d.get().isZero()
                && (d.get().compareTo(min) < 0 || d.get().compareTo(max) > 0)) {
            throw error(key, "expected 0 (off) or a duration from " + format(min) + " to " + format(max));
        }
        return d;
    }

    private Optional<Duration> anyDuration(String key) {
        Object v = get(key);
        if (v == null) {
            return Optional.empty();
        }
        Duration d = isScalar(v) ? parseDuration(textOf(v)) : null;
        if (d == null || d.isNegative()) {
            throw error(key, "expected a duration such as 250ms, 5s, 2m or PT1H");
        }
        return Optional.of(d);
    }

    /** Parses a duration in the forms {@link #duration} accepts; null when it is none of them. */
    public static Duration parseDuration(String text) {
        String s = text.trim();
        if (s.length() > MAX_NUMBER_TEXT) {
            return null;
        }
        if (s.startsWith("P") || s.startsWith("p")) {
            try {
                return Duration.parse(s);
            } catch (RuntimeException e) {
                return null; // unparseable, or too large for a Duration
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
            return null; // a fraction of a nanosecond, or more than 292 years
        }
    }

    /** A duration as it would be written in a document: {@code 24h}, {@code 100ms}, {@code 0}. */
    public static String format(Duration d) {
        if (d.isZero()) {
            return "0";
        }
        long nanos;
        try {
            nanos = d.toNanos();
        } catch (ArithmeticException e) {
            return d.toString();
        }
        long[] units = {86_400_000_000_000L, 3_600_000_000_000L, 60_000_000_000L, 1_000_000_000L, 1_000_000L, 1_000L};
        String[] names = {"d", "h", "m", "s", "ms", "us"};
        for (int i = 0; i < units.length; i++) {
            // Whole days from two days up; a day reads better as 24h.
            if (nanos % units[i] == 0 && (i > 0 || nanos >= 2 * units[0])) {
                return nanos / units[i] + names[i];
            }
        }
        return nanos + "ns";
    }

    /**
     * An error about {@code key}: what was expected and, unless the key looks secret, what was found.
     *
     * @param key the key, relative to this node
     * @param expected what was expected, such as {@code "expected a whole number"}
     */
    public ConfigurationException error(String key, String expected) {
        String got = isSecretKey(key) ? "" : ", got " + describe(get(key));
        return new ConfigurationException(pathOf(key), expected + got);
    }

    /** An error about a missing key. */
    public ConfigurationException missing(String key, String expected) {
        return new ConfigurationException(pathOf(key), "is required: expected " + expected);
    }

    // ---- the document model -------------------------------------------------------------------

    @SuppressWarnings("unchecked")
    private Map<String, Object> map() {
        if (!(value instanceof Map)) {
            throw new ConfigurationException(path, "expected a mapping of keys to values, got " + kind(value));
        }
        return (Map<String, Object>) value;
    }

    private Object get(String key) {
        return value instanceof Map ? ((Map<?, ?>) value).get(key) : null;
    }

    /**
     * Copies a user-given value into the model: unmodifiable {@link LinkedHashMap}s with string keys,
     * unmodifiable lists, and {@link String}, {@link BigInteger}, {@link BigDecimal}, {@link Boolean} or
     * null. The depth limit also ends cycles (a map that contains itself).
     */
    private static Object copy(Object v, String path, int depth) {
        if (v == null || v instanceof String || v instanceof Boolean || v instanceof BigInteger) {
            return v;
        }
        if (v instanceof CharSequence || v instanceof Character) {
            return v.toString();
        }
        if (v instanceof BigDecimal) {
            return v;
        }
        if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return BigInteger.valueOf(((Number) v).longValue());
        }
        if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            // NaN and infinities stay text, which every numeric getter refuses with the key path.
            return Double.isFinite(d) ? new BigDecimal(Double.toString(d)) : Double.toString(d);
        }
        if (v instanceof Map || v instanceof Collection || v instanceof Object[]) {
            if (depth > MAX_DEPTH) {
                throw new ConfigurationException(path, "nested deeper than " + MAX_DEPTH + " levels");
            }
        }
        if (v instanceof Map) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                Object k = e.getKey();
                if (!(k instanceof String || k instanceof Number || k instanceof Boolean)) {
                    throw new ConfigurationException(
                            path, "expected keys that are strings, got a key of type " + typeName(k));
                }
                String key = k.toString();
                String childPath = join(path, key);
                if (key.length() > MAX_KEY_LENGTH) {
                    throw new ConfigurationException(
                            join(path, key.substring(0, 32) + "..."),
                            "key longer than " + MAX_KEY_LENGTH + " characters");
                }
                if (out.containsKey(key)) {
                    throw new ConfigurationException(childPath, "duplicate key");
                }
                out.put(key, copy(e.getValue(), childPath, depth + 1));
            }
            return Collections.unmodifiableMap(out);
        }
        if (v instanceof Collection || v instanceof Object[]) {
            Collection<?> items = v instanceof Object[] ? List.of((Object[]) v) : (Collection<?>) v;
            List<Object> out = new ArrayList<>(items.size());
            int i = 0;
            for (Object item : items) {
                out.add(copy(item, path + "[" + i++ + "]", depth + 1));
            }
            return Collections.unmodifiableList(out);
        }
        if (v instanceof Number) {
            // AtomicLong, LongAdder and the like: take the exact text when it is a number.
            BigDecimal d = toDecimal(v.toString());
            if (d != null) {
                return d;
            }
        }
        throw new ConfigurationException(
                path,
                "unsupported value of type " + typeName(v)
                        + ": expected a mapping, a list, a string, a number, true/false or nothing");
    }

    private static String typeName(Object v) {
        return v == null ? "null" : v.getClass().getName();
    }

    private static boolean isScalar(Object v) {
        return v instanceof String || v instanceof BigInteger || v instanceof BigDecimal || v instanceof Boolean;
    }

    private static String textOf(Object v) {
        return v.toString();
    }

    private static BigDecimal toDecimal(Object v) {
        if (v instanceof BigDecimal) {
            return (BigDecimal) v;
        }
        if (v instanceof BigInteger) {
            return new BigDecimal((BigInteger) v);
        }
        if (!(v instanceof String)) {
            return null;
        }
        String s = ((String) v).trim();
        if (s.isEmpty() || s.length() > MAX_NUMBER_TEXT) {
            return null;
        }
        try {
            return new BigDecimal(s);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static BigInteger toInteger(Object v) {
        if (v instanceof BigInteger) {
            return (BigInteger) v;
        }
        if (!(v instanceof String)) {
            return null;
        }
        String s = ((String) v).trim();
        if (s.isEmpty() || s.length() > MAX_NUMBER_TEXT || !s.matches("[-+]?\\d+")) {
            return null;
        }
        return new BigInteger(s);
    }

    private static String join(String path, String key) {
        return path == null || path.isEmpty() ? key : path + "." + key;
    }

    private static String describe(Object v) {
        if (v == null) {
            return "nothing";
        }
        if (v instanceof String) {
            String t = (String) v;
            return "\"" + (t.length() > 60 ? t.substring(0, 60) + "..." : t) + "\"";
        }
        return isScalar(v) ? textOf(v) : kind(v);
    }

    private static String kind(Object v) {
        if (v instanceof Map) {
            return "a mapping";
        }
        if (v instanceof List) {
            return "a list";
        }
        return v == null ? "nothing" : "a value";
    }

    private static String nearest(String key, Set<String> allowed) {
        if (key.length() > 64) {
            return null; // nothing allowed is that long; spare the quadratic distance
        }
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
