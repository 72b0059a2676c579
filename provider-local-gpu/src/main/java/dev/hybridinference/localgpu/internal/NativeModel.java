package dev.hybridinference.localgpu.internal;

import dev.hybridinference.localgpu.KvCacheType;
import dev.hybridinference.localgpu.Precision;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A model loaded by the native engine: owns its handle and frees it on close. Sessions ({@link
 * #newSession}) hold KV caches. Not thread-safe: the provider computes on one engine thread per model.
 * Internal.
 */
public final class NativeModel implements AutoCloseable {
    /** The {@code device} of {@link #load(Path, int, Precision, int)} that means the CPU. */
    public static final int CPU = -1;

    private long handle;
    private final String architecture;
    private final long[] hparams;
    private final String backend;
    private final String device;
    private FloatBuffer batchLogits;

    private NativeModel(long handle) {
        this.handle = handle;
        this.architecture = NativeEngine.architecture(handle);
        this.hparams = NativeEngine.hparams(handle);
        this.backend = NativeEngine.backend(handle);
        this.device = NativeEngine.device(handle);
    }

    /**
     * Loads a GGUF file.
     *
     * @throws NativeEngineException when the file is not a model this engine can run
     * @throws IllegalStateException when the native library is not available
     */
    public static NativeModel load(Path path, int threads) {
        return load(path, threads, Precision.FAST);
    }

    /**
     * Loads a GGUF file; {@code precision} chooses how quantized weights are multiplied.
     *
     * @throws NativeEngineException when the file is not a model this engine can run
     * @throws IllegalStateException when the native library is not available
     */
    public static NativeModel load(Path path, int threads, Precision precision) {
        return load(path, threads, precision, CPU);
    }

    /**
     * Loads a GGUF file onto {@code device}: {@link #CPU}, or a CUDA device's ordinal (the weights are
     * copied to it, after checking that they fit in its free memory).
     *
     * @throws NativeEngineException when the file is not a model this engine can run, or the device has not
     *     the memory ({@link NativeEngineException.Kind#DEVICE_MEMORY}) or failed
     * @throws IllegalStateException when the native library is not available
     */
    public static NativeModel load(Path path, int threads, Precision precision, int device) {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(precision, "precision");
        Throwable cause = NativeLoader.unavailabilityCause();
        if (cause != null) {
            throw new IllegalStateException(cause.getMessage(), cause);
        }
        return new NativeModel(NativeEngine.load(
                path.toAbsolutePath().toString(), threads, precision == Precision.EXACT ? 0 : 1, device));
    }

    /** For tests: {@link NativeEngine#integerDot}. */
    public static double[] integerDot(int level, int type, byte[] row, float[] x) {
        return NativeEngine.integerDot(level, type, row, x);
    }

    /** For tests: {@link NativeEngine#integerProduct}. */
    public static float[] integerProduct(int type, byte[] weights, int rows, float[] x, int n, int kernel) {
        return NativeEngine.integerProduct(type, weights, rows, x, n, kernel);
    }

    /** For tests: {@link NativeEngine#poolClaims}. */
    public static int[] poolClaims(int threads, int n, int grain, int lateMillis) {
        return NativeEngine.poolClaims(threads, n, grain, lateMillis);
    }

    /** For tests: {@link NativeEngine#panelProduct}. */
    public static float[] panelProduct(int type, byte[] weights, int rows, float[] x, int n, int threads) {
        return NativeEngine.panelProduct(type, weights, rows, x, n, threads);
    }

    /** For tests: {@link NativeEngine#quantizeInput}. */
    public static byte[] quantizeInput(int type, float[] x, boolean portable) {
        return NativeEngine.quantizeInput(type, x, portable);
    }

    /** For tests: {@link NativeEngine#dequantize}. */
    public static float[] dequantize(int mode, int type, byte[] row, int n) {
        return NativeEngine.dequantize(mode, type, row, n);
    }

    /** For tests: {@link NativeEngine#kernelLevelAvailable}. */
    public static boolean kernelLevelAvailable(int level) {
        return NativeEngine.kernelLevelAvailable(level);
    }

    /** CUDA devices usable here; 0 without a CUDA build, a driver or a device. */
    public static int cudaDeviceCount() {
        return NativeEngine.cudaDeviceCount();
    }

    /** Why {@link #cudaDeviceCount()} is 0, or an empty string. */
    public static String cudaUnavailableReason() {
        return NativeEngine.cudaUnavailableReason();
    }

    /** The name of CUDA device {@code ordinal}. */
    public static String cudaDeviceName(int ordinal) {
        return NativeEngine.cudaDeviceName(ordinal);
    }

    /** {total, free} bytes of CUDA device {@code ordinal}'s memory. */
    public static long[] cudaDeviceMemory(int ordinal) {
        return NativeEngine.cudaDeviceMemory(ordinal);
    }

    /** The peak bandwidth of CUDA device {@code ordinal}'s memory in GB/s, for the benchmark. */
    public static double cudaPeakBandwidth(int ordinal) {
        return NativeEngine.cudaPeakBandwidth(ordinal);
    }

    /** See {@link NativeEngine#cudaProductRate}. */
    public static double cudaProductRate(int ordinal, int type, int rows, int cols, int reps, int flags) {
        return NativeEngine.cudaProductRate(ordinal, type, rows, cols, reps, flags);
    }

    /** The SIMD features the kernels use. */
    public static String cpuFeatures() {
        return NativeEngine.cpuFeatures();
    }

    /** The best read bandwidth in GB/s over a buffer of {@code bytes}, for the tokens-per-second harness. */
    public static double readBandwidth(long bytes, int threads, int rounds) {
        return NativeEngine.readBandwidth(bytes, threads, rounds);
    }

    /** {@code general.architecture}. */
    public String architecture() {
        return architecture;
    }

    /** The backend computing this model: {@code cpu} or {@code cuda}. */
    public String backend() {
        return backend;
    }

    /** The device computing this model, as receipts name it: {@code cpu} or {@code cuda:0 <name>}. */
    public String device() {
        return device;
    }

    /** Vocabulary size. */
    public int vocabSize() {
        return Math.toIntExact(hparams[0]);
    }

    /** Embedding width. */
    public int embeddingLength() {
        return Math.toIntExact(hparams[1]);
    }

    /** Layers. */
    public int layers() {
        return Math.toIntExact(hparams[2]);
    }

    /** The training context length. */
    public int trainedContext() {
        return Math.toIntExact(hparams[6]);
    }

    /** Bytes of tensor data in the file. */
    public long weightBytes() {
        return hparams[7];
    }

    /** Threads the engine computes with. */
    public int threads() {
        return Math.toIntExact(hparams[8]);
    }

    /**
     * The native memory a session of {@code contextSize} positions takes, checked without allocating it.
     *
     * @throws NativeEngineException when the size is out of range or more than the machine's memory
     */
    public long sessionBytes(int contextSize) {
        return sessionBytes(contextSize, KvCacheType.F32);
    }

    /**
     * The native memory a session of {@code contextSize} positions with a KV cache of {@code type} takes,
     * checked without allocating it.
     *
     * @throws NativeEngineException when the size is out of range or more than the machine's memory
     */
    public long sessionBytes(int contextSize, KvCacheType type) {
        return NativeEngine.stateBytes(handle(), contextSize, type.ordinal());
    }

    /** A new F32 KV cache of {@code contextSize} positions. */
    public Session newSession(int contextSize) {
        return newSession(contextSize, KvCacheType.F32);
    }

    /** A new KV cache of {@code contextSize} positions, stored as {@code type}. */
    public Session newSession(int contextSize, KvCacheType type) {
        return new Session(NativeEngine.newState(handle(), contextSize, type.ordinal()), contextSize);
    }

    /**
     * Feeds several sessions in shared forward passes (each weight matrix read once per pass for all their
     * rows): {@code tokens[i]} at positions {@code positions[i]..} of {@code sessions[i]}, whose last-token
     * logits are written to {@code logits[i]} ({@link #vocabSize()} floats). Each session's logits are those
     * its own {@link Session#eval} would give. A session may appear once.
     *
     * @throws NativeEngineException when a segment is empty, out of its context or names a token outside the
     *     vocabulary, or a session appears twice; nothing is computed then
     */
    public void evalBatch(Session[] sessions, int[][] tokens, int[] positions, float[][] logits) {
        int segs = sessions.length;
        if (tokens.length != segs || positions.length != segs || logits.length != segs) {
            throw new IllegalArgumentException(
                    "sessions, tokens, positions and logits must have one entry per segment");
        }
        long[] states = new long[segs];
        int[] counts = new int[segs];
        int total = 0;
        for (int i = 0; i < segs; i++) {
            if (sessions[i].model() != this) {
                throw new IllegalArgumentException("sessions[" + i + "] belongs to another model");
            }
            states[i] = sessions[i].stateHandle();
            counts[i] = tokens[i].length;
            total = Math.addExact(total, counts[i]);
            if (logits[i].length < vocabSize()) {
                throw new IllegalArgumentException("logits[" + i + "] holds fewer than " + vocabSize() + " floats");
            }
        }
        int[] flat = new int[total];
        int at = 0;
        for (int[] t : tokens) {
            System.arraycopy(t, 0, flat, at, t.length);
            at += t.length;
        }
        long need = (long) segs * vocabSize();
        if (need > Integer.MAX_VALUE / Float.BYTES) {
            throw new IllegalArgumentException(
                    segs + " segments of " + vocabSize() + " logits do not fit in one buffer");
        }
        if (batchLogits == null || batchLogits.capacity() < need) {
            batchLogits = ByteBuffer.allocateDirect((int) need * Float.BYTES)
                    .order(ByteOrder.nativeOrder())
                    .asFloatBuffer();
        }
        NativeEngine.evalBatch(handle(), states, flat, counts, positions, batchLogits);
        for (int i = 0; i < segs; i++) {
            batchLogits.get(i * vocabSize(), logits[i], 0, vocabSize());
        }
    }

    /** For tests: {@link NativeEngine#injectFault}. */
    public void injectFault(NativeEngineException.Kind kind) {
        NativeEngine.injectFault(handle(), kind.ordinal());
    }

    private long handle() {
        if (handle == 0) {
            throw new IllegalStateException("model is closed");
        }
        return handle;
    }

    @Override
    public void close() {
        if (handle != 0) {
            NativeEngine.free(handle);
            handle = 0;
        }
    }

    /** One KV cache and the positions it holds. */
    public final class Session implements AutoCloseable {
        private long state;
        private final int contextSize;
        private FloatBuffer logits;

        private Session(long state, int contextSize) {
            this.state = state;
            this.contextSize = contextSize;
        }

        private NativeModel model() {
            return NativeModel.this;
        }

        private long stateHandle() {
            if (state == 0) {
                throw new IllegalStateException("session is closed");
            }
            return state;
        }

        /** Positions this cache can hold. */
        public int contextSize() {
            return contextSize;
        }

        /** Feeds {@code tokens} at positions {@code pos..}; returns the last token's logits. */
        public float[] eval(int[] tokens, int pos) {
            return eval(tokens, pos, false);
        }

        /** Feeds {@code tokens}; returns every token's logits, row after row, when {@code all}. */
        public float[] eval(int[] tokens, int pos, boolean all) {
            if (state == 0) {
                throw new IllegalStateException("session is closed");
            }
            long rows = all ? tokens.length : 1;
            long needLong = rows * vocabSize();
            if (needLong > Integer.MAX_VALUE / Float.BYTES) {
                throw new IllegalArgumentException(
                        rows + " rows of " + vocabSize() + " logits do not fit in one buffer; evaluate fewer tokens");
            }
            int need = (int) needLong;
            if (logits == null || logits.capacity() < need) {
                logits = ByteBuffer.allocateDirect(need * Float.BYTES)
                        .order(ByteOrder.nativeOrder())
                        .asFloatBuffer();
            }
            NativeEngine.eval(handle(), state, tokens, tokens.length, pos, logits, all);
            float[] out = new float[need];
            logits.get(0, out, 0, need);
            return out;
        }

        @Override
        public void close() {
            if (state != 0) {
                NativeEngine.freeState(state);
                state = 0;
            }
        }
    }
}
