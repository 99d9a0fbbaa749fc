#include "attention/cuda_sparse_prefill.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "tandem.h"

namespace tdm::cuda {
namespace {

struct Delivery {
    const float* src;  // pinned
    float* dst;        // the caller's host array
    int32_t n;
};

void CUDART_CB deliver(void* p) {
    const Delivery* d = static_cast<const Delivery*>(p);
    std::memcpy(d->dst, d->src, size_t(d->n) * sizeof(float));
    delete d;
}

}  // namespace

SparsePrefill::~SparsePrefill() {
    if (pinned_ != nullptr) (void)cudaFreeHost(pinned_);
}

void SparsePrefill::run(const AttentionArgs& args, const SparseAttention& sparse,
                        float* density_host, cudaStream_t stream) {
    last_sparse_ = false;
    const bool shape_ok = args.window == 0 && args.n_new > 1 && flash_prefill_supports(args) &&
                          (sparse.block_size == 64 || sparse.block_size == 128);
    const EstimateInputs in{.q = args.q,
                            .k_cache = args.k_cache,
                            .k_bf16 = true,
                            .n_new = args.n_new,
                            .pos0 = args.pos0,
                            .capacity = args.capacity,
                            .heads = args.heads,
                            .kv_heads = args.kv_heads,
                            .head_dim = args.head_dim,
                            .scale = args.scale};
    BlockPlanView plan;
    switch (sparse.method) {
        case TDM_ATTENTION_DENSE:
            break;
        case TDM_ATTENTION_XATTENTION:
            // With at most two key blocks every causal block is mandatory: dense anyway.
            if (shape_ok && BlockGrid::of(args.pos0, args.n_new, sparse.block_size).k_blocks > 2) {
                const XAttentionParams p{.block_size = sparse.block_size,
                                         .stride = sparse.xattn_stride,
                                         .thresholds = sparse.xattn_threshold,
                                         .threshold = 0.9f,
                                         .fp8 = sparse.xattn_fp8};
                plan = planner_.xattention(in, p, stream);
                last_sparse_ = true;
            }
            break;
        case TDM_ATTENTION_FLEXPREFILL: {
            const FlexPrefillParams p{.block_size = sparse.block_size,
                                      .gamma = sparse.flex_gamma,
                                      .tau = sparse.flex_tau,
                                      .min_budget = sparse.flex_min_budget,
                                      .max_budget = sparse.flex_max_budget,
                                      .compat = sparse.compat};
            if (shape_ok && !flexprefill_runs_dense(args.n_new, args.pos0, p)) {
                plan = planner_.flexprefill(in, p, stream);
                last_sparse_ = true;
            }
            break;
        }
        default:
            fail(TDM_ERR_INVALID_ARGUMENT,
                 "unknown attention method " + std::to_string(int(sparse.method)));
    }
    if (!last_sparse_) {
        attention_prefill(args, stream);
        if (density_host != nullptr) std::fill(density_host, density_host + args.heads, 1.0f);
        return;
    }
    attention_prefill_block_sparse(args, plan, stream);
    if (density_host != nullptr) deliver_density(args.heads, density_host, stream);
}

void SparsePrefill::deliver_density(int32_t heads, float* density_host, cudaStream_t stream) {
    if (pinned_floats_ < heads) {
        // Only on the first call (or more heads): the free waits for the device once.
        if (pinned_ != nullptr) TDM_CUDA_CHECK(cudaFreeHost(pinned_));
        pinned_ = nullptr;
        pinned_floats_ = 0;
        const int32_t n = std::max(heads, 256);
        TDM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned_), size_t(n) * sizeof(float)));
        pinned_floats_ = n;
    }
    // One slot suffices: the next call's copy into it is ordered after this host function.
    TDM_CUDA_CHECK(cudaMemcpyAsync(pinned_, planner_.density(), size_t(heads) * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream));
    Delivery* d = new Delivery{pinned_, density_host, heads};
    const cudaError_t e = cudaLaunchHostFunc(stream, deliver, d);
    if (e != cudaSuccess) {
        delete d;
        fail_cuda("cudaLaunchHostFunc(stream, deliver, d)", e);
    }
}

}  // namespace tdm::cuda
