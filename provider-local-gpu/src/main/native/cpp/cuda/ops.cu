// The CUDA backend's kernels. Weights stay in their file's encoding (Q8_0 rows split into quants and
// scales, see dq::kQ8_0Split) and are decoded in registers: each lane of a warp loads its share of a row 16
// bytes at a time where the encoding allows (F16, F32, Q8_0, Q4_K; Q6_K two bytes at a time), several
// loads in flight before the first is used, and a warp reads a row from start to end once per 8 input
// vectors, and once in all for decoding (one vector), where the pass is bound by reading the weights.
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../dequant.h"
#include "check.h"
#include "ops.h"

namespace ops {
namespace {

// The dynamic shared memory of a kernel, 16-byte aligned (the tests' host build of these kernels defines
// its own).
#ifndef HI_DYNAMIC_SHARED
#define HI_DYNAMIC_SHARED(name) extern __shared__ __align__(16) uint8_t name[]
#endif

constexpr int kWarps = 8;       // warps per block of the matrix product
constexpr int kThreads = 256;   // threads per block of the row-wise kernels

// Programmatic dependent launch (Hopper on): a kernel may be scheduled while the one before it in the
// stream still runs, and waits in dependOnPrevious() until that one has finished and its writes are
// visible; every kernel calls it before touching global memory, then lets the next one be scheduled.
// Without the launch attribute (or before Hopper) both instructions do nothing.
thread_local bool programmatic = false;

__device__ __forceinline__ void dependOnPrevious() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Lets kernel take up to `limit` bytes of dynamic shared memory (Matrices::sharedLimit) on the current
// device: past 48 KB with its own, a kernel must ask. Always the same limit, never the size of one launch,
// since the setting is the function's for every launch after it, captured graphs' included.
template <typename... Params>
void allowShared(void (*kernel)(Params...), int limit) {
    cu::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limit), "cudaFuncSetAttribute");
}

// The blocks of kernel, with `shared` bytes of dynamic shared memory, that one multiprocessor of the current
// device holds at once (at least 1), the kernel's shared memory first allowed up to limit: asked of the
// runtime once per kernel, device and size, not on every launch of a pass.
template <typename... Params>
int residentPerMultiprocessor(void (*kernel)(Params...), size_t shared, int limit) {
    static std::mutex lock;
    static std::map<std::tuple<const void*, int, size_t>, int> known;
    int device = 0;
    cu::check(cudaGetDevice(&device), "cudaGetDevice");
    const auto key = std::make_tuple(reinterpret_cast<const void*>(kernel), device, shared);
    std::lock_guard<std::mutex> hold(lock);
    const auto found = known.find(key);
    if (found != known.end()) return found->second;
    allowShared(kernel, limit);
    int blocks = 0;
    cu::check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, 32 * kWarps, shared), "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return known.emplace(key, blocks > 0 ? blocks : 1).first->second;
}

// Launches kernel on s with `shared` bytes of dynamic shared memory, programmatically dependent when
// `programmatic` is set: a bad configuration fails here, a fault inside the kernel at the pass's
// synchronization.
template <typename... Params, typename... Args>
void launchShared(const char* what, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared, cudaStream_t s, Args&&... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = shared;
    cfg.stream = s;
    cfg.attrs = attr;
    cfg.numAttrs = programmatic ? 1 : 0;
    cu::check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), what);
}

template <typename... Params, typename... Args>
void launch(const char* what, void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t s, Args&&... args) {
    launchShared(what, kernel, grid, block, 0, s, std::forward<Args>(args)...);
}

// How a lane reads its share of a weight row, per encoding: G values per load, at positions base + k*GAP
// + i (RUNS runs of RUN values), where base = step + start(lane) for steps of 32 * G values. Raw is what a
// load keeps in registers until dot() decodes it against the input's values at the same positions.
template <uint32_t T>
struct Fmt;

template <>
struct Fmt<dq::kF32> {
    static constexpr int G = 8, RUNS = 1, RUN = 8, GAP = 0;
    struct Raw {
        float4 a, b;
    };
    static __device__ __forceinline__ int64_t start(int lane) { return lane * G; }
    static __device__ __forceinline__ void load(const uint8_t* row, int64_t base, int64_t cols, Raw& r) {
        const float* f = reinterpret_cast<const float*>(row) + base;
        if ((cols & 7) == 0) {
            r.a = *reinterpret_cast<const float4*>(f);
            r.b = *reinterpret_cast<const float4*>(f + 4);
        } else {
            auto at = [&](int i) { return base + i < cols ? f[i] : 0.0f; };
            r.a = make_float4(at(0), at(1), at(2), at(3));
            r.b = make_float4(at(4), at(5), at(6), at(7));
        }
    }
    static __device__ __forceinline__ float dot(const Raw& r, int64_t, const float (&x)[G]) {
        return r.a.x * x[0] + r.a.y * x[1] + r.a.z * x[2] + r.a.w * x[3] + r.b.x * x[4] + r.b.y * x[5] + r.b.z * x[6] + r.b.w * x[7];
    }
};

template <>
struct Fmt<dq::kF16> {
    static constexpr int G = 8, RUNS = 1, RUN = 8, GAP = 0;
    struct Raw {
        uint4 q;
    };
    static __device__ __forceinline__ int64_t start(int lane) { return lane * G; }
    static __device__ __forceinline__ void load(const uint8_t* row, int64_t base, int64_t cols, Raw& r) {
        if ((cols & 7) == 0) {
            r.q = *reinterpret_cast<const uint4*>(row + 2 * base);
        } else {
            auto at = [&](int i) { return base + i < cols ? static_cast<uint32_t>(dq::u16(row + 2 * (base + i))) : 0u; };
            r.q = make_uint4(at(0) | at(1) << 16, at(2) | at(3) << 16, at(4) | at(5) << 16, at(6) | at(7) << 16);
        }
    }
    static __device__ __forceinline__ float dot(const Raw& r, int64_t, const float (&x)[G]) {
        const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[e]));
            s += f.x * x[2 * e] + f.y * x[2 * e + 1];
        }
        return s;
    }
};

// Q8_0 as uploaded (dq::kQ8_0Split): a row's int8 quants, then its F16 scales, one per 32 values.
template <>
struct Fmt<dq::kQ8_0Split> {
    static constexpr int G = 16, RUNS = 1, RUN = 16, GAP = 0;
    struct Raw {
        uint4 q;
        float d;
    };
    static __device__ __forceinline__ int64_t start(int lane) { return lane * G; }
    static __device__ __forceinline__ void load(const uint8_t* row, int64_t base, int64_t cols, Raw& r) {
        r.q = *reinterpret_cast<const uint4*>(row + base);
        r.d = dq::half(dq::u16(row + cols + 2 * (base >> 5)));
    }
    static __device__ __forceinline__ float dot(const Raw& r, int64_t, const float (&x)[G]) {
        const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
        return dq::q8_0SplitDot(w, r.d, x);
    }
};

// Q4_K: a lane takes 16 quant bytes of a super-block (32 values: 16 of sub-block 2c, in the low nibbles,
// and the same 16 positions of sub-block 2c + 1, 32 values on, in the high ones) and the block's 16-byte
// head (d, dmin, the packed scales and minimums). Eight lanes cover a super-block.
template <>
struct Fmt<dq::kQ4_K> {
    static constexpr int G = 32, RUNS = 2, RUN = 16, GAP = 32;
    struct Raw {
        uint4 q, head;
    };
    static __device__ __forceinline__ int64_t start(int lane) { return 256 * (lane >> 3) + 64 * ((lane & 7) >> 1) + 16 * (lane & 1); }
    static __device__ __forceinline__ void load(const uint8_t* row, int64_t base, int64_t, Raw& r) {
        const uint8_t* b = row + (base >> 8) * 144;
        const int j = static_cast<int>(base & 255);
        r.head = *reinterpret_cast<const uint4*>(b);
        r.q = *reinterpret_cast<const uint4*>(b + 16 + 32 * (j >> 6) + (j & 31));
    }
    static __device__ __forceinline__ float dot(const Raw& r, int64_t base, const float (&x)[G]) {
        const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w}, head[4] = {r.head.x, r.head.y, r.head.z, r.head.w};
        return dq::q4_KDot(w, head, static_cast<int>((base & 255) >> 6), x);
    }
};

// Q6_K: decoded as it is loaded, eight values (one sub-block scale) at a time.
template <>
struct Fmt<dq::kQ6_K> {
    static constexpr int G = 8, RUNS = 1, RUN = 8, GAP = 0;
    struct Raw {
        float w[8];
    };
    static __device__ __forceinline__ int64_t start(int lane) { return lane * G; }
    static __device__ __forceinline__ void load(const uint8_t* row, int64_t base, int64_t, Raw& r) { dq::q6_Kx8(row, base, r.w); }
    static __device__ __forceinline__ float dot(const Raw& r, int64_t, const float (&x)[G]) {
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) s += r.w[e] * x[e];
        return s;
    }
};

// The G values of an input vector (F32) at a lane's positions: 16-byte loads when the width is a multiple
// of 8 (always, for the quantized encodings).
template <class F>
__device__ __forceinline__ void gather(const float* __restrict__ xs, int64_t base, int64_t cols, float (&v)[F::G]) {
    if ((cols & 7) == 0) {
#pragma unroll
        for (int k = 0; k < F::RUNS; k++) {
#pragma unroll
            for (int i = 0; i < F::RUN; i += 4) {
                const float4 a = *reinterpret_cast<const float4*>(xs + base + k * F::GAP + i);
                v[k * F::RUN + i] = a.x, v[k * F::RUN + i + 1] = a.y, v[k * F::RUN + i + 2] = a.z, v[k * F::RUN + i + 3] = a.w;
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < F::RUNS; k++) {
#pragma unroll
            for (int i = 0; i < F::RUN; i++) {
                const int64_t at = base + k * F::GAP + i;
                v[k * F::RUN + i] = at < cols ? xs[at] : 0.0f;
            }
        }
    }
}

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

constexpr int kStore = 0, kAdd = 1, kSwiGlu = 2, kRope = 3;

template <typename V>
__device__ __forceinline__ V pick(int i, V a, V b, V c) {
    return i == 0 ? a : i == 1 ? b : c;
}

// The rows group wi of warps computes: RW consecutive rows of one of the matrices (laid end to end, each
// matrix's rows rounded up to a multiple of RW), or for kSwiGlu row wi of both. A group past the last row
// is not valid: it computes nothing but still takes part in the block's joins.
template <int E, int RW>
struct Group {
    static constexpr int R = E == kSwiGlu ? 2 : RW;
    int seg;  // which of the matrices
    int64_t rows, r0;
    bool valid;
    const uint8_t* row[R];
    const float* bias;
    float* y;

    __device__ __forceinline__ Group(const Matrices& m, int64_t rowBytes, int64_t wi) {
        seg = 0;
        if (E != kSwiGlu) {
            const int64_t w0 = (m.rows[0] + RW - 1) / RW, w1 = (m.rows[1] + RW - 1) / RW;
            if (wi >= w0) {
                wi -= w0;
                seg = 1;
                if (wi >= w1) {
                    wi -= w1;
                    seg = 2;
                }
            }
        }
        rows = pick(seg, m.rows[0], m.rows[1], m.rows[2]);
        r0 = E == kSwiGlu ? wi : wi * RW;
        valid = r0 < rows;
        if (E == kSwiGlu) {
            row[0] = m.w[0] + (valid ? r0 : 0) * rowBytes;
            row[R - 1] = m.w[1] + (valid ? r0 : 0) * rowBytes;
        } else {
            const uint8_t* w = pick(seg, m.w[0], m.w[1], m.w[2]);
#pragma unroll
            for (int q = 0; q < R; q++) row[q] = w + (r0 + q < rows ? r0 + q : 0) * rowBytes;
        }
        bias = pick(seg, m.b[0], m.b[1], m.b[2]);
        y = pick(seg, m.y[0], m.y[1], m.y[2]);
    }

    // Asks the L2 cache for the group's rows, 128-byte lines, this warp's turns of them. Called before the
    // wait for the kernel before, which writes the product's input but never its weights, so that the rows
    // stream in while that kernel ends (see Matrices::prefetch).
    __device__ __forceinline__ void prefetch(int64_t rowBytes, int turn, int split, int lane) const {
#pragma unroll
        for (int q = 0; q < R; q++) {
            if (E == kSwiGlu ? !valid : r0 + q >= rows) continue;
            // From the line the row starts in, so that a row not aligned to 128 bytes has its last line too.
            const uint8_t* first = row[q] - (reinterpret_cast<uintptr_t>(row[q]) & 127);
            for (const uint8_t* at = first + (turn * 32 + lane) * 128; at < row[q] + rowBytes; at += split * 32 * 128) {
#if defined(__CUDA_ARCH__)
                asm volatile("prefetch.global.L2 [%0];" ::"l"(at));
#endif
            }
        }
    }
};

// Epilogue::RopeStore's end of rows r0 and r0 + 1 (r0 even) of row t's Q (seg 0), K (1) or V (2): a pair
// that RoPE rotates together in the normal pairing (adjacent values of a head, pair (r0 % headDim) / 2,
// rotated when below rope.half), as ropeAndStoreKernel rotates them; Q's pair is stored in y, K's and V's
// in the row's cache at its position.
__device__ __forceinline__ void ropeAndStorePair(int seg, int64_t r0, float a, float b, int64_t t, int64_t rows, float* y, const RopeStore& rope) {
    if (seg < 2) {
        const int64_t i = (r0 % rope.headDim) / 2;
        if (i < rope.half) {
            const float c = rope.cs[t * 2 * rope.half + i], sn = rope.cs[t * 2 * rope.half + rope.half + i];
            const float a2 = a * c - b * sn;
            b = a * sn + b * c;
            a = a2;
        }
    }
    if (seg == 0) {
        y[t * rows + r0] = a;
        y[t * rows + r0 + 1] = b;
        return;
    }
    const RowInfo ri = rope.rows[t];
    const int64_t at = (rope.layer * ri.nCtx + ri.pos) * rows + r0;  // rows: the cache's width, kvDim
    void* cache = seg == 1 ? ri.k : ri.v;
    if (ri.f16) {
        static_cast<__half*>(cache)[at] = __float2half_rn(a);
        static_cast<__half*>(cache)[at + 1] = __float2half_rn(b);
    } else {
        static_cast<float*>(cache)[at] = a;
        static_cast<float*>(cache)[at + 1] = b;
    }
}

// The end of a pass over the rows for NB input vectors t0..: each lane's sums (acc; ss, when NORM, the
// squares of the input it read, unless SUMMED says ss already holds the whole vector's) added up over the
// warp, then over the group's turns in shared memory (joined); then the group's first lane applies the
// epilogue. Every thread of the block calls it: it synchronizes the block when warps share rows.
template <int E, int RW, int NB, bool NORM, bool SUMMED>
__device__ __forceinline__ void finish(const Group<E, RW>& g, float (&acc)[Group<E, RW>::R][NB], float (&ss)[NB],
                                       float (*joined)[Group<E, RW>::R * NB + NB], const Matrices& m, int64_t cols, int64_t t0,
                                       int64_t n, int split) {
    constexpr int R = Group<E, RW>::R;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, turn = warp % split;
#pragma unroll
    for (int j = 0; j < NB; j++) {
        if (!SUMMED) ss[j] = warpSum(ss[j]);
#pragma unroll
        for (int q = 0; q < R; q++) acc[q][j] = warpSum(acc[q][j]);
    }
    if (split > 1) {
        if (lane == 0) {
#pragma unroll
            for (int j = 0; j < NB; j++) {
                joined[warp][R * NB + j] = ss[j];
#pragma unroll
                for (int q = 0; q < R; q++) joined[warp][q * NB + j] = acc[q][j];
            }
        }
        __syncthreads();
        if (turn == 0) {
            for (int w = warp + 1; w < warp + split; w++) {
#pragma unroll
                for (int j = 0; j < NB; j++) {
                    if (!SUMMED) ss[j] += joined[w][R * NB + j];
#pragma unroll
                    for (int q = 0; q < R; q++) acc[q][j] += joined[w][q * NB + j];
                }
            }
        }
        __syncthreads();  // before the next vectors' sums overwrite the joined ones
    }
    if (turn != 0 || lane != 0 || !g.valid) return;
#pragma unroll
    for (int j = 0; j < NB; j++) {
        if (t0 + j >= n) continue;
        // As the CPU backend scales: 1 / sqrt(mean of squares + eps).
        const float scale = NORM ? 1.0f / sqrtf(ss[j] / static_cast<float>(cols) + m.eps) : 1.0f;
        if (E == kSwiGlu) {
            const float gate = acc[0][j] * scale, up = acc[R - 1][j] * scale;
            g.y[(t0 + j) * g.rows + g.r0] = gate / (1.0f + expf(-gate)) * up;
        } else if (E == kRope) {
            ropeAndStorePair(g.seg, g.r0, acc[0][j] * scale + (g.bias ? g.bias[g.r0] : 0.0f),
                             acc[R - 1][j] * scale + (g.bias ? g.bias[g.r0 + 1] : 0.0f), t0 + j, g.rows, g.y, m.rope);
        } else {
#pragma unroll
            for (int q = 0; q < R; q++) {
                if (g.r0 + q >= g.rows) continue;
                float s = acc[q][j] * scale;
                if (g.bias) s += g.bias[g.r0 + q];
                float* out = g.y + (t0 + j) * g.rows + g.r0 + q;
                if (E == kAdd) {
                    *out += s;
                } else {
                    *out = s;
                }
            }
        }
    }
}

// The loads of one turn of this warp along the group's rows: U loads of each row in flight per lane, at
// base = step + 32 * G * u + start(lane), those before the end of the rows; raw[q][u] holds row q's.
template <class F, int R, int U, class Rows>
__device__ __forceinline__ void loadTurn(const Rows& g, int64_t step, int64_t cols, int lane, typename F::Raw (&raw)[R][U]) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int64_t base = step + 32 * F::G * u + F::start(lane);
        if (base < cols) {
#pragma unroll
            for (int q = 0; q < R; q++) F::load(g.row[q], base, cols, raw[q][u]);
        }
    }
}

// A group of `split` warps per RW weight rows (see Group), kWarps / split groups per block: the group's
// warps take turns along the rows, 32 * G * U values at a time, and join their sums in shared memory. A
// lane's loads serve RW rows at once, and the input values it gathers serve all of them. NB: input vectors
// per read of the rows (1 for decoding, 8 otherwise); U: loads of each row in flight per lane before the
// first is used. NORM: the input is RMS-normalized on the way in (see Matrices::norm): a group's lanes read
// all of an input vector once, so they sum its squares as they go, and the sums are scaled at the end.
template <uint32_t T, int NB, int U, int RW, int E, bool NORM, int MINB>
__global__ void __launch_bounds__(kWarps * 32, MINB) matmulKernel(const Matrices m, int64_t rowBytes, int64_t cols,
                                                                   const float* __restrict__ x, int64_t n, int split) {
    using F = Fmt<T>;
    using Gr = Group<E, RW>;
    constexpr int G = F::G, R = Gr::R;
    __shared__ float joined[kWarps][R * NB + NB];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, turn = warp % split;
    const Gr g(m, rowBytes, static_cast<int64_t>(blockIdx.x) * (kWarps / split) + warp / split);
    if (m.prefetch) g.prefetch(rowBytes, turn, split, lane);
    dependOnPrevious();
    const int64_t stride = static_cast<int64_t>(split) * 32 * G * U;
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
        for (int64_t step = g.valid ? turn * 32 * G * U : cols; step < cols; step += stride) {
            typename F::Raw raw[R][U];
            loadTurn<F, R, U>(g, step, cols, lane, raw);
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int64_t base = step + 32 * G * u + F::start(lane);
                if (base >= cols) continue;
                float nv[G];
                if (NORM) gather<F>(m.norm, base, cols, nv);
#pragma unroll
                for (int j = 0; j < NB; j++) {
                    if (t0 + j < n) {
                        float xv[G];
                        gather<F>(xs[j], base, cols, xv);
                        if (NORM) {
#pragma unroll
                            for (int e = 0; e < G; e++) {
                                ss[j] += xv[e] * xv[e];
                                xv[e] *= nv[e];
                            }
                        }
#pragma unroll
                        for (int q = 0; q < R; q++) acc[q][j] += F::dot(raw[q][u], base, xv);
                    }
                }
            }
        }
        finish<E, RW, NB, NORM, false>(g, acc, ss, joined, m, cols, t0, n, split);
    }
}

// ---- integer products (precision fast: Matrices::integer) ----

// The NB input vectors of an integer product, quantized into the block's shared memory for weights of QB
// values per block (32 for Q8_0, 256 for Q4_K), each vector `bytes(cols)` long: its 8-bit values (cols),
// a float scale per QB values, and when SUMS the sums of each 16 of its integers.
template <int QB, bool SUMS>
struct Quantized {
    const int8_t* q;
    const float* d;
    const int* sums;
    __host__ __device__ static int64_t bytes(int64_t cols) { return (cols + 4 * (cols / QB) + (SUMS ? 4 * (cols / 16) : 0) + 15) / 16 * 16; }
    __device__ __forceinline__ Quantized(const uint8_t* at, int64_t cols)
        : q(reinterpret_cast<const int8_t*>(at)), d(reinterpret_cast<const float*>(at + cols)), sums(reinterpret_cast<const int*>(at + cols + 4 * (cols / QB))) {}
};

// Quantizes input vectors t0.. t0 + NB - 1 (those below n) into `to`, as qk::quantize does: warp w takes
// runs of 256 values w, w + kWarps, ..., a lane 8 values of a run; the lanes of a block of QB values (4 or
// the warp) share its largest magnitude. With NORM the vector is RMS-normalized first, as the CPU
// backend's rmsnorm computes it (the sum of squares in double, the scale in float, x * scale * weight), so
// that the two quantize the same floats to the same integers: a first pass sums each warp's squares into
// ssPart, which after a barrier every thread adds up in one order. Every thread of the block calls it; the
// caller synchronizes before the vectors are read.
template <int QB, bool SUMS, bool NORM, int NB>
__device__ __forceinline__ void quantizeInputs(const Matrices& m, const float* __restrict__ x, int64_t cols, int64_t t0, int64_t n,
                                               uint8_t* to, double (*ssPart)[NB]) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t bytes = Quantized<QB, SUMS>::bytes(cols);
    auto input = [&](int j) { return x + (m.rowOf ? static_cast<int64_t>(m.rowOf[t0 + j]) : t0 + j) * cols; };
    float scale[NB];
    if (NORM) {
        for (int j = 0; j < NB && t0 + j < n; j++) {
            const float* xs = input(j);
            double ss = 0.0;
            for (int64_t at = static_cast<int64_t>(warp) * 256 + 8 * lane; at < cols; at += kWarps * 256) {
                const float4 a = *reinterpret_cast<const float4*>(xs + at), b = *reinterpret_cast<const float4*>(xs + at + 4);
                ss += static_cast<double>(a.x) * a.x + static_cast<double>(a.y) * a.y + static_cast<double>(a.z) * a.z + static_cast<double>(a.w) * a.w;
                ss += static_cast<double>(b.x) * b.x + static_cast<double>(b.y) * b.y + static_cast<double>(b.z) * b.z + static_cast<double>(b.w) * b.w;
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
            if (lane == 0) ssPart[warp][j] = ss;
        }
        __syncthreads();
        for (int j = 0; j < NB && t0 + j < n; j++) {
            double ss = 0.0;
            for (int w = 0; w < kWarps; w++) ss += ssPart[w][j];
            scale[j] = 1.0f / sqrtf(static_cast<float>(ss / static_cast<double>(cols)) + m.eps);
        }
    }
    for (int j = 0; j < NB && t0 + j < n; j++) {
        const float* xs = input(j);
        int8_t* q = reinterpret_cast<int8_t*>(to + j * bytes);
        float* d = reinterpret_cast<float*>(to + j * bytes + cols);
        int* sums = reinterpret_cast<int*>(to + j * bytes + cols + 4 * (cols / QB));
        for (int64_t run = static_cast<int64_t>(warp) * 256; run < cols; run += kWarps * 256) {
            // cols is a multiple of 32: a lane's 8 values are all in or all past the end.
            const int64_t at = run + 8 * lane;
            const bool in = at < cols;
            float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (in) {
                const float4 a = *reinterpret_cast<const float4*>(xs + at), b = *reinterpret_cast<const float4*>(xs + at + 4);
                v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
                if (NORM) {
                    const float4 c = *reinterpret_cast<const float4*>(m.norm + at), e = *reinterpret_cast<const float4*>(m.norm + at + 4);
                    const float w[8] = {c.x, c.y, c.z, c.w, e.x, e.y, e.z, e.w};
#pragma unroll
                    for (int i = 0; i < 8; i++) v[i] = v[i] * scale[j] * w[i];
                }
            }
            float amax = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; i++) amax = fmaxf(amax, fabsf(v[i]));
#pragma unroll
            for (int o = 1; o < QB / 8; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
            uint32_t word[2];
            int sum = dq::quantize8(v, amax, word);
            if (SUMS) sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            if (in) {
                *reinterpret_cast<uint2*>(q + at) = make_uint2(word[0], word[1]);
                if (lane % (QB / 8) == 0) d[at / QB] = amax / 127.0f;
                if (SUMS && (lane & 1) == 0) sums[at / 16] = sum;
            }
        }
    }
}

// The weight encodings with an integer product: Fmt's loads, and the dot product of a load with the
// quantized input at the same positions, scales applied.
template <uint32_t T>
struct IntFmt;

template <>
struct IntFmt<dq::kQ8_0Split> : Fmt<dq::kQ8_0Split> {
    static constexpr int QB = 32;
    static constexpr bool SUMS = false;
    static __device__ __forceinline__ float dot(const Raw& r, int64_t base, const Quantized<QB, SUMS>& x) {
        const uint4 v = *reinterpret_cast<const uint4*>(x.q + base);
        const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w}, xv[4] = {v.x, v.y, v.z, v.w};
        return static_cast<float>(dq::ints16(w, xv)) * (r.d * x.d[base >> 5]);
    }
};

template <>
struct IntFmt<dq::kQ4_K> : Fmt<dq::kQ4_K> {
    static constexpr int QB = 256;
    static constexpr bool SUMS = true;
    static __device__ __forceinline__ float dot(const Raw& r, int64_t base, const Quantized<QB, SUMS>& x) {
        const uint4 a = *reinterpret_cast<const uint4*>(x.q + base), b = *reinterpret_cast<const uint4*>(x.q + base + 32);
        const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w}, head[4] = {r.head.x, r.head.y, r.head.z, r.head.w};
        const uint32_t lo[4] = {a.x, a.y, a.z, a.w}, hi[4] = {b.x, b.y, b.z, b.w};
        int il, ih, isum, msum;
        dq::q4_KInts(w, lo, hi, il, ih);
        dq::q4_KBlockInts(head, static_cast<int>((base & 255) >> 6), il, ih, x.sums[base >> 4], x.sums[(base + 32) >> 4], isum, msum);
        const float d = dq::half(static_cast<uint16_t>(head[0] & 0xFFFF)), dmin = dq::half(static_cast<uint16_t>(head[0] >> 16));
        return x.d[base >> 8] * (d * static_cast<float>(isum) - dmin * static_cast<float>(msum));
    }
};

// Q6_K: a lane takes a sub-block of 16 values (one scale), decoded to 6-bit integers as it is loaded (the
// 210-byte blocks allow 2-byte loads only); sixteen lanes cover a block.
template <>
struct IntFmt<dq::kQ6_K> {
    static constexpr int G = 16, QB = 256;
    static constexpr bool SUMS = true;
    struct Raw {
        uint32_t q[4];
        int scale;
        float d;
    };
    static __device__ __forceinline__ int64_t start(int lane) {
        const int g = lane & 15;  // the sub-block: half g >> 3, quarter (g >> 1) & 3, 16 values at 16 * (g & 1)
        return 256 * (lane >> 4) + 128 * (g >> 3) + 32 * ((g >> 1) & 3) + 16 * (g & 1);
    }
    static __device__ __forceinline__ void load(const uint8_t* row, int64_t base, int64_t, Raw& r) { dq::q6_KQuants16(row, base, r.q, r.scale, r.d); }
    static __device__ __forceinline__ float dot(const Raw& r, int64_t base, const Quantized<QB, SUMS>& x) {
        const uint4 v = *reinterpret_cast<const uint4*>(x.q + base);
        const uint32_t xv[4] = {v.x, v.y, v.z, v.w};
        return r.d * x.d[base >> 8] * static_cast<float>(r.scale * (dq::ints16(r.q, xv) - 32 * x.sums[base >> 4]));
    }
};

// matmulKernel's product with the input quantized into shared memory (quantizeInputs, NB vectors at a
// time) and integer dot products; the weights are read as matmulKernel reads them. The grid is what the
// device holds at once, and each block takes the blocks of groups b = blockIdx.x, + gridDim.x, ... of the
// `blocks` a grid of matmulKernel would have, so that a vector is quantized once per resident block rather
// than once per few rows.
template <uint32_t T, int NB, int U, int RW, int E, bool NORM>
__global__ void __launch_bounds__(kWarps * 32) intMatmulKernel(const Matrices m, int64_t rowBytes, int64_t cols, const float* __restrict__ x,
                                                                int64_t n, int split, int64_t blocks) {
    using F = IntFmt<T>;
    using Gr = Group<E, RW>;
    using Q = Quantized<F::QB, F::SUMS>;
    constexpr int G = F::G, R = Gr::R;
    HI_DYNAMIC_SHARED(inputs);
    __shared__ float joined[kWarps][R * NB + NB];
    __shared__ double ssPart[kWarps][NB];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, turn = warp % split, perBlock = kWarps / split;
    if (m.prefetch) Gr(m, rowBytes, static_cast<int64_t>(blockIdx.x) * perBlock + warp / split).prefetch(rowBytes, turn, split, lane);
    dependOnPrevious();
    const int64_t stride = static_cast<int64_t>(split) * 32 * G * U, bytes = Q::bytes(cols);
    for (int64_t t0 = 0; t0 < n; t0 += NB) {
        __syncthreads();  // the vectors before are read
        quantizeInputs<F::QB, F::SUMS, NORM, NB>(m, x, cols, t0, n, inputs, ssPart);
        __syncthreads();
        float ss[NB] = {};  // the input is normalized already: finish scales nothing
        for (int64_t b = blockIdx.x; b < blocks; b += gridDim.x) {
            const Gr g(m, rowBytes, b * perBlock + warp / split);
            float acc[R][NB];
#pragma unroll
            for (int j = 0; j < NB; j++) {
#pragma unroll
                for (int q = 0; q < R; q++) acc[q][j] = 0.0f;
            }
            for (int64_t step = g.valid ? turn * 32 * G * U : cols; step < cols; step += stride) {
                typename F::Raw raw[R][U];
                loadTurn<F, R, U>(g, step, cols, lane, raw);
#pragma unroll
                for (int u = 0; u < U; u++) {
                    const int64_t base = step + 32 * G * u + F::start(lane);
                    if (base >= cols) continue;
#pragma unroll
                    for (int j = 0; j < NB; j++) {
                        if (t0 + j < n) {
                            const Q xq(inputs + j * bytes, cols);
#pragma unroll
                            for (int q = 0; q < R; q++) acc[q][j] += F::dot(raw[q][u], base, xq);
                        }
                    }
                }
            }
            finish<E, RW, NB, false, true>(g, acc, ss, joined, m, cols, t0, n, split);
        }
    }
}

// The grid of a decoding product (one input vector) and the warps that share a row: two rows per group of
// warps (one for kSwiGlu, whose group takes a row of both matrices), and up to Matrices::maxSplit warps (2
// unless set otherwise) taking turns along the rows, as many as have a turn of 32 * G * U values.
template <int E>
void decodingGrid(const Matrices& m, int64_t cols, int64_t turnValues, dim3& grid, int& split) {
    constexpr int RW = E == kSwiGlu ? 1 : 2;
    const int64_t groups = E == kSwiGlu ? m.rows[0] : (m.rows[0] + RW - 1) / RW + (m.rows[1] + RW - 1) / RW + (m.rows[2] + RW - 1) / RW;
    const int64_t turns = (cols + turnValues - 1) / turnValues;
    split = 1;
    while (split < kWarps && split * 2 <= turns && split * 2 <= m.maxSplit) split *= 2;
    const int64_t perBlock = kWarps / split;
    grid = dim3(static_cast<unsigned>((groups + perBlock - 1) / perBlock));
}

// Batches: one row per warp (a row of both matrices for kSwiGlu), its loads serving 8 vectors.
template <int E>
dim3 batchGrid(const Matrices& m) {
    const int64_t rows = E == kSwiGlu ? m.rows[0] : m.rows[0] + m.rows[1] + m.rows[2];
    return dim3(static_cast<unsigned>((rows + kWarps - 1) / kWarps));
}

template <uint32_t T, int E, bool NORM>
void matmulAs(cudaStream_t s, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n) {
    // Decoding: one (32 values a lane: Q4_K) or two loads of each row in flight per lane.
    constexpr int G = Fmt<T>::G;
    constexpr int RW = E == kSwiGlu ? 1 : 2;
    constexpr int U = G >= 32 ? 1 : 2;
    if (n == 1) {
        dim3 grid;
        int split;
        decodingGrid<E>(m, cols, 32 * G * U, grid, split);
        if (m.minBlocks >= 3) {
            launch("matmul", matmulKernel<T, 1, U, RW, E, NORM, 3>, grid, dim3(32 * kWarps), s, m, rowBytes, cols, x, n, split);
        } else {
            launch("matmul", matmulKernel<T, 1, U, RW, E, NORM, 1>, grid, dim3(32 * kWarps), s, m, rowBytes, cols, x, n, split);
        }
    } else if constexpr (E == kRope) {
        throw DeviceError("matmul: RoPE in the product's epilogue is for one row at a time");
    } else {
        launch("matmul", matmulKernel<T, 8, 1, 1, E, NORM, 1>, batchGrid<E>(m), dim3(32 * kWarps), s, m, rowBytes, cols, x, n, 1);
    }
}

// The same through intMatmulKernel: the quantized input of one vector when decoding, of 8 for batches
// when they fit in the block's shared memory (Matrices::sharedLimit), else of one at a time; as many blocks
// as the device holds at once (Matrices::multiprocessors), up to as many as matmulKernel would launch.
template <uint32_t T, int E, bool NORM>
void intMatmulAs(cudaStream_t s, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n) {
    using F = IntFmt<T>;
    constexpr int G = F::G;
    constexpr int RW = E == kSwiGlu ? 1 : 2;
    constexpr int U = G >= 32 ? 1 : 2;
    const size_t bytes = static_cast<size_t>(Quantized<F::QB, F::SUMS>::bytes(cols));
    auto run = [&](auto kernel, dim3 grid, size_t shared, int split) {
        const int64_t blocks = grid.x, resident = static_cast<int64_t>(residentPerMultiprocessor(kernel, shared, m.sharedLimit)) * m.multiprocessors;
        launchShared("matmul", kernel, dim3(static_cast<unsigned>(blocks < resident ? blocks : resident)), dim3(32 * kWarps), shared, s, m,
                     rowBytes, cols, x, n, split, blocks);
    };
    if (n == 1 || 8 * bytes > static_cast<size_t>(m.sharedLimit)) {
        dim3 grid;
        int split;
        decodingGrid<E>(m, cols, 32 * G * U, grid, split);
        run(intMatmulKernel<T, 1, U, RW, E, NORM>, grid, bytes, split);
    } else if constexpr (E == kRope) {
        throw DeviceError("matmul: RoPE in the product's epilogue is for one row at a time");
    } else {
        run(intMatmulKernel<T, 8, 1, 1, E, NORM>, batchGrid<E>(m), 8 * bytes, 1);
    }
}

template <uint32_t T, bool INTEGER>
void matmulTyped(cudaStream_t s, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n, Epilogue e) {
    auto as = [&](auto epilogue, auto norm) {
        constexpr int E = decltype(epilogue)::value;
        constexpr bool NORM = decltype(norm)::value;
        if constexpr (INTEGER) {
            intMatmulAs<T, E, NORM>(s, rowBytes, cols, m, x, n);
        } else {
            matmulAs<T, E, NORM>(s, rowBytes, cols, m, x, n);
        }
    };
    auto normed = [&](auto epilogue) { m.norm ? as(epilogue, std::true_type()) : as(epilogue, std::false_type()); };
    switch (e) {
        case Epilogue::Store: normed(std::integral_constant<int, kStore>()); break;
        case Epilogue::Add: normed(std::integral_constant<int, kAdd>()); break;
        case Epilogue::SwiGlu: normed(std::integral_constant<int, kSwiGlu>()); break;
        case Epilogue::RopeStore: normed(std::integral_constant<int, kRope>()); break;
    }
}

__global__ void embedKernel(uint32_t type, const uint8_t* __restrict__ table, int64_t rowBytes, const int32_t* __restrict__ tokens,
                            int64_t dim, float* __restrict__ x) {
    dependOnPrevious();
    const int64_t t = blockIdx.x;
    const uint8_t* row = table + static_cast<int64_t>(tokens[t]) * rowBytes;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
        x[t * dim + i] = type == dq::kQ8_0Split ? dq::half(dq::u16(row + dim + 2 * (i >> 5))) * static_cast<float>(static_cast<int8_t>(row[i]))
                                            : dq::element(type, row, i);
    }
}

__global__ void swigluKernel(float* __restrict__ g, const float* __restrict__ u, int64_t count) {
    dependOnPrevious();
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
    dependOnPrevious();
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
constexpr int kAttnSlice = 64;  // positions per slice, until there are kAttnSplits slices

// Block (row, head, z) takes slice z of the row's positions 0..pos (slices of kAttnSlice positions, or
// kAttnSplits slices of more): warp w of it positions w*4.., 16 + w*4.., ... (four at once, their loads
// in flight together), its lanes across the head's
// values (lane l holds values l, l + 32, ...: VPL of them). Each warp keeps a running softmax (maximum,
// sum, weighted values, rescaled as the maximum grows); the block joins its warps' and writes the slice's
// partial result, and the last block of a (row, head) to finish joins the slices' (counted in
// done[row * nHead + head], which it sets back to 0 for the next launch).
template <int VPL>
__global__ void __launch_bounds__(kAttnWarps * 32) attentionKernel(const float* __restrict__ q, const RowInfo* __restrict__ rows, int64_t layer,
                                                                    int64_t nHead, int64_t nHeadKv, int64_t headDim, float* __restrict__ out,
                                                                    float* __restrict__ part, unsigned* __restrict__ done) {
    dependOnPrevious();
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
    // As many slices as there are runs of kAttnSlice positions, up to kAttnSplits: the blocks past them
    // leave at once, and a row of up to kAttnSlice positions is one block, which joins nothing.
    const int64_t count = static_cast<int64_t>(ri.pos) + 1;
    const int slices = static_cast<int>(count >= int64_t(kAttnSplits) * kAttnSlice ? kAttnSplits : (count + kAttnSlice - 1) / kAttnSlice);
    if (z >= slices) return;  // the whole block
    const int64_t per = (count + slices - 1) / slices;
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
    // a warp that had no position has maximum -FLT_MAX and weighs 0. A single slice is the result.
    const int64_t slot = (t * nHead + h) * kAttnSplits + z, stride = headDim + 2;
    float m = -FLT_MAX;
    for (int w = 0; w < kAttnWarps; w++) m = fmaxf(m, sMax[w]);
    float blockSum = 0.0f;
    for (int w = 0; w < kAttnWarps; w++) blockSum += sSum[w] * expf(sMax[w] - m);
    for (int64_t d = threadIdx.x; d < headDim; d += blockDim.x) {
        float a = 0.0f;
        for (int w = 0; w < kAttnWarps; w++) a += sAcc[w][d] * expf(sMax[w] - m);
        if (slices == 1) {
            out[(t * nHead + h) * headDim + d] = a / blockSum;
        } else {
            part[slot * stride + 2 + d] = a;
        }
    }
    if (slices == 1) return;
    if (threadIdx.x == 0) {
        part[slot * stride] = m;
        part[slot * stride + 1] = blockSum;
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&done[t * nHead + h], 1u) == static_cast<unsigned>(slices - 1);
    __syncthreads();
    if (!last) return;
    __threadfence();
    // The join: warp 0 reads the slices' maxima and sums (one a lane) and weighs each slice; then every
    // thread adds up the slices' values of its head values, their loads in flight together.
    static_assert(kAttnSplits == 32, "one slice a lane");
    __shared__ float sWeight[kAttnSplits], sTotal;
    const float* mine = part + (t * nHead + h) * kAttnSplits * stride;
    if (warp == 0) {
        const float mi = lane < slices ? __ldcg(mine + lane * stride) : -FLT_MAX;
        const float li = lane < slices ? __ldcg(mine + lane * stride + 1) : 0.0f;
        float top = mi;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
        const float f = expf(mi - top);  // 0 for a slice without positions
        sWeight[lane] = f;
        const float total = warpSum(li * f);
        if (lane == 0) sTotal = total;
    }
    __syncthreads();
    for (int64_t d = threadIdx.x; d < headDim; d += blockDim.x) {
        float a = 0.0f;
#pragma unroll 8
        for (int i = 0; i < slices; i++) a += __ldcg(mine + i * stride + 2 + d) * sWeight[i];
        out[(t * nHead + h) * headDim + d] = a / sTotal;
    }
    if (threadIdx.x == 0) done[t * nHead + h] = 0;
}

unsigned blocksFor(int64_t count) { return static_cast<unsigned>((count + kThreads - 1) / kThreads); }

}  // namespace

namespace {
bool hasIntegerProduct(uint32_t type) { return type == dq::kQ8_0Split || type == dq::kQ4_K || type == dq::kQ6_K; }

int64_t integerInputBytes(uint32_t type, int64_t cols) {
    return type == dq::kQ8_0Split ? Quantized<32, false>::bytes(cols) : Quantized<256, true>::bytes(cols);
}
}  // namespace

void matmul(cudaStream_t s, uint32_t type, int64_t rowBytes, int64_t cols, const Matrices& m, const float* x, int64_t n, Epilogue e) {
    // Integer products where asked for and where one quantized input vector fits in a block's shared memory.
    const bool integer = m.integer && hasIntegerProduct(type) && integerInputBytes(type, cols) <= m.sharedLimit;
    switch (type) {
        case dq::kF32: matmulTyped<dq::kF32, false>(s, rowBytes, cols, m, x, n, e); break;
        case dq::kF16: matmulTyped<dq::kF16, false>(s, rowBytes, cols, m, x, n, e); break;
        case dq::kQ8_0Split:
            integer ? matmulTyped<dq::kQ8_0Split, true>(s, rowBytes, cols, m, x, n, e) : matmulTyped<dq::kQ8_0Split, false>(s, rowBytes, cols, m, x, n, e);
            break;
        case dq::kQ4_K:
            integer ? matmulTyped<dq::kQ4_K, true>(s, rowBytes, cols, m, x, n, e) : matmulTyped<dq::kQ4_K, false>(s, rowBytes, cols, m, x, n, e);
            break;
        case dq::kQ6_K:
            integer ? matmulTyped<dq::kQ6_K, true>(s, rowBytes, cols, m, x, n, e) : matmulTyped<dq::kQ6_K, false>(s, rowBytes, cols, m, x, n, e);
            break;
        default: throw DeviceError("matmul: weight type " + std::to_string(type) + " has no CUDA kernel");
    }
}

void embed(cudaStream_t s, uint32_t type, const uint8_t* table, int64_t rowBytes, const int32_t* tokens, int64_t n, int64_t dim, float* x) {
    launch("embed", embedKernel, dim3(static_cast<unsigned>(n)), dim3(kThreads), s, type, table, rowBytes, tokens, dim, x);
}

void swiglu(cudaStream_t s, float* g, const float* u, int64_t count) {
    launch("swiglu", swigluKernel, dim3(blocksFor(count)), dim3(kThreads), s, g, u, count);
}

void ropeAndStore(cudaStream_t s, float* q, float* k, const float* v, const float* cs, const RowInfo* rows, int64_t n, int64_t layer,
                  int64_t nHead, int64_t nHeadKv, int64_t headDim, int64_t half, bool neox) {
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(nHead + nHeadKv));
    launch("ropeAndStore", ropeAndStoreKernel, grid, dim3(128), s, q, k, v, cs, rows, layer, nHead, nHeadKv, headDim, half, neox);
}

void attention(cudaStream_t s, const float* q, const RowInfo* rows, int64_t n, int64_t layer, int64_t nHead, int64_t nHeadKv,
               int64_t headDim, float* out, float* part, unsigned* done) {
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(nHead), kAttnSplits);
    const int threads = kAttnWarps * 32;
    if (headDim <= 32) {
        launch("attention", attentionKernel<1>, grid, dim3(threads), s, q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    } else if (headDim <= 64) {
        launch("attention", attentionKernel<2>, grid, dim3(threads), s, q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    } else if (headDim <= 128) {
        launch("attention", attentionKernel<4>, grid, dim3(threads), s, q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    } else {
        launch("attention", attentionKernel<8>, grid, dim3(threads), s, q, rows, layer, nHead, nHeadKv, headDim, out, part, done);
    }
}

void setProgrammaticLaunch(bool on) { programmatic = on; }

int maxHeadDim() { return 256; }

}  // namespace ops
