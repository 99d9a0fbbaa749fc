// RowDraw (backend/backend.h) on the GPU: one inverse-CDF draw over a whole logits row without
// copying it to the host, for the sampled draws a logits summary cannot decide (flat
// distributions, where the drawn token lies past the summary's top 64). Plain C++ on the host side.
//
// One cooperative launch, the grid a single wave with a contiguous slice of the row per block:
//   kRank: four passes of a radix select on the 32-bit rank key (logit descending) find the
//          logit value at which the cumulative weight in rank order crosses u * Z: each pass adds
//          the weights of the tokens under the current prefix into 256 digit bins, the grid
//          syncs, and every block picks the same bin. Equal logits then share that key and weight,
//          so the last step is the id-order walk below over the tokens holding it;
//   kId:   an id-order walk: per-block sums, a grid sync, the block whose slice holds the
//          crossing scans it in id order.
// Weights are added as 64-bit fixed-point integers (w / Z * 2^60 for rank order, probabilities
// * 2^62 for id order), so every sum is exact and independent of the order the threads add it
// in: the draw is deterministic, and it differs from the host's double-precision walk (which
// rounds at every addition) only where u falls within about 1e-13 (relative) of a bucket edge.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/backend.h"
#include "kernels/cuda/device_buffer.h"

namespace tdm::cuda {

// One instance per stream: owns the device scratch and a pinned host word for the result.
class RowDrawer {
public:
    RowDrawer();
    ~RowDrawer();
    RowDrawer(const RowDrawer&) = delete;
    RowDrawer& operator=(const RowDrawer&) = delete;

    // Enqueues the draw on `stream` and waits for the token. Throws TDM_ERR_INVALID_ARGUMENT on
    // bad arguments and TDM_ERR_INTERNAL when the rows carry no mass.
    int32_t run(const RowDraw& draw, cudaStream_t stream);

private:
    int max_blocks_ = 0;          // blocks of the kernel that are resident at once
    DeviceBuffer state_;          // digit histograms, per-block sums, the token
    int32_t* staging_ = nullptr;  // pinned host copy of the token
};

}  // namespace tdm::cuda
