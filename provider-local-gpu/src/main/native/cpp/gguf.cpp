#include "gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace gguf {

namespace {

constexpr uint64_t kMaxStringBytes = 1ull << 30;   // 1 GiB: no sane key or token is longer
constexpr uint64_t kMaxTensors = 1ull << 20;
constexpr uint64_t kMaxKeys = 1ull << 20;
// The most elements one tensor may claim. The largest tensors of real models hold a few billion (2^32);
// the bound keeps every size derived from a shape (bytes, rows, offsets) far inside 64 bits.
constexpr uint64_t kMaxElements = 1ull << 48;
// The fewest bytes a tensor's description takes: name length, one dimension, dims, type and offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

// A bounds-checked cursor over the mapping.
class Cursor {
public:
    Cursor(const uint8_t* base, size_t size) : base_(base), size_(size) {}

    size_t pos() const { return pos_; }

    void need(uint64_t n, const char* what) const {
        if (n > size_ - pos_) {
            throw Error(std::string("truncated file: ") + what + " needs " + std::to_string(n) +
                        " bytes at offset " + std::to_string(pos_) + ", file has " + std::to_string(size_));
        }
    }

    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string string(const char* what) {
        uint64_t n = read<uint64_t>(what);
        if (n > kMaxStringBytes) {
            throw Error(std::string(what) + ": string length " + std::to_string(n) + " is not plausible");
        }
        need(n, what);
        std::string s(reinterpret_cast<const char*>(base_ + pos_), n);
        pos_ += n;
        return s;
    }

    void skip(uint64_t n, const char* what) {
        need(n, what);
        pos_ += n;
    }

private:
    const uint8_t* base_;
    size_t size_;
    size_t pos_ = 0;
};

size_t scalarSize(uint32_t t) {
    switch (t) {
        case UINT8: case INT8: case BOOL: return 1;
        case UINT16: case INT16: return 2;
        case UINT32: case INT32: case FLOAT32: return 4;
        case UINT64: case INT64: case FLOAT64: return 8;
        default: return 0;
    }
}

bool isInteger(uint32_t t) {
    return t == UINT8 || t == INT8 || t == UINT16 || t == INT16 || t == UINT32 || t == INT32 ||
           t == UINT64 || t == INT64 || t == BOOL;
}

void readScalar(Cursor& c, uint32_t t, Value& v, const std::string& key) {
    const char* what = key.c_str();
    switch (t) {
        case UINT8: v.i = c.read<uint8_t>(what); break;
        case INT8: v.i = c.read<int8_t>(what); break;
        case UINT16: v.i = c.read<uint16_t>(what); break;
        case INT16: v.i = c.read<int16_t>(what); break;
        case UINT32: v.i = c.read<uint32_t>(what); break;
        case INT32: v.i = c.read<int32_t>(what); break;
        case UINT64: {
            uint64_t u = c.read<uint64_t>(what);
            v.i = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
            break;
        }
        case INT64: v.i = c.read<int64_t>(what); break;
        case BOOL: {
            uint8_t b = c.read<uint8_t>(what);
            if (b > 1) throw Error("metadata " + key + ": bool value " + std::to_string(b) + " is not 0 or 1");
            v.i = b;
            break;
        }
        case FLOAT32: v.f = c.read<float>(what); break;
        case FLOAT64: v.f = c.read<double>(what); break;
        default: throw Error("metadata " + key + ": unknown value type " + std::to_string(t));
    }
}

}  // namespace

bool blockInfo(uint32_t type, int64_t& elems, int64_t& bytes) {
    switch (type) {
        case F32: elems = 1; bytes = 4; return true;
        case F16: elems = 1; bytes = 2; return true;
        case Q4_0: elems = 32; bytes = 18; return true;
        case Q4_1: elems = 32; bytes = 20; return true;
        case Q8_0: elems = 32; bytes = 34; return true;
        case Q4_K: elems = 256; bytes = 144; return true;
        case Q5_K: elems = 256; bytes = 176; return true;
        case Q6_K: elems = 256; bytes = 210; return true;
        default: return false;
    }
}

const char* typeName(uint32_t type) {
    switch (type) {
        case F32: return "F32";
        case F16: return "F16";
        case Q4_0: return "Q4_0";
        case Q4_1: return "Q4_1";
        case Q8_0: return "Q8_0";
        case Q4_K: return "Q4_K";
        case Q5_K: return "Q5_K";
        case Q6_K: return "Q6_K";
        case 6: return "Q5_0";
        case 7: return "Q5_1";
        case 10: return "Q2_K";
        case 11: return "Q3_K";
        case 30: return "BF16";
        default: return "unsupported";
    }
}

File::File(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        throw Error("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0) {
        int e = errno;
        ::close(fd_);
        throw Error("cannot stat " + path + ": " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd_);
        throw Error(path + " is not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ < 24) {
        ::close(fd_);
        throw Error(path + " is too small to be a GGUF file (" + std::to_string(size_) + " bytes)");
    }
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        ::close(fd_);
        throw Error("cannot map " + path + ": " + std::strerror(e));
    }
    base_ = static_cast<const uint8_t*>(p);
    try {
        parse();
    } catch (...) {
        ::munmap(const_cast<uint8_t*>(base_), size_);
        ::close(fd_);
        throw;
    }
}

void File::read(const uint8_t* at, size_t n, uint8_t* out) const {
    if (at < base_ || static_cast<size_t>(at - base_) > size_ || n > size_ - static_cast<size_t>(at - base_)) {
        throw Error("read outside the file's mapping");
    }
    off_t offset = static_cast<off_t>(at - base_);
    while (n > 0) {
        const ssize_t got = ::pread(fd_, out, n, offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) throw Error(std::string("cannot read the model file: ") + (got < 0 ? std::strerror(errno) : "it ended early"));
        out += got;
        offset += got;
        n -= static_cast<size_t>(got);
    }
}

File::~File() {
    if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
    if (fd_ >= 0) ::close(fd_);
}

const Value* File::find(const std::string& key) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
}

const Tensor* File::tensor(const std::string& name) const {
    auto it = byName_.find(name);
    return it == byName_.end() ? nullptr : &tensors_[it->second];
}

void File::parse() {
    Cursor c(base_, size_);
    uint32_t magic = c.read<uint32_t>("magic");
    if (magic != 0x46554747u) {
        throw Error("not a GGUF file: bad magic");
    }
    version_ = c.read<uint32_t>("version");
    if (version_ < 2 || version_ > 3) {
        throw Error("unsupported GGUF version " + std::to_string(version_) + " (expected 2 or 3)");
    }
    int64_t nTensors = c.read<int64_t>("tensor count");
    int64_t nKv = c.read<int64_t>("metadata count");
    if (nTensors < 0 || static_cast<uint64_t>(nTensors) > kMaxTensors) {
        throw Error("tensor count " + std::to_string(nTensors) + " is not plausible");
    }
    if (nKv < 0 || static_cast<uint64_t>(nKv) > kMaxKeys) {
        throw Error("metadata count " + std::to_string(nKv) + " is not plausible");
    }
    for (int64_t k = 0; k < nKv; k++) {
        std::string key = c.string("metadata key");
        if (kv_.count(key)) throw Error("duplicate metadata key " + key);
        Value v;
        uint32_t t = c.read<uint32_t>(key.c_str());
        v.type = static_cast<ValueType>(t);
        if (t == STRING) {
            v.s = c.string(key.c_str());
        } else if (t == ARRAY) {
            uint32_t et = c.read<uint32_t>(key.c_str());
            uint64_t n = c.read<uint64_t>(key.c_str());
            v.elemType = static_cast<ValueType>(et);
            v.count = n;
            if (et == ARRAY) throw Error("metadata " + key + ": arrays of arrays are not allowed");
            if (et == STRING) {
                // Each element is at least its 8-byte length: a count the file cannot hold is rejected
                // before any loop runs.
                if (n > (size_ - c.pos()) / 8) throw Error("metadata " + key + ": array count " + std::to_string(n) + " exceeds the file");
                for (uint64_t i = 0; i < n; i++) {
                    uint64_t len = c.read<uint64_t>(key.c_str());
                    c.skip(len, key.c_str());
                }
            } else {
                size_t es = scalarSize(et);
                if (es == 0) throw Error("metadata " + key + ": unknown array element type " + std::to_string(et));
                if (n > (size_ - c.pos()) / es) throw Error("metadata " + key + ": array count " + std::to_string(n) + " exceeds the file");
                bool keep = n <= 4096;  // per-layer hyperparameters; large arrays are the tokenizer's, read in Java
                for (uint64_t i = 0; i < n; i++) {
                    Value e;
                    readScalar(c, et, e, key);
                    if (keep) {
                        if (isInteger(et)) v.ints.push_back(e.i); else v.floats.push_back(e.f);
                    }
                }
            }
        } else {
            readScalar(c, t, v, key);
        }
        kv_.emplace(std::move(key), std::move(v));
    }
    uint64_t alignment = 32;
    if (const Value* a = find("general.alignment")) {
        if (!isInteger(a->type) || a->i <= 0 || (a->i & (a->i - 1)) != 0) {
            throw Error("general.alignment must be a positive power of two");
        }
        alignment = static_cast<uint64_t>(a->i);
    }
    if (static_cast<uint64_t>(nTensors) > (size_ - c.pos()) / kMinTensorInfoBytes) {
        throw Error("tensor count " + std::to_string(nTensors) + " exceeds the file");
    }
    tensors_.reserve(static_cast<size_t>(nTensors));
    for (int64_t t = 0; t < nTensors; t++) {
        Tensor ti;
        ti.name = c.string("tensor name");
        if (ti.name.size() > 255) throw Error("tensor name is longer than 255 bytes");
        ti.nDims = c.read<uint32_t>("tensor dims");
        if (ti.nDims < 1 || ti.nDims > 4) {
            throw Error("tensor " + ti.name + ": " + std::to_string(ti.nDims) + " dimensions (expected 1 to 4)");
        }
        for (uint32_t d = 0; d < ti.nDims; d++) {
            ti.ne[d] = c.read<int64_t>("tensor shape");
            if (ti.ne[d] <= 0 || ti.ne[d] > (int64_t(1) << 40)) {
                throw Error("tensor " + ti.name + ": dimension " + std::to_string(d) + " is " + std::to_string(ti.ne[d]));
            }
        }
        // Four dimensions of up to 2^40 each overflow any integer type. The product is checked by
        // division before each step, so it stays <= 2^48 and never wraps.
        uint64_t elements = 1;
        for (uint32_t d = 0; d < ti.nDims; d++) {
            if (static_cast<uint64_t>(ti.ne[d]) > kMaxElements / elements) {
                std::string shape;
                for (uint32_t k = 0; k < ti.nDims; k++) shape += (k ? " x " : "") + std::to_string(ti.ne[k]);
                throw Error("tensor " + ti.name + ": shape " + shape + " has more than 2^48 elements");
            }
            elements *= static_cast<uint64_t>(ti.ne[d]);
        }
        ti.type = c.read<uint32_t>("tensor type");
        ti.offset = c.read<uint64_t>("tensor offset");
        if (byName_.count(ti.name)) throw Error("duplicate tensor " + ti.name);
        byName_[ti.name] = tensors_.size();
        tensors_.push_back(std::move(ti));
    }
    uint64_t dataStart = (c.pos() + alignment - 1) / alignment * alignment;
    if (dataStart > size_) throw Error("truncated file: the data section starts past the end");
    for (Tensor& ti : tensors_) {
        int64_t elems, bytes;
        if (!blockInfo(ti.type, elems, bytes)) {
            continue;  // sized only when used; Model rejects tensors of types it cannot compute
        }
        if (ti.ne[0] % elems != 0) {
            throw Error("tensor " + ti.name + ": row length " + std::to_string(ti.ne[0]) + " is not a multiple of " +
                        std::to_string(elems) + " for " + typeName(ti.type));
        }
        // At most 2^48 elements at no more than 4 bytes each (F32 is the widest type): no overflow.
        const uint64_t total = static_cast<uint64_t>(ti.ne[0] / elems) * static_cast<uint64_t>(bytes) *
                               static_cast<uint64_t>(ti.ne[1]) * static_cast<uint64_t>(ti.ne[2]) *
                               static_cast<uint64_t>(ti.ne[3]);
        if (ti.offset % alignment != 0) {
            throw Error("tensor " + ti.name + ": offset " + std::to_string(ti.offset) + " is not aligned to " + std::to_string(alignment));
        }
        if (total > size_ || ti.offset > size_ - dataStart || total > size_ - dataStart - ti.offset) {
            throw Error("tensor " + ti.name + ": data runs past the end of the file");
        }
        ti.bytes = total;
        ti.data = base_ + dataStart + ti.offset;
    }
}

}  // namespace gguf
