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
// their latency behind). NORM: the input is RMS-normalized on the way in (see Matrices::norm): a warp's
// lanes read all of an input vector once, so they sum its squares as they go, and the sums are scaled at
// the end.
template <uint32_t T, int NB, int U, int E, bool NORM>
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
        float acc[R][NB], ss[NB];
        const float* xs[NB];
#pragma unroll
        for (int j = 0; j < NB; j++) {
            ss[j] = 0.0f;
            const int64_t t = t0 + j < n ? t0 + j : t0;
            xs[j] = x + (m.rowOf ? static_cast<int64_t>(m.rowOf[t]) : t) * cols;
#pragma unroll
            for (int q = 0; q < R; q++) acc[q][j] = 0.0f;
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
                float nv[kGroup];
                if (NORM) inputGroup(m.norm, base, cols, nv);
#pragma unroll
                for (int j = 0; j < NB; j++) {
                    if (t0 + j < n) {
                        float xv[kGroup];
                        inputGroup(xs[j], base, cols, xv);
                        if (NORM) {
#pragma unroll
                            for (int e = 0; e < kGroup; e++) {
                                ss[j] += xv[e] * xv[e];
                                xv[e] *= nv[e];
                            }
                        }
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
            float s2 = R == 2 ? warpSum(acc[R - 1][j]) : 0.0f;
            if (NORM) {
                // As the CPU backend scales: 1 / sqrt(mean of squares + eps).
                const float scale = 1.0f / sqrtf(warpSum(ss[j]) / static_cast<float>(cols) + m.eps);
                s *= scale;
                s2 *= scale;
            }
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

template <uint32_t T, int E, bool NORM>
void matmulAs(cudaStream_t s, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n) {
    const int64_t rows = E == kSwiGlu ? m.rows[0] : m.rows[0] + m.rows[1] + m.rows[2];
    const dim3 grid(static_cast<unsigned>((rows + kWarps - 1) / kWarps));
    // Decoding reads each row once: the quantized types, whose groups are 8 to 10 bytes a lane, keep 8 of
    // them in flight, the float types 4 (16 to 32 bytes each); two rows at once (SwiGLU) keep 4 of each.
    constexpr int kQuant = T != dq::kF32 && T != dq::kF16;
    constexpr int U = kQuant && E != kSwiGlu ? 8 : 4;
    if (n == 1) {
        matmulKernel<T, 1, U, E, NORM><<<grid, 32 * kWarps, 0, s>>>(m, rowBytes, cols, x, n);
    } else {
        matmulKernel<T, 8, 1, E, NORM><<<grid, 32 * kWarps, 0, s>>>(m, rowBytes, cols, x, n);
    }
}

template <uint32_t T>
void matmulTyped(cudaStream_t s, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n, Epilogue e) {
    const bool norm = m.norm != nullptr;
    switch (e) {
        case Epilogue::Store:
            norm ? matmulAs<T, kStore, true>(s, rowBytes, cols, m, x, n) : matmulAs<T, kStore, false>(s, rowBytes, cols, m, x, n);
            break;
        case Epilogue::Add:
            norm ? matmulAs<T, kAdd, true>(s, rowBytes, cols, m, x, n) : matmulAs<T, kAdd, false>(s, rowBytes, cols, m, x, n);
            break;
        case Epilogue::SwiGlu:
            norm ? matmulAs<T, kSwiGlu, true>(s, rowBytes, cols, m, x, n) : matmulAs<T, kSwiGlu, false>(s, rowBytes, cols, m, x, n);
            break;
    }
}

__global__ void embedKernel(uint32_t type, const uint8_t* __restrict__ table, int64_t rowBytes, const int32_t* __restrict__ tokens,
                            int64_t dim, float* __restrict__ x) {
    const int64_t t = blockIdx.x;
    const uint8_t* row = table + static_cast<int64_t>(tokens[t]) * rowBytes;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) x[t * dim + i] = dq::element(type, row, i);
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

constexpr int kAttnWarps = 4;   // warps per block of attention
constexpr int kAttnUnroll = 4;  // positions a warp reads at once

// Block (row, head, z) takes slice z of kAttnSplits of the row's positions 0..pos: warp w of it positions
// w*4.., 16 + w*4.., ... (four at once, their loads in flight together), its lanes across the head's
// values (lane l holds values l, l + 32, ...: VPL of them). Each warp keeps a running softmax (maximum,
// sum, weighted values, rescaled as the maximum grows); the block joins its warps' and writes the slice's
// partial result, and the last block of a (row, head) to finish joins the slices' (counted in
// done[row * nHead + head], which it sets back to 0 for the next launch).
template <int VPL>
__global__ void __launch_bounds__(kAttnWarps * 32) attentionKernel(const float* __restrict__ q, const RowInfo* __restrict__ rows, int64_t layer,
                                                                    int64_t nHead, int64_t nHeadKv, int64_t headDim, float* __restrict__ out,
                                                                    float* __restrict__ part, unsigned* __restrict__ done) {
    constexpr int D = 32 * VPL;
    __shared__ float sMax[kAttnWarps], sSum[kAttnWarps];
    __shared__ float sAcc[kAttnWarps][D];
    __shared__ bool last;
    const int64_t t = blockIdx.x, h = blockIdx.y, z = blockIdx.z;
    const RowInfo ri = rows[t];
    const bool f16 = ri.f16 != 0;
    const int64_t kvDim = nHeadKv * headDim, kvh = h / (nHead / nHeadKv);
    const int64_t base = layer * ri.nCtx * kvDim + kvh * headDim;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float scale = 1.0f / sqrtf(static_cast<float>(headDim));
    const int64_t count = static_cast<int64_t>(ri.pos) + 1, per = (count + kAttnSplits - 1) / kAttnSplits;
    const int64_t begin = z * per, end = begin + per < count ? begin + per : count;
    float qv[VPL], acc[VPL];
#pragma unroll
    for (int i = 0; i < VPL; i++) {
        const int64_t d = lane + 32 * i;
        qv[i] = d < headDim ? q[(t * nHead + h) * headDim + d] : 0.0f;
        acc[i] = 0.0f;
    }
    float runMax = -FLT_MAX, runSum = 0.0f;
    for (int64_t p0 = begin + warp * kAttnUnroll; p0 < end; p0 += kAttnWarps * kAttnUnroll) {
        float kv[kAttnUnroll][VPL], vv[kAttnUnroll][VPL], sc[kAttnUnroll];
#pragma unroll
        for (int u = 0; u < kAttnUnroll; u++) {
            const bool in = p0 + u < end;
            const int64_t at = base + (p0 + u) * kvDim;
#pragma unroll
            for (int i = 0; i < VPL; i++) {
                const int64_t d = lane + 32 * i;
                kv[u][i] = in && d < headDim ? cacheAt(ri.k, at + d, f16) : 0.0f;
                vv[u][i] = in && d < headDim ? cacheAt(ri.v, at + d, f16) : 0.0f;
            }
        }
#pragma unroll
        for (int u = 0; u < kAttnUnroll; u++) {
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < VPL; i++) s += qv[i] * kv[u][i];
            sc[u] = s;
        }
#pragma unroll
        for (int u = 0; u < kAttnUnroll; u++) sc[u] = warpSum(sc[u]) * scale;
#pragma unroll
        for (int u = 0; u < kAttnUnroll; u++) {
            if (p0 + u < end) {
                const float newMax = fmaxf(runMax, sc[u]);
                const float rescale = expf(runMax - newMax), weight = expf(sc[u] - newMax);
                runSum = runSum * rescale + weight;
#pragma unroll
                for (int i = 0; i < VPL; i++) acc[i] = acc[i] * rescale + weight * vv[u][i];
                runMax = newMax;
            }
        }
    }
    if (lane == 0) {
        sMax[warp] = runMax;
        sSum[warp] = runSum;
    }
#pragma unroll
    for (int i = 0; i < VPL; i++) sAcc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    // The slice's partial: its maximum, its sum and its weighted values (headDim), joined over the warps;
    // a warp that had no position has maximum -FLT_MAX and weighs 0.
    const int64_t slot = (t * nHead + h) * kAttnSplits + z, stride = headDim + 2;
    float m = -FLT_MAX;
    for (int w = 0; w < kAttnWarps; w++) m = fmaxf(m, sMax[w]);
    for (int64_t d = threadIdx.x; d < headDim; d += blockDim.x) {
        float a = 0.0f;
        for (int w = 0; w < kAttnWarps; w++) a += sAcc[w][d] * expf(sMax[w] - m);
        part[slot * stride + 2 + d] = a;
    }
    if (threadIdx.x == 0) {
        float sum = 0.0f;
        for (int w = 0; w < kAttnWarps; w++) sum += sSum[w] * expf(sMax[w] - m);
        part[slot * stride] = m;
        part[slot * stride + 1] = sum;
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&done[t * nHead + h], 1u) == kAttnSplits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    const float* mine = part + (t * nHead + h) * kAttnSplits * stride;
    float total = -FLT_MAX;
    for (int i = 0; i < kAttnSplits; i++) total = fmaxf(total, __ldcg(mine + i * stride));
    for (int64_t d = threadIdx.x; d < headDim; d += blockDim.x) {
        float sum = 0.0f, a = 0.0f;
        for (int i = 0; i < kAttnSplits; i++) {
            const float f = expf(__ldcg(mine + i * stride) - total);  // 0 for a slice without positions
            sum += __ldcg(mine + i * stride + 1) * f;
            a += __ldcg(mine + i * stride + 2 + d) * f;
        }
        out[(t * nHead + h) * headDim + d] = a / sum;
    }
    if (threadIdx.x == 0) done[t * nHead + h] = 0;
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
               int64_t headDim, float* out, float* part, unsigned* done) {
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(nHead), kAttnSplits);
    const int threads = kAttnWarps * 32;
    if (headDim <= 32) {
        attentionKernel<1><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    } else if (headDim <= 64) {
        attentionKernel<2><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    } else if (headDim <= 128) {
        attentionKernel<4><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    } else {
        attentionKernel<8><<<grid, threads, 0, s>>>(q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    }
    cu::launched("attention");
}

int maxHeadDim() { return 256; }

}  // namespace ops
