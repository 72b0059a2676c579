// Per-element dequantization of the weight types the CUDA backend computes with (F32, F16, Q8_0, Q4_K,
// Q6_K), and RoPE's pairing of values: plain inline functions that compile for the device (nvcc) and for
// the host (g++). The CUDA kernels decode weights in registers with them; the host build exposes them to
// tests (NativeEngine.elementDequantize), so that the block layouts are checked against the CPU kernels on
// any machine, a GPU or not.
#pragma once

#include <cmath>
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
// Loops the device compiler unrolls fully (the host compiler is left to choose).
#if defined(__CUDA_ARCH__)
#define HI_UNROLL _Pragma("unroll")
#else
#define HI_UNROLL
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

// Q8_0 as the CUDA backend uploads it (kQ8_0Split): each row's int8 quants (16-byte aligned), then its F16
// scales (one per 32 values), the row padded to a multiple of 16 bytes; the file's 34-byte blocks would
// allow loads of 2 bytes at most. The id is none of ggml's.
constexpr uint32_t kQ8_0Split = 1008;
inline int64_t q8_0SplitRowBytes(int64_t cols) { return (cols + cols / 16 + 15) / 16 * 16; }

// The file's Q8_0 rows (34-byte blocks) to kQ8_0Split rows (host only).
inline void splitQ8_0(const uint8_t* in, int64_t rows, int64_t cols, uint8_t* out) {
    const int64_t inBytes = cols / 32 * 34, outBytes = q8_0SplitRowBytes(cols);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t* src = in + r * inBytes;
        uint8_t* q = out + r * outBytes;
        uint8_t* d = q + cols;
        for (int64_t b = 0; b < cols / 32; b++) {
            std::memcpy(d + 2 * b, src + 34 * b, 2);
            std::memcpy(q + 32 * b, src + 34 * b + 2, 32);
        }
        std::memset(d + cols / 16, 0, static_cast<size_t>(outBytes - cols - cols / 16));
    }
}

// The CUDA matrix product's decoding, from the words one 16-byte load put in registers, folded into the
// dot product with the input values x at the same positions. The host tests decode rows through them
// (with unit vectors for x), so that what the GPU computes is checked where there is none.

// 16 values of a kQ8_0Split row: the quants' four words and their block's scale d.
HI_HD float q8_0SplitDot(const uint32_t (&q)[4], float d, const float* x) {
    float s = 0.0f;
    HI_UNROLL
    for (int e = 0; e < 16; e++) s += static_cast<float>(static_cast<int8_t>(q[e >> 2] >> (8 * (e & 3)))) * x[e];
    return d * s;
}

// Byte i (0..11) of a Q4_K block's packed scales and minimums: bytes 4..15 of its head (d, dmin, then
// the 12 bytes), held as four words.
HI_HD int q4_KScaleByte(const uint32_t (&head)[4], int i) {
    const uint32_t word = i < 4 ? head[1] : i < 8 ? head[2] : head[3];
    return static_cast<int>((word >> (8 * (i & 3))) & 0xFF);
}

template <typename T>
HI_HD void q4_KScaleMin(const uint32_t (&head)[4], int j, T& sc, T& m) {
    if (j < 4) {
        sc = static_cast<T>(q4_KScaleByte(head, j) & 63);
        m = static_cast<T>(q4_KScaleByte(head, j + 4) & 63);
    } else {
        sc = static_cast<T>((q4_KScaleByte(head, j + 4) & 0xF) | ((q4_KScaleByte(head, j - 4) >> 6) << 4));
        m = static_cast<T>((q4_KScaleByte(head, j + 4) >> 4) | ((q4_KScaleByte(head, j) >> 6) << 4));
    }
}

// 32 values of a Q4_K super-block: 16 quant bytes at 32c + l of its quants (l 0 or 16) hold positions
// 64c + l.. (sub-block 2c, low nibbles; x[0..15]) and 64c + 32 + l.. (sub-block 2c + 1, high nibbles;
// x[16..31]); head is the block's first 16 bytes. sum(w x) = d sc sum(q x) - dmin m sum(x) per sub-block.
HI_HD float q4_KDot(const uint32_t (&q)[4], const uint32_t (&head)[4], int c, const float* x) {
    float sc0, m0, sc1, m1;
    q4_KScaleMin(head, 2 * c, sc0, m0);
    q4_KScaleMin(head, 2 * c + 1, sc1, m1);
    float lo = 0.0f, hi = 0.0f, xlo = 0.0f, xhi = 0.0f;
    HI_UNROLL
    for (int e = 0; e < 16; e++) {
        const uint32_t byte = q[e >> 2] >> (8 * (e & 3));
        lo += static_cast<float>(byte & 0xF) * x[e];
        hi += static_cast<float>((byte >> 4) & 0xF) * x[16 + e];
        xlo += x[e];
        xhi += x[16 + e];
    }
    const float d = half(static_cast<uint16_t>(head[0] & 0xFFFF)), dmin = half(static_cast<uint16_t>(head[0] >> 16));
    return d * (sc0 * lo + sc1 * hi) - dmin * (m0 * xlo + m1 * xhi);
}

// The integer products of `precision: fast` (the CUDA backend's, as the CPU backend's qk:: kernels): the
// input vector quantized to 8 bits per value, with a float scale per block of the weights' size (32
// values for Q8_0, 256 for Q4_K, and for Q4_K the sums of each 16 of its integers), then each weight row
// multiplied with it in integer arithmetic, four products per instruction; the scales are applied once per
// block. The quantization and the integer sums are the CPU backend's, so the two agree up to the order of
// the float additions.

// c + the dot product of the four signed bytes of a and of b: one dp4a instruction on the device.
HI_HD int dp4a(uint32_t a, uint32_t b, int c) {
#if defined(__CUDA_ARCH__)
    return __dp4a(static_cast<int>(a), static_cast<int>(b), c);
#else
    for (int i = 0; i < 4; i++) c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
    return c;
#endif
}

// One input value quantized with its block's inverse scale id = 127 / max|x| (0 for a block of zeros):
// rounded to nearest, ties to even, as qk::quantize rounds, within -127..127.
HI_HD int quantizeValue(float v, float id) {
#if defined(__CUDA_ARCH__)
    const int q = __float2int_rn(v * id);
#else
    // The product rounded once, then to an integer (no fused multiply-add to skip the first rounding).
    const int q = static_cast<int>(std::nearbyint(v * id));
#endif
    return q > 127 ? 127 : (q < -127 ? -127 : q);
}

// Eight input values quantized with their block's largest magnitude amax, packed into two words (the
// scale is amax / 127); returns the sum of the eight integers.
HI_HD int quantize8(const float (&v)[8], float amax, uint32_t (&words)[2]) {
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    words[0] = 0;
    words[1] = 0;
    HI_UNROLL
    for (int i = 0; i < 8; i++) {
        const int q = quantizeValue(v[i], id);
        sum += q;
        words[i >> 2] |= static_cast<uint32_t>(q & 0xFF) << (8 * (i & 3));
    }
    return sum;
}

// 16 weight integers (four to a word: Q8_0's int8 quants, Q6_K's 6-bit ones) times 16 input integers at
// the same positions: the integer sum, which the scales (and for Q6_K the offset of 32) then apply to.
HI_HD int ints16(const uint32_t (&q)[4], const uint32_t (&x)[4]) {
    int s = 0;
    HI_UNROLL
    for (int i = 0; i < 4; i++) s = dp4a(q[i], x[i], s);
    return s;
}

// The 16 quant bytes of a Q4_K load (see q4_KDot) times the input integers at the same positions: lo of
// the low nibbles (sub-block 2c, x at 64c + l..) and hi of the high ones (sub-block 2c + 1, at 64c + 32 + l..).
HI_HD void q4_KInts(const uint32_t (&q)[4], const uint32_t (&xlo)[4], const uint32_t (&xhi)[4], int& lo, int& hi) {
    lo = 0;
    hi = 0;
    HI_UNROLL
    for (int i = 0; i < 4; i++) {
        lo = dp4a(q[i] & 0x0F0F0F0Fu, xlo[i], lo);
        hi = dp4a((q[i] >> 4) & 0x0F0F0F0Fu, xhi[i], hi);
    }
}

// A Q4_K load's share of its block's two integer sums (qk's isum and msum): sc * (q . x) per sub-block,
// and min * (the sum of x's integers) per sub-block, sumLo and sumHi being the input's sums over the
// load's 16 positions of each. The block then adds d * xd * isum - dmin * xd * msum.
HI_HD void q4_KBlockInts(const uint32_t (&head)[4], int c, int lo, int hi, int sumLo, int sumHi, int& isum, int& msum) {
    int sc0, m0, sc1, m1;
    q4_KScaleMin(head, 2 * c, sc0, m0);
    q4_KScaleMin(head, 2 * c + 1, sc1, m1);
    isum = sc0 * lo + sc1 * hi;
    msum = m0 * sumLo + m1 * sumHi;
}

// A Q6_K sub-block of 16 values (one scale) that starts at value base (a multiple of 16) of a row: its
// 6-bit quants (0..63), four to a word, its scale and the block's d. 210-byte blocks leave the quants
// 2-byte aligned: two bytes per load. w = d * scale * (q - 32).
HI_HD void q6_KQuants16(const uint8_t* row, int64_t base, uint32_t (&q)[4], int& scale, float& d) {
    const uint8_t* b = row + (base >> 8) * 210;
    const int j = static_cast<int>(base & 255), h = j >> 7, k = (j >> 5) & 3, l = j & 31;
    const uint8_t* low = b + 64 * h + l + 32 * (k & 1);
    const uint8_t* high = b + 128 + 32 * h + l;
    HI_UNROLL
    for (int i = 0; i < 4; i++) {
        const uint32_t lw = static_cast<uint32_t>(u16(low + 4 * i)) | static_cast<uint32_t>(u16(low + 4 * i + 2)) << 16;
        const uint32_t hw = static_cast<uint32_t>(u16(high + 4 * i)) | static_cast<uint32_t>(u16(high + 4 * i + 2)) << 16;
        // Per byte: the low or high nibble, and bits 2k..2k+1 of the high byte above it.
        q[i] = ((lw >> (4 * (k >> 1))) & 0x0F0F0F0Fu) | (((hw >> (2 * k)) & 0x03030303u) << 4);
    }
    scale = static_cast<int8_t>(b[192 + 8 * h + (l >> 4) + 2 * k]);
    d = half(u16(b + 208));
}

// Four little-endian words from 16 bytes (on the device, the CUDA code loads them as one uint4).
HI_HD void words16(const uint8_t* p, uint32_t (&w)[4]) {
    for (int i = 0; i < 4; i++) {
        w[i] = static_cast<uint32_t>(p[4 * i]) | (static_cast<uint32_t>(p[4 * i + 1]) << 8) | (static_cast<uint32_t>(p[4 * i + 2]) << 16) |
               (static_cast<uint32_t>(p[4 * i + 3]) << 24);
    }
}

// Eight values base..base+7 of a Q6_K row (base a multiple of 8): the values of one sub-block, whose
// scale is decoded once for them. The CUDA matrix product decodes Q6_K this way, in registers.
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
