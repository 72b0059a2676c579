package dev.hybridinference.sagemaker;

import java.time.Clock;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The stateful sessions this client opened, from the caller's session id ({@link
 * dev.hybridinference.core.RequestOptions#sessionId()}) to the id SageMaker's container issued. Bounded:
 * beyond {@code max} the least recently used is forgotten; an entry past the expiry the container gave is
 * dropped when next looked up, and a session the platform reported closed is dropped at once. Thread-safe.
 */
final class Sessions {
    /** What to send to open a session (InvokeEndpoint only). */
    static final String NEW_SESSION = "NEW_SESSION";

    private final int max;
    private final Clock clock;
    private final LinkedHashMap<String, Entry> byCaller;

    private record Entry(String platformId, Instant expires) {}

    Sessions(int max, Clock clock) {
        if (max < 1) {
            throw new IllegalArgumentException("max must be positive, got " + max);
        }
        this.max = max;
        this.clock = clock;
        this.byCaller = new LinkedHashMap<>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Entry> eldest) {
                return size() > Sessions.this.max;
            }
        };
    }

    /** The platform's id for the caller's session, or null when there is none (or it expired). */
    synchronized String lookup(String callerId) {
        Entry e = byCaller.get(callerId);
        if (e == null) {
            return null;
        }
        if (e.expires != null && !clock.instant().isBefore(e.expires)) {
            byCaller.remove(callerId);
            return null;
        }
        return e.platformId;
    }

    /**
     * The container opened a session for the caller: {@code header} is the value of {@code
     * X-Amzn-SageMaker-New-Session-Id}, {@code <id>} optionally followed by {@code ; Expires=<time>} (an
     * ISO-8601 instant or an HTTP date; a time in another form is ignored and the session kept until closed).
     */
    synchronized void opened(String callerId, String header) {
        String[] parts = header.split(";");
        String id = parts[0].trim();
        if (id.isEmpty()) {
            return;
        }
        Instant expires = null;
        for (int i = 1; i < parts.length; i++) {
            String p = parts[i].trim();
            if (p.regionMatches(true, 0, "Expires=", 0, 8)) {
                expires = parseTime(p.substring(8).trim());
            }
        }
        byCaller.put(callerId, new Entry(id, expires));
    }

    /** The platform reported the session closed ({@code X-Amzn-SageMaker-Closed-Session-Id}). */
    synchronized void closed(String platformId) {
        String id = platformId.split(";")[0].trim();
        for (Iterator<Entry> it = byCaller.values().iterator(); it.hasNext(); ) {
            if (it.next().platformId.equals(id)) {
                it.remove();
            }
        }
    }

    /** Forgets the caller's session (the platform no longer knows it). */
    synchronized void forget(String callerId) {
        byCaller.remove(callerId);
    }

    /** How many sessions are held. */
    synchronized int size() {
        return byCaller.size();
    }

    private static Instant parseTime(String text) {
        try {
            return Instant.parse(text);
        } catch (DateTimeParseException e) {
            try {
                return ZonedDateTime.parse(text, DateTimeFormatter.RFC_1123_DATE_TIME)
                        .toInstant();
            } catch (DateTimeParseException e2) {
                return null;
            }
        }
    }
}
