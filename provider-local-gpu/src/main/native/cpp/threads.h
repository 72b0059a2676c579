// A small persistent thread pool: parallelFor splits [0, n) into one contiguous chunk per thread and
// runs them at once, the calling thread taking the first chunk.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

class ThreadPool {
public:
    explicit ThreadPool(int threads) : n_(threads < 1 ? 1 : threads) {
        for (int i = 1; i < n_; i++) workers_.emplace_back([this, i] { loop(i); });
    }

    ~ThreadPool() {
        {
            std::lock_guard<std::mutex> g(m_);
            stop_ = true;
            gen_++;
        }
        cv_.notify_all();
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
        {
            std::lock_guard<std::mutex> g(m_);
            job_ = &fn;
            total_ = n;
            pending_ = n_ - 1;
            gen_++;
        }
        cv_.notify_all();
        run(0, fn, n);
        std::unique_lock<std::mutex> l(m_);
        done_.wait(l, [this] { return pending_ == 0; });
        job_ = nullptr;
    }

private:
    void run(int idx, const std::function<void(int64_t, int64_t)>& fn, int64_t n) const {
        int64_t chunk = (n + n_ - 1) / n_;
        int64_t b = idx * chunk;
        int64_t e = b + chunk < n ? b + chunk : n;
        if (b < e) fn(b, e);
    }

    void loop(int idx) {
        uint64_t seen = 0;
        while (true) {
            const std::function<void(int64_t, int64_t)>* job;
            int64_t n;
            {
                std::unique_lock<std::mutex> l(m_);
                cv_.wait(l, [&] { return gen_ != seen; });
                seen = gen_;
                if (stop_) return;
                job = job_;
                n = total_;
            }
            run(idx, *job, n);
            {
                std::lock_guard<std::mutex> g(m_);
                if (--pending_ == 0) done_.notify_one();
            }
        }
    }

    int n_;
    std::vector<std::thread> workers_;
    std::mutex m_;
    std::condition_variable cv_;
    std::condition_variable done_;
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t total_ = 0;
    int pending_ = 0;
    uint64_t gen_ = 0;
    bool stop_ = false;
};
