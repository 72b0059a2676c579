// Large buffers taken straight from the kernel, which are zero until written and go back to the kernel when
// freed (malloc would serve them from its heap and keep the memory there after they are freed):
// - the repacked weights of a model, which ask for 2 MiB pages where transparent huge pages are on request
//   (fewer TLB misses while a decode step walks through all of them; the kernel merges neighbouring buffers
//   into one mapping, so that pages can span them);
// - KV caches and their attention scratch, which ask for 4 KiB pages (Pages::Small), so that they take
//   memory as their positions fill rather than all of it when they are made: each head's run of positions
//   then holds pages of its own instead of a huge page that the first position of two heads would fill.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

class PageBuffer {
public:
    enum class Pages { Huge, Small };

    PageBuffer() = default;
    explicit PageBuffer(size_t bytes, Pages pages = Pages::Huge) {
        if (bytes == 0) return;
        constexpr size_t page = 4096;
        const size_t size = (bytes + page - 1) / page * page;
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        // Advice only: the buffer works the same with either size of page.
        ::madvise(p, size, pages == Pages::Huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        data_ = static_cast<uint8_t*>(p);
        size_ = size;
    }
    PageBuffer(PageBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    PageBuffer& operator=(PageBuffer&& o) noexcept {
        if (this != &o) {
            release();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    PageBuffer(const PageBuffer&) = delete;
    PageBuffer& operator=(const PageBuffer&) = delete;
    ~PageBuffer() { release(); }

    uint8_t* get() const { return data_; }

private:
    void release() {
        if (data_) ::munmap(data_, size_);
        data_ = nullptr;
        size_ = 0;
    }
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};
