#include "kernels.h"

#include <cstring>

#include "gguf.h"

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

static void getScaleMinK4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
    if (j < 4) {
        d = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// One Q4_K super-block (144 bytes) to 256 floats.
static void dequantQ4K(const uint8_t* b, float* y) {
    const float d = f16ToF32(rd16(b));
    const float dmin = f16ToF32(rd16(b + 2));
    const uint8_t* scales = b + 4;
    const uint8_t* qs = b + 16;
    for (int c = 0; c < 4; c++) {
        uint8_t sc, m;
        getScaleMinK4(2 * c, scales, sc, m);
        const float d1 = d * sc, m1 = dmin * m;
        getScaleMinK4(2 * c + 1, scales, sc, m);
        const float d2 = d * sc, m2 = dmin * m;
        const uint8_t* q = qs + 32 * c;
        for (int l = 0; l < 32; l++) y[64 * c + l] = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) y[64 * c + 32 + l] = d2 * (q[l] >> 4) - m2;
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

__attribute__((target("avx2,fma"))) static float dotF32Avx2(const float* a, const float* b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
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
#endif

static bool detectAvx2() {
#ifdef HI_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

static const bool kAvx2 = detectAvx2();

bool hasAvx2() { return kAvx2; }

const char* features() { return kAvx2 ? "avx2 fma f16c" : "portable"; }

float dotF32(const float* a, const float* b, int64_t n) {
#ifdef HI_X86
    if (kAvx2) return dotF32Avx2(a, b, n);
#endif
    return dotF32Plain(a, b, n);
}

float dot(uint32_t type, const uint8_t* row, const float* x, int64_t n) {
    switch (type) {
        case gguf::F32: return dotF32(reinterpret_cast<const float*>(row), x, n);
        case gguf::F16:
#ifdef HI_X86
            if (kAvx2) return dotF16Avx2(row, x, n);
#endif
            return dotF16Plain(row, x, n);
        case gguf::Q8_0:
#ifdef HI_X86
            if (kAvx2) return dotQ80Avx2(row, x, n);
#endif
            return dotQ80Plain(row, x, n);
        case gguf::Q4_K: {
            float buf[256];
            float s = 0;
            for (int64_t b = 0; b < n / 256; b++) {
                dequantQ4K(row + 144 * b, buf);
                s += dotF32(buf, x + 256 * b, 256);
            }
            return s;
        }
        case gguf::Q6_K: {
            float buf[256];
            float s = 0;
            for (int64_t b = 0; b < n / 256; b++) {
                dequantQ6K(row + 210 * b, buf);
                s += dotF32(buf, x + 256 * b, 256);
            }
            return s;
        }
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
            for (int64_t b = 0; b < n / 256; b++) dequantQ4K(row + 144 * b, out + 256 * b);
            break;
        case gguf::Q6_K:
            for (int64_t b = 0; b < n / 256; b++) dequantQ6K(row + 210 * b, out + 256 * b);
            break;
        default: break;
    }
}

}  // namespace kern
