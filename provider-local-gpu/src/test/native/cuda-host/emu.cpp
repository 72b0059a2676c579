// The fibers behind emu.h: a block's threads each get a stack and run until they reach a barrier (a
// __syncthreads, a warp shuffle) that is not yet complete, or their end; then the next thread in turn runs
// (switched to directly), until every thread has finished; threads that can none of them go on deadlock.
#include "emu.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if !defined(__x86_64__) || defined(EMU_UCONTEXT)
#include <ucontext.h>
#endif

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {

int occupancy = 2;
bool lagWarps = false;

namespace {

constexpr size_t kStackBytes = 128 * 1024;

struct Fiber {
    dim3 index;
    int warp = 0, lane = 0;
    bool done = false;
    const unsigned* waitGen = nullptr;  // while waiting at a barrier: its generation, and the one it saw
    unsigned waitSeen = 0;
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
    void* sp = nullptr;
#else
    ucontext_t context;
#endif
};

std::vector<Fiber> fibers;
std::vector<std::unique_ptr<char[]>> stacks;
Fiber* running = nullptr;
const std::function<void()>* body = nullptr;
std::vector<uint8_t> dynamic;
size_t dynamicBytes = 0;
std::map<const void*, int> limits;

// The block's barrier and the warps' (for shuffles): arrivals of the current generation; threads that
// have finished no longer count.
int alive = 0, arrived = 0;
unsigned generation = 0;
std::vector<int> warpAlive, warpArrived;
std::vector<unsigned> warpGeneration;
std::vector<uint64_t> slots;
std::vector<unsigned> wrote;  // per lane, the warp generation of its last exchange
std::string failure;

#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
void* schedulerSp = nullptr;
extern "C" void emu_switch(void** save, void* load);
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
// pointer in *save, and resumes the stack at load.
asm(R"(
    .pushsection .text
    .globl emu_switch
    .hidden emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
    .popsection
)");

void fromSchedulerTo(Fiber& f) { emu_switch(&schedulerSp, f.sp); }
void toScheduler(Fiber& from) { emu_switch(&from.sp, schedulerSp); }
void between(Fiber& from, Fiber& to) { emu_switch(&from.sp, to.sp); }
#else
ucontext_t schedulerContext;
void fromSchedulerTo(Fiber& f) { swapcontext(&schedulerContext, &f.context); }
void toScheduler(Fiber& from) { swapcontext(&from.context, &schedulerContext); }
void between(Fiber& from, Fiber& to) { swapcontext(&from.context, &to.context); }
#endif

// Which thread runs next, switched to directly from the one that waits or ends: the next in order that can
// go on (not finished, not waiting at a barrier that is still incomplete), or, with a lagging warp, the next
// such outside it while there is one, so that the other warps run as far as they can first. When no thread
// can go on while some have not finished, they wait at different barriers: a deadlock.
size_t cursor = 0;
int lagging = -1;

bool runnable(const Fiber& f) { return !f.done && !(f.waitGen && *f.waitGen == f.waitSeen); }

Fiber* pick() {
    const size_t n = fibers.size();
    Fiber* fallback = nullptr;
    for (size_t k = 1; k <= n; k++) {
        Fiber& f = fibers[(cursor + k) % n];
        if (!runnable(f)) continue;
        if (lagging < 0 || f.warp != lagging) return &f;
        if (!fallback) fallback = &f;
    }
    if (!fallback && failure.empty()) failure = "deadlock: the block's threads wait at different barriers";
    return fallback;
}

// Leaves the running thread for the next (which may be itself: then it just goes on).
void yield() {
    Fiber* from = running;
    Fiber* next = failure.empty() ? pick() : nullptr;
    if (!next) {
        toScheduler(*from);  // the block failed (a deadlock, a thread that threw): it is abandoned
        return;
    }
    if (next == from) return;
    running = next;
    cursor = static_cast<size_t>(next - fibers.data());
    threadIdx = next->index;
    between(*from, *next);
}

void releaseIfComplete() {
    if (arrived > 0 && arrived == alive) {
        arrived = 0;
        generation++;
    }
    const int w = running->warp;
    if (warpArrived[w] > 0 && warpArrived[w] == warpAlive[w]) {
        warpArrived[w] = 0;
        warpGeneration[w]++;
    }
}

void fiberMain() {
    try {
        (*body)();
    } catch (const std::exception& e) {
        if (failure.empty()) failure = std::string("a thread threw: ") + e.what();
    } catch (...) {
        if (failure.empty()) failure = "a thread threw";
    }
    Fiber* self = running;
    self->done = true;
    alive--;
    warpAlive[self->warp]--;
    releaseIfComplete();  // the threads still waiting may now be all there are
    Fiber* next = alive > 0 && failure.empty() ? pick() : nullptr;
    if (!next) {
        toScheduler(*self);
        __builtin_unreachable();  // a finished thread is never resumed
    }
    running = next;
    cursor = static_cast<size_t>(next - fibers.data());
    threadIdx = next->index;
    between(*self, *next);
}

#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
// Entered through emu_switch's ret, with the stack aligned as after a call.
extern "C" void emu_fiberStart() {
    fiberMain();
    std::abort();  // a finished fiber is never resumed
}
#endif

void prepare(Fiber& f, char* stack) {
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
    // The frame emu_switch pops: MXCSR and control word, six registers, then the return address.
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + kStackBytes) & ~uintptr_t(15);
    uint64_t* sp = reinterpret_cast<uint64_t*>(top - 72);
    const uint32_t mxcsr = 0x1F80;
    const uint16_t fpucw = 0x037F;
    std::memcpy(sp, &mxcsr, 4);
    std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
    for (int i = 1; i <= 6; i++) sp[i] = 0;
    sp[7] = reinterpret_cast<uint64_t>(&emu_fiberStart);
    f.sp = sp;
#else
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stack;
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiberMain, 0);
#endif
}

void runBlock(int threads) {
    // Each block's dynamic shared memory starts with garbage, as on the device: NaN as floats and halves.
    std::memset(dynamic.data(), 0xFF, dynamicBytes);
    const int warps = (threads + 31) / 32;
    while (static_cast<int>(stacks.size()) < threads) stacks.emplace_back(new char[kStackBytes]);
    fibers.assign(static_cast<size_t>(threads), Fiber());
    warpAlive.assign(static_cast<size_t>(warps), 0);
    warpArrived.assign(static_cast<size_t>(warps), 0);
    warpGeneration.assign(static_cast<size_t>(warps), 0);
    slots.assign(static_cast<size_t>(warps) * 64, 0);  // two banks
    wrote.assign(static_cast<size_t>(warps) * 32, ~0u);
    alive = threads;
    arrived = 0;
    for (int i = 0; i < threads; i++) {
        Fiber& f = fibers[static_cast<size_t>(i)];
        f.index = dim3(static_cast<unsigned>(i % blockDim.x), static_cast<unsigned>(i / blockDim.x % blockDim.y),
                       static_cast<unsigned>(i / (blockDim.x * blockDim.y)));
        f.warp = i / 32;
        f.lane = i % 32;
        warpAlive[static_cast<size_t>(f.warp)]++;
        prepare(f, stacks[static_cast<size_t>(i)].get());
    }
    // With a lagging warp, the other warps run as far as they can before it is resumed, so that a missing
    // barrier between one warp's writes to shared memory and another's reads changes the result.
    lagging = lagWarps ? static_cast<int>((blockIdx.x + 7 * blockIdx.y + 13 * blockIdx.z) % static_cast<unsigned>(warps)) : -1;
    Fiber& first = fibers[lagging == 0 && warps > 1 ? 32 : 0];
    running = &first;
    cursor = static_cast<size_t>(&first - fibers.data());
    threadIdx = first.index;
    fromSchedulerTo(first);  // back when every thread has finished, or the block failed
    running = nullptr;
}

// Waits, yielding, until the generation moves on.
void await(const unsigned& gen, unsigned seen) {
    running->waitGen = &gen;
    running->waitSeen = seen;
    while (gen == seen) yield();
    running->waitGen = nullptr;
}

}  // namespace

uint8_t* dynamicShared() { return dynamic.data(); }

// The thread that completes a barrier goes on at once, unless it belongs to the lagging warp: then the
// others run first, as they would had it arrived later still.
void afterRelease() {
    if (running->warp == lagging) yield();
}

void syncthreads() {
    const unsigned seen = generation;
    if (++arrived == alive) {
        arrived = 0;
        generation++;
        afterRelease();
        return;
    }
    await(generation, seen);
}

uint64_t exchange(uint64_t bits, int xorMask, unsigned members) {
    if (members != 0xffffffffu && failure.empty()) failure = "a shuffle of part of a warp, which the emulation does not model";
    // One barrier per exchange: the slots alternate between two banks by the warp's barrier generation, so
    // a lane that runs ahead to the next exchange writes the other bank while its partners still read this one.
    const int w = running->warp, lane = running->lane, other = lane ^ xorMask;
    const size_t warp = static_cast<size_t>(w);
    const size_t bank = (warpGeneration[warp] & 1) * slots.size() / 2;
    const size_t partner = static_cast<size_t>(w * 32 + other);
    slots[bank + static_cast<size_t>(w * 32 + lane)] = bits;
    const unsigned seen = warpGeneration[warp];
    wrote[static_cast<size_t>(w * 32 + lane)] = seen;
    if (++warpArrived[warp] == warpAlive[warp]) {
        warpArrived[warp] = 0;
        warpGeneration[warp]++;
        afterRelease();
    } else {
        await(warpGeneration[warp], seen);
    }
    // A lane outside the warp: the device returns the caller's own value.
    if (other < 0 || other > 31) return bits;
    // The partner took part in this exchange (and may since have written to the next one).
    if (partner >= fibers.size() || (wrote[partner] != seen && wrote[partner] != seen + 1)) {
        if (failure.empty()) failure = "a lane shuffled with lane " + std::to_string(other) + ", which has exited or does not exist";
        return bits;
    }
    return slots[bank + partner];
}

// One kernel at a time, whichever thread launches it: the fibers and the block's state are global.
std::mutex launching;

void launch(dim3 grid, dim3 block, size_t shared, const std::function<void()>& kernelBody) {
    std::lock_guard<std::mutex> hold(launching);
    const int threads = static_cast<int>(block.x * block.y * block.z);
    if (threads <= 0 || threads > 1024) throw std::runtime_error("block of " + std::to_string(threads) + " threads");
    body = &kernelBody;
    dynamicBytes = shared;
    dynamic.resize(shared + 16);
    blockDim = block;
    gridDim = grid;
    failure.clear();
    for (unsigned z = 0; z < grid.z && failure.empty(); z++) {
        for (unsigned y = 0; y < grid.y && failure.empty(); y++) {
            for (unsigned x = 0; x < grid.x && failure.empty(); x++) {
                blockIdx = dim3(x, y, z);
                runBlock(threads);
                if (!failure.empty()) {
                    failure += " (block " + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
                }
            }
        }
    }
    body = nullptr;
    if (!failure.empty()) throw std::runtime_error(failure);
}

std::mutex limitsLock;

void setSharedLimit(const void* kernel, int bytes) {
    std::lock_guard<std::mutex> hold(limitsLock);
    limits[kernel] = bytes;
}

int sharedLimit(const void* kernel) {
    std::lock_guard<std::mutex> hold(limitsLock);
    auto it = limits.find(kernel);
    return it == limits.end() ? 48 * 1024 : it->second;
}

}  // namespace emu

// ---- the runtime API ----

namespace emu {
namespace {
constexpr size_t kDeviceBytes = size_t(16) << 30;
std::mutex memoryLock;
std::map<void*, size_t> allocations;
size_t allocated = 0;
}  // namespace

void submit(Stream* s, std::function<void()> work) {
    if (s && s->capturing) {
        s->recorded.push_back(std::move(work));
    } else {
        work();
    }
}
}  // namespace emu

struct EmuGraph {
    std::vector<std::function<void()>> work;
};

struct EmuEvent {
    std::chrono::steady_clock::time_point at;
    bool recorded = false;
};

const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
        case cudaErrorNoDevice: return "cudaErrorNoDevice";
        case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
        default: return "cudaErrorInvalidDevice";
    }
}

const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "error in the host emulation of CUDA"; }

cudaError_t cudaGetDeviceCount(int* count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    std::snprintf(p->name, sizeof(p->name), "%s", "CUDA emulated on the host");
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
    std::lock_guard<std::mutex> hold(emu::memoryLock);
    *total = emu::kDeviceBytes;
    *free = emu::kDeviceBytes - emu::allocated;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    switch (attr) {
        case cudaDevAttrMultiProcessorCount: *value = 3; break;
        case cudaDevAttrMemoryClockRate: *value = 1000000; break;  // kHz
        case cudaDevAttrGlobalMemoryBusWidth: *value = 256; break;
        case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 232448; break;
        default: return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
    *s = new emu::Stream();
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}

// Calls a stream capture refuses (in the global and thread-local modes): they would synchronize.
thread_local int capturing = 0;

cudaError_t cudaStreamSynchronize(cudaStream_t s) { return capturing || (s && s->capturing) ? cudaErrorStreamCaptureUnsupported : cudaSuccess; }

cudaError_t cudaMalloc(void** p, size_t bytes) {
    if (capturing) return cudaErrorStreamCaptureUnsupported;
    std::lock_guard<std::mutex> hold(emu::memoryLock);
    if (bytes > emu::kDeviceBytes - emu::allocated) return cudaErrorMemoryAllocation;
    *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
    if (!*p) return cudaErrorMemoryAllocation;
    std::memset(*p, 0xFF, bytes);  // garbage, as new device memory holds: NaN as floats and halves
    emu::allocations[*p] = bytes;
    emu::allocated += bytes;
    return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> hold(emu::memoryLock);
    auto it = emu::allocations.find(p);
    if (it == emu::allocations.end()) return cudaErrorInvalidValue;
    emu::allocated -= it->second;
    emu::allocations.erase(it);
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, size_t bytes) {
    *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void* p) {
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* to, const void* from, size_t bytes, cudaMemcpyKind) {
    if (capturing) return cudaErrorStreamCaptureUnsupported;
    std::memcpy(to, from, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind, cudaStream_t s) {
    emu::submit(s, [=] { std::memcpy(to, from, bytes); });
    return cudaSuccess;
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
    if (capturing) return cudaErrorStreamCaptureUnsupported;
    std::memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
    emu::submit(s, [=] { std::memset(p, value, bytes); });
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
    if (!s || s->capturing) return cudaErrorInvalidValue;
    s->capturing = true;
    s->recorded.clear();
    capturing++;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
    if (!s || !s->capturing) return cudaErrorInvalidValue;
    s->capturing = false;
    capturing--;
    *graph = new EmuGraph{std::move(s->recorded)};
    s->recorded.clear();
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
    *exec = new EmuGraph{graph->work};
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    const std::vector<std::function<void()>> work = exec->work;
    emu::submit(s, [work] {
        for (const auto& w : work) w();
    });
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
    *e = new EmuEvent();
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    emu::submit(s, [e] {
        e->at = std::chrono::steady_clock::now();
        e->recorded = true;
    });
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
    if (!start->recorded || !stop->recorded) return cudaErrorInvalidValue;
    *ms = std::chrono::duration<float, std::milli>(stop->at - start->at).count();
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
