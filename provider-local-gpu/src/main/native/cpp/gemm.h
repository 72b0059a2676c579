// Weight matrix times several input vectors as a blocked matrix product: each thread dequantizes a panel
// of weight rows to F32 once and multiplies it with all the vectors through a register-blocked tile
// kernel. AVX-512F or AVX2/FMA versions are chosen at run time, with a portable one besides.
#pragma once

#include <cstdint>

#include "gguf.h"
#include "pages.h"
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

// F32 or F16 weights repacked once, at load, into panels of 16 rows with the values of a column adjacent:
// panel p holds rows 16p .. 16p + 15, column k of them at (16k + lane) elements from its start, in the
// file's element type (a last panel of fewer rows padded with zeros). Its kernel keeps each output row in
// one lane of a register and adds the terms of each block of 128 columns in order by fused multiply-adds,
// one input value broadcast to all lanes per step, then each block's sum into the row's total, whatever
// the count of input vectors: so a row gives the same bits for a vector alone and for the same vector
// among many.
struct Panels {
    uint32_t type = 0;
    int64_t rows = 0, cols = 0;
    PageBuffer bytes;
};

// Whether pack takes this weight: F32 or F16 values in host memory, with the AVX-512 tile kernel in use.
bool packable(const gguf::Tensor* w);

// Repacks rows rows of cols values of type F32 or F16, stored one after another from base, on the pool's
// threads (for a weight, packable holds).
Panels pack(ThreadPool& pool, uint32_t type, const uint8_t* base, int64_t rows, int64_t cols);

// y[t * rows + r] = (row r) . x[t] for t < n, x[t] being the cols floats at x + t * cols.
void multiply(ThreadPool& pool, const Panels& w, const float* x, float* y, int64_t n);

// Row r's cols values as floats (a token's embedding, where the output matrix is also the embeddings).
void row(const Panels& w, int64_t r, float* out);

// The instruction set the tile kernel uses: "avx512f", "avx2" or "portable". HYBRIDINFERENCE_PORTABLE_KERNELS=1
// forces the portable kernel and HYBRIDINFERENCE_NO_AVX512=1 the AVX2 one, so that tests cover each.
const char* features();

}  // namespace gemm
