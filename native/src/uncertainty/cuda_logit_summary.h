// One logits row summarised on the GPU, so that a decode step brings back a few hundred bytes
// instead of the vocabulary-sized row: the ranked top candidates, the softmax partial sums the
// token statistics are finished from (uncertainty/token_stats.h) and the tempered mass the
// sampler needs (decode/candidate_sampling.h). Plain C++ on the host side.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/backend.h"
#include "kernels/cuda/device_buffer.h"

namespace tdm::cuda {

// Enqueues the two summary kernels on `stream` for logits[0..vocab) (device memory) and copies
// the result into `out` (host memory), waiting for it. `want` ranked candidates (1..TDM_MAX_TOP_K,
// clamped to vocab) and the tempered sum at `temperature` (> 0; ignored when 0).
// Owns its device scratch and a pinned host staging block; one instance per stream.
class LogitSummarizer {
public:
    LogitSummarizer();
    ~LogitSummarizer();
    LogitSummarizer(const LogitSummarizer&) = delete;
    LogitSummarizer& operator=(const LogitSummarizer&) = delete;

    void run(const float* logits, int64_t vocab, int want, float temperature, cudaStream_t stream,
             LogitSummary* out);

private:
    DeviceBuffer partials_;      // per-block partial sums and candidates
    DeviceBuffer result_;        // the merged LogitSummary on the device
    LogitSummary* staging_ = nullptr;  // pinned host copy of result_
};

}  // namespace tdm::cuda
