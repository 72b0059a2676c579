// Device enumeration for the Java side. The runtime is linked statically and finds the driver at run
// time: on a machine without one, cudaGetDeviceCount fails, which means no devices, not an error.
#include <string>

#include "check.h"

namespace cudadev {

namespace {
std::string probe(int* n) {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *n = 0;
        if (e == cudaErrorNoDevice) return "no CUDA device found";
        if (e == cudaErrorInsufficientDriver) return "no CUDA driver, or one older than the runtime this library was built with (CUDA " +
                                                      std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) + ")";
        return std::string("CUDA is not usable here: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    }
    *n = count;
    return count == 0 ? "no CUDA device found" : "";
}

void checkOrdinal(int ordinal) {
    int n = 0;
    const std::string why = probe(&n);
    if (ordinal < 0 || ordinal >= n) {
        throw DeviceError("cuda:" + std::to_string(ordinal) + " is not a device here (" +
                          (n == 0 ? why : std::to_string(n) + " device" + (n == 1 ? "" : "s")) + ")");
    }
}
}  // namespace

int count() {
    int n = 0;
    probe(&n);
    return n;
}

std::string unavailableReason() {
    int n = 0;
    return probe(&n);
}

std::string name(int ordinal) {
    checkOrdinal(ordinal);
    cudaDeviceProp p;
    cu::check(cudaGetDeviceProperties(&p, ordinal), "cudaGetDeviceProperties");
    return p.name;
}

void memory(int ordinal, uint64_t& total, uint64_t& free) {
    checkOrdinal(ordinal);
    int previous = 0;
    cu::check(cudaGetDevice(&previous), "cudaGetDevice");
    cu::check(cudaSetDevice(ordinal), "cudaSetDevice");
    size_t f = 0, t = 0;
    const cudaError_t e = cudaMemGetInfo(&f, &t);
    cudaSetDevice(previous);
    cu::check(e, "cudaMemGetInfo");
    total = t;
    free = f;
}

double peakBandwidth(int ordinal) {
    checkOrdinal(ordinal);
    int clockKhz = 0, busBits = 0;
    cu::check(cudaDeviceGetAttribute(&clockKhz, cudaDevAttrMemoryClockRate, ordinal), "cudaDeviceGetAttribute (memory clock)");
    cu::check(cudaDeviceGetAttribute(&busBits, cudaDevAttrGlobalMemoryBusWidth, ordinal), "cudaDeviceGetAttribute (bus width)");
    // Two transfers per clock (DDR and HBM alike).
    return 2.0 * clockKhz * 1e3 * (busBits / 8.0) / 1e9;
}

}  // namespace cudadev
