// The thread pool: every index exactly once, chunk sizes as documented, exceptions carried back
// to the caller, and thousands of back-to-back jobs (the decode pattern), including jobs issued
// after the workers have gone to sleep.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace tdm {
namespace {

TEST(ThreadPool, SizeCountsTheCaller) {
    EXPECT_EQ(ThreadPool(1).size(), 1);
    EXPECT_EQ(ThreadPool(3).size(), 3);
    EXPECT_EQ(ThreadPool(0).size(), ThreadPool::hardware_threads());
}

TEST(ThreadPool, ParallelForCoversEveryIndexExactlyOnce) {
    for (int threads : {1, 2, 3, 4, 8}) {
        ThreadPool pool(threads);
        for (int64_t n : {0, 1, 2, 3, 7, 100, 1000, 12345}) {
            for (int64_t grain : {1, 2, 7, 64, 1000, 100000}) {
                for (int64_t begin : {0, 5}) {
                    SCOPED_TRACE("threads=" + std::to_string(threads) + " n=" + std::to_string(n) +
                                 " grain=" + std::to_string(grain) +
                                 " begin=" + std::to_string(begin));
                    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
                    std::atomic<int> chunks{0};
                    std::atomic<bool> bad_chunk{false};
                    pool.parallel_for(begin, begin + n, grain, [&](int64_t lo, int64_t hi) {
                        chunks.fetch_add(1);
                        // A chunk is never empty and never below the grain, unless it is all of n.
                        if (lo >= hi || (hi - lo < grain && hi - lo != n)) bad_chunk = true;
                        for (int64_t i = lo; i < hi; ++i) hits[i - begin].fetch_add(1);
                    });
                    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
                    EXPECT_FALSE(bad_chunk.load());
                    EXPECT_LE(chunks.load(), pool.size());
                    if (n == 0) {
                        EXPECT_EQ(chunks.load(), 0);
                    }
                }
            }
        }
    }
}

TEST(ThreadPool, RunOnAllRunsEachThreadIndexOnce) {
    ThreadPool pool(4);
    std::vector<std::atomic<int>> seen(4);
    pool.run_on_all([&](int t) { seen[t].fetch_add(1); });
    for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(ThreadPool, ExceptionsReachTheCallerAndThePoolSurvives) {
    ThreadPool pool(3);
    for (int thrower : {0, 1, 2}) {  // the caller's own chunk, then a worker's
        EXPECT_THROW(pool.run_on_all([&](int t) {
            if (t == thrower) throw std::runtime_error("chunk failed");
        }),
                     std::runtime_error);
    }
    // Every thread throwing: one exception comes back, the rest are dropped.
    EXPECT_THROW(pool.run_on_all([](int) { throw std::logic_error("all"); }), std::logic_error);
    EXPECT_THROW(pool.parallel_for(0, 100, 1,
                                   [](int64_t lo, int64_t) {
                                       if (lo > 0) throw std::out_of_range("worker chunk");
                                   }),
                 std::out_of_range);
    std::atomic<int64_t> sum{0};
    pool.parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) sum += i;
    });
    EXPECT_EQ(sum.load(), 999 * 1000 / 2);
}

TEST(ThreadPool, ThousandsOfSmallJobsBackToBack) {
    ThreadPool pool(2);
    int64_t total = 0;
    for (int rep = 0; rep < 5000; ++rep) {
        std::atomic<int64_t> sum{0};
        pool.parallel_for(0, 64, 1, [&](int64_t lo, int64_t hi) {
            for (int64_t i = lo; i < hi; ++i) sum += i + rep;
        });
        total += sum.load();
        ASSERT_EQ(sum.load(), 64 * 63 / 2 + 64 * rep) << "job " << rep;
    }
    EXPECT_GT(total, 0);
}

TEST(ThreadPool, WakesWorkersThatWentToSleep) {
    ThreadPool pool(3);
    for (int rep = 0; rep < 5; ++rep) {
        // Longer than the pool's spin phase, so the workers block on the condition variable.
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        std::vector<std::atomic<int>> seen(3);
        pool.run_on_all([&](int t) { seen[t].fetch_add(1); });
        for (auto& s : seen) ASSERT_EQ(s.load(), 1);
    }
}

TEST(ThreadPool, WaitsForASlowWorker) {
    // The caller's chunk finishes at once; it must wait (past its own spin phase) for the others.
    ThreadPool pool(2);
    std::atomic<bool> done{false};
    pool.run_on_all([&](int t) {
        if (t == 1) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            done = true;
        }
    });
    EXPECT_TRUE(done.load());
}

TEST(ThreadPool, DestroysCleanlyWhetherIdleOrSleeping) {
    for (int pause_ms : {0, 3}) {
        ThreadPool pool(4);
        pool.run_on_all([](int) {});
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    SUCCEED();
}

}  // namespace
}  // namespace tdm
