// A fixed pool of worker threads for data-parallel loops (the CPU kernels' only threading).
//
// parallel_for splits [begin, end) into at most size() contiguous chunks of at least `grain`
// items and runs fn(chunk_begin, chunk_end) on the pool, the calling thread taking the first chunk.
// It returns when every chunk is done; the first exception thrown by a chunk is rethrown.
// One parallel_for at a time per pool (a session owns its pool and is single-threaded).
//
// Hand-off is spin-then-block: a decode step issues ~100 small parallel loops of 10-100 us each,
// and waking a thread blocked on a condition variable costs ~20 us, so idle workers first spin on
// an atomic generation counter for a short while (kSpinNanoseconds) and only then sleep. The
// caller waits for the last chunk the same way.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tdm {

class ThreadPool {
public:
    // threads <= 0 means one per hardware thread.
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    void parallel_for(int64_t begin, int64_t end, int64_t grain,
                      const std::function<void(int64_t, int64_t)>& fn);

    // Runs fn(t) for t in [0, size()) on every thread: for kernels that partition work themselves.
    void run_on_all(const std::function<void(int)>& fn);

    static int hardware_threads();

private:
    void worker_loop(int index);
    // Waits until generation_ differs from `seen` (returns the new value) or the pool stops
    // (returns `seen`).
    uint64_t wait_for_job(uint64_t seen);
    void wait_for_workers();

    std::vector<std::thread> workers_;

    // The job hand-off. Written by the caller before generation_ is bumped (release), read by the
    // workers after they observe the bump (acquire).
    const std::function<void(int)>* job_ = nullptr;
    alignas(64) std::atomic<uint64_t> generation_{0};
    alignas(64) std::atomic<int> pending_{0};   // workers still running the current job
    alignas(64) std::atomic<int> sleepers_{0};  // workers blocked (or about to block) on start_cv_
    std::atomic<bool> caller_sleeping_{false};  // the caller blocked (or about to) on done_cv_
    std::atomic<bool> stopping_{false};

    std::mutex mutex_;                  // guards the condition variables and error_
    std::condition_variable start_cv_;  // workers sleep here when no job came while they spun
    std::condition_variable done_cv_;   // the caller sleeps here when the workers take long
    std::exception_ptr error_;
};

}  // namespace tdm
