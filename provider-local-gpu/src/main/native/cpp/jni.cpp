// The JNI layer: opaque handles as jlong, logits into direct buffers, and every C++ exception turned
// into a Java NativeEngineException. Nothing here throws across the boundary.
#include <jni.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <vector>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "dev_hybridinference_localgpu_internal_NativeEngine.h"
#include "amx.h"
#include "dequant.h"
#include "gemm.h"
#include "kernels.h"
#include "model.h"
#include "quant.h"

namespace {

// kind: 0 an error of the input or the file, 1 device memory exhausted, 2 the device failed (see
// NativeEngineException.Kind).
void throwJava(JNIEnv* env, const std::string& message, int kind = 0) {
    if (env->ExceptionCheck()) return;
    jclass cls = env->FindClass("dev/hybridinference/localgpu/internal/NativeEngineException");
    if (cls) {
        jmethodID ctor = env->GetMethodID(cls, "<init>", "(Ljava/lang/String;I)V");
        jstring msg = ctor ? env->NewStringUTF(message.c_str()) : nullptr;
        if (ctor && msg) {
            jobject e = env->NewObject(cls, ctor, msg, static_cast<jint>(kind));
            if (e && env->Throw(static_cast<jthrowable>(e)) == 0) return;
        }
        env->ExceptionClear();
        env->ThrowNew(cls, message.c_str());
        return;
    }
    env->ExceptionClear();
    cls = env->FindClass("java/lang/RuntimeException");
    if (cls) env->ThrowNew(cls, message.c_str());
}

template <typename F>
auto guarded(JNIEnv* env, F&& f, decltype(f()) fallback) -> decltype(f()) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        throwJava(env, "out of native memory");
    } catch (const DeviceMemoryError& e) {
        throwJava(env, e.what(), 1);
    } catch (const DeviceError& e) {
        throwJava(env, e.what(), 2);
    } catch (const std::exception& e) {
        throwJava(env, e.what());
    } catch (...) {
        throwJava(env, "unknown native error");
    }
    return fallback;
}

Model* model(JNIEnv* env, jlong h) {
    if (h == 0) throw std::runtime_error("model handle is closed");
    (void)env;
    return reinterpret_cast<Model*>(h);
}

KvType kv(jint type) {
    if (type != 0 && type != 1) throw std::runtime_error("KV cache type " + std::to_string(type) + " is not 0 (F32) or 1 (F16)");
    return static_cast<KvType>(type);
}

// A Java byte[]'s or float[]'s contents.
std::vector<uint8_t> bytesOf(JNIEnv* env, jbyteArray a) {
    std::vector<uint8_t> v(static_cast<size_t>(env->GetArrayLength(a)));
    env->GetByteArrayRegion(a, 0, static_cast<jsize>(v.size()), reinterpret_cast<jbyte*>(v.data()));
    return v;
}

std::vector<float> floatsOf(JNIEnv* env, jfloatArray a) {
    std::vector<float> v(static_cast<size_t>(env->GetArrayLength(a)));
    env->GetFloatArrayRegion(a, 0, static_cast<jsize>(v.size()), v.data());
    return v;
}

// A new Java array of n elements from v, through the JNIEnv functions that make and fill that array type.
template <typename Array, typename Element>
Array javaArray(JNIEnv* env, const void* v, size_t n, Array (JNIEnv::*make)(jsize), void (JNIEnv::*fill)(Array, jsize, jsize, const Element*)) {
    Array a = (env->*make)(static_cast<jsize>(n));
    if (!a) throw std::bad_alloc();
    (env->*fill)(a, 0, static_cast<jsize>(n), static_cast<const Element*>(v));
    return a;
}

jfloatArray floatArray(JNIEnv* env, const std::vector<float>& v) {
    return javaArray(env, v.data(), v.size(), &JNIEnv::NewFloatArray, &JNIEnv::SetFloatArrayRegion);
}

jintArray intArray(JNIEnv* env, const std::vector<jint>& v) {
    return javaArray(env, v.data(), v.size(), &JNIEnv::NewIntArray, &JNIEnv::SetIntArrayRegion);
}

jbyteArray byteArray(JNIEnv* env, const std::vector<uint8_t>& v) {
    return javaArray(env, v.data(), v.size(), &JNIEnv::NewByteArray, &JNIEnv::SetByteArrayRegion);
}

jdoubleArray doubleArray(JNIEnv* env, const std::vector<jdouble>& v) {
    return javaArray(env, v.data(), v.size(), &JNIEnv::NewDoubleArray, &JNIEnv::SetDoubleArrayRegion);
}

// The columns of a test hook's weight matrix: rows rows of whole blocks of `values` values in `bytes` bytes,
// x holding n rows of that width. Refuses anything else, naming what was expected.
int64_t hookColumns(JNIEnv* env, jbyteArray weights, jint rows, jfloatArray x, jint n, int64_t values, int64_t bytes) {
    if (!weights || !x) throw std::runtime_error("weights and x must not be null");
    const int64_t length = env->GetArrayLength(weights);
    if (rows <= 0 || n <= 0 || length % rows != 0) throw std::runtime_error("weights must hold rows > 0 rows, n > 0");
    const int64_t rowBytes = length / rows, cols = rowBytes / bytes * values;
    if (cols <= 0 || cols / values * bytes != rowBytes) throw std::runtime_error("each row must be whole blocks of the type");
    if (env->GetArrayLength(x) != n * cols) throw std::runtime_error("x must hold n rows of the weights' width");
    return cols;
}

// A new Java long[] holding v[0..n).
jlongArray longArray(JNIEnv* env, const jlong* v, jsize n) {
    return javaArray(env, v, static_cast<size_t>(n), &JNIEnv::NewLongArray, &JNIEnv::SetLongArrayRegion);
}

}  // namespace

JNIEXPORT jlong JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_load(JNIEnv* env, jclass, jstring path, jint threads, jint precision, jint device) {
    return guarded(env, [&]() -> jlong {
        if (!path) throw std::runtime_error("model path is null");
        if (precision != 0 && precision != 1) throw std::runtime_error("precision must be 0 (exact) or 1 (fast)");
        const char* p = env->GetStringUTFChars(path, nullptr);
        if (!p) throw std::bad_alloc();
        std::string s(p);
        env->ReleaseStringUTFChars(path, p);
        return reinterpret_cast<jlong>(new Model(s, threads, precision == 0 ? Precision::Exact : Precision::Fast, device));
    }, jlong(0));
}

JNIEXPORT void JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_free(JNIEnv* env, jclass, jlong h) {
    guarded(env, [&]() -> int {
        delete reinterpret_cast<Model*>(h);
        return 0;
    }, 0);
}

JNIEXPORT jlongArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_hparams(JNIEnv* env, jclass, jlong h) {
    return guarded(env, [&]() -> jlongArray {
        const HParams& hp = model(env, h)->hparams();
        jlong v[9] = {hp.nVocab, hp.nEmbd, hp.nLayer, hp.nHead, hp.nHeadKv, hp.headDim, hp.nCtxTrain,
                      static_cast<jlong>(model(env, h)->weightBytes()), model(env, h)->threads()};
        return longArray(env, v, 9);
    }, static_cast<jlongArray>(nullptr));
}

JNIEXPORT jstring JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_architecture(JNIEnv* env, jclass, jlong h) {
    return guarded(env, [&]() -> jstring { return env->NewStringUTF(model(env, h)->hparams().arch.c_str()); },
                   static_cast<jstring>(nullptr));
}

JNIEXPORT jstring JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_backend(JNIEnv* env, jclass, jlong h) {
    return guarded(env, [&]() -> jstring { return env->NewStringUTF(model(env, h)->backend().name()); }, static_cast<jstring>(nullptr));
}

JNIEXPORT jstring JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_device(JNIEnv* env, jclass, jlong h) {
    return guarded(env, [&]() -> jstring { return env->NewStringUTF(model(env, h)->backend().device().c_str()); },
                   static_cast<jstring>(nullptr));
}

JNIEXPORT jint JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cudaDeviceCount(JNIEnv* env, jclass) {
    return guarded(env, [&]() -> jint { return cudadev::count(); }, jint(0));
}

JNIEXPORT jstring JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cudaUnavailableReason(JNIEnv* env, jclass) {
    return guarded(env, [&]() -> jstring { return env->NewStringUTF(cudadev::unavailableReason().c_str()); },
                   static_cast<jstring>(nullptr));
}

JNIEXPORT jstring JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cudaDeviceName(JNIEnv* env, jclass, jint ordinal) {
    return guarded(env, [&]() -> jstring { return env->NewStringUTF(cudadev::name(ordinal).c_str()); }, static_cast<jstring>(nullptr));
}

JNIEXPORT jlongArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cudaDeviceMemory(JNIEnv* env, jclass, jint ordinal) {
    return guarded(env, [&]() -> jlongArray {
        uint64_t total = 0, free = 0;
        cudadev::memory(ordinal, total, free);
        jlong v[2] = {static_cast<jlong>(total), static_cast<jlong>(free)};
        return longArray(env, v, 2);
    }, static_cast<jlongArray>(nullptr));
}

JNIEXPORT jdouble JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cudaPeakBandwidth(JNIEnv* env, jclass, jint ordinal) {
    return guarded(env, [&]() -> jdouble { return cudadev::peakBandwidth(ordinal); }, 0.0);
}

JNIEXPORT jdouble JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cudaProductRate(
        JNIEnv* env, jclass, jint ordinal, jint type, jint rows, jint cols, jint reps, jint flags) {
    return guarded(env, [&]() -> jdouble { return cudadev::productRate(ordinal, static_cast<uint32_t>(type), rows, cols, reps, flags); }, 0.0);
}

JNIEXPORT jlong JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_newState(JNIEnv* env, jclass, jlong h, jint nCtx, jint kvType) {
    return guarded(env, [&]() -> jlong { return reinterpret_cast<jlong>(model(env, h)->newState(nCtx, kv(kvType)).release()); }, jlong(0));
}

JNIEXPORT jlong JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_stateBytes(JNIEnv* env, jclass, jlong h, jint nCtx, jint kvType) {
    return guarded(env, [&]() -> jlong { return static_cast<jlong>(model(env, h)->stateBytes(nCtx, kv(kvType))); }, jlong(0));
}

JNIEXPORT void JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_freeState(JNIEnv* env, jclass, jlong s) {
    guarded(env, [&]() -> int {
        delete reinterpret_cast<State*>(s);
        return 0;
    }, 0);
}

JNIEXPORT void JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_eval(
        JNIEnv* env, jclass, jlong h, jlong s, jintArray tokens, jint n, jint pos, jobject logits, jboolean all) {
    guarded(env, [&]() -> int {
        Model* m = model(env, h);
        if (s == 0) throw std::runtime_error("state handle is closed");
        if (!tokens || n <= 0 || env->GetArrayLength(tokens) < n) throw std::runtime_error("token array is shorter than n");
        if (!logits) throw std::runtime_error("logits buffer is null");
        float* out = static_cast<float*>(env->GetDirectBufferAddress(logits));
        jlong cap = env->GetDirectBufferCapacity(logits);
        jlong need = static_cast<jlong>(all ? n : 1) * m->hparams().nVocab;
        if (!out || cap < need) throw std::runtime_error("logits buffer must be direct and hold " + std::to_string(need) + " floats");
        std::unique_ptr<jint[]> buf(new jint[n]);
        env->GetIntArrayRegion(tokens, 0, n, buf.get());
        m->eval(*reinterpret_cast<State*>(s), reinterpret_cast<const int32_t*>(buf.get()), n, pos, out, all == JNI_TRUE);
        return 0;
    }, 0);
}

JNIEXPORT void JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_evalBatch(
        JNIEnv* env, jclass, jlong h, jlongArray states, jintArray tokens, jintArray counts, jintArray positions, jobject logits) {
    guarded(env, [&]() -> int {
        Model* m = model(env, h);
        if (!states || !tokens || !counts || !positions) throw std::runtime_error("batch arrays must not be null");
        const jsize segs = env->GetArrayLength(states);
        if (segs <= 0) throw std::runtime_error("no segments to evaluate");
        if (env->GetArrayLength(counts) != segs || env->GetArrayLength(positions) != segs) {
            throw std::runtime_error("states, counts and positions must have one entry per segment");
        }
        if (!logits) throw std::runtime_error("logits buffer is null");
        float* out = static_cast<float*>(env->GetDirectBufferAddress(logits));
        jlong cap = env->GetDirectBufferCapacity(logits);
        jlong need = static_cast<jlong>(segs) * m->hparams().nVocab;
        if (!out || cap < need) throw std::runtime_error("logits buffer must be direct and hold " + std::to_string(need) + " floats");
        std::vector<jlong> st(static_cast<size_t>(segs));
        std::vector<jint> cnt(static_cast<size_t>(segs)), pos(static_cast<size_t>(segs));
        env->GetLongArrayRegion(states, 0, segs, st.data());
        env->GetIntArrayRegion(counts, 0, segs, cnt.data());
        env->GetIntArrayRegion(positions, 0, segs, pos.data());
        int64_t total = 0;
        for (jsize i = 0; i < segs; i++) {
            if (st[i] == 0) throw std::runtime_error("state handle of segment " + std::to_string(i) + " is closed");
            if (cnt[i] <= 0) throw std::runtime_error("segment " + std::to_string(i) + " has no tokens");
            total += cnt[i];
        }
        if (env->GetArrayLength(tokens) < total) throw std::runtime_error("token array is shorter than the segments' counts");
        std::vector<jint> tok(static_cast<size_t>(total));
        env->GetIntArrayRegion(tokens, 0, static_cast<jsize>(total), tok.data());
        std::vector<Segment> batch(static_cast<size_t>(segs));
        int64_t at = 0;
        for (jsize i = 0; i < segs; i++) {
            Segment& g = batch[static_cast<size_t>(i)];
            g.state = reinterpret_cast<State*>(st[i]);
            g.tokens = reinterpret_cast<const int32_t*>(tok.data()) + at;
            g.n = cnt[i];
            g.pos = pos[i];
            g.out = out + static_cast<int64_t>(i) * m->hparams().nVocab;
            at += cnt[i];
        }
        m->evalBatch(batch);
        return 0;
    }, 0);
}

JNIEXPORT jdouble JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_readBandwidth(
        JNIEnv* env, jclass, jlong bytes, jint threads, jint rounds) {
    return guarded(env, [&]() -> jdouble {
        if (bytes < (1 << 20) || threads < 1 || rounds < 1) throw std::runtime_error("bad bandwidth probe arguments");
        const int64_t n = bytes / 4;
        std::vector<float> buf(static_cast<size_t>(n), 1.0f);
        ThreadPool pool(threads);
        double best = 0;
        volatile float sink = 0;
        for (int r = 0; r < rounds; r++) {
            const int64_t chunks = 1024;
            std::vector<float> part(chunks, 0.0f);
            auto t0 = std::chrono::steady_clock::now();
            pool.parallelFor(chunks, [&](int64_t b, int64_t e) {
                for (int64_t c = b; c < e; c++) {
                    int64_t from = n / chunks * c, to = c == chunks - 1 ? n : n / chunks * (c + 1);
                    part[c] = kern::sumF32(buf.data() + from, to - from);
                }
            });
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            for (float p : part) sink = sink + p;
            best = std::max(best, static_cast<double>(bytes) / s / 1e9);
        }
        return best;
    }, 0.0);
}

JNIEXPORT jstring JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cpuFeatures(JNIEnv* env, jclass) {
    // The float kernels' extensions (with AVX-512F when the batched product uses it), then the integer
    // kernels' level: "avx2 fma f16c avx512f, int8 avx512".
    static const std::string features = [] {
        std::string s = kern::features();
        if (std::strcmp(gemm::features(), "avx512f") == 0) {
            const size_t comma = s.find(',');
            s.insert(comma == std::string::npos ? s.size() : comma, " avx512f");
        }
        return s;
    }();
    return env->NewStringUTF(features.c_str());
}

JNIEXPORT jdouble JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_expWeights(
        JNIEnv* env, jclass, jfloatArray logits, jfloat scale, jfloatArray out) {
    return guarded(env, [&]() -> jdouble {
        if (!logits || !out) throw std::runtime_error("the logits and weights arrays must not be null");
        const jsize n = env->GetArrayLength(logits);
        if (n == 0) throw std::runtime_error("there are no logits");
        if (env->GetArrayLength(out) < n) throw std::runtime_error("the weights array is shorter than the logits");
        // Pinned rather than copied (a vocabulary's floats per sampled token); no JNI call until released.
        auto* x = static_cast<float*>(env->GetPrimitiveArrayCritical(logits, nullptr));
        if (!x) throw std::bad_alloc();
        auto* w = static_cast<float*>(env->GetPrimitiveArrayCritical(out, nullptr));
        if (!w) {
            env->ReleasePrimitiveArrayCritical(logits, x, JNI_ABORT);
            throw std::bad_alloc();
        }
        const double sum = kern::expWeights(x, n, scale, w);
        env->ReleasePrimitiveArrayCritical(out, w, 0);
        env->ReleasePrimitiveArrayCritical(logits, x, JNI_ABORT);
        return sum;
    }, 0.0);
}

JNIEXPORT jdoubleArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_integerDot(
        JNIEnv* env, jclass, jint level, jint type, jbyteArray row, jfloatArray x) {
    return guarded(env, [&]() -> jdoubleArray {
        if (!row || !x) throw std::runtime_error("row and x must not be null");
        const jsize n = env->GetArrayLength(x);
        int64_t elems, bytes;
        if (!qk::integerType(static_cast<uint32_t>(type)) || !gguf::blockInfo(static_cast<uint32_t>(type), elems, bytes)) {
            throw std::runtime_error("type " + std::to_string(type) + " has no integer dot product");
        }
        if (n <= 0 || n % elems != 0 || env->GetArrayLength(row) != n / elems * bytes) {
            throw std::runtime_error("x must hold a positive multiple of " + std::to_string(elems) + " values and row their " +
                                     std::to_string(bytes) + " bytes per block");
        }
        const std::vector<uint8_t> w = bytesOf(env, row);
        const std::vector<float> xf = floatsOf(env, x);
        std::vector<uint8_t> xq(qk::inputBytes(static_cast<uint32_t>(type), n));
        qk::quantize(static_cast<uint32_t>(type), xf.data(), xq.data(), n);
        const int64_t count = qk::intCount(static_cast<uint32_t>(type), n);
        std::vector<int32_t> ints(static_cast<size_t>(count));
        std::vector<jdouble> out(static_cast<size_t>(count + 1));
        out[0] = qk::dotAt(level, static_cast<uint32_t>(type), w.data(), xq.data(), n, ints.data());
        for (int64_t i = 0; i < count; i++) out[static_cast<size_t>(i + 1)] = ints[static_cast<size_t>(i)];
        return doubleArray(env, out);
    }, static_cast<jdoubleArray>(nullptr));
}

JNIEXPORT jdoubleArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_cudaIntegerDot(
        JNIEnv* env, jclass, jint type, jbyteArray row, jfloatArray x) {
    return guarded(env, [&]() -> jdoubleArray {
        if (!row || !x) throw std::runtime_error("row and x must not be null");
        const uint32_t t = static_cast<uint32_t>(type);
        if (t != dq::kQ8_0 && t != dq::kQ4_K && t != dq::kQ6_K) throw std::runtime_error("type " + std::to_string(type) + " has no CUDA integer product");
        const int64_t n = env->GetArrayLength(x), block = t == dq::kQ8_0 ? 32 : 256, blockBytes = t == dq::kQ8_0 ? 34 : t == dq::kQ4_K ? 144 : 210;
        if (n <= 0 || n % block != 0 || env->GetArrayLength(row) != n / block * blockBytes) {
            throw std::runtime_error("x must hold a positive multiple of " + std::to_string(block) + " values and row their blocks");
        }
        const std::vector<uint8_t> w = bytesOf(env, row);
        const std::vector<float> xf = floatsOf(env, x);
        // The input as the CUDA kernel quantizes it (8 values a lane, the block's largest magnitude shared):
        // 8-bit values, a scale per block, the sums of each 16 integers.
        std::vector<uint8_t> xq(static_cast<size_t>(n));
        std::vector<float> xd(static_cast<size_t>(n / block));
        std::vector<int> sums(static_cast<size_t>(n / 16));
        for (int64_t b = 0; b < n / block; b++) {
            float amax = 0.0f;
            for (int64_t i = 0; i < block; i++) amax = std::max(amax, std::fabs(xf[static_cast<size_t>(b * block + i)]));
            xd[static_cast<size_t>(b)] = amax / 127.0f;
            for (int64_t at = b * block; at < (b + 1) * block; at += 8) {
                float v[8];
                for (int i = 0; i < 8; i++) v[i] = xf[static_cast<size_t>(at + i)];
                uint32_t words[2];
                const int sum = dq::quantize8(v, amax, words);
                std::memcpy(xq.data() + at, words, 8);  // little-endian, as the device stores them
                sums[static_cast<size_t>(at / 16)] += sum;
            }
        }
        auto words = [&](int64_t at, uint32_t (&v)[4]) { dq::words16(xq.data() + at, v); };
        // The dot product as the kernel's lanes compute it (their float sums added in order here), and the
        // integer sums per 32 values, per 16 for Q6_K (qk's: the weights' unsigned quants, offsets not
        // subtracted).
        std::vector<jdouble> out(static_cast<size_t>(1 + n / (t == dq::kQ6_K ? 16 : 32)));
        double dot = 0.0;
        if (t == dq::kQ8_0) {
            std::vector<uint8_t> split(static_cast<size_t>(dq::q8_0SplitRowBytes(n)));
            dq::splitQ8_0(w.data(), 1, n, split.data());
            for (int64_t base = 0; base < n; base += 16) {
                uint32_t q[4], v[4];
                dq::words16(split.data() + base, q);
                words(base, v);
                const int ints = dq::ints16(q, v);
                const float d = dq::half(dq::u16(split.data() + n + 2 * (base >> 5)));
                dot += static_cast<float>(ints) * (d * xd[static_cast<size_t>(base >> 5)]);
                out[static_cast<size_t>(1 + base / 32)] += ints;
            }
        } else if (t == dq::kQ6_K) {
            for (int64_t base = 0; base < n; base += 16) {
                uint32_t q[4], v[4];
                int scale;
                float d;
                dq::q6_KQuants16(w.data(), base, q, scale, d);
                words(base, v);
                const int ints = dq::ints16(q, v);
                dot += d * xd[static_cast<size_t>(base >> 8)] * static_cast<float>(scale * (ints - 32 * sums[static_cast<size_t>(base >> 4)]));
                out[static_cast<size_t>(1 + base / 16)] = ints;
            }
        } else {
            for (int64_t b = 0; b < n / 256; b++) {
                const uint8_t* blk = w.data() + b * 144;
                uint32_t head[4];
                dq::words16(blk, head);
                const float d = dq::half(dq::u16(blk)), dmin = dq::half(dq::u16(blk + 2));
                for (int part = 0; part < 8; part++) {
                    const int c = part >> 1, l = 16 * (part & 1);
                    const int64_t base = 256 * b + 64 * c + l;
                    uint32_t q[4], lo[4], hi[4];
                    dq::words16(blk + 16 + 32 * c + l, q);
                    words(base, lo);
                    words(base + 32, hi);
                    int il, ih, isum, msum;
                    dq::q4_KInts(q, lo, hi, il, ih);
                    dq::q4_KBlockInts(head, c, il, ih, sums[static_cast<size_t>(base >> 4)], sums[static_cast<size_t>((base + 32) >> 4)], isum, msum);
                    dot += xd[static_cast<size_t>(b)] * (d * static_cast<float>(isum) - dmin * static_cast<float>(msum));
                    out[static_cast<size_t>(1 + 8 * b + 2 * c)] += il;
                    out[static_cast<size_t>(1 + 8 * b + 2 * c + 1)] += ih;
                }
            }
        }
        out[0] = dot;
        return doubleArray(env, out);
    }, static_cast<jdoubleArray>(nullptr));
}

JNIEXPORT jintArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_poolClaims(
        JNIEnv* env, jclass, jint threads, jint n, jint grain, jint lateMillis) {
    return guarded(env, [&]() -> jintArray {
        if (threads < 1 || n < 0 || grain < 1) throw std::runtime_error("threads and grain must be positive, n not negative");
        ThreadPool pool(threads);
        std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
        std::vector<int> by(static_cast<size_t>(n), -1);
        std::vector<int> chunks;
        std::mutex mu;
        std::atomic<int> named{0};
        const std::thread::id caller = std::this_thread::get_id();
        bool slept = false;
        pool.parallelClaim(n, grain, [&](int64_t b, int64_t e) {
            thread_local int id = -1;
            if (std::this_thread::get_id() == caller) {
                id = 0;
            } else if (id < 0) {
                id = named.fetch_add(1) + 1;
            }
            {
                std::lock_guard<std::mutex> g(mu);
                chunks.push_back(static_cast<int>(b));
                chunks.push_back(static_cast<int>(e - b));
            }
            if (id == 0 && !slept && lateMillis > 0) {
                slept = true;
                std::this_thread::sleep_for(std::chrono::milliseconds(lateMillis));
            }
            for (int64_t i = b; i < e; i++) {
                runs[static_cast<size_t>(i)].fetch_add(1);
                by[static_cast<size_t>(i)] = id;
            }
        });
        std::vector<jint> out;
        for (auto& r : runs) out.push_back(r.load());
        out.insert(out.end(), by.begin(), by.end());
        out.insert(out.end(), chunks.begin(), chunks.end());
        return intArray(env, out);
    }, static_cast<jintArray>(nullptr));
}

JNIEXPORT jfloatArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_integerProduct(
        JNIEnv* env, jclass, jint type, jbyteArray weights, jint rows, jfloatArray x, jint n, jint kernel) {
    return guarded(env, [&]() -> jfloatArray {
        if (!qk::available(qk::Avx512)) throw std::runtime_error("this processor has no avx512 level");
        const uint32_t t = static_cast<uint32_t>(type);
        int64_t elems, bytes;
        if (!amx::supports(t) || !gguf::blockInfo(t, elems, bytes)) throw std::runtime_error("type " + std::to_string(type) + " has no integer product");
        const int64_t cols = hookColumns(env, weights, rows, x, n, elems, bytes), rowBytes = cols / elems * bytes;
        const std::vector<uint8_t> w = bytesOf(env, weights);
        const std::vector<float> xf = floatsOf(env, x);
        const size_t stride = qk::inputBytes(t, cols);
        std::vector<uint8_t> xq(stride * static_cast<size_t>(n));
        for (int64_t i = 0; i < n; i++) qk::quantize(t, xf.data() + i * cols, xq.data() + stride * i, cols);
        std::vector<float> y(static_cast<size_t>(n * rows));
        amx::Packed packed;
        switch (kernel) {
            case 0:
            case 1: amx::multiply(nullptr, t, w.data(), rowBytes, rows, cols, xq.data(), stride, n, y.data(), packed, kernel == 1); break;
            case 2:
            case 3: {
                // Repacked and multiplied on a pool of 2 threads, or of 4.
                ThreadPool pool(kernel == 2 ? 2 : 4);
                const amx::Repacked r = amx::repack(&pool, t, w.data(), rowBytes, rows, cols);
                amx::multiply(&pool, r, xq.data(), stride, n, y.data());
                break;
            }
            default: throw std::runtime_error("kernel must be 0 to 3");
        }
        return floatArray(env, y);
    }, static_cast<jfloatArray>(nullptr));
}

JNIEXPORT jbyteArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_quantizeInput(
        JNIEnv* env, jclass, jint type, jfloatArray x, jboolean portable) {
    return guarded(env, [&]() -> jbyteArray {
        if (!x) throw std::runtime_error("x must not be null");
        const uint32_t t = static_cast<uint32_t>(type);
        if (!qk::integerType(t)) throw std::runtime_error("type " + std::to_string(type) + " has no quantized input");
        int64_t block, bytes;
        gguf::blockInfo(t, block, bytes);  // the input blocks are the weights' (32 or 256 values)
        const int64_t n = env->GetArrayLength(x);
        if (n <= 0 || n % block != 0) throw std::runtime_error("x must hold a positive multiple of " + std::to_string(block) + " values");
        const std::vector<float> xf = floatsOf(env, x);
        std::vector<uint8_t> out(qk::inputBytes(t, n));
        qk::quantize(t, xf.data(), out.data(), n, portable == JNI_TRUE);
        return byteArray(env, out);
    }, static_cast<jbyteArray>(nullptr));
}

JNIEXPORT jfloatArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_panelProduct(
        JNIEnv* env, jclass, jint type, jbyteArray weights, jint rows, jfloatArray x, jint n, jint threads) {
    return guarded(env, [&]() -> jfloatArray {
        const uint32_t t = static_cast<uint32_t>(type);
        if (t != gguf::F32 && t != gguf::F16) throw std::runtime_error("type must be F32 (0) or F16 (1)");
        if (std::strcmp(gemm::features(), "avx512f") != 0) throw std::runtime_error("the panel kernel needs avx512f");
        if (threads <= 0) throw std::runtime_error("threads must be > 0");
        const int64_t cols = hookColumns(env, weights, rows, x, n, 1, t == gguf::F16 ? 2 : 4);
        const std::vector<uint8_t> w = bytesOf(env, weights);
        const std::vector<float> xf = floatsOf(env, x);
        std::vector<float> y(static_cast<size_t>(n * rows));
        ThreadPool pool(threads);
        const gemm::Panels p = gemm::pack(pool, t, w.data(), rows, cols);
        gemm::multiply(pool, p, xf.data(), y.data(), n);
        return floatArray(env, y);
    }, static_cast<jfloatArray>(nullptr));
}

JNIEXPORT void JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_injectFault(JNIEnv* env, jclass, jlong h, jint kind) {
    guarded(env, [&]() -> int {
        if (kind < 0 || kind > 2) throw std::runtime_error("fault kind must be 0, 1 or 2");
        model(env, h)->injectFault(kind);
        return 0;
    }, 0);
}

JNIEXPORT jboolean JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_kernelLevelAvailable(JNIEnv*, jclass, jint level) {
    return qk::available(level) ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT jfloatArray JNICALL Java_dev_hybridinference_localgpu_internal_NativeEngine_dequantize(
        JNIEnv* env, jclass, jint mode, jint type, jbyteArray row, jint n) {
    return guarded(env, [&]() -> jfloatArray {
        if (!row) throw std::runtime_error("row must not be null");
        int64_t elems, bytes;
        if (!gguf::blockInfo(static_cast<uint32_t>(type), elems, bytes)) throw std::runtime_error("type " + std::to_string(type) + " is not computed here");
        if (mode != 0 && !dq::supported(static_cast<uint32_t>(type))) {
            throw std::runtime_error(std::string("type ") + gguf::typeName(static_cast<uint32_t>(type)) + " has no CUDA decoding");
        }
        if (n <= 0 || n % elems != 0 || n % 8 != 0 || env->GetArrayLength(row) != n / elems * bytes) {
            throw std::runtime_error("n must be a positive multiple of the block and of 8, and row hold its blocks");
        }
        const std::vector<uint8_t> w = bytesOf(env, row);
        std::vector<float> out(static_cast<size_t>(n));
        const uint32_t t = static_cast<uint32_t>(type);
        if (mode == 0) {
            kern::dequantizeRow(t, w.data(), out.data(), n);
        } else if (mode == 1) {
            for (int64_t i = 0; i < n; i++) out[static_cast<size_t>(i)] = dq::element(t, w.data(), i);
        } else if (t == dq::kQ8_0) {
            // As the matrix product reads the row, split (dq::kQ8_0Split): 16 quants a load, with the
            // block's scale; each value recovered as the dot product with a unit vector.
            std::vector<uint8_t> split(static_cast<size_t>(dq::q8_0SplitRowBytes(n)));
            dq::splitQ8_0(w.data(), 1, n, split.data());
            for (int64_t base = 0; base < n; base += 16) {
                uint32_t q[4];
                dq::words16(split.data() + base, q);
                const float d = dq::half(dq::u16(split.data() + n + 2 * (base >> 5)));
                for (int e = 0; e < 16; e++) {
                    float unit[16] = {};
                    unit[e] = 1.0f;
                    out[static_cast<size_t>(base + e)] = dq::q8_0SplitDot(q, d, unit);
                }
            }
        } else if (t == dq::kQ4_K) {
            // As the matrix product reads it: a block's head and 16 quant bytes a load, 32 values.
            for (int64_t block = 0; block < n / 256; block++) {
                const uint8_t* b = w.data() + block * 144;
                uint32_t head[4];
                dq::words16(b, head);
                for (int part = 0; part < 8; part++) {
                    const int c = part >> 1, l = 16 * (part & 1);
                    uint32_t q[4];
                    dq::words16(b + 16 + 32 * c + l, q);
                    for (int e = 0; e < 32; e++) {
                        float unit[32] = {};
                        unit[e] = 1.0f;
                        const int64_t at = block * 256 + 64 * c + l + (e < 16 ? e : 32 + e - 16);
                        out[static_cast<size_t>(at)] = dq::q4_KDot(q, head, c, unit);
                    }
                }
            }
        } else {
            for (int64_t b = 0; b < n; b += 8) {
                float* o = out.data() + b;
                if (t == dq::kQ6_K) {
                    dq::q6_Kx8(w.data(), b, o);
                } else {
                    for (int e = 0; e < 8; e++) o[e] = dq::element(t, w.data(), b + e);
                }
            }
        }
        return floatArray(env, out);
    }, static_cast<jfloatArray>(nullptr));
}
