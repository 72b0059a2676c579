// The Llama-family forward pass (llama, mistral, qwen2) over a GGUF file, with a KV cache per State.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf.h"
#include "threads.h"

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

// A conversation's KV cache and scratch space (sized for the largest batch seen). One thread at a time.
struct State {
    int64_t nCtx = 0;
    int64_t batch = 0;
    std::vector<float> kCache, vCache;  // [layer][pos][nHeadKv * headDim]
    std::vector<float> x, xb, xb2, q, k, v, att, hb, hb2;  // [batch][...]
};

// How quantized weights are multiplied: Exact dequantizes them to floats against the float input; Fast
// quantizes the input to 8 bits per value once per matmul and uses integer dot products (quant.h).
// F32 and F16 weights take the float path in both.
enum class Precision { Exact, Fast };

class Model {
public:
    Model(const std::string& path, int threads, Precision precision = Precision::Fast);

    const HParams& hparams() const { return hp_; }
    size_t weightBytes() const { return weightBytes_; }
    int threads() const { return pool_.size(); }
    Precision precision() const { return precision_; }

    // The bytes a State of nCtx positions takes (KV cache and attention scratch); throws when nCtx is
    // out of range or the state would not fit in this machine's memory.
    uint64_t stateBytes(int64_t nCtx) const;
    std::unique_ptr<State> newState(int64_t nCtx) const;

    // Feeds tokens at positions pos.. pos+n-1. Writes the logits of the last token to out (n_vocab
    // floats), or of every token (n * n_vocab) when all is set.
    void eval(State& s, const int32_t* tokens, int64_t n, int64_t pos, float* out, bool all);

private:
    void reserve(State& s, int64_t n) const;
    void forward(State& s, const int32_t* tokens, int64_t n, int64_t pos, float* out, bool all);
    // y[t] = W x[t] for n input vectors of w->ne[0] values; each weight row is read once for all of them.
    void matmul(const gguf::Tensor* w, const float* x, float* y, int64_t n);
    const gguf::Tensor* require(const std::string& name, int64_t ne0, int64_t ne1, bool matrix);
    const gguf::Tensor* optionalVector(const std::string& name, int64_t n);

    gguf::File file_;
    HParams hp_;
    std::vector<Layer> layers_;
    const gguf::Tensor *tokEmbd_ = nullptr, *outputNorm_ = nullptr, *output_ = nullptr, *ropeFreqs_ = nullptr;
    size_t weightBytes_ = 0;
    Precision precision_;
    std::vector<uint8_t> quantized_;  // matmul's quantized input vectors (Fast)
    ThreadPool pool_;
};
