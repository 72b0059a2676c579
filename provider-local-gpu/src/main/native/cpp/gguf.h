// GGUF v2/v3 reader over a memory-mapped file. Every offset, size, count and string is checked
// against the file's bounds; any violation throws gguf::Error with a message naming what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace gguf {

struct Error : std::runtime_error {
    explicit Error(const std::string& m) : std::runtime_error(m) {}
};

enum ValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12
};

// ggml tensor types this engine computes with.
enum TensorType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14 };

struct Value {
    ValueType type = UINT8;
    ValueType elemType = UINT8;     // for arrays
    uint64_t count = 0;             // for arrays
    int64_t i = 0;                  // integers and bools
    double f = 0;                   // floats
    std::string s;                  // strings
    std::vector<int64_t> ints;      // integer arrays (kept: per-layer hyperparameters)
    std::vector<double> floats;     // float arrays
};

struct Tensor {
    std::string name;
    uint32_t type = 0;
    int64_t ne[4] = {1, 1, 1, 1};
    uint32_t nDims = 0;
    uint64_t offset = 0;            // relative to the data section
    const uint8_t* data = nullptr;  // into the mapping
    uint64_t bytes = 0;
    int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
};

// Block geometry of a type: elements per block and bytes per block; false for types not computed here.
bool blockInfo(uint32_t type, int64_t& elems, int64_t& bytes);
const char* typeName(uint32_t type);

class File {
public:
    explicit File(const std::string& path);
    ~File();
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    uint32_t version() const { return version_; }
    const std::map<std::string, Value>& metadata() const { return kv_; }
    const Value* find(const std::string& key) const;
    const Tensor* tensor(const std::string& name) const;
    const std::vector<Tensor>& tensors() const { return tensors_; }
    size_t size() const { return size_; }
    // Copies n bytes of the file, those mapped at `at` (inside the mapping), through a read of the file
    // rather than of the mapping: no page of the mapping becomes resident.
    void read(const uint8_t* at, size_t n, uint8_t* out) const;

private:
    void parse();
    const uint8_t* base_ = nullptr;
    size_t size_ = 0;
    int fd_ = -1;
    uint32_t version_ = 0;
    std::map<std::string, Value> kv_;
    std::vector<Tensor> tensors_;
    std::map<std::string, size_t> byName_;
};

}  // namespace gguf
