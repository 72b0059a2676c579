#include "amx.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "gguf.h"
#include "kernels.h"
#include "quant.h"

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define HI_AMX 1
#endif

namespace amx {

#ifdef HI_AMX

namespace {

constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for a dynamically enabled state component
constexpr long kXfeatureXtiledata = 18;     // the AMX tile data

bool detect() {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-int8") || !__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512vnni") ||
        !__builtin_cpu_supports("f16c")) {
        return false;
    }
    // Linux grants the tile registers per process, on request; the permission covers every thread.
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// The tile configuration in the layout LDTILECFG reads: palette 1, then per tile its bytes per row and rows.
struct alignas(64) TileConfig {
    uint8_t palette = 1;
    uint8_t startRow = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
    uint8_t reserved2[16] = {};
};

}  // namespace

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace {

// The compiler's own tile intrinsics tell it too little about memory: its LDTILECFG claims to read 8 bytes
// of the 64, so the stores that fill the rest may be dropped, and its tile loads and stores name no memory
// at all. These wrappers say what they read and write.
inline void loadConfig(const TileConfig& c) { __asm__ volatile("ldtilecfg %0" ::"m"(c)); }
#define HI_TILE_LOAD(tile, base, stride)        \
    do {                                        \
        __asm__ volatile("" ::: "memory");      \
        _tile_loadd(tile, base, stride);        \
    } while (0)
#define HI_TILE_STORE(tile, base, stride)       \
    do {                                        \
        _tile_stored(tile, base, stride);       \
        __asm__ volatile("" ::: "memory");      \
    } while (0)

// Tiles: 0 holds the sums (C), 1 the weights (A), 2 the inputs (B, four bytes of each input per row).
// A thread loads a configuration only when the shapes change.
struct Shape {
    int rows = -1, vectors = -1, k = -1;
};
thread_local Shape tLoaded;

void configure(int rows, int vectors, int k) {
    if (tLoaded.rows == rows && tLoaded.vectors == vectors && tLoaded.k == k) return;
    TileConfig c;
    c.rows[0] = static_cast<uint8_t>(rows);
    c.colsb[0] = static_cast<uint16_t>(4 * vectors);
    c.rows[1] = static_cast<uint8_t>(rows);
    c.colsb[1] = static_cast<uint16_t>(k);
    c.rows[2] = static_cast<uint8_t>(k / 4);
    c.colsb[2] = static_cast<uint16_t>(4 * vectors);
    loadConfig(c);
    tLoaded = {rows, vectors, k};
}

// The shapes of the tile product on repacked records (tilesOf, below): 0 holds the sums of count vectors
// (a row per vector, the panel's 16 rows in its 16 columns), 1 the vectors' bytes of one 32-value block (A,
// signed), 2 the block's records (B, the weights made unsigned by the type's offset: 8 rows of the same
// four values of 16 rows, as the records store them). k = -1 marks this layout in tLoaded.
void configureRecords(int count) {
    if (tLoaded.rows == count && tLoaded.vectors == 16 && tLoaded.k == -1) return;
    TileConfig c;
    c.rows[0] = static_cast<uint8_t>(count);
    c.colsb[0] = 64;
    c.rows[1] = static_cast<uint8_t>(count);
    c.colsb[1] = 32;
    c.rows[2] = 8;
    c.colsb[2] = 64;
    for (int i = 0; i < 3; i++) {  // 3, 4, 5: the same for a second block in flight
        c.rows[3 + i] = c.rows[i];
        c.colsb[3 + i] = c.colsb[i];
    }
    loadConfig(c);
    tLoaded = {count, 16, -1};
}

inline float h2f(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// How a weight type goes through the tiles: blocks of `block` values, each cut into `groups` groups of
// `k` values that share one integer scale (one group: no scale but the block's).
struct Layout {
    int block, groups, k;
    bool mins;  // Q4_K, Q5_K: a minimum per group of 32 times the input's sums, scaled by dmin
    bool min1;  // Q4_1: one minimum per block times the input's block sum
};

Layout layoutOf(uint32_t type) {
    switch (type) {
        case gguf::Q8_0:
        case gguf::Q4_0: return {32, 1, 32, false, false};
        case gguf::Q4_1: return {32, 1, 32, false, true};
        case gguf::Q4_K:
        case gguf::Q5_K: return {256, 8, 32, true, false};
        case gguf::Q6_K: return {256, 16, 16, false, false};
        default: return {0, 0, 0, false, false};
    }
}

// A panel of up to 16 weight rows unpacked: per block, each row's values as signed bytes (the 4- to 6-bit
// types with their offsets already subtracted, or not yet scaled for the K-quants; for the tiles only), the
// block's scale and minimum scale per row, and the group scales and minimums per group and row.
struct Panel {
    std::vector<int8_t> w;   // [block][row][block values]
    std::vector<float> d;    // [block][row]
    std::vector<float> dm;   // [block][row]: dmin (Q4_K, Q5_K) or m (Q4_1)
    std::vector<int32_t> sc; // [block][group][row]
    std::vector<int32_t> mn; // [block][8][row]
};

inline __m256i load256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void store256(void* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

// 16 bytes of nibbles to 32 values: low nibbles first, then high nibbles, minus off.
inline __m256i nibbles16(const uint8_t* qs, int off) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0xF);
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    return _mm256_sub_epi8(u, _mm256_set1_epi8(static_cast<char>(off)));
}

// One block of one row: its values as signed bytes, its scales. Everything here runs once per weight per
// call, so it is vector code: a decode step's cost is mostly this.
template <uint32_t type>
void unpackRow(const uint8_t* blk, int8_t* w, float& d, float& dm, int32_t* sc, int32_t* mn) {
    switch (type) {
        case gguf::Q8_0:
            d = h2f(blk);
            store256(w, load256(blk + 2));
            break;
        case gguf::Q4_0:
            d = h2f(blk);
            store256(w, nibbles16(blk + 2, 8));
            break;
        case gguf::Q4_1:
            d = h2f(blk);
            dm = h2f(blk + 2);
            store256(w, nibbles16(blk + 4, 0));
            break;
        case gguf::Q4_K:
        case gguf::Q5_K: {
            const bool five = type == gguf::Q5_K;
            const uint8_t* qs = blk + (five ? 48 : 16);
            d = h2f(blk);
            dm = h2f(blk + 2);
            for (int j = 0; j < 8; j++) {
                uint8_t s, m;
                kern::scaleMinK4(j, blk + 4, s, m);
                sc[16 * j] = s;
                mn[16 * j] = m;
            }
            const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
            const __m256i qh = five ? load256(blk + 16) : _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                const __m256i v = load256(qs + 32 * c);
                __m256i lo = _mm256_and_si256(v, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if (five) {
                    const __m256i b0 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
                    const __m256i b1 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(b0, 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(b1, 4));
                }
                store256(w + 64 * c, lo);
                store256(w + 64 * c + 32, hi);
            }
            break;
        }
        case gguf::Q6_K: {
            const int8_t* scales = reinterpret_cast<const int8_t*>(blk + 192);
            d = h2f(blk + 208);
            for (int g = 0; g < 16; g++) sc[16 * g] = scales[g];
            const __m256i m4 = _mm256_set1_epi8(0xF), three = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
            for (int h = 0; h < 2; h++) {
                const __m256i v0 = load256(blk + 64 * h), v1 = load256(blk + 64 * h + 32), hb = load256(blk + 128 + 32 * h);
                int8_t* o = w + 128 * h;
                store256(o, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(v0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, three), 4)), off));
                store256(o + 32, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(v1, m4),
                                                                 _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), three), 4)),
                                                 off));
                store256(o + 64, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                                                                 _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), three), 4)),
                                                 off));
                store256(o + 96, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4),
                                                                 _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), three), 4)),
                                                 off));
            }
            break;
        }
        default: break;
    }
}

template <uint32_t type>
void unpackRows(const Layout& L, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, int64_t blockBytes, Panel& P) {
    // Row by row, each read front to back, as the hardware prefetchers expect.
    for (int r = 0; r < pr; r++) {
        const uint8_t* row = panel + r * rowBytes;
        for (int64_t b = 0; b < nb; b++) {
            unpackRow<type>(row + b * blockBytes, P.w.data() + (b * 16 + r) * L.block, P.d[b * 16 + r], P.dm[b * 16 + r],
                            P.sc.data() + b * L.groups * 16 + r, L.mins ? P.mn.data() + b * 128 + r : nullptr);
        }
    }
}

// Sizes P's scales for nb blocks. Arrays only grow, so that a thread's panel settles at the largest matrix
// it meets.
template <typename V>
void atLeast(V& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

void sizePanel(const Layout& L, int64_t nb, Panel& P) {
    atLeast(P.d, nb * 16);
    atLeast(P.dm, nb * 16);
    atLeast(P.sc, nb * L.groups * 16);
    atLeast(P.mn, L.mins ? nb * 8 * 16 : 0);
}

// Calls f with the type as a template argument.
template <typename F>
void withType(uint32_t type, F&& f) {
    switch (type) {
        case gguf::Q8_0: f(std::integral_constant<uint32_t, gguf::Q8_0>()); break;
        case gguf::Q4_0: f(std::integral_constant<uint32_t, gguf::Q4_0>()); break;
        case gguf::Q4_1: f(std::integral_constant<uint32_t, gguf::Q4_1>()); break;
        case gguf::Q4_K: f(std::integral_constant<uint32_t, gguf::Q4_K>()); break;
        case gguf::Q5_K: f(std::integral_constant<uint32_t, gguf::Q5_K>()); break;
        case gguf::Q6_K: f(std::integral_constant<uint32_t, gguf::Q6_K>()); break;
        default: break;
    }
}

void unpackPanel(uint32_t type, const Layout& L, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, int64_t blockBytes,
                 Panel& P) {
    sizePanel(L, nb, P);
    atLeast(P.w, nb * 16 * L.block);
    withType(type, [&](auto t) { unpackRows<decltype(t)::value>(L, panel, rowBytes, pr, nb, blockBytes, P); });
}

// The per-vector side of one block: the input's scale, and the sums the minimums multiply (Q4_K/Q5_K: per
// group of 32; Q4_1: the block's).
struct InputBlock {
    const int8_t* q;
    float d;
    int32_t xs[8];
};

inline InputBlock inputBlock(const Layout& L, const uint8_t* xq, int64_t b) {
    InputBlock in;
    if (L.block == 32) {
        const qk::Block32& a = reinterpret_cast<const qk::Block32*>(xq)[b];
        in.q = a.q;
        in.d = a.d;
        in.xs[0] = a.sum;
    } else {
        const qk::Block256& a = reinterpret_cast<const qk::Block256*>(xq)[b];
        in.q = a.q;
        in.d = a.d;
        for (int j = 0; j < 8; j++) in.xs[j] = a.bsums[2 * j] + a.bsums[2 * j + 1];
    }
    return in;
}

// Inputs of a group of up to 16 vectors interleaved as the B tile wants them: per block and group of k
// values, k/4 rows of 16 vectors' 4 consecutive bytes; the vectors' scales and sums, 16 per block.
void packInputs(const Layout& L, const uint8_t* xq, size_t stride, int64_t n, int64_t nb, Packed& pk) {
    const int64_t groups = (n + 15) / 16;
    const int64_t perBlock = static_cast<int64_t>(L.block) * 16;
    pk.bytes.assign(static_cast<size_t>(groups * nb * perBlock), 0);
    pk.scales.assign(static_cast<size_t>(groups * nb * 16), 0.0f);
    pk.sums.assign(static_cast<size_t>(groups * nb * 8 * 16), 0);
    for (int64_t t = 0; t < n; t++) {
        const int64_t g = t / 16, v = t % 16;
        for (int64_t b = 0; b < nb; b++) {
            const InputBlock in = inputBlock(L, xq + stride * t, b);
            uint8_t* dst = pk.bytes.data() + (g * nb + b) * perBlock + 4 * v;
            for (int i = 0; i < L.block / 4; i++) std::memcpy(dst + 64 * i, in.q + 4 * i, 4);
            pk.scales[static_cast<size_t>((g * nb + b) * 16 + v)] = in.d;
            for (int j = 0; j < 8; j++) pk.sums[static_cast<size_t>(((g * nb + b) * 8 + j) * 16 + v)] = in.xs[j];
        }
    }
}

// ---- One vector: the panel's rows in the vector lanes, without the tiles ---------------------------
//
// The same integer sums and the same float steps as the tile product, computed with AVX-512 VNNI straight
// from the weights as stored: two rows per 512-bit register (lanes 0-7 the first, 8-15 the second), then
// eight such registers folded into one register of 16 row sums. Scales and minimums are applied to all 16
// rows at once, so that their cost is shared; the float accumulation is the tile product's, lane by lane.

// Row r of the panel, the last row standing in for the rows past a short panel's end (their lanes are
// computed and never stored).
inline const uint8_t* rowOf(const uint8_t* panel, int64_t rowBytes, int pr, int r) { return panel + (r < pr ? r : pr - 1) * rowBytes; }

// Eight registers of two rows' 8 partial sums each (p[i]: rows 2i, 2i+1) to one register of the 16 rows'
// sums, row r in lane r.
inline __m512i foldRows(const __m512i p[8]) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    auto fold = [&](__m512i a, __m512i b) {
        return _mm512_add_epi32(_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b));
    };
    const __m512i q0 = fold(p[0], p[1]), q1 = fold(p[2], p[3]), q2 = fold(p[4], p[5]), q3 = fold(p[6], p[7]);
    return fold(fold(q0, q1), fold(q2, q3));
}

inline __m512i pair256(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }

// The byte offsets of the panel's 16 rows, rowOf's stand-in row for those past a short panel's end.
inline __m512i offsetsOf(int64_t rowBytes, int pr) {
    alignas(64) int32_t off[16];
    for (int r = 0; r < 16; r++) off[r] = static_cast<int32_t>((r < pr ? r : pr - 1) * rowBytes);
    return _mm512_load_si512(off);
}

// The 32-bit words at offset `at` of each row's block b (gathered once per block for the 16 rows).
inline __m512i gatherWords(const __m512i rowOffsets, const uint8_t* panel, int64_t at) {
    return _mm512_i32gather_epi32(rowOffsets, panel + at, 1);
}

inline __m512 lowHalves(__m512i words) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words)); }
inline __m512 highHalves(__m512i words) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(words, 16))); }

// Two rows' 32 nibbles each (16 bytes at a and b) as [a low, a high, b low, b high] unsigned bytes.
inline __m512i nibblePair(const uint8_t* a, const uint8_t* b) {
    const __m256i v = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), _mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
    const __m256i m = _mm256_set1_epi8(0xF);
    const __m512i z = pair256(_mm256_and_si256(v, m), _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

void lanes32(uint32_t type, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, const qk::Block32* a, float* y) {
    int64_t elems, bytes;
    gguf::blockInfo(type, elems, bytes);
    const __m512i rowOffsets = offsetsOf(rowBytes, pr);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const int64_t at = b * bytes;
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q));
        const __m512i x2 = pair256(x, x);
        __m512i p[8];
        for (int i = 0; i < 8; i++) {
            const uint8_t* r0 = rowOf(panel, rowBytes, pr, 2 * i) + at;
            const uint8_t* r1 = rowOf(panel, rowBytes, pr, 2 * i + 1) + at;
            if (type == gguf::Q8_0) {
                // Signed weights: |w| times x with w's sign.
                const __m512i w = pair256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + 2)),
                                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + 2)));
                const __m512i xs = _mm512_mask_sub_epi8(x2, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x2);
                p[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), xs);
            } else {
                const int skip = type == gguf::Q4_0 ? 2 : 4;
                p[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibblePair(r0 + skip, r1 + skip), x2);
            }
        }
        __m512i isum = foldRows(p);
        if (type == gguf::Q4_0) isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(8 * a[b].sum));  // the quants' offset of 8
        const __m512i words = gatherWords(rowOffsets, panel, at);
        const __m512 dx = _mm512_set1_ps(a[b].d);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(lowHalves(words), dx), acc);
        if (type == gguf::Q4_1) acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_set1_epi32(a[b].sum)), _mm512_mul_ps(highHalves(words), dx), acc);
    }
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << pr) - 1), acc);
}

// Scales of sub-block j for rows 2i and 2i+1, in the lanes their partial sums take (0-7, 8-15), as 16-bit
// values with zero high halves, for a multiply-add with partial sums that fit 16 bits.
inline __m512i pairScales(const __m512i rowsScale, int i) {
    const __m512i idx = _mm512_set_epi32(2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i, 2 * i,
                                         2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i);
    return _mm512_permutexvar_epi32(idx, rowsScale);
}

void lanesK45(bool five, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, const qk::Block256* a, float* y) {
    const int64_t bytes = five ? 176 : 144;
    const __m512i rowOffsets = offsetsOf(rowBytes, pr);
    const __m512i six = _mm512_set1_epi32(0x3F3F3F3F), low4 = _mm512_set1_epi32(0x0F0F0F0F), top2 = _mm512_set1_epi32(0x30303030);
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const int64_t at = b * bytes;
        // The eight 6-bit scales and minimums of all 16 rows, four to a 32-bit lane.
        const __m512i w0 = gatherWords(rowOffsets, panel, at + 4), w1 = gatherWords(rowOffsets, panel, at + 8),
                      w2 = gatherWords(rowOffsets, panel, at + 12);
        const __m512i scLo = _mm512_and_si512(w0, six), mnLo = _mm512_and_si512(w1, six);
        const __m512i scHi = _mm512_or_si512(_mm512_and_si512(w2, low4), _mm512_and_si512(_mm512_srli_epi32(w0, 2), top2));
        const __m512i mnHi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), low4), _mm512_and_si512(_mm512_srli_epi32(w1, 2), top2));
        __m512i sc[8], mn[8];
        for (int j = 0; j < 8; j++) {
            const int shift = 8 * (j % 4);
            sc[j] = _mm512_and_si512(_mm512_srli_epi32(j < 4 ? scLo : scHi, shift), _mm512_set1_epi32(0xFF));
            mn[j] = _mm512_and_si512(_mm512_srli_epi32(j < 4 ? mnLo : mnHi, shift), _mm512_set1_epi32(0xFF));
        }
        __m512i p[8];
        for (int i = 0; i < 8; i++) {
            const uint8_t* r0 = rowOf(panel, rowBytes, pr, 2 * i) + at;
            const uint8_t* r1 = rowOf(panel, rowBytes, pr, 2 * i + 1) + at;
            const uint8_t* q0 = r0 + (five ? 48 : 16);
            const uint8_t* q1 = r1 + (five ? 48 : 16);
            __m256i h0 = _mm256_setzero_si256(), h1 = _mm256_setzero_si256();
            if (five) {
                h0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + 16));
                h1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + 16));
            }
            __m512i sum = _mm512_setzero_si512();
            for (int c = 0; c < 4; c++) {
                const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q0 + 32 * c));
                const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1 + 32 * c));
                __m256i lo0 = _mm256_and_si256(v0, m4), hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4);
                __m256i lo1 = _mm256_and_si256(v1, m4), hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4);
                if (five) {
                    const __m128i s0 = _mm_cvtsi32_si128(2 * c), s1 = _mm_cvtsi32_si128(2 * c + 1);
                    lo0 = _mm256_or_si256(lo0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h0, s0), one), 4));
                    hi0 = _mm256_or_si256(hi0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h0, s1), one), 4));
                    lo1 = _mm256_or_si256(lo1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h1, s0), one), 4));
                    hi1 = _mm256_or_si256(hi1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h1, s1), one), 4));
                }
                const __m256i xl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q + 64 * c));
                const __m256i xh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q + 64 * c + 32));
                // Partial sums of 4 products of at most 31 * 127: they fit 16 bits, so one multiply-add scales them.
                const __m512i pl = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair256(lo0, lo1), pair256(xl, xl));
                const __m512i ph = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair256(hi0, hi1), pair256(xh, xh));
                sum = _mm512_add_epi32(sum, _mm512_madd_epi16(pl, pairScales(sc[2 * c], i)));
                sum = _mm512_add_epi32(sum, _mm512_madd_epi16(ph, pairScales(sc[2 * c + 1], i)));
            }
            p[i] = sum;
        }
        const __m512i isum = foldRows(p);
        __m512i msum = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) msum = _mm512_add_epi32(msum, _mm512_mullo_epi32(mn[j], _mm512_set1_epi32(a[b].bsums[2 * j] + a[b].bsums[2 * j + 1])));
        const __m512i words = gatherWords(rowOffsets, panel, at);
        const __m512 dx = _mm512_set1_ps(a[b].d);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(lowHalves(words), dx), acc);
        acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(highHalves(words), dx), acc);
    }
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << pr) - 1), acc);
}

void lanesQ6K(const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, const qk::Block256* a, float* y) {
    const __m512i rowOffsets = offsetsOf(rowBytes, pr);
    const __m256i m4 = _mm256_set1_epi8(0xF), three = _mm256_set1_epi8(3);
    const __m512i low16 = _mm512_set1_epi32(0xFFFF);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const int64_t at = b * 210;
        __m512i p[8];
        __m512i offset = _mm512_setzero_si512();  // per row: the sum over groups of scale * 32 * the input's group sum
        for (int i = 0; i < 8; i++) {
            const uint8_t* r[2] = {rowOf(panel, rowBytes, pr, 2 * i) + at, rowOf(panel, rowBytes, pr, 2 * i + 1) + at};
            // The two rows' 16 int8 scales as 32-bit lanes (row 2i in 0-15 of sa, row 2i+1 in sb).
            const __m512i sa = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r[0] + 192)));
            const __m512i sb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r[1] + 192)));
            const __m512i ma = _mm512_and_si512(sa, low16), mb = _mm512_and_si512(sb, low16);
            __m512i sum = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                __m256i q[2][4];
                for (int k = 0; k < 2; k++) {
                    const uint8_t* blk = r[k];
                    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h));
                    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32));
                    const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
                    q[k][0] = _mm256_or_si256(_mm256_and_si256(v0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, three), 4));
                    q[k][1] = _mm256_or_si256(_mm256_and_si256(v1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), three), 4));
                    q[k][2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), three), 4));
                    q[k][3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4),
                                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), three), 4));
                }
                for (int c = 0; c < 4; c++) {
                    const int g = 8 * h + 2 * c;  // the chunk's two groups of 16: g and g + 1
                    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q + 128 * h + 32 * c));
                    // Partial sums of 4 products of at most 63 * 127 = 32004: they fit 16 bits.
                    const __m512i part = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair256(q[0][c], q[1][c]), pair256(x, x));
                    const __m512i idx = _mm512_set_epi32(16 + g + 1, 16 + g + 1, 16 + g + 1, 16 + g + 1, 16 + g, 16 + g, 16 + g, 16 + g, g + 1, g + 1,
                                                         g + 1, g + 1, g, g, g, g);
                    sum = _mm512_add_epi32(sum, _mm512_madd_epi16(part, _mm512_permutex2var_epi32(ma, idx, mb)));
                }
            }
            p[i] = sum;
        }
        // The 16 rows' scales, group by group (four int8 scales to a gathered word), times 32 times the
        // input's group sums: the quants' offset.
        for (int w4 = 0; w4 < 4; w4++) {
            const __m512i words = gatherWords(rowOffsets, panel, at + 192 + 4 * w4);
            for (int k = 0; k < 4; k++) {
                const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(words, 24 - 8 * k), 24);
                offset = _mm512_add_epi32(offset, _mm512_mullo_epi32(sc, _mm512_set1_epi32(32 * a[b].bsums[4 * w4 + k])));
            }
        }
        const __m512i isum = _mm512_sub_epi32(foldRows(p), offset);
        const __m512i words = gatherWords(rowOffsets, panel, at + 206);  // d is the block's last two bytes
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(highHalves(words), _mm512_set1_ps(a[b].d)), acc);
    }
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << pr) - 1), acc);
}

// One panel of up to 16 rows times one quantized input vector.
void lanes(uint32_t type, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, const uint8_t* xq, float* y) {
    switch (type) {
        case gguf::Q8_0:
        case gguf::Q4_0:
        case gguf::Q4_1: lanes32(type, panel, rowBytes, pr, nb, reinterpret_cast<const qk::Block32*>(xq), y); break;
        case gguf::Q4_K: lanesK45(false, panel, rowBytes, pr, nb, reinterpret_cast<const qk::Block256*>(xq), y); break;
        case gguf::Q5_K: lanesK45(true, panel, rowBytes, pr, nb, reinterpret_cast<const qk::Block256*>(xq), y); break;
        case gguf::Q6_K: lanesQ6K(panel, rowBytes, pr, nb, reinterpret_cast<const qk::Block256*>(xq), y); break;
        default: break;
    }
}

// One panel times a group of 4 to 16 packed input vectors, the vectors in the lanes: out[16 * row + vector].
void group(const Layout& L, const Panel& P, int pr, int64_t nb, int nv, const uint8_t* pb, const float* ps, const int32_t* pxs,
           float* out) {
    configure(pr, nv, L.k);
    alignas(64) int32_t c[16][256];
    __m512 acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    const int64_t perBlock = static_cast<int64_t>(L.block) * 16;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t* wb = P.w.data() + b * 16 * L.block;
        for (int g = 0; g < L.groups; g++) {
            _tile_zero(0);
            HI_TILE_LOAD(1, wb + g * L.k, L.block);
            HI_TILE_LOAD(2, pb + b * perBlock + g * L.k * 16, 64);
            _tile_dpbssd(0, 1, 2);
            HI_TILE_STORE(0, c[g], 64);
        }
        const __m512 dx = _mm512_loadu_ps(ps + 16 * b);
        const int32_t* sc = P.sc.data() + b * L.groups * 16;
        for (int r = 0; r < pr; r++) {
            __m512i isum = _mm512_load_si512(c[0] + 16 * r);
            if (L.groups > 1) {
                isum = _mm512_mullo_epi32(isum, _mm512_set1_epi32(sc[r]));
                for (int g = 1; g < L.groups; g++) {
                    isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(_mm512_load_si512(c[g] + 16 * r), _mm512_set1_epi32(sc[16 * g + r])));
                }
            }
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(_mm512_set1_ps(P.d[b * 16 + r]), dx), acc[r]);
            if (L.mins) {
                const int32_t* mn = P.mn.data() + b * 128;
                __m512i msum = _mm512_setzero_si512();
                for (int j = 0; j < 8; j++) {
                    msum = _mm512_add_epi32(msum, _mm512_mullo_epi32(_mm512_loadu_si512(pxs + (b * 8 + j) * 16), _mm512_set1_epi32(mn[16 * j + r])));
                }
                acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(_mm512_set1_ps(P.dm[b * 16 + r]), dx), acc[r]);
            } else if (L.min1) {
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(pxs + b * 128)), _mm512_mul_ps(_mm512_set1_ps(P.dm[b * 16 + r]), dx),
                                         acc[r]);
            }
        }
    }
    for (int r = 0; r < pr; r++) _mm512_storeu_ps(out + 16 * r, acc[r]);
}

// ---- Several vectors without the tiles: the panel transposed, the inputs broadcast ----------------
//
// Each block of a panel is transposed once, so that one register holds the same four values of all 16 rows
// (row r in lane r), made unsigned by the type's offset, then packed to a record (below). A vector's four input bytes are then
// broadcast to all lanes, and one VNNI multiply-add advances 16 rows' sums: the registers holding a block's
// weights serve every vector in turn, and no fold is needed. The offset comes back out through the input
// sums qk::quantize keeps. The integer sums and the float steps are those of the kernels above, lane by lane.

// What a type's unpacked values are shifted by to be unsigned: Q8_0's signed bytes by 128, Q4_0's and
// Q6_K's offsets added back; Q4_1, Q4_K and Q5_K are unsigned already.
inline int unsignedOffset(uint32_t type) {
    switch (type) {
        case gguf::Q8_0: return 128;
        case gguf::Q4_0: return 8;
        case gguf::Q6_K: return 32;
        default: return 0;
    }
}

// 4x4 transposes of 32-bit values within each 128-bit lane of four registers.
inline void transpose4(__m512i& a, __m512i& b, __m512i& c, __m512i& d) {
    const __m512i t0 = _mm512_unpacklo_epi32(a, b), t1 = _mm512_unpackhi_epi32(a, b);
    const __m512i t2 = _mm512_unpacklo_epi32(c, d), t3 = _mm512_unpackhi_epi32(c, d);
    a = _mm512_unpacklo_epi64(t0, t2);
    b = _mm512_unpackhi_epi64(t0, t2);
    c = _mm512_unpacklo_epi64(t1, t3);
    d = _mm512_unpackhi_epi64(t1, t3);
}

// One block of a panel's 16 unpacked rows (row r at w + r * ld), transposed to out: per quad i (values 4i
// to 4i+3) 64 bytes holding the 16 rows' quad i, row r at byte 4r, plus the type's offset.
void transposeBlock(const Layout& L, const int8_t* w, int64_t ld, __m512i offset, uint8_t* out) {
    for (int c = 0; c < L.block / 32; c++) {
        // a[k], k < 4: rows k and k + 4; a[4 + k]: rows 8 + k and 12 + k; each row's 8 quads of chunk c.
        __m512i a[8];
        for (int k = 0; k < 4; k++) {
            a[k] = pair256(load256(w + k * ld + 32 * c), load256(w + (k + 4) * ld + 32 * c));
            a[4 + k] = pair256(load256(w + (k + 8) * ld + 32 * c), load256(w + (k + 12) * ld + 32 * c));
        }
        transpose4(a[0], a[1], a[2], a[3]);
        transpose4(a[4], a[5], a[6], a[7]);
        // Now a[j]'s 128-bit lanes hold quads j, 4 + j of rows 0-3, then of rows 4-7 (a[4 + j]: rows 8-15).
        for (int j = 0; j < 4; j++) {
            const __m512i lo = _mm512_shuffle_i32x4(a[j], a[4 + j], _MM_SHUFFLE(2, 0, 2, 0));
            const __m512i hi = _mm512_shuffle_i32x4(a[j], a[4 + j], _MM_SHUFFLE(3, 1, 3, 1));
            _mm512_storeu_si512(out + 64 * (8 * c + j), _mm512_add_epi8(lo, offset));
            _mm512_storeu_si512(out + 64 * (8 * c + j + 4), _mm512_add_epi8(hi, offset));
        }
    }
}

inline __m512i broadcast4(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// ---- Records: a transposed panel's blocks packed as compactly as the file's ------------------------
//
// One record per block of a panel of 16 rows, holding the transposed values at the file's bit width and
// the scales as the kernels load them: 16 floats, or 16 halves per scale (the file's, so the floats are the
// same). Every record is a 64-byte multiple but those of Q8_0 and Q4_0, whose one scale per block fills 32
// bytes as halves: they come in pairs, both blocks' values and then both blocks' scales, so that a pair is one
// (a last block without a partner leaves its pair's second half unused):
//   Q8_0  per block 8 x 64 B: quad i's unsigned bytes (value + 128) | d of both: 16 halves each     1088 B a pair
//   Q4_0  per block 4 x 64 B: nibbles, quad k low, quad k + 4 high | d of both                      576 B a pair
//   Q4_1  as a Q4_0 block | d, m: 16 halves each                                                   320 B
//   Q4_K  per 32-value chunk c, 4 x 64 B of nibbles as Q4_0's | 6-bit scales, then minimums,
//         as 8 x 16 bytes [chunk][row] | d, dmin: 16 halves each                               2368 B
//   Q5_K  as Q4_K | per chunk 64 B of fifth bits: byte 4r + e, bit i: value e of quad i          2880 B
//   Q6_K  nibbles as Q4_K's | per chunk 2 x 64 B of high bit pairs: byte 4r + e, bits 2i and
//         2i + 1: value e of quad i (then of quad 4 + i) | int8 scales [group][row] | d         3392 B
// So Q8_0, Q4_0 and Q4_1 take the file's bytes, the K-quants 1% (Q6_K) to 3% (Q4_K) more. The values
// carry the type's unsigned offset (unsignedOffset). Rebuilt per call from the file's rows, or kept for the
// model's life by repack. (Q6_K's values once also had a form as whole bytes, 31% larger, for 1 or 2
// threads; since the build aligns the kernels' code, the compact records decode faster on a 2-core EPYC:
// one row from memory 1.35 times as fast on 1 thread, 1.6 on 2, 8 rows 1.15 on 2.)
struct RecordLayout {
    // A block's bytes (a pair's half for paired types), its parts' offsets (-1: none; for paired types d is
    // the offset of the scales from the pair's start), and whether blocks come in pairs.
    int64_t bytes, d, dm, sc, mn, high;
    bool paired;
};

constexpr RecordLayout recordOf(uint32_t type) {
    switch (type) {
        case gguf::Q8_0: return {544, 1024, -1, -1, -1, -1, true};
        case gguf::Q4_0: return {288, 512, -1, -1, -1, -1, true};
        case gguf::Q4_1: return {320, 256, 288, -1, -1, -1, false};
        case gguf::Q4_K: return {2368, 2304, 2336, 2048, 2176, -1, false};
        case gguf::Q5_K: return {2880, 2304, 2336, 2048, 2176, 2368, false};
        case gguf::Q6_K: return {3392, 3328, -1, 3072, -1, 2048, false};
        default: return {0, -1, -1, -1, -1, -1, false};
    }
}

// Whether a type's records hold their scales as halves: all but Q6_K's, whose one float per row is next to
// 3 KB of values (Q4_1's single-row decode about 19% faster on a 2-core EPYC than with floats; Q8_0's and
// Q4_0's records 5.6% and 10% smaller).
constexpr bool halfScales(uint32_t type) { return recordOf(type).paired || recordOf(type).dm >= 0; }

// Where block b's record (its values) and its scales lie among a panel's records, in bytes from the first.
constexpr int64_t recordOffset(const RecordLayout& R, int64_t b) {
    return R.paired ? (b >> 1) * 2 * R.bytes + (b & 1) * (R.bytes - 32) : b * R.bytes;
}
constexpr int64_t scalesOffset(const RecordLayout& R, int64_t b) {
    return R.paired ? (b >> 1) * 2 * R.bytes + R.d + (b & 1) * 32 : b * R.bytes + R.d;
}

// The bytes of a panel's nb records.
inline int64_t recordsBytes(uint32_t type, int64_t nb) {
    const RecordLayout R = recordOf(type);
    return R.paired ? (nb + 1) / 2 * 2 * R.bytes : nb * R.bytes;
}

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline void store512(void* p, __m512i v) { _mm512_storeu_si512(p, v); }

// Shifts each byte's bits left (s > 0) or right (s < 0) within 16-bit lanes; the caller masks what stays.
inline __m512i shiftBits(__m512i v, int s) {
    if (s > 0) return _mm512_slli_epi16(v, static_cast<unsigned>(s));
    if (s < 0) return _mm512_srli_epi16(v, static_cast<unsigned>(-s));
    return v;
}

// Block b, transposed at wt (transposeBlock), with P's scales, to its record among the panel's at recs.
void packBlock(uint32_t type, const Layout& L, const uint8_t* wt, const Panel& P, int64_t b, uint8_t* recs) {
    const RecordLayout R = recordOf(type);
    uint8_t* rec = recs + recordOffset(R, b);
    uint8_t* scales = recs + scalesOffset(R, b);
    if (type == gguf::Q8_0) {
        std::memcpy(rec, wt, static_cast<size_t>(16 * L.block));
    } else {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        for (int c = 0; c < L.block / 32; c++) {
            const uint8_t* q = wt + 512 * c;  // the chunk's 8 quads
            for (int k = 0; k < 4; k++) {
                const __m512i lo = _mm512_and_si512(load512(q + 64 * k), m4), hi = _mm512_and_si512(load512(q + 64 * (k + 4)), m4);
                store512(rec + 256 * c + 64 * k, _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)));
            }
            if (type == gguf::Q5_K) {
                __m512i h = _mm512_setzero_si512();
                for (int i = 0; i < 8; i++) h = _mm512_or_si512(h, shiftBits(_mm512_and_si512(load512(q + 64 * i), _mm512_set1_epi8(0x10)), i - 4));
                store512(rec + R.high + 64 * c, h);
            } else if (type == gguf::Q6_K) {
                for (int half = 0; half < 2; half++) {
                    __m512i h = _mm512_setzero_si512();
                    for (int i = 0; i < 4; i++) {
                        h = _mm512_or_si512(h, shiftBits(_mm512_and_si512(load512(q + 64 * (4 * half + i)), _mm512_set1_epi8(0x30)), 2 * i - 4));
                    }
                    store512(rec + R.high + 128 * c + 64 * half, h);
                }
            }
        }
    }
    if (halfScales(type)) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(scales), _mm512_cvtps_ph(_mm512_loadu_ps(P.d.data() + 16 * b), _MM_FROUND_TO_NEAREST_INT));
        if (R.dm >= 0) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(rec + R.dm), _mm512_cvtps_ph(_mm512_loadu_ps(P.dm.data() + 16 * b), _MM_FROUND_TO_NEAREST_INT));
        }
    } else {
        std::memcpy(scales, P.d.data() + 16 * b, 64);
    }
    if (R.sc >= 0) {
        for (int g = 0; g < L.groups; g++) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(rec + R.sc + 16 * g), _mm512_cvtepi32_epi8(load512(P.sc.data() + (b * L.groups + g) * 16)));
        }
    }
    if (R.mn >= 0) {
        for (int j = 0; j < 8; j++) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(rec + R.mn + 16 * j), _mm512_cvtepi32_epi8(load512(P.mn.data() + (b * 8 + j) * 16)));
        }
    }
}

// A panel of the file's rows to its nb records at out, a block of all 16 rows at a time: unpacked (Q8_0's
// full panels straight from the rows), transposed, packed. Rows past a short panel's end repeat its last
// row; their lanes are never stored.
template <uint32_t type>
void packRows(const Layout& L, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, int64_t blockBytes, Panel& P, uint8_t* out) {
    alignas(64) int8_t w[16 * 256];
    alignas(64) uint8_t wt[16 * 256];
    const __m512i offset = _mm512_set1_epi8(static_cast<char>(unsignedOffset(type)));
    // The panel after this one, fetched into the cache a block's share at a time while this one is
    // unpacked: read in this order, 16 rows a block at a time, the weights otherwise wait on memory.
    const uint8_t* next = panel + 16 * rowBytes;
    const int64_t share = 16 * blockBytes;
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t at = b * share; at < (b + 1) * share; at += 64) _mm_prefetch(reinterpret_cast<const char*>(next + at), _MM_HINT_T0);
        if (type == gguf::Q8_0 && pr == 16) {
            for (int r = 0; r < 16; r++) P.d[b * 16 + r] = h2f(panel + r * rowBytes + b * blockBytes);
            transposeBlock(L, reinterpret_cast<const int8_t*>(panel + b * blockBytes + 2), rowBytes, offset, wt);
        } else {
            for (int r = 0; r < 16; r++) {
                const int from = r < pr ? r : pr - 1;
                unpackRow<type>(panel + from * rowBytes + b * blockBytes, w + r * L.block, P.d[b * 16 + r], P.dm[b * 16 + r],
                                P.sc.data() + b * L.groups * 16 + r, L.mins ? P.mn.data() + b * 128 + r : nullptr);
            }
            transposeBlock(L, w, L.block, offset, wt);
        }
        packBlock(type, L, wt, P, b, out);
    }
}

void packPanel(uint32_t type, const Layout& L, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, int64_t blockBytes, Panel& P,
               uint8_t* out) {
    sizePanel(L, nb, P);
    withType(type, [&](auto t) { packRows<decltype(t)::value>(L, panel, rowBytes, pr, nb, blockBytes, P, out); });
}

// Chunk c (32 values: 8 quads) of a record as the unsigned bytes the multiply-adds take, quad i in q[i].
template <uint32_t type>
inline void chunkOf(const uint8_t* rec, int c, __m512i q[8]) {
    constexpr int64_t high = recordOf(type).high;
    if constexpr (type == gguf::Q8_0) {
        for (int i = 0; i < 8; i++) q[i] = load512(rec + 512 * c + 64 * i);
    } else {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        for (int k = 0; k < 4; k++) {
            const __m512i v = load512(rec + 256 * c + 64 * k);
            q[k] = _mm512_and_si512(v, m4);
            q[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        // q | (shifted high bits & mask), in one ternary-logic instruction (0xF8: a | (b & c)).
        if constexpr (type == gguf::Q5_K) {
            const __m512i h = load512(rec + high + 64 * c), bit = _mm512_set1_epi8(0x10);
            for (int i = 0; i < 8; i++) q[i] = _mm512_ternarylogic_epi32(q[i], shiftBits(h, 4 - i), bit, 0xF8);
        } else if constexpr (type == gguf::Q6_K) {
            const __m512i bits = _mm512_set1_epi8(0x30);
            for (int half = 0; half < 2; half++) {
                const __m512i h = load512(rec + high + 128 * c + 64 * half);
                for (int i = 0; i < 4; i++) q[4 * half + i] = _mm512_ternarylogic_epi32(q[4 * half + i], shiftBits(h, 4 - 2 * i), bits, 0xF8);
            }
        }
    }
}

// The 16 rows' sums over quads q[0 .. quads) times one input's bytes at x, in two chains: s0 over the even
// quads, s1 over the odd ones.
template <int quads>
inline void dotChains(const __m512i* q, const int8_t* x, __m512i& s0, __m512i& s1) {
    s0 = _mm512_setzero_si512();
    s1 = _mm512_setzero_si512();
    for (int i = 0; i < quads; i += 2) {
        s0 = _mm512_dpbusd_epi32(s0, q[i], broadcast4(x + 4 * i));
        s1 = _mm512_dpbusd_epi32(s1, q[i + 1], broadcast4(x + 4 * (i + 1)));
    }
}

template <int quads>
inline __m512i dotQuads(const __m512i* q, const int8_t* x) {
    __m512i s0, s1;
    dotChains<quads>(q, x, s0, s1);
    return _mm512_add_epi32(s0, s1);
}

// A record's 16 scales at offset at, as floats.
template <uint32_t type>
inline __m512 loadScales(const uint8_t* rec, int64_t at) {
    if constexpr (halfScales(type)) {
        // The masked form: the plain one trips GCC's uninitialized-value warning on its undefined pass-through.
        return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + at)));
    } else {
        return _mm512_loadu_ps(reinterpret_cast<const float*>(rec + at));
    }
}
inline __m512i bytesU(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m512i bytesS(const uint8_t* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// Fetches the bytes kRecordsAhead past a record, as many as it has, into L1 or (Level::L2) into L2: the
// records of one call are read in order (a panel's, then the next panel's), and one thread alone keeps too
// few reads in flight otherwise.
constexpr int64_t kRecordsAhead = 4096;
enum class Level { L1, L2 };
template <Level level = Level::L1>
inline void fetchAhead(const uint8_t* rec, int64_t bytes, int64_t ahead = kRecordsAhead) {
    for (int64_t at = 0; at < bytes; at += 64) {
        if constexpr (level == Level::L1) {
            _mm_prefetch(reinterpret_cast<const char*>(rec + ahead + at), _MM_HINT_T0);
        } else {
            _mm_prefetch(reinterpret_cast<const char*>(rec + ahead + at), _MM_HINT_T1);
        }
    }
}
// Several vectors through Q8_0's records do the least work per byte of any type: they fetch into L2, twice
// as far ahead, which leaves the line fill buffers to the loads. On a 2-core AMX Xeon an 8-session Q8_0
// decode step, run back to back, took 4 to 21% less time (alternating, eight pairs: 5.7-6.9 against 5.2-6.0
// ms); Q4_0's, Q4_1's and the K-quants' steps did not gain (up to 10% slower), so they fetch as before.
constexpr int64_t kQ8Ahead = 8192;

// One block of Q8_0, Q4_0 or Q4_1 records times V vectors (x[t]: their quantized blocks), into acc.
template <uint32_t type, int V>
__attribute__((always_inline)) inline void block32(const uint8_t* rec, const RecordLayout& R, __m512 dw, const qk::Block32* const* x, int64_t b, __m512* acc) {
    const int offset = unsignedOffset(type);
    __m512i q[8];
    chunkOf<type>(rec, 0, q);
    for (int t = 0; t < V; t++) {
        const qk::Block32& a = x[t][b];
        __m512i isum = dotQuads<8>(q, a.q);
        if (offset != 0) isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(offset * a.sum));
        const __m512 dx = _mm512_set1_ps(a.d);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, dx), acc[t]);
        if constexpr (type == gguf::Q4_1) {
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_set1_epi32(a.sum)), _mm512_mul_ps(loadScales<type>(rec, R.dm), dx), acc[t]);
        }
    }
}

// One super-block of Q4_K, Q5_K (groups of 32 with 6-bit scales and minimums) or Q6_K (groups of 16 with
// 8-bit scales) records times V vectors, into acc.
template <uint32_t type, int V>
__attribute__((always_inline)) inline void blockK(const uint8_t* rec, const RecordLayout& R, __m512 dw, const qk::Block256* const* x, int64_t b, __m512* acc) {
    constexpr bool q6 = type == gguf::Q6_K;
    __m512i isum[V];
    for (int t = 0; t < V; t++) isum[t] = _mm512_setzero_si512();
    for (int c = 0; c < 8; c++) {
        __m512i q[8];
        chunkOf<type>(rec, c, q);
        if constexpr (q6) {
            const __m512i s0 = bytesS(rec + R.sc + 32 * c), s1 = bytesS(rec + R.sc + 32 * c + 16);
            for (int t = 0; t < V; t++) {
                const int8_t* xq = x[t][b].q + 32 * c;
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dotQuads<4>(q, xq), s0));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dotQuads<4>(q + 4, xq + 16), s1));
            }
        } else if constexpr (type == gguf::Q4_K) {
            // Each chain sums 16 products of at most 15 * 127: they fit 16 bits, so a 16-bit multiply-add
            // scales and adds them (the scale's high half is zero).
            const __m512i s = bytesU(rec + R.sc + 16 * c);
            for (int t = 0; t < V; t++) {
                __m512i s0, s1;
                dotChains<8>(q, x[t][b].q + 32 * c, s0, s1);
                isum[t] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(isum[t], s0, s), s1, s);
            }
        } else {
            const __m512i s = bytesU(rec + R.sc + 16 * c);
            for (int t = 0; t < V; t++) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dotQuads<8>(q, x[t][b].q + 32 * c), s));
        }
    }
    // Per row, pairs of 16-bit factors for the input's pairs of 16-value sums: Q6_K's 32 * scale (the
    // quants' offset), Q4_K/Q5_K's minimum twice (one minimum covers 32 values, two sums).
    __m512i pairs[8];
    for (int j = 0; j < 8; j++) {
        if constexpr (q6) {
            const __m512i lo = _mm512_slli_epi32(bytesS(rec + R.sc + 16 * (2 * j)), 5);
            const __m512i hi = _mm512_slli_epi32(bytesS(rec + R.sc + 16 * (2 * j + 1)), 5);
            pairs[j] = _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(hi, 16));
        } else {
            const __m512i m = bytesU(rec + R.mn + 16 * j);
            pairs[j] = _mm512_or_si512(m, _mm512_slli_epi32(m, 16));
        }
    }
    for (int t = 0; t < V; t++) {
        const qk::Block256& a = x[t][b];
        __m512i side = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) side = _mm512_dpwssd_epi32(side, pairs[j], broadcast4(a.bsums + 2 * j));
        const __m512 dx = _mm512_set1_ps(a.d);
        if constexpr (q6) {
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[t], side)), _mm512_mul_ps(dw, dx), acc[t]);
        } else {
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, dx), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(side), _mm512_mul_ps(loadScales<type>(rec, R.dm), dx), acc[t]);
        }
    }
}

// A panel's records times V vectors (x[t]: its quantized blocks, y[t]: its 16 outputs, pr of them stored).
// Kept out of line, each count its own function: inlined into the dispatch, their code came out slower.
template <uint32_t type, int V>
__attribute__((noinline)) void recordsOf(const uint8_t* recs, int pr, int64_t nb, const uint8_t* const* x, float* const* y) {
    const RecordLayout R = recordOf(type);
    __m512 acc[V];
    for (int t = 0; t < V; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t* rec = recs + recordOffset(R, b);
        const __m512 dw = loadScales<type>(recs, scalesOffset(R, b));
        if constexpr (type == gguf::Q8_0) {
            fetchAhead<Level::L2>(rec, R.bytes, kQ8Ahead);
        } else {
            fetchAhead(rec, R.bytes);
        }
        if constexpr (type == gguf::Q8_0 || type == gguf::Q4_0 || type == gguf::Q4_1) {
            block32<type, V>(rec, R, dw, reinterpret_cast<const qk::Block32* const*>(x), b, acc);
        } else {
            blockK<type, V>(rec, R, dw, reinterpret_cast<const qk::Block256* const*>(x), b, acc);
        }
    }
    for (int t = 0; t < V; t++) _mm512_mask_storeu_ps(y[t], static_cast<__mmask16>((1u << pr) - 1), acc[t]);
}

// A panel's records of a 32-value-block type (Q8_0, Q4_0, Q4_1) times count vectors (2 to 16) through the
// tiles: per block, one tile product gives all the vectors' exact integer sums for the panel's 16 rows,
// and then each vector takes the float steps block32 takes, so the bits are the same. Nibble records are
// unpacked to bytes on the stack first.
template <uint32_t type>
__attribute__((noinline)) void tilesOf(const uint8_t* recs, int pr, int64_t nb, const uint8_t* xq, size_t stride, int count, float* const* y) {
    static_assert(type == gguf::Q8_0 || type == gguf::Q4_0 || type == gguf::Q4_1, "32-value blocks only");
    constexpr RecordLayout R = recordOf(type);
    const int offset = unsignedOffset(type);
    configureRecords(count);
    alignas(64) int32_t c[2][16][16];
    alignas(64) uint8_t bytes[2][8][64];
    __m512 acc[16];
    for (int t = 0; t < count; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const uint8_t* inputs = xq + offsetof(qk::Block32, q);
    // The block's weights as bytes: the record itself for Q8_0, its nibbles unpacked for the others.
    auto weightsOf = [&](const uint8_t* rec, int slot) -> const uint8_t* {
        if constexpr (type == gguf::Q8_0) {
            return rec;
        } else {
            for (int k = 0; k < 4; k++) {
                const __m512i v = load512(rec + 64 * k);
                store512(bytes[slot][k], _mm512_and_si512(v, m4));
                store512(bytes[slot][k + 4], _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
            }
            return bytes[slot][0];
        }
    };
    // Each vector's float steps for block b from its sums in c[slot].
    auto finish = [&](int64_t b, int slot) {
        const uint8_t* rec = recs + recordOffset(R, b);
        const __m512 dw = loadScales<type>(recs, scalesOffset(R, b));
        for (int t = 0; t < count; t++) {
            const qk::Block32& a = reinterpret_cast<const qk::Block32*>(xq + stride * t)[b];
            __m512i isum = _mm512_load_si512(c[slot][t]);
            if (offset != 0) isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(offset * a.sum));
            const __m512 dx = _mm512_set1_ps(a.d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, dx), acc[t]);
            if constexpr (type == gguf::Q4_1) {
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_set1_epi32(a.sum)), _mm512_mul_ps(loadScales<type>(rec, R.dm), dx), acc[t]);
            }
        }
    };
    // Two blocks in flight (tiles 0-2 and 3-5), so that one's product runs while the other's sums are read
    // (2-thread prefill of Q4_0 and Q4_1 4 to 12% faster than a block at a time, Q8_0 the same).
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t* rec0 = recs + recordOffset(R, b);
        const uint8_t* rec1 = recs + recordOffset(R, b + 1);
        fetchAhead(rec0, 2 * R.bytes);
        const uint8_t* w0 = weightsOf(rec0, 0);
        const uint8_t* w1 = weightsOf(rec1, 1);
        _tile_zero(0);
        _tile_zero(3);
        HI_TILE_LOAD(1, inputs + b * sizeof(qk::Block32), stride);
        HI_TILE_LOAD(2, w0, 64);
        HI_TILE_LOAD(4, inputs + (b + 1) * sizeof(qk::Block32), stride);
        HI_TILE_LOAD(5, w1, 64);
        _tile_dpbsud(0, 1, 2);
        _tile_dpbsud(3, 4, 5);
        HI_TILE_STORE(0, c[0], 64);
        HI_TILE_STORE(3, c[1], 64);
        finish(b, 0);
        finish(b + 1, 1);
    }
    if (b < nb) {
        const uint8_t* rec = recs + recordOffset(R, b);
        const uint8_t* w0 = weightsOf(rec, 0);
        _tile_zero(0);
        HI_TILE_LOAD(1, inputs + b * sizeof(qk::Block32), stride);
        HI_TILE_LOAD(2, w0, 64);
        _tile_dpbsud(0, 1, 2);
        HI_TILE_STORE(0, c[0], 64);
        finish(b, 0);
    }
    for (int t = 0; t < count; t++) _mm512_mask_storeu_ps(y[t], static_cast<__mmask16>((1u << pr) - 1), acc[t]);
}

// The most vectors one pass over a panel's records serves (their accumulators stay in registers): 8 when
// that takes them all in one pass (a batch of decoding sessions: 8 rows' steps 7 to 17% faster than in two
// passes of 4, by type), else 6 (a prompt's passes of 8 were slower than of 6).
constexpr int kColumnsWidth = 8;
inline int64_t columnsWidth(int64_t count) { return count <= 8 ? 8 : 6; }
// The fewest vectors for which repacked records of the 32-value-block types go through the tiles, where
// there are tiles: on a 2-core AMX Xeon, 16 rows' decode steps were 7% faster than through the VNNI
// kernel, and a prompt's prefill 8 to 13% on one thread (about even on two), 8 rows' steps no faster.
constexpr int64_t kTilesFrom = 16;
// The fewest vectors for which packing each panel's records in the call pays, against the rows-in-lanes
// kernel one vector at a time: Q8_0's bytes are transposed as stored, the 4-bit types' unpacked first, the
// K-quants' with their scales (measured on a 76M-parameter model, 2 threads). Weights repacked at load
// take the records at every count.
inline int64_t columnsFrom(uint32_t type) {
    switch (type) {
        case gguf::Q8_0: return 2;
        case gguf::Q4_0:
        case gguf::Q4_1: return 3;
        default: return 4;
    }
}


// Vectors [t0, t1) in as few passes of up to width as there can be, of sizes as even as possible (8 as
// 4 + 4 for a width of 6, not 6 + 2: a narrow pass decodes the weights for few vectors): pass(t, count).
template <typename F>
void evenPasses(int64_t t0, int64_t t1, int64_t width, F&& pass) {
    const int64_t passes = (t1 - t0 + width - 1) / width;
    for (int64_t t = t0, i = 0; t < t1; i++) {
        const int v = static_cast<int>((t1 - t + (passes - i) - 1) / (passes - i));
        pass(t, v);
        t += v;
    }
}

// One panel's records times vectors [t0, t1): through the tiles from kTilesFrom vectors where there are
// tiles (32-value blocks), else through recordsOf in passes of up to columnsWidth vectors.
void columns(uint32_t type, const uint8_t* recs, int pr, int64_t nb, const uint8_t* xq, size_t stride, int64_t t0, int64_t t1, float* y,
             int64_t rows, bool tiles) {
    withType(type, [&](auto tt) {
        constexpr uint32_t T = decltype(tt)::value;
        if constexpr (T == gguf::Q8_0 || T == gguf::Q4_0 || T == gguf::Q4_1) {
            if (tiles && t1 - t0 >= kTilesFrom) {
                evenPasses(t0, t1, 16, [&](int64_t t, int v) {
                    float* ys[16];
                    for (int i = 0; i < v; i++) ys[i] = y + (t + i) * rows;
                    tilesOf<T>(recs, pr, nb, xq + stride * t, stride, v, ys);
                });
                return;
            }
        }
        evenPasses(t0, t1, columnsWidth(t1 - t0), [&](int64_t t, int v) {
            const uint8_t* xs[kColumnsWidth];
            float* ys[kColumnsWidth];
            for (int i = 0; i < v; i++) {
                xs[i] = xq + stride * (t + i);
                ys[i] = y + (t + i) * rows;
            }
            switch (v) {
                case 1: recordsOf<T, 1>(recs, pr, nb, xs, ys); break;
                case 2: recordsOf<T, 2>(recs, pr, nb, xs, ys); break;
                case 3: recordsOf<T, 3>(recs, pr, nb, xs, ys); break;
                case 4: recordsOf<T, 4>(recs, pr, nb, xs, ys); break;
                case 5: recordsOf<T, 5>(recs, pr, nb, xs, ys); break;
                case 6: recordsOf<T, 6>(recs, pr, nb, xs, ys); break;
                case 7: recordsOf<T, 7>(recs, pr, nb, xs, ys); break;
                default: recordsOf<T, 8>(recs, pr, nb, xs, ys); break;
            }
        });
    });
}

// One vector through the records of a 32-value-block type, kStreams consecutive panels at a time, their
// blocks taken in turn: one thread then reads that many streams at once, each fetched kStreamAhead bytes
// ahead, where one stream leaves memory idle. A 2-core EPYC's single thread read 29 GB/s from one stream
// and 34 from four; a Q8_0 decode step of a 76M-parameter model on 1 thread took 2 to 30% less time (2
// threads: about even). The K-quants' records, 2 to 3 KB each and 3 to a panel of 768 columns, taken in turn
// the same way were 2 to 3 times slower: they go one panel at a time.
constexpr int kStreams = 4;
constexpr int64_t kStreamAhead = 1024;

// P consecutive panels' records (panelBytes apart, the last with lastRows rows) times one vector.
template <uint32_t type, int P>
__attribute__((noinline)) void streamsOf(const uint8_t* recs, int64_t panelBytes, int lastRows, int64_t nb, const uint8_t* xq, float* y) {
    const RecordLayout R = recordOf(type);
    __m512 acc[P];
    for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_ps();
    const uint8_t* x[1] = {xq};
    for (int64_t b = 0; b < nb; b++) {
#pragma GCC unroll 8
        for (int p = 0; p < P; p++) {
            const uint8_t* panel = recs + p * panelBytes;
            const uint8_t* rec = panel + recordOffset(R, b);
            fetchAhead(rec, R.bytes, kStreamAhead);
            block32<type, 1>(rec, R, loadScales<type>(panel, scalesOffset(R, b)), reinterpret_cast<const qk::Block32* const*>(x), b, &acc[p]);
        }
    }
    for (int p = 0; p < P; p++) _mm512_mask_storeu_ps(y + 16 * p, static_cast<__mmask16>(p == P - 1 ? (1u << lastRows) - 1 : 0xFFFF), acc[p]);
}

// count (1 to kStreams) panels of a 32-value-block type through streamsOf.
void streams(uint32_t type, const uint8_t* recs, int64_t panelBytes, int count, int lastRows, int64_t nb, const uint8_t* xq, float* y) {
    withType(type, [&](auto tt) {
        constexpr uint32_t T = decltype(tt)::value;
        if constexpr (T == gguf::Q8_0 || T == gguf::Q4_0 || T == gguf::Q4_1) {
            switch (count) {
                case 1: streamsOf<T, 1>(recs, panelBytes, lastRows, nb, xq, y); break;
                case 2: streamsOf<T, 2>(recs, panelBytes, lastRows, nb, xq, y); break;
                case 3: streamsOf<T, 3>(recs, panelBytes, lastRows, nb, xq, y); break;
                default: streamsOf<T, 4>(recs, panelBytes, lastRows, nb, xq, y); break;
            }
        }
    });
}

thread_local Panel tPanel;
thread_local std::vector<uint8_t> tRecords;

// The rows of panel p (16 but in a last panel) of a matrix of rows rows.
inline int panelRows(int64_t rows, int64_t p) { return static_cast<int>(rows - 16 * p < 16 ? rows - 16 * p : 16); }

// work(p0, p1) over the panels [0, panels), claimed by the pool's threads a few panels at a time (about 8
// claims a thread, and at least `least` panels a claim).
template <typename F>
void forPanels(ThreadPool* pool, int64_t panels, F&& work, int64_t least = 1) {
    if (pool) {
        pool->parallelClaim(panels, std::max<int64_t>(least, panels / (8 * pool->size())), work);
    } else {
        work(0, panels);
    }
}

void multiplyAll(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols, const uint8_t* xq,
                 size_t stride, int64_t n, float* y, Packed& pk, bool tiles) {
    const Layout L = layoutOf(type);
    int64_t elems, blockBytes;
    gguf::blockInfo(type, elems, blockBytes);
    const int64_t nb = cols / L.block;
    const int64_t panels = (rows + 15) / 16;
    // The tiles take groups of 4 to 16 vectors once there are 8 or more (below that, unpacking each panel
    // for the tiles costs more than it saves). All kernels give the same bits, so the split is free to
    // follow speed alone.
    const int64_t full = tiles && n >= 8 ? n - n % 4 : 0;
    const int64_t groups = (full + 15) / 16;
    // The rest: with columnsFrom(type) or more, the panel is transposed once and they share its registers;
    // fewer go one at a time through the rows-in-lanes kernel, which reads the weights as stored.
    const bool transposed = n - full >= columnsFrom(type);
    if (full > 0) packInputs(L, xq, stride, full, nb, pk);
    const int64_t perBlock = static_cast<int64_t>(L.block) * 16;
    auto work = [&](int64_t p0, int64_t p1) {
        alignas(64) float out[256];
        Panel& P = tPanel;
        for (int64_t p = p0; p < p1; p++) {
            const int pr = panelRows(rows, p);
            const uint8_t* panel = base + 16 * p * rowBytes;
            if (transposed) {
                std::vector<uint8_t>& recs = tRecords;
                atLeast(recs, recordsBytes(type, nb));
                packPanel(type, L, panel, rowBytes, pr, nb, blockBytes, P, recs.data());
                columns(type, recs.data(), pr, nb, xq, stride, full, n, y + 16 * p, rows, false);
            } else {
                for (int64_t t = full; t < n; t++) lanes(type, panel, rowBytes, pr, nb, xq + stride * t, y + t * rows + 16 * p);
            }
            if (groups == 0) continue;
            unpackPanel(type, L, panel, rowBytes, pr, nb, blockBytes, P);
            for (int64_t g = 0; g < groups; g++) {
                const int nv = static_cast<int>(full - 16 * g < 16 ? full - 16 * g : 16);
                group(L, P, pr, nb, nv, pk.bytes.data() + g * nb * perBlock, pk.scales.data() + g * nb * 16, pk.sums.data() + g * nb * 128, out);
                for (int r = 0; r < pr; r++) {
                    for (int v = 0; v < nv; v++) y[(16 * g + v) * rows + 16 * p + r] = out[16 * r + v];
                }
            }
        }
    };
    forPanels(pool, panels, work);
}

// The file's rows of type to their records.
Repacked repackAll(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols) {
    const Layout L = layoutOf(type);
    int64_t elems, blockBytes;
    gguf::blockInfo(type, elems, blockBytes);
    const int64_t nb = cols / L.block, panels = (rows + 15) / 16;
    Repacked r;
    r.type = type;
    r.rows = rows;
    r.cols = cols;
    r.panelBytes = recordsBytes(type, nb);
    const size_t size = static_cast<size_t>(panels * r.panelBytes);  // pairs and records are 64-byte multiples
    r.bytes = PageBuffer(size);
    uint8_t* out = r.bytes.get();
    auto work = [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; p++) {
            const int pr = panelRows(rows, p);
            packPanel(type, L, base + 16 * p * rowBytes, rowBytes, pr, nb, blockBytes, tPanel, out + p * r.panelBytes);
        }
    };
    forPanels(pool, panels, work);
    return r;
}

// Panels [p0, p1) of a repacked matrix times n vectors: one vector reads the 32-value-block types in groups
// of kStreams panels (streamsOf).
void panelsOf(const Repacked& w, const uint8_t* xq, size_t stride, int64_t n, float* y, bool tiles, int64_t p0, int64_t p1) {
    const int64_t nb = w.cols / layoutOf(w.type).block;
    if (n == 1 && layoutOf(w.type).block == 32) {
        for (int64_t p = p0; p < p1; p += kStreams) {
            const int count = static_cast<int>(std::min<int64_t>(kStreams, p1 - p));
            streams(w.type, w.bytes.get() + p * w.panelBytes, w.panelBytes, count, panelRows(w.rows, p + count - 1), nb, xq, y + 16 * p);
        }
        return;
    }
    for (int64_t p = p0; p < p1; p++) {
        columns(w.type, w.bytes.get() + p * w.panelBytes, panelRows(w.rows, p), nb, xq, stride, 0, n, y + 16 * p, w.rows, tiles);
    }
}

// Several repacked matrices times the same vectors in one pass of the pool: their panels one after another
// as one range, claimed in chunks (of whole groups of streams for one vector), so that the threads meet
// once for all of them.
void multiplyRepacked(ThreadPool* pool, const Repacked* const* ws, float* const* ys, int count, const uint8_t* xq, size_t stride, int64_t n,
                      bool tiles) {
    int64_t total = 0;
    bool grouped = false;
    for (int i = 0; i < count; i++) {
        total += (ws[i]->rows + 15) / 16;
        grouped = grouped || (n == 1 && layoutOf(ws[i]->type).block == 32);
    }
    auto work = [&](int64_t u0, int64_t u1) {
        int64_t at = 0;
        for (int i = 0; i < count && at < u1; i++) {
            const int64_t panels = (ws[i]->rows + 15) / 16;
            const int64_t p0 = std::max<int64_t>(u0 - at, 0), p1 = std::min<int64_t>(u1 - at, panels);
            if (p0 < p1) panelsOf(*ws[i], xq, stride, n, ys[i], tiles, p0, p1);
            at += panels;
        }
    };
    forPanels(pool, total, work, grouped ? kStreams : 1);
}

}  // namespace

#pragma GCC diagnostic pop
#pragma GCC pop_options

bool usable() {
    static const bool ok = detect();
    return ok;
}

bool supports(uint32_t type) { return layoutOf(type).block > 0; }

void multiply(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols,
              const uint8_t* xq, size_t stride, int64_t n, float* y, Packed& packed, bool tiles) {
    switch (type) {
        case gguf::Q8_0:
        case gguf::Q4_0:
        case gguf::Q4_1:
        case gguf::Q4_K:
        case gguf::Q5_K:
        case gguf::Q6_K: multiplyAll(pool, type, base, rowBytes, rows, cols, xq, stride, n, y, packed, tiles && usable()); break;
        default: throw gguf::Error(std::string("no AMX product for type ") + gguf::typeName(type));
    }
}

Repacked repack(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols) {
    if (!supports(type) || cols % layoutOf(type).block != 0) throw gguf::Error(std::string("no repacking for type ") + gguf::typeName(type));
    return repackAll(pool, type, base, rowBytes, rows, cols);
}

void multiply(ThreadPool* pool, const Repacked& w, const uint8_t* xq, size_t stride, int64_t n, float* y) {
    const Repacked* ws[1] = {&w};
    float* ys[1] = {y};
    multiplyRepacked(pool, ws, ys, 1, xq, stride, n, qk::level() >= qk::Amx && usable());
}

void multiply(ThreadPool* pool, const Repacked* const* ws, float* const* ys, int count, const uint8_t* xq, size_t stride, int64_t n) {
    multiplyRepacked(pool, ws, ys, count, xq, stride, n, qk::level() >= qk::Amx && usable());
}

#else

bool usable() { return false; }
bool supports(uint32_t) { return false; }
void multiply(ThreadPool*, uint32_t type, const uint8_t*, int64_t, int64_t, int64_t, const uint8_t*, size_t, int64_t, float*,
              Packed&, bool) {
    throw gguf::Error(std::string("no AMX product for type ") + gguf::typeName(type));
}
Repacked repack(ThreadPool*, uint32_t type, const uint8_t*, int64_t, int64_t, int64_t) {
    throw gguf::Error(std::string("no repacking for type ") + gguf::typeName(type));
}
void multiply(ThreadPool*, const Repacked& w, const uint8_t*, size_t, int64_t, float*) {
    throw gguf::Error(std::string("no AMX product for type ") + gguf::typeName(w.type));
}
void multiply(ThreadPool*, const Repacked* const* ws, float* const*, int, const uint8_t*, size_t, int64_t) {
    throw gguf::Error(std::string("no AMX product for type ") + gguf::typeName(ws[0]->type));
}

#endif

}  // namespace amx
