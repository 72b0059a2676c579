// The CUDA backend's kernels: one per operation, written for clarity first. Weights are decoded in
// registers eight values at a time (one sub-block's scale decoded once for them); a warp reads a weight
// row from start to end in order, so a row's bytes are fetched once per 8 input vectors, and once in all
// for decoding (one vector), where the pass is bound by reading the weights.
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>

#include "../dequant.h"
#include "check.h"
#include "ops.h"

namespace ops {
namespace {

constexpr int kWarps = 8;          // warps per block of the matrix product: one weight row each
constexpr int kThreads = 256;      // threads per block of the row-wise kernels
constexpr int kGroup = 8;          // weight values a lane decodes together

// Values base..base+7 of a weight row (base a multiple of 8, inside the row for the quantized types; the
// float types check the row's end, their width need not be a multiple of 8).
template <uint32_t T>
__device__ __forceinline__ void group(const uint8_t* __restrict__ row, int64_t base, int64_t cols, float (&w)[kGroup]) {
    if constexpr (T == dq::kF32) {
        const float* r = reinterpret_cast<const float*>(row);
        if ((cols & 7) == 0) {
            // Rows of a multiple of 8 values: every group is 32-byte aligned, two 16-byte loads.
            const float4 a = *reinterpret_cast<const float4*>(r + base), b = *reinterpret_cast<const float4*>(r + base + 4);
            w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w, w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
        } else {
#pragma unroll
            for (int e = 0; e < kGroup; e++) w[e] = base + e < cols ? r[base + e] : 0.0f;
        }
    } else if constexpr (T == dq::kF16) {
        const __half* r = reinterpret_cast<const __half*>(row);
        if ((cols & 7) == 0) {
            // Rows of a multiple of 8 values: every group is 16-byte aligned, one 16-byte load.
            const uint4 u = *reinterpret_cast<const uint4*>(r + base);
            const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float2 f = __half22float2(h[e]);
                w[2 * e] = f.x;
                w[2 * e + 1] = f.y;
            }
        } else {
#pragma unroll
            for (int e = 0; e < kGroup; e++) w[e] = base + e < cols ? __half2float(r[base + e]) : 0.0f;
        }
    } else if constexpr (T == dq::kQ8_0) {
        dq::q8_0x8(row, base, w);
    } else if constexpr (T == dq::kQ4_K) {
        dq::q4_Kx8(row, base, w);
    } else {
        dq::q6_Kx8(row, base, w);
    }
}

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// NB: input vectors per read of the row (1 for decoding, 8 otherwise).
template <uint32_t T, int NB>
__global__ void matmulKernel(const uint8_t* __restrict__ w, int64_t rowBytes, int64_t cols, int64_t rows, const float* __restrict__ x,
                             int64_t n, float* __restrict__ y) {
    const int lane = threadIdx.x & 31;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
    if (r >= rows) return;  // the whole warp: r is the warp's
    const uint8_t* row = w + r * rowBytes;
    for (int64_t t0 = 0; t0 < n; t0 += NB) {
        float acc[NB];
#pragma unroll
        for (int j = 0; j < NB; j++) acc[j] = 0.0f;
        for (int64_t base = static_cast<int64_t>(lane) * kGroup; base < cols; base += 32 * kGroup) {
            float wv[kGroup];
            group<T>(row, base, cols, wv);
#pragma unroll
            for (int j = 0; j < NB; j++) {
                if (t0 + j < n) {
                    const float* xt = x + (t0 + j) * cols + base;
                    float s = 0.0f;
#pragma unroll
                    for (int e = 0; e < kGroup; e++) {
                        if (base + e < cols) s += wv[e] * xt[e];
                    }
                    acc[j] += s;
                }
            }
        }
#pragma unroll
        for (int j = 0; j < NB; j++) {
            const float s = warpSum(acc[j]);
            if (lane == 0 && t0 + j < n) y[(t0 + j) * rows + r] = s;
        }
    }
}

template <uint32_t T>
void matmulAs(cudaStream_t s, const uint8_t* w, int64_t rowBytes, int64_t cols, int64_t rows, const float* x, int64_t n, float* y) {
    const dim3 grid(static_cast<unsigned>((rows + kWarps - 1) / kWarps));
    if (n == 1) {
        matmulKernel<T, 1><<<grid, 32 * kWarps, 0, s>>>(w, rowBytes, cols, rows, x, n, y);
    } else {
        matmulKernel<T, 8><<<grid, 32 * kWarps, 0, s>>>(w, rowBytes, cols, rows, x, n, y);
    }
}

__global__ void embedKernel(uint32_t type, const uint8_t* __restrict__ table, int64_t rowBytes, const int32_t* __restrict__ tokens,
                            int64_t dim, float* __restrict__ x) {
    const int64_t t = blockIdx.x;
    const uint8_t* row = table + static_cast<int64_t>(tokens[t]) * rowBytes;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) x[t * dim + i] = dq::element(type, row, i);
}

// The sum of v over the block (kThreads threads); every thread gets it.
__device__ float blockSum(float v, float* shared) {
    v = warpSum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float s = 0.0f;
    for (int i = 0; i < kThreads / 32; i++) s += shared[i];
    __syncthreads();
    return s;
}

__global__ void rmsnormKernel(const float* __restrict__ x, const int32_t* __restrict__ rowOf, const float* __restrict__ w, int64_t dim,
                              float eps, float* __restrict__ out) {
    __shared__ float shared[kThreads / 32];
    const int64_t t = blockIdx.x;
    const float* xr = x + (rowOf ? static_cast<int64_t>(rowOf[t]) : t) * dim;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    ss = blockSum(ss, shared);
    const float scale = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) out[t * dim + i] = xr[i] * scale * w[i];
}

__global__ void addBiasKernel(float* __restrict__ y, const float* __restrict__ b, int64_t dim, int64_t count) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) y[i] += b[i % dim];
}

__global__ void addKernel(float* __restrict__ x, const float* __restrict__ y, int64_t count) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) x[i] += y[i];
}

__global__ void swigluKernel(float* __restrict__ g, const float* __restrict__ u, int64_t count) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) {
        const float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

// cs: per row, half cosines then half sines (computed on the host, as the CPU backend computes them).
__global__ void ropeKernel(float* __restrict__ v, const float* __restrict__ cs, int64_t heads, int64_t headDim, int64_t half, bool neox) {
    const int64_t t = blockIdx.x, h = blockIdx.y;
    float* x = v + (t * heads + h) * headDim;
    const float* c = cs + t * 2 * half;
    const float* sn = c + half;
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
        int64_t a, b;
        dq::ropePair(neox, i, half, a, b);
        const float x0 = x[a], x1 = x[b];
        x[a] = x0 * c[i] - x1 * sn[i];
        x[b] = x0 * sn[i] + x1 * c[i];
    }
}

__global__ void storeKvKernel(const float* __restrict__ k, const float* __restrict__ v, const RowInfo* __restrict__ rows, int64_t layer,
                              int64_t kvDim) {
    const int64_t t = blockIdx.x;
    const RowInfo ri = rows[t];
    const int64_t at = (layer * ri.nCtx + ri.pos) * kvDim;
    for (int64_t i = threadIdx.x; i < kvDim; i += blockDim.x) {
        if (ri.f16) {
            static_cast<__half*>(ri.k)[at + i] = __float2half_rn(k[t * kvDim + i]);
            static_cast<__half*>(ri.v)[at + i] = __float2half_rn(v[t * kvDim + i]);
        } else {
            static_cast<float*>(ri.k)[at + i] = k[t * kvDim + i];
            static_cast<float*>(ri.v)[at + i] = v[t * kvDim + i];
        }
    }
}

__device__ __forceinline__ float cacheAt(const void* base, int64_t i, bool f16) {
    return f16 ? __half2float(static_cast<const __half*>(base)[i]) : static_cast<const float*>(base)[i];
}

// One block per (row, head), kThreads threads, headDim <= kThreads. Positions 0..pos in chunks of
// kThreads: a warp scores a position (lanes across the head's values), then the chunk's weights join a
// running softmax (max, sum and the weighted values rescaled when the max grows), thread d owning value d.
__global__ void attentionKernel(const float* __restrict__ q, const RowInfo* __restrict__ rows, int64_t layer, int64_t nHead,
                                int64_t nHeadKv, int64_t headDim, float* __restrict__ out) {
    __shared__ float sq[kThreads];
    __shared__ float sc[kThreads];
    const int64_t t = blockIdx.x, h = blockIdx.y;
    const RowInfo ri = rows[t];
    const bool f16 = ri.f16 != 0;
    const int64_t kvDim = nHeadKv * headDim, kvh = h / (nHead / nHeadKv);
    const int64_t base = layer * ri.nCtx * kvDim + kvh * headDim;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const float scale = 1.0f / sqrtf(static_cast<float>(headDim));
    if (tid < headDim) sq[tid] = q[(t * nHead + h) * headDim + tid];
    __syncthreads();
    float runMax = -FLT_MAX, runSum = 0.0f, acc = 0.0f;
    const int64_t count = static_cast<int64_t>(ri.pos) + 1;
    for (int64_t c0 = 0; c0 < count; c0 += kThreads) {
        const int cnt = static_cast<int>(count - c0 < kThreads ? count - c0 : kThreads);
        for (int p = warp; p < cnt; p += kThreads / 32) {
            const int64_t row = base + (c0 + p) * kvDim;
            float s = 0.0f;
            for (int64_t d = lane; d < headDim; d += 32) s += sq[d] * cacheAt(ri.k, row + d, f16);
            s = warpSum(s);
            if (lane == 0) sc[p] = s * scale;
        }
        __syncthreads();
        float chunkMax = -FLT_MAX;
        for (int p = 0; p < cnt; p++) chunkMax = fmaxf(chunkMax, sc[p]);
        const float newMax = fmaxf(runMax, chunkMax);
        const float rescale = expf(runMax - newMax);
        __syncthreads();
        if (tid < cnt) sc[tid] = expf(sc[tid] - newMax);
        __syncthreads();
        float chunkSum = 0.0f;
        for (int p = 0; p < cnt; p++) chunkSum += sc[p];
        runSum = runSum * rescale + chunkSum;
        if (tid < headDim) {
            float a = 0.0f;
            for (int p = 0; p < cnt; p++) a += sc[p] * cacheAt(ri.v, base + (c0 + p) * kvDim + tid, f16);
            acc = acc * rescale + a;
        }
        runMax = newMax;
        __syncthreads();
    }
    if (tid < headDim) out[(t * nHead + h) * headDim + tid] = acc / runSum;
}

unsigned blocksFor(int64_t count) { return static_cast<unsigned>((count + kThreads - 1) / kThreads); }

}  // namespace

void matmul(cudaStream_t s, uint32_t type, const uint8_t* w, int64_t rowBytes, int64_t cols, int64_t rows, const float* x, int64_t n,
            float* y) {
    switch (type) {
        case dq::kF32: matmulAs<dq::kF32>(s, w, rowBytes, cols, rows, x, n, y); break;
        case dq::kF16: matmulAs<dq::kF16>(s, w, rowBytes, cols, rows, x, n, y); break;
        case dq::kQ8_0: matmulAs<dq::kQ8_0>(s, w, rowBytes, cols, rows, x, n, y); break;
        case dq::kQ4_K: matmulAs<dq::kQ4_K>(s, w, rowBytes, cols, rows, x, n, y); break;
        case dq::kQ6_K: matmulAs<dq::kQ6_K>(s, w, rowBytes, cols, rows, x, n, y); break;
        default: throw DeviceError("matmul: weight type " + std::to_string(type) + " has no CUDA kernel");
    }
    cu::launched("matmul");
}

void embed(cudaStream_t s, uint32_t type, const uint8_t* table, int64_t rowBytes, const int32_t* tokens, int64_t n, int64_t dim, float* x) {
    embedKernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(type, table, rowBytes, tokens, dim, x);
    cu::launched("embed");
}

void rmsnorm(cudaStream_t s, const float* x, const int32_t* rowOf, const float* w, int64_t n, int64_t dim, float eps, float* out) {
    rmsnormKernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(x, rowOf, w, dim, eps, out);
    cu::launched("rmsnorm");
}

void addBias(cudaStream_t s, float* y, const float* b, int64_t n, int64_t dim) {
    addBiasKernel<<<blocksFor(n * dim), kThreads, 0, s>>>(y, b, dim, n * dim);
    cu::launched("addBias");
}

void add(cudaStream_t s, float* x, const float* y, int64_t count) {
    addKernel<<<blocksFor(count), kThreads, 0, s>>>(x, y, count);
    cu::launched("add");
}

void swiglu(cudaStream_t s, float* g, const float* u, int64_t count) {
    swigluKernel<<<blocksFor(count), kThreads, 0, s>>>(g, u, count);
    cu::launched("swiglu");
}

void rope(cudaStream_t s, float* v, const float* cs, int64_t n, int64_t heads, int64_t headDim, int64_t half, bool neox) {
    ropeKernel<<<dim3(static_cast<unsigned>(n), static_cast<unsigned>(heads)), 64, 0, s>>>(v, cs, heads, headDim, half, neox);
    cu::launched("rope");
}

void storeKv(cudaStream_t s, const float* k, const float* v, const RowInfo* rows, int64_t n, int64_t layer, int64_t kvDim) {
    storeKvKernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(k, v, rows, layer, kvDim);
    cu::launched("storeKv");
}

void attention(cudaStream_t s, const float* q, const RowInfo* rows, int64_t n, int64_t layer, int64_t nHead, int64_t nHeadKv,
               int64_t headDim, float* out) {
    attentionKernel<<<dim3(static_cast<unsigned>(n), static_cast<unsigned>(nHead)), kThreads, 0, s>>>(q, rows, layer, nHead, nHeadKv,
                                                                                                       headDim, out);
    cu::launched("attention");
}

int maxHeadDim() { return kThreads; }

}  // namespace ops
