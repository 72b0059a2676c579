// Integer matrix products for the fast precision on processors with AVX-512 VNNI, and AMX-INT8 (Sapphire
// Rapids and later) where they have it: quantized weights times 8-bit inputs, by one of three kernels.
// - Eight or more input vectors go through the tile registers, where there are tiles: each panel of 16
//   weight rows is unpacked once to signed bytes with its scales, then multiplied with groups of up to 16
//   vectors per block (or group of a K-quant block), the block scales applied to each block's exact
//   integer sums as they leave the tiles.
// - Weights repacked at load (repack) take every count of vectors, and weights as stored from 2 to 4
//   vectors on (by type; all of them without tiles), through transposed panels (where there are tiles,
//   repacked Q8_0, Q4_0 and Q4_1 records take 16 or more vectors through them, the records being the
//   tiles' weight layout already): each panel's blocks are
//   transposed so that one register holds the same four values of its 16 rows (once per call for weights
//   as stored), and each vector's bytes are broadcast against those registers, so that the weights are
//   decoded once for several vectors.
// - Fewer vectors, with weights as stored, go one at a time through a rows-in-lanes kernel that reads the
//   weights as stored and keeps 16 rows' sums in the lanes of one register.
//
// All compute, for every row and vector, the same integer sums and the same float steps: for each block in
// order, acc = fma(float(integer sum of the block), weight scale * input scale, acc), the K-quants' scaled
// minimums as one more step per super-block. So a vector alone and the same vector among many get the same
// bits, which keeps batched decoding deterministic whichever kernel serves a call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pages.h"
#include "threads.h"

namespace amx {

// Whether this processor has AMX-INT8 (and the AVX-512 VNNI the rest needs) and the operating system lets
// this process use the tile registers (asked once, on first call).
bool usable();

// Whether weights of a ggml type have these products (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K). Without the tiles
// they need AVX-512 F/BW/VL/VNNI and F16C, which the caller checks (qk's avx512 level).
bool supports(uint32_t type);

// The quantized inputs rearranged for the tiles: filled by multiply, kept by the caller between calls.
struct Packed {
    std::vector<uint8_t> bytes;
    std::vector<float> scales;
    std::vector<int32_t> sums;
};

// y[t * rows + r] = (row r of the weights) . (input t) for t < n: rows weight rows of cols values of a type
// supports accepts, rowBytes apart from base; the inputs quantized by qk::quantize for that type, stride
// bytes apart from xq. With tiles unset (or no AMX here) the transposed panels take the many vectors: the
// same bits.
void multiply(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols,
              const uint8_t* xq, size_t stride, int64_t n, float* y, Packed& packed, bool tiles);

// A weight matrix repacked once for the transposed-panel kernel: per panel of 16 rows and block, the values
// transposed at the file's bit width with their scales, as many bytes as the file (Q8_0, Q4_0, Q4_1) to 3%
// more (Q4_K).
// Multiplying it skips the unpacking and transposing a call otherwise does per panel, so that one vector
// gains as much as many.
struct Repacked {
    uint32_t type = 0;  // the file's
    int64_t rows = 0, cols = 0, panelBytes = 0;
    PageBuffer bytes;
};

// Repacks rows weight rows of cols values of a type supports accepts, rowBytes apart from base (AVX-512
// VNNI and F16C, which the caller checks as for multiply without tiles).
Repacked repack(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols);

// multiply's y for repacked weights, with the same bits.
void multiply(ThreadPool* pool, const Repacked& w, const uint8_t* xq, size_t stride, int64_t n, float* y);

// The same for count repacked matrices of one type and width times the same inputs (ys[i]: matrix i's
// results), in one pass of the pool instead of count.
void multiply(ThreadPool* pool, const Repacked* const* ws, float* const* ys, int count, const uint8_t* xq, size_t stride, int64_t n);

}  // namespace amx
