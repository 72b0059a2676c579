package dev.hybridinference.localgpu.internal;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF v3 files: metadata and tensors, quantizing F32 values to F16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K
 * or Q6_K with
 * reference quantizers, and reading such blocks back ({@link #dequantize}). For generated test models
 * and benchmarks. Internal.
 */
public final class GgufWriter {
    /** ggml type ids. */
    public static final int F32 = 0;
    /** F16. */
    public static final int F16 = 1;
    /** Q4_0: 32 values in 18 bytes. */
    public static final int Q4_0 = 2;
    /** Q4_1: 32 values in 20 bytes. */
    public static final int Q4_1 = 3;
    /** Q8_0: 32 values in 34 bytes. */
    public static final int Q8_0 = 8;
    /** Q4_K: 256 values in 144 bytes. */
    public static final int Q4_K = 12;
    /** Q5_K: 256 values in 176 bytes. */
    public static final int Q5_K = 13;
    /** Q6_K: 256 values in 210 bytes. */
    public static final int Q6_K = 14;

    private static final int ALIGNMENT = 32;

    private final Map<String, Object> kv = new LinkedHashMap<>();
    private final List<String> names = new ArrayList<>();
    private final List<long[]> shapes = new ArrayList<>();
    private final List<Integer> types = new ArrayList<>();
    private final List<byte[]> data = new ArrayList<>();

    /**
     * Adds a metadata pair. Values: String, Integer (UINT32), Long (UINT64), Float (FLOAT32), Boolean,
     * String[] / List of String (array of strings), float[] (array of FLOAT32), int[] (array of INT32).
     */
    public GgufWriter put(String key, Object value) {
        kv.put(key, value);
        return this;
    }

    /** Adds a tensor of shape {@code ne} (ne[0] first), quantized from {@code values} to {@code type}. */
    public GgufWriter tensor(String name, int type, long[] ne, float[] values) {
        return rawTensor(name, type, ne, quantize(type, values, ne[0]));
    }

    /** Adds a tensor whose payload is already encoded as {@code type}; the array is kept, not copied. */
    public GgufWriter rawTensor(String name, int type, long[] ne, byte[] bytes) {
        names.add(name);
        shapes.add(ne.clone());
        types.add(type);
        data.add(bytes);
        return this;
    }

    /** Writes the file. */
    public void write(Path path) throws IOException {
        try (OutputStream out = Files.newOutputStream(path)) {
            java.io.ByteArrayOutputStream meta = new java.io.ByteArrayOutputStream();
            putInt(meta, 0x46554747);
            putInt(meta, 3);
            putLong(meta, names.size());
            putLong(meta, kv.size());
            for (Map.Entry<String, Object> e : kv.entrySet()) {
                putString(meta, e.getKey());
                putValue(meta, e.getValue());
            }
            long offset = 0;
            for (int i = 0; i < names.size(); i++) {
                putString(meta, names.get(i));
                long[] ne = shapes.get(i);
                putInt(meta, ne.length);
                for (long d : ne) {
                    putLong(meta, d);
                }
                putInt(meta, types.get(i));
                putLong(meta, offset);
                offset = align(offset + data.get(i).length);
            }
            byte[] m = meta.toByteArray();
            out.write(m);
            out.write(new byte[(int) (align(m.length) - m.length)]);
            for (byte[] d : data) {
                out.write(d);
                out.write(new byte[(int) (align(d.length) - d.length)]);
            }
        }
    }

    private static long align(long n) {
        return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    private static void putValue(java.io.ByteArrayOutputStream out, Object v) {
        if (v instanceof String) {
            putInt(out, 8);
            putString(out, (String) v);
        } else if (v instanceof Integer) {
            putInt(out, 4);
            putInt(out, (Integer) v);
        } else if (v instanceof Long) {
            putInt(out, 10);
            putLong(out, (Long) v);
        } else if (v instanceof Float) {
            putInt(out, 6);
            putInt(out, Float.floatToIntBits((Float) v));
        } else if (v instanceof Boolean) {
            putInt(out, 7);
            out.write((Boolean) v ? 1 : 0);
        } else if (v instanceof List || v instanceof String[]) {
            List<?> list = v instanceof List ? (List<?>) v : List.of((String[]) v);
            putInt(out, 9);
            putInt(out, 8);
            putLong(out, list.size());
            for (Object s : list) {
                putString(out, (String) s);
            }
        } else if (v instanceof float[]) {
            float[] a = (float[]) v;
            putInt(out, 9);
            putInt(out, 6);
            putLong(out, a.length);
            for (float f : a) {
                putInt(out, Float.floatToIntBits(f));
            }
        } else if (v instanceof int[]) {
            int[] a = (int[]) v;
            putInt(out, 9);
            putInt(out, 5);
            putLong(out, a.length);
            for (int x : a) {
                putInt(out, x);
            }
        } else {
            throw new IllegalArgumentException("unsupported metadata value " + v.getClass());
        }
    }

    private static void putInt(java.io.ByteArrayOutputStream out, int v) {
        for (int i = 0; i < 4; i++) {
            out.write(v >>> (8 * i));
        }
    }

    private static void putLong(java.io.ByteArrayOutputStream out, long v) {
        for (int i = 0; i < 8; i++) {
            out.write((int) (v >>> (8 * i)));
        }
    }

    private static void putString(java.io.ByteArrayOutputStream out, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        putLong(out, b.length);
        out.write(b, 0, b.length);
    }

    // ---- quantization ----------------------------------------------------------------------------

    /** Elements per block of a type. */
    public static int blockElems(int type) {
        switch (type) {
            case Q4_0:
            case Q4_1:
            case Q8_0:
                return 32;
            case Q4_K:
            case Q5_K:
            case Q6_K:
                return 256;
            default:
                return 1;
        }
    }

    /** Bytes per block of a type. */
    public static int blockBytes(int type) {
        switch (type) {
            case F32:
                return 4;
            case F16:
                return 2;
            case Q4_0:
                return 18;
            case Q4_1:
                return 20;
            case Q8_0:
                return 34;
            case Q4_K:
                return 144;
            case Q5_K:
                return 176;
            case Q6_K:
                return 210;
            default:
                throw new IllegalArgumentException("unsupported type " + type);
        }
    }

    /** Encodes {@code values} (rows of {@code rowLength}) as {@code type}. */
    public static byte[] quantize(int type, float[] values, long rowLength) {
        int be = blockElems(type);
        if (rowLength % be != 0) {
            throw new IllegalArgumentException("row length " + rowLength + " is not a multiple of " + be);
        }
        int blocks = values.length / be;
        ByteBuffer out = ByteBuffer.allocate(blocks * blockBytes(type)).order(ByteOrder.LITTLE_ENDIAN);
        for (int b = 0; b < blocks; b++) {
            int o = b * be;
            switch (type) {
                case F32:
                    out.putFloat(values[o]);
                    break;
                case F16:
                    out.putShort(toHalf(values[o]));
                    break;
                case Q8_0:
                    q8(values, o, out);
                    break;
                case Q4_0:
                    q40(values, o, out);
                    break;
                case Q4_1:
                    q41(values, o, out);
                    break;
                case Q4_K:
                    kQuant(values, o, out, false);
                    break;
                case Q5_K:
                    kQuant(values, o, out, true);
                    break;
                case Q6_K:
                    q6k(values, o, out);
                    break;
                default:
                    throw new IllegalArgumentException("unsupported type " + type);
            }
        }
        return out.array();
    }

    private static void q8(float[] x, int o, ByteBuffer out) {
        float amax = 0;
        for (int i = 0; i < 32; i++) {
            amax = Math.max(amax, Math.abs(x[o + i]));
        }
        float d = amax / 127f;
        float id = d == 0 ? 0 : 1 / d;
        out.putShort(toHalf(d));
        for (int i = 0; i < 32; i++) {
            out.put((byte) Math.round(x[o + i] * id));
        }
    }

    // Q4_0 as GGUF.md gives it: the value of largest magnitude maps to -8.
    private static void q40(float[] x, int o, ByteBuffer out) {
        float m = 0;
        for (int i = 0; i < 32; i++) {
            if (Math.abs(x[o + i]) > Math.abs(m)) {
                m = x[o + i];
            }
        }
        short dh = toHalf(m / -8f);
        float id = m == 0 ? 0 : -8f / m;
        out.putShort(dh);
        for (int j = 0; j < 16; j++) {
            int lo = Math.min(15, (int) (x[o + j] * id + 8.5f));
            int hi = Math.min(15, (int) (x[o + j + 16] * id + 8.5f));
            out.put((byte) (lo | (hi << 4)));
        }
    }

    // Q4_1: a step of (max - min) / 15 from the block's minimum.
    private static void q41(float[] x, int o, ByteBuffer out) {
        float lo = Float.MAX_VALUE;
        float hi = -Float.MAX_VALUE;
        for (int i = 0; i < 32; i++) {
            lo = Math.min(lo, x[o + i]);
            hi = Math.max(hi, x[o + i]);
        }
        float d = (hi - lo) / 15f;
        float id = d == 0 ? 0 : 1 / d;
        out.putShort(toHalf(d));
        out.putShort(toHalf(lo));
        for (int j = 0; j < 16; j++) {
            int a = Math.min(15, (int) ((x[o + j] - lo) * id + 0.5f));
            int b = Math.min(15, (int) ((x[o + j + 16] - lo) * id + 0.5f));
            out.put((byte) (a | (b << 4)));
        }
    }

    // Q4_K (four bits) and Q5_K (five): eight sub-blocks of 32, each with a 6-bit scale and minimum.
    private static void kQuant(float[] x, int o, ByteBuffer out, boolean five) {
        final int top = five ? 31 : 15;
        float[] sc = new float[8];
        float[] mn = new float[8];
        for (int j = 0; j < 8; j++) {
            float lo = 0;
            float hi = 0;
            for (int i = 0; i < 32; i++) {
                lo = Math.min(lo, x[o + 32 * j + i]);
                hi = Math.max(hi, x[o + 32 * j + i]);
            }
            sc[j] = (hi - lo) / top;
            mn[j] = -lo;
        }
        float maxSc = 0;
        float maxMn = 0;
        for (int j = 0; j < 8; j++) {
            maxSc = Math.max(maxSc, sc[j]);
            maxMn = Math.max(maxMn, mn[j]);
        }
        short dh = toHalf(maxSc / 63f);
        short mh = toHalf(maxMn / 63f);
        float d = fromHalf(dh);
        float dmin = fromHalf(mh);
        int[] s6 = new int[8];
        int[] m6 = new int[8];
        for (int j = 0; j < 8; j++) {
            s6[j] = d == 0 ? 0 : Math.min(63, Math.round(sc[j] / d));
            m6[j] = dmin == 0 ? 0 : Math.min(63, Math.round(mn[j] / dmin));
        }
        byte[] scales = new byte[12];
        for (int j = 0; j < 4; j++) {
            scales[j] = (byte) ((s6[j] & 63) | ((s6[j + 4] >> 4) << 6));
            scales[j + 4] = (byte) ((m6[j] & 63) | ((m6[j + 4] >> 4) << 6));
            scales[j + 8] = (byte) ((s6[j + 4] & 0xF) | ((m6[j + 4] & 0xF) << 4));
        }
        int[] q = new int[256];
        for (int j = 0; j < 8; j++) {
            float step = d * s6[j];
            float min = dmin * m6[j];
            for (int i = 0; i < 32; i++) {
                int v = step == 0 ? 0 : Math.round((x[o + 32 * j + i] + min) / step);
                q[32 * j + i] = Math.max(0, Math.min(top, v));
            }
        }
        out.putShort(dh);
        out.putShort(mh);
        out.put(scales);
        if (five) {
            // The fifth bits: bit 2c of qh[l] for value 64c+l, bit 2c+1 for value 64c+32+l.
            for (int l = 0; l < 32; l++) {
                int h = 0;
                for (int c = 0; c < 4; c++) {
                    h |= (q[64 * c + l] >> 4) << (2 * c);
                    h |= (q[64 * c + 32 + l] >> 4) << (2 * c + 1);
                }
                out.put((byte) h);
            }
        }
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                out.put((byte) ((q[64 * c + l] & 0xF) | ((q[64 * c + 32 + l] & 0xF) << 4)));
            }
        }
    }

    private static void q6k(float[] x, int o, ByteBuffer out) {
        float[] sf = new float[16];
        float maxAbs = 0;
        for (int s = 0; s < 16; s++) {
            float amax = 0;
            for (int i = 0; i < 16; i++) {
                amax = Math.max(amax, Math.abs(x[o + 16 * s + i]));
            }
            sf[s] = amax / 31f;
            maxAbs = Math.max(maxAbs, sf[s]);
        }
        short dh = toHalf(maxAbs / 127f);
        float d = fromHalf(dh);
        byte[] sc = new byte[16];
        int[] q = new int[256];
        for (int s = 0; s < 16; s++) {
            int si = d == 0 ? 0 : Math.max(-128, Math.min(127, Math.round(sf[s] / d)));
            sc[s] = (byte) si;
            float step = d * si;
            for (int i = 0; i < 16; i++) {
                int v = step == 0 ? 0 : Math.round(x[o + 16 * s + i] / step);
                q[16 * s + i] = Math.max(-32, Math.min(31, v)) + 32;
            }
        }
        byte[] ql = new byte[128];
        byte[] qh = new byte[64];
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int q1 = q[128 * h + l];
                int q2 = q[128 * h + 32 + l];
                int q3 = q[128 * h + 64 + l];
                int q4 = q[128 * h + 96 + l];
                ql[64 * h + l] = (byte) ((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[64 * h + l + 32] = (byte) ((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[32 * h + l] = (byte) ((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
        out.put(ql);
        out.put(qh);
        out.put(sc);
        out.putShort(dh);
    }

    /** Decodes {@code n} values of {@code type} from {@code bytes}, per GGUF.md section 3. */
    public static float[] dequantize(int type, byte[] bytes, int n) {
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] y = new float[n];
        switch (type) {
            case F32:
                for (int i = 0; i < n; i++) {
                    y[i] = in.getFloat(4 * i);
                }
                return y;
            case F16:
                for (int i = 0; i < n; i++) {
                    y[i] = fromHalf(in.getShort(2 * i));
                }
                return y;
            case Q8_0:
                for (int b = 0; b < n / 32; b++) {
                    float d = fromHalf(in.getShort(34 * b));
                    for (int i = 0; i < 32; i++) {
                        y[32 * b + i] = d * bytes[34 * b + 2 + i];
                    }
                }
                return y;
            case Q4_0:
            case Q4_1:
                for (int b = 0; b < n / 32; b++) {
                    int base = (type == Q4_0 ? 18 : 20) * b;
                    int qs = base + (type == Q4_0 ? 2 : 4);
                    float d = fromHalf(in.getShort(base));
                    float m = type == Q4_1 ? fromHalf(in.getShort(base + 2)) : 0;
                    for (int j = 0; j < 16; j++) {
                        int lo = bytes[qs + j] & 0xF;
                        int hi = (bytes[qs + j] & 0xFF) >> 4;
                        y[32 * b + j] = type == Q4_0 ? d * (lo - 8) : d * lo + m;
                        y[32 * b + j + 16] = type == Q4_0 ? d * (hi - 8) : d * hi + m;
                    }
                }
                return y;
            case Q4_K:
            case Q5_K:
                for (int b = 0; b < n / 256; b++) {
                    boolean five = type == Q5_K;
                    int base = (five ? 176 : 144) * b;
                    int qs = base + (five ? 48 : 16);
                    float d = fromHalf(in.getShort(base));
                    float dmin = fromHalf(in.getShort(base + 2));
                    int[] s = new int[12];
                    for (int i = 0; i < 12; i++) {
                        s[i] = bytes[base + 4 + i] & 0xFF;
                    }
                    for (int j = 0; j < 8; j++) {
                        int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
                        int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
                        for (int i = 0; i < 32; i++) {
                            int e = 32 * j + i;
                            int c = e / 64;
                            int l = e % 32;
                            int byteQ = bytes[qs + 32 * c + l] & 0xFF;
                            int q = (e % 64) < 32 ? byteQ & 0xF : byteQ >> 4;
                            if (five) {
                                int bit = 2 * c + ((e % 64) < 32 ? 0 : 1);
                                q |= ((bytes[base + 16 + l] >> bit) & 1) << 4;
                            }
                            y[256 * b + e] = d * sc * q - dmin * m;
                        }
                    }
                }
                return y;
            case Q6_K:
                for (int b = 0; b < n / 256; b++) {
                    int base = 210 * b;
                    float d = fromHalf(in.getShort(base + 208));
                    for (int h = 0; h < 2; h++) {
                        for (int l = 0; l < 32; l++) {
                            int ql0 = bytes[base + 64 * h + l] & 0xFF;
                            int ql1 = bytes[base + 64 * h + l + 32] & 0xFF;
                            int qh = bytes[base + 128 + 32 * h + l] & 0xFF;
                            int[] q = {
                                (ql0 & 0xF) | (((qh >> 0) & 3) << 4),
                                (ql1 & 0xF) | (((qh >> 2) & 3) << 4),
                                (ql0 >> 4) | (((qh >> 4) & 3) << 4),
                                (ql1 >> 4) | (((qh >> 6) & 3) << 4)
                            };
                            for (int k = 0; k < 4; k++) {
                                int sc = bytes[base + 192 + 8 * h + l / 16 + 2 * k];
                                y[256 * b + 128 * h + 32 * k + l] = d * sc * (q[k] - 32);
                            }
                        }
                    }
                }
                return y;
            default:
                throw new IllegalArgumentException("unsupported type " + type);
        }
    }

    /** IEEE binary16 from a float, rounded to nearest even. */
    public static short toHalf(float f) {
        int bits = Float.floatToIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = ((bits >>> 23) & 0xFF) - 127 + 15;
        int mant = bits & 0x7FFFFF;
        if (((bits >>> 23) & 0xFF) == 0xFF) {
            return (short) (sign | 0x7C00 | (mant != 0 ? 0x200 : 0));
        }
        if (exp >= 0x1F) {
            return (short) (sign | 0x7C00);
        }
        if (exp <= 0) {
            if (exp < -10) {
                return (short) sign;
            }
            mant |= 0x800000;
            int shift = 14 - exp;
            int half = mant >> shift;
            int rest = mant & ((1 << shift) - 1);
            int mid = 1 << (shift - 1);
            if (rest > mid || (rest == mid && (half & 1) == 1)) {
                half++;
            }
            return (short) (sign | half);
        }
        int half = (exp << 10) | (mant >> 13);
        int rest = mant & 0x1FFF;
        if (rest > 0x1000 || (rest == 0x1000 && (half & 1) == 1)) {
            half++;
        }
        return (short) (sign | half);
    }

    /** A float from IEEE binary16. */
    public static float fromHalf(short h) {
        int s = (h & 0x8000) << 16;
        int e = (h >>> 10) & 0x1F;
        int m = h & 0x3FF;
        if (e == 0) {
            float v = m * (float) Math.pow(2, -24);
            return s != 0 ? -v : v;
        }
        if (e == 0x1F) {
            return Float.intBitsToFloat(s | 0x7F800000 | (m << 13));
        }
        return Float.intBitsToFloat(s | ((e - 15 + 127) << 23) | (m << 13));
    }
}
