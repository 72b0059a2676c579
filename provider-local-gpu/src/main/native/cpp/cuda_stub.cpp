// The CUDA entry points of a build without CUDA (no nvcc found, or HYBRIDINFERENCE_CUDA=OFF): no devices,
// and a load on one says why.
#ifndef HI_CUDA
#include "backend.h"

namespace {
const char* kReason = "this build of the native library has no CUDA backend (built without nvcc or with HYBRIDINFERENCE_CUDA=OFF)";
}

std::unique_ptr<Backend> makeCudaBackend(const ModelDesc&, int ordinal, Precision) {
    throw DeviceError("cuda:" + std::to_string(ordinal) + ": " + kReason);
}

namespace cudadev {
int count() { return 0; }
std::string unavailableReason() { return kReason; }
std::string name(int ordinal) { throw DeviceError("cuda:" + std::to_string(ordinal) + ": " + kReason); }
void memory(int ordinal, uint64_t&, uint64_t&) { throw DeviceError("cuda:" + std::to_string(ordinal) + ": " + kReason); }
double peakBandwidth(int ordinal) { throw DeviceError("cuda:" + std::to_string(ordinal) + ": " + kReason); }
double productRate(int ordinal, uint32_t, int64_t, int64_t, int, int) { throw DeviceError("cuda:" + std::to_string(ordinal) + ": " + kReason); }
}  // namespace cudadev
#endif
