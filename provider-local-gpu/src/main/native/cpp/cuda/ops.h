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

// y[t * rows + r] = W[r] . x[t * cols ..] for n vectors (n <= 64). Each weight row is read by one warp, in
// order, once per 8 vectors (once in all at decode).
void matmul(cudaStream_t s, uint32_t type, const uint8_t* w, int64_t rowBytes, int64_t cols, int64_t rows, const float* x,
            int64_t n, float* y);
// x[t] = the embedding row of tokens[t].
void embed(cudaStream_t s, uint32_t type, const uint8_t* table, int64_t rowBytes, const int32_t* tokens, int64_t n, int64_t dim, float* x);
// out[t] = x[rowOf[t]] normalized (RMS) times w, for t < n; rowOf null means rowOf[t] = t.
void rmsnorm(cudaStream_t s, const float* x, const int32_t* rowOf, const float* w, int64_t n, int64_t dim, float eps, float* out);
// y[t][i] += b[i].
void addBias(cudaStream_t s, float* y, const float* b, int64_t n, int64_t dim);
// x[i] += y[i] over count values.
void add(cudaStream_t s, float* x, const float* y, int64_t count);
// g[i] = silu(g[i]) * u[i] over count values.
void swiglu(cudaStream_t s, float* g, const float* u, int64_t count);
// Rotates the first 2 * half values of each head of each row: cs holds per row half cosines, then half
// sines, of the row's angles.
void rope(cudaStream_t s, float* v, const float* cs, int64_t n, int64_t heads, int64_t headDim, int64_t half, bool neox);
// Writes each row's key and value at its position of layer `layer` of its State's cache.
void storeKv(cudaStream_t s, const float* k, const float* v, const RowInfo* rows, int64_t n, int64_t layer, int64_t kvDim);
// out[t][h] = softmax(q[t][h] . K[0..pos] / sqrt(hd)) V[0..pos], over head h / group of the row's cache.
void attention(cudaStream_t s, const float* q, const RowInfo* rows, int64_t n, int64_t layer, int64_t nHead, int64_t nHeadKv,
               int64_t headDim, float* out);

// The largest head size attention takes.
int maxHeadDim();

}  // namespace ops
