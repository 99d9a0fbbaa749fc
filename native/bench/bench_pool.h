// The thread pool of the CPU Google Benchmarks (tandem_bench): TANDEM_BENCH_THREADS threads,
// default 2 (the CI machine's cores), one pool for the whole process.
#pragma once

#include <cstdlib>

#include "core/thread_pool.h"

namespace tdm::bench {

inline ThreadPool& cpu_pool() {
    static ThreadPool pool([] {
        const char* s = std::getenv("TANDEM_BENCH_THREADS");
        return s ? std::atoi(s) : 2;
    }());
    return pool;
}

}  // namespace tdm::bench
