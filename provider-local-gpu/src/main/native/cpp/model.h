// The Llama-family forward pass (llama, mistral, qwen2) over a GGUF file, with a KV cache per State.
// The loader and the model description are shared; a Backend (backend.h) computes the passes on the CPU
// or on a CUDA device.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "gguf.h"
#include "threads.h"

// The device a Model computes on: the CPU (-1) or a CUDA device by ordinal.
constexpr int kCpuDevice = -1;

class Model {
public:
    Model(const std::string& path, int threads, Precision precision = Precision::Fast, int device = kCpuDevice);

    const HParams& hparams() const { return desc_.hp; }
    size_t weightBytes() const { return desc_.weightBytes; }
    int threads() const { return backend_->threads(); }
    Precision precision() const { return precision_; }
    const Backend& backend() const { return *backend_; }

    // The bytes a State of nCtx positions takes (KV cache and attention scratch); throws when nCtx is
    // out of range or the state would not fit in the device's memory.
    uint64_t stateBytes(int64_t nCtx, KvType kv = KvType::F32) const;
    std::unique_ptr<State> newState(int64_t nCtx, KvType kv = KvType::F32) const;

    // Feeds tokens at positions pos.. pos+n-1. Writes the logits of the last token to out (n_vocab
    // floats), or of every token (n * n_vocab) when all is set.
    void eval(State& s, const int32_t* tokens, int64_t n, int64_t pos, float* out, bool all);

    // Feeds the rows of several States in shared passes: every weight matrix is read once per pass for
    // the rows of all of them (at most kMaxBatch rows a pass; longer batches are cut into passes, a
    // segment's rows in order). Each row is rotated at its own position, writes its key and value to its
    // own State's cache and attends over that cache alone, so each segment's logits are those eval
    // gives for it alone. A State may appear in one segment only. Checks every segment before computing.
    void evalBatch(const std::vector<Segment>& segments);

    // For tests: the next evalBatch, once its segments are checked, fails as a device does: kind 1 out of
    // device memory (DeviceMemoryError), 2 a failed device (DeviceError); 0 clears it.
    void injectFault(int kind) { fault_ = kind; }

private:
    void check(const Segment& seg) const;
    const gguf::Tensor* require(const std::string& name, int64_t ne0, int64_t ne1, bool matrix);
    const gguf::Tensor* optionalVector(const std::string& name, int64_t n);

    gguf::File file_;
    ModelDesc desc_;
    Precision precision_;
    std::mutex mu_;  // one pass at a time: a backend's scratch is shared
    std::unique_ptr<Backend> backend_;
    std::atomic<int> fault_{0};
};
