// The CUDA backend's kernels (cuda/ops.cu), compiled for the host against emu.h and run on its fibers,
// against references computed here in double precision: the matrix products of every weight type with
// each epilogue, with and without the RMSNorm, for one row and for batches, in floats and in integers
// (precision fast), with the launch settings that change their grids; RoPE with the cache store (both
// pairings, F32 and F16 caches) and the same done in the Q/K/V product; attention over short and long
// caches (one slice, many slices joined); the embedding lookup; SwiGLU. Prints a line per failed check
// and a summary; exits 1 when a check failed, 2 when a kernel could not run (a deadlock, a bad launch).
#include "cuda/ops.cu"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

int checks = 0, failures = 0;

void expect(bool ok, const std::string& what) {
    checks++;
    if (!ok) {
        failures++;
        if (failures <= 40) std::printf("FAIL %s\n", what.c_str());
    }
}

std::mt19937 rng(20261130);

float gauss() {
    std::normal_distribution<float> d;
    return d(rng);
}

// Uniform in [-1.7, 1.7) (variance near 1), and random bytes, cheaply: the caches, vectors and weights are
// millions of values.
uint64_t state = 0x9E3779B97F4A7C15ull;
uint64_t bits() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
float noise() { return (static_cast<float>(bits() >> 40) / 16777216.0f * 2.0f - 1.0f) * 1.7f; }

uint16_t halfBits(float f) { return __float2half_rn(f).bits; }

void putHalf(uint8_t* p, float f) {
    const uint16_t h = halfBits(f);
    p[0] = static_cast<uint8_t>(h);
    p[1] = static_cast<uint8_t>(h >> 8);
}

const char* typeName(uint32_t t) {
    switch (t) {
        case dq::kF32: return "F32";
        case dq::kF16: return "F16";
        case dq::kQ8_0: return "Q8_0";
        case dq::kQ4_K: return "Q4_K";
        default: return "Q6_K";
    }
}

// A weight matrix: its bytes as a GGUF file holds them (random quants and sane scales for the quantized
// types), as the backend uploads them, and its values decoded by dq::element.
struct Weights {
    uint32_t type = 0, deviceType = 0;
    int64_t rows = 0, cols = 0, rowBytes = 0;
    std::vector<uint8_t> file, device;
    std::vector<double> values;
};

Weights makeWeights(uint32_t type, int64_t rows, int64_t cols) {
    Weights w;
    w.type = type;
    w.deviceType = type;
    w.rows = rows;
    w.cols = cols;
    std::uniform_real_distribution<float> scale(0.002f, 0.03f);
    int64_t fileRow = 0;
    switch (type) {
        case dq::kF32: fileRow = 4 * cols; break;
        case dq::kF16: fileRow = 2 * cols; break;
        case dq::kQ8_0: fileRow = cols / 32 * 34; break;
        case dq::kQ4_K: fileRow = cols / 256 * 144; break;
        default: fileRow = cols / 256 * 210; break;
    }
    w.file.resize(static_cast<size_t>(rows * fileRow));
    for (int64_t r = 0; r < rows; r++) {
        uint8_t* row = w.file.data() + r * fileRow;
        if (type == dq::kF32) {
            for (int64_t i = 0; i < cols; i++) {
                const float v = noise() * 0.05f;
                std::memcpy(row + 4 * i, &v, 4);
            }
        } else if (type == dq::kF16) {
            for (int64_t i = 0; i < cols; i++) putHalf(row + 2 * i, noise() * 0.05f);
        } else {
            for (int64_t i = 0; i < fileRow; i++) row[i] = static_cast<uint8_t>(bits() >> 56);
            if (type == dq::kQ8_0) {
                for (int64_t b = 0; b < cols / 32; b++) putHalf(row + 34 * b, scale(rng) * 0.1f);
            } else if (type == dq::kQ4_K) {
                for (int64_t b = 0; b < cols / 256; b++) {
                    putHalf(row + 144 * b, scale(rng) * 0.05f);
                    putHalf(row + 144 * b + 2, scale(rng) * 0.05f);
                }
            } else {
                for (int64_t b = 0; b < cols / 256; b++) putHalf(row + 210 * b + 208, scale(rng) * 0.01f);
            }
        }
        for (int64_t i = 0; i < cols; i++) w.values.push_back(dq::element(type, row, i));
    }
    if (type == dq::kQ8_0) {
        w.deviceType = dq::kQ8_0Split;
        w.rowBytes = dq::q8_0SplitRowBytes(cols);
        w.device.resize(static_cast<size_t>(rows * w.rowBytes));
        dq::splitQ8_0(w.file.data(), rows, cols, w.device.data());
    } else {
        w.rowBytes = fileRow;
        w.device = w.file;
    }
    return w;
}

std::vector<float> randomVector(int64_t n, float spread) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = noise() * spread;
    return v;
}

// The input a product sees for vector row: x (times the norm's weights when normed; *scale receives the
// RMS scale the float product applies to its sums, 1 without), and, in integers, the normalized vector
// quantized as the kernels quantize it (*scale 1).
std::vector<double> productInput(const float* x, int64_t cols, const float* norm, float eps, bool integer, uint32_t type, double* scale) {
    std::vector<double> in(static_cast<size_t>(cols));
    std::vector<float> xs(static_cast<size_t>(cols));
    double ss = 0;
    for (int64_t i = 0; i < cols; i++) {
        ss += static_cast<double>(x[i]) * x[i];
        xs[static_cast<size_t>(i)] = norm ? x[i] * norm[i] : x[i];
    }
    *scale = norm ? 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps) : 1.0;
    if (!integer) {
        for (int64_t i = 0; i < cols; i++) in[static_cast<size_t>(i)] = xs[static_cast<size_t>(i)];
        return in;
    }
    // Integers: the vector normalized first as the CPU's rmsnorm computes it, then quantized.
    if (norm) {
        const float s = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(cols)) + eps);
        for (int64_t i = 0; i < cols; i++) xs[static_cast<size_t>(i)] = x[i] * s * norm[i];
        *scale = 1.0;
    }
    const int64_t block = type == dq::kQ8_0 ? 32 : 256;
    for (int64_t b = 0; b < cols / block; b++) {
        float amax = 0;
        for (int64_t i = b * block; i < (b + 1) * block; i++) amax = std::max(amax, std::fabs(xs[static_cast<size_t>(i)]));
        const float id = amax > 0 ? 127.0f / amax : 0.0f;
        for (int64_t i = b * block; i < (b + 1) * block; i++) {
            in[static_cast<size_t>(i)] = static_cast<double>(amax / 127.0f) * dq::quantizeValue(xs[static_cast<size_t>(i)], id);
        }
    }
    return in;
}

struct ProductCase {
    uint32_t type;
    ops::Epilogue e;
    bool norm;
    int64_t n, cols;
    bool integer;
    int maxSplit, minBlocks;
    bool prefetch, rowOf;
    int sharedLimit;
};

std::string describe(const ProductCase& c) {
    static const char* epilogues[] = {"store", "add", "swiglu", "ropestore"};
    return std::string(typeName(c.type)) + " " + epilogues[static_cast<int>(c.e)] + (c.norm ? " norm" : "") + " n=" + std::to_string(c.n) +
           " cols=" + std::to_string(c.cols) + (c.integer ? " integer" : "") + " split<=" + std::to_string(c.maxSplit) +
           " minBlocks=" + std::to_string(c.minBlocks) + (c.prefetch ? " prefetch" : "") + (c.rowOf ? " rowOf" : "") +
           " shared=" + std::to_string(c.sharedLimit);
}

void checkProduct(const ProductCase& c) {
    const std::string what = describe(c);
    const bool swiglu = c.e == ops::Epilogue::SwiGlu;
    const int count = c.e == ops::Epilogue::Store ? 3 : swiglu ? 2 : 1;
    const int64_t rows[3] = {37, swiglu ? 37 : 20, 19};
    std::vector<Weights> w;
    std::vector<std::vector<float>> bias, y, before;
    for (int i = 0; i < count; i++) {
        w.push_back(makeWeights(c.type, rows[i], c.cols));
        bias.push_back(randomVector(rows[i], 0.1f));
    }
    const int64_t xRows = c.rowOf ? c.n + 3 : c.n;
    const std::vector<float> x = randomVector(xRows * c.cols, 1.0f);
    const std::vector<float> norm = randomVector(c.cols, 1.0f);
    std::vector<int32_t> rowOf(static_cast<size_t>(c.n));
    for (int64_t t = 0; t < c.n; t++) rowOf[static_cast<size_t>(t)] = static_cast<int32_t>((2 * t + 1) % xRows);
    ops::Matrices m;
    for (int i = 0; i < count; i++) {
        y.push_back(c.e == ops::Epilogue::Add ? randomVector(c.n * rows[i], 1.0f) : std::vector<float>(static_cast<size_t>(c.n * rows[i]), NAN));
        before.push_back(y.back());
        m.w[i] = w[static_cast<size_t>(i)].device.data();
        m.rows[i] = rows[i];
        m.y[i] = y.back().data();
        m.b[i] = c.e == ops::Epilogue::Store ? bias[static_cast<size_t>(i)].data() : nullptr;
    }
    m.norm = c.norm ? norm.data() : nullptr;
    m.eps = 1e-5f;
    m.rowOf = c.rowOf ? rowOf.data() : nullptr;
    m.maxSplit = c.maxSplit;
    m.minBlocks = c.minBlocks;
    m.prefetch = c.prefetch;
    m.integer = c.integer;
    m.sharedLimit = c.sharedLimit;
    m.multiprocessors = 3;
    try {
        ops::matmul(nullptr, w[0].deviceType, w[0].rowBytes, c.cols, m, x.data(), c.n, c.e);
    } catch (const std::exception& e) {
        expect(false, what + ": " + e.what());
        return;
    }
    bool ok = true;
    std::string first;
    for (int64_t t = 0; t < c.n && ok; t++) {
        const float* xt = x.data() + (c.rowOf ? rowOf[static_cast<size_t>(t)] : t) * c.cols;
        double scale;
        const std::vector<double> in = productInput(xt, c.cols, c.norm ? norm.data() : nullptr, m.eps, c.integer, c.type, &scale);
        double dot[2][64], mag[2][64];
        for (int i = 0; i < count; i++) {
            for (int64_t r = 0; r < rows[i]; r++) {
                double s = 0, a = 0;
                for (int64_t k = 0; k < c.cols; k++) {
                    const double p = w[static_cast<size_t>(i)].values[static_cast<size_t>(r * c.cols + k)] * in[static_cast<size_t>(k)];
                    s += p;
                    a += std::fabs(p);
                }
                if (swiglu) {
                    dot[i][r] = s * scale;
                    mag[i][r] = a * scale;
                    continue;
                }
                double want = s * scale, tol = 1e-4 * a * scale + 1e-6;
                if (c.e == ops::Epilogue::Store) want += bias[static_cast<size_t>(i)][static_cast<size_t>(r)];
                if (c.e == ops::Epilogue::Add) want += before[static_cast<size_t>(i)][static_cast<size_t>(t * rows[i] + r)];
                const double got = y[static_cast<size_t>(i)][static_cast<size_t>(t * rows[i] + r)];
                if (!(std::fabs(got - want) <= tol)) {
                    ok = false;
                    first = "matrix " + std::to_string(i) + " row " + std::to_string(r) + " vector " + std::to_string(t) + ": got " +
                            std::to_string(got) + ", want " + std::to_string(want);
                    break;
                }
            }
            if (!ok) break;
        }
        if (swiglu && ok) {
            for (int64_t r = 0; r < rows[0]; r++) {
                const double g = dot[0][r], u = dot[1][r], want = g / (1.0 + std::exp(-g)) * u;
                const double tol = 2e-4 * (mag[0][r] + std::fabs(g)) * (mag[1][r] + std::fabs(u)) + 1e-6;
                const double got = y[0][static_cast<size_t>(t * rows[0] + r)];
                if (!(std::fabs(got - want) <= tol)) {
                    ok = false;
                    first = "row " + std::to_string(r) + " vector " + std::to_string(t) + ": got " + std::to_string(got) + ", want " +
                            std::to_string(want);
                    break;
                }
            }
        }
    }
    expect(ok, what + (ok ? "" : ": " + first));
}

void checkProducts() {
    const uint32_t types[] = {dq::kF32, dq::kF16, dq::kQ8_0, dq::kQ4_K, dq::kQ6_K};
    const ops::Epilogue epilogues[] = {ops::Epilogue::Store, ops::Epilogue::Add, ops::Epilogue::SwiGlu};
    int index = 0;
    for (uint32_t type : types) {
        const bool hasInteger = type == dq::kQ8_0 || type == dq::kQ4_K || type == dq::kQ6_K;
        for (ops::Epilogue e : epilogues) {
            for (bool norm : {false, true}) {
                for (int64_t n : {1, 3, 10}) {
                    for (bool integer : {false, true}) {
                        if (integer && !hasInteger) continue;
                        // 2304 values: several turns of a warp along a row and a last one cut short; 256: one.
                        for (int64_t cols : {256, 2304}) {
                            // Decoding with each number of warps that may share a row (batches take 1).
                            for (int maxSplit : {1, 2, 8}) {
                                if (n > 1 && maxSplit != 2) continue;
                                index++;
                                ProductCase c;
                                c.type = type;
                                c.e = e;
                                c.norm = norm;
                                c.n = n;
                                c.cols = cols;
                                c.integer = integer;
                                c.maxSplit = maxSplit;
                                c.minBlocks = index % 4 == 1 ? 3 : 1;
                                c.prefetch = index % 3 == 0;
                                c.rowOf = index % 5 < 2;
                                // Some integer batches with room for one quantized vector only: one at a time.
                                c.sharedLimit = integer && n > 1 && index % 2 == 0 ? 4 * 1024 : 223 * 1024;
                                checkProduct(c);
                            }
                        }
                    }
                }
            }
        }
    }
}

bool close(double got, double want, double tol) { return std::fabs(got - want) <= tol; }

// A KV cache of `layers` layers of nCtx positions of kvDim values, F32 or F16, filled with random values.
struct Cache {
    std::vector<float> f32;
    std::vector<__half> f16;
    bool half = false;
    Cache(int64_t layers, int64_t nCtx, int64_t kvDim, bool h) : half(h) {
        const size_t n = static_cast<size_t>(layers * nCtx * kvDim);
        if (h) {
            f16.resize(n);
            for (__half& v : f16) v = __float2half_rn(noise());
        } else {
            f32 = randomVector(static_cast<int64_t>(n), 1.0f);
        }
    }
    void* data() { return half ? static_cast<void*>(f16.data()) : static_cast<void*>(f32.data()); }
    double at(int64_t i) const { return half ? __half2float(f16[static_cast<size_t>(i)]) : f32[static_cast<size_t>(i)]; }
};

// A cache of its own for each row of a pass, and the rows' RowInfo: row t at positions[t].
struct RowCaches {
    std::vector<Cache> keys, values;
    std::vector<ops::RowInfo> rows;
    RowCaches(const std::vector<int32_t>& positions, int64_t layers, int64_t nCtx, int64_t kvDim, bool half) {
        for (size_t t = 0; t < positions.size(); t++) {
            keys.emplace_back(layers, nCtx, kvDim, half);
            values.emplace_back(layers, nCtx, kvDim, half);
        }
        for (size_t t = 0; t < positions.size(); t++) rows.push_back({keys[t].data(), values[t].data(), nCtx, positions[t], half ? 1 : 0});
    }
};

// Attention over each row's cache against softmax(q . K / sqrt(hd)) V in double: rows whose positions
// make one slice, several, and the 32 slices of a long cache joined.
void checkAttention(int64_t hd, bool half) {
    const int64_t nHead = 4, nKv = 2, layers = 2, layer = 1, nCtx = 3100, kvDim = nKv * hd;
    const std::vector<int32_t> positions = {0, 63, 64, 700, 2048, 3099};
    const int64_t n = static_cast<int64_t>(positions.size());
    RowCaches caches(positions, layers, nCtx, kvDim, half);
    std::vector<Cache>& keys = caches.keys;
    std::vector<Cache>& values = caches.values;
    std::vector<ops::RowInfo>& rows = caches.rows;
    const std::vector<float> q = randomVector(n * nHead * hd, 1.0f);
    std::vector<float> out(static_cast<size_t>(n * nHead * hd), NAN), part(static_cast<size_t>(ops::attentionPartFloats(n, nHead, hd)), NAN);
    std::vector<unsigned> done(static_cast<size_t>(n * nHead), 0);
    const std::string what = "attention hd=" + std::to_string(hd) + (half ? " F16" : " F32") + " cache";
    try {
        ops::attention(nullptr, q.data(), rows.data(), n, layer, nHead, nKv, hd, out.data(), part.data(), done.data());
    } catch (const std::exception& e) {
        expect(false, what + ": " + e.what());
        return;
    }
    bool ok = true;
    std::string first;
    for (int64_t t = 0; t < n && ok; t++) {
        for (int64_t h = 0; h < nHead && ok; h++) {
            const int64_t kvh = h / (nHead / nKv), base = layer * nCtx * kvDim + kvh * hd, count = positions[static_cast<size_t>(t)] + 1;
            std::vector<double> score(static_cast<size_t>(count));
            double top = -1e300;
            for (int64_t p = 0; p < count; p++) {
                double sc = 0;
                for (int64_t d = 0; d < hd; d++) sc += q[static_cast<size_t>((t * nHead + h) * hd + d)] * keys[static_cast<size_t>(t)].at(base + p * kvDim + d);
                score[static_cast<size_t>(p)] = sc / std::sqrt(static_cast<double>(hd));
                top = std::max(top, score[static_cast<size_t>(p)]);
            }
            double total = 0;
            for (double& sc : score) total += (sc = std::exp(sc - top));
            for (int64_t d = 0; d < hd; d++) {
                double want = 0;
                for (int64_t p = 0; p < count; p++) want += score[static_cast<size_t>(p)] / total * values[static_cast<size_t>(t)].at(base + p * kvDim + d);
                const double got = out[static_cast<size_t>((t * nHead + h) * hd + d)];
                if (!close(got, want, 1e-4)) {
                    ok = false;
                    first = "row " + std::to_string(t) + " (position " + std::to_string(count - 1) + ") head " + std::to_string(h) + " value " +
                            std::to_string(d) + ": got " + std::to_string(got) + ", want " + std::to_string(want);
                    break;
                }
            }
        }
    }
    expect(ok, what + (ok ? "" : ": " + first));
    bool reset = true;
    for (unsigned c : done) reset = reset && c == 0;
    expect(reset, what + ": the slice counters are back at 0");
}

// RoPE of each row's query and key heads (cs: random angles) and the store of keys and values at the row's
// position, against the rotation computed here.
void checkRope(bool neox, bool half, int64_t hd, int64_t nRot) {
    const int64_t nHead = 4, nKv = 2, layers = 2, layer = 1, nCtx = 16, kvDim = nKv * hd, halfRot = nRot / 2;
    const std::vector<int32_t> positions = {0, 5, 15};
    const int64_t n = static_cast<int64_t>(positions.size());
    RowCaches caches(positions, layers, nCtx, kvDim, half);
    std::vector<Cache>& keys = caches.keys;
    std::vector<Cache>& values = caches.values;
    std::vector<ops::RowInfo>& rows = caches.rows;
    std::vector<float> cs(static_cast<size_t>(n * 2 * halfRot));
    for (int64_t t = 0; t < n; t++) {
        for (int64_t i = 0; i < halfRot; i++) {
            const float a = gauss() * 3.0f;
            cs[static_cast<size_t>(t * 2 * halfRot + i)] = std::cos(a);
            cs[static_cast<size_t>(t * 2 * halfRot + halfRot + i)] = std::sin(a);
        }
    }
    std::vector<float> q = randomVector(n * nHead * hd, 1.0f), k = randomVector(n * kvDim, 1.0f);
    const std::vector<float> v = randomVector(n * kvDim, 1.0f), q0 = q, k0 = k;
    const std::string what = std::string("rope ") + (neox ? "neox" : "normal") + (half ? " F16" : " F32") + " cache hd=" + std::to_string(hd) +
                             " nRot=" + std::to_string(nRot);
    try {
        ops::ropeAndStore(nullptr, q.data(), k.data(), v.data(), cs.data(), rows.data(), n, layer, nHead, nKv, hd, halfRot, neox);
    } catch (const std::exception& e) {
        expect(false, what + ": " + e.what());
        return;
    }
    auto rotated = [&](const std::vector<float>& x, int64_t t, int64_t head, int64_t d) {
        const float* c = cs.data() + t * 2 * halfRot;
        for (int64_t i = 0; i < halfRot; i++) {
            int64_t a, b;
            dq::ropePair(neox, i, halfRot, a, b);
            const float x0 = x[static_cast<size_t>(head + a)], x1 = x[static_cast<size_t>(head + b)];
            if (d == a) return x0 * c[i] - x1 * c[halfRot + i];
            if (d == b) return x0 * c[halfRot + i] + x1 * c[i];
        }
        return x[static_cast<size_t>(head + d)];
    };
    bool ok = true;
    for (int64_t t = 0; t < n; t++) {
        for (int64_t h = 0; h < nHead; h++) {
            for (int64_t d = 0; d < hd; d++) ok = ok && close(q[static_cast<size_t>((t * nHead + h) * hd + d)], rotated(q0, t, (t * nHead + h) * hd, d), 1e-6);
        }
        const int64_t at = (layer * nCtx + positions[static_cast<size_t>(t)]) * kvDim;
        for (int64_t h = 0; h < nKv; h++) {
            for (int64_t d = 0; d < hd; d++) {
                const double key = rotated(k0, t, t * kvDim + h * hd, d), value = v[static_cast<size_t>(t * kvDim + h * hd + d)];
                const double tol = half ? 1e-3 * std::fabs(key) + 1e-6 : 1e-6;
                ok = ok && close(keys[static_cast<size_t>(t)].at(at + h * hd + d), key, tol);
                ok = ok && close(values[static_cast<size_t>(t)].at(at + h * hd + d), value, half ? 1e-3 * std::fabs(value) + 1e-6 : 0);
            }
        }
    }
    expect(ok, what);
}

// Q, K and V of one row with RoPE and the cache store in the product's epilogue, against the product then
// ropeAndStore: the same query and the same caches.
void checkRopeInTheProduct(uint32_t type, bool integer, bool half) {
    const int64_t nHead = 4, nKv = 2, hd = 64, nRot = 32, halfRot = nRot / 2, cols = 256, layers = 2, layer = 1, nCtx = 8;
    const int64_t qDim = nHead * hd, kvDim = nKv * hd;
    const Weights wq = makeWeights(type, qDim, cols), wk = makeWeights(type, kvDim, cols), wv = makeWeights(type, kvDim, cols);
    const std::vector<float> bq = randomVector(qDim, 0.1f), bk = randomVector(kvDim, 0.1f), bv = randomVector(kvDim, 0.1f);
    const std::vector<float> x = randomVector(cols, 1.0f), norm = randomVector(cols, 1.0f);
    std::vector<float> cs(static_cast<size_t>(2 * halfRot));
    for (int64_t i = 0; i < halfRot; i++) {
        const float a = gauss() * 3.0f;
        cs[static_cast<size_t>(i)] = std::cos(a);
        cs[static_cast<size_t>(halfRot + i)] = std::sin(a);
    }
    std::vector<float> q[2], k(static_cast<size_t>(kvDim)), v(static_cast<size_t>(kvDim));
    std::vector<Cache> keys, values;
    for (int i = 0; i < 2; i++) {
        q[i].assign(static_cast<size_t>(qDim), NAN);
        keys.emplace_back(layers, nCtx, kvDim, half);
        values.emplace_back(layers, nCtx, kvDim, half);
    }
    keys[1] = keys[0];
    values[1] = values[0];
    const std::string what = std::string("rope in the ") + typeName(type) + (integer ? " integer" : "") + " product," + (half ? " F16" : " F32") + " cache";
    try {
        for (int fused = 0; fused < 2; fused++) {
            ops::RowInfo row{keys[static_cast<size_t>(fused)].data(), values[static_cast<size_t>(fused)].data(), nCtx, 5, half ? 1 : 0};
            ops::Matrices m;
            const Weights* w[3] = {&wq, &wk, &wv};
            const std::vector<float>* b[3] = {&bq, &bk, &bv};
            float* y[3] = {q[fused].data(), k.data(), v.data()};
            for (int i = 0; i < 3; i++) {
                m.w[i] = w[i]->device.data();
                m.rows[i] = w[i]->rows;
                m.b[i] = b[i]->data();
                m.y[i] = y[i];
            }
            m.norm = norm.data();
            m.eps = 1e-5f;
            m.integer = integer;
            m.sharedLimit = 223 * 1024;
            m.rope = ops::RopeStore{cs.data(), &row, layer, hd, halfRot};
            if (fused) {
                ops::matmul(nullptr, wq.deviceType, wq.rowBytes, cols, m, x.data(), 1, ops::Epilogue::RopeStore);
            } else {
                ops::matmul(nullptr, wq.deviceType, wq.rowBytes, cols, m, x.data(), 1, ops::Epilogue::Store);
                ops::ropeAndStore(nullptr, q[0].data(), k.data(), v.data(), cs.data(), &row, 1, layer, nHead, nKv, hd, halfRot, false);
            }
        }
    } catch (const std::exception& e) {
        expect(false, what + ": " + e.what());
        return;
    }
    bool ok = true;
    for (int64_t i = 0; i < qDim; i++) ok = ok && close(q[1][static_cast<size_t>(i)], q[0][static_cast<size_t>(i)], 1e-6 * std::fabs(q[0][static_cast<size_t>(i)]));
    for (int64_t i = 0; i < layers * nCtx * kvDim; i++) {
        ok = ok && keys[1].at(i) == keys[0].at(i) && values[1].at(i) == values[0].at(i);
    }
    expect(ok, what);
}

void checkEmbeddingAndSwiGlu() {
    const int64_t dim = 512, vocab = 10;
    const int32_t tokens[] = {3, 0, 9, 3};
    for (uint32_t type : {dq::kF32, dq::kF16, dq::kQ8_0, dq::kQ4_K, dq::kQ6_K}) {
        const Weights table = makeWeights(type, vocab, dim);
        std::vector<float> x(4 * dim, NAN);
        ops::embed(nullptr, table.deviceType, table.device.data(), table.rowBytes, tokens, 4, dim, x.data());
        bool ok = true;
        for (int64_t t = 0; t < 4; t++) {
            for (int64_t i = 0; i < dim; i++) ok = ok && x[static_cast<size_t>(t * dim + i)] == static_cast<float>(table.values[static_cast<size_t>(tokens[t] * dim + i)]);
        }
        expect(ok, std::string("embedding of ") + typeName(type) + " rows");
    }
    std::vector<float> g = randomVector(1000, 2.0f);
    const std::vector<float> u = randomVector(1000, 1.0f), g0 = g;
    ops::swiglu(nullptr, g.data(), u.data(), 1000);
    bool ok = true;
    for (size_t i = 0; i < g.size(); i++) ok = ok && close(g[i], g0[i] / (1.0 + std::exp(-g0[i])) * u[i], 1e-5 * (1 + std::fabs(g0[i] * u[i])));
    expect(ok, "swiglu");
}

void checkAll() {
    checkProducts();
    for (int64_t hd : {32, 64, 128, 256}) {
        for (bool half : {false, true}) checkAttention(hd, half);
    }
    for (bool neox : {false, true}) {
        for (bool half : {false, true}) {
            checkRope(neox, half, 64, 64);
            checkRope(neox, half, 128, 96);
        }
    }
    for (bool half : {false, true}) {
        checkRopeInTheProduct(dq::kF16, false, half);
        checkRopeInTheProduct(dq::kQ8_0, true, half);
        checkRopeInTheProduct(dq::kQ4_K, true, half);
        checkRopeInTheProduct(dq::kQ6_K, true, half);
        checkRopeInTheProduct(dq::kQ6_K, false, half);
    }
    checkEmbeddingAndSwiGlu();
}

}  // namespace

int main() {
    try {
        for (bool lag : {false, true}) {
            emu::lagWarps = lag;
            checkAll();
        }
    } catch (const std::exception& e) {
        std::printf("ERROR %s\n", e.what());
        return 2;
    }
    std::printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
