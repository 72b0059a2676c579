// Integer matrix products on Intel AMX tiles (Sapphire Rapids and later): the fast precision's weights times
// 8-bit inputs, 16 weight rows by up to 16 input vectors per tile product, the block scales applied to each
// block's exact integer sums as they leave the tiles.
//
// Every result is the same sequence of float operations whatever the count of vectors or rows in the call:
// for each block in order, acc = fma(float(integer sum of the block), weight scale * input scale, acc)
// (the K-quants add their minimums as one more term per super-block). So one vector alone and the same
// vector among many get the same bits, which keeps batched decoding deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "threads.h"

namespace amx {

// Whether this processor has AMX-INT8 and the operating system lets this process use the tile registers
// (asked once, on first call).
bool usable();

// Whether weights of a ggml type have an AMX product here.
bool supports(uint32_t type);

// The quantized inputs rearranged for the tiles: filled by multiply, kept by the caller between calls.
struct Packed {
    std::vector<uint8_t> bytes;
    std::vector<float> scales;
    std::vector<int32_t> sums;
};

// y[t * rows + r] = (row r of the weights) . (input t) for t < n: rows weight rows of cols values of a type
// supports accepts, rowBytes apart from base; the inputs quantized by qk::quantize for that type, stride
// bytes apart from xq.
void multiply(ThreadPool* pool, uint32_t type, const uint8_t* base, int64_t rowBytes, int64_t rows, int64_t cols,
              const uint8_t* xq, size_t stride, int64_t n, float* y, Packed& packed);

}  // namespace amx
