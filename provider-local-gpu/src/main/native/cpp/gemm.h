// Weight matrix times several input vectors as a blocked matrix product: each thread dequantizes a panel
// of weight rows to F32 once and multiplies it with all the vectors through a register-blocked tile
// kernel. AVX-512F or AVX2/FMA versions are chosen at run time, with a portable one besides.
#pragma once

#include <cstdint>

#include "gguf.h"
#include "threads.h"

namespace gemm {

// Whether multiply should compute this weight times n vectors: an F32, F16, Q8_0, Q4_K or Q6_K matrix with
// rows of a multiple of 32 values, and n at least the count from which the product beats one row dot per
// vector for that type. It reads and dequantizes each weight once for all the vectors, where the row dots
// do that once per vector but fuse it into the dot: for F32 and Q6_K two vectors already gain, Q4_K three,
// F16 and Q8_0 (whose row dots are cheapest) four.
bool supports(const gguf::Tensor* w, int64_t n);

// y[t * rows + r] = (row r of w) . x[t] for t < n, x[t] being the w->ne[0] floats at x + t * w->ne[0].
// Each result is a dot product in float that adds its terms in the order kern::dot does for F32 rows,
// so for F32 weights it equals kern::dot bit for bit; for the other types only the rounding of the
// dequantized weights and of the sums can differ.
void multiply(ThreadPool& pool, const gguf::Tensor* w, const float* x, float* y, int64_t n);

// The instruction set the tile kernel uses: "avx512f", "avx2" or "portable". HYBRIDINFERENCE_PORTABLE_KERNELS=1
// forces the portable kernel and HYBRIDINFERENCE_NO_AVX512=1 the AVX2 one, so that tests cover each.
const char* features();

}  // namespace gemm
