// For the benchmark: the rate at which one matrix product streams its weights, alone, without the rest of
// a forward pass around it (CudaProductRates), so that a kernel's own reading speed can be told apart from
// what launching 110 of them a token costs.
#include <vector>

#include "../dequant.h"
#include "check.h"
#include "ops.h"

namespace cudadev {

double productRate(int ordinal, uint32_t type, int64_t rows, int64_t cols, int reps, int flags) {
    int64_t rowBytes = 0;
    uint32_t deviceType = type;
    switch (type) {
        case dq::kF32: rowBytes = 4 * cols; break;
        case dq::kF16: rowBytes = 2 * cols; break;
        case dq::kQ8_0:
            rowBytes = dq::q8_0SplitRowBytes(cols);
            deviceType = dq::kQ8_0Split;
            break;
        case dq::kQ4_K: rowBytes = cols / 256 * 144; break;
        case dq::kQ6_K: rowBytes = cols / 256 * 210; break;
        default: throw DeviceError("type " + std::to_string(type) + " has no CUDA product");
    }
    if (rows <= 0 || cols <= 0 || cols % 256 != 0 || reps <= 0 || rows > (int64_t(1) << 40) / rowBytes) {
        throw DeviceError("rows, reps and cols (a multiple of 256) must be positive, the matrix under 1 TiB");
    }
    int previous = 0;
    cu::check(cudaGetDevice(&previous), "cudaGetDevice");
    cu::check(cudaSetDevice(ordinal), "cudaSetDevice");
    uint8_t* w = nullptr;
    float *x = nullptr, *y = nullptr;
    cudaStream_t s = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    auto release = [&] {
        if (s) cudaStreamSynchronize(s);
        cudaFree(w);
        cudaFree(x);
        cudaFree(y);
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
        if (s) cudaStreamDestroy(s);
        cudaGetLastError();
        cudaSetDevice(previous);
    };
    try {
        cu::check(cudaMalloc(&w, static_cast<size_t>(rows * rowBytes)), "cudaMalloc (weights)");
        cu::check(cudaMalloc(&x, sizeof(float) * static_cast<size_t>(cols)), "cudaMalloc (input)");
        cu::check(cudaMalloc(&y, sizeof(float) * static_cast<size_t>(rows)), "cudaMalloc (output)");
        // Every byte 0x3C: F16 values and block scales near 1, quants mid-range; the values do not change
        // the time.
        cu::check(cudaMemset(w, 0x3C, static_cast<size_t>(rows * rowBytes)), "cudaMemset");
        const std::vector<float> ones(static_cast<size_t>(cols), 1.0f);
        cu::check(cudaMemcpy(x, ones.data(), sizeof(float) * ones.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
        cu::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
        cu::check(cudaEventCreate(&start), "cudaEventCreate");
        cu::check(cudaEventCreate(&stop), "cudaEventCreate");
        int major = 0, optin = 0, sms = 0;
        cu::check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ordinal), "cudaDeviceGetAttribute");
        cu::check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ordinal), "cudaDeviceGetAttribute");
        cu::check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ordinal), "cudaDeviceGetAttribute");
        ops::Matrices m;
        m.w[0] = w;
        m.rows[0] = rows;
        m.y[0] = y;
        m.integer = (flags & 1) != 0;
        m.prefetch = (flags & 2) != 0;
        m.sharedLimit = optin - 4 * 1024;
        m.multiprocessors = sms;
        ops::setProgrammaticLaunch((flags & 4) != 0 && major >= 9);
        for (int i = 0; i < 3; i++) ops::matmul(s, deviceType, rowBytes, cols, m, x, 1, ops::Epilogue::Store);
        cu::check(cudaEventRecord(start, s), "cudaEventRecord");
        for (int i = 0; i < reps; i++) ops::matmul(s, deviceType, rowBytes, cols, m, x, 1, ops::Epilogue::Store);
        cu::check(cudaEventRecord(stop, s), "cudaEventRecord");
        cu::check(cudaEventSynchronize(stop), "product");
        float ms = 0;
        cu::check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        ops::setProgrammaticLaunch(false);
        release();
        if (ms <= 0.0f) throw DeviceError("the products took no measurable time; use more reps");
        return static_cast<double>(rows * rowBytes) * reps / (static_cast<double>(ms) * 1e6);
    } catch (...) {
        ops::setProgrammaticLaunch(false);
        release();
        throw;
    }
}

}  // namespace cudadev
