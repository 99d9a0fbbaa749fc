// matmul: argument checks, the choice between the GEMV path (few rows: stream the weights once)
// and the packed GEMM path (many rows: compute-bound), and the split over the thread pool.
#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/scratch.h"

namespace tdm::cpu {
namespace {

// Below this many multiply-adds a second thread costs more to wake than it saves (a wake-up is
// a few microseconds; 64K multiply-adds of f32 weights are ~4 us of streaming at ~60 GB/s).
constexpr int64_t kMinWorkPerThread = 64 * 1024;

// A weight matrix this small stays in a core's L2 (or close to it, in L3) between passes, so up to
// kMaxGemvPasses GEMV passes (each over m_step rows) cost less than packing it for the GEMM: that
// is the case of a small model's catch-up or verification pass over a dozen tokens. Larger
// matrices stream from memory on every pass and take the GEMM as soon as one pass is not enough.
// (1 MiB rather than 512 KB: the demo pair's 553 KB MLP matrices then skip the packing, which was
// 11% of a pair-bench profile; R-Stitch handing 1 token in 16 to the large model went from ~4,800
// to ~6,150 tok/s on the 2-core CI-class VM, the 125M model's matrices are larger and unaffected.)
constexpr int64_t kCachedWeightBytes = 1024 * 1024;
constexpr int64_t kMaxGemvPasses = 4;

// [lo, hi) of part `c` of `parts` equal parts of [0, n), cut at multiples of `step` (except n).
std::pair<int64_t, int64_t> part(int64_t n, int64_t step, int64_t c, int64_t parts) {
    int64_t units = (n + step - 1) / step;
    int64_t lo = units * c / parts * step;
    int64_t hi = std::min(n, units * (c + 1) / parts * step);
    return {std::min(lo, n), hi};
}

const float* bias_as_f32(const VectorView& bias, int64_t n) {
    if (bias.empty()) return nullptr;
    if (bias.dtype == DType::F32) return static_cast<const float*>(bias.data);
    thread_local std::vector<float> converted;
    converted.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) converted[i] = load_as_f32(bias.data, i, bias.dtype);
    return converted.data();
}

}  // namespace

void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W, const VectorView& bias,
            float* y, int64_t ldy, ThreadPool& pool) {
    const int64_t N = W.rows, K = W.cols;
    TDM_REQUIRE(M >= 0 && N >= 0 && K >= 0, TDM_ERR_INVALID_ARGUMENT,
                "matmul: negative size (M=" + std::to_string(M) + ", W " + std::to_string(N) + "x" +
                    std::to_string(K) + ")");
    if (M == 0 || N == 0) return;
    TDM_REQUIRE(y != nullptr && (x != nullptr || K == 0) && (!W.empty() || K == 0),
                TDM_ERR_INVALID_ARGUMENT, "matmul: null x, W or y");
    TDM_REQUIRE(ldx >= K && ldy >= N, TDM_ERR_INVALID_ARGUMENT,
                "matmul: row stride shorter than the row (ldx=" + std::to_string(ldx) +
                    " < K=" + std::to_string(K) + " or ldy=" + std::to_string(ldy) +
                    " < N=" + std::to_string(N) + ")");
    TDM_REQUIRE(bias.empty() || bias.size == N, TDM_ERR_INVALID_ARGUMENT,
                "matmul: bias has " + std::to_string(bias.size) + " entries, W has " +
                    std::to_string(N) + " rows");

    const float* b = bias_as_f32(bias, N);
    if (K == 0) {  // an empty sum
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) y[m * ldy + n] = b ? b[n] : 0.0f;
        return;
    }

    const KernelTable& kt = active_kernels();
    const MatmulProblem p{x, M, ldx, K, W.data, W.dtype, N, b, y, ldy};
    const int dt = static_cast<int>(W.dtype);
    const int64_t weight_bytes = N * K * int64_t(dtype_size(W.dtype));
    const int64_t gemv_passes = weight_bytes <= kCachedWeightBytes ? kMaxGemvPasses : 1;
    const bool few_rows = M <= kt.gemv[dt].m_step * gemv_passes;
    const MatmulKernel& kernel = few_rows ? kt.gemv[dt] : kt.gemm[dt];

    // Split N when it has enough register tiles for every thread (each thread then streams its
    // own part of W once); otherwise split M.
    const int64_t work = M * N * K;
    const int64_t threads =
        std::max<int64_t>(1, std::min<int64_t>(pool.size(), work / kMinWorkPerThread));
    const int64_t n_tiles = (N + kernel.n_step - 1) / kernel.n_step;
    const bool split_n = few_rows || n_tiles >= threads;

    auto run_part = [&](int64_t t) {
        int64_t m0 = 0, m1 = M, n0 = 0, n1 = N;
        if (split_n)
            std::tie(n0, n1) = part(N, kernel.n_step, t, threads);
        else
            std::tie(m0, m1) = part(M, kernel.m_step, t, threads);
        if (m0 >= m1 || n0 >= n1) return;
        // The GEMV kernel takes at most m_step rows a pass; the GEMM any number.
        const int64_t pass_rows = few_rows ? kernel.m_step : m1 - m0;
        void* scratch =
            thread_scratch(ScratchSlot::Kernel, kernel.scratch_bytes(std::min(pass_rows, m1 - m0), K));
        for (int64_t m = m0; m < m1; m += pass_rows)
            kernel.run(p, m, std::min(m + pass_rows, m1), n0, n1, scratch);
    };
    if (threads == 1) {
        run_part(0);
        return;
    }
    pool.run_on_all([&](int t) {
        if (t < threads) run_part(t);
    });
}

}  // namespace tdm::cpu
