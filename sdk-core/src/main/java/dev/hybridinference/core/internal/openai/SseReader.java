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
        data.setLength(0);
        boolean any = false;
        while (true) {
            String line = source.readUtf8Line();
            if (line == null) {
                return null;
            }
            if (line.isEmpty()) {
                if (any) {
                    return data.toString();
                }
                continue;
            }
            if (line.charAt(0) == ':') {
                continue;
            }
            int colon = line.indexOf(':');
            String field = colon < 0 ? line : line.substring(0, colon);
            if (!field.equals("data")) {
                continue;
            }
            int start = colon < 0 ? line.length() : colon + 1;
            if (start < line.length() && line.charAt(start) == ' ') {
                start++;
            }
            if (any) {
                data.append('\n');
            }
            data.append(line, start, line.length());
            any = true;
        }
    }
}
