#include "amx.h"

#include <cstring>

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
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("f16c")) {
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
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,amx-tile,amx-int8")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

// A panel of up to 16 weight rows unpacked for the tiles: per block, each row's values as signed bytes
// (the 4- to 6-bit types with their offsets already subtracted, or not yet scaled for the K-quants), the
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
void unpackRow(uint32_t type, const uint8_t* blk, int8_t* w, float& d, float& dm, int32_t* sc, int32_t* mn) {
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

void unpackPanel(uint32_t type, const Layout& L, const uint8_t* panel, int64_t rowBytes, int pr, int64_t nb, int64_t blockBytes,
                 Panel& P) {
    P.w.resize(static_cast<size_t>(nb * 16 * L.block));
    P.d.assign(static_cast<size_t>(nb * 16), 0.0f);
    P.dm.assign(static_cast<size_t>(nb * 16), 0.0f);
    P.sc.assign(static_cast<size_t>(nb * L.groups * 16), 0);
    P.mn.assign(static_cast<size_t>(L.mins ? nb * 8 * 16 : 0), 0);
    // Row by row, each read front to back, as the hardware prefetchers expect.
    for (int r = 0; r < pr; r++) {
        for (int64_t b = 0; b < nb; b++) {
            unpackRow(type, panel + r * rowBytes + b * blockBytes, P.w.data() + (b * 16 + r) * L.block, P.d[b * 16 + r],
                      P.dm[b * 16 + r], P.sc.data() + b * L.groups * 16 + r, L.mins ? P.mn.data() + b * 128 + r : nullptr);
        }
    }
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

// One panel times one input vector, the panel's rows in the vector lanes.
void single(const Layout& L, const Panel& P, int pr, int64_t nb, const uint8_t* xq, float* y) {
    configure(pr, 1, L.k);
    alignas(64) int32_t c[16];
    const __mmask16 live = static_cast<__mmask16>((1u << pr) - 1);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const InputBlock in = inputBlock(L, xq, b);
        const int8_t* wb = P.w.data() + b * 16 * L.block;
        __m512i isum = _mm512_setzero_si512();
        for (int g = 0; g < L.groups; g++) {
            _tile_zero(0);
            HI_TILE_LOAD(1, wb + g * L.k, L.block);
            HI_TILE_LOAD(2, in.q + g * L.k, 4);
            _tile_dpbssd(0, 1, 2);
            HI_TILE_STORE(0, c, 4);
            const __m512i cg = _mm512_maskz_loadu_epi32(live, c);
            isum = L.groups == 1 ? cg : _mm512_add_epi32(isum, _mm512_mullo_epi32(cg, _mm512_loadu_si512(P.sc.data() + (b * L.groups + g) * 16)));
        }
        const __m512 dx = _mm512_set1_ps(in.d);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(_mm512_loadu_ps(P.d.data() + b * 16), dx), acc);
        if (L.mins) {
            __m512i msum = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++) {
                msum = _mm512_add_epi32(msum, _mm512_mullo_epi32(_mm512_loadu_si512(P.mn.data() + (b * 8 + j) * 16), _mm512_set1_epi32(in.xs[j])));
            }
            acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(_mm512_loadu_ps(P.dm.data() + b * 16), dx), acc);
        } else if (L.min1) {
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_set1_epi32(in.xs[0])), _mm512_mul_ps(_mm512_loadu_ps(P.dm.data() + b * 16), dx), acc);
        }
    }
    _mm512_mask_storeu_ps(y, live, acc);
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

thread_local Panel tPanel;

void multiplyAll(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols, const uint8_t* xq,
                 size_t stride, int64_t n, float* y, Packed& pk) {
    const Layout L = layoutOf(type);
    int64_t elems, blockBytes;
    gguf::blockInfo(type, elems, blockBytes);
    const int64_t nb = cols / L.block;
    const int64_t panels = (rows + 15) / 16;
    // Fewer than 4 vectors go one at a time: the rows-in-lanes kernel wastes no lanes on them.
    const int64_t full = n >= 4 ? n - n % 4 : 0;
    const int64_t groups = (full + 15) / 16;
    if (full > 0) packInputs(L, xq, stride, full, nb, pk);
    const int64_t perBlock = static_cast<int64_t>(L.block) * 16;
    auto work = [&](int64_t p0, int64_t p1) {
        alignas(64) float out[256];
        Panel& P = tPanel;
        for (int64_t p = p0; p < p1; p++) {
            const int pr = static_cast<int>(rows - 16 * p < 16 ? rows - 16 * p : 16);
            unpackPanel(type, L, base + 16 * p * rowBytes, rowBytes, pr, nb, blockBytes, P);
            for (int64_t g = 0; g < groups; g++) {
                const int nv = static_cast<int>(full - 16 * g < 16 ? full - 16 * g : 16);
                group(L, P, pr, nb, nv, pk.bytes.data() + g * nb * perBlock, pk.scales.data() + g * nb * 16, pk.sums.data() + g * nb * 128, out);
                for (int r = 0; r < pr; r++) {
                    for (int v = 0; v < nv; v++) y[(16 * g + v) * rows + 16 * p + r] = out[16 * r + v];
                }
            }
            for (int64_t t = full; t < n; t++) single(L, P, pr, nb, xq + stride * t, y + t * rows + 16 * p);
        }
    };
    if (pool && panels > 1) {
        pool->parallelFor(panels, work);
    } else {
        work(0, panels);
    }
}

}  // namespace

#pragma GCC diagnostic pop
#pragma GCC pop_options

bool usable() {
    static const bool ok = detect();
    return ok;
}

bool supports(uint32_t type) { return usable() && layoutOf(type).block > 0; }

void multiply(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols,
              const uint8_t* xq, size_t stride, int64_t n, float* y, Packed& packed) {
    switch (type) {
        case gguf::Q8_0:
        case gguf::Q4_0:
        case gguf::Q4_1:
        case gguf::Q4_K:
        case gguf::Q5_K:
        case gguf::Q6_K: multiplyAll(pool, type, base, rowBytes, rows, cols, xq, stride, n, y, packed); break;
        default: throw gguf::Error(std::string("no AMX product for type ") + gguf::typeName(type));
    }
}

#else

bool usable() { return false; }
bool supports(uint32_t) { return false; }
void multiply(ThreadPool*, uint32_t type, const uint8_t*, int64_t, int64_t, int64_t, const uint8_t*, size_t, int64_t, float*,
              Packed&) {
    throw gguf::Error(std::string("no AMX product for type ") + gguf::typeName(type));
}

#endif

}  // namespace amx
