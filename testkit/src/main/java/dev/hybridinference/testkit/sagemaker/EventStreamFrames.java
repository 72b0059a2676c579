package dev.hybridinference.testkit.sagemaker;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.zip.CRC32;

/**
 * Encodes and decodes the binary {@code application/vnd.amazon.eventstream} framing that SageMaker's {@code
 * InvokeEndpointWithResponseStream} answers with.
 *
 * <p>A frame is, with big-endian integers: the total length (4 bytes, the whole frame), the headers' length
 * (4 bytes), a CRC-32 of those first 8 bytes, the headers, the payload, and a CRC-32 of everything before it.
 * A header is its name's length (1 byte), the UTF-8 name, a type byte and the value; the encoder writes only
 * strings (type 7: a 2-byte length and UTF-8), which is all SageMaker sends. The decoder reads every header
 * type and shows each value as text.
 */
public final class EventStreamFrames {
    /** Total length, headers length and prelude CRC. */
    private static final int PRELUDE_BYTES = 12;
    /** The prelude plus the trailing message CRC. */
    private static final int OVERHEAD_BYTES = PRELUDE_BYTES + 4;

    private static final int STRING_TYPE = 7;

    private EventStreamFrames() {}

    /** One decoded frame: its headers in the order they came (values as text) and its payload. */
    public record Frame(Map<String, String> headers, byte[] payload) {
        /** Copies the headers into an unmodifiable map that keeps their order. */
        public Frame {
            headers = Collections.unmodifiableMap(new LinkedHashMap<>(headers));
            payload = payload.clone();
        }

        /** The value of header {@code name}, or null when the frame has no such header. */
        public String header(String name) {
            return headers.get(name);
        }

        /** The payload decoded as UTF-8. */
        public String payloadUtf8() {
            return new String(payload, StandardCharsets.UTF_8);
        }

        /** A copy of the payload. */
        @Override
        public byte[] payload() {
            return payload.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Frame f && headers.equals(f.headers) && Arrays.equals(payload, f.payload);
        }

        @Override
        public int hashCode() {
            return 31 * headers.hashCode() + Arrays.hashCode(payload);
        }

        @Override
        public String toString() {
            return "Frame" + headers + "(" + payload.length + " bytes)";
        }
    }

    /**
     * Encodes one frame with string headers, written in the map's iteration order (pass a {@link
     * LinkedHashMap} to fix it), and {@code payload}.
     *
     * @throws IllegalArgumentException when a header name is empty or longer than 255 bytes, or a value is
     *     longer than 65535 bytes
     */
    public static byte[] encode(Map<String, String> stringHeaders, byte[] payload) {
        Objects.requireNonNull(payload, "payload");
        ByteArrayOutputStream headers = new ByteArrayOutputStream();
        for (Map.Entry<String, String> h : stringHeaders.entrySet()) {
            byte[] name = h.getKey().getBytes(StandardCharsets.UTF_8);
            byte[] value = h.getValue().getBytes(StandardCharsets.UTF_8);
            if (name.length == 0 || name.length > 255) {
                throw new IllegalArgumentException("header name must be 1 to 255 bytes: " + h.getKey());
            }
            if (value.length > 0xFFFF) {
                throw new IllegalArgumentException("header value longer than 65535 bytes: " + h.getKey());
            }
            headers.write(name.length);
            headers.writeBytes(name);
            headers.write(STRING_TYPE);
            headers.write(value.length >>> 8);
            headers.write(value.length & 0xFF);
            headers.writeBytes(value);
        }
        byte[] headerBytes = headers.toByteArray();
        int total = OVERHEAD_BYTES + headerBytes.length + payload.length;
        ByteBuffer frame = ByteBuffer.allocate(total);
        frame.putInt(total).putInt(headerBytes.length);
        frame.putInt(crc(frame.array(), 0, 8));
        frame.put(headerBytes).put(payload);
        frame.putInt(crc(frame.array(), 0, total - 4));
        return frame.array();
    }

    /**
     * A SageMaker data frame: headers {@code :event-type=PayloadPart}, {@code
     * :content-type=application/octet-stream}, {@code :message-type=event} (in that order) and the raw
     * container bytes as payload.
     */
    public static byte[] payloadPart(byte[] bytes) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(":event-type", "PayloadPart");
        headers.put(":content-type", "application/octet-stream");
        headers.put(":message-type", "event");
        return encode(headers, bytes);
    }

    /**
     * A modelled in-stream error: headers {@code :exception-type} (such as {@code ModelStreamError} or {@code
     * InternalStreamFailure}), {@code :content-type=application/json}, {@code :message-type=exception}, and
     * a JSON payload such as {@code {"Message":"...","ErrorCode":"StreamBroken"}}.
     */
    public static byte[] exception(String exceptionType, byte[] jsonPayload) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(":exception-type", exceptionType);
        headers.put(":content-type", "application/json");
        headers.put(":message-type", "exception");
        return encode(headers, jsonPayload);
    }

    /**
     * A generic (unmodelled) in-stream error: headers {@code :message-type=error}, {@code :error-code} and
     * {@code :error-message}, and no payload.
     */
    public static byte[] error(String errorCode, String errorMessage) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(":message-type", "error");
        headers.put(":error-code", errorCode);
        headers.put(":error-message", errorMessage);
        return encode(headers, new byte[0]);
    }

    /**
     * Decodes a sequence of whole frames, checking both CRCs of each.
     *
     * @throws IllegalArgumentException when a frame is truncated, its lengths do not add up, a header is
     *     malformed, or a CRC does not match
     */
    public static List<Frame> decodeAll(byte[] bytes) {
        List<Frame> frames = new ArrayList<>();
        int at = 0;
        while (at < bytes.length) {
            if (bytes.length - at < OVERHEAD_BYTES) {
                throw new IllegalArgumentException("truncated frame at offset " + at);
            }
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            int total = buf.getInt(at);
            int headersLength = buf.getInt(at + 4);
            int preludeCrc = buf.getInt(at + 8);
            if (crc(bytes, at, 8) != preludeCrc) {
                throw new IllegalArgumentException("prelude CRC mismatch in the frame at offset " + at);
            }
            if (total < OVERHEAD_BYTES || headersLength < 0 || headersLength > total - OVERHEAD_BYTES) {
                throw new IllegalArgumentException("inconsistent lengths in the frame at offset " + at);
            }
            if (total > bytes.length - at) {
                throw new IllegalArgumentException("truncated frame at offset " + at);
            }
            if (crc(bytes, at, total - 4) != buf.getInt(at + total - 4)) {
                throw new IllegalArgumentException("message CRC mismatch in the frame at offset " + at);
            }
            int headersStart = at + PRELUDE_BYTES;
            int payloadStart = headersStart + headersLength;
            Map<String, String> headers = decodeHeaders(bytes, headersStart, payloadStart);
            frames.add(new Frame(headers, Arrays.copyOfRange(bytes, payloadStart, at + total - 4)));
            at += total;
        }
        return frames;
    }

    private static Map<String, String> decodeHeaders(byte[] bytes, int from, int to) {
        Map<String, String> headers = new LinkedHashMap<>();
        ByteBuffer buf = ByteBuffer.wrap(bytes, from, to - from);
        try {
            while (buf.position() < to) {
                int nameLength = buf.get() & 0xFF;
                String name = utf8(buf, nameLength);
                int type = buf.get() & 0xFF;
                String value = switch (type) {
                    case 0 -> "true";
                    case 1 -> "false";
                    case 2 -> Byte.toString(buf.get());
                    case 3 -> Short.toString(buf.getShort());
                    case 4 -> Integer.toString(buf.getInt());
                    case 5 -> Long.toString(buf.getLong());
                    case 6 -> {
                        byte[] raw = new byte[buf.getShort() & 0xFFFF];
                        buf.get(raw);
                        yield Base64.getEncoder().encodeToString(raw);
                    }
                    case STRING_TYPE -> utf8(buf, buf.getShort() & 0xFFFF);
                    case 8 -> Instant.ofEpochMilli(buf.getLong()).toString();
                    case 9 -> new UUID(buf.getLong(), buf.getLong()).toString();
                    default ->
                        throw new IllegalArgumentException("unknown header type " + type + " for header " + name);
                };
                if (buf.position() > to) {
                    throw new IllegalArgumentException("header " + name + " runs past the headers");
                }
                headers.put(name, value);
            }
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("truncated headers", e);
        }
        return headers;
    }

    private static String utf8(ByteBuffer buf, int length) {
        byte[] raw = new byte[length];
        buf.get(raw);
        return new String(raw, StandardCharsets.UTF_8);
    }

    private static int crc(byte[] bytes, int offset, int length) {
        CRC32 crc = new CRC32();
        crc.update(bytes, offset, length);
        return (int) crc.getValue();
    }
}
