// Helpers of the CUDA test suites (cuda_*_test.cpp): skipping without a supported GPU, device
// copies of host data, poisoned outputs with guard regions, error measures.
#pragma once

#if defined(TANDEM_HAVE_CUDA)

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/kernels.h"

namespace tdm::cuda::testing {

// Why the CUDA tests cannot run on this machine, or "" when GPU 0 is a supported GPU.
inline const std::string& why_no_gpu() {
    static const std::string why = [] {
        try {
            require_supported_device(0);
            return std::string();
        } catch (const Error& e) {
            return std::string(e.what());
        }
    }();
    return why;
}

}  // namespace tdm::cuda::testing

// Skips the calling test, visibly, unless a supported GPU is present.
#define TDM_SKIP_WITHOUT_GPU()                                                               \
    do {                                                                                     \
        if (!::tdm::cuda::testing::why_no_gpu().empty())                                     \
            GTEST_SKIP() << "CUDA test skipped: " << ::tdm::cuda::testing::why_no_gpu();     \
    } while (0)

namespace tdm::cuda::testing {

constexpr uint32_t kPoisonBits = 0x7fc0dead;  // a quiet NaN no arithmetic produces
constexpr int64_t kGuard = 41;                // floats of guard on each side of an output

inline float poison() {
    float f;
    std::memcpy(&f, &kPoisonBits, 4);
    return f;
}

inline bool is_poison(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u == kPoisonBits;
}

inline std::vector<float> uniform(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
    return out;
}

// A device copy of host data.
template <class T>
DeviceBuffer upload(const std::vector<T>& host) {
    DeviceBuffer b(host.size() * sizeof(T));
    if (!host.empty())
        TDM_CUDA_CHECK(cudaMemcpy(b.data(), host.data(), host.size() * sizeof(T),
                                  cudaMemcpyHostToDevice));
    return b;
}

// n elements of device memory, after every queued kernel has finished.
template <class T>
std::vector<T> download(const void* device, size_t n) {
    TDM_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> host(n);
    if (n > 0)
        TDM_CUDA_CHECK(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
}

// A row-major f32 output [rows, ld] with logical part [rows, cols], on the device, poisoned, with
// kGuard floats of poison before and after: after the kernel, every logical element must be
// written (finite) and every other float keep its poison.
class GuardedOutput {
public:
    GuardedOutput(int64_t rows, int64_t cols, int64_t ld)
        : rows_(rows), cols_(cols), ld_(ld),
          buffer_(upload(std::vector<float>(size_t(2 * kGuard + rows * ld), poison()))) {}

    float* data() const { return buffer_.as<float>() + kGuard; }
    int64_t ld() const { return ld_; }

    ::testing::AssertionResult written_exactly() const {
        const std::vector<float> all = download<float>(buffer_.data(), size_t(2 * kGuard + rows_ * ld_));
        for (int64_t i = 0; i < kGuard; ++i) {
            if (!is_poison(all[size_t(i)]))
                return ::testing::AssertionFailure() << "guard before the output overwritten at " << i;
            if (!is_poison(all[all.size() - 1 - size_t(i)]))
                return ::testing::AssertionFailure() << "guard after the output overwritten at " << i;
        }
        for (int64_t r = 0; r < rows_; ++r) {
            for (int64_t c = 0; c < ld_; ++c) {
                const float v = all[size_t(kGuard + r * ld_ + c)];
                if (c < cols_ && !std::isfinite(v))
                    return ::testing::AssertionFailure() << "element (" << r << ", " << c
                                                         << ") not written or not finite: " << v;
                if (c >= cols_ && !is_poison(v))
                    return ::testing::AssertionFailure() << "row gap (" << r << ", " << c
                                                         << ") overwritten";
            }
        }
        return ::testing::AssertionSuccess();
    }

    // The logical part [rows, cols], dense.
    std::vector<float> logical() const {
        const std::vector<float> all = download<float>(buffer_.data(), size_t(2 * kGuard + rows_ * ld_));
        std::vector<float> out(size_t(rows_ * cols_));
        for (int64_t r = 0; r < rows_; ++r)
            for (int64_t c = 0; c < cols_; ++c)
                out[size_t(r * cols_ + c)] = all[size_t(kGuard + r * ld_ + c)];
        return out;
    }

private:
    int64_t rows_, cols_, ld_;
    DeviceBuffer buffer_;
};

inline double rms(const std::vector<float>& v) {
    double s = 0.0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s / double(std::max<size_t>(1, v.size())));
}

// max |a - b| / rms(b), b the reference; infinity if any element of a is not finite.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    }
    const double scale = rms(b);
    return scale > 0.0 ? worst / scale : worst;
}

// A measured error as a test property (RecordProperty), e.g. "3.1e-06".
inline std::string sci(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2e", v);
    return buf;
}

// The RoPE-and-append arguments of a fused q/k/v GEMV writing bf16 caches k_cache, v_cache at
// positions pos0.., or (on_device) at the position in device memory pos_dev with pos0 left 0 -
// the recorded-graph way, where the host value must not be used.
inline QkvRope qkv_rope_at(bool on_device, int64_t pos0, const DeviceBuffer& pos_dev,
                           const DeviceBuffer& inv_freq, DeviceBuffer& k_cache,
                           DeviceBuffer& v_cache, int64_t capacity, int32_t head_dim) {
    QkvRope rope;
    rope.pos0 = on_device ? 0 : pos0;
    rope.pos_dev = on_device ? pos_dev.as<int64_t>() : nullptr;
    rope.inv_freq = inv_freq.as<float>();
    rope.k_cache = k_cache.as<uint16_t>();
    rope.v_cache = v_cache.as<uint16_t>();
    rope.capacity = capacity;
    rope.head_dim = head_dim;
    return rope;
}

}  // namespace tdm::cuda::testing

#endif  // TANDEM_HAVE_CUDA
