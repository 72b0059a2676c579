#include "quant.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "amx.h"
#include "gguf.h"
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QK_X86 1
#endif

namespace qk {

namespace {

inline float f16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return kern::f16ToF32(h);
}

// The eight 6-bit scales and mins of a Q4_K/Q5_K super-block (the 12 bytes after d and dmin), four at a
// time: bytes 0-3 hold scales 0-3 and the top bits of scales 4-7, bytes 4-7 the same for the mins,
// bytes 8-11 the low four bits of scales 4-7 (low nibbles) and mins 4-7 (high nibbles).
inline void scalesMinsK(const uint8_t* q, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t a, b, c;
    std::memcpy(&a, q, 4);
    std::memcpy(&b, q + 4, 4);
    std::memcpy(&c, q + 8, 4);
    const uint32_t s0 = a & 0x3F3F3F3Fu, m0 = b & 0x3F3F3F3Fu;
    const uint32_t s1 = (c & 0x0F0F0F0Fu) | ((a >> 2) & 0x30303030u);
    const uint32_t m1 = ((c >> 4) & 0x0F0F0F0Fu) | ((b >> 2) & 0x30303030u);
    std::memcpy(sc, &s0, 4);
    std::memcpy(sc + 4, &s1, 4);
    std::memcpy(mn, &m0, 4);
    std::memcpy(mn + 4, &m1, 4);
}

// The float side of a K-quant super-block in the portable kernels.
inline float combineK45(float d, float dmin, float xd, int32_t isum, int32_t msum) {
    return d * xd * static_cast<float>(isum) - dmin * xd * static_cast<float>(msum);
}

inline float combineQ6K(float d, float xd, int32_t isum) {
    return d * xd * static_cast<float>(isum);
}

bool blockOf256(uint32_t type) { return type == gguf::Q4_K || type == gguf::Q5_K || type == gguf::Q6_K; }

// ---- portable ------------------------------------------------------------------------------------

namespace portable {

// One block's quants as stored, unsigned for the 4/5/6-bit types (Q8_0's are signed).
void unpack(uint32_t type, const uint8_t* blk, int16_t* u) {
    switch (type) {
        case gguf::Q8_0:
            for (int i = 0; i < 32; i++) u[i] = static_cast<int8_t>(blk[2 + i]);
            break;
        case gguf::Q4_0:
        case gguf::Q4_1: {
            const uint8_t* qs = blk + (type == gguf::Q4_0 ? 2 : 4);
            for (int j = 0; j < 16; j++) {
                u[j] = qs[j] & 0xF;
                u[j + 16] = qs[j] >> 4;
            }
            break;
        }
        case gguf::Q4_K:
        case gguf::Q5_K: {
            const bool five = type == gguf::Q5_K;
            const uint8_t* qs = blk + (five ? 48 : 16);
            const uint8_t* qh = blk + 16;
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    u[64 * c + l] = static_cast<int16_t>((qs[32 * c + l] & 0xF) | (five ? ((qh[l] >> (2 * c)) & 1) << 4 : 0));
                    u[64 * c + 32 + l] = static_cast<int16_t>((qs[32 * c + l] >> 4) | (five ? ((qh[l] >> (2 * c + 1)) & 1) << 4 : 0));
                }
            }
            break;
        }
        case gguf::Q6_K:
            for (int h = 0; h < 2; h++) {
                const uint8_t* ql = blk + 64 * h;
                const uint8_t* qh = blk + 128 + 32 * h;
                for (int l = 0; l < 32; l++) {
                    u[128 * h + l] = static_cast<int16_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
                    u[128 * h + 32 + l] = static_cast<int16_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                    u[128 * h + 64 + l] = static_cast<int16_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                    u[128 * h + 96 + l] = static_cast<int16_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
                }
            }
            break;
        default: break;
    }
}

int64_t blockBytes(uint32_t type) {
    int64_t elems, bytes;
    gguf::blockInfo(type, elems, bytes);
    return bytes;
}

// The integer sums of one block: 1 (32-value types), 8 (Q4_K, Q5_K) or 16 (Q6_K).
void blockInts(uint32_t type, const uint8_t* blk, const int8_t* x, int32_t* out) {
    int16_t u[256];
    unpack(type, blk, u);
    const int n = blockOf256(type) ? 256 : 32;
    const int group = type == gguf::Q6_K ? 16 : 32;
    for (int g = 0; g < n / group; g++) {
        int32_t s = 0;
        for (int i = group * g; i < group * (g + 1); i++) s += u[i] * x[i];
        out[g] = s;
    }
}

void ints(uint32_t type, const uint8_t* row, const uint8_t* xq, int64_t n, int32_t* out) {
    const int64_t bytes = blockBytes(type);
    if (blockOf256(type)) {
        const Block256* a = reinterpret_cast<const Block256*>(xq);
        const int per = type == gguf::Q6_K ? 16 : 8;
        for (int64_t b = 0; b < n / 256; b++) blockInts(type, row + bytes * b, a[b].q, out + per * b);
    } else {
        const Block32* a = reinterpret_cast<const Block32*>(xq);
        for (int64_t b = 0; b < n / 32; b++) blockInts(type, row + bytes * b, a[b].q, out + b);
    }
}

float dot(uint32_t type, const uint8_t* row, const uint8_t* xq, int64_t n) {
    const int64_t bytes = blockBytes(type);
    float s = 0;
    int32_t v[16];
    if (!blockOf256(type)) {
        const Block32* a = reinterpret_cast<const Block32*>(xq);
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t* blk = row + bytes * b;
            blockInts(type, blk, a[b].q, v);
            if (type == gguf::Q8_0) {
                s += f16(blk) * a[b].d * static_cast<float>(v[0]);
            } else if (type == gguf::Q4_0) {
                s += f16(blk) * a[b].d * static_cast<float>(v[0] - 8 * a[b].sum);
            } else {
                s += f16(blk) * a[b].d * static_cast<float>(v[0]) + f16(blk + 2) * (a[b].d * static_cast<float>(a[b].sum));
            }
        }
        return s;
    }
    const Block256* a = reinterpret_cast<const Block256*>(xq);
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t* blk = row + bytes * b;
        blockInts(type, blk, a[b].q, v);
        if (type == gguf::Q6_K) {
            const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
            int32_t isum = 0;
            for (int g = 0; g < 16; g++) isum += sc[g] * (v[g] - 32 * a[b].bsums[g]);
            s += combineQ6K(f16(blk + 208), a[b].d, isum);
        } else {
            uint8_t sc[8], mn[8];
            scalesMinsK(blk + 4, sc, mn);
            int32_t isum = 0, msum = 0;
            for (int j = 0; j < 8; j++) {
                isum += sc[j] * v[j];
                msum += mn[j] * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
            }
            s += combineK45(f16(blk), f16(blk + 2), a[b].d, isum, msum);
        }
    }
    return s;
}

}  // namespace portable

// ---- x86 levels ----------------------------------------------------------------------------------

#ifdef QK_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
#define QK_DPBUSD 0
#include "quant_x86.inc"
#undef QK_DPBUSD
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")
namespace avxvnni {
#define QK_DPBUSD 1
#include "quant_x86.inc"
#undef QK_DPBUSD
}  // namespace avxvnni
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
// The compiler's own AVX-512 headers start conversions from an undefined register and warn about it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {
#define QK_DPBUSD 2
#include "quant_x86.inc"
#undef QK_DPBUSD
}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

bool cpuHas(int lvl) {
    if (lvl == Portable) return true;
#ifdef QK_X86
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (lvl == Avx2) return avx2;
    if (lvl == AvxVnni) return avx2 && __builtin_cpu_supports("avxvnni");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    if (lvl == Avx512) return avx512;
    if (lvl == Amx) return avx512 && amx::usable();
#endif
    return false;
}

const char* const kNames[] = {"portable", "avx2", "avxvnni", "avx512", "amx"};

// The cap HYBRIDINFERENCE_KERNELS sets: -1 when unset, -2 when it names no level.
int envCap() {
    const char* forced = std::getenv("HYBRIDINFERENCE_PORTABLE_KERNELS");
    if (forced && forced[0] == '1') return Portable;
    const char* v = std::getenv("HYBRIDINFERENCE_KERNELS");
    if (!v || !*v) return -1;
    for (int i = 0; i <= Amx; i++) {
        if (std::strcmp(v, kNames[i]) == 0) return i;
    }
    return -2;
}

Level detect() {
    int cap = envCap();
    if (cap < 0) cap = Amx;
    for (int l = cap; l > Portable; l--) {
        if (cpuHas(l)) return static_cast<Level>(l);
    }
    return Portable;
}

const Level kLevel = detect();

using DotFn = float (*)(uint32_t, const uint8_t*, const uint8_t*, int64_t);
using IntsFn = void (*)(uint32_t, const uint8_t*, const uint8_t*, int64_t, int32_t*);

#ifdef QK_X86
// The avx512 and amx levels' dot product: the rows-in-lanes kernel of amx.h for one row and one vector, which
// gives the bits the tile product gives that row and vector among any others.
float lanesDot(uint32_t type, const uint8_t* row, const uint8_t* xq, int64_t n) {
    int64_t elems, bytes;
    gguf::blockInfo(type, elems, bytes);
    amx::Packed packed;
    float y = 0;
    amx::multiply(nullptr, type, row, n / elems * bytes, 1, n, xq, inputBytes(type, n), 1, &y, packed, false);
    return y;
}
#endif

DotFn dotFor(int lvl) {
#ifdef QK_X86
    if (lvl == Avx512 || lvl == Amx) return lanesDot;
    if (lvl == Avx2) return avx2::dot;
    if (lvl == AvxVnni) return avxvnni::dot;
#endif
    (void)lvl;
    return portable::dot;
}

IntsFn intsFor(int lvl) {
#ifdef QK_X86
    if (lvl == Avx2) return avx2::ints;
    if (lvl == AvxVnni) return avxvnni::ints;
    if (lvl == Avx512 || lvl == Amx) return avx512::ints;
#endif
    (void)lvl;
    return portable::ints;
}

const DotFn kDot = dotFor(kLevel);

template <int N>
void quantizeBlock(const float* x, int8_t* q, float& d) {
    float amax = 0;
    for (int i = 0; i < N; i++) {
        const float a = std::fabs(x[i]);
        amax = a > amax ? a : amax;
    }
    d = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    for (int i = 0; i < N; i++) {
        // Round to nearest, ties to even, by adding and subtracting 1.5 * 2^23 (|x * id| <= 127).
        float v = (x[i] * id + 12582912.0f) - 12582912.0f;
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        q[i] = static_cast<int8_t>(v);
    }
}

#ifdef QK_X86
// quantizeBlock's bits, 16 values per instruction: the same maximum, scale and float product, rounded to
// nearest even by the rounding instruction (what adding and subtracting 1.5 * 2^23 does), and the sums of
// each 16 (sums16) or of the whole 32 (sum32) of the integers. (The masked forms of the intrinsics: the
// plain ones trip GCC's uninitialized-value warning on their undefined pass-through.)
__attribute__((target("avx512f"))) inline float maxLanes(__m512 v) {
    v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_permute_ps(0xFFFF, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_maskz_permute_ps(0xFFFF, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtss_f32(v);
}

__attribute__((target("avx512f"))) inline int32_t sumLanes(__m512i v) {
    v = _mm512_add_epi32(v, _mm512_maskz_shuffle_i32x4(0xFFFF, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_epi32(v, _mm512_maskz_shuffle_i32x4(0xFFFF, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_add_epi32(v, _mm512_maskz_shuffle_epi32(0xFFFF, v, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(1, 0, 3, 2))));
    v = _mm512_add_epi32(v, _mm512_maskz_shuffle_epi32(0xFFFF, v, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(2, 3, 0, 1))));
    return _mm_cvtsi128_si32(_mm512_maskz_extracti32x4_epi32(0xF, v, 0));
}

template <int N>
__attribute__((target("avx512f,avx512bw"))) void quantizeBlock512(const float* x, int8_t* q, float& d, int16_t* sums16, int32_t* sum32) {
    const __m512i signless = _mm512_set1_epi32(0x7FFFFFFF);
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < N; i += 16) {
        m = _mm512_maskz_max_ps(0xFFFF, m, _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(_mm512_loadu_ps(x + i)), signless)));
    }
    const float amax = maxLanes(m);
    d = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    __m512i total = _mm512_setzero_si512();
    for (int i = 0; i < N; i += 16) {
        __m512 v = _mm512_maskz_roundscale_ps(0xFFFF, _mm512_mul_ps(_mm512_loadu_ps(x + i), id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_maskz_min_ps(0xFFFF, _mm512_maskz_max_ps(0xFFFF, v, lo), hi);
        const __m512i w = _mm512_maskz_cvtps_epi32(0xFFFF, v);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_maskz_cvtepi32_epi8(0xFFFF, w));
        if (sums16) sums16[i / 16] = static_cast<int16_t>(sumLanes(w));
        if (sum32) total = _mm512_add_epi32(total, w);
    }
    if (sum32) *sum32 = sumLanes(total);
}

// At the avx512 level and above (so that HYBRIDINFERENCE_KERNELS caps this too).
const bool kQuantizeWide = kLevel >= Avx512;
#endif

}  // namespace

Level level() { return kLevel; }

const char* levelName(int lvl) { return lvl >= 0 && lvl <= Amx ? kNames[lvl] : "unknown"; }

bool available(int lvl) {
#ifndef QK_X86
    if (lvl != Portable) return false;
#endif
    return lvl >= Portable && lvl <= Amx && cpuHas(lvl);
}

void checkEnvironment() {
    if (envCap() == -2) {
        throw gguf::Error(std::string("HYBRIDINFERENCE_KERNELS is '") + std::getenv("HYBRIDINFERENCE_KERNELS") +
                          "'; expected portable, avx2, avxvnni, avx512 or amx");
    }
}

bool integerType(uint32_t type) {
    switch (type) {
        case gguf::Q8_0: case gguf::Q4_0: case gguf::Q4_1: case gguf::Q4_K: case gguf::Q5_K: case gguf::Q6_K: return true;
        default: return false;
    }
}

size_t inputBytes(uint32_t type, int64_t n) {
    return blockOf256(type) ? static_cast<size_t>(n / 256) * sizeof(Block256) : static_cast<size_t>(n / 32) * sizeof(Block32);
}

void quantize(uint32_t type, const float* x, uint8_t* out, int64_t n, bool portable) {
#ifdef QK_X86
    if (kQuantizeWide && !portable) {
        if (blockOf256(type)) {
            Block256* a = reinterpret_cast<Block256*>(out);
            for (int64_t b = 0; b < n / 256; b++) quantizeBlock512<256>(x + 256 * b, a[b].q, a[b].d, a[b].bsums, nullptr);
        } else {
            Block32* a = reinterpret_cast<Block32*>(out);
            for (int64_t b = 0; b < n / 32; b++) quantizeBlock512<32>(x + 32 * b, a[b].q, a[b].d, nullptr, &a[b].sum);
        }
        return;
    }
#endif
    if (blockOf256(type)) {
        Block256* a = reinterpret_cast<Block256*>(out);
        for (int64_t b = 0; b < n / 256; b++) {
            quantizeBlock<256>(x + 256 * b, a[b].q, a[b].d);
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int i = 16 * g; i < 16 * (g + 1); i++) s += a[b].q[i];
                a[b].bsums[g] = static_cast<int16_t>(s);
            }
        }
    } else {
        Block32* a = reinterpret_cast<Block32*>(out);
        for (int64_t b = 0; b < n / 32; b++) {
            quantizeBlock<32>(x + 32 * b, a[b].q, a[b].d);
            int s = 0;
            for (int i = 0; i < 32; i++) s += a[b].q[i];
            a[b].sum = s;
        }
    }
}

float dot(uint32_t type, const uint8_t* row, const uint8_t* xq, int64_t n) { return kDot(type, row, xq, n); }

int64_t intCount(uint32_t type, int64_t n) {
    if (type == gguf::Q6_K) return n / 16;
    return n / 32;
}

float dotAt(int lvl, uint32_t type, const uint8_t* row, const uint8_t* xq, int64_t n, int32_t* ints) {
    if (!available(lvl)) throw gguf::Error(std::string("kernel level ") + levelName(lvl) + " is not available on this processor");
    if (!integerType(type)) throw gguf::Error(std::string("type ") + gguf::typeName(type) + " has no integer dot product");
    if (ints) intsFor(lvl)(type, row, xq, n, ints);
    return dotFor(lvl)(type, row, xq, n);
}

}  // namespace qk
