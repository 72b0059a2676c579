#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>

#include "gguf.h"
#include "quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define HI_X86 1
#endif

namespace kern {

float f16ToF32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            // Subnormal half: normalize it.
            exp = 127 - 15 + 1;
            while ((mant & 0x400) == 0) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3FF;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32ToF16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t a = x & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00 | (a > 0x7F800000u ? 0x200 | ((a >> 13) & 0x3FF) : 0));
    // 65520 and above round to infinity (65504 is the largest finite half).
    if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);
    if (a < 0x38800000u) {
        // Below the smallest normal half (2^-14): a subnormal in units of 2^-24; 2^-25 and less round to 0.
        if (a <= 0x33000000u) return static_cast<uint16_t>(sign);
        const uint32_t e = a >> 23, m = (a & 0x7FFFFF) | 0x800000;
        const uint32_t shift = 126 - e;
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1))) r++;
        return static_cast<uint16_t>(sign | r);
    }
    uint32_t r = (a >> 13) - (112u << 10);
    const uint32_t rem = a & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return static_cast<uint16_t>(sign | r);
}

static inline uint16_t rd16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// ---- portable kernels ----------------------------------------------------------------------------

static float dotF32Plain(const float* a, const float* b, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

// One Q4_K (144 bytes) or Q5_K (176 bytes) super-block to 256 floats: Q5_K adds a fifth bit per value
// from qh (bit 2c for the low nibbles of chunk c, 2c+1 for the high ones).
template <bool Five>
static void dequantK45(const uint8_t* b, float* y) {
    const float d = f16ToF32(rd16(b));
    const float dmin = f16ToF32(rd16(b + 2));
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (Five ? 48 : 16);
    for (int c = 0; c < 4; c++) {
        uint8_t sc, m;
        scaleMinK4(2 * c, scales, sc, m);
        const float d1 = d * sc, m1 = dmin * m;
        scaleMinK4(2 * c + 1, scales, sc, m);
        const float d2 = d * sc, m2 = dmin * m;
        const uint8_t* q = qs + 32 * c;
        for (int l = 0; l < 32; l++) {
            const int h0 = Five ? ((qh[l] >> (2 * c)) & 1) << 4 : 0;
            const int h1 = Five ? ((qh[l] >> (2 * c + 1)) & 1) << 4 : 0;
            y[64 * c + l] = d1 * ((q[l] & 0xF) | h0) - m1;
            y[64 * c + 32 + l] = d2 * ((q[l] >> 4) | h1) - m2;
        }
    }
}

// One Q6_K super-block (210 bytes) to 256 floats.
static void dequantQ6K(const uint8_t* b, float* y) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = f16ToF32(rd16(b + 208));
    for (int h = 0; h < 2; h++) {
        const uint8_t* l8 = ql + 64 * h;
        const uint8_t* h8 = qh + 32 * h;
        const int8_t* s8 = sc + 8 * h;
        float* out = y + 128 * h;
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = static_cast<int>((l8[l] & 0xF) | (((h8[l] >> 0) & 3) << 4)) - 32;
            int q2 = static_cast<int>((l8[l + 32] & 0xF) | (((h8[l] >> 2) & 3) << 4)) - 32;
            int q3 = static_cast<int>((l8[l] >> 4) | (((h8[l] >> 4) & 3) << 4)) - 32;
            int q4 = static_cast<int>((l8[l + 32] >> 4) | (((h8[l] >> 6) & 3) << 4)) - 32;
            out[l] = d * s8[is] * q1;
            out[l + 32] = d * s8[is + 2] * q2;
            out[l + 64] = d * s8[is + 4] * q3;
            out[l + 96] = d * s8[is + 6] * q4;
        }
    }
}

// One Q4_0 block (18 bytes) to 32 floats: low nibbles are the first half, high nibbles the second.
static void dequantQ40(const uint8_t* b, float* y) {
    const float d = f16ToF32(rd16(b));
    for (int j = 0; j < 16; j++) {
        y[j] = d * ((b[2 + j] & 0xF) - 8);
        y[j + 16] = d * ((b[2 + j] >> 4) - 8);
    }
}

// One Q4_1 block (20 bytes) to 32 floats: a scale and a minimum.
static void dequantQ41(const uint8_t* b, float* y) {
    const float d = f16ToF32(rd16(b));
    const float m = f16ToF32(rd16(b + 2));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (b[4 + j] & 0xF) + m;
        y[j + 16] = d * (b[4 + j] >> 4) + m;
    }
}

static float dotF16Plain(const uint8_t* row, const float* x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += f16ToF32(rd16(row + 2 * i)) * x[i];
    return s;
}

static float dotQ80Plain(const uint8_t* row, const float* x, int64_t n) {
    float s = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t* blk = row + 34 * b;
        const float d = f16ToF32(rd16(blk));
        const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
        float t = 0;
        for (int i = 0; i < 32; i++) t += q[i] * x[32 * b + i];
        s += d * t;
    }
    return s;
}

// ---- AVX2 kernels --------------------------------------------------------------------------------

#ifdef HI_X86
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    __m128 sums = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, sums);
    sums = _mm_add_ss(sums, sh);
    return _mm_cvtss_f32(sums);
}

// Bytes of weights the row dots fetch ahead of what they read, into the rows after: one thread alone
// otherwise keeps too few reads in flight to stream the weights at the memory's pace.
constexpr int64_t kAhead = 2048;

__attribute__((target("avx2,fma"))) static float dotF32Avx2(const float* a, const float* b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(a + i) + kAhead, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(a + i) + kAhead + 64, _MM_HINT_T0);
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma,f16c"))) static float dotF16Avx2(const uint8_t* row, const float* x, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i + 16)));
        acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
    }
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += f16ToF32(rd16(row + 2 * i)) * x[i];
    return s;
}

// Four chains of 16: the conversions and multiply-adds of 64 values in flight, where the weights come from
// the cache faster than two chains of 8 take them. (GCC 12's AVX-512 headers trip its own uninitialized-use
// warnings.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f,avx2,fma,f16c"))) static float dotF16Avx512(const uint8_t* row, const float* x, int64_t n) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(row + 2 * i + kAhead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(row + 2 * i + kAhead + 64), _MM_HINT_T0);
        for (int k = 0; k < 4; k++) {
            const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * (i + 16 * k))));
            acc[k] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + i + 16 * k), acc[k]);
        }
    }
    for (; i + 16 <= n; i += 16) {
        acc[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i))), _mm512_loadu_ps(x + i), acc[0]);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    for (; i < n; i++) s += f16ToF32(rd16(row + 2 * i)) * x[i];
    return s;
}
#pragma GCC diagnostic pop

__attribute__((target("avx2,fma,f16c"))) static float dotQ80Avx2(const uint8_t* row, const float* x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t* blk = row + 34 * b;
        const __m256 d = _mm256_set1_ps(f16ToF32(rd16(blk)));
        const uint8_t* q = blk + 2;
        const float* xb = x + 32 * b;
        __m256 t = _mm256_setzero_ps();
        for (int g = 0; g < 4; g++) {
            __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * g));
            __m256 qf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
            t = _mm256_fmadd_ps(qf, _mm256_loadu_ps(xb + 8 * g), t);
        }
        acc = _mm256_fmadd_ps(d, t, acc);
    }
    return hsum256(acc);
}

// Q4_K and Q5_K without a dequantized copy: w = d*sc*q - dmin*m built in registers, then fused into the dot.
// Q5_K takes the fifth bit of each value from qh (bit 2c for the low nibbles of chunk c, 2c+1 for the high
// ones).
template <bool Five>
__attribute__((target("avx2,fma,f16c"))) static float dotK45Avx2(const uint8_t* row, const float* x, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi32(0xF), one = _mm256_set1_epi32(1);
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t* blk = row + (Five ? 176 : 144) * b;
        const float d = f16ToF32(rd16(blk));
        const float dmin = f16ToF32(rd16(blk + 2));
        const uint8_t* scales = blk + 4;
        const uint8_t* qh = blk + 16;
        const uint8_t* qs = blk + (Five ? 48 : 16);
        const float* xb = x + 256 * b;
        for (int c = 0; c < 4; c++) {
            uint8_t sc, m;
            scaleMinK4(2 * c, scales, sc, m);
            const __m256 s1 = _mm256_set1_ps(d * sc), m1 = _mm256_set1_ps(dmin * m);
            scaleMinK4(2 * c + 1, scales, sc, m);
            const __m256 s2 = _mm256_set1_ps(d * sc), m2 = _mm256_set1_ps(dmin * m);
            const __m128i shLo = _mm_cvtsi32_si128(2 * c), shHi = _mm_cvtsi32_si128(2 * c + 1);
            const uint8_t* q = qs + 32 * c;
            const float* x1 = xb + 64 * c;
            const float* x2 = x1 + 32;
            for (int g = 0; g < 4; g++) {
                const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * g)));
                __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_srli_epi32(v, 4);
                if (Five) {
                    const __m256i h = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qh + 8 * g)));
                    lo = _mm256_or_si256(lo, _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(h, shLo), one), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(h, shHi), one), 4));
                }
                acc0 = _mm256_fmadd_ps(_mm256_fmsub_ps(s1, _mm256_cvtepi32_ps(lo), m1), _mm256_loadu_ps(x1 + 8 * g), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_fmsub_ps(s2, _mm256_cvtepi32_ps(hi), m2), _mm256_loadu_ps(x2 + 8 * g), acc1);
            }
        }
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

// Q4_0 and Q4_1: 16 bytes of nibbles, low nibbles the first 16 values; Q4_1 adds m times the sum of x.
template <bool Min>
__attribute__((target("avx2,fma,f16c"))) static float dotQ4Avx2(const uint8_t* row, const float* x, int64_t n) {
    const int64_t bytes = Min ? 20 : 18;
    __m256 acc = _mm256_setzero_ps(), accMin = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi32(0xF), offset = _mm256_set1_epi32(Min ? 0 : 8);
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t* blk = row + bytes * b;
        const uint8_t* q = blk + (Min ? 4 : 2);
        const float* xb = x + 32 * b;
        __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
        for (int g = 0; g < 2; g++) {
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * g)));
            __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v, low4), offset));
            __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v, 4), offset));
            t0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(xb + 8 * g), t0);
            t1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(xb + 16 + 8 * g), t1);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16ToF32(rd16(blk))), _mm256_add_ps(t0, t1), acc);
        if (Min) {
            const __m256 sx = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xb), _mm256_loadu_ps(xb + 8)),
                                            _mm256_add_ps(_mm256_loadu_ps(xb + 16), _mm256_loadu_ps(xb + 24)));
            accMin = _mm256_fmadd_ps(_mm256_set1_ps(f16ToF32(rd16(blk + 2))), sx, accMin);
        }
    }
    return hsum256(_mm256_add_ps(acc, accMin));
}

// Q6_K the same way: six-bit values assembled from ql and qh in registers.
__attribute__((target("avx2,fma,f16c"))) static float dotQ6KAvx2(const uint8_t* row, const float* x, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi32(0xF), two = _mm256_set1_epi32(3), off = _mm256_set1_epi32(32);
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t* blk = row + 210 * b;
        const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
        const float d = f16ToF32(rd16(blk + 208));
        for (int h = 0; h < 2; h++) {
            const uint8_t* ql = blk + 64 * h;
            const uint8_t* qh = blk + 128 + 32 * h;
            const float* xb = x + 256 * b + 128 * h;
            for (int l = 0; l < 32; l += 8) {
                __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l)));
                __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l + 32)));
                __m256i vh = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qh + l)));
                __m256i q1 = _mm256_or_si256(_mm256_and_si256(v0, low4), _mm256_slli_epi32(_mm256_and_si256(vh, two), 4));
                __m256i q2 = _mm256_or_si256(_mm256_and_si256(v1, low4),
                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 2), two), 4));
                __m256i q3 = _mm256_or_si256(_mm256_srli_epi32(v0, 4),
                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 4), two), 4));
                __m256i q4 = _mm256_or_si256(_mm256_srli_epi32(v1, 4),
                                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(vh, 6), two), 4));
                const int is = 8 * h + l / 16;
                const __m256 d1 = _mm256_set1_ps(d * sc[is]), d2 = _mm256_set1_ps(d * sc[is + 2]);
                const __m256 d3 = _mm256_set1_ps(d * sc[is + 4]), d4 = _mm256_set1_ps(d * sc[is + 6]);
                acc0 = _mm256_fmadd_ps(_mm256_mul_ps(d1, _mm256_cvtepi32_ps(_mm256_sub_epi32(q1, off))), _mm256_loadu_ps(xb + l), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_mul_ps(d2, _mm256_cvtepi32_ps(_mm256_sub_epi32(q2, off))), _mm256_loadu_ps(xb + 32 + l), acc1);
                acc0 = _mm256_fmadd_ps(_mm256_mul_ps(d3, _mm256_cvtepi32_ps(_mm256_sub_epi32(q3, off))), _mm256_loadu_ps(xb + 64 + l), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_mul_ps(d4, _mm256_cvtepi32_ps(_mm256_sub_epi32(q4, off))), _mm256_loadu_ps(xb + 96 + l), acc1);
            }
        }
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

__attribute__((target("avx2,fma,f16c"))) static void toF16RowAvx2(const float* in, uint16_t* out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) out[i] = f32ToF16(in[i]);
}

__attribute__((target("avx2,fma,f16c"))) static void addScaledF16Avx2(float* out, const uint16_t* v, float w, int64_t n) {
    const __m256 wv = _mm256_set1_ps(w);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(wv, x, _mm256_loadu_ps(out + i)));
    }
    for (; i < n; i++) out[i] += w * f16ToF32(v[i]);
}
#endif

static bool detectAvx2() {
    // HYBRIDINFERENCE_PORTABLE_KERNELS=1 forces the portable kernels, so that tests cover them too.
    const char* forced = std::getenv("HYBRIDINFERENCE_PORTABLE_KERNELS");
    if (forced && forced[0] == '1') return false;
    const char* level = std::getenv("HYBRIDINFERENCE_KERNELS");
    if (level && std::strcmp(level, "portable") == 0) return false;
#ifdef HI_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

static const bool kAvx2 = detectAvx2();

// The AVX-512 kernels here serve at the avx512 level and above (so that HYBRIDINFERENCE_KERNELS caps them).
static bool wide() { return kAvx2 && qk::level() >= qk::Avx512; }

const char* features() {
    // The float kernels, then the integer dot products' level when it is not the portable one.
    static const std::string s = std::string(kAvx2 ? "avx2 fma f16c" : "portable") +
                                 (qk::level() == qk::Portable ? "" : std::string(", int8 ") + qk::levelName(qk::level()));
    return s.c_str();
}

void toF16Row(const float* in, uint16_t* out, int64_t n) {
#ifdef HI_X86
    if (kAvx2) return toF16RowAvx2(in, out, n);
#endif
    for (int64_t i = 0; i < n; i++) out[i] = f32ToF16(in[i]);
}

void addScaledF16(float* out, const uint16_t* v, float w, int64_t n) {
#ifdef HI_X86
    if (kAvx2) return addScaledF16Avx2(out, v, w, n);
#endif
    for (int64_t i = 0; i < n; i++) out[i] += w * f16ToF32(v[i]);
}

float dotF32(const float* a, const float* b, int64_t n) {
#ifdef HI_X86
    if (kAvx2) return dotF32Avx2(a, b, n);
#endif
    return dotF32Plain(a, b, n);
}

#ifdef HI_X86
__attribute__((target("avx2,fma"))) static float sumF32Avx2(const float* a, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i];
    return s;
}
#endif

#ifdef HI_X86
// The largest of n >= 1 floats, 32 at a time.
__attribute__((target("avx2"))) static float maxF32Avx2(const float* a, int64_t n) {
    __m256 m0 = _mm256_set1_ps(a[0]), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(a + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(a + i + 8));
        m2 = _mm256_max_ps(m2, _mm256_loadu_ps(a + i + 16));
        m3 = _mm256_max_ps(m3, _mm256_loadu_ps(a + i + 24));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
    float m = lanes[0];
    for (int l = 1; l < 8; l++) m = std::max(m, lanes[l]);
    for (; i < n; i++) m = std::max(m, a[i]);
    return m;
}
#endif

// The largest of n >= 1 floats.
static float maxF32(const float* a, int64_t n) {
#ifdef HI_X86
    if (kAvx2) return maxF32Avx2(a, n);
#endif
    float m = a[0];
    for (int64_t i = 1; i < n; i++) m = std::max(m, a[i]);
    return m;
}

#ifdef HI_X86
// e^x for x <= 0 (softmax's exponents after the maximum is subtracted), to about 2 ulp: x = k ln 2 + r with
// |r| <= ln 2 / 2, e^r by its degree-7 minimax polynomial, 2^k into the exponent bits. Below -87 the result
// is flushed to 0, as e^x is then under float's smallest normal.
namespace expc {
constexpr float kFloor = -87.0f, kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
// The polynomial's coefficients, highest first: p(r) = 1 + r + r^2 (c0 r^5 + ... + c5).
constexpr float kPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
}  // namespace expc

__attribute__((target("avx2,fma"))) static inline __m256 expNonPositiveAvx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(expc::kFloor);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(expc::kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(expc::kLn2Hi), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(expc::kLn2Lo), r);
    __m256 p = _mm256_set1_ps(expc::kPoly[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(expc::kPoly[i]));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

__attribute__((target("avx2,fma,f16c"))) static inline __m256 load8(const uint8_t* p, bool f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))) : _mm256_loadu_ps(reinterpret_cast<const float*>(p));
}

// att[u] = e^(att[u] - maxv) for u < n (maxv their maximum), 8 at a time; returns their sum.
__attribute__((target("avx2,fma"))) static float expShifted(float* att, int64_t n, float maxv) {
    const __m256 mv = _mm256_set1_ps(maxv);
    __m256 sv = _mm256_setzero_ps();
    int64_t u = 0;
    for (; u + 8 <= n; u += 8) {
        const __m256 e = expNonPositiveAvx2(_mm256_sub_ps(_mm256_loadu_ps(att + u), mv));
        _mm256_storeu_ps(att + u, e);
        sv = _mm256_add_ps(sv, e);
    }
    float sum = hsum256(sv);
    for (; u < n; u++) {
        att[u] = std::exp(att[u] - maxv);
        sum += att[u];
    }
    return sum;
}

// attend for head sizes that are multiples of 8: the scores' dot products and the weighted sum of values in
// 8-float vectors (the values' sum in 64-float stripes held in registers across all positions), the
// exponentials in vectors too.
__attribute__((target("avx2,fma,f16c"))) static void attendAvx2(const float* q, const uint8_t* kBase, const uint8_t* vBase, size_t stride,
                                                            bool f16, int64_t hd, int64_t n, float scale, float* att, float* out) {
    const size_t elem = f16 ? 2 : 4;
    float maxv = -INFINITY;
    for (int64_t u = 0; u < n; u++) {
        const uint8_t* k = kBase + u * stride;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= hd; i += 16) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i * elem, f16), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load8(k + (i + 8) * elem, f16), s1);
        }
        if (i < hd) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i * elem, f16), s0);
        att[u] = hsum256(_mm256_add_ps(s0, s1)) * scale;
        maxv = std::max(maxv, att[u]);
    }
    const float inv = 1.0f / expShifted(att, n, maxv);
    for (int64_t c = 0; c < hd; c += 64) {
        const int64_t width = std::min<int64_t>(64, hd - c), vecs = width / 8;
        __m256 acc[8];
        for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
        for (int64_t t = 0; t < n; t++) {
            const __m256 w = _mm256_set1_ps(att[t] * inv);
            const uint8_t* v = vBase + t * stride + c * elem;
            for (int j = 0; j < vecs; j++) acc[j] = _mm256_fmadd_ps(w, load8(v + 8 * j * elem, f16), acc[j]);
        }
        for (int j = 0; j < vecs; j++) _mm256_storeu_ps(out + c + 8 * j, acc[j]);
    }
}
#endif

void attend(const float* q, const uint8_t* kBase, const uint8_t* vBase, size_t stride, bool f16, int64_t hd, int64_t n, float scale,
            float* att, float* out) {
#ifdef HI_X86
    if (kAvx2 && hd % 8 == 0) return attendAvx2(q, kBase, vBase, stride, f16, hd, n, scale, att, out);
#endif
    float maxv = -INFINITY;
    for (int64_t u = 0; u < n; u++) {
        const uint8_t* k = kBase + u * stride;
        att[u] = (f16 ? dot(gguf::F16, k, q, hd) : dotF32(q, reinterpret_cast<const float*>(k), hd)) * scale;
        maxv = std::max(maxv, att[u]);
    }
    float sum = 0;
    for (int64_t u = 0; u < n; u++) {
        att[u] = std::exp(att[u] - maxv);
        sum += att[u];
    }
    std::fill(out, out + hd, 0.0f);
    for (int64_t u = 0; u < n; u++) {
        const float w = att[u] / sum;
        const uint8_t* v = vBase + u * stride;
        if (f16) {
            addScaledF16(out, reinterpret_cast<const uint16_t*>(v), w, hd);
        } else {
            const float* vt = reinterpret_cast<const float*>(v);
            for (int64_t i = 0; i < hd; i++) out[i] += w * vt[i];
        }
    }
}

#ifdef HI_X86
// expNonPositiveAvx2 in 16 lanes (the same steps, so the same bits per lane). The masked forms of the
// intrinsics: the plain ones trip GCC's uninitialized-value warning on their undefined pass-through.
__attribute__((target("avx512f"))) static inline __m512 expNonPositive512(__m512 x) {
    const __m512 lo = _mm512_set1_ps(expc::kFloor);
    const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_maskz_max_ps(0xFFFF, x, lo);
    const __m512 k = _mm512_maskz_roundscale_ps(0xFFFF, _mm512_mul_ps(x, _mm512_set1_ps(expc::kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(expc::kLn2Hi), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(expc::kLn2Lo), r);
    __m512 p = _mm512_set1_ps(expc::kPoly[0]);
    for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(expc::kPoly[i]));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i bits = _mm512_maskz_slli_epi32(0xFFFF, _mm512_add_epi32(_mm512_maskz_cvtps_epi32(0xFFFF, k), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), _mm512_mul_ps(p, _mm512_castsi512_ps(bits)));
}

__attribute__((target("avx512f,f16c"))) static inline __m512 load16(const uint8_t* p, bool f16) {
    return f16 ? _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))
               : _mm512_loadu_ps(reinterpret_cast<const float*>(p));
}

__attribute__((target("avx512f,avx2"))) static inline float sum16(__m512 v) {
    const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(v), 0));
    const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(v), 1));
    return hsum256(_mm256_add_ps(lo, hi));
}

// Q queries of head size 16 H over the same cached rows: each key row is loaded once for all of them (its
// H vectors in registers, each query's dot product one chain of H fused multiply-adds), each value row
// once per 16 of its values for all of them (the Q weighted sums of the head in Q * H registers).
template <int H, int Q>
__attribute__((target("avx512f,avx2,fma,f16c"))) static void attendMany512(const Query* qs, const uint8_t* kBase, const uint8_t* vBase,
                                                                       size_t stride, bool f16, float scale) {
    const size_t elem = f16 ? 2 : 4;
    int64_t most = 0;
    float maxv[Q];
    for (int i = 0; i < Q; i++) {
        most = qs[i].n > most ? qs[i].n : most;
        maxv[i] = -INFINITY;
    }
    for (int64_t u = 0; u < most; u++) {
        const uint8_t* k = kBase + u * stride;
        // The value row the second loop reads, fetched while this one computes: it then finds the values in
        // the cache rather than waiting on memory row by row (a decode step's caches are rarely still cached,
        // the weights having streamed through since).
        for (size_t at = 0; at < 16 * H * elem; at += 64) _mm_prefetch(reinterpret_cast<const char*>(vBase + u * stride + at), _MM_HINT_T0);
        __m512 kv[H];
#pragma GCC unroll 8
        for (int j = 0; j < H; j++) kv[j] = load16(k + 16 * j * elem, f16);
#pragma GCC unroll 8
        for (int i = 0; i < Q; i++) {
            if (u >= qs[i].n) continue;
            __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(qs[i].q), kv[0]);
#pragma GCC unroll 8
            for (int j = 1; j < H; j++) acc = _mm512_fmadd_ps(_mm512_loadu_ps(qs[i].q + 16 * j), kv[j], acc);
            const float a = sum16(acc) * scale;
            qs[i].att[u] = a;
            maxv[i] = a > maxv[i] ? a : maxv[i];
        }
    }
    float inv[Q];
    for (int i = 0; i < Q; i++) inv[i] = 1.0f / expShifted(qs[i].att, qs[i].n, maxv[i]);
    __m512 acc[Q][H];
#pragma GCC unroll 8
    for (int i = 0; i < Q; i++)
#pragma GCC unroll 8
        for (int j = 0; j < H; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t u = 0; u < most; u++) {
        const uint8_t* v = vBase + u * stride;
        __m512 w[Q];
        bool live[Q];
#pragma GCC unroll 8
        for (int i = 0; i < Q; i++) {
            live[i] = u < qs[i].n;
            w[i] = _mm512_set1_ps(live[i] ? qs[i].att[u] * inv[i] : 0.0f);
        }
#pragma GCC unroll 8
        for (int j = 0; j < H; j++) {
            const __m512 vj = load16(v + 16 * j * elem, f16);
#pragma GCC unroll 8
            for (int i = 0; i < Q; i++) {
                if (live[i]) acc[i][j] = _mm512_fmadd_ps(w[i], vj, acc[i][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < Q; i++)
#pragma GCC unroll 8
        for (int j = 0; j < H; j++) _mm512_storeu_ps(qs[i].out + 16 * j, acc[i][j]);
}

using AttendManyFn = void (*)(const Query*, const uint8_t*, const uint8_t*, size_t, bool, float);
// By head size 64 (H = 4) or 128 (H = 8), then count - 1: 24 accumulators at most.
static const AttendManyFn kAttend64[kAttendWidthMost] = {attendMany512<4, 1>, attendMany512<4, 2>, attendMany512<4, 3>,
                                          attendMany512<4, 4>, attendMany512<4, 5>, attendMany512<4, 6>};
static const AttendManyFn kAttend128[3] = {attendMany512<8, 1>, attendMany512<8, 2>, attendMany512<8, 3>};
#endif

// silu(x) * u with e = e^-|x|: x / (1 + e) for x >= 0 (as ggml computes it, x / (1 + e^-x)), x e / (1 + e)
// below, where e^-x could overflow.
static inline float siluMulOne(float x, float u) {
    const float e = std::exp(-std::fabs(x));
    return (x >= 0 ? x : x * e) / (1.0f + e) * u;
}

#ifdef HI_X86
__attribute__((target("avx512f"))) static void siluMul512(float* g, const float* u, int64_t n) {
    const __m512i signless = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 a = _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(x), signless));
        const __m512 e = expNonPositive512(_mm512_sub_ps(zero, a));
        const __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ), _mm512_mul_ps(x, e), x);
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(num, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = siluMulOne(g[i], u[i]);
}

__attribute__((target("avx2,fma"))) static void siluMulAvx2(float* g, const float* u, int64_t n) {
    const __m256 signless = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = expNonPositiveAvx2(_mm256_sub_ps(zero, _mm256_and_ps(x, signless)));
        const __m256 num = _mm256_blendv_ps(_mm256_mul_ps(x, e), x, _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(num, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = siluMulOne(g[i], u[i]);
}
#endif

void siluMul(float* g, const float* u, int64_t n) {
#ifdef HI_X86
    if (wide()) return siluMul512(g, u, n);
    if (kAvx2) return siluMulAvx2(g, u, n);
#endif
    for (int64_t i = 0; i < n; i++) g[i] = siluMulOne(g[i], u[i]);
}

// e^((x - best) * scale) one value at a time: the tails of the vector loops, and processors without AVX2.
static inline float expWeightOne(float x, float best, float scale) { return std::exp((x - best) * scale); }

#ifdef HI_X86
// The sums of a register's double lanes, in pairs: ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)).
__attribute__((target("avx512f"))) static inline double hsum512d(__m512d v) {
    alignas(64) double lanes[8];
    _mm512_store_pd(lanes, v);
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

__attribute__((target("avx2"))) static inline double hsum256d(__m256d v) {
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, v);
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

__attribute__((target("avx512f,avx2,fma"))) static double expWeights512(const float* x, int64_t n, float best, float scale, float* out) {
    const __m512 b = _mm512_set1_ps(best), s = _mm512_set1_ps(scale);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = expNonPositive512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), b), s));
        _mm512_storeu_ps(out + i, e);
        // The masked extracts: the plain ones trip GCC's uninitialized-value warning (see expNonPositive512).
        s0 = _mm512_add_pd(s0, _mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(e), 0))));
        s1 = _mm512_add_pd(s1, _mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(e), 1))));
    }
    double sum = hsum512d(_mm512_add_pd(s0, s1));
    for (; i < n; i++) sum += out[i] = expWeightOne(x[i], best, scale);
    return sum;
}

__attribute__((target("avx2,fma"))) static double expWeightsAvx2(const float* x, int64_t n, float best, float scale, float* out) {
    const __m256 b = _mm256_set1_ps(best), s = _mm256_set1_ps(scale);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = expNonPositiveAvx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), b), s));
        _mm256_storeu_ps(out + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = hsum256d(_mm256_add_pd(s0, s1));
    for (; i < n; i++) sum += out[i] = expWeightOne(x[i], best, scale);
    return sum;
}
#endif

double expWeights(const float* x, int64_t n, float scale, float* out) {
    const float best = maxF32(x, n);
#ifdef HI_X86
    if (wide()) return expWeights512(x, n, best, scale, out);
    if (kAvx2) return expWeightsAvx2(x, n, best, scale, out);
#endif
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += out[i] = expWeightOne(x[i], best, scale);
    return sum;
}

static bool attendsWide(int64_t hd) {
#ifdef HI_X86
    return wide() && (hd == 64 || hd == 128);
#else
    (void)hd;
    return false;
#endif
}

int attendWidth(int64_t hd) {
#ifdef HI_X86
    if (attendsWide(hd)) return static_cast<int>(hd == 64 ? std::size(kAttend64) : std::size(kAttend128));
#endif
    return 1;
}

void attendMany(const Query* queries, int count, const uint8_t* kBase, const uint8_t* vBase, size_t stride, bool f16, int64_t hd,
                float scale) {
#ifdef HI_X86
    if (attendsWide(hd)) {
        (hd == 64 ? kAttend64 : kAttend128)[count - 1](queries, kBase, vBase, stride, f16, scale);
        return;
    }
#endif
    for (int i = 0; i < count; i++) {
        const Query& q = queries[i];
        attend(q.q, kBase, vBase, stride, f16, hd, q.n, scale, q.att, q.out);
    }
}

#ifdef HI_X86
__attribute__((target("avx512f"))) static double sumSquares512(const float* x, int64_t n, int64_t& done) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        // The masked forms: the plain ones trip GCC's uninitialized-value warning on their undefined pass-through.
        const __m512d a = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i)), b = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i + 8));
        s0 = _mm512_fmadd_pd(a, a, s0);
        s1 = _mm512_fmadd_pd(b, b, s1);
    }
    done = i;
    return hsum512d(_mm512_add_pd(s0, s1));
}

__attribute__((target("avx2,fma"))) static double sumSquaresAvx2(const float* x, int64_t n, int64_t& done) {
    __m256d s[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int k = 0; k < 4; k++) {
            const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
            s[k] = _mm256_fmadd_pd(a, a, s[k]);
        }
    }
    done = i;
    return hsum256d(_mm256_add_pd(_mm256_add_pd(s[0], s[1]), _mm256_add_pd(s[2], s[3])));
}
#endif

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
    double ss = 0;
    int64_t i = 0;
#ifdef HI_X86
    if (wide()) {
        ss = sumSquares512(x, n, i);
    } else if (kAvx2) {
        ss = sumSquaresAvx2(x, n, i);
    }
#endif
    for (; i < n; i++) ss += static_cast<double>(x[i]) * x[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
    for (int64_t k = 0; k < n; k++) out[k] = x[k] * scale * w[k];
}

float sumF32(const float* a, int64_t n) {
#ifdef HI_X86
    if (kAvx2) return sumF32Avx2(a, n);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i];
    return s;
}

// The dot product through a dequantized copy: each block (32 or 256 values) to floats, then a plain dot.
template <int Elems>
static float dotViaBlocks(void (*dequant)(const uint8_t*, float*), int64_t blockBytes, const uint8_t* row,
                          const float* x, int64_t n) {
    float buf[Elems];
    float s = 0;
    for (int64_t b = 0; b < n / Elems; b++) {
        dequant(row + blockBytes * b, buf);
        s += dotF32(buf, x + Elems * b, Elems);
    }
    return s;
}

float dot(uint32_t type, const uint8_t* row, const float* x, int64_t n) {
    switch (type) {
        case gguf::F32: return dotF32(reinterpret_cast<const float*>(row), x, n);
        case gguf::F16:
#ifdef HI_X86
            if (wide()) return dotF16Avx512(row, x, n);
            if (kAvx2) return dotF16Avx2(row, x, n);
#endif
            return dotF16Plain(row, x, n);
        case gguf::Q8_0:
#ifdef HI_X86
            if (kAvx2) return dotQ80Avx2(row, x, n);
#endif
            return dotQ80Plain(row, x, n);
        case gguf::Q4_K:
#ifdef HI_X86
            if (kAvx2) return dotK45Avx2<false>(row, x, n);
#endif
            return dotViaBlocks<256>(dequantK45<false>, 144, row, x, n);
        case gguf::Q6_K:
#ifdef HI_X86
            if (kAvx2) return dotQ6KAvx2(row, x, n);
#endif
            return dotViaBlocks<256>(dequantQ6K, 210, row, x, n);
        case gguf::Q4_0:
#ifdef HI_X86
            if (kAvx2) return dotQ4Avx2<false>(row, x, n);
#endif
            return dotViaBlocks<32>(dequantQ40, 18, row, x, n);
        case gguf::Q4_1:
#ifdef HI_X86
            if (kAvx2) return dotQ4Avx2<true>(row, x, n);
#endif
            return dotViaBlocks<32>(dequantQ41, 20, row, x, n);
        case gguf::Q5_K:
#ifdef HI_X86
            if (kAvx2) return dotK45Avx2<true>(row, x, n);
#endif
            return dotViaBlocks<256>(dequantK45<true>, 176, row, x, n);
        default: return 0;
    }
}

void dequantizeRow(uint32_t type, const uint8_t* row, float* out, int64_t n) {
    switch (type) {
        case gguf::F32: std::memcpy(out, row, static_cast<size_t>(n) * 4); break;
        case gguf::F16:
            for (int64_t i = 0; i < n; i++) out[i] = f16ToF32(rd16(row + 2 * i));
            break;
        case gguf::Q8_0:
            for (int64_t b = 0; b < n / 32; b++) {
                const uint8_t* blk = row + 34 * b;
                const float d = f16ToF32(rd16(blk));
                const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
                for (int i = 0; i < 32; i++) out[32 * b + i] = d * q[i];
            }
            break;
        case gguf::Q4_K:
            for (int64_t b = 0; b < n / 256; b++) dequantK45<false>(row + 144 * b, out + 256 * b);
            break;
        case gguf::Q6_K:
            for (int64_t b = 0; b < n / 256; b++) dequantQ6K(row + 210 * b, out + 256 * b);
            break;
        case gguf::Q5_K:
            for (int64_t b = 0; b < n / 256; b++) dequantK45<true>(row + 176 * b, out + 256 * b);
            break;
        case gguf::Q4_0:
            for (int64_t b = 0; b < n / 32; b++) dequantQ40(row + 18 * b, out + 32 * b);
            break;
        case gguf::Q4_1:
            for (int64_t b = 0; b < n / 32; b++) dequantQ41(row + 20 * b, out + 32 * b);
            break;
        default: break;
    }
}

}  // namespace kern
