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

// Values base..base+7 of an input vector (F32), as group() reads the weights: two 16-byte loads when the
// width is a multiple of 8.
__device__ __forceinline__ void inputGroup(const float* __restrict__ xt, int64_t base, int64_t cols, float (&v)[kGroup]) {
    if ((cols & 7) == 0) {
        const float4 a = *reinterpret_cast<const float4*>(xt + base), b = *reinterpret_cast<const float4*>(xt + base + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
#pragma unroll
        for (int e = 0; e < kGroup; e++) v[e] = base + e < cols ? xt[base + e] : 0.0f;
    }
}

constexpr int kStore = 0, kAdd = 1, kSwiGlu = 2;

template <typename V>
__device__ __forceinline__ V pick(int i, V a, V b, V c) {
    return i == 0 ? a : i == 1 ? b : c;
}

// One warp per weight row (of the matrices' rows laid end to end; for kSwiGlu, row r of both matrices).
// NB: input vectors per read of the row (1 for decoding, 8 otherwise); U: groups of 8 values each lane
// loads before using them (several loads in flight, where one vector leaves little arithmetic to hide
// their latency behind).
template <uint32_t T, int NB, int U, int E>
__global__ void __launch_bounds__(kWarps * 32) matmulKernel(const Matrices m, int64_t rowBytes, int64_t cols, const float* __restrict__ x,
                                                             int64_t n) {
    constexpr int R = E == kSwiGlu ? 2 : 1;
    const int lane = threadIdx.x & 31;
    int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
    int seg = 0;
    if (E != kSwiGlu && r >= m.rows[0]) {
        r -= m.rows[0];
        seg = 1;
        if (r >= m.rows[1]) {
            r -= m.rows[1];
            seg = 2;
        }
    }
    const int64_t rows = pick(seg, m.rows[0], m.rows[1], m.rows[2]);
    if (r >= rows) return;  // the whole warp: r is the warp's
    const uint8_t* row[R];
    row[0] = pick(seg, m.w[0], m.w[1], m.w[2]) + r * rowBytes;
    if (R == 2) row[R - 1] = m.w[1] + r * rowBytes;
    const float* bias = pick(seg, m.b[0], m.b[1], m.b[2]);
    float* y = pick(seg, m.y[0], m.y[1], m.y[2]);
    for (int64_t t0 = 0; t0 < n; t0 += NB) {
        float acc[R][NB];
#pragma unroll
        for (int q = 0; q < R; q++) {
#pragma unroll
            for (int j = 0; j < NB; j++) acc[q][j] = 0.0f;
        }
        for (int64_t base0 = static_cast<int64_t>(lane) * kGroup; base0 < cols; base0 += 32 * kGroup * U) {
            float wv[R][U][kGroup];
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int64_t base = base0 + 32 * kGroup * u;
#pragma unroll
                for (int q = 0; q < R; q++) {
                    if (base < cols) {
                        group<T>(row[q], base, cols, wv[q][u]);
                    } else {
#pragma unroll
                        for (int e = 0; e < kGroup; e++) wv[q][u][e] = 0.0f;
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int64_t base = base0 + 32 * kGroup * u;
                if (base >= cols) continue;
#pragma unroll
                for (int j = 0; j < NB; j++) {
                    if (t0 + j < n) {
                        float xv[kGroup];
                        inputGroup(x + (t0 + j) * cols, base, cols, xv);
#pragma unroll
                        for (int q = 0; q < R; q++) {
#pragma unroll
                            for (int e = 0; e < kGroup; e++) acc[q][j] += wv[q][u][e] * xv[e];
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int j = 0; j < NB; j++) {
            float s = warpSum(acc[0][j]);
            const float s2 = R == 2 ? warpSum(acc[R - 1][j]) : 0.0f;
            if (lane == 0 && t0 + j < n) {
                float* out = y + (t0 + j) * rows + r;
                if (E == kSwiGlu) {
                    *out = s / (1.0f + expf(-s)) * s2;
                } else {
                    if (bias) s += bias[r];
                    if (E == kAdd) {
                        *out += s;
                    } else {
                        *out = s;
                    }
                }
            }
        }
    }
}

template <uint32_t T, int E>
void matmulAs(cudaStream_t s, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n) {
    const int64_t rows = E == kSwiGlu ? m.rows[0] : m.rows[0] + m.rows[1] + m.rows[2];
    const dim3 grid(static_cast<unsigned>((rows + kWarps - 1) / kWarps));
    if (n == 1) {
        matmulKernel<T, 1, 4, E><<<grid, 32 * kWarps, 0, s>>>(m, rowBytes, cols, x, n);
    } else {
        matmulKernel<T, 8, 1, E><<<grid, 32 * kWarps, 0, s>>>(m, rowBytes, cols, x, n);
    }
}

template <uint32_t T>
void matmulTyped(cudaStream_t s, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n, Epilogue e) {
    switch (e) {
        case Epilogue::Store: matmulAs<T, kStore>(s, rowBytes, cols, m, x, n); break;
        case Epilogue::Add: matmulAs<T, kAdd>(s, rowBytes, cols, m, x, n); break;
        case Epilogue::SwiGlu: matmulAs<T, kSwiGlu>(s, rowBytes, cols, m, x, n); break;
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

__global__ void swigluKernel(float* __restrict__ g, const float* __restrict__ u, int64_t count) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) {
        const float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

// One block per (row, head): blocks 0..nHead-1 of a row rotate its query heads; the next nHeadKv rotate
// its key heads and store them, with the value heads, in the row's cache. cs: per row, half cosines then
// half sines (computed on the host, as the CPU backend computes them).
__global__ void ropeAndStoreKernel(float* __restrict__ q, float* __restrict__ k, const float* __restrict__ v, const float* __restrict__ cs,
                                   const RowInfo* __restrict__ rows, int64_t layer, int64_t nHead, int64_t nHeadKv, int64_t headDim,
                                   int64_t half, bool neox) {
    const int64_t t = blockIdx.x, h = blockIdx.y;
    const bool isKey = h >= nHead;
    float* x = isKey ? k + (t * nHeadKv + (h - nHead)) * headDim : q + (t * nHead + h) * headDim;
    const float* c = cs + t * 2 * half;
    const float* sn = c + half;
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
        int64_t a, b;
        dq::ropePair(neox, i, half, a, b);
        const float x0 = x[a], x1 = x[b];
        x[a] = x0 * c[i] - x1 * sn[i];
        x[b] = x0 * sn[i] + x1 * c[i];
    }
    if (!isKey) return;  // the whole block
    __syncthreads();
    const RowInfo ri = rows[t];
    const int64_t kvDim = nHeadKv * headDim, head = (h - nHead) * headDim;
    const int64_t at = (layer * ri.nCtx + ri.pos) * kvDim + head;
    const float* vr = v + t * kvDim + head;
    for (int64_t i = threadIdx.x; i < headDim; i += blockDim.x) {
        if (ri.f16) {
            static_cast<__half*>(ri.k)[at + i] = __float2half_rn(x[i]);
            static_cast<__half*>(ri.v)[at + i] = __float2half_rn(vr[i]);
        } else {
            static_cast<float*>(ri.k)[at + i] = x[i];
            static_cast<float*>(ri.v)[at + i] = vr[i];
        }
    }
}

__device__ __forceinline__ float cacheAt(const void* base, int64_t i, bool f16) {
    return f16 ? __half2float(static_cast<const __half*>(base)[i]) : static_cast<const float*>(base)[i];
}

constexpr int kAttnWarps = 16;  // warps per (row, head) of attention

// One block per (row, head). Warp w takes positions w, w + 16, ... of 0..pos, its lanes across the head's
// values (lane l holds values l, l + 32, ...: VPL of them), and keeps its own running softmax (maximum,
// sum, weighted values, rescaled as the maximum grows); the warps' partial results are then joined.
template <int VPL>
__global__ void __launch_bounds__(kAttnWarps * 32) attentionKernel(const float* __restrict__ q, const RowInfo* __restrict__ rows, int64_t layer,
                                                                    int64_t nHead, int64_t nHeadKv, int64_t headDim, float* __restrict__ out) {
    __shared__ float sMax[kAttnWarps], sSum[kAttnWarps];
    __shared__ float sAcc[kAttnWarps][32 * VPL];
    const int64_t t = blockIdx.x, h = blockIdx.y;
    const RowInfo ri = rows[t];
    const bool f16 = ri.f16 != 0;
    const int64_t kvDim = nHeadKv * headDim, kvh = h / (nHead / nHeadKv);
    const int64_t base = layer * ri.nCtx * kvDim + kvh * headDim;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float scale = 1.0f / sqrtf(static_cast<float>(headDim));
    float qv[VPL], acc[VPL];
#pragma unroll
    for (int i = 0; i < VPL; i++) {
        const int64_t d = lane + 32 * i;
        qv[i] = d < headDim ? q[(t * nHead + h) * headDim + d] : 0.0f;
        acc[i] = 0.0f;
    }
    float runMax = -FLT_MAX, runSum = 0.0f;
    const int64_t count = static_cast<int64_t>(ri.pos) + 1;
    for (int64_t p = warp; p < count; p += kAttnWarps) {
        const int64_t at = base + p * kvDim;
        float kv[VPL], vv[VPL];
#pragma unroll
        for (int i = 0; i < VPL; i++) {
            const int64_t d = lane + 32 * i;
            kv[i] = d < headDim ? cacheAt(ri.k, at + d, f16) : 0.0f;
            vv[i] = d < headDim ? cacheAt(ri.v, at + d, f16) : 0.0f;
        }
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < VPL; i++) s += qv[i] * kv[i];
        s = warpSum(s) * scale;
        const float newMax = fmaxf(runMax, s);
        const float rescale = expf(runMax - newMax), weight = expf(s - newMax);
        runSum = runSum * rescale + weight;
#pragma unroll
        for (int i = 0; i < VPL; i++) acc[i] = acc[i] * rescale + weight * vv[i];
        runMax = newMax;
    }
    if (lane == 0) {
        sMax[warp] = runMax;
        sSum[warp] = runSum;
    }
#pragma unroll
    for (int i = 0; i < VPL; i++) sAcc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    if (threadIdx.x < headDim) {
        float m = -FLT_MAX;
        for (int w = 0; w < kAttnWarps; w++) m = fmaxf(m, sMax[w]);
        float sum = 0.0f, a = 0.0f;
        for (int w = 0; w < kAttnWarps; w++) {
            const float f = expf(sMax[w] - m);  // 0 for a warp that had no position
            sum += sSum[w] * f;
            a += sAcc[w][threadIdx.x] * f;
        }
        out[(t * nHead + h) * headDim + threadIdx.x] = a / sum;
    }
}

unsigned blocksFor(int64_t count) { return static_cast<unsigned>((count + kThreads - 1) / kThreads); }

}  // namespace

void matmul(cudaStream_t s, uint32_t type, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n, Epilogue e) {
    switch (type) {
        case dq::kF32: matmulTyped<dq::kF32>(s, rowBytes, cols, m, x, n, e); break;
        case dq::kF16: matmulTyped<dq::kF16>(s, rowBytes, cols, m, x, n, e); break;
        case dq::kQ8_0: matmulTyped<dq::kQ8_0>(s, rowBytes, cols, m, x, n, e); break;
        case dq::kQ4_K: matmulTyped<dq::kQ4_K>(s, rowBytes, cols, m, x, n, e); break;
        case dq::kQ6_K: matmulTyped<dq::kQ6_K>(s, rowBytes, cols, m, x, n, e); break;
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

void swiglu(cudaStream_t s, float* g, const float* u, int64_t count) {
    swigluKernel<<<blocksFor(count), kThreads, 0, s>>>(g, u, count);
    cu::launched("swiglu");
}

void ropeAndStore(cudaStream_t s, float* q, float* k, const float* v, const float* cs, const RowInfo* rows, int64_t n, int64_t layer,
                  int64_t nHead, int64_t nHeadKv, int64_t headDim, int64_t half, bool neox) {
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(nHead + nHeadKv));
    ropeAndStoreKernel<<<grid, 128, 0, s>>>(q, k, v, cs, rows, layer, nHead, nHeadKv, headDim, half, neox);
    cu::launched("ropeAndStore");
}

void attention(cudaStream_t s, const float* q, const RowInfo* rows, int64_t n, int64_t layer, int64_t nHead, int64_t nHeadKv,
               int64_t headDim, float* out) {
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(nHead));
    const int threads = kAttnWarps * 32;
    if (headDim <= 32) {
        attentionKernel<1><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out);
    } else if (headDim <= 64) {
        attentionKernel<2><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out);
    } else if (headDim <= 128) {
        attentionKernel<4><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out);
    } else {
        attentionKernel<8><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out);
    }
    cu::launched("attention");
}

int maxHeadDim() { return 256; }

}  // namespace ops
