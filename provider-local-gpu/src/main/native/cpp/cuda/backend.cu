// The CUDA backend: the weights copied to the device once, at load; every State's KV cache in device
// memory; one pass is a sequence of kernels (ops.h) on the backend's stream, and only the logits asked
// for come back. Weight types F32, F16, Q8_0, Q4_K and Q6_K; a file with a tensor of another type (Q4_0,
// Q4_1, Q5_K) is refused at load, naming the tensor and its type.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>

#include "../dequant.h"
#include "check.h"
#include "ops.h"

namespace cudadev {
void memory(int ordinal, uint64_t& total, uint64_t& free);
std::string name(int ordinal);
}  // namespace cudadev

namespace {

using u128 = unsigned __int128;

std::string mib(u128 bytes) { return std::to_string(static_cast<uint64_t>(bytes >> 20)) + " MiB"; }

// Whether the environment variable is "0" (a launch setting turned off), or "1" (one turned on).
bool setTo(const char* name, const char* value) {
    const char* v = std::getenv(name);
    return v && std::string(v) == value;
}

struct CudaState : State {
    int ordinal = 0;
    void* k = nullptr;
    void* v = nullptr;
    ~CudaState() override {
        // Never throws: a failed device's memory is released with its context.
        if (k || v) {
            cudaSetDevice(ordinal);
            cudaFree(k);
            cudaFree(v);
            cudaGetLastError();
        }
    }
};

// A weight matrix or vector on the device.
struct DevTensor {
    const uint8_t* data = nullptr;
    uint32_t type = 0;
    int64_t cols = 0, rows = 0, rowBytes = 0;
};

class CudaBackend : public Backend {
public:
    CudaBackend(const ModelDesc& d, int ordinal, Precision precision) : d_(d), ordinal_(ordinal) {
        checkModel();
        uint64_t total = 0, free = 0;
        cudadev::memory(ordinal_, total, free);  // names the ordinal when it is not a device here
        total_ = total;
        label_ = "cuda:" + std::to_string(ordinal_) + " " + cudadev::name(ordinal_);
        try {
            cu::check(cudaSetDevice(ordinal_), "cudaSetDevice");
            // Refused before anything is allocated when the weights and the activations do not fit.
            const u128 weights = weightBytes(), scratch = scratchBytes();
            cu::check(cudaMemGetInfo(reinterpret_cast<size_t*>(&free), reinterpret_cast<size_t*>(&total)), "cudaMemGetInfo");
            if (weights + scratch > u128(free)) {
                throw DeviceMemoryError(label_ + " has " + mib(free) + " free; the model needs " + mib(weights + scratch) + " (weights " +
                                        mib(weights) + ", activations " + mib(scratch) + ")");
            }
            useGraphs_ = !setTo("HYBRIDINFERENCE_CUDA_GRAPHS", "0");
            // Settings of the decoding product, for measuring others (see ops::Matrices). On an H200, with
            // two warps per row a 0.94B model decoded 6 to 16% faster than with 8 in F16, 5 to 9% in Q8_0
            // and 2 to 3% in Q4_K; one warp per row was within 8% of two either way.
            const char* split = std::getenv("HYBRIDINFERENCE_CUDA_SPLIT");
            if (split) maxSplit_ = std::max(1, std::min(8, std::atoi(split)));
            const char* occupancy = std::getenv("HYBRIDINFERENCE_CUDA_MIN_BLOCKS");
            if (occupancy) minBlocks_ = std::atoi(occupancy);
            int major = 0;
            cu::check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ordinal_), "cudaDeviceGetAttribute");
            programmatic_ = major >= 9 && !setTo("HYBRIDINFERENCE_CUDA_PDL", "0");
            // Not yet measured on a GPU, so off unless set: weights asked of the L2 cache before each
            // product waits for the kernel before, precision fast's integer products (ops::Matrices), and
            // RoPE with the cache store in the Q/K/V product when decoding (ops::Epilogue::RopeStore).
            prefetch_ = setTo("HYBRIDINFERENCE_CUDA_PREFETCH", "1");
            integer_ = precision == Precision::Fast && setTo("HYBRIDINFERENCE_CUDA_INTEGER", "1");
            fuseRope_ = setTo("HYBRIDINFERENCE_CUDA_FUSE_ROPE", "1");
            int optin = 0;
            cu::check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ordinal_), "cudaDeviceGetAttribute");
            // The products' own shared memory (their joins) comes out of the same budget.
            sharedLimit_ = optin - 4 * 1024;
            cu::check(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, ordinal_), "cudaDeviceGetAttribute");
            cu::check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
            upload();
            allocScratch();
        } catch (...) {
            release();
            throw;
        }
    }

    ~CudaBackend() override { release(); }

    const char* name() const override { return "cuda"; }
    std::string device() const override { return label_; }
    int threads() const override { return 1; }

    uint64_t stateBytes(int64_t nCtx, KvType kv) const override {
        if (nCtx <= 0 || nCtx > INT32_MAX) throw gguf::Error("context size " + std::to_string(nCtx) + " must be between 1 and 2^31 - 1");
        const u128 bytes = u128(2) * u128(d_.hp.nLayer) * u128(nCtx) * u128(d_.hp.nHeadKv * d_.hp.headDim) * (kv == KvType::F16 ? 2 : 4);
        if (bytes > u128(total_)) {
            throw DeviceMemoryError("a context of " + std::to_string(nCtx) + " tokens needs " + mib(bytes) + " of KV cache, more than " + label_ +
                                    "'s " + mib(total_) + "; use a smaller context size");
        }
        return static_cast<uint64_t>(bytes);
    }

    std::unique_ptr<State> newState(int64_t nCtx, KvType kv) override {
        const uint64_t bytes = stateBytes(nCtx, kv);
        cu::check(cudaSetDevice(ordinal_), "cudaSetDevice");
        auto s = std::make_unique<CudaState>();
        s->owner = this;
        s->nCtx = nCtx;
        s->kvType = kv;
        s->ordinal = ordinal_;
        // Keys and values each take half; a failed allocation leaves nothing behind (the State's destructor).
        cu::check(cudaMalloc(&s->k, bytes / 2), "cudaMalloc (KV cache keys)");
        cu::check(cudaMalloc(&s->v, bytes / 2), "cudaMalloc (KV cache values)");
        cu::check(cudaMemsetAsync(s->k, 0, bytes / 2, stream_), "cudaMemset");
        cu::check(cudaMemsetAsync(s->v, 0, bytes / 2, stream_), "cudaMemset");
        cu::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
        return s;
    }

    void forward(const std::vector<Segment>& pieces) override;

private:
    void checkModel() const {
        auto check = [](const gguf::Tensor* t) {
            if (t && !dq::supported(t->type)) {
                throw gguf::Error("tensor " + t->name + " has type " + gguf::typeName(t->type) +
                                  ", which the CUDA backend does not compute (F32, F16, Q8_0, Q4_K, Q6_K); use device cpu");
            }
        };
        for (const gguf::Tensor* t : tensors()) check(t);
        // A kernel grid has at most 65535 blocks in y: attention and RoPE take a head per block there.
        if (d_.hp.nHead > 65535) throw gguf::Error("head_count " + std::to_string(d_.hp.nHead) + " is more than the CUDA backend's 65535; use device cpu");
        if (d_.hp.headDim > ops::maxHeadDim()) {
            throw gguf::Error("head size " + std::to_string(d_.hp.headDim) + " is more than the CUDA backend's " +
                              std::to_string(ops::maxHeadDim()) + "; use device cpu");
        }
    }

    // Every tensor the forward pass reads on the device, once each (tied embeddings appear once).
    std::vector<const gguf::Tensor*> tensors() const {
        std::vector<const gguf::Tensor*> all = {d_.tokEmbd, d_.outputNorm, d_.output};
        for (const Layer& L : d_.layers) {
            for (const gguf::Tensor* t : {L.attnNorm, L.wq, L.wk, L.wv, L.wo, L.bq, L.bk, L.bv, L.ffnNorm, L.wGate, L.wUp, L.wDown}) all.push_back(t);
        }
        std::vector<const gguf::Tensor*> out;
        std::set<const gguf::Tensor*> seen;
        for (const gguf::Tensor* t : all) {
            if (t && seen.insert(t).second) out.push_back(t);
        }
        return out;
    }

    // A tensor's bytes on the device: the file's, but for Q8_0's split rows (dq::kQ8_0Split).
    static int64_t deviceBytes(const gguf::Tensor* t) {
        return t->type == dq::kQ8_0 ? t->ne[1] * dq::q8_0SplitRowBytes(t->ne[0]) : static_cast<int64_t>(t->bytes);
    }

    u128 weightBytes() const {
        u128 sum = 0;
        for (const gguf::Tensor* t : tensors()) sum += static_cast<uint64_t>(deviceBytes(t));
        return sum;
    }

    // Activation floats per row of a pass (see allocScratch).
    int64_t rowFloats() const {
        const HParams& hp = d_.hp;
        const int64_t qDim = hp.nHead * hp.headDim, kvDim = hp.nHeadKv * hp.headDim;
        const int64_t maxFf = *std::max_element(hp.nFf.begin(), hp.nFf.end());
        return hp.nEmbd + 2 * qDim + 2 * kvDim + 2 * maxFf + hp.nVocab;
    }

    u128 scratchBytes() const {
        const HParams& hp = d_.hp;
        return u128(kMaxBatch) * u128(rowFloats()) * sizeof(float) + stageLayout().bytes +
               u128(ops::attentionPartFloats(kMaxBatch, hp.nHead, hp.headDim)) * sizeof(float) + u128(kMaxBatch * hp.nHead) * sizeof(unsigned);
    }

    void* alloc(size_t bytes, const char* what) {
        void* p = nullptr;
        cu::check(cudaMalloc(&p, bytes), what);
        allocations_.push_back(p);
        return p;
    }

    void upload() {
        for (const gguf::Tensor* t : tensors()) {
            int64_t elems = 0, bytes = 0;
            if (!gguf::blockInfo(t->type, elems, bytes)) throw gguf::Error("tensor " + t->name + " has no block layout");
            DevTensor dt;
            dt.type = t->type;
            dt.cols = t->ne[0];
            dt.rows = t->ne[1];
            dt.rowBytes = t->ne[0] / elems * bytes;
            const int64_t size = deviceBytes(t);
            void* p = alloc(static_cast<size_t>(size), "cudaMalloc (weights)");
            if (t->type == dq::kQ8_0) {
                // Rows of quants then scales, so that a lane loads 16 quants at once (dq::kQ8_0Split).
                std::vector<uint8_t> split(static_cast<size_t>(size));
                dq::splitQ8_0(static_cast<const uint8_t*>(t->data), dt.rows, dt.cols, split.data());
                cu::check(cudaMemcpy(p, split.data(), split.size(), cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
                dt.type = dq::kQ8_0Split;
                dt.rowBytes = dq::q8_0SplitRowBytes(dt.cols);
            } else {
                cu::check(cudaMemcpy(p, t->data, t->bytes, cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
            }
            dt.data = static_cast<const uint8_t*>(p);
            dev_[t] = dt;
        }
    }

    void allocScratch() {
        const HParams& hp = d_.hp;
        const int64_t qDim = hp.nHead * hp.headDim, kvDim = hp.nHeadKv * hp.headDim;
        const int64_t maxFf = *std::max_element(hp.nFf.begin(), hp.nFf.end());
        auto floats = [&](int64_t per) { return static_cast<float*>(alloc(sizeof(float) * static_cast<size_t>(kMaxBatch * per), "cudaMalloc (activations)")); };
        x_ = floats(hp.nEmbd);
        xb_ = floats(qDim);
        q_ = floats(qDim);
        k_ = floats(kvDim);
        v_ = floats(kvDim);
        hb_ = floats(maxFf);
        hb2_ = floats(maxFf);
        logits_ = floats(hp.nVocab);
        part_ = static_cast<float*>(alloc(sizeof(float) * static_cast<size_t>(ops::attentionPartFloats(kMaxBatch, hp.nHead, hp.headDim)),
                                          "cudaMalloc (attention)"));
        done_ = static_cast<unsigned*>(alloc(sizeof(unsigned) * static_cast<size_t>(kMaxBatch * hp.nHead), "cudaMalloc (attention)"));
        cu::check(cudaMemset(done_, 0, sizeof(unsigned) * static_cast<size_t>(kMaxBatch * hp.nHead)), "cudaMemset");
        // One pass's inputs go up in one copy, from pinned memory: tokens, the rows whose logits are wanted,
        // each row's cache and position, each row's RoPE cosines and sines.
        stage_ = stageLayout();
        dStage_ = static_cast<uint8_t*>(alloc(stage_.bytes, "cudaMalloc (pass inputs)"));
        cu::check(cudaMallocHost(reinterpret_cast<void**>(&hStage_), stage_.bytes), "cudaMallocHost (pass inputs)");
        cu::check(cudaMallocHost(reinterpret_cast<void**>(&hLogits_), sizeof(float) * static_cast<size_t>(kMaxBatch * hp.nVocab)),
                  "cudaMallocHost (logits)");
    }

    struct Stage {
        size_t tokens = 0, rowOf = 0, rows = 0, cs = 0, bytes = 0;
    };

    Stage stageLayout() const {
        auto up = [](size_t v) { return (v + 255) & ~size_t(255); };
        Stage st;
        st.tokens = 0;
        st.rowOf = up(sizeof(int32_t) * kMaxBatch);
        st.rows = st.rowOf + up(sizeof(int32_t) * kMaxBatch);
        st.cs = st.rows + up(sizeof(ops::RowInfo) * kMaxBatch);
        st.bytes = st.cs + up(sizeof(float) * static_cast<size_t>(kMaxBatch * std::max<int64_t>(d_.hp.nRot, 1)));
        return st;
    }

    void release() {
        if (allocations_.empty() && !stream_ && !hStage_ && !hLogits_) return;
        cudaSetDevice(ordinal_);
        if (stream_) cudaStreamSynchronize(stream_);
        for (auto& g : graphs_) cudaGraphExecDestroy(g.second);
        graphs_.clear();
        for (void* p : allocations_) cudaFree(p);
        allocations_.clear();
        if (hStage_) cudaFreeHost(hStage_);
        if (hLogits_) cudaFreeHost(hLogits_);
        hStage_ = nullptr;
        hLogits_ = nullptr;
        if (stream_) cudaStreamDestroy(stream_);
        stream_ = nullptr;
        cudaGetLastError();
    }

    const DevTensor& dev(const gguf::Tensor* t) const { return dev_.at(t); }

    // y_i = W_i x' (+ b_i) for up to three matrices, in one launch when they have one type (and so one row
    // size: they have one width), else one launch each; x' is x, or x RMS-normalized times norm's weights
    // when norm is set, taking row rowOf[t] of x for row t when rowOf is set.
    void matmul(std::initializer_list<const gguf::Tensor*> ws, std::initializer_list<const gguf::Tensor*> bs,
                std::initializer_list<float*> ys, const float* x, int64_t n, ops::Epilogue e, const gguf::Tensor* norm = nullptr,
                const int32_t* rowOf = nullptr, const ops::RopeStore* rope = nullptr) {
        const gguf::Tensor* const* w = ws.begin();
        const gguf::Tensor* const* b = bs.begin();
        float* const* y = ys.begin();
        const int count = static_cast<int>(ws.size());
        bool oneType = true;
        for (int i = 1; i < count; i++) oneType = oneType && dev(w[i]).type == dev(w[0]).type;
        if (e == ops::Epilogue::SwiGlu && !oneType) {
            matmul({w[0]}, {nullptr}, {y[0]}, x, n, ops::Epilogue::Store, norm, rowOf);
            matmul({w[1]}, {nullptr}, {y[1]}, x, n, ops::Epilogue::Store, norm, rowOf);
            ops::swiglu(stream_, y[0], y[1], n * dev(w[0]).rows);
            return;
        }
        if (!oneType && e == ops::Epilogue::RopeStore) throw DeviceError("RoPE in the product's epilogue needs Q, K and V of one type");
        if (!oneType) {
            for (int i = 0; i < count; i++) matmul({w[i]}, {b[i]}, {y[i]}, x, n, e, norm, rowOf);
            return;
        }
        ops::Matrices m;
        for (int i = 0; i < count; i++) {
            m.w[i] = dev(w[i]).data;
            m.rows[i] = dev(w[i]).rows;
            m.y[i] = y[i];
            m.b[i] = b[i] ? vec(b[i]) : nullptr;
        }
        m.norm = norm ? vec(norm) : nullptr;
        m.eps = d_.hp.eps;
        m.rowOf = rowOf;
        m.maxSplit = maxSplit_;
        m.minBlocks = minBlocks_;
        m.prefetch = prefetch_;
        m.integer = integer_;
        m.sharedLimit = sharedLimit_;
        m.multiprocessors = multiprocessors_;
        if (rope) m.rope = *rope;
        const DevTensor& t = dev(w[0]);
        ops::matmul(stream_, t.type, t.rowBytes, t.cols, m, x, n, e);
    }

    // The kernels of one pass of n rows, m of them with logits (staged inputs already on the device).
    void launch(int64_t n, int64_t m);

    const float* vec(const gguf::Tensor* t) const { return reinterpret_cast<const float*>(dev(t).data); }

    const ModelDesc& d_;
    const int ordinal_;
    uint64_t total_ = 0;
    std::string label_;
    cudaStream_t stream_ = nullptr;
    std::vector<void*> allocations_;  // every device buffer but the States', freed with the backend
    std::map<const gguf::Tensor*, DevTensor> dev_;
    float *x_ = nullptr, *xb_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *hb_ = nullptr, *hb2_ = nullptr;
    float* logits_ = nullptr;
    float* part_ = nullptr;     // attention's per-slice partial results
    unsigned* done_ = nullptr;  // attention's slices finished per (row, head)
    Stage stage_;
    uint8_t* dStage_ = nullptr;  // device copy of the staged inputs
    uint8_t* hStage_ = nullptr;  // pinned
    float* hLogits_ = nullptr;   // pinned, kMaxBatch rows of logits
    // Passes of up to kGraphRows rows replay a captured graph of their kernels, one per (rows, logit rows):
    // a decoding step launches one graph instead of 6 kernels per layer.
    static constexpr int64_t kGraphRows = 16;
    bool useGraphs_ = true;
    int maxSplit_ = 2;   // HYBRIDINFERENCE_CUDA_SPLIT: the most warps that share a decoded row (ops::Matrices)
    int minBlocks_ = 1;  // HYBRIDINFERENCE_CUDA_MIN_BLOCKS (ops::Matrices)
    // Kernels scheduled while the one before finishes (ops::setProgrammaticLaunch): on devices of compute
    // capability 9.0 and later, unless HYBRIDINFERENCE_CUDA_PDL=0.
    bool programmatic_ = false;
    bool prefetch_ = false;  // HYBRIDINFERENCE_CUDA_PREFETCH=1 (ops::Matrices::prefetch)
    bool integer_ = false;   // precision fast and HYBRIDINFERENCE_CUDA_INTEGER=1 (ops::Matrices::integer)
    bool fuseRope_ = false;  // HYBRIDINFERENCE_CUDA_FUSE_ROPE=1 (ops::Epilogue::RopeStore)
    int sharedLimit_ = 44 * 1024;
    int multiprocessors_ = 1;
    std::map<std::pair<int64_t, int64_t>, cudaGraphExec_t> graphs_;
};

void CudaBackend::forward(const std::vector<Segment>& pieces) {
    const HParams& hp = d_.hp;
    const int64_t half = hp.nRot / 2;
    cu::check(cudaSetDevice(ordinal_), "cudaSetDevice");

    // The pass's rows, staged in pinned memory for one copy: token, cache and position; the rows whose
    // logits are wanted, and where they go.
    int32_t* tokens = reinterpret_cast<int32_t*>(hStage_ + stage_.tokens);
    int32_t* rowOf = reinterpret_cast<int32_t*>(hStage_ + stage_.rowOf);
    ops::RowInfo* rows = reinterpret_cast<ops::RowInfo*>(hStage_ + stage_.rows);
    std::vector<float*> dst;
    int64_t n = 0;
    for (const Segment& p : pieces) {
        CudaState* st = static_cast<CudaState*>(p.state);
        for (int64_t t = 0; t < p.n; t++, n++) {
            if (p.out && (p.all || t == p.n - 1)) {
                rowOf[dst.size()] = static_cast<int32_t>(n);
                dst.push_back(p.out + (p.all ? t : 0) * hp.nVocab);
            }
            tokens[n] = p.tokens[t];
            rows[n].k = st->k;
            rows[n].v = st->v;
            rows[n].nCtx = st->nCtx;
            rows[n].pos = static_cast<int32_t>(p.pos + t);
            rows[n].f16 = st->kvType == KvType::F16 ? 1 : 0;
        }
    }
    const int64_t m = static_cast<int64_t>(dst.size());
    // RoPE angles per row, computed on the host exactly as the CPU backend computes them.
    float* cs = reinterpret_cast<float*>(hStage_ + stage_.cs);
    const float thetaScale = std::pow(hp.ropeBase, -2.0f / static_cast<float>(hp.nRot));
    const float* freqs = d_.ropeFreqs ? reinterpret_cast<const float*>(d_.ropeFreqs->data) : nullptr;
    for (int64_t t = 0; t < n; t++) {
        float theta = static_cast<float>(rows[t].pos);
        for (int64_t i = 0; i < half; i++) {
            const float a = theta * hp.freqScale / (freqs ? freqs[i] : 1.0f);
            cs[t * 2 * half + i] = std::cos(a);
            cs[t * 2 * half + half + i] = std::sin(a);
            theta *= thetaScale;
        }
    }
    cu::check(cudaMemcpyAsync(dStage_, hStage_, stage_.cs + sizeof(float) * static_cast<size_t>(n * 2 * half), cudaMemcpyHostToDevice, stream_),
              "cudaMemcpy (pass inputs)");

    if (useGraphs_ && n <= kGraphRows) {
        auto found = graphs_.find({n, m});
        if (found == graphs_.end()) {
            cu::check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
            cudaGraph_t graph = nullptr;
            try {
                launch(n, m);
            } catch (...) {
                cudaStreamEndCapture(stream_, &graph);
                if (graph) cudaGraphDestroy(graph);
                cudaGetLastError();
                throw;
            }
            cu::check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
            cudaGraphExec_t exec = nullptr;
            const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
            cudaGraphDestroy(graph);
            cu::check(e, "cudaGraphInstantiate");
            found = graphs_.emplace(std::make_pair(n, m), exec).first;
        }
        cu::check(cudaGraphLaunch(found->second, stream_), "cudaGraphLaunch");
    } else {
        launch(n, m);
    }
    if (m > 0) {
        cu::check(cudaMemcpyAsync(hLogits_, logits_, sizeof(float) * static_cast<size_t>(m * hp.nVocab), cudaMemcpyDeviceToHost, stream_),
                  "cudaMemcpy (logits)");
    }
    // Every pass ends here, so that a fault inside a kernel is reported by the pass that caused it.
    cu::check(cudaStreamSynchronize(stream_), "forward pass");
    for (int64_t i = 0; i < m; i++) std::memcpy(dst[static_cast<size_t>(i)], hLogits_ + i * hp.nVocab, sizeof(float) * hp.nVocab);
}

void CudaBackend::launch(int64_t n, int64_t m) {
    using ops::Epilogue;
    ops::setProgrammaticLaunch(programmatic_);
    const HParams& hp = d_.hp;
    const int64_t nEmbd = hp.nEmbd, hd = hp.headDim, nHead = hp.nHead, nKv = hp.nHeadKv, half = hp.nRot / 2;
    const int32_t* tokens = reinterpret_cast<const int32_t*>(dStage_ + stage_.tokens);
    const int32_t* rowOf = reinterpret_cast<const int32_t*>(dStage_ + stage_.rowOf);
    const ops::RowInfo* rows = reinterpret_cast<const ops::RowInfo*>(dStage_ + stage_.rows);
    const float* cs = reinterpret_cast<const float*>(dStage_ + stage_.cs);

    const DevTensor& emb = dev(d_.tokEmbd);
    ops::embed(stream_, emb.type, emb.data, emb.rowBytes, tokens, n, nEmbd, x_);
    // Per layer: Q, K and V of the normalized input; RoPE and the cache store; attention; the output
    // projection added to the residual; gate and up of the normalized residual with SwiGLU; down added to
    // the residual. The RMSNorms are computed inside the products that read them.
    for (int64_t l = 0; l < hp.nLayer; l++) {
        const Layer& L = d_.layers[static_cast<size_t>(l)];
        // RoPE and the cache store in the product's epilogue: for one row in the normal pairing, Q, K and V
        // of one type (one launch, which tells the three apart).
        if (fuseRope_ && n == 1 && !hp.neox && dev(L.wk).type == dev(L.wq).type && dev(L.wv).type == dev(L.wq).type) {
            const ops::RopeStore rope{cs, rows, l, hd, half};
            matmul({L.wq, L.wk, L.wv}, {L.bq, L.bk, L.bv}, {q_, k_, v_}, x_, n, Epilogue::RopeStore, L.attnNorm, nullptr, &rope);
        } else {
            matmul({L.wq, L.wk, L.wv}, {L.bq, L.bk, L.bv}, {q_, k_, v_}, x_, n, Epilogue::Store, L.attnNorm);
            ops::ropeAndStore(stream_, q_, k_, v_, cs, rows, n, l, nHead, nKv, hd, half, hp.neox);
        }
        ops::attention(stream_, q_, rows, n, l, nHead, nKv, hd, xb_, part_, done_);
        matmul({L.wo}, {nullptr}, {x_}, xb_, n, Epilogue::Add);
        matmul({L.wGate, L.wUp}, {nullptr, nullptr}, {hb_, hb2_}, x_, n, Epilogue::SwiGlu, L.ffnNorm);
        matmul({L.wDown}, {nullptr}, {x_}, hb_, n, Epilogue::Add);
    }
    // Only the rows whose logits are wanted go through the output matrix.
    if (m > 0) matmul({d_.output}, {nullptr}, {logits_}, x_, m, Epilogue::Store, d_.outputNorm, rowOf);
}

}  // namespace

std::unique_ptr<Backend> makeCudaBackend(const ModelDesc& desc, int ordinal, Precision precision) {
    return std::make_unique<CudaBackend>(desc, ordinal, precision);
}
