// Integer dot products for quantized weights: the input vector is quantized once to 8 bits per value
// (per matmul input), then each weight row is multiplied with it in integer arithmetic, the block scales
// applied once per block. AVX2, AVX-VNNI and AVX-512 VNNI versions are chosen once at run time; the
// environment variable HYBRIDINFERENCE_KERNELS caps the level (portable, avx2, avxvnni, avx512, amx).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qk {

// Instruction-set levels, lowest first.
// Avx512 multiplies through amx.h's rows-in-lanes kernel; Amx adds its tile product for 8 or more vectors.
enum Level : int { Portable = 0, Avx2 = 1, AvxVnni = 2, Avx512 = 3, Amx = 4 };

// 32 input values quantized for Q8_0, Q4_0 and Q4_1 weights: x[i] ~ d * q[i]; sum = the sum of q.
struct Block32 {
    float d;
    int32_t sum;
    int8_t q[32];
};

// 256 input values quantized for the K-quants (Q4_K, Q5_K, Q6_K): x[i] ~ d * q[i]; bsums[g] = the sum
// of q[16g .. 16g+15].
struct Block256 {
    float d;
    int16_t bsums[16];
    int8_t q[256];
};

// The level in use: the best this processor has, capped by HYBRIDINFERENCE_KERNELS (or forced to portable
// by HYBRIDINFERENCE_PORTABLE_KERNELS=1).
Level level();
const char* levelName(int level);
// Whether this processor (and this build) can run a level.
bool available(int level);
// Throws gguf::Error when HYBRIDINFERENCE_KERNELS holds something other than a level name.
void checkEnvironment();

// Whether weights of a ggml type have an integer dot product here.
bool integerType(uint32_t type);
// Bytes of quantized input for n values (n a multiple of the type's block size).
size_t inputBytes(uint32_t type, int64_t n);
// Quantizes n floats into the input layout the weight type needs (Block32 or Block256).
// At the avx512 level and above 16 values per instruction, with the bits of the scalar code that portable
// selects.
void quantize(uint32_t type, const float* x, uint8_t* out, int64_t n, bool portable = false);

// Dot product of one weight row of n values with a quantized input, at the level in use (at the avx512 and
// amx levels, amx.h's rows-in-lanes kernel for one row).
float dot(uint32_t type, const uint8_t* row, const uint8_t* xq, int64_t n);

// For tests: the same dot product at a given level, and the integer sums behind it, before any scale:
// one per block for Q8_0/Q4_0/Q4_1, one per 32 values for Q4_K/Q5_K, one per 16 values for Q6_K (of the
// weights' unsigned quants, offsets not subtracted). ints may be null. Throws gguf::Error when the level
// is not available.
int64_t intCount(uint32_t type, int64_t n);
float dotAt(int level, uint32_t type, const uint8_t* row, const uint8_t* xq, int64_t n, int32_t* ints);

}  // namespace qk
