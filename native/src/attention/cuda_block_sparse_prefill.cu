// Block-sparse causal flash-attention prefill (ALGORITHMS.md 3 and 4 share it): a block per
// (query block, query head) runs one of the dense kernel's tensor-core loops over the key blocks
// its CSR plan row lists instead of a range of keys. Query block r holds the call's queries at
// positions [r B, (r + 1) B), so the kernel's row tile is exactly one query block: B = 128 runs the
// Hopper wgmma loop (cuda_flash_wgmma.cuh, one 128-key tile per block) or the mma.sync loop with
// two 16-row slabs per warp; B = 64 the mma.sync loop with one slab. Only tiles that
// some row of a warp cannot fully see are masked (the diagonal block, and a partial last query
// block); a plan column outside 0..r is never read (it is treated as a block past the diagonal,
// which no row sees). Heads vary fastest over the grid, so the query heads of one KV head (GQA)
// run side by side and share the K/V tiles they both list in L2.
#include <climits>
#include <cstdint>
#include <string>

#include "attention/cuda_flash_loop.h"
#include "attention/cuda_flash_tile.cuh"
#include "attention/cuda_flash_wgmma.cuh"

namespace tdm::cuda {
namespace {

using attn::KernelArgs;
// Four K/V stages: the active blocks are scattered over the cache, so their tiles come from
// DRAM more often than the dense kernel's and want more copies in flight.
constexpr int kStages = 4;

// The query block's first position and row count (a partial first or last block of the call).
struct QueryBlock {
    int r, q_first, rows;
};
template <int kBlock>
__device__ __forceinline__ QueryBlock query_block(const KernelArgs& a, const BlockPlanView& plan,
                                                  int rb) {
    const int r = plan.first_q_block + rb;
    const int first_pos = max(r * kBlock, a.pos0);
    const int end_pos = min((r + 1) * kBlock, a.pos0 + a.n_new);
    return {r, first_pos - a.pos0, end_pos - first_pos};
}

template <int D, int kSlabs>
__global__ void __launch_bounds__(flash::kThreads, 2)
block_sparse_kernel(KernelArgs a, BlockPlanView plan) {
    using Rows = flash::FlashRows<D, kSlabs, kStages>;
    constexpr int kBlock = flash::Config<D, kSlabs, kStages>::kRows;  // B: 64 or 128
    constexpr int kTilesPerBlock = kBlock / Rows::kKeys;
    extern __shared__ __align__(16) unsigned char flash_smem[];

    // The last query blocks list the most key blocks: hand them out first.
    const int head = int(blockIdx.x % unsigned(a.heads));
    const int rb = plan.q_blocks - 1 - int(blockIdx.x / unsigned(a.heads));
    const QueryBlock qb = query_block<kBlock>(a, plan, rb);
    const int r = qb.r, q_first = qb.q_first, rows = qb.rows;

    const int64_t row = int64_t(head) * plan.q_blocks + rb;
    const int begin = plan.row_ptr[row];
    const int count = plan.row_ptr[row + 1] - begin;
    const int32_t* cols = plan.cols + begin;

    Rows st(flash_smem, a, head, q_first, rows);
    const auto key0_of = [&](int i) {
        // A column outside 0..r (an invalid plan) becomes block r + 1, whose keys lie past
        // key_end: never read, fully masked, and no overflow of c * B.
        int c = cols[i / kTilesPerBlock];
        c = c < 0 || c > r ? r + 1 : c;
        return c * kBlock + (i % kTilesPerBlock) * Rows::kKeys;
    };
    const int tiles = count * kTilesPerBlock;
    st.prefetch(tiles, key0_of);
    st.load_q(flash_smem, a, head, q_first, rows);
    st.run_tiles(tiles, key0_of);
    st.store(a, head, q_first, rows);
}

template <int D>
__global__ void __launch_bounds__(flash_wg::kThreads, 1)
block_sparse_wgmma_kernel(KernelArgs a, BlockPlanView plan,
                          const __grid_constant__ CUtensorMap k_map,
                          const __grid_constant__ CUtensorMap v_map) {
    extern __shared__ __align__(1024) unsigned char wg_smem[];
    constexpr int kBlock = flash_wg::kKeys;  // 128: one tile per key block
    const flash_wg::WorkItem w = flash_wg::work_item(int(blockIdx.x), a.group, plan.q_blocks);
    const int head = w.head, rb = w.tile;
    const QueryBlock qb = query_block<kBlock>(a, plan, rb);
    const int64_t row = int64_t(head) * plan.q_blocks + rb;
    const int begin = plan.row_ptr[row];
    const int count = plan.row_ptr[row + 1] - begin;
    const int32_t* cols = plan.cols + begin;
    flash_wg::attend_rows<D>(wg_smem, a, &k_map, &v_map, head, qb.q_first, qb.rows, count,
                             [&](int i) {
                                 // A column outside 0..r (an invalid plan) becomes block r + 1:
                                 // past every row, skipped by both consumers.
                                 const int c = cols[i];
                                 return (c < 0 || c > qb.r ? qb.r + 1 : c) * kBlock;
                             });
}

template <int D>
void launch_wgmma(const KernelArgs& a, const BlockPlanView& plan, const KvTensorMaps& maps,
                  cudaStream_t stream) {
    const size_t smem = flash_wg::Config<D>::kSmemBytes;
    attn::allow_shared_memory(block_sparse_wgmma_kernel<D>, smem);
    block_sparse_wgmma_kernel<D><<<unsigned(int64_t(plan.q_blocks) * a.heads), flash_wg::kThreads,
                                   smem, stream>>>(a, plan, maps.k, maps.v);
    TDM_CUDA_CHECK_LAUNCH("block_sparse_wgmma_kernel");
}

template <int D, int kSlabs>
void launch(const KernelArgs& a, const BlockPlanView& plan, cudaStream_t stream) {
    const size_t smem = flash::Config<D, kSlabs, kStages>::kBytes;
    attn::allow_shared_memory(block_sparse_kernel<D, kSlabs>, smem);
    block_sparse_kernel<D, kSlabs>
        <<<unsigned(int64_t(plan.q_blocks) * a.heads), flash::kThreads, smem, stream>>>(a, plan);
    TDM_CUDA_CHECK_LAUNCH("block_sparse_kernel");
}

}  // namespace

void attention_prefill_block_sparse(const AttentionArgs& args, const BlockPlanView& plan,
                                    cudaStream_t stream, FlashLoop loop) {
    const KernelArgs a = attn::checked_kernel_args(args, "attention_prefill_block_sparse");
    if (a.n_new == 0) return;
    const std::string k = "attention_prefill_block_sparse: ";
    TDM_REQUIRE(flash_prefill_supports(args), TDM_ERR_UNSUPPORTED,
                k + "head_dim " + std::to_string(a.head_dim) +
                    " (64 or 128 needed) or q/k_cache/v_cache/out not 16-byte aligned");
    TDM_REQUIRE(a.window == 0, TDM_ERR_UNSUPPORTED,
                k + "sliding-window layers run dense attention");
    const int B = plan.block_size;
    TDM_REQUIRE(B == 64 || B == 128, TDM_ERR_UNSUPPORTED,
                k + "block size " + std::to_string(B) + " (64 or 128 needed)");
    const int64_t first = a.pos0 / B, last = (a.pos0 + a.n_new - 1) / B;
    TDM_REQUIRE(plan.heads == a.heads && plan.first_q_block == first &&
                    plan.q_blocks == last - first + 1 && plan.k_blocks == last + 1,
                TDM_ERR_INVALID_ARGUMENT,
                k + "the plan (" + std::to_string(plan.heads) + " heads, query blocks " +
                    std::to_string(plan.first_q_block) + " + " + std::to_string(plan.q_blocks) +
                    ", " + std::to_string(plan.k_blocks) +
                    " key blocks) does not match the call (" +
                    std::to_string(a.heads) + " heads, query blocks " + std::to_string(first) +
                    ".." + std::to_string(last) + ")");
    TDM_REQUIRE(plan.row_ptr != nullptr && plan.cols != nullptr, TDM_ERR_INVALID_ARGUMENT,
                k + "null plan row_ptr or cols");
    TDM_REQUIRE(int64_t(plan.q_blocks) * a.heads <= INT_MAX, TDM_ERR_INVALID_ARGUMENT,
                k + "too many (query block, head) rows for one launch");
    if (B == 128 && runs_wgmma(args, loop, "attention_prefill_block_sparse")) {
        const KvTensorMaps maps = kv_tensor_maps(args);
        if (a.head_dim == 64) launch_wgmma<64>(a, plan, maps, stream);
        else launch_wgmma<128>(a, plan, maps, stream);
        return;
    }
    if (a.head_dim == 64) {
        if (B == 128) launch<64, 2>(a, plan, stream);
        else launch<64, 1>(a, plan, stream);
    } else {
        if (B == 128) launch<128, 2>(a, plan, stream);
        else launch<128, 1>(a, plan, stream);
    }
}

}  // namespace tdm::cuda
