package dev.hybridinference.core.internal.openai;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import okio.BufferedSource;

/**
 * Reads Server-Sent Events and returns each event's data (multi-line data joined with newlines).
 * Comments, {@code id:} and {@code retry:} lines are skipped. Internal: not part of the public API.
 *
 * <p>Two things beyond the SSE specification, both needed against real servers:
 *
 * <ul>
 *   <li>Lines are bounded: a line longer than the limit fails with {@link LineTooLongException} instead of
 *       growing a buffer until the heap runs out (a server that never sends a newline).
 *   <li>Error events are recognised in both shapes seen in the wild: {@code event: error} followed by
 *       {@code data:}, and llama.cpp's bare {@code error: {...}} line, which the specification would
 *       ignore as an unknown field. {@link #isError()} tells the caller which kind the last event was.
 * </ul>
 *
 * <p>Bytes are decoded as UTF-8 with malformed sequences replaced by U+FFFD, the same rule the blocking
 * path applies, so a blocking and a streamed answer to the same bytes are identical.
 */
public final class SseReader {
    /** Thrown when a line exceeds the limit. */
    public static final class LineTooLongException extends IOException {
        LineTooLongException(long limit) {
            super("an event-stream line exceeds " + limit + " bytes");
        }
    }

    private final BufferedSource source;
    private final long maxLineBytes;
    private final StringBuilder data = new StringBuilder(256);
    private boolean error;

    /** Reads from {@code source} with lines of at most 1 MiB. */
    public SseReader(BufferedSource source) {
        this(source, 1 << 20);
    }

    /** Reads from {@code source}; a line longer than {@code maxLineBytes} fails the read. */
    public SseReader(BufferedSource source, long maxLineBytes) {
        this.source = source;
        this.maxLineBytes = maxLineBytes;
    }

    /** Whether the event last returned by {@link #next()} was an error event. */
    public boolean isError() {
        return error;
    }

    /**
     * The data of the next event; null at the end of the input. An event cut off by the end of input
     * (no blank line after it) is dropped, as the SSE specification says.
     *
     * @throws LineTooLongException when a line exceeds the limit
     */
    public String next() throws IOException {
        String first = null;
        boolean multi = false;
        boolean errorEvent = false;
        while (true) {
            String line = readLine();
            if (line == null) {
                return null;
            }
            if (line.isEmpty()) {
                if (first != null) {
                    error = errorEvent;
                    return multi ? data.toString() : first;
                }
                errorEvent = false;
                continue;
            }
            if (line.charAt(0) == ':') {
                continue;
            }
            int colon = line.indexOf(':');
            int fieldEnd = colon < 0 ? line.length() : colon;
            String value = value(line, colon);
            if (fieldEnd == 5 && line.startsWith("event")) {
                errorEvent = value.equals("error");
                continue;
            }
            boolean bareError = fieldEnd == 5 && line.startsWith("error");
            if (!bareError && (fieldEnd != 4 || !line.startsWith("data"))) {
                continue;
            }
            if (bareError) {
                // llama.cpp's "error: {...}" line is an event of its own, with or without a blank line after.
                errorEvent = true;
                if (first == null) {
                    error = true;
                    return value;
                }
            }
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

    private static String value(String line, int colon) {
        int start = colon < 0 ? line.length() : colon + 1;
        if (start < line.length() && line.charAt(start) == ' ') {
            start++;
        }
        return line.substring(start);
    }

    /** The next line without its terminator; null at the end of input. */
    private String readLine() throws IOException {
        long newline = source.indexOf((byte) '\n', 0, maxLineBytes + 1);
        byte[] bytes;
        if (newline < 0) {
            long buffered = source.getBuffer().size();
            if (buffered > maxLineBytes) {
                throw new LineTooLongException(maxLineBytes);
            }
            if (buffered == 0) {
                return null;
            }
            bytes = source.readByteArray(); // the last line, cut by the end of input
        } else {
            bytes = source.readByteArray(newline);
            source.skip(1);
        }
        int length = bytes.length;
        if (length > 0 && bytes[length - 1] == '\r') {
            length--;
        }
        return new String(bytes, 0, length, StandardCharsets.UTF_8);
    }
}
