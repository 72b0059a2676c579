// Row kernels: dot products of a weight row (any supported type) with an F32 vector, and row
// dequantization. AVX2/FMA/F16C versions are chosen at run time when the processor has them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dequant.h"

namespace kern {

float f16ToF32(uint16_t h);

// The six-bit scale and minimum of sub-block j of a Q4_K or Q5_K super-block (dequant.h).
using dq::scaleMinK4;
// Rounds to the nearest F16 (ties to even), as F16C does; overflow gives infinity.
uint16_t f32ToF16(float f);
const char* features();

// Dot product of one row of n elements (n a multiple of the type's block size) with x.
float dot(uint32_t type, const uint8_t* row, const float* x, int64_t n);

// Writes the n values of one row as F32.
void dequantizeRow(uint32_t type, const uint8_t* row, float* out, int64_t n);

// Plain F32 dot product, SIMD when available.
float dotF32(const float* a, const float* b, int64_t n);

// Writes n floats as F16 (an F16 KV cache row), F16C when available.
void toF16Row(const float* in, uint16_t* out, int64_t n);

// out[i] += w * v[i] over n F16 values (attention's weighted sum over an F16 value cache).
void addScaledF16(float* out, const uint16_t* v, float w, int64_t n);

// One query head's attention over n cached positions: att[u] = scale * (q . k_u), softmax over u, out = the
// sum of att[u] * v_u. k_u and v_u are hd values (F32, or F16 when f16 is set) at kBase + u * stride and
// vBase + u * stride; att is scratch of n floats.
void attend(const float* q, const uint8_t* kBase, const uint8_t* vBase, size_t stride, bool f16, int64_t hd, int64_t n, float scale,
            float* att, float* out);

// A query of attendMany: hd values at q, attending over positions [0, n), with n floats of scratch at att
// and its hd outputs at out.
struct Query {
    const float* q;
    int64_t n;
    float* att;
    float* out;
};

// The most queries attendMany takes at once for a head size (at least 1, at most kAttendWidthMost).
constexpr int kAttendWidthMost = 6;
int attendWidth(int64_t hd);

// attend for count queries (count <= attendWidth(hd)) over the same keys and values (the heads that share a
// KV head, of one or more rows of one cache). A query's floats never depend on the other queries of the
// call. At the avx512 level and above, for head sizes 64 and 128, one kernel reads each cached key and
// value row once for all the queries; otherwise each query goes through attend.
void attendMany(const Query* queries, int count, const uint8_t* kBase, const uint8_t* vBase, size_t stride, bool f16, int64_t hd,
                float scale);

// g[i] = silu(g[i]) * u[i] over n values (the feed-forward gate), through e^-|g[i]| (which cannot overflow), in
// 16 or 8 lanes where the processor has AVX-512 or AVX2 (the last n % 16 or n % 8 one at a time).
void siluMul(float* g, const float* u, int64_t n);

// out[i] = e^((x[i] - best) * scale) for i < n >= 1, where best is the largest x[i] and scale > 0 (a
// sampler's weights: the logits over the temperature, relative to the most likely token's), to about 2 ulp
// and 0 where that is under float's smallest normal; returns their sum in double. The same inputs give
// the same bits on a processor, but not across instruction-set levels.
double expWeights(const float* x, int64_t n, float scale, float* out);

// out[i] = x[i] * scale * w[i] with scale = 1 / sqrt(mean of x[i]^2 + eps): RMS normalization of a row of n
// values. The squares are exact in double and summed in double, in 16 lanes where the processor has
// AVX-512 or AVX2 (the order of that sum is the only difference from a plain loop, far under a float's
// rounding); the products are the plain loop's.
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps);

// Sums n floats (the bandwidth probe's inner loop), SIMD when available.
float sumF32(const float* a, int64_t n);

}  // namespace kern
