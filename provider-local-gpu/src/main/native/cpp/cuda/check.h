// Every CUDA runtime call's status checked, and turned into the engine's errors: memory the device has not
// is a DeviceMemoryError (a capacity problem), anything else a DeviceError (the device is not usable).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "../backend.h"

namespace cu {

inline void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    const std::string m = std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // not sticky: clear it, so that later calls on the device are not failed by it
        throw DeviceMemoryError(m);
    }
    throw DeviceError(m);
}

}  // namespace cu
