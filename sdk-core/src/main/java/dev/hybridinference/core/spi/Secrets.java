package dev.hybridinference.core.spi;

import java.util.AbstractMap;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Keeps secrets out of text that leaves the SDK: exception messages, receipts, {@code toString()} and
 * log lines. Every configured secret value (API keys, tokens, passwords) is registered here when a
 * provider or the config loader sees it; {@link #redact} then replaces each registered value, and every
 * bearer token, credential header and URL password whether registered or not, with {@value #MASK}.
 *
 * <p>Why a process-wide registry: the text that carries a secret back is usually written by a server
 * (an error body that echoes the {@code Authorization} header) or a parser (a YAML error quoting the
 * line), far from the code that knows the key. Redacting at the few places text leaves the SDK, against
 * every value the process was configured with, catches them all. Thread-safe.
 */
public final class Secrets {
    /** What a redacted value is replaced with. */
    public static final String MASK = "[REDACTED]";

    /** Values shorter than this are not registered: masking them would garble ordinary text. */
    private static final int MIN_LENGTH = 6;

    /**
     * At most this many values are kept; past it the oldest registered goes first. A refreshing token
     * (an hourly ID token, an Entra token) registers each new value, and an expired token matters less than
     * the fresh ones (a bearer token is still masked by the pattern).
     */
    static final int MAX_VALUES = 512;

    private static final Set<String> VALUES = ConcurrentHashMap.newKeySet();
    private static final java.util.Queue<String> ORDER = new java.util.ArrayDeque<>();
    /** The registered values, longest first; replaced whole on each registration. */
    private static volatile String[] longestFirst = new String[0];

    /**
     * A bearer or basic credential, or the value of a credential header or field, as servers echo them:
     * {@code Bearer abc}, {@code Authorization: xyz}, {@code "api-key":"xyz"}, {@code x-api-key=xyz}.
     */
    private static final Pattern CREDENTIAL =
            Pattern.compile("(?i)(\\b(?:bearer|basic)\\s+|\\b(?:authorization|proxy-authorization|api[-_]?key|x-api-key"
                    + "|ocp-apim-subscription-key|x-goog-api-key|access[-_]?token|id[-_]?token|password|secret"
                    + "|client[-_]?secret)[\"']?\\s*[:=]\\s*[\"'\\[(]?(?:(?:bearer|basic)\\s+)?)"
                    + "([^\\s\"',;}\\]]{4,})");

    /** The password of a URL's user info: {@code https://user:password@host/}. */
    private static final Pattern URL_PASSWORD = Pattern.compile("(://[^/\\s:@]*:)([^@\\s/]+)(@)");

    private Secrets() {}

    /**
     * Registers a secret value so that {@link #redact} masks it from now on. Null, blank and very short
     * values (under six characters) are ignored. Surrounding white space is trimmed.
     */
    public static void register(String value) {
        if (value == null) {
            return;
        }
        String v = value.trim();
        if (v.length() < MIN_LENGTH) {
            return;
        }
        synchronized (VALUES) {
            if (!VALUES.add(v)) {
                return;
            }
            ORDER.add(v);
            while (VALUES.size() > MAX_VALUES) {
                VALUES.remove(ORDER.poll());
            }
            // Longest first, so that a value containing another is masked whole.
            String[] sorted = VALUES.toArray(new String[0]);
            java.util.Arrays.sort(
                    sorted, java.util.Comparator.comparingInt(String::length).reversed());
            longestFirst = sorted;
        }
    }

    /** Whether {@code text} contains a registered secret value (not counting credential patterns). */
    public static boolean containsRegistered(String text) {
        if (text == null || text.isEmpty()) {
            return false;
        }
        for (String v : longestFirst) {
            if (text.contains(v)) {
                return true;
            }
        }
        return false;
    }

    /**
     * {@code text} with every registered secret value and every credential (bearer tokens, credential
     * headers and fields) replaced by {@value #MASK}; null stays null.
     */
    public static String redact(String text) {
        if (text == null || text.isEmpty()) {
            return text;
        }
        return redact(text, longestFirst);
    }

    /** {@link #redact(String)} against the given registered values, longest first. */
    private static String redact(String text, String[] values) {
        if (text.isEmpty()) {
            return text;
        }
        String out = text;
        for (String v : values) {
            if (out.contains(v)) {
                out = out.replace(v, MASK);
            }
        }
        if (out.indexOf('@') >= 0) {
            out = URL_PASSWORD.matcher(out).replaceAll("$1" + Matcher.quoteReplacement(MASK) + "$3");
        }
        Matcher m = CREDENTIAL.matcher(out);
        if (!m.find()) {
            return out;
        }
        StringBuilder sb = new StringBuilder(out.length());
        do {
            String value = m.group(2);
            m.appendReplacement(sb, Matcher.quoteReplacement(m.group(1) + (value.equals(MASK) ? value : MASK)));
        } while (m.find());
        m.appendTail(sb);
        return sb.toString();
    }

    /**
     * {@code t} itself when neither its message nor its causes' carry a secret; otherwise a copy chain of
     * {@link RedactedThrowable}s with the same classes named, redacted messages and the same stack traces.
     */
    public static Throwable redact(Throwable t) {
        if (t == null || !needsRedaction(t)) {
            return t;
        }
        RedactedThrowable copy = new RedactedThrowable(
                t.getClass().getName() + (t.getMessage() == null ? "" : ": " + redact(t.getMessage())),
                redact(t.getCause() == t ? null : t.getCause()));
        copy.setStackTrace(t.getStackTrace());
        return copy;
    }

    private static boolean needsRedaction(Throwable t) {
        for (int depth = 0; t != null && depth < 16; depth++, t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && !m.equals(redact(m))) {
                return true;
            }
        }
        return false;
    }

    /**
     * An unmodifiable copy of {@code attributes} in key order with every value passed through {@link
     * #redact(String)}; a map this method made is returned as it is, so that attributes passed from a
     * provider's result to its receipt are copied and redacted once. Keys and values must not be null.
     */
    public static Map<String, String> redactedCopy(Map<String, String> attributes) {
        if (attributes == null || attributes.isEmpty()) {
            return Map.of();
        }
        if (attributes instanceof RedactedMap) {
            return attributes;
        }
        String[] against = longestFirst;
        int size = attributes.size();
        int slot = 0;
        if (size <= MEMO_MAX_ENTRIES) {
            slot = attributes.hashCode() & (MEMO.length - 1);
            Memo m = MEMO[slot];
            if (m != null && m.against == against && m.matches(attributes)) {
                return m.redacted;
            }
        }
        boolean remember = size <= MEMO_MAX_ENTRIES;
        String[] keys = remember ? new String[size] : null;
        String[] values = remember ? new String[size] : null;
        TreeMap<String, String> copy = new TreeMap<>();
        int i = 0;
        for (Map.Entry<String, String> e : attributes.entrySet()) {
            String k = Objects.requireNonNull(e.getKey(), "attribute key");
            String v = e.getValue();
            if (v == null) {
                throw new NullPointerException("value of attribute " + k);
            }
            remember &= i < size && v.length() <= MEMO_MAX_LENGTH;
            if (remember) {
                keys[i] = k;
                values[i] = v;
            }
            i++;
            copy.put(k, redact(v, against));
        }
        RedactedMap redacted = new RedactedMap(copy);
        if (remember && i == size) {
            // Unsynchronized: a Memo is immutable (final fields), so a thread that sees one sees it whole, and
            // a thread that misses another's write only redacts again.
            MEMO[slot] = new Memo(keys, values, redacted, against);
        }
        return redacted;
    }

    /*
     * Providers attach the same few attributes call after call (the URL of the replica that answered, a
     * region), and copying and redacting them (a sorted map, the credential pattern over each value) was a
     * visible part of a call's cost. So the copies of small maps are remembered by content and handed out
     * again (they are unmodifiable). A remembered copy is used only while the registered values are those
     * it was redacted against: registering a value replaces longestFirst, which makes every remembered
     * copy stale.
     */

    /** The most entries, and the longest value, of a map whose copy is remembered. */
    private static final int MEMO_MAX_ENTRIES = 8;

    private static final int MEMO_MAX_LENGTH = 256;

    /** Remembered copies, by the original map's hash code; a power-of-two size. */
    private static final Memo[] MEMO = new Memo[64];

    /** A map's entries in its iteration order, its redacted copy, and the values it was redacted against. */
    private static final class Memo {
        final String[] keys;
        final String[] values;
        final Map<String, String> redacted;
        final String[] against;

        Memo(String[] keys, String[] values, Map<String, String> redacted, String[] against) {
            this.keys = keys;
            this.values = values;
            this.redacted = redacted;
            this.against = against;
        }

        /** Whether {@code map} holds these entries (in the same iteration order, a cheap and safe test). */
        boolean matches(Map<String, String> map) {
            if (map.size() != keys.length) {
                return false;
            }
            int i = 0;
            for (Map.Entry<String, String> e : map.entrySet()) {
                if (i >= keys.length || !keys[i].equals(e.getKey()) || !values[i].equals(e.getValue())) {
                    return false;
                }
                i++;
            }
            return i == keys.length;
        }
    }

    /** A map whose values were redacted: read-only. */
    private static final class RedactedMap extends AbstractMap<String, String> {
        private final Map<String, String> map;

        RedactedMap(TreeMap<String, String> map) {
            this.map = Collections.unmodifiableMap(map);
        }

        @Override
        public Set<Map.Entry<String, String>> entrySet() {
            return map.entrySet();
        }

        @Override
        public String get(Object key) {
            return map.get(key);
        }

        @Override
        public boolean containsKey(Object key) {
            return map.containsKey(key);
        }

        @Override
        public int size() {
            return map.size();
        }
    }

    /** Stands in for an exception whose message carried a secret; its message names the original class. */
    public static final class RedactedThrowable extends RuntimeException {
        RedactedThrowable(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
