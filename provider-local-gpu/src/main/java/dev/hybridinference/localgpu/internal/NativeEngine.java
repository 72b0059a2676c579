package dev.hybridinference.localgpu.internal;

import java.nio.FloatBuffer;

/**
 * Every native method of the engine, and nothing else. Handles are opaque; a zero handle is never
 * valid. Each method throws {@link NativeEngineException} instead of letting a native error through.
 * Callers ({@link NativeModel}) keep handles alive and closed exactly once.
 */
final class NativeEngine {
    private NativeEngine() {}

    /**
     * Maps and checks a GGUF file; returns a model handle. {@code precision}: 0 exact (quantized weights
     * dequantized to floats), 1 fast (inputs quantized to 8 bits, integer dot products); it applies to the
     * CPU backend. {@code device}: -1 the CPU, N the CUDA device of ordinal N (the weights are copied to it).
     */
    static native long load(String path, int threads, int precision, int device);

    /** The backend a model computes on: {@code cpu} or {@code cuda}. */
    static native String backend(long model);

    /** The device a model computes on, as receipts name it: {@code cpu} or {@code cuda:0 <name>}. */
    static native String device(long model);

    /** CUDA devices usable here: 0 without a CUDA build, a driver or a device (never an error). */
    static native int cudaDeviceCount();

    /** Why {@link #cudaDeviceCount()} is 0, or an empty string when it is not. */
    static native String cudaUnavailableReason();

    /** The name of CUDA device {@code ordinal}. */
    static native String cudaDeviceName(int ordinal);

    /** {total, free} bytes of CUDA device {@code ordinal}'s memory. */
    static native long[] cudaDeviceMemory(int ordinal);

    /** The peak bandwidth of CUDA device {@code ordinal}'s memory in GB/s, from its clock and bus width. */
    static native double cudaPeakBandwidth(int ordinal);

    /**
     * For the benchmark: GB/s of weights that one product of a {@code rows} x {@code cols} matrix of ggml
     * type {@code type} reads with one input vector, over {@code reps} launches back to back; {@code flags}:
     * 1 integer products, 2 weights prefetched into L2, 4 programmatic dependent launch.
     */
    static native double cudaProductRate(int ordinal, int type, int rows, int cols, int reps, int flags);

    /** Frees a model and unmaps its file. */
    static native void free(long model);

    /**
     * {n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ctx_train, weight_bytes, threads}.
     */
    static native long[] hparams(long model);

    /** {@code general.architecture}. */
    static native String architecture(long model);

    /** A new KV cache for {@code nCtx} positions, of type {@code kvType} (0 F32, 1 F16). */
    static native long newState(long model, int nCtx, int kvType);

    /**
     * The bytes a KV cache for {@code nCtx} positions of type {@code kvType} (0 F32, 1 F16) takes; throws
     * when {@code nCtx} is out of range or the cache would not fit in the machine's memory.
     */
    static native long stateBytes(long model, int nCtx, int kvType);

    /** Frees a KV cache. */
    static native void freeState(long state);

    /**
     * Feeds {@code n} tokens at positions {@code pos..pos+n-1}; writes the last token's logits (or every
     * token's, when {@code all}) to the direct buffer.
     */
    static native void eval(long model, long state, int[] tokens, int n, int pos, FloatBuffer logits, boolean all);

    /**
     * Feeds several KV caches in shared forward passes: segment {@code i} is {@code counts[i]} tokens (taken
     * in order from {@code tokens}) at positions {@code positions[i]..} of {@code states[i]}. Writes segment
     * {@code i}'s last-token logits at {@code i * n_vocab} of the direct buffer. A state may appear once;
     * every segment is checked before anything is computed.
     */
    static native void evalBatch(
            long model, long[] states, int[] tokens, int[] counts, int[] positions, FloatBuffer logits);

    /**
     * Reads a buffer of {@code bytes} with {@code threads} threads, {@code rounds} times, with the same
     * SIMD loads as the kernels; returns the best read bandwidth in GB/s.
     */
    static native double readBandwidth(long bytes, int threads, int rounds);

    /** The SIMD features the kernels use on this processor. */
    static native String cpuFeatures();

    /**
     * A sampler's weights: {@code out[i] = e^((logits[i] - best) * scale)} for every logit, {@code best}
     * being the largest, in the engine's vector code (the maximum too); returns their sum. {@code out}
     * holds at least as many values as {@code logits}, of which there is at least one.
     */
    static native double expWeights(float[] logits, float scale, float[] out);

    /**
     * For tests: quantizes {@code x} as the fast path does and multiplies it with one weight row of ggml
     * type {@code type} at kernel level {@code level} (0 portable, 1 avx2, 2 avxvnni, 3 avx512). Returns
     * the dot product, then the integer sums behind it (one per 32 values, per 16 for Q6_K).
     */
    static native double[] integerDot(int level, int type, byte[] row, float[] x);

    /**
     * For tests: the CUDA backend's integer product (precision fast) compiled for the host: {@code x}
     * quantized as its kernels quantize it and multiplied with one weight row of type Q8_0, Q4_K or Q6_K through
     * the functions its kernels call on the words of a 16-byte load. Returns the dot product, then the integer
     * sums per 32 values (per 16 for Q6_K), as {@link #integerDot} does.
     */
    static native double[] cudaIntegerDot(int type, byte[] row, float[] x);

    /**
     * For tests: {@code rows} weight rows of an integer type (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K) times
     * {@code n} vectors, x holding them one after another, through the fast precision's kernels of the
     * avx512 level: {@code kernel} 0 as a call multiplies without tiles (one vector at a time through the
     * rows-in-lanes kernel, several through panels transposed in the call), 1 the same with the AMX tiles
     * where the processor has them, 2 the weights repacked first and multiplied on a pool of 2 threads, 3 on a
     * pool of 4. Returns y[t * rows + r].
     */
    static native float[] integerProduct(int type, byte[] weights, int rows, float[] x, int n, int kernel);

    /**
     * For tests: runs the engine's thread pool of {@code threads} over {@code n} items in claimed chunks
     * of {@code grain}, the calling thread sleeping {@code lateMillis} in its first chunk (a thread the
     * system scheduled late). Returns, per item, how many times it ran, then per item the pool thread
     * (0 the caller) that ran it, then per chunk in the order they ran its first item and its length.
     */
    static native int[] poolClaims(int threads, int n, int grain, int lateMillis);

    /**
     * For tests: {@code rows} weight rows of F32 (type 0) or F16 (type 1), little-endian one after another,
     * repacked into panels and multiplied with {@code n} vectors (x holding them one after another) on
     * {@code threads} threads, by the kernel F32 and F16 weights take where the processor has AVX-512F.
     * Returns y[t * rows + r].
     */
    static native float[] panelProduct(int type, byte[] weights, int rows, float[] x, int n, int threads);

    /**
     * For tests: x quantized for the weights of integer type {@code type}, as the fast precision does
     * before its integer products (per block of 32 or 256 values: a float scale, the integer sums, the 8-bit
     * values), by the scalar code when {@code portable}, else by the AVX-512 code at the avx512 level and
     * above.
     */
    static native byte[] quantizeInput(int type, float[] x, boolean portable);

    /**
     * For tests: the model's next forward pass fails as a device does, {@code kind} 1 out of device memory,
     * 2 a failed device; 0 clears it.
     */
    static native void injectFault(long model, int kind);

    /** For tests: whether this processor runs kernel level {@code level}. */
    static native boolean kernelLevelAvailable(int level);

    /**
     * For tests: the {@code n} values of one weight row of ggml type {@code type}, decoded by the CPU kernels
     * ({@code mode} 0), by the CUDA backend's per-value decoding compiled for the host (1), or by the decoding
     * its matrix product does (2): from the words of one 16-byte load (Q8_0 rows split into quants and
     * scales first, Q4_K 32 values at a time), or eight values at a time (Q6_K).
     */
    static native float[] dequantize(int mode, int type, byte[] row, int n);
}
