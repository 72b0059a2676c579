#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define HI_X86 1
#endif

namespace gemm {
namespace {

// Partial sums kept per (row, vector) pair. The SIMD tile kernels keep 32: lane i adds w[32m + i] * x[32m + i]
// over m by fused multiply-adds in order of m, which is what kern::dot's AVX2 F32 loop does in its four
// 8-wide accumulators; the portable kernel keeps 4, lane i adding w[4m + i] * x[4m + i] as the portable dot
// does. combine32 and combine4 then add the lanes in those dots' order, so that a product of F32 weights
// is the same float whether a vector comes alone (through kern::dot) or in a batch (through here).
constexpr int kSimdLanes = 32;
constexpr int kPortableLanes = 4;

// A thread works on a panel of 16 weight rows, 512 columns at a time: the panel (32 KiB of F32) stays in
// L2 while every vector passes over it, and a tile's rows and vectors (the 64 or 32 bytes of each 128 that
// one pass of the tile kernel reads) stay in L1. The column block is a multiple of 256, the largest quantization block.
constexpr int64_t kPanelRows = 16;
constexpr int64_t kBlockCols = 512;

// Tiles of rows x vectors, all their accumulators in registers: AVX-512 has 32 vector registers (4 x 6
// accumulators, 4 weight vectors and one input vector), AVX2 16 (3 x 4, 3 and 1).
constexpr int kRows512 = 4, kCols512 = 6;
constexpr int kRows256 = 3, kCols256 = 4;
constexpr int kRowsPortable = 4, kColsPortable = 4;

enum Isa { PORTABLE, AVX2, AVX512 };

bool envSet(const char* name) {
    const char* v = std::getenv(name);
    return v && v[0] == '1';
}

// HYBRIDINFERENCE_KERNELS caps the level as it does for the integer kernels (quant.cpp): portable, avx2 or
// avxvnni (no AVX-512 here), avx512.
bool envIs(const char* name, const char* value) {
    const char* v = std::getenv(name);
    return v && std::strcmp(v, value) == 0;
}

Isa detect() {
    if (envSet("HYBRIDINFERENCE_PORTABLE_KERNELS") || envIs("HYBRIDINFERENCE_KERNELS", "portable")) return PORTABLE;
#ifdef HI_X86
    __builtin_cpu_init();
    // The same condition as kern::dot's AVX2 kernels: the sums must be added in the order they add them.
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c")) return PORTABLE;
    if (__builtin_cpu_supports("avx512f") && !envIs("HYBRIDINFERENCE_KERNELS", "avx2") &&
        !envIs("HYBRIDINFERENCE_KERNELS", "avxvnni")) {
        return AVX512;
    }
    return AVX2;
#else
    return PORTABLE;
#endif
}

const Isa kIsa = detect();

inline uint16_t rd16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// acc + r * accRow + t * lanes holds the partial sums of pair (r, t) of the tile; w + r * ldw and x + t * ldx
// the len values of row r and vector t (len a multiple of 32, the first at a multiple of 32 in the row).
// The sums start from zero when fresh (the first column block), else from what acc holds.
using TileFn = void (*)(const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t len, float* acc, int64_t accRow, bool fresh);

template <int R, int T>
void tilePortable(const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t len, float* acc, int64_t accRow, bool fresh) {
    float a[R][T][kPortableLanes];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            for (int l = 0; l < kPortableLanes; l++) a[r][t][l] = fresh ? 0.0f : acc[r * accRow + t * kPortableLanes + l];
    for (int64_t k = 0; k < len; k += kPortableLanes) {
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++)
                for (int l = 0; l < kPortableLanes; l++) a[r][t][l] += w[r * ldw + k + l] * x[t * ldx + k + l];
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            for (int l = 0; l < kPortableLanes; l++) acc[r * accRow + t * kPortableLanes + l] = a[r][t][l];
}

#ifdef HI_X86
// Two passes over the columns, each on 16 of every 32 (one register per pair), so that the tile fits the
// register file; each lane still adds its own terms in order.
template <int R, int T>
__attribute__((target("avx512f"))) void tile512(const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t len,
                                                float* acc, int64_t accRow, bool fresh) {
    for (int p = 0; p < kSimdLanes; p += 16) {
        __m512 a[R][T];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) a[r][t] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + r * accRow + t * kSimdLanes + p);
        for (int64_t k = p; k < len; k += kSimdLanes) {
            __m512 wv[R];
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) wv[r] = _mm512_loadu_ps(w + r * ldw + k);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const __m512 xv = _mm512_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) a[r][t] = _mm512_fmadd_ps(wv[r], xv, a[r][t]);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) _mm512_storeu_ps(acc + r * accRow + t * kSimdLanes + p, a[r][t]);
    }
}

// Four passes, each on 8 of every 32 columns.
template <int R, int T>
__attribute__((target("avx2,fma"))) void tile256(const float* w, int64_t ldw, const float* x, int64_t ldx, int64_t len,
                                                 float* acc, int64_t accRow, bool fresh) {
    for (int p = 0; p < kSimdLanes; p += 8) {
        __m256 a[R][T];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) a[r][t] = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + r * accRow + t * kSimdLanes + p);
        for (int64_t k = p; k < len; k += kSimdLanes) {
            __m256 wv[R];
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) wv[r] = _mm256_loadu_ps(w + r * ldw + k);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const __m256 xv = _mm256_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) a[r][t] = _mm256_fmadd_ps(wv[r], xv, a[r][t]);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) _mm256_storeu_ps(acc + r * accRow + t * kSimdLanes + p, a[r][t]);
    }
}
#endif

#define HI_TILES4(F, R) F<R, 1>, F<R, 2>, F<R, 3>, F<R, 4>
#define HI_TILES6(F, R) F<R, 1>, F<R, 2>, F<R, 3>, F<R, 4>, F<R, 5>, F<R, 6>

// Tile kernels by [rows - 1][vectors - 1], for the full tiles and the edges.
const TileFn kTilesPortable[kRowsPortable][kColsPortable] = {
    {HI_TILES4(tilePortable, 1)}, {HI_TILES4(tilePortable, 2)}, {HI_TILES4(tilePortable, 3)}, {HI_TILES4(tilePortable, 4)}};
#ifdef HI_X86
const TileFn kTiles512[kRows512][kCols512] = {
    {HI_TILES6(tile512, 1)}, {HI_TILES6(tile512, 2)}, {HI_TILES6(tile512, 3)}, {HI_TILES6(tile512, 4)}};
const TileFn kTiles256[kRows256][kCols256] = {{HI_TILES4(tile256, 1)}, {HI_TILES4(tile256, 2)}, {HI_TILES4(tile256, 3)}};
#endif

// The lanes added as kern::dot's AVX2 F32 kernel adds its accumulators: (acc0 + acc1) + (acc2 + acc3), then
// the eight lanes pairwise, halves first.
float combine32(const float* a) {
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = (a[l] + a[8 + l]) + (a[16 + l] + a[24 + l]);
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

#ifdef HI_X86
// combine32 for count pairs stride floats apart, with the instructions kern::dot's AVX2 kernel ends with.
__attribute__((target("avx2"))) void combine32Avx2(const float* a, int64_t stride, int64_t count, float* out) {
    for (int64_t i = 0; i < count; i++, a += stride) {
        const __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(a + 8)),
                                       _mm256_add_ps(_mm256_loadu_ps(a + 16), _mm256_loadu_ps(a + 24)));
        const __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        const __m128 odd = _mm_movehdup_ps(t);
        const __m128 pairs = _mm_add_ps(t, odd);
        out[i] = _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehl_ps(odd, pairs)));
    }
}
#endif

// As the portable dot adds its four sums.
float combine4(const float* a) { return (a[0] + a[1]) + (a[2] + a[3]); }

// ---- panel dequantization ------------------------------------------------------------------------

#ifdef HI_X86
__attribute__((target("avx512f"))) void f16Row512(const uint8_t* src, float* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        // The masked form: the plain one trips GCC's uninitialized-value warning on its undefined pass-through.
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
        _mm512_storeu_ps(out + i, _mm512_maskz_cvtph_ps(0xFFFF, h));
    }
}

__attribute__((target("avx2,f16c"))) void f16Row256(const uint8_t* src, float* out, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
    }
}

__attribute__((target("avx2,f16c"))) void q80Row256(const uint8_t* src, float* out, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t* blk = src + 34 * b;
        const __m256 d = _mm256_set1_ps(kern::f16ToF32(rd16(blk)));
        for (int g = 0; g < 4; g++) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * g)));
            _mm256_storeu_ps(out + 32 * b + 8 * g, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
        }
    }
}

// Q4_K super-blocks (144 bytes: d, dmin, 12 bytes of scales, 128 of nibbles) to 256 floats each.
__attribute__((target("avx2,f16c"))) void q4kRow256(const uint8_t* src, float* out, int64_t n) {
    const __m256i low4 = _mm256_set1_epi32(0xF);
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t* blk = src + 144 * b;
        const float d = kern::f16ToF32(rd16(blk)), dmin = kern::f16ToF32(rd16(blk + 2));
        float* y = out + 256 * b;
        for (int c = 0; c < 4; c++) {
            uint8_t sc, m;
            kern::scaleMinK4(2 * c, blk + 4, sc, m);
            const __m256 d1 = _mm256_set1_ps(d * sc), m1 = _mm256_set1_ps(dmin * m);
            kern::scaleMinK4(2 * c + 1, blk + 4, sc, m);
            const __m256 d2 = _mm256_set1_ps(d * sc), m2 = _mm256_set1_ps(dmin * m);
            const uint8_t* q = blk + 16 + 32 * c;
            for (int g = 0; g < 4; g++) {
                const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * g)));
                const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, low4));
                const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
                _mm256_storeu_ps(y + 64 * c + 8 * g, _mm256_sub_ps(_mm256_mul_ps(d1, lo), m1));
                _mm256_storeu_ps(y + 64 * c + 32 + 8 * g, _mm256_sub_ps(_mm256_mul_ps(d2, hi), m2));
            }
        }
    }
}

// Q6_K super-blocks (210 bytes: 128 of low nibbles, 64 of high bit pairs, 16 signed scales, d) to 256 floats each.
__attribute__((target("avx2,f16c"))) void q6kRow256(const uint8_t* src, float* out, int64_t n) {
    const __m256i low4 = _mm256_set1_epi32(0xF), two = _mm256_set1_epi32(3), off = _mm256_set1_epi32(32);
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t* blk = src + 210 * b;
        const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
        const float d = kern::f16ToF32(rd16(blk + 208));
        for (int h = 0; h < 2; h++) {
            const uint8_t* ql = blk + 64 * h;
            const uint8_t* qh = blk + 128 + 32 * h;
            float* y = out + 256 * b + 128 * h;
            for (int l = 0; l < 32; l += 8) {
                const __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l)));
                const __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l + 32)));
                const __m256i vh = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qh + l)));
                const __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(v0, low4), _mm256_slli_epi32(_mm256_and_si256(vh, two), 4)),
                    _mm256_or_si256(_mm256_and_si256(v1, low4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 2), two), 4)),
                    _mm256_or_si256(_mm256_srli_epi32(v0, 4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 4), two), 4)),
                    _mm256_or_si256(_mm256_srli_epi32(v1, 4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 6), two), 4))};
                const int is = 8 * h + l / 16;
                for (int i = 0; i < 4; i++) {
                    const __m256 scale = _mm256_set1_ps(d * sc[is + 2 * i]);
                    _mm256_storeu_ps(y + 32 * i + l, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_sub_epi32(q[i], off))));
                }
            }
        }
    }
}
#endif

// Columns k0 .. k0 + len of one row (src points at the block holding column k0) as F32.
void dequantRow(uint32_t type, const uint8_t* src, float* out, int64_t len) {
#ifdef HI_X86
    if (kIsa != PORTABLE) {
        switch (type) {
            case gguf::F16:
                if (kIsa == AVX512) {
                    f16Row512(src, out, len);
                } else {
                    f16Row256(src, out, len);
                }
                return;
            case gguf::Q8_0: q80Row256(src, out, len); return;
            case gguf::Q4_K: q4kRow256(src, out, len); return;
            case gguf::Q6_K: q6kRow256(src, out, len); return;
            default: break;
        }
    }
#endif
    kern::dequantizeRow(type, src, out, len);
}

struct Job {
    uint32_t type;
    const uint8_t* base;
    int64_t rowBytes, blockElems, blockBytes, cols, rows;
    const float* x;
    float* y;
};

// Rows r0 .. r1 times vectors t0 .. t1, on the calling thread.
void runUnit(const Job& j, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    thread_local std::vector<float> panel, accs;
    const TileFn* tiles = kTilesPortable[0];
    int tileRows = kRowsPortable, tileCols = kColsPortable, lanes = kPortableLanes;
#ifdef HI_X86
    if (kIsa == AVX512) {
        tiles = kTiles512[0], tileRows = kRows512, tileCols = kCols512, lanes = kSimdLanes;
    } else if (kIsa == AVX2) {
        tiles = kTiles256[0], tileRows = kRows256, tileCols = kCols256, lanes = kSimdLanes;
    }
#endif
    const int64_t nr = r1 - r0, nt = t1 - t0, accRow = nt * lanes;
    accs.resize(static_cast<size_t>(nr * accRow));
    if (j.type != gguf::F32) panel.resize(static_cast<size_t>(kPanelRows * kBlockCols));
    for (int64_t k0 = 0; k0 < j.cols; k0 += kBlockCols) {
        const int64_t len = std::min(kBlockCols, j.cols - k0);
        const float* wp;
        int64_t ldw;
        if (j.type == gguf::F32) {
            wp = reinterpret_cast<const float*>(j.base + r0 * j.rowBytes) + k0;
            ldw = j.cols;
        } else {
            for (int64_t r = 0; r < nr; r++) {
                dequantRow(j.type, j.base + (r0 + r) * j.rowBytes + k0 / j.blockElems * j.blockBytes, &panel[r * len], len);
            }
            wp = panel.data();
            ldw = len;
        }
        // The vectors in as few tiles as the kernel allows, of sizes as even as possible (8 as 4 + 4, not
        // 6 + 2): a narrow tile reads the weights for few vectors.
        const int64_t passes = (nt + tileCols - 1) / tileCols;
        for (int64_t tt = 0, pass = 0; tt < nt; pass++) {
            const int64_t tn = (nt - tt + (passes - pass) - 1) / (passes - pass);
            const float* xp = j.x + (t0 + tt) * j.cols + k0;
            for (int64_t rr = 0; rr < nr; rr += tileRows) {
                const int64_t rn = std::min<int64_t>(tileRows, nr - rr);
                tiles[(rn - 1) * tileCols + (tn - 1)](wp + rr * ldw, ldw, xp, j.cols, len, &accs[rr * accRow + tt * lanes], accRow, k0 == 0);
            }
            tt += tn;
        }
    }
    for (int64_t t = 0; t < nt; t++) {
        float* yt = j.y + (t0 + t) * j.rows + r0;
#ifdef HI_X86
        if (lanes == kSimdLanes) {
            combine32Avx2(&accs[t * lanes], accRow, nr, yt);
            continue;
        }
#endif
        for (int64_t r = 0; r < nr; r++) {
            const float* a = &accs[r * accRow + t * lanes];
            yt[r] = lanes == kSimdLanes ? combine32(a) : combine4(a);
        }
    }
}

int tileVectors() {
#ifdef HI_X86
    if (kIsa == AVX512) return kCols512;
    if (kIsa == AVX2) return kCols256;
#endif
    return kColsPortable;
}

// ---- weights as panels (Panels) ----------------------------------------------------------------------

constexpr int64_t kPanelLanes = 16;
// The most accumulators a panel tile keeps (P panels x C vectors), of 32 registers: the rest hold the P
// weight vectors and a broadcast input.
constexpr int kPanelAccumulators = 24;
constexpr int kPanelVectors = 12;  // C at most (with 2 panels)
// Columns per block: a tile adds each block's terms in order into fresh sums, then those into the running
// ones, which bounds the rounding by about (block + cols / block) units of the last place instead of cols.
constexpr int64_t kPanelBlock = 128;
// How far ahead of its reads a tile asks for the next weights, per panel: decode reads every weight once
// and is bound by memory, so the next lines should be on their way while these multiply.
constexpr int64_t kPanelAhead = 1024;

// Bytes of one panel: 16 rows of cols values.
inline int64_t panelBytesOf(uint32_t type, int64_t cols) { return cols * kPanelLanes * (type == gguf::F16 ? 2 : 4); }

// Rows a tile writes, as a panel's lanes: y + t * ldy + 16 p + lane for lane < rows of the last panel.
using PanelFn = void (*)(const uint8_t* w, int64_t panelBytes, int64_t cols, const float* x, float* y, int64_t ldy, int lastRows);

#ifdef HI_X86
template <bool Half>
__attribute__((target("avx512f"))) inline __m512 panelLoad(const uint8_t* p) {
    if constexpr (Half) {
        // The masked form: the plain one trips GCC's uninitialized-value warning on its undefined pass-through.
        return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    } else {
        return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
    }
}

// P panels (16 P rows) times C vectors: acc[p][t] lane i = sum over k in order of w[16p + i][k] * x[t][k].
template <bool Half, int P, int C>
__attribute__((target("avx512f"))) void panelTile(const uint8_t* w, int64_t panelBytes, int64_t cols, const float* x, float* y,
                                                  int64_t ldy, int lastRows) {
    constexpr int64_t elem = Half ? 2 : 4, step = kPanelLanes * elem;
    // The running sums, added to once per block of columns (kept in memory: the registers hold the block's).
    alignas(64) float total[P][C][kPanelLanes] = {};
    for (int64_t k0 = 0; k0 < cols; k0 += kPanelBlock) {
        const int64_t k1 = k0 + kPanelBlock < cols ? k0 + kPanelBlock : cols;
        __m512 acc[P][C];
#pragma GCC unroll 8
        for (int p = 0; p < P; p++)
#pragma GCC unroll 8
            for (int t = 0; t < C; t++) acc[p][t] = _mm512_setzero_ps();
        for (int64_t k = k0; k < k1; k++) {
            const uint8_t* wk = w + k * step;
            __m512 wv[P];
#pragma GCC unroll 8
            for (int p = 0; p < P; p++) {
                if (k % (64 / step) == 0) _mm_prefetch(reinterpret_cast<const char*>(wk + p * panelBytes + kPanelAhead), _MM_HINT_T0);
                wv[p] = panelLoad<Half>(wk + p * panelBytes);
            }
#pragma GCC unroll 8
            for (int t = 0; t < C; t++) {
                const __m512 xv = _mm512_set1_ps(x[t * cols + k]);
#pragma GCC unroll 8
                for (int p = 0; p < P; p++) acc[p][t] = _mm512_fmadd_ps(wv[p], xv, acc[p][t]);
            }
        }
#pragma GCC unroll 8
        for (int p = 0; p < P; p++)
#pragma GCC unroll 8
            for (int t = 0; t < C; t++) _mm512_store_ps(total[p][t], _mm512_add_ps(_mm512_load_ps(total[p][t]), acc[p][t]));
    }
    const __mmask16 last = static_cast<__mmask16>((1u << lastRows) - 1);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
#pragma GCC unroll 8
        for (int t = 0; t < C; t++) {
            _mm512_mask_storeu_ps(y + t * ldy + kPanelLanes * p, p == P - 1 ? last : 0xFFFF, _mm512_load_ps(total[p][t]));
        }
}

#define HI_PANEL_TILES6(H, P) panelTile<H, P, 1>, panelTile<H, P, 2>, panelTile<H, P, 3>, panelTile<H, P, 4>, panelTile<H, P, 5>, panelTile<H, P, 6>
#define HI_PANEL_TILES12(H, P) \
    HI_PANEL_TILES6(H, P), panelTile<H, P, 7>, panelTile<H, P, 8>, panelTile<H, P, 9>, panelTile<H, P, 10>, panelTile<H, P, 11>, panelTile<H, P, 12>
// By [half][log2 P][C - 1]: P of 1, 2 and 4 panels, 4 with at most 6 vectors.
const PanelFn kPanelTiles[2][3][kPanelVectors] = {
    {{HI_PANEL_TILES12(false, 1)}, {HI_PANEL_TILES12(false, 2)}, {HI_PANEL_TILES6(false, 4)}},
    {{HI_PANEL_TILES12(true, 1)}, {HI_PANEL_TILES12(true, 2)}, {HI_PANEL_TILES6(true, 4)}}};
#endif

}  // namespace

bool supports(const gguf::Tensor* w, int64_t n) {
    if (w->data == nullptr || w->ne[0] % 32 != 0) return false;
    switch (w->type) {
        case gguf::F32:
        case gguf::Q6_K: return n >= 2;
        case gguf::Q4_K: return n >= 3;
        case gguf::F16:
        case gguf::Q8_0: return n >= 4;
        default: return false;
    }
}

void multiply(ThreadPool& pool, const gguf::Tensor* w, const float* x, float* y, int64_t n) {
    Job j{};
    j.type = w->type;
    j.base = w->data;
    gguf::blockInfo(w->type, j.blockElems, j.blockBytes);
    j.cols = w->ne[0];
    j.rows = w->rows();
    j.rowBytes = j.cols / j.blockElems * j.blockBytes;
    j.x = x;
    j.y = y;
    const int64_t panels = (j.rows + kPanelRows - 1) / kPanelRows;
    // With few rows (a small vocabulary, a narrow projection) the vectors are split too, so that every thread
    // has a share; each share then dequantizes the panel for itself.
    const int64_t threads = pool.size(), tile = tileVectors();
    int64_t groups = 1;
    while (threads > 1 && panels * groups < 4 * threads && n >= 2 * groups * tile) groups *= 2;
    const int64_t per = ((n + groups - 1) / groups + tile - 1) / tile * tile;
    groups = (n + per - 1) / per;
    // Units claimed one at a time: a thread that starts late holds the call up by at most one unit.
    pool.parallelClaim(panels * groups, 1, [&](int64_t b, int64_t e) {
        for (int64_t u = b; u < e; u++) {
            const int64_t p = u / groups, g = u % groups;
            runUnit(j, p * kPanelRows, std::min(j.rows, (p + 1) * kPanelRows), g * per, std::min(n, (g + 1) * per));
        }
    });
}

bool packable(const gguf::Tensor* w) {
#ifdef HI_X86
    return kIsa == AVX512 && w->data != nullptr && (w->type == gguf::F32 || w->type == gguf::F16) && w->ne[0] > 0;
#else
    (void)w;
    return false;
#endif
}

namespace {
// Panel p of rows values of type E, cols per row from src: column k's 16 values adjacent, written in order
// (the rows read as 16 streams), rows past the end as zeros.
template <typename E>
void transposePanel(const uint8_t* src, int64_t rows, int64_t cols, int64_t p, uint8_t* panel) {
    const E* row[kPanelLanes];
    for (int64_t lane = 0; lane < kPanelLanes; lane++) {
        const int64_t r = p * kPanelLanes + lane;
        row[lane] = r < rows ? reinterpret_cast<const E*>(src) + r * cols : nullptr;
    }
    E* out = reinterpret_cast<E*>(panel);
    for (int64_t k = 0; k < cols; k++) {
        for (int64_t lane = 0; lane < kPanelLanes; lane++) out[k * kPanelLanes + lane] = row[lane] ? row[lane][k] : E{0};
    }
}
}  // namespace

Panels pack(ThreadPool& pool, uint32_t type, const uint8_t* base, int64_t rows, int64_t cols) {
    Panels out;
    out.type = type;
    out.cols = cols;
    out.rows = rows;
    const int64_t panels = (rows + kPanelLanes - 1) / kPanelLanes, panelBytes = panelBytesOf(type, cols);
    out.bytes = PageBuffer(static_cast<size_t>(panels * panelBytes));
    uint8_t* dst = out.bytes.get();
    pool.parallelFor(panels, [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; p++) {
            if (type == gguf::F16) {
                transposePanel<uint16_t>(base, rows, cols, p, dst + p * panelBytes);
            } else {
                transposePanel<uint32_t>(base, rows, cols, p, dst + p * panelBytes);
            }
        }
    });
    return out;
}

void multiply(ThreadPool& pool, const Panels& w, const float* x, float* y, int64_t n) {
#ifdef HI_X86
    const int64_t panels = (w.rows + kPanelLanes - 1) / kPanelLanes, panelBytes = panelBytesOf(w.type, w.cols);
    const int half = w.type == gguf::F16 ? 1 : 0;
    const int64_t threads = pool.size();
    // Panels per tile: 4 for up to 3 vectors (four independent sums per vector, each panel one stream of
    // reads: 8 panels' streams were slower, F32 and F16 decode on one thread 15% slower on a 2-core EPYC);
    // 2 for up to 12, so that a batch of decoding sessions reads the weights in one pass (4% faster for 8
    // than two passes of 4 panels, where the weights come from memory); 4 for more (a prompt: as fast as 2
    // with 12, the weights then coming from cache); fewer where that leaves too few units for the threads.
    int shift = n > 3 && n <= 12 ? 1 : 2;
    while (shift > 0 && (panels >> shift) < 4 * threads) shift--;
    const int64_t group = int64_t{1} << shift;
    const int64_t width = std::min<int64_t>(n, std::min<int64_t>(kPanelVectors, kPanelAccumulators / group));
    // The vectors in passes of sizes as even as possible; with few panel groups, the passes are split
    // among the threads too.
    const int64_t passes = (n + width - 1) / width, units = (panels + group - 1) / group;
    int64_t shares = 1;
    while (threads > 1 && units * shares < 4 * threads && passes >= 2 * shares) shares *= 2;
    const int64_t perShare = (passes + shares - 1) / shares;
    shares = (passes + perShare - 1) / perShare;
    pool.parallelClaim(units * shares, 1, [&](int64_t b, int64_t e) {
        for (int64_t u = b; u < e; u++) {
            const int64_t g = u / shares, share = u % shares;
            const int64_t p0 = g * group, np = std::min(group, panels - p0);
            const int64_t passFrom = share * perShare, passTo = std::min(passes, passFrom + perShare);
            for (int64_t pass = passFrom; pass < passTo; pass++) {
                const int64_t t0 = pass * n / passes, tn = (pass + 1) * n / passes - t0;
                // A group cut short by the matrix's end goes one panel at a time.
                const int64_t take = np == group ? group : 1;
                const int l = np == group ? shift : 0;
                for (int64_t p = p0; p < p0 + np; p += take) {
                    const int64_t rowsLeft = w.rows - (p + take - 1) * kPanelLanes;
                    const int lastRows = static_cast<int>(std::min<int64_t>(kPanelLanes, rowsLeft));
                    kPanelTiles[half][l][tn - 1](w.bytes.get() + p * panelBytes, panelBytes, w.cols, x + t0 * w.cols, y + t0 * w.rows + p * kPanelLanes,
                                                 w.rows, lastRows);
                }
            }
        }
    });
#else
    (void)pool, (void)w, (void)x, (void)y, (void)n;
#endif
}

void row(const Panels& w, int64_t r, float* out) {
    const int64_t elem = w.type == gguf::F16 ? 2 : 4, lane = r % kPanelLanes;
    const uint8_t* panel = w.bytes.get() + r / kPanelLanes * panelBytesOf(w.type, w.cols);
    for (int64_t k = 0; k < w.cols; k++) {
        const uint8_t* v = panel + (k * kPanelLanes + lane) * elem;
        if (w.type == gguf::F16) {
            out[k] = kern::f16ToF32(rd16(v));
        } else {
            std::memcpy(out + k, v, sizeof(float));
        }
    }
}

const char* features() {
    switch (kIsa) {
        case AVX512: return "avx512f";
        case AVX2: return "avx2";
        default: return "portable";
    }
}

}  // namespace gemm
