package dev.hybridinference.core.internal.openai;

import java.io.IOException;
import okio.BufferedSource;

/**
 * Reads Server-Sent Events and returns each event's data (multi-line data joined with newlines).
 * Comments, {@code event:}, {@code id:} and {@code retry:} lines are skipped. Internal: not part of the
 * public API.
 */
public final class SseReader {
    private final BufferedSource source;
    private final StringBuilder data = new StringBuilder(256);

    /** Reads from {@code source}. */
    public SseReader(BufferedSource source) {
        this.source = source;
    }

    /**
     * The data of the next event; null at the end of the input. An event cut off by the end of input
     * (no blank line after it) is dropped, as the SSE specification says.
     */
    public String next() throws IOException {
        String first = null;
        boolean multi = false;
        while (true) {
            String line = source.readUtf8Line();
            if (line == null) {
                return null;
            }
            if (line.isEmpty()) {
                if (first != null) {
                    return multi ? data.toString() : first;
                }
                continue;
            }
            if (line.charAt(0) == ':') {
                continue;
            }
            int colon = line.indexOf(':');
            int fieldEnd = colon < 0 ? line.length() : colon;
            if (fieldEnd != 4 || !line.startsWith("data")) {
                continue;
            }
            int start = colon < 0 ? line.length() : colon + 1;
            if (start < line.length() && line.charAt(start) == ' ') {
                start++;
            }
            String value = line.substring(start);
            if (first == null) {
                first = value;
            } else {
                if (!multi) {
                    data.setLength(0);
                    data.append(first);
                    multi = true;
                }
                data.append('\n').append(value);
            }
        }
    }
}
