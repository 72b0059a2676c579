// Per-element dequantization of the weight types the CUDA backend computes with (F32, F16, Q8_0, Q4_K,
// Q6_K), and RoPE's pairing of values: plain inline functions that compile for the device (nvcc) and for
// the host (g++). The CUDA kernels decode weights in registers with them; the host build exposes them to
// tests (NativeEngine.elementDequantize), so that the block layouts are checked against the CPU kernels on
// any machine, a GPU or not.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

#if defined(__CUDACC__)
#define HI_HD __host__ __device__ __forceinline__
#else
#define HI_HD inline
#endif

namespace dq {

// ggml type ids (as gguf::TensorType) and their blocks: elements and bytes per block.
constexpr uint32_t kF32 = 0, kF16 = 1, kQ8_0 = 8, kQ4_K = 12, kQ6_K = 14;

HI_HD bool supported(uint32_t type) {
    return type == kF32 || type == kF16 || type == kQ8_0 || type == kQ4_K || type == kQ6_K;
}

HI_HD float bitsToFloat(uint32_t bits) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(bits);
#else
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
#endif
}

// IEEE half to float, exactly (subnormals included): the device's conversion instruction there.
HI_HD float half(uint16_t h) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(h));
#else
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    if (exp == 0) {
        if (mant == 0) return bitsToFloat(sign);
        exp = 127 - 15 + 1;
        while ((mant & 0x400) == 0) {
            mant <<= 1;
            exp--;
        }
        return bitsToFloat(sign | (exp << 23) | ((mant & 0x3FF) << 13));
    }
    if (exp == 0x1F) return bitsToFloat(sign | 0x7F800000u | (mant << 13));
    return bitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
#endif
}

// Two bytes at an even address as one little-endian integer: one 2-byte load on the device.
HI_HD uint16_t u16(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
    return *reinterpret_cast<const uint16_t*>(p);
#else
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
#endif
}

// The six-bit scale and minimum of sub-block j (0..7) of a Q4_K super-block, from its 12 packed bytes.
template <typename T>
HI_HD void scaleMinK4(int j, const uint8_t* q, T& d, T& m) {
    if (j < 4) {
        d = static_cast<T>(q[j] & 63);
        m = static_cast<T>(q[j + 4] & 63);
    } else {
        d = static_cast<T>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = static_cast<T>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Q8_0: blocks of 32 values, 34 bytes: an F16 scale d, then 32 int8; w = d * q.
HI_HD float q8_0(const uint8_t* row, int64_t i) {
    const uint8_t* b = row + (i >> 5) * 34;
    return half(u16(b)) * static_cast<float>(static_cast<int8_t>(b[2 + (i & 31)]));
}

// Q4_K: super-blocks of 256 values, 144 bytes: F16 d and dmin, 12 bytes of six-bit scales and minimums
// for 8 sub-blocks of 32, then 128 bytes of nibbles. Chunk c (64 values) takes bytes 32c..32c+31: the low
// nibbles are sub-block 2c, the high ones 2c+1. w = (d * scale) * q - (dmin * min).
HI_HD float q4_K(const uint8_t* row, int64_t i) {
    const uint8_t* b = row + (i >> 8) * 144;
    const int j = static_cast<int>(i & 255), c = j >> 6, hi = (j >> 5) & 1, l = j & 31;
    int sc, m;
    scaleMinK4(2 * c + hi, b + 4, sc, m);
    const int q = (b[16 + 32 * c + l] >> (4 * hi)) & 0xF;
    return half(u16(b)) * static_cast<float>(sc) * static_cast<float>(q) - half(u16(b + 2)) * static_cast<float>(m);
}

// Q6_K: super-blocks of 256 values, 210 bytes: 128 bytes of low nibbles (ql), 64 of high bit pairs (qh),
// 16 int8 scales (one per 16 values), an F16 d. Half h (128 values) uses ql[64h..], qh[32h..] and
// scales[8h..]; its quarter k (32 values, l = 0..31) takes the low nibble of ql[l + 32(k&1)] for k < 2 and
// the high one for k >= 2, and bits 2k..2k+1 of qh[l]. w = (d * scale) * (q - 32).
HI_HD float q6_K(const uint8_t* row, int64_t i) {
    const uint8_t* b = row + (i >> 8) * 210;
    const int j = static_cast<int>(i & 255), h = j >> 7, k = (j >> 5) & 3, l = j & 31;
    const uint8_t low = b[64 * h + l + 32 * (k & 1)];
    const int q = ((low >> (4 * (k >> 1))) & 0xF) | (((b[128 + 32 * h + l] >> (2 * k)) & 3) << 4);
    const int8_t sc = static_cast<int8_t>(b[192 + 8 * h + (l >> 4) + 2 * k]);
    return half(u16(b + 208)) * static_cast<float>(sc) * static_cast<float>(q - 32);
}

// Eight values base..base+7 of a quantized row (base a multiple of 8): the values of one sub-block, whose
// scale is decoded once for them. The CUDA matrix product decodes weights this way, in registers.
HI_HD void q8_0x8(const uint8_t* row, int64_t base, float* w) {
    const uint8_t* b = row + (base >> 5) * 34;
    const float d = half(u16(b));
    // The quants of a 34-byte block are 2-byte aligned: four 2-byte loads.
    const uint8_t* q = b + 2 + (base & 31);
    for (int e = 0; e < 8; e += 2) {
        const uint16_t pair = u16(q + e);
        w[e] = d * static_cast<float>(static_cast<int8_t>(pair & 0xFF));
        w[e + 1] = d * static_cast<float>(static_cast<int8_t>(pair >> 8));
    }
}

// Eight bytes as one little-endian integer: one 8-byte load on the device, where p is 8-byte aligned
// (Q4_K's quants are: its 144-byte blocks start 16-byte aligned in a row, and each group at 8k past
// byte 16 of its block).
HI_HD uint64_t load8(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
    const uint2 v = *reinterpret_cast<const uint2*>(p);
    return static_cast<uint64_t>(v.x) | (static_cast<uint64_t>(v.y) << 32);
#else
    uint64_t v = 0;
    for (int e = 0; e < 8; e++) v |= static_cast<uint64_t>(p[e]) << (8 * e);
    return v;
#endif
}

HI_HD void q4_Kx8(const uint8_t* row, int64_t base, float* w) {
    const uint8_t* b = row + (base >> 8) * 144;
    const int j = static_cast<int>(base & 255), c = j >> 6, hi = (j >> 5) & 1, l = j & 31;
    int sc, m;
    scaleMinK4(2 * c + hi, b + 4, sc, m);
    const float d = half(u16(b)) * static_cast<float>(sc), mn = half(u16(b + 2)) * static_cast<float>(m);
    const uint64_t q = load8(b + 16 + 32 * c + l) >> (4 * hi);
    for (int e = 0; e < 8; e++) w[e] = d * static_cast<float>((q >> (8 * e)) & 0xF) - mn;
}

HI_HD void q6_Kx8(const uint8_t* row, int64_t base, float* w) {
    const uint8_t* b = row + (base >> 8) * 210;
    const int j = static_cast<int>(base & 255), h = j >> 7, k = (j >> 5) & 3, l = j & 31;
    const uint8_t* low = b + 64 * h + l + 32 * (k & 1);
    const uint8_t* high = b + 128 + 32 * h + l;
    const float d = half(u16(b + 208)) * static_cast<float>(static_cast<int8_t>(b[192 + 8 * h + (l >> 4) + 2 * k]));
    const int ls = 4 * (k >> 1), hs = 2 * k;
    // 210-byte blocks leave the quants 2-byte aligned: two bytes per load.
    for (int e = 0; e < 8; e += 2) {
        const uint16_t lo = u16(low + e), hi = u16(high + e);
        const int q0 = ((lo >> ls) & 0xF) | (((hi >> hs) & 3) << 4);
        const int q1 = ((lo >> (8 + ls)) & 0xF) | (((hi >> (8 + hs)) & 3) << 4);
        w[e] = d * static_cast<float>(q0 - 32);
        w[e + 1] = d * static_cast<float>(q1 - 32);
    }
}

// Element i of a row of the given type.
HI_HD float element(uint32_t type, const uint8_t* row, int64_t i) {
    switch (type) {
        case kF32: {
            const uint8_t* p = row + 4 * i;
            return bitsToFloat(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
                               (static_cast<uint32_t>(p[3]) << 24));
        }
        case kF16:
            return half(u16(row + 2 * i));
        case kQ8_0:
            return q8_0(row, i);
        case kQ4_K:
            return q4_K(row, i);
        default:
            return q6_K(row, i);
    }
}

// RoPE: the two values of pair i (of half = nRot / 2 pairs) that rotate together: adjacent values (2i,
// 2i+1) in the normal layout, values half apart (i, i + half) in NeoX's (qwen2).
HI_HD void ropePair(bool neox, int64_t i, int64_t half, int64_t& a, int64_t& b) {
    a = neox ? i : 2 * i;
    b = neox ? i + half : 2 * i + 1;
}

}  // namespace dq
