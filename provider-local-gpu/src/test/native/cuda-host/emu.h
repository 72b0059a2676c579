// CUDA on the host, for testing the CUDA backend's kernels where there is no GPU: the kernel code of
// cuda/ops.cu compiled by the host compiler against this header (include/cuda_runtime.h and
// include/cuda_fp16.h stand in for the toolkit's), each thread of a block run as a fiber, the blocks of a
// grid one after another. __syncthreads and the warp shuffles are barriers among the fibers, so a kernel's
// indexing, its shared memory and its synchronization are exercised as written; a kernel whose threads wait
// at different barriers is reported as such. Out of reach, and left to a GPU: timing; the memory model; a
// stream's work runs when it is submitted, so a missing synchronization between streams or with the host
// goes unseen; programmatic dependent launch (griddepcontrol) does nothing, so a read of the previous
// kernel's output before dependOnPrevious() passes; inline PTX; the device's own float functions and fused
// multiply-adds (the host rounds its own way). Barriers reached by some threads after others have exited
// complete, as on the hardware, though the programming model leaves that undefined.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Blocks run one at a time, so a block's shared variables can be the function's statics.
#define __shared__ static
#define __align__(n) alignas(n)
#define HI_DYNAMIC_SHARED(name) uint8_t* name = ::emu::dynamicShared()

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }

// IEEE half precision through the compiler's _Float16 (conversions round to nearest even, as the device's).
struct __half {
    uint16_t bits;
};
struct __half2 {
    __half x, y;
};
inline __half __float2half_rn(float f) {
    const _Float16 h = static_cast<_Float16>(f);
    __half r;
    std::memcpy(&r.bits, &h, 2);
    return r;
}
inline float __half2float(__half h) {
    _Float16 v;
    std::memcpy(&v, &h.bits, 2);
    return static_cast<float>(v);
}
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }

// The running thread's indices and its grid's: the scheduler sets threadIdx whenever it resumes a thread.
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {

// Blocks per multiprocessor that cudaOccupancyMaxActiveBlocksPerMultiprocessor reports.
extern int occupancy;
// The schedule: every thread in turn (false), or one warp of each block held back while the others run as
// far as they can (true).
extern bool lagWarps;

uint8_t* dynamicShared();
void syncthreads();
// This lane's bits given, lane ^ xorMask's returned: a barrier among the warp's lanes. members is the
// shuffle's mask: the emulation models whole warps only, and reports any other mask as a failure.
uint64_t exchange(uint64_t bits, int xorMask, unsigned members);
// Runs body as every thread of every block of the grid; throws std::runtime_error when the threads of a
// block deadlock (wait at different barriers) or a lane shuffles with one that has exited.
void launch(dim3 grid, dim3 block, size_t shared, const std::function<void()>& body);
void setSharedLimit(const void* kernel, int bytes);
int sharedLimit(const void* kernel);

template <typename T>
T shuffleXor(T v, int mask, unsigned members) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a shuffled value fits in 64 bits");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = exchange(bits, mask, members);
    T r;
    std::memcpy(&r, &bits, sizeof(T));
    return r;
}

}  // namespace emu

inline void __syncthreads() { emu::syncthreads(); }
template <typename T>
T __shfl_xor_sync(unsigned members, T v, int mask) {
    return emu::shuffleXor(v, mask, members);
}
inline void __threadfence() {}
// Fibers switch only at barriers, so a read-modify-write is atomic here.
inline unsigned atomicAdd(unsigned* p, unsigned v) {
    const unsigned old = *p;
    *p = old + v;
    return old;
}
template <typename T>
T __ldcg(const T* p) {
    return *p;
}

// ---- The runtime API, as far as the backend's host code calls it (cuda/*.cu). Device memory is host
// memory, counted against an emulated 16 GiB; a stream runs its work at once, in order; a stream being
// captured records its launches into a graph, which cudaGraphLaunch replays.
#define CUDART_VERSION 13000
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorStreamCaptureUnsupported = 900,
};
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
inline cudaError_t cudaGetLastError() { return cudaSuccess; }

namespace emu {
// A stream: while captured, the launches made on it.
struct Stream {
    bool capturing = false;
    std::vector<std::function<void()>> recorded;
};
// Runs a launch now, or records it when the stream is being captured.
void submit(Stream* s, std::function<void()> work);
}  // namespace emu

typedef emu::Stream* cudaStream_t;
typedef struct EmuGraph* cudaGraph_t;
typedef struct EmuGraph* cudaGraphExec_t;
typedef struct EmuEvent* cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeRelaxed };
constexpr unsigned cudaStreamNonBlocking = 1;
enum cudaDeviceAttr {
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrMemoryClockRate = 36,
    cudaDevAttrGlobalMemoryBusWidth = 37,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
struct cudaDeviceProp {
    char name[256];
};

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
    return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* to, const void* from, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);
cudaError_t cudaEventDestroy(cudaEvent_t e);
enum cudaLaunchAttributeID { cudaLaunchAttributeProgrammaticStreamSerialization = 5 };
union cudaLaunchAttributeValue {
    int programmaticStreamSerializationAllowed;
    char pad[64];
};
struct cudaLaunchAttribute {
    cudaLaunchAttributeID id;
    cudaLaunchAttributeValue val;
};
struct cudaLaunchConfig_t {
    dim3 gridDim, blockDim;
    size_t dynamicSmemBytes;
    cudaStream_t stream;
    cudaLaunchAttribute* attrs;
    unsigned numAttrs;
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

template <typename K>
cudaError_t cudaFuncSetAttribute(K* kernel, cudaFuncAttribute, int value) {
    emu::setSharedLimit(reinterpret_cast<const void*>(kernel), value);
    return cudaSuccess;
}

template <typename K>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, K*, int, size_t) {
    *blocks = emu::occupancy;
    return cudaSuccess;
}

// As the device: a grid and a block within the device's limits, and past 48 KB of dynamic shared memory the
// kernel must have been allowed it.
template <typename... Params, typename... Args>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* cfg, void (*kernel)(Params...), Args&&... args) {
    const dim3 g = cfg->gridDim, b = cfg->blockDim;
    if (g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535 || b.x == 0 || b.y == 0 || b.z == 0 || b.z > 64 ||
        static_cast<uint64_t>(b.x) * b.y * b.z > 1024) {
        return cudaErrorInvalidValue;
    }
    if (cfg->dynamicSmemBytes > 48 * 1024 && static_cast<int64_t>(cfg->dynamicSmemBytes) > emu::sharedLimit(reinterpret_cast<const void*>(kernel))) {
        return cudaErrorInvalidValue;
    }
    std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
    const dim3 grid = cfg->gridDim, block = cfg->blockDim;
    const size_t shared = cfg->dynamicSmemBytes;
    emu::submit(cfg->stream, [=] { emu::launch(grid, block, shared, [&] { std::apply(kernel, params); }); });
    return cudaSuccess;
}
