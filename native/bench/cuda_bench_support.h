// Helpers shared by the CUDA benchmark programs (tandem_cuda_bench, tandem_sparse_bench,
// tandem_cuda_gemv_bench, tandem_decode_attention_bench): CUDA-event timing, medians, the copy
// bandwidth, random fills, argument lists.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/device_buffer.h"

namespace tdm::bench {

using Clock = std::chrono::steady_clock;
using tdm::cuda::DeviceBuffer;

inline double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

inline std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, sep);)
        if (!item.empty()) out.push_back(item);
    return out;
}

// Times `work` (which enqueues on `stream`) with CUDA events: `warmup` untimed runs, then `reps`
// timed ones; returns every timed run in seconds.
template <class F>
std::vector<double> time_events(cudaStream_t stream, int warmup, int reps, F&& work) {
    cudaEvent_t start, stop;
    TDM_CUDA_CHECK(cudaEventCreate(&start));
    TDM_CUDA_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < warmup; ++i) work();
    std::vector<double> times;
    for (int i = 0; i < reps; ++i) {
        TDM_CUDA_CHECK(cudaEventRecord(start, stream));
        work();
        TDM_CUDA_CHECK(cudaEventRecord(stop, stream));
        TDM_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        TDM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        times.push_back(ms * 1e-3);
    }
    TDM_CUDA_CHECK(cudaEventDestroy(start));
    TDM_CUDA_CHECK(cudaEventDestroy(stop));
    return times;
}

// Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written (2 GiB,
// median of 20): the ceiling for a kernel that streams weights or a cache, and the bandwidth
// floors' denominator in every table.
inline double copy_bandwidth(cudaStream_t stream) {
    const size_t bytes = size_t(2) << 30;
    DeviceBuffer src(bytes), dst(bytes);
    // Any non-zero pattern: a copy's speed does not depend on the values, but never time zeros.
    TDM_CUDA_CHECK(cudaMemsetAsync(src.data(), 0x5A, bytes, stream));
    const auto t = time_events(stream, 3, 20, [&] {
        TDM_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice,
                                       stream));
    });
    return 2.0 * double(bytes) / median(t);
}

// Fills `v` with uniform(-1, 1) values from per-chunk streams of `seed`, on every hardware thread.
inline void fill_uniform(std::vector<float>& v, uint64_t seed) {
    const size_t chunk = size_t(1) << 22, chunks = (v.size() + chunk - 1) / chunk;
    const size_t threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (size_t c = t; c < chunks; c += threads) {
                std::mt19937 rng(uint32_t(seed * 1000003u + c));
                std::uniform_real_distribution<float> u(-1.0f, 1.0f);
                const size_t end = std::min(v.size(), (c + 1) * chunk);
                for (size_t i = c * chunk; i < end; ++i) v[i] = u(rng);
            }
        });
    }
    for (auto& t : pool) t.join();
}

}  // namespace tdm::bench
