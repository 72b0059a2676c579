// The fibers behind emu.h: a block's threads each get a stack and run until they reach a barrier (a
// __syncthreads, a warp shuffle) or their end; the scheduler resumes them in turn until every thread has
// finished, and a whole turn in which no thread moved is a deadlock.
#include "emu.h"

#include <map>
#include <memory>
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
std::map<const void*, int> limits;

// The block's barrier and the warps' (for shuffles): arrivals of the current generation; threads that
// have finished no longer count.
int alive = 0, arrived = 0;
unsigned generation = 0;
std::vector<int> warpAlive, warpArrived;
std::vector<unsigned> warpGeneration;
std::vector<uint64_t> slots;
uint64_t progress = 0;
std::string failure;

#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
void* schedulerSp = nullptr;
extern "C" void emu_switch(void** save, void* load);
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
// pointer in *save, and resumes the stack at load.
asm(R"(
    .text
    .globl emu_switch
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
)");

void toScheduler() { emu_switch(&running->sp, schedulerSp); }
void toFiber(Fiber& f) { emu_switch(&schedulerSp, f.sp); }
#else
ucontext_t schedulerContext;
void toScheduler() { swapcontext(&running->context, &schedulerContext); }
void toFiber(Fiber& f) { swapcontext(&schedulerContext, &f.context); }
#endif

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
    }
    running->done = true;
    alive--;
    warpAlive[running->warp]--;
    progress++;
    releaseIfComplete();  // the threads still waiting may now be all there are
    toScheduler();
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
    const int warps = (threads + 31) / 32;
    while (static_cast<int>(stacks.size()) < threads) stacks.emplace_back(new char[kStackBytes]);
    fibers.assign(static_cast<size_t>(threads), Fiber());
    warpAlive.assign(static_cast<size_t>(warps), 0);
    warpArrived.assign(static_cast<size_t>(warps), 0);
    warpGeneration.assign(static_cast<size_t>(warps), 0);
    slots.assign(static_cast<size_t>(warps) * 32, 0);
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
    // With a lagging warp, the other warps run as far as they can before it is resumed once, so that a
    // missing barrier between one warp's writes to shared memory and another's reads changes the result.
    const int lagging = lagWarps ? static_cast<int>((blockIdx.x + 7 * blockIdx.y + 13 * blockIdx.z) % static_cast<unsigned>(warps)) : -1;
    auto turn = [&](bool laggingWarp) {
        for (Fiber& f : fibers) {
            if (f.done || (f.warp == lagging) != laggingWarp) continue;
            running = &f;
            threadIdx = f.index;
            toFiber(f);
            if (!failure.empty()) return;
        }
    };
    while (alive > 0 && failure.empty()) {
        const uint64_t before = progress;
        if (lagging >= 0) {
            uint64_t last;
            do {
                last = progress;
                turn(false);
            } while (progress != last && failure.empty());
            if (failure.empty()) turn(true);
        } else {
            turn(false);
        }
        if (failure.empty() && alive > 0 && progress == before) failure = "deadlock: the block's threads wait at different barriers";
    }
    running = nullptr;
}

// Waits, yielding, until the generation moves on.
void await(const unsigned& gen, unsigned seen) {
    while (gen == seen) toScheduler();
}

}  // namespace

uint8_t* dynamicShared() { return dynamic.data(); }

void syncthreads() {
    const unsigned seen = generation;
    progress++;
    if (++arrived == alive) {
        arrived = 0;
        generation++;
        return;
    }
    await(generation, seen);
}

uint64_t exchange(uint64_t bits, int xorMask) {
    const int w = running->warp, lane = running->lane, other = lane ^ xorMask;
    const size_t partner = static_cast<size_t>(w * 32 + other);
    slots[static_cast<size_t>(w * 32 + lane)] = bits;
    auto warpBarrier = [&] {
        const unsigned seen = warpGeneration[static_cast<size_t>(w)];
        progress++;
        if (++warpArrived[static_cast<size_t>(w)] == warpAlive[static_cast<size_t>(w)]) {
            warpArrived[static_cast<size_t>(w)] = 0;
            warpGeneration[static_cast<size_t>(w)]++;
            return;
        }
        await(warpGeneration[static_cast<size_t>(w)], seen);
    };
    warpBarrier();
    if (partner >= fibers.size() || fibers[partner].done) {
        if (failure.empty()) failure = "a lane shuffled with lane " + std::to_string(other) + ", which has exited or does not exist";
        return bits;
    }
    const uint64_t r = slots[partner];
    warpBarrier();
    return r;
}

void launch(dim3 grid, dim3 block, size_t shared, const std::function<void()>& kernelBody) {
    const int threads = static_cast<int>(block.x * block.y * block.z);
    if (threads <= 0 || threads > 1024) throw std::runtime_error("block of " + std::to_string(threads) + " threads");
    body = &kernelBody;
    // Shared memory starts with garbage, as on the device.
    dynamic.assign(shared + 16, 0xA5);
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

void setSharedLimit(const void* kernel, int bytes) { limits[kernel] = bytes; }

int sharedLimit(const void* kernel) {
    auto it = limits.find(kernel);
    return it == limits.end() ? 48 * 1024 : it->second;
}

}  // namespace emu
