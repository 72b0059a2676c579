#include "model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <unordered_map>

#include "amx.h"
#include "gemm.h"
#include "kernels.h"
#include "pages.h"
#include "quant.h"

using gguf::Error;

namespace {

// Bounds on hyperparameters read from the file. Each is far above any real model (Llama 3.1 405B has 128
// heads of 128 and a feed-forward width of 53248) and keeps every product of them, and every size of a
// KV cache, inside 64 bits: a hostile file cannot make a size wrap around to a small, valid-looking one.
constexpr int64_t kMaxHeads = 1 << 16;
constexpr int64_t kMaxHeadDim = 1 << 16;
constexpr int64_t kMaxFeedForward = 1 << 24;

int64_t intKey(const gguf::File& f, const std::string& key, int64_t def, bool required) {
    const gguf::Value* v = f.find(key);
    if (!v) {
        if (required) throw Error("metadata " + key + " is missing");
        return def;
    }
    if (v->type == gguf::ARRAY) {
        if (v->ints.empty()) throw Error("metadata " + key + " is an empty or non-integer array");
        return v->ints[0];
    }
    if (v->type == gguf::FLOAT32 || v->type == gguf::FLOAT64 || v->type == gguf::STRING) {
        throw Error("metadata " + key + " must be an integer");
    }
    return v->i;
}

float floatKey(const gguf::File& f, const std::string& key, float def, bool required) {
    const gguf::Value* v = f.find(key);
    if (!v) {
        if (required) throw Error("metadata " + key + " is missing");
        return def;
    }
    if (v->type == gguf::FLOAT32 || v->type == gguf::FLOAT64) return static_cast<float>(v->f);
    if (v->type == gguf::STRING || v->type == gguf::ARRAY) throw Error("metadata " + key + " must be a number");
    return static_cast<float>(v->i);
}

// A per-layer value: an array with one entry per layer, or one scalar for all.
std::vector<int64_t> perLayer(const gguf::File& f, const std::string& key, int64_t nLayer, int64_t def, bool required) {
    const gguf::Value* v = f.find(key);
    if (v && v->type == gguf::ARRAY) {
        if (static_cast<int64_t>(v->ints.size()) != nLayer) {
            throw Error("metadata " + key + " has " + std::to_string(v->ints.size()) + " entries for " + std::to_string(nLayer) + " layers");
        }
        return v->ints;
    }
    return std::vector<int64_t>(static_cast<size_t>(nLayer), intKey(f, key, def, required));
}

}  // namespace

// The CPU backend: computes over the mapped file with the kernels of kernels.h, quant.h and gemm.h on a
// pool of threads. Its States hold their caches in host memory.
struct CpuState : State {
    int64_t attRows = 0;
    // [layer][KV head][pos][headDim] of F32 or F16: an attention job reads its head's rows in one run, which
    // the processor's prefetchers follow (position-major rows, read a head's slice at a time, made decode
    // attention over 8 cold caches 1.6 to 2.1 times slower).
    PageBuffer kCache, vCache;  // zero until written: a cache takes memory as its positions fill
    PageBuffer att;  // [row][head][nCtx] floats: attention scratch for the most rows a pass held, as filled
    float* scores(int64_t row, int64_t head, int64_t nHead) const {
        return reinterpret_cast<float*>(att.get()) + (row * nHead + head) * nCtx;
    }
};

class CpuBackend : public Backend {
public:
    CpuBackend(const ModelDesc& d, int threads, Precision precision)
        : hp_(d.hp), layers_(d.layers), tokEmbd_(d.tokEmbd), outputNorm_(d.outputNorm), output_(d.output), ropeFreqs_(d.ropeFreqs),
          precision_(precision), pool_(threads), file_(d.file) {
        repackWeights();
    }
    const char* name() const override { return "cpu"; }
    std::string device() const override { return "cpu"; }
    int threads() const override { return pool_.size(); }
    uint64_t stateBytes(int64_t nCtx, KvType kv) const override;
    std::unique_ptr<State> newState(int64_t nCtx, KvType kv) override;
    void forward(const std::vector<Segment>& pieces) override;

private:
    // Activations of one pass, [row][...]: shared by all States, sized for kMaxBatch rows on first use.
    struct Scratch {
        std::vector<float> x, xb, xb2, q, k, v, hb, hb2, logits;
    };
    void reserveAtt(CpuState& s, int64_t rows) const;
    // Unless HYBRIDINFERENCE_REPACK=0: F32 and F16 weight matrices repacked into panels (gemm::pack) where
    // the AVX-512 tile kernel serves (an output matrix that is also the token embeddings too: the lookup
    // then reads its rows from the panels); and at the avx512 and amx levels, in fast precision, the
    // integer-type ones for the transposed-panel kernel (amx::repack), which then serves them for every
    // count of rows.
    void repackWeights();
    // y[t] = W x[t] for n input vectors of w->ne[0] values; each weight row is read once for all of them.
    // sameInput: x is unchanged since the previous call, whose quantized inputs serve again if that call's
    // weights had the same type.
    void matmul(const gguf::Tensor* w, const float* x, float* y, int64_t n, bool sameInput = false);
    // ys[i] = ws[i] x for count weights and the same n input vectors, as matmul gives them; consecutive
    // repacked weights of one type and width go through the pool in one pass (the threads meet once).
    void matmuls(const gguf::Tensor* const* ws, float* const* ys, int count, const float* x, int64_t n);
    // x's n vectors of cols values quantized for weights of an integer type, once per input and type.
    const uint8_t* quantizedInput(uint32_t type, const float* x, int64_t n, int64_t cols);

    const HParams& hp_;
    const std::vector<Layer>& layers_;
    const gguf::Tensor *tokEmbd_, *outputNorm_, *output_, *ropeFreqs_;
    Scratch scratch_;
    Precision precision_;
    std::vector<uint8_t> quantized_;  // matmul's quantized input vectors (Fast)
    amx::Packed amxPacked_;           // the same, arranged for the tile products
    uint32_t quantizedType_ = 0;      // the type quantized_ holds them for, and how many
    int64_t quantizedCount_ = 0;
    ThreadPool pool_;
    std::unordered_map<const gguf::Tensor*, amx::Repacked> repacked_;
    std::unordered_map<const gguf::Tensor*, gemm::Panels> panels_;
    const gguf::File* file_;
    std::vector<uint8_t> embeddingRow_;  // a token's embedding row read through file_
};

void CpuBackend::repackWeights() {
    const char* env = std::getenv("HYBRIDINFERENCE_REPACK");
    if (env && std::strcmp(env, "0") == 0) return;
    // At the amx level too: on an AMX Xeon with 2 cores the repacked weights' kernel prefilled 1.2 to 1.4
    // times as fast as the tile product (passes of 64 rows) and decoded 1.5 to 2.3 times as fast as the
    // panels transposed per call.
    const bool integer = precision_ == Precision::Fast && qk::level() >= qk::Avx512;
    std::vector<const gguf::Tensor*> weights{output_};
    for (const Layer& L : layers_) weights.insert(weights.end(), {L.wq, L.wk, L.wv, L.wo, L.wGate, L.wUp, L.wDown});
    const long page = sysconf(_SC_PAGESIZE);
    for (const gguf::Tensor* w : weights) {
        if (!w || repacked_.count(w) || panels_.count(w)) continue;
        if (qk::integerType(w->type)) {
            if (!integer || !amx::supports(w->type)) continue;
            int64_t elems, bytes;
            gguf::blockInfo(w->type, elems, bytes);
            repacked_.emplace(w, amx::repack(&pool_, w->type, w->data, w->ne[0] / elems * bytes, w->ne[1], w->ne[0]));
        } else {
            if (!gemm::packable(w)) continue;
            panels_.emplace(w, gemm::pack(pool_, w->type, w->data, w->rows(), w->ne[0]));
        }
        // The file's pages of this matrix are read no more: drop them from the process, so that the weights
        // are not resident twice. A quantized output that is also the token embeddings is dropped too: the
        // lookup then reads its rows through the file, not the mapping (forward).
        if (page <= 0) continue;
        const uintptr_t from = (reinterpret_cast<uintptr_t>(w->data) + page - 1) / page * page;
        const uintptr_t to = (reinterpret_cast<uintptr_t>(w->data) + w->bytes) / page * page;
        if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
    }
}

Model::Model(const std::string& path, int threads, Precision precision, int device) : file_(path), precision_(precision) {
    qk::checkEnvironment();
    HParams& hp_ = desc_.hp;
    const gguf::Value* a = file_.find("general.architecture");
    if (!a || a->type != gguf::STRING) throw Error("metadata general.architecture is missing");
    hp_.arch = a->s;
    if (hp_.arch != "llama" && hp_.arch != "mistral" && hp_.arch != "qwen2") {
        throw Error("architecture " + hp_.arch + " is not supported (expected llama, mistral or qwen2)");
    }
    const std::string p = hp_.arch + ".";
    hp_.neox = hp_.arch == "qwen2";
    hp_.nEmbd = intKey(file_, p + "embedding_length", 0, true);
    hp_.nLayer = intKey(file_, p + "block_count", 0, true);
    hp_.nCtxTrain = intKey(file_, p + "context_length", 0, true);
    if (hp_.nEmbd <= 0 || hp_.nEmbd > (1 << 20)) throw Error("embedding_length " + std::to_string(hp_.nEmbd) + " is not plausible");
    if (hp_.nLayer <= 0 || hp_.nLayer > 1024) throw Error("block_count " + std::to_string(hp_.nLayer) + " is not plausible");
    if (hp_.nCtxTrain <= 0 || hp_.nCtxTrain > INT32_MAX) {
        throw Error("context_length " + std::to_string(hp_.nCtxTrain) + " is not plausible (expected 1 to 2^31 - 1)");
    }
    std::vector<int64_t> heads = perLayer(file_, p + "attention.head_count", hp_.nLayer, 0, true);
    std::vector<int64_t> kvHeads = perLayer(file_, p + "attention.head_count_kv", hp_.nLayer, heads[0], false);
    for (int64_t l = 1; l < hp_.nLayer; l++) {
        if (heads[l] != heads[0] || kvHeads[l] != kvHeads[0]) throw Error("per-layer head counts that differ are not supported");
    }
    hp_.nHead = heads[0];
    hp_.nHeadKv = kvHeads[0];
    if (hp_.nHead <= 0 || hp_.nHeadKv <= 0 || hp_.nHead % hp_.nHeadKv != 0) {
        throw Error("head_count " + std::to_string(hp_.nHead) + " must be a positive multiple of head_count_kv " + std::to_string(hp_.nHeadKv));
    }
    if (hp_.nHead > kMaxHeads) throw Error("head_count " + std::to_string(hp_.nHead) + " is not plausible (at most 65536)");
    hp_.headDim = intKey(file_, p + "attention.key_length", hp_.nEmbd / hp_.nHead, false);
    if (intKey(file_, p + "attention.value_length", hp_.headDim, false) != hp_.headDim || hp_.headDim <= 0 || hp_.headDim % 2 != 0) {
        throw Error("head size must be even and the same for keys and values");
    }
    // Checked before any product: n_head * head_dim of two unchecked 64-bit values can wrap around to a
    // width that matches the tensors, and the attention would then run far past its buffers.
    if (hp_.headDim > kMaxHeadDim) throw Error("head size " + std::to_string(hp_.headDim) + " is not plausible (at most 65536)");
    hp_.nRot = intKey(file_, p + "rope.dimension_count", hp_.headDim, false);
    if (hp_.nRot <= 0 || hp_.nRot > hp_.headDim || hp_.nRot % 2 != 0) throw Error("rope.dimension_count " + std::to_string(hp_.nRot) + " is not valid");
    hp_.nFf = perLayer(file_, p + "feed_forward_length", hp_.nLayer, 0, true);
    for (int64_t ff : hp_.nFf) {
        if (ff <= 0 || ff > kMaxFeedForward) throw Error("feed_forward_length " + std::to_string(ff) + " is not plausible");
    }
    hp_.eps = floatKey(file_, p + "attention.layer_norm_rms_epsilon", 1e-5f, true);
    hp_.ropeBase = floatKey(file_, p + "rope.freq_base", 10000.0f, false);
    const gguf::Value* scaling = file_.find(p + "rope.scaling.type");
    if (scaling && scaling->type == gguf::STRING && scaling->s == "linear") {
        float factor = floatKey(file_, p + "rope.scaling.factor", 1.0f, false);
        if (factor > 0) hp_.freqScale = 1.0f / factor;
    } else if (scaling && scaling->type == gguf::STRING && scaling->s != "none") {
        throw Error("rope scaling " + scaling->s + " is not supported");
    }

    const gguf::Tensor* emb = file_.tensor("token_embd.weight");
    if (!emb) throw Error("tensor token_embd.weight is missing");
    hp_.nVocab = emb->ne[1];
    // Token ids are 32-bit on both sides of JNI.
    if (hp_.nVocab > INT32_MAX) throw Error("vocabulary of " + std::to_string(hp_.nVocab) + " tokens is not plausible (token_embd.weight rows)");
    desc_.file = &file_;
    desc_.tokEmbd = require("token_embd.weight", hp_.nEmbd, hp_.nVocab, true);
    desc_.outputNorm = require("output_norm.weight", hp_.nEmbd, 1, false);
    desc_.output = file_.tensor("output.weight") ? require("output.weight", hp_.nEmbd, hp_.nVocab, true) : desc_.tokEmbd;
    desc_.ropeFreqs = optionalVector("rope_freqs.weight", hp_.nRot / 2);
    const int64_t qDim = hp_.nHead * hp_.headDim, kvDim = hp_.nHeadKv * hp_.headDim;
    for (int64_t l = 0; l < hp_.nLayer; l++) {
        const std::string b = "blk." + std::to_string(l) + ".";
        Layer L;
        L.attnNorm = require(b + "attn_norm.weight", hp_.nEmbd, 1, false);
        L.wq = require(b + "attn_q.weight", hp_.nEmbd, qDim, true);
        L.wk = require(b + "attn_k.weight", hp_.nEmbd, kvDim, true);
        L.wv = require(b + "attn_v.weight", hp_.nEmbd, kvDim, true);
        L.wo = require(b + "attn_output.weight", qDim, hp_.nEmbd, true);
        L.bq = optionalVector(b + "attn_q.bias", qDim);
        L.bk = optionalVector(b + "attn_k.bias", kvDim);
        L.bv = optionalVector(b + "attn_v.bias", kvDim);
        if (hp_.arch == "qwen2" && (!L.bq || !L.bk || !L.bv)) throw Error("qwen2 needs attn_q/k/v biases in layer " + std::to_string(l));
        L.ffnNorm = require(b + "ffn_norm.weight", hp_.nEmbd, 1, false);
        L.wGate = require(b + "ffn_gate.weight", hp_.nEmbd, hp_.nFf[l], true);
        L.wUp = require(b + "ffn_up.weight", hp_.nEmbd, hp_.nFf[l], true);
        L.wDown = require(b + "ffn_down.weight", hp_.nFf[l], hp_.nEmbd, true);
        desc_.layers.push_back(L);
    }
    for (const gguf::Tensor& t : file_.tensors()) desc_.weightBytes += t.bytes;
    // The backend last: it may copy the weights to its device, once the description is complete.
    if (device == kCpuDevice) {
        backend_ = std::make_unique<CpuBackend>(desc_, threads, precision);
    } else {
        if (device < 0) throw Error("device " + std::to_string(device) + " is not a CUDA ordinal or -1 (the CPU)");
        backend_ = makeCudaBackend(desc_, device, precision);
    }
}

const gguf::Tensor* Model::require(const std::string& name, int64_t ne0, int64_t ne1, bool matrix) {
    const gguf::Tensor* t = file_.tensor(name);
    if (!t) throw Error("tensor " + name + " is missing");
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
        throw Error("tensor " + name + " has shape [" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                    "], expected [" + std::to_string(ne0) + ", " + std::to_string(ne1) + "]");
    }
    if (!t->data) throw Error("tensor " + name + " has type " + gguf::typeName(t->type) + ", which is not supported (F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K)");
    if (!matrix && t->type != gguf::F32) throw Error("tensor " + name + " must be F32");
    return t;
}

const gguf::Tensor* Model::optionalVector(const std::string& name, int64_t n) {
    return file_.tensor(name) ? require(name, n, 1, false) : nullptr;
}

uint64_t Model::stateBytes(int64_t nCtx, KvType kvType) const { return backend_->stateBytes(nCtx, kvType); }

std::unique_ptr<State> Model::newState(int64_t nCtx, KvType kvType) const { return backend_->newState(nCtx, kvType); }

uint64_t CpuBackend::stateBytes(int64_t nCtx, KvType kvType) const {
    if (nCtx <= 0 || nCtx > INT32_MAX) throw Error("context size " + std::to_string(nCtx) + " must be between 1 and 2^31 - 1");
    // In 128 bits: layers (2^10) x positions (2^31) x kv width (2^32) does not fit in 64.
    using u128 = unsigned __int128;
    const u128 kv = u128(2) * u128(hp_.nLayer) * u128(nCtx) * u128(hp_.nHeadKv * hp_.headDim);
    const u128 att = u128(kMaxBatch) * u128(hp_.nHead) * u128(nCtx);
    const u128 bytes = kv * (kvType == KvType::F16 ? 2 : 4) + att * sizeof(float);
    // A cache larger than the machine's memory would not fail cleanly: the kernel would kill the process
    // as its positions fill their pages. Refuse it here with a message instead.
    const long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGESIZE);
    const u128 physical = pages > 0 && pageSize > 0 ? u128(pages) * u128(pageSize) : u128(UINT64_MAX);
    if (bytes > physical || bytes > u128(PTRDIFF_MAX)) {
        const u128 mib = bytes >> 20;
        throw Error("a context of " + std::to_string(nCtx) + " tokens needs " +
                    (mib > u128(UINT64_MAX) ? std::string("more than 2^64 bytes") : std::to_string(static_cast<uint64_t>(mib)) + " MiB") +
                    " of KV cache, more than this machine's " + std::to_string(static_cast<uint64_t>(physical >> 20)) +
                    " MiB of memory; use a smaller context size");
    }
    return static_cast<uint64_t>(bytes);
}

std::unique_ptr<State> CpuBackend::newState(int64_t nCtx, KvType kvType) {
    stateBytes(nCtx, kvType);
    auto s = std::make_unique<CpuState>();
    s->owner = this;
    s->nCtx = nCtx;
    s->kvType = kvType;
    const size_t kvBytes = static_cast<size_t>(hp_.nLayer) * static_cast<size_t>(nCtx) * static_cast<size_t>(hp_.nHeadKv * hp_.headDim) *
                           (kvType == KvType::F16 ? 2 : 4);
    s->kCache = PageBuffer(kvBytes, PageBuffer::Pages::Small);
    s->vCache = PageBuffer(kvBytes, PageBuffer::Pages::Small);
    reserveAtt(*s, 1);
    return s;
}

void CpuBackend::reserveAtt(CpuState& s, int64_t rows) const {
    if (rows <= s.attRows) return;
    s.att = PageBuffer(static_cast<size_t>(rows * hp_.nHead * s.nCtx) * sizeof(float), PageBuffer::Pages::Small);
    s.attRows = rows;
}

const uint8_t* CpuBackend::quantizedInput(uint32_t type, const float* x, int64_t n, int64_t cols) {
    const size_t stride = qk::inputBytes(type, cols);
    if (quantized_.size() < stride * static_cast<size_t>(n)) quantized_.resize(stride * static_cast<size_t>(n));
    uint8_t* xq = quantized_.data();
    if (quantizedType_ != type || quantizedCount_ != n) {
        pool_.parallelClaim(n, 1, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; t++) qk::quantize(type, x + t * cols, xq + stride * t, cols);
        });
        quantizedType_ = type;
        quantizedCount_ = n;
    }
    return xq;
}

void CpuBackend::matmuls(const gguf::Tensor* const* ws, float* const* ys, int count, const float* x, int64_t n) {
    constexpr int kMost = 4;
    for (int i = 0; i < count;) {
        // The run of repacked weights from i that share ws[i]'s type and width.
        const amx::Repacked* rs[kMost];
        int m = 0;
        for (; i + m < count && m < kMost; m++) {
            const gguf::Tensor* w = ws[i + m];
            const auto r = repacked_.find(w);
            if (r == repacked_.end() || w->type != ws[i]->type || w->ne[0] != ws[i]->ne[0]) break;
            rs[m] = &r->second;
        }
        if (m < 2) {
            matmul(ws[i], x, ys[i], n, i > 0);
            i++;
            continue;
        }
        // Repacked weights exist only for the integer products of fast precision (repackWeights).
        if (i == 0) quantizedCount_ = 0;  // what quantized_ holds is of another input
        const uint32_t type = ws[i]->type;
        const int64_t cols = ws[i]->ne[0];
        amx::multiply(&pool_, rs, ys + i, m, quantizedInput(type, x, n, cols), qk::inputBytes(type, cols), n);
        i += m;
    }
}

void CpuBackend::matmul(const gguf::Tensor* w, const float* x, float* y, int64_t n, bool sameInput) {
    if (!sameInput) quantizedCount_ = 0;  // what quantized_ holds is of another input
    // Fast precision multiplies quantized weights by integer dots at every count of vectors, so that a
    // row's result for a vector never depends on how many others share the call (a prompt's slice, a batch
    // of sessions); the float matrix product serves F32/F16 weights, and quantized ones in exact precision.
    const bool integer = precision_ == Precision::Fast && qk::integerType(w->type);
    if (const auto panels = panels_.find(w); panels != panels_.end()) {
        gemm::multiply(pool_, panels->second, x, y, n);
        return;
    }
    if (!integer && gemm::supports(w, n)) {
        gemm::multiply(pool_, w, x, y, n);
        return;
    }
    int64_t elems, bytes;
    gguf::blockInfo(w->type, elems, bytes);
    const int64_t cols = w->ne[0], rows = w->ne[1];
    const int64_t rowBytes = cols / elems * bytes;
    const uint8_t* base = w->data;
    const uint32_t type = w->type;
    // Row dots claimed in chunks, eight per thread, rather than one fixed share each (see parallelClaim).
    if (integer) {
        // Each input vector quantized once, then integer dot products row by row.
        const size_t stride = qk::inputBytes(type, cols);
        const uint8_t* xq = quantizedInput(type, x, n, cols);
        const auto repacked = repacked_.find(w);
        if (repacked != repacked_.end()) {
            amx::multiply(&pool_, repacked->second, xq, stride, n, y);
            return;
        }
        if (qk::level() >= qk::Avx512 && amx::supports(type)) {
            amx::multiply(&pool_, type, base, rowBytes, rows, cols, xq, stride, n, y, amxPacked_, qk::level() == qk::Amx);
            return;
        }
        pool_.parallelParts(rows, 8, [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e; r++) {
                const uint8_t* row = base + r * rowBytes;
                for (int64_t t = 0; t < n; t++) y[t * rows + r] = qk::dot(type, row, xq + stride * t, cols);
            }
        });
        return;
    }
    pool_.parallelParts(rows, 8, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; r++) {
            const uint8_t* row = base + r * rowBytes;
            for (int64_t t = 0; t < n; t++) y[t * rows + r] = kern::dot(type, row, x + t * cols, cols);
        }
    });
}

void Model::check(const Segment& seg) const {
    if (!seg.state) throw Error("state handle is closed");
    if (seg.state->owner != backend_.get()) throw Error("state belongs to another model");
    const int64_t n = seg.n, pos = seg.pos;
    if (n <= 0) throw Error("no tokens to evaluate");
    if (pos < 0 || pos + n > seg.state->nCtx) {
        throw Error("positions " + std::to_string(pos) + ".." + std::to_string(pos + n - 1) + " exceed the context of " +
                    std::to_string(seg.state->nCtx));
    }
    for (int64_t i = 0; i < n; i++) {
        if (seg.tokens[i] < 0 || seg.tokens[i] >= desc_.hp.nVocab) {
            throw Error("token id " + std::to_string(seg.tokens[i]) + " is outside the vocabulary of " + std::to_string(desc_.hp.nVocab));
        }
    }
}

void Model::eval(State& s, const int32_t* tokens, int64_t n, int64_t pos, float* out, bool all) {
    Segment seg;
    seg.state = &s;
    seg.tokens = tokens;
    seg.n = n;
    seg.pos = pos;
    seg.out = out;
    seg.all = all;
    evalBatch({seg});
}

void Model::evalBatch(const std::vector<Segment>& segments) {
    if (segments.empty()) throw Error("no segments to evaluate");
    for (size_t i = 0; i < segments.size(); i++) {
        check(segments[i]);
        for (size_t j = 0; j < i; j++) {
            if (segments[j].state == segments[i].state) throw Error("a state appears in more than one segment of a batch");
        }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (const int fault = fault_.exchange(0)) {
        if (fault == 1) throw DeviceMemoryError("injected fault: out of device memory");
        throw DeviceError("injected fault: the device failed");
    }
    // Passes of at most kMaxBatch rows, so that scratch space stays bounded; a segment that does not fit
    // goes on in the next pass, after its earlier rows are in its cache.
    std::vector<int64_t> done(segments.size(), 0);
    size_t first = 0;
    while (first < segments.size()) {
        std::vector<Segment> pieces;
        int64_t rows = 0;
        for (size_t i = first; i < segments.size() && rows < kMaxBatch; i++) {
            const Segment& seg = segments[i];
            const int64_t m = std::min(kMaxBatch - rows, seg.n - done[i]);
            const bool last = done[i] + m == seg.n;
            Segment p;
            p.state = seg.state;
            p.tokens = seg.tokens + done[i];
            p.n = m;
            p.pos = seg.pos + done[i];
            p.all = seg.all;
            p.out = !seg.out ? nullptr : seg.all ? seg.out + done[i] * desc_.hp.nVocab : (last ? seg.out : nullptr);
            pieces.push_back(p);
            rows += m;
            done[i] += m;
        }
        backend_->forward(pieces);
        while (first < segments.size() && done[first] == segments[first].n) first++;
    }
}

void CpuBackend::forward(const std::vector<Segment>& pieces) {
    // After the pass the caller samples, streams and schedules: the pool's workers should not spin on the
    // cores it needs for that.
    struct Rest {
        ThreadPool& pool;
        ~Rest() { pool.rest(); }
    } rest{pool_};
    const int64_t nEmbd = hp_.nEmbd, hd = hp_.headDim, nHead = hp_.nHead, nKv = hp_.nHeadKv;
    const int64_t qDim = nHead * hd, kvDim = nKv * hd, group = nHead / nKv;
    // Each row's State, position and index among its State's rows in this pass (its attention scratch).
    std::vector<CpuState*> rowState;
    std::vector<int64_t> rowPos, rowLocal;
    const int32_t* tokenOf[kMaxBatch];
    for (const Segment& p : pieces) {
        CpuState* st = static_cast<CpuState*>(p.state);
        reserveAtt(*st, p.n);
        for (int64_t t = 0; t < p.n; t++) {
            tokenOf[rowState.size()] = p.tokens + t;
            rowState.push_back(st);
            rowPos.push_back(p.pos + t);
            rowLocal.push_back(t);
        }
    }
    const int64_t n = static_cast<int64_t>(rowState.size());
    Scratch& s = scratch_;
    if (s.x.empty()) {
        const int64_t maxFf = *std::max_element(hp_.nFf.begin(), hp_.nFf.end());
        auto size = [](int64_t per) { return static_cast<size_t>(kMaxBatch * per); };
        s.x.resize(size(nEmbd));
        s.xb.resize(size(std::max(nEmbd, qDim)));
        s.xb2.resize(size(nEmbd));
        s.q.resize(size(qDim));
        s.k.resize(size(kvDim));
        s.v.resize(size(kvDim));
        s.hb.resize(size(maxFf));
        s.hb2.resize(size(maxFf));
    }

    int64_t elems, bytes;
    gguf::blockInfo(tokEmbd_->type, elems, bytes);
    // Embeddings repacked (a tied output) are read from their panels or, quantized, through the file: their
    // mapped pages were dropped (repackWeights).
    const auto embeddings = panels_.find(tokEmbd_);
    const bool throughFile = repacked_.count(tokEmbd_) != 0;
    const size_t rowBytes = static_cast<size_t>(nEmbd / elems * bytes);
    for (int64_t t = 0; t < n; t++) {
        const uint8_t* row = tokEmbd_->data + *tokenOf[t] * rowBytes;
        if (embeddings != panels_.end()) {
            gemm::row(embeddings->second, *tokenOf[t], &s.x[t * nEmbd]);
        } else if (throughFile) {
            embeddingRow_.resize(rowBytes);
            file_->read(row, rowBytes, embeddingRow_.data());
            kern::dequantizeRow(tokEmbd_->type, embeddingRow_.data(), &s.x[t * nEmbd], nEmbd);
        } else {
            kern::dequantizeRow(tokEmbd_->type, row, &s.x[t * nEmbd], nEmbd);
        }
    }

    // RoPE angles per row at its own position, as ggml computes them (in float, theta multiplied step by step).
    const int64_t half = hp_.nRot / 2;
    std::vector<float> cosv(static_cast<size_t>(n * half)), sinv(static_cast<size_t>(n * half));
    const float thetaScale = std::pow(hp_.ropeBase, -2.0f / static_cast<float>(hp_.nRot));
    const float* freqs = ropeFreqs_ ? reinterpret_cast<const float*>(ropeFreqs_->data) : nullptr;
    for (int64_t t = 0; t < n; t++) {
        float theta = static_cast<float>(rowPos[t]);
        for (int64_t i = 0; i < half; i++) {
            float a = theta * hp_.freqScale / (freqs ? freqs[i] : 1.0f);
            cosv[t * half + i] = std::cos(a);
            sinv[t * half + i] = std::sin(a);
            theta *= thetaScale;
        }
    }
    auto rope = [&](float* v, int64_t heads, int64_t t) {
        const float* c = &cosv[t * half];
        const float* sn = &sinv[t * half];
        for (int64_t h = 0; h < heads; h++) {
            float* x = v + h * hd;
            for (int64_t i = 0; i < half; i++) {
                int64_t a = hp_.neox ? i : 2 * i;
                int64_t b = hp_.neox ? i + half : 2 * i + 1;
                float x0 = x[a], x1 = x[b];
                x[a] = x0 * c[i] - x1 * sn[i];
                x[b] = x0 * sn[i] + x1 * c[i];
            }
        }
    };
    auto addBias = [](float* y, const gguf::Tensor* b, int64_t rows, int64_t n) {
        if (!b) return;
        const float* bb = reinterpret_cast<const float*>(b->data);
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < rows; i++) y[t * rows + i] += bb[i];
    };
    // The per-row steps between the matrix products also go over the pool, a few rows per claim, so that
    // a prompt's rows keep every core busy (one row, a decode step's, stays on the calling thread).
    auto rowsOnPool = [&](const std::function<void(int64_t)>& step) {
        pool_.parallelParts(n, 4, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; t++) step(t);
        });
    };
    // The norm writes rows of width nEmbd, packed, so that matmul reads them contiguously.
    auto normAll = [&](const gguf::Tensor* w) {
        rowsOnPool([&](int64_t t) {
            kern::rmsnorm(&s.xb[t * nEmbd], &s.x[t * nEmbd], reinterpret_cast<const float*>(w->data), nEmbd, hp_.eps);
        });
    };
    auto addResidual = [&]() {
        rowsOnPool([&](int64_t t) {
            for (int64_t i = t * nEmbd; i < (t + 1) * nEmbd; i++) s.x[i] += s.xb2[i];
        });
    };
    // Where position p of KV head h of layer l starts in a State's cache, as bytes: F32 or F16 values, the
    // head's positions hd values apart.
    auto cacheAt = [&](const PageBuffer& cache, const CpuState* st, int64_t l, int64_t h, int64_t p) {
        const size_t elem = st->kvType == KvType::F16 ? 2 : 4;
        return cache.get() + static_cast<size_t>(((l * nKv + h) * st->nCtx + p) * hd) * elem;
    };
    // A row's kvDim keys or values into the cache at position p, head by head.
    auto store = [&](const PageBuffer& cache, const CpuState* st, int64_t l, int64_t p, const float* src) {
        for (int64_t h = 0; h < nKv; h++) {
            uint8_t* dst = cacheAt(cache, st, l, h, p);
            if (st->kvType == KvType::F16) {
                kern::toF16Row(src + h * hd, reinterpret_cast<uint16_t*>(dst), hd);
            } else {
                std::memcpy(dst, src + h * hd, static_cast<size_t>(hd) * sizeof(float));
            }
        }
    };

    // Attention in jobs of up to kern::attendWidth queries that share a cache and a KV head (the heads of
    // a group, of one row or of consecutive rows of one segment), each cached row read once per job; jobs
    // claimed a few at a time, as rows attend over different lengths and a worker the system has not
    // scheduled yet then delays the pass by at most one claim.
    struct AttJob {
        int64_t t0, kvh, q0, q1;  // queries q0 .. q1 of the segment whose rows start at t0: row t0 + q / group, head q % group of kvh's
    };
    std::vector<AttJob> attJobs;
    const int64_t width = kern::attendWidth(hd);
    for (int64_t t0 = 0, pi = 0; pi < static_cast<int64_t>(pieces.size()); t0 += pieces[static_cast<size_t>(pi)].n, pi++) {
        const int64_t queries = pieces[static_cast<size_t>(pi)].n * group;
        for (int64_t kvh = 0; kvh < nKv; kvh++) {
            for (int64_t q0 = 0; q0 < queries; q0 += width) attJobs.push_back({t0, kvh, q0, std::min(queries, q0 + width)});
        }
    }

    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (int64_t l = 0; l < hp_.nLayer; l++) {
        const Layer& L = layers_[l];
        normAll(L.attnNorm);
        {
            const gguf::Tensor* ws[] = {L.wq, L.wk, L.wv};
            float* ys[] = {s.q.data(), s.k.data(), s.v.data()};
            matmuls(ws, ys, 3, s.xb.data(), n);
        }
        addBias(s.q.data(), L.bq, qDim, n);
        addBias(s.k.data(), L.bk, kvDim, n);
        addBias(s.v.data(), L.bv, kvDim, n);
        rowsOnPool([&](int64_t t) {
            CpuState* st = rowState[t];
            rope(&s.q[t * qDim], nHead, t);
            rope(&s.k[t * kvDim], nKv, t);
            store(st->kCache, st, l, rowPos[t], &s.k[t * kvDim]);
            store(st->vCache, st, l, rowPos[t], &s.v[t * kvDim]);
        });

        pool_.parallelParts(static_cast<int64_t>(attJobs.size()), 8, [&](int64_t jb, int64_t je) {
            kern::Query qs[kern::kAttendWidthMost];
            for (int64_t j = jb; j < je; j++) {
                const AttJob& job = attJobs[static_cast<size_t>(j)];
                CpuState* st = rowState[job.t0];
                const bool f16 = st->kvType == KvType::F16;
                const size_t posStride = static_cast<size_t>(hd) * (f16 ? 2 : 4);
                int count = 0;
                for (int64_t qi = job.q0; qi < job.q1; qi++, count++) {
                    const int64_t t = job.t0 + qi / group, h = job.kvh * group + qi % group;
                    qs[count] = {&s.q[t * qDim + h * hd], rowPos[t] + 1, st->scores(rowLocal[t], h, nHead), &s.xb[t * qDim + h * hd]};
                }
                kern::attendMany(qs, count, cacheAt(st->kCache, st, l, job.kvh, 0), cacheAt(st->vCache, st, l, job.kvh, 0), posStride, f16,
                                 hd, scale);
            }
        });
        matmul(L.wo, s.xb.data(), s.xb2.data(), n);
        addResidual();

        normAll(L.ffnNorm);
        const int64_t nFf = hp_.nFf[l];
        {
            const gguf::Tensor* ws[] = {L.wGate, L.wUp};
            float* ys[] = {s.hb.data(), s.hb2.data()};
            matmuls(ws, ys, 2, s.xb.data(), n);
        }
        rowsOnPool([&](int64_t t) { kern::siluMul(&s.hb[t * nFf], &s.hb2[t * nFf], nFf); });
        matmul(L.wDown, s.hb.data(), s.xb2.data(), n);
        addResidual();
    }

    // The rows whose logits are wanted, normalized and packed, go through the output matrix together.
    std::vector<float*> dst;
    int64_t row = 0;
    for (const Segment& p : pieces) {
        if (p.out) {
            for (int64_t t = p.all ? 0 : p.n - 1; t < p.n; t++) {
                    kern::rmsnorm(&s.xb[dst.size() * nEmbd], &s.x[(row + t) * nEmbd], reinterpret_cast<const float*>(outputNorm_->data), nEmbd, hp_.eps);
                dst.push_back(p.out + (p.all ? t : 0) * hp_.nVocab);
            }
        }
        row += p.n;
    }
    if (dst.empty()) return;
    const int64_t m = static_cast<int64_t>(dst.size());
    if (pieces.size() == 1 && m == (pieces[0].all ? pieces[0].n : 1)) {
        matmul(output_, s.xb.data(), dst[0], m);  // one segment: its rows are contiguous in out already
        return;
    }
    s.logits.resize(static_cast<size_t>(m * hp_.nVocab));
    matmul(output_, s.xb.data(), s.logits.data(), m);
    for (int64_t i = 0; i < m; i++) {
        std::memcpy(dst[i], &s.logits[i * hp_.nVocab], static_cast<size_t>(hp_.nVocab) * sizeof(float));
    }
}
