// What one sampled token costs a GPU session at a 128K vocabulary, per call as the decoding loop
// pays it (wall time, the result back on the host):
//
//   tandem_cuda_sampling_bench [--vocab 128256] [--reps 200]
//
//   summary want=K  - LogitSummarizer::run with K ranked candidates at T = 1 (greedy decoding
//                     asks for 1, the statistics for 2, sampling for 64);
//   row draw rank   - RowDrawer::run, Sampler step 8 over the whole row (a pure-temperature draw
//                     past the summary's list);
//   row draw id     - RowDrawer::run, the residual max(0, p - q) of speculative verification;
//   host fallback   - what those draws did before: the row copied to (pageable) host memory and
//                     Sampler::sample on it - the baseline of the two draws, same run.
// Rows: flat (Gaussian logits, std 1: the drawn token almost never lies in the top 64, as on
// random weights) and peaked (std 6).
#if defined(TANDEM_HAVE_CUDA)

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cuda_bench_support.h"
#include "decode/candidate_sampling.h"
#include "decode/cuda_row_draw.h"
#include "decode/sampler.h"
#include "kernels/cuda/device_buffer.h"
#include "uncertainty/cuda_logit_summary.h"

namespace {

using namespace tdm::bench;

// Median wall time of `reps` calls of f (after 5 untimed), in microseconds.
template <class F>
double median_us(int reps, F&& f) {
    for (int i = 0; i < 5; ++i) f();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const auto start = Clock::now();
        f();
        t.push_back(seconds_since(start) * 1e6);
    }
    return median(t);
}

int run(int64_t V, int reps) {
    tdm::cuda::Stream stream;
    tdm::cuda::LogitSummarizer summarizer;
    tdm::cuda::RowDrawer drawer;
    std::mt19937 rng(11);
    std::printf("vocab %lld, median of %d calls, microseconds (wall, result on the host)\n\n",
                (long long)V, reps);
    std::printf("| row | summary want=1 | want=2 | want=4 | want=64 | row draw rank | row draw id "
                "| host fallback | host / rank draw |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (float spread : {1.0f, 6.0f}) {
        std::normal_distribution<float> d(0.0f, spread);
        std::vector<float> zp(static_cast<size_t>(V)), zq(static_cast<size_t>(V));
        for (auto& x : zp) x = d(rng);
        for (auto& x : zq) x = d(rng);
        DeviceBuffer p, q;
        p.reserve(zp.size() * sizeof(float));
        q.reserve(zq.size() * sizeof(float));
        TDM_CUDA_CHECK(cudaMemcpy(p.data(), zp.data(), zp.size() * 4, cudaMemcpyHostToDevice));
        TDM_CUDA_CHECK(cudaMemcpy(q.data(), zq.data(), zq.size() * 4, cudaMemcpyHostToDevice));
        tdm::LogitSummary sp, sq;
        double summary_us[4];
        const int wants[4] = {1, 2, 4, TDM_MAX_TOP_K};
        for (int i = 0; i < 4; ++i)
            summary_us[i] = median_us(reps, [&] {
                summarizer.run(p.as<float>(), V, wants[i], 1.0f, stream.get(), &sp);
            });
        summarizer.run(p.as<float>(), V, TDM_MAX_TOP_K, 1.0f, stream.get(), &sp);
        summarizer.run(q.as<float>(), V, TDM_MAX_TOP_K, 1.0f, stream.get(), &sq);
        const auto wp = tdm::warp_summary(tdm::sampler_options(1.0f), sp);
        const auto wq = tdm::warp_summary(tdm::sampler_options(1.0f), sq);
        if (!wp || !wq) throw std::runtime_error("no warp for the rows");

        tdm::RowDraw rank;
        rank.vocab = V;
        rank.p = {p.as<float>(), wp->max_logit, wp->z_total};
        std::mt19937_64 us(3);
        const double rank_us = median_us(reps, [&] {
            rank.u = double(us() >> 11) * 0x1.0p-53;
            (void)drawer.run(rank, stream.get());
        });
        tdm::RowDraw id = rank;
        id.order = tdm::RowDraw::Order::kId;
        id.q = {q.as<float>(), wq->max_logit, wq->z_total};
        const double id_us = median_us(reps, [&] {
            id.u = double(us() >> 11) * 0x1.0p-53;
            (void)drawer.run(id, stream.get());
        });

        tdm::Sampler sampler(tdm::sampler_options(1.0f, 0, 1.0f, 7));
        std::vector<float> host(static_cast<size_t>(V));
        const double host_us = median_us(reps, [&] {
            TDM_CUDA_CHECK(cudaMemcpyAsync(host.data(), p.data(), host.size() * 4,
                                           cudaMemcpyDeviceToHost, stream.get()));
            stream.synchronize();
            (void)sampler.sample(host.data(), V);
        });
        std::printf("| %s (std %g) | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1fx |\n",
                    spread < 2.0f ? "flat" : "peaked", spread, summary_us[0], summary_us[1],
                    summary_us[2], summary_us[3], rank_us, id_us, host_us, host_us / rank_us);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int64_t vocab = 128256;
    int reps = 200;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--vocab" && i + 1 < argc) vocab = std::atoll(argv[++i]);
        else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
        else {
            std::fprintf(stderr, "usage: %s [--vocab N] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    try {
        return run(vocab, reps);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tandem_cuda_sampling_bench: %s\n", e.what());
        return 1;
    }
}

#endif  // TANDEM_HAVE_CUDA
