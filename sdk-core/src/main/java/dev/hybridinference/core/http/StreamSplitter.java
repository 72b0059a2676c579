package dev.hybridinference.core.http;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Objects;
import okio.BufferedSource;

/**
 * Cuts a streamed response body into events: Server-Sent Events, or newline-delimited JSON as some
 * inference containers stream it. Feed it byte chunks as they arrive, split anywhere (in the middle of a
 * line, of a multi-byte UTF-8 character, of a {@code \r\n}), then take the complete events with {@link
 * #next()} until it returns null; at the end of the body call {@link #finish()} and take the rest. The
 * same input yields the same events however it is split.
 *
 * <pre>{@code
 * StreamSplitter splitter = new StreamSplitter(StreamSplitter.Format.SSE, limits.maxLineBytes());
 * for (byte[] part : parts) {              // as the platform delivers them
 *     splitter.feed(part, 0, part.length);
 *     for (StreamSplitter.Event e; (e = splitter.next()) != null; ) {
 *         handle(e);
 *     }
 * }
 * splitter.finish();                        // then drain next() once more
 * }</pre>
 *
 * <p>Lines end with {@code \n}, {@code \r\n} or {@code \r}. Bytes are decoded as UTF-8 a whole line at a
 * time, malformed sequences replaced with U+FFFD (the rule the blocking path applies), so a character
 * split across two chunks decodes whole. A line longer than the limit fails with {@link
 * LineTooLongException} before more than about the limit plus one chunk is buffered: a server that never
 * sends a newline cannot exhaust the heap.
 *
 * <p>In {@link Format#SSE} the events are those of the SSE specification (multi-line data joined with
 * {@code \n}; comments, {@code id:} and {@code retry:} skipped; an event cut off by the end of the body
 * dropped), plus error events in both shapes seen in the wild: {@code event: error} followed by {@code
 * data:}, and llama.cpp's bare {@code error: {...}} line, an event of its own. Not thread-safe: one
 * reader feeds and drains it.
 */
public final class StreamSplitter {
    /** How the body is framed. */
    public enum Format {
        /** {@code text/event-stream}. */
        SSE,
        /** Newline-delimited JSON ({@code application/jsonlines}, {@code application/x-ndjson}): each non-blank line is an event. */
        JSON_LINES,
        /**
         * Either, line by line: a line that begins with <code>{</code> is an event of its own, as in JSON lines;
         * any other line follows the SSE rules. For bodies whose framing the platform does not tell.
         */
        AUTO
    }

    /**
     * One event.
     *
     * @param data the event's data (an SSE event's data lines joined with {@code \n}, or one JSON line)
     * @param error whether the server marked it as an error event ({@code event: error} or a bare {@code
     *     error:} line); a JSON error object sent as ordinary data is not marked here
     */
    public record Event(String data, boolean error) {
        /** Requires the data. */
        public Event {
            Objects.requireNonNull(data, "data");
        }
    }

    /** Thrown when a line exceeds the limit. */
    public static final class LineTooLongException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LineTooLongException(long limit) {
            super("a stream line exceeds " + limit + " bytes");
        }
    }

    /** The least room {@link #readFrom} reads into: okio's segment size. */
    private static final int READ_SIZE = 8192;

    /** The largest array the JVM reliably allocates. */
    private static final int MAX_ARRAY = Integer.MAX_VALUE - 16;

    private final Format format;
    private final long limit;
    private final int maxLine;

    /** The unconsumed input is {@code buf[start, end)}; bytes before {@code scan} hold no line end. */
    private byte[] buf = new byte[8192];

    private int start;
    private int end;
    private int scan;
    /** The last line ended with {@code \r}: a {@code \n} right after it belongs to that line end. */
    private boolean skipLf;

    private boolean finished;

    // The SSE event being read.
    private String first;
    private StringBuilder joined;
    private boolean multi;
    private boolean errorEvent;

    /** A splitter with lines of at most 1 MiB. */
    public StreamSplitter(Format format) {
        this(format, 1 << 20);
    }

    /**
     * A splitter.
     *
     * @param format how the body is framed
     * @param maxLineBytes the longest line, in bytes, without its terminator
     */
    public StreamSplitter(Format format, long maxLineBytes) {
        this.format = Objects.requireNonNull(format, "format");
        if (maxLineBytes <= 0) {
            throw new IllegalArgumentException("maxLineBytes must be positive, got " + maxLineBytes);
        }
        this.limit = maxLineBytes;
        this.maxLine = (int) Math.min(maxLineBytes, MAX_ARRAY / 2);
    }

    /**
     * Adds the next bytes of the body. They are copied; drain {@link #next()} before feeding more, so that
     * no more than one partial line stays buffered.
     *
     * @throws IllegalStateException after {@link #finish()}
     */
    public void feed(byte[] bytes, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, bytes.length);
        ensureRoom(length);
        System.arraycopy(bytes, offset, buf, end, length);
        end += length;
    }

    /** Adds the remaining bytes of {@code bytes}, advancing its position; see {@link #feed(byte[], int, int)}. */
    public void feed(ByteBuffer bytes) {
        int length = bytes.remaining();
        ensureRoom(length);
        bytes.get(buf, end, length);
        end += length;
    }

    /**
     * Reads what {@code source} has (blocking only while it has nothing) straight into the buffer, sparing
     * a copy; returns the bytes read, or -1 at the end of the body.
     */
    int readFrom(BufferedSource source) throws IOException {
        ensureRoom(READ_SIZE);
        int n = source.read(buf, end, buf.length - end);
        if (n > 0) {
            end += n;
        }
        return n;
    }

    /**
     * Makes room for {@code length} more bytes at {@code end}: drops what was consumed, and grows the
     * buffer when one partial line and the new bytes do not fit.
     */
    private void ensureRoom(int length) {
        if (finished) {
            throw new IllegalStateException("the stream was finished; nothing can be fed after the end");
        }
        if (buf.length - end >= length) {
            return;
        }
        int kept = end - start;
        if ((long) kept + length > MAX_ARRAY) {
            throw new LineTooLongException(limit);
        }
        byte[] target = buf;
        if (kept + length > buf.length) {
            target = new byte[(int) Math.min(MAX_ARRAY, Math.max((long) buf.length * 2, (long) kept + length))];
        }
        System.arraycopy(buf, start, target, 0, kept);
        buf = target;
        scan -= start;
        end = kept;
        start = 0;
    }

    /**
     * Marks the end of the body; {@link #next()} then returns what the last bytes complete. An unterminated
     * last line counts as a line: a JSON line is an event, and a bare SSE {@code error:} line too, but an
     * SSE event without its closing blank line is dropped, as the specification says.
     */
    public void finish() {
        finished = true;
    }

    /**
     * The next complete event; null when the bytes fed so far complete no more (or, after {@link
     * #finish()}, at the end of the body).
     *
     * @throws LineTooLongException when a line exceeds the limit
     */
    public Event next() {
        while (true) {
            String line = nextLine();
            if (line == null) {
                return null;
            }
            Event e = format == Format.JSON_LINES ? jsonLine(line) : sseLine(line);
            if (e != null) {
                return e;
            }
        }
    }

    /** The next line without its terminator; null when no complete line is buffered. */
    private String nextLine() {
        if (skipLf) {
            if (start == end) {
                if (!finished) {
                    return null; // the next byte decides whether the \r was half of a \r\n
                }
            } else {
                if (buf[start] == '\n') {
                    start++;
                }
                if (scan < start) {
                    scan = start;
                }
            }
            skipLf = false;
        }
        byte[] b = buf;
        for (int i = scan; i < end; i++) {
            byte c = b[i];
            if (c == '\n' || c == '\r') {
                int length = i - start;
                if (length > maxLine) {
                    throw new LineTooLongException(limit);
                }
                String line = new String(b, start, length, StandardCharsets.UTF_8);
                start = i + 1;
                scan = start;
                skipLf = c == '\r';
                return line;
            }
        }
        scan = end;
        if (end - start > maxLine) {
            throw new LineTooLongException(limit);
        }
        if (finished && start < end) {
            String line = new String(b, start, end - start, StandardCharsets.UTF_8);
            start = end;
            scan = end;
            return line;
        }
        return null;
    }

    private static Event jsonLine(String line) {
        return line.isBlank() ? null : new Event(line, false);
    }

    /** Applies one SSE line; returns the event it completes, if any. */
    private Event sseLine(String line) {
        if (line.isEmpty()) {
            if (first == null) {
                errorEvent = false;
                return null;
            }
            return dispatch();
        }
        char c0 = line.charAt(0);
        if (c0 == ':') {
            return null;
        }
        if (format == Format.AUTO && (c0 == '{' || c0 == '[')) {
            return new Event(line, false);
        }
        int colon = line.indexOf(':');
        int fieldEnd = colon < 0 ? line.length() : colon;
        if (fieldEnd == 5 && line.startsWith("event")) {
            errorEvent = value(line, colon).equals("error");
            return null;
        }
        boolean bareError = fieldEnd == 5 && line.startsWith("error");
        if (!bareError && (fieldEnd != 4 || !line.startsWith("data"))) {
            return null; // id:, retry: and unknown fields
        }
        String value = value(line, colon);
        if (bareError) {
            // llama.cpp's "error: {...}" line is an event of its own, with or without a blank line after.
            errorEvent = true;
            if (first == null) {
                errorEvent = false;
                return new Event(value, true);
            }
        }
        if (first == null) {
            first = value;
        } else {
            if (!multi) {
                if (joined == null) {
                    joined = new StringBuilder(256);
                }
                joined.setLength(0);
                joined.append(first);
                multi = true;
            }
            joined.append('\n').append(value);
        }
        return null;
    }

    private Event dispatch() {
        Event e = new Event(multi ? joined.toString() : first, errorEvent);
        first = null;
        multi = false;
        errorEvent = false;
        return e;
    }

    private static String value(String line, int colon) {
        int from = colon < 0 ? line.length() : colon + 1;
        if (from < line.length() && line.charAt(from) == ' ') {
            from++;
        }
        return line.substring(from);
    }
}
