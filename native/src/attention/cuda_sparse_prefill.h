// Block-sparse prefill on the GPU, end to end: estimate (XAttention or FlexPrefill,
// cuda_sparse_estimation.h) -> plan in device memory -> the block-sparse flash kernel
// (cuda_attention.h), all on one stream with no host synchronisation. The per-head density is
// computed on the GPU and delivered to host memory asynchronously: copied into a pinned slot, then
// moved to the caller's array by a host function that the stream runs in order, so it is complete
// once the stream has reached that point (the backend's to_host synchronises).
// Calls that the method runs dense (sliding window, too short, head dims other than 64/128) run
// the dense prefill and report density 1.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "attention/cuda_attention.h"
#include "attention/cuda_sparse_estimation.h"
#include "backend/backend.h"

namespace tdm::cuda {

class SparsePrefill {
public:
    SparsePrefill() = default;
    ~SparsePrefill();
    SparsePrefill(const SparsePrefill&) = delete;
    SparsePrefill& operator=(const SparsePrefill&) = delete;

    // out = attention of args.q over the blocks the method selects; density_host [heads] (host
    // memory, may be null) is written asynchronously (see above).
    void run(const AttentionArgs& args, const SparseAttention& sparse, float* density_host,
             cudaStream_t stream);

    // The planner of the last call (its plan and intermediates; tests and benchmarks).
    SparsePlanner& planner() { return planner_; }
    // Whether the last call ran sparse (false: dense fallback).
    bool last_was_sparse() const { return last_sparse_; }

private:
    void deliver_density(int32_t heads, float* density_host, cudaStream_t stream);

    SparsePlanner planner_;
    float* pinned_ = nullptr;  // staging slot for the densities
    int32_t pinned_floats_ = 0;
    bool last_sparse_ = false;
};

}  // namespace tdm::cuda
