#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tdm {
namespace {

// How long an idle thread waits actively before it blocks: first spinning on the CPU (the common
// case: the gaps between the kernels of one decode step are a few microseconds), then yielding
// (when the machine is oversubscribed the thread we wait for may need our core). Short enough
// that an idle engine gives its cores back almost at once.
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr auto kYield = std::chrono::microseconds(500);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// Waits actively until done() holds or kSpin + kYield have passed; returns done().
template <class Done>
bool spin_until(Done done) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (done()) return true;
            cpu_relax();
        }
        auto waited = std::chrono::steady_clock::now() - start;
        if (waited > kSpin + kYield) return done();
        if (waited > kSpin) std::this_thread::yield();
    }
}

}  // namespace

int ThreadPool::hardware_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int threads) {
    int n = threads > 0 ? threads : hardware_threads();
    workers_.reserve(static_cast<size_t>(n - 1));
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_.store(true);
    }
    start_cv_.notify_all();
    for (auto& w : workers_) w.join();
}

// The sleep protocol (here and in wait_for_workers) is Dekker's: the sleeper announces itself
// (sleepers_++, seq_cst) and then re-checks the condition under the mutex; the waker changes the
// condition (seq_cst) and then reads the announcement, notifying under the mutex if it sees one.
// At least one of the two sees the other's write, so no wake-up is lost.
uint64_t ThreadPool::wait_for_job(uint64_t seen) {
    uint64_t now = seen;
    auto arrived = [&] {
        now = generation_.load(std::memory_order_acquire);
        return now != seen || stopping_.load(std::memory_order_acquire);
    };
    if (spin_until(arrived)) return now;
    std::unique_lock<std::mutex> lock(mutex_);
    sleepers_.fetch_add(1);
    start_cv_.wait(lock, arrived);
    sleepers_.fetch_sub(1);
    return now;
}

void ThreadPool::worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = wait_for_job(seen);
        if (stopping_.load(std::memory_order_acquire)) return;
        seen = gen;
        const std::function<void(int)>* job = job_;
        try {
            (*job)(index);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
        if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_cv_.notify_one();
        }
    }
}

void ThreadPool::wait_for_workers() {
    auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (spin_until(done)) return;
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true);
    done_cv_.wait(lock, [&] { return pending_.load() == 0; });
    caller_sleeping_.store(false);
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn) {
    if (workers_.empty()) {
        fn(0);
        return;
    }
    // No worker touches job_, error_ or pending_ until the generation bump below publishes them.
    job_ = &fn;
    error_ = nullptr;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1);
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        start_cv_.notify_all();
    }
    std::exception_ptr mine;
    try {
        fn(0);
    } catch (...) {
        mine = std::current_exception();
    }
    wait_for_workers();
    std::exception_ptr theirs;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        theirs = error_;
        error_ = nullptr;
        job_ = nullptr;
    }
    if (mine) std::rethrow_exception(mine);
    if (theirs) std::rethrow_exception(theirs);
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
    int64_t n = end - begin;
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    // Rounding n / grain down keeps every chunk at least `grain` long, as documented (rounding
    // up, as this once did, cut n = 100, grain = 64 into two chunks of 50).
    int64_t chunks = std::min<int64_t>(size(), std::max<int64_t>(1, n / grain));
    if (chunks <= 1) {
        fn(begin, end);
        return;
    }
    run_on_all([&](int t) {
        if (t >= chunks) return;
        int64_t lo = begin + n * t / chunks;
        int64_t hi = begin + n * (t + 1) / chunks;
        if (lo < hi) fn(lo, hi);
    });
}

}  // namespace tdm
