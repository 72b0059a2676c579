package dev.hybridinference.localgpu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The metadata of a GGUF file (version 2 or 3): every key-value pair, arrays included, read with every
 * count and length checked against the file's size. Tensor data is not read. Immutable.
 */
public final class GgufMetadata {
    private static final int MAGIC = 0x46554747;
    private static final long MAX_STRING = 1L << 30;

    private final int version;
    private final long tensorCount;
    private final Map<String, Object> values;

    private GgufMetadata(int version, long tensorCount, Map<String, Object> values) {
        this.version = version;
        this.tensorCount = tensorCount;
        this.values = Collections.unmodifiableMap(values);
    }

    /**
     * Reads the metadata of {@code path}.
     *
     * @throws IOException when the file cannot be read
     * @throws IllegalArgumentException when it is not a well-formed GGUF file, naming what is wrong
     */
    public static GgufMetadata read(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return new Reader(ch).read();
        }
    }

    /** The GGUF version. */
    public int version() {
        return version;
    }

    /** How many tensors the file declares. */
    public long tensorCount() {
        return tensorCount;
    }

    /** Every key and its value: Long, Double, Boolean, String, or a List of those. */
    public Map<String, Object> values() {
        return values;
    }

    /** A string value. */
    public Optional<String> string(String key) {
        Object v = values.get(key);
        return v instanceof String ? Optional.of((String) v) : Optional.empty();
    }

    /** An integer value (any integer type, widened). */
    public Optional<Long> integer(String key) {
        Object v = values.get(key);
        return v instanceof Long ? Optional.of((Long) v) : Optional.empty();
    }

    /** A boolean value. */
    public Optional<Boolean> bool(String key) {
        Object v = values.get(key);
        return v instanceof Boolean ? Optional.of((Boolean) v) : Optional.empty();
    }

    /** A number value (integer or float). */
    public Optional<Double> number(String key) {
        Object v = values.get(key);
        return v instanceof Number ? Optional.of(((Number) v).doubleValue()) : Optional.empty();
    }

    /** An array of strings. */
    @SuppressWarnings("unchecked")
    public Optional<List<String>> strings(String key) {
        Object v = values.get(key);
        if (v instanceof List && (((List<?>) v).isEmpty() || ((List<?>) v).get(0) instanceof String)) {
            return Optional.of((List<String>) v);
        }
        return Optional.empty();
    }

    /** An array of numbers. */
    @SuppressWarnings("unchecked")
    public Optional<List<Number>> numbers(String key) {
        Object v = values.get(key);
        if (v instanceof List && (((List<?>) v).isEmpty() || ((List<?>) v).get(0) instanceof Number)) {
            return Optional.of((List<Number>) v);
        }
        return Optional.empty();
    }

    /** A buffered, bounds-checked reader over the channel. */
    private static final class Reader {
        private final FileChannel ch;
        private final long size;
        private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private long pos;

        Reader(FileChannel ch) throws IOException {
            this.ch = ch;
            this.size = ch.size();
            buf.limit(0);
        }

        GgufMetadata read() throws IOException {
            if (size < 24) {
                throw new IllegalArgumentException("not a GGUF file: " + size + " bytes is too small");
            }
            if (i32("magic") != MAGIC) {
                throw new IllegalArgumentException("not a GGUF file: bad magic");
            }
            int version = i32("version");
            if (version < 2 || version > 3) {
                throw new IllegalArgumentException("unsupported GGUF version " + version + " (expected 2 or 3)");
            }
            long tensors = i64("tensor count");
            long kvs = i64("metadata count");
            if (tensors < 0 || tensors > (1 << 20)) {
                throw new IllegalArgumentException("tensor count " + tensors + " is not plausible");
            }
            if (kvs < 0 || kvs > (1 << 20)) {
                throw new IllegalArgumentException("metadata count " + kvs + " is not plausible");
            }
            Map<String, Object> values = new LinkedHashMap<>();
            for (long i = 0; i < kvs; i++) {
                String key = string("metadata key");
                int type = i32(key);
                Object v = value(type, key);
                if (values.put(key, v) != null) {
                    throw new IllegalArgumentException("duplicate metadata key " + key);
                }
            }
            return new GgufMetadata(version, tensors, values);
        }

        private Object value(int type, String key) throws IOException {
            switch (type) {
                case 0:
                    return (long) (u8(key) & 0xFF);
                case 1:
                    return (long) u8(key);
                case 2:
                    return (long) (i16(key) & 0xFFFF);
                case 3:
                    return (long) i16(key);
                case 4:
                    return i32(key) & 0xFFFFFFFFL;
                case 5:
                    return (long) i32(key);
                case 6:
                    return (double) Float.intBitsToFloat(i32(key));
                case 7: {
                    byte b = u8(key);
                    if (b != 0 && b != 1) {
                        throw new IllegalArgumentException("metadata " + key + ": bool value " + b + " is not 0 or 1");
                    }
                    return b == 1;
                }
                case 8:
                    return string(key);
                case 9:
                    return array(key);
                case 10:
                case 11:
                    return i64(key);
                case 12:
                    return Double.longBitsToDouble(i64(key));
                default:
                    throw new IllegalArgumentException("metadata " + key + ": unknown value type " + type);
            }
        }

        private List<Object> array(String key) throws IOException {
            int elem = i32(key);
            long n = i64(key);
            if (elem == 9) {
                throw new IllegalArgumentException("metadata " + key + ": arrays of arrays are not allowed");
            }
            int minSize = elem == 8
                    ? 8
                    : elem == 10 || elem == 11 || elem == 12
                            ? 8
                            : elem == 2 || elem == 3 ? 2 : elem <= 1 || elem == 7 ? 1 : 4;
            if (n < 0 || n > (size - pos) / minSize) {
                throw new IllegalArgumentException("metadata " + key + ": array count " + n + " exceeds the file");
            }
            List<Object> out = new ArrayList<>((int) n);
            for (long i = 0; i < n; i++) {
                out.add(value(elem, key));
            }
            return Collections.unmodifiableList(out);
        }

        private String string(String what) throws IOException {
            long n = i64(what);
            if (n < 0 || n > MAX_STRING || n > size - pos) {
                throw new IllegalArgumentException(what + ": string length " + n + " exceeds the file");
            }
            byte[] b = bytes((int) n, what);
            try {
                return StandardCharsets.UTF_8
                        .newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(b))
                        .toString();
            } catch (CharacterCodingException e) {
                // Some vocabularies hold byte pieces that are not UTF-8 on their own; keep them readable.
                return new String(b, StandardCharsets.ISO_8859_1);
            }
        }

        private void need(int n, String what) throws IOException {
            if (n > size - pos) {
                throw new IllegalArgumentException(
                        "truncated file: " + what + " needs " + n + " bytes at offset " + pos);
            }
            if (buf.remaining() < n) {
                buf.compact();
                while (buf.position() < n) {
                    if (ch.read(buf, pos + buf.position()) < 0) {
                        throw new IllegalArgumentException("truncated file at offset " + pos);
                    }
                }
                buf.flip();
            }
        }

        private byte[] bytes(int n, String what) throws IOException {
            if (n <= buf.capacity()) {
                need(n, what);
                byte[] b = new byte[n];
                buf.get(b);
                pos += n;
                return b;
            }
            byte[] b = new byte[n];
            int have = buf.remaining();
            buf.get(b, 0, have);
            ByteBuffer rest = ByteBuffer.wrap(b, have, n - have);
            while (rest.hasRemaining()) {
                if (ch.read(rest, pos + rest.position()) < 0) {
                    throw new IllegalArgumentException("truncated file: " + what);
                }
            }
            pos += n;
            return b;
        }

        private byte u8(String what) throws IOException {
            need(1, what);
            pos += 1;
            return buf.get();
        }

        private short i16(String what) throws IOException {
            need(2, what);
            pos += 2;
            return buf.getShort();
        }

        private int i32(String what) throws IOException {
            need(4, what);
            pos += 4;
            return buf.getInt();
        }

        private long i64(String what) throws IOException {
            need(8, what);
            pos += 8;
            return buf.getLong();
        }
    }
}
