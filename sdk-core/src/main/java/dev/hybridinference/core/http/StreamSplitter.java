package dev.hybridinference.core.http;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
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

    /**
     * Thrown when a line exceeds the limit. A provider reports it as the stream's failure with {@link
     * StreamAssembler#malformed}, which names the provider and endpoint.
     */
    public static final class LineTooLongException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LineTooLongException(long limit) {
            super("a stream line exceeds " + limit + " bytes");
        }
    }

    /** The least room {@link #readFrom} reads into; it reads what is there, up to the room it has. */
    private static final int READ_SIZE = 2048;

    /** The largest array the JVM reliably allocates. */
    private static final int MAX_ARRAY = Integer.MAX_VALUE - 16;

    private static final byte[] EVENT = {'e', 'v', 'e', 'n', 't'};
    private static final byte[] ERROR = {'e', 'r', 'r', 'o', 'r'};
    private static final byte[] DATA = {'d', 'a', 't', 'a'};

    private final Format format;
    private final long limit;
    private final int maxLine;

    /** The unconsumed input is {@code buf[start, end)}; bytes before {@code scan} hold no line end. */
    private byte[] buf = new byte[4096];

    private int start;
    private int end;
    private int scan;
    /** The last line ended with {@code \r}: a {@code \n} right after it belongs to that line end. */
    private boolean skipLf;

    private boolean finished;

    /** Where the line whose end {@link #nextLine()} returned begins. */
    private int lineStart;

    /**
     * The data of the event being read, then of the event ready, as bytes: lines are never decoded one by
     * one, only the whole event's data is, once, and the transport hands the bytes to the JSON parser
     * without decoding them at all.
     */
    private byte[] data = new byte[256];

    private int dataLength;
    /** Whether the event being read has a data line (an empty one counts). */
    private boolean hasData;
    /** Whether the event being read was marked as an error. */
    private boolean errorEvent;
    /** Whether the event returned last by {@link #advance()} is an error event. */
    private boolean readyError;

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
        return advance() ? new Event(new String(data, 0, dataLength, StandardCharsets.UTF_8), readyError) : null;
    }

    /**
     * Moves to the next complete event without decoding it: its data is then {@link #data()}{@code [0,
     * }{@link #dataLength()}{@code )}, valid until the next call. False when no event is complete.
     */
    boolean advance() {
        while (true) {
            int lineEnd = nextLine();
            if (lineEnd < 0) {
                return false;
            }
            if (format == Format.JSON_LINES ? jsonLine(lineStart, lineEnd) : sseLine(lineStart, lineEnd)) {
                return true;
            }
        }
    }

    /** The bytes of the event {@link #advance()} moved to. */
    byte[] data() {
        return data;
    }

    /** How many bytes of {@link #data()} the event has. */
    int dataLength() {
        return dataLength;
    }

    /** Whether the event {@link #advance()} moved to is an error event. */
    boolean isError() {
        return readyError;
    }

    /**
     * Finds the next line: returns the index in {@code buf} where it ends (its terminator) and sets {@code
     * lineStart}; -1 when no complete line is buffered.
     */
    private int nextLine() {
        if (skipLf) {
            if (start == end) {
                if (!finished) {
                    return -1; // the next byte decides whether the \r was half of a \r\n
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
                if (i - start > maxLine) {
                    throw new LineTooLongException(limit);
                }
                lineStart = start;
                start = i + 1;
                scan = start;
                skipLf = c == '\r';
                return i;
            }
        }
        scan = end;
        if (end - start > maxLine) {
            throw new LineTooLongException(limit);
        }
        if (finished && start < end) {
            lineStart = start;
            start = end;
            scan = end;
            return end;
        }
        return -1;
    }

    /** A JSON line: every non-blank line is an event. */
    private boolean jsonLine(int from, int to) {
        if (isBlank(from, to)) {
            return false;
        }
        dataLength = 0;
        appendData(from, to);
        readyError = false;
        return true;
    }

    private boolean isBlank(int from, int to) {
        for (int i = from; i < to; i++) {
            byte c = buf[i];
            if (c != ' ' && c != '\t') {
                return false;
            }
        }
        return true;
    }

    /** Applies one SSE line; true when it completes an event. */
    private boolean sseLine(int from, int to) {
        byte[] b = buf;
        if (from == to) {
            if (!hasData) {
                errorEvent = false;
                return false;
            }
            return dispatch();
        }
        byte c0 = b[from];
        if (c0 == ':') {
            return false;
        }
        if (format == Format.AUTO && (c0 == '{' || c0 == '[')) {
            hasData = false; // a JSON line ends any SSE event left unfinished
            errorEvent = false;
            return jsonLine(from, to);
        }
        int colon = from;
        while (colon < to && b[colon] != ':') {
            colon++;
        }
        int fieldLength = colon - from;
        int value = colon + 1;
        if (value < to && b[value] == ' ') {
            value++;
        }
        value = Math.min(value, to);
        if (fieldLength == 5 && startsWith(from, EVENT)) {
            errorEvent = to - value == 5 && startsWith(value, ERROR);
            return false;
        }
        boolean bareError = fieldLength == 5 && startsWith(from, ERROR);
        if (!bareError && (fieldLength != 4 || !startsWith(from, DATA))) {
            return false; // id:, retry: and unknown fields
        }
        if (bareError && !hasData) {
            // llama.cpp's "error: {...}" line is an event of its own, with or without a blank line after.
            dataLength = 0;
            appendData(value, to);
            errorEvent = false;
            readyError = true;
            return true;
        }
        if (bareError) {
            errorEvent = true;
        }
        if (hasData) {
            appendByte('\n');
        } else {
            dataLength = 0;
            hasData = true;
        }
        appendData(value, to);
        return false;
    }

    private boolean dispatch() {
        readyError = errorEvent;
        hasData = false;
        errorEvent = false;
        return true;
    }

    private boolean startsWith(int at, byte[] prefix) {
        for (int i = 0; i < prefix.length; i++) {
            if (buf[at + i] != prefix[i]) {
                return false;
            }
        }
        return true;
    }

    private void appendData(int from, int to) {
        int n = to - from;
        ensureData(n);
        System.arraycopy(buf, from, data, dataLength, n);
        dataLength += n;
    }

    private void appendByte(char c) {
        ensureData(1);
        data[dataLength++] = (byte) c;
    }

    private void ensureData(int more) {
        long needed = (long) dataLength + more;
        if (needed > data.length) {
            if (needed > MAX_ARRAY) {
                throw new LineTooLongException(limit);
            }
            data = Arrays.copyOf(data, (int) Math.min(MAX_ARRAY, Math.max(needed, 2L * data.length)));
        }
    }
}
