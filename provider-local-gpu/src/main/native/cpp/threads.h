// A small persistent thread pool: parallelFor splits [0, n) into one contiguous chunk per thread and
// runs them at once, the calling thread taking the first chunk; parallelClaim lets the threads claim
// small chunks until none is left, each thread from its own contiguous share first. A token's forward
// pass hands the pool dozens of short jobs, so idle workers spin for a while before they sleep, and the
// caller spins while it waits for the others; rest() sends spinning workers to sleep at once, for when the
// caller knows no job follows soon (the end of a forward pass, after which the process has its own work
// for the cores).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define HI_RELAX() _mm_pause()
#else
#define HI_RELAX() std::this_thread::yield()
#endif

class ThreadPool {
public:
    explicit ThreadPool(int threads) : n_(threads < 1 ? 1 : threads), shares_(new Share[static_cast<size_t>(n_)]) {
        for (int i = 1; i < n_; i++) workers_.emplace_back([this, i] { loop(i); });
    }

    ~ThreadPool() {
        stop_.store(true);
        wake();
        for (auto& t : workers_) t.join();
    }

    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_; }

    // Runs fn(begin, end) over [0, n) split across the threads; returns when all chunks are done.
    void parallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
        if (n_ == 1 || n < 2 * n_) {
            fn(0, n);
            return;
        }
        job_ = &fn;
        total_ = n;
        pending_.store(n_ - 1);
        wake();
        run(0, fn, n);
        // A worker the system has not scheduled yet (more runnable threads than cores: the process's own
        // threads besides the pool's) would keep a spinning caller waiting for a whole time slice: after a
        // short spin the caller offers its core instead.
        for (int spins = 0; pending_.load() != 0; spins++) {
            if (spins < 2000) {
                HI_RELAX();
            } else {
                std::this_thread::yield();
            }
        }
        job_ = nullptr;
    }

    // Runs fn(begin, end) over [0, n) in chunks of grain that the threads claim until none is left, rather
    // than in one fixed share each: a thread that starts late (its core busy with another process) then
    // holds the call up by at most one chunk. Each thread owns a contiguous share, as in parallelFor, and
    // claims its chunks from that share's front, in order; a thread done with its own claims chunks from
    // the back of the others'. So each thread's reads stay one ascending run, which the prefetchers follow:
    // with one counter that all threads claimed from, the chunks of a matrix alternated between the threads
    // and the products of a 2-thread decode step of a 76M-parameter Q4_K model took 1.2 to 1.5 times as long.
    void parallelClaim(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
        if (n_ == 1 || n <= grain) {
            if (n > 0) fn(0, n);
            return;
        }
        if (n > 0xFFFFFFFFll) {  // the bounds take 32 bits
            parallelFor(n, fn);
            return;
        }
        for (int i = 0; i < n_; i++) {
            const uint64_t b = static_cast<uint64_t>(n * i / n_), e = static_cast<uint64_t>(n * (i + 1) / n_);
            shares_[i].bounds.store(b | (e << 32), std::memory_order_relaxed);
        }
        const uint64_t g = static_cast<uint64_t>(grain > 0 ? grain : 1);
        std::atomic<int> next{0};
        parallelFor(2 * n_, [&](int64_t, int64_t) {  // one call per thread
            const int me = next.fetch_add(1, std::memory_order_relaxed);
            for (int k = 0; k < n_; k++) {
                const bool own = k == 0;
                std::atomic<uint64_t>& bounds = shares_[(me + k) % n_].bounds;
                uint64_t v = bounds.load(std::memory_order_relaxed);
                while (true) {
                    const uint64_t f = v & 0xFFFFFFFFu, e = v >> 32;
                    if (f >= e) break;
                    const uint64_t take = g < e - f ? g : e - f;
                    const uint64_t claimed = own ? (f + take) | (e << 32) : f | ((e - take) << 32);
                    if (!bounds.compare_exchange_weak(v, claimed, std::memory_order_relaxed)) continue;
                    const int64_t b = static_cast<int64_t>(own ? f : e - take);
                    fn(b, b + static_cast<int64_t>(take));
                    v = bounds.load(std::memory_order_relaxed);
                }
            }
        });
    }

    // parallelClaim with chunks of n / (claims * threads), at least 1: each thread claims about `claims`
    // times, so that a late thread holds the call up by a small chunk while claims stay few.
    void parallelParts(int64_t n, int64_t claims, const std::function<void(int64_t, int64_t)>& fn) {
        const int64_t grain = n / (claims * n_);
        parallelClaim(n, grain > 1 ? grain : 1, fn);
    }

    // Idle workers stop spinning and sleep until the next job.
    void rest() { rest_.store(true, std::memory_order_relaxed); }

private:
    // Publishes a new job (or the stop) and wakes workers that went to sleep.
    void wake() {
        rest_.store(false, std::memory_order_relaxed);
        gen_.fetch_add(1);
        if (sleepers_.load() > 0) {
            std::lock_guard<std::mutex> g(m_);
            cv_.notify_all();
        }
    }

    void run(int idx, const std::function<void(int64_t, int64_t)>& fn, int64_t n) const {
        int64_t chunk = (n + n_ - 1) / n_;
        int64_t b = idx * chunk;
        int64_t e = b + chunk < n ? b + chunk : n;
        if (b < e) fn(b, e);
    }

    void loop(int idx) {
        uint64_t seen = 0;
        while (true) {
            uint64_t g;
            int spins = 0;
            while ((g = gen_.load()) == seen) {
                if (++spins < 100000 && !rest_.load(std::memory_order_relaxed)) {
                    HI_RELAX();
                    continue;
                }
                std::unique_lock<std::mutex> l(m_);
                sleepers_.fetch_add(1);
                cv_.wait(l, [&] { return gen_.load() != seen; });
                sleepers_.fetch_sub(1);
                spins = 0;
            }
            seen = g;
            if (stop_.load()) return;
            run(idx, *job_, total_);
            pending_.fetch_sub(1);
        }
    }

    // parallelClaim's shares, one per thread: its front in the low 32 bits and its back in the high 32, a
    // cache line each (the pool runs one job at a time).
    struct alignas(64) Share {
        std::atomic<uint64_t> bounds{0};
    };

    int n_;
    std::unique_ptr<Share[]> shares_;
    std::vector<std::thread> workers_;
    std::mutex m_;
    std::condition_variable cv_;
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t total_ = 0;
    std::atomic<int> pending_{0};
    std::atomic<uint64_t> gen_{0};
    std::atomic<int> sleepers_{0};
    std::atomic<bool> stop_{false};
    std::atomic<bool> rest_{false};
};
