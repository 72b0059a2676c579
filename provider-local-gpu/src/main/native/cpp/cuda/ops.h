// The CUDA backend's operations: one kernel each, launched on a stream by these host functions, which
// check the launch. Activations are F32, [row][...] packed; weights stay in their file's type and are
// dequantized in registers as they are read.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace ops {

// Where one row of a pass reads and writes its State's cache: the cache's layer-0 base (F32 or F16
// values, [layer][pos][kvDim]), its context and the row's position.
struct RowInfo {
    void* k;
    void* v;
    int64_t nCtx;
    int32_t pos;
    int32_t f16;
};

// Epilogue::RopeStore's inputs: ropeAndStore's, for the rows of a pass of one row.
struct RopeStore {
    const float* cs = nullptr;
    const RowInfo* rows = nullptr;
    int64_t layer = 0, headDim = 0, half = 0;
};

// Up to three matrices of one type and width (those past the last have 0 rows), multiplied in one launch:
// y_i[t * rows_i + r] = W_i[r] . x'[t] (+ b_i[r] when b_i is set), where x'[t] is row rowOf[t] of x (row t
// when rowOf is null), RMS-normalized and multiplied by norm when norm is set (x / sqrt(mean(x^2) + eps) *
// norm, as the CPU backend's RMSNorm). Each weight row is read in order, once per 8 vectors (once in all at
// decode, by up to maxSplit warps taking turns, several loads in flight per lane).
struct Matrices {
    const uint8_t* w[3] = {nullptr, nullptr, nullptr};
    const float* b[3] = {nullptr, nullptr, nullptr};
    float* y[3] = {nullptr, nullptr, nullptr};
    int64_t rows[3] = {0, 0, 0};
    const float* norm = nullptr;
    float eps = 0.0f;
    const int32_t* rowOf = nullptr;
    // The most warps that share a row's values when decoding (1, 2, 4 or 8), and the blocks of the decoding
    // product each multiprocessor should hold (1: the compiler's choice of registers; 3: at most 85 a thread).
    int maxSplit = 2;
    int minBlocks = 1;
    // Each group of warps asks the L2 cache for its rows before it waits for the kernel before (which can
    // only run ahead like this under programmatic dependent launch), so that reading the weights overlaps
    // that kernel's end.
    bool prefetch = false;
    // Integer products (precision fast) for Q8_0, Q4_K and Q6_K weights: the input (RMS-normalized first, as
    // the CPU's rmsnorm computes it, when norm is set) quantized to 8 bits per value as the CPU backend's
    // fast precision quantizes it (a scale per block of the weights' size), once per block of threads into
    // its shared memory, then multiplied in integer arithmetic (dp4a). Other types, and widths whose
    // quantized vector exceeds sharedLimit bytes, take the float product.
    bool integer = false;
    int sharedLimit = 44 * 1024;
    // The device's multiprocessors: the integer product's grid is as many blocks as they hold at once.
    int multiprocessors = 1;
    RopeStore rope;
};

// What a product does with its sums: stores them, adds them to y (a residual), or, for two matrices of
// equal rows (gate, up), stores silu(gate) * up in y_0; or, for Q, K and V of a pass of one row, does
// ropeAndStore's work in the normal pairing (not NeoX's): Q rotated into y_0, K rotated and V stored in
// the row's cache (Matrices::rope), which saves a launch per layer.
enum class Epilogue { Store, Add, SwiGlu, RopeStore };

void matmul(cudaStream_t s, uint32_t type, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n, Epilogue e);
// x[t] = the embedding row of tokens[t].
void embed(cudaStream_t s, uint32_t type, const uint8_t* table, int64_t rowBytes, const int32_t* tokens, int64_t n, int64_t dim, float* x);
// g[i] = silu(g[i]) * u[i] over count values (a gate and an up matrix of different types).
void swiglu(cudaStream_t s, float* g, const float* u, int64_t count);
// RoPE over each row's query and key heads (cs holds per row half cosines, then half sines, of the row's
// angles; the first 2 * half values of a head rotate), then each row's key and value stored at its
// position of layer `layer` of its State's cache.
void ropeAndStore(cudaStream_t s, float* q, float* k, const float* v, const float* cs, const RowInfo* rows, int64_t n, int64_t layer,
                  int64_t nHead, int64_t nHeadKv, int64_t headDim, int64_t half, bool neox);
// out[t][h] = softmax(q[t][h] . K[0..pos] / sqrt(hd)) V[0..pos], over head h / group of the row's cache,
// the positions cut into kAttnSplits slices computed apart and joined: part holds attentionPartFloats
// floats, done n * nHead counters that start at 0 (and are left at 0).
constexpr int kAttnSplits = 32;
inline int64_t attentionPartFloats(int64_t n, int64_t nHead, int64_t headDim) { return n * nHead * kAttnSplits * (headDim + 2); }
void attention(cudaStream_t s, const float* q, const RowInfo* rows, int64_t n, int64_t layer, int64_t nHead, int64_t nHeadKv,
               int64_t headDim, float* out, float* part, unsigned* done);

// Whether this thread's launches from now on may start a kernel while the one before it finishes
// (programmatic dependent launch: devices of compute capability 9.0 and later).
void setProgrammaticLaunch(bool on);

// The largest head size attention takes.
int maxHeadDim();

}  // namespace ops
