// The seam between the model description (shared: the GGUF file, its hyperparameters and tensors) and
// the code that runs the forward pass on one kind of device. The CPU backend (model.cpp) computes over
// the mapped file; the CUDA backend (cuda/) uploads the weights once and keeps every State's KV cache in
// device memory. Model checks the segments and cuts them into passes; a backend only computes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf.h"

struct HParams {
    std::string arch;
    int64_t nVocab = 0, nEmbd = 0, nLayer = 0, nHead = 0, nHeadKv = 0, headDim = 0, nCtxTrain = 0, nRot = 0;
    std::vector<int64_t> nFf;   // per layer
    float eps = 1e-5f, ropeBase = 10000.0f, freqScale = 1.0f;
    bool neox = false;
};

struct Layer {
    const gguf::Tensor *attnNorm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
    const gguf::Tensor *bq = nullptr, *bk = nullptr, *bv = nullptr;
    const gguf::Tensor *ffnNorm = nullptr, *wGate = nullptr, *wUp = nullptr, *wDown = nullptr;
};

// What the loader read and checked: every backend computes from this and nothing else of the file.
struct ModelDesc {
    HParams hp;
    std::vector<Layer> layers;
    const gguf::Tensor *tokEmbd = nullptr, *outputNorm = nullptr, *output = nullptr, *ropeFreqs = nullptr;
    size_t weightBytes = 0;
    const gguf::File* file = nullptr;  // the file the tensors are mapped from
};

// How a State stores its keys and values. F32 is exact to the computed values; F16 halves the cache and
// the bytes attention reads, at F16's precision (about 3 significant digits).
enum class KvType : int { F32 = 0, F16 = 1 };

// A conversation's KV cache, held by the backend that made it (on its device) and used by one forward
// pass at a time. owner tells Model which backend a handle belongs to.
struct State {
    virtual ~State() = default;
    const void* owner = nullptr;
    int64_t nCtx = 0;
    KvType kvType = KvType::F32;
};

// Rows of one State in a batched forward pass: n tokens at positions pos.. pos+n-1. out receives the
// last token's logits (n_vocab floats), or every token's (n * n_vocab) when all is set, or nothing when
// it is null.
struct Segment {
    State* state = nullptr;
    const int32_t* tokens = nullptr;
    int64_t n = 0;
    int64_t pos = 0;
    float* out = nullptr;
    bool all = false;
};

// How quantized weights are multiplied: Exact dequantizes them to floats against the float input; Fast
// quantizes the input to 8 bits per value once per matmul and uses integer dot products (quant.h on the
// CPU; on CUDA, dequant.h's, for Q8_0, Q4_K and Q6_K, while HYBRIDINFERENCE_CUDA_INTEGER=1 is set: see
// cuda/backend.cu). F32 and F16 weights take the float path in both.
enum class Precision { Exact, Fast };

// The rows one forward pass computes at once (see Model::evalBatch): scratch space is sized for it.
constexpr int64_t kMaxBatch = 64;

// Errors of a device, told apart so that the Java side can map them: memory the device does not have
// (a capacity problem: a smaller context or fewer sessions fit), and a device that failed (a launch error,
// a lost device: the provider is unavailable from then on).
struct DeviceMemoryError : gguf::Error {
    explicit DeviceMemoryError(const std::string& m) : gguf::Error(m) {}
};
struct DeviceError : gguf::Error {
    explicit DeviceError(const std::string& m) : gguf::Error(m) {}
};

class Backend {
public:
    virtual ~Backend() = default;
    // "cpu" or "cuda".
    virtual const char* name() const = 0;
    // The device as receipts name it: "cpu", or "cuda:0 NVIDIA H100 80GB HBM3".
    virtual std::string device() const = 0;
    // CPU threads the backend computes with.
    virtual int threads() const = 0;
    // The bytes a State of nCtx positions takes on the backend's device; throws when nCtx is out of range
    // or the state could never fit there.
    virtual uint64_t stateBytes(int64_t nCtx, KvType kv) const = 0;
    virtual std::unique_ptr<State> newState(int64_t nCtx, KvType kv) = 0;
    // One pass over at most kMaxBatch rows, checked by Model: each segment's rows in order, each State in
    // one segment, positions within its context.
    virtual void forward(const std::vector<Segment>& pieces) = 0;
};

// The CUDA backend over device `ordinal`, or a DeviceError naming why there is none (a build without
// CUDA, no such device). Defined in cuda/ when the build has CUDA, in cuda_stub.cpp otherwise.
std::unique_ptr<Backend> makeCudaBackend(const ModelDesc& desc, int ordinal, Precision precision);

// CUDA devices, for the Java side: 0 when the build has no CUDA or the machine no driver or device.
namespace cudadev {
int count();
// Why count() is 0 ("" when it is not): the build has no CUDA backend, no driver, no device.
std::string unavailableReason();
std::string name(int ordinal);
// {total, free} bytes of device memory.
void memory(int ordinal, uint64_t& total, uint64_t& free);
// The device memory's peak bandwidth in GB/s, from its clock and bus width (for the benchmark's share).
double peakBandwidth(int ordinal);
// For the benchmark: GB/s of weights one product of a rows x cols matrix of ggml type `type` reads with one
// input vector, over reps launches back to back; flags: 1 integer products, 2 prefetch into L2, 4
// programmatic dependent launch (ops::Matrices).
double productRate(int ordinal, uint32_t type, int64_t rows, int64_t cols, int reps, int flags);
}  // namespace cudadev
