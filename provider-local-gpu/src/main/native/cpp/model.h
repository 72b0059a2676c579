// The Llama-family forward pass (llama, mistral, qwen2) over a GGUF file, with a KV cache per State.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "amx.h"
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

// How a State stores its keys and values. F32 is exact to the computed values; F16 halves the cache and
// the bytes attention reads, at F16's precision (about 3 significant digits).
enum class KvType : int { F32 = 0, F16 = 1 };

// A conversation's KV cache and its attention scratch (sized for the most rows of it one pass has held).
// Used by one forward pass at a time.
struct State {
    int64_t nCtx = 0;
    KvType kvType = KvType::F32;
    int64_t attRows = 0;
    std::vector<uint8_t> kCache, vCache;  // [layer][pos][nHeadKv * headDim] of F32 or F16
    std::vector<float> att;                // [row][head][nCtx]
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

private:
    // Activations of one pass, [row][...]: shared by all States, sized for kMaxBatch rows on first use.
    struct Scratch {
        std::vector<float> x, xb, xb2, q, k, v, hb, hb2, logits;
    };
    void check(const Segment& seg) const;
    void reserveAtt(State& s, int64_t rows) const;
    void forward(const std::vector<Segment>& pieces);
    // y[t] = W x[t] for n input vectors of w->ne[0] values; each weight row is read once for all of them.
    void matmul(const gguf::Tensor* w, const float* x, float* y, int64_t n);
    const gguf::Tensor* require(const std::string& name, int64_t ne0, int64_t ne1, bool matrix);
    const gguf::Tensor* optionalVector(const std::string& name, int64_t n);

    gguf::File file_;
    HParams hp_;
    std::vector<Layer> layers_;
    const gguf::Tensor *tokEmbd_ = nullptr, *outputNorm_ = nullptr, *output_ = nullptr, *ropeFreqs_ = nullptr;
    size_t weightBytes_ = 0;
    Scratch scratch_;
    std::mutex mu_;  // one pass at a time: the scratch and the thread pool are shared
    Precision precision_;
    std::vector<uint8_t> quantized_;  // matmul's quantized input vectors (Fast)
    amx::Packed amxPacked_;           // the same, arranged for the tile products
    ThreadPool pool_;
};
