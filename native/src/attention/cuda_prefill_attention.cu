// Causal flash-attention prefill: a block per (tile of kBlockM query rows, KV head). The rows of
// a block are the GQA group of one KV head, flattened (row r = query r / group, head
// kv_head * group + r % group), so every K/V tile loaded into shared memory serves the whole
// group: K and V are never repeated per query head.
#include "attention/cuda_attention.h"
#include "attention/cuda_attention_tile.cuh"

namespace tdm::cuda {
namespace {

using namespace attn;

template <int kChunks>
__global__ void __launch_bounds__(kThreads) prefill_kernel(KernelArgs a) {
    extern __shared__ float smem[];
    const int D = a.head_dim;
    const SmemLayout layout{D};
    float* q_s = smem;
    float* k_s = q_s + layout.q_floats();
    float* v_s = k_s + layout.k_floats();
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;

    const int kv_head = blockIdx.y;
    // The last row tiles see the most keys: hand them out first so they do not finish last.
    const int tile = gridDim.x - 1 - blockIdx.x;
    const int rows = a.n_new * a.group;
    const int r0 = tile * kBlockM;
    const int r_end = min(rows, r0 + kBlockM);
    auto query_index = [&](int row) { return row / a.group; };
    auto head_of = [&](int row) { return kv_head * a.group + row % a.group; };

    load_q_tile(q_s, D, a.scale_log2, r_end - r0, [&](int r) {
        return a.q + (int64_t(query_index(r0 + r)) * a.heads + head_of(r0 + r)) * D;
    });

    // Query positions of this warp's rows; rows past the end borrow the last row's position
    // (their zero queries are computed but never written).
    int pos[kRowsPerWarp];
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i)
        pos[i] = a.pos0 + query_index(min(r0 + row_of(warp, i), r_end - 1));
    const int first_pos = a.pos0 + query_index(r0);
    const int last_pos = a.pos0 + query_index(r_end - 1);
    const int key_begin = a.window > 0 ? max(0, first_pos - a.window + 1) : 0;
    const int key_end = last_pos + 1;

    const uint16_t* k_head = a.k_cache + int64_t(kv_head) * a.capacity * D;
    const uint16_t* v_head = a.v_cache + int64_t(kv_head) * a.capacity * D;
    RowState<kChunks> st;
    st.init();
    for (int key0 = key_begin; key0 < key_end; key0 += kBlockN) {
        __syncthreads();  // the previous tile is consumed (the first time: the Q tile is stored)
        load_kv_tile(k_s, v_s, k_head, v_head, key0, key_end, D);
        __syncthreads();
        if (tile_is_full(key0, key_end, first_pos, last_pos, a.window)) {
            attend_tile<kChunks, false>(st, q_s, k_s, v_s, D, key0, key_end, pos, a.window);
        } else {
            attend_tile<kChunks, true>(st, q_s, k_s, v_s, D, key0, key_end, pos, a.window);
        }
    }

    // Every row saw at least its own key, so l > 0.
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
        const int row = r0 + row_of(warp, i);
        if (row >= r_end) continue;
        const int64_t at = int64_t(query_index(row)) * a.heads + head_of(row);
        const float inv_l = 1.0f / st.l[i];
        float* dst = a.out + at * D;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const int d = lane + c * kWarpSize;
            if (d < D) dst[d] = st.o[i][c] * inv_l;
        }
        if (a.lse != nullptr && lane == 0) a.lse[at] = (st.m[i] + log2f(st.l[i])) * kLn2;
    }
}

}  // namespace

void attention_prefill(const AttentionArgs& args, cudaStream_t stream) {
    const KernelArgs a = checked_kernel_args(args, "attention_prefill");
    if (a.n_new == 0) return;
    if (flash_prefill_supports(args)) {
        attention_prefill_flash(args, stream);
        return;
    }
    const int rows = a.n_new * a.group;
    const dim3 grid(unsigned((rows + kBlockM - 1) / kBlockM), unsigned(a.kv_heads));
    const size_t smem = SmemLayout{a.head_dim}.bytes();
    dispatch_head_dim(a.head_dim, [&](auto chunks) {
        constexpr int kChunks = decltype(chunks)::value;
        allow_shared_memory(prefill_kernel<kChunks>, smem);
        prefill_kernel<kChunks><<<grid, kThreads, smem, stream>>>(a);
        TDM_CUDA_CHECK_LAUNCH("prefill_kernel");
    });
}

}  // namespace tdm::cuda
