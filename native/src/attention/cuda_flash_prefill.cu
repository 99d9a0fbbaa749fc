// Dense causal flash-attention prefill for head dims 64 and 128 on the bf16 KV cache: a block per
// (tile of 128 query rows, query head) runs one of the two tensor-core loops over the keys its
// rows may see, [key_begin, last row's position], a tile at a time:
//   - the Hopper warp-specialised loop (cuda_flash_wgmma.cuh: TMA, wgmma), no sliding window;
//   - the mma.sync loop (cuda_flash_tile.cuh, 4 warps), any layer; measured on an H100 SXM
//     (Hq=32, Hkv=8, D=128, causal) at ~300 TFLOP/s at 4K and 340-350 at 16K to 64K, level with
//     PyTorch SDPA's flash backend (FlashAttention-2).
// GQA reads KV head h / group; K and V are never repeated: the blocks of one KV head's query
// heads run next to each other and share its tiles in L2.
#include <climits>
#include <cstdint>
#include <string>

#include "attention/cuda_flash_loop.h"
#include "attention/cuda_flash_tile.cuh"
#include "attention/cuda_flash_wgmma.cuh"

namespace tdm::cuda {
namespace {

using attn::KernelArgs;
constexpr int kSlabs = 2;  // 128 query rows per block
constexpr int kStages = 3;

template <int D>
__global__ void __launch_bounds__(flash::kThreads, 2) flash_prefill_kernel(KernelArgs a) {
    using Rows = flash::FlashRows<D, kSlabs, kStages>;
    constexpr int kRows = flash::Config<D, kSlabs, kStages>::kRows;
    extern __shared__ __align__(16) unsigned char flash_smem[];

    // Heads vary fastest so that the blocks of one KV head run together; the last query tiles
    // see the most keys, so they are handed out first.
    const int tiles_q = (a.n_new + kRows - 1) / kRows;
    const int head = int(blockIdx.x % unsigned(a.heads));
    const int tile = tiles_q - 1 - int(blockIdx.x / unsigned(a.heads));
    const int q_first = tile * kRows;
    const int rows = min(kRows, a.n_new - q_first);

    Rows r(flash_smem, a, head, q_first, rows);
    const int key_begin = a.window > 0 ? max(0, r.first_pos - a.window + 1) : 0;
    constexpr int kKeys = Rows::kKeys;
    const int tiles = (r.key_end - key_begin + kKeys - 1) / kKeys;
    const auto key0_of = [&](int i) { return key_begin + i * kKeys; };
    r.prefetch(tiles, key0_of);
    r.load_q(flash_smem, a, head, q_first, rows);
    r.run_tiles(tiles, key0_of);
    r.store(a, head, q_first, rows);
}

template <int D>
__global__ void __launch_bounds__(flash_wg::kThreads, 1)
flash_prefill_wgmma_kernel(KernelArgs a, const __grid_constant__ CUtensorMap k_map,
                           const __grid_constant__ CUtensorMap v_map) {
    extern __shared__ __align__(1024) unsigned char wg_smem[];
    constexpr int kRows = flash_wg::kRows;
    const int tiles_q = (a.n_new + kRows - 1) / kRows;
    const flash_wg::WorkItem w = flash_wg::work_item(int(blockIdx.x), a.group, tiles_q);
    const int q_first = w.tile * kRows;
    const int rows = min(kRows, a.n_new - q_first);
    const int key_end = a.pos0 + q_first + rows;
    const int tiles = (key_end + flash_wg::kKeys - 1) / flash_wg::kKeys;
    flash_wg::attend_rows<D>(wg_smem, a, &k_map, &v_map, w.head, q_first, rows, tiles,
                             [](int i) { return i * flash_wg::kKeys; });
}

template <int D>
void launch_wgmma(const KernelArgs& a, const KvTensorMaps& maps, cudaStream_t stream) {
    const int64_t tiles = (a.n_new + flash_wg::kRows - 1) / flash_wg::kRows;
    const size_t smem = flash_wg::Config<D>::kSmemBytes;
    attn::allow_shared_memory(flash_prefill_wgmma_kernel<D>, smem);
    flash_prefill_wgmma_kernel<D><<<unsigned(tiles * a.heads), flash_wg::kThreads, smem, stream>>>(
        a, maps.k, maps.v);
    TDM_CUDA_CHECK_LAUNCH("flash_prefill_wgmma_kernel");
}

template <int D>
void launch(const KernelArgs& a, cudaStream_t stream) {
    constexpr int kRows = flash::Config<D, kSlabs, kStages>::kRows;
    const int64_t tiles = (a.n_new + kRows - 1) / kRows;
    const size_t smem = flash::Config<D, kSlabs, kStages>::kBytes;
    attn::allow_shared_memory(flash_prefill_kernel<D>, smem);
    flash_prefill_kernel<D><<<unsigned(tiles * a.heads), flash::kThreads, smem, stream>>>(a);
    TDM_CUDA_CHECK_LAUNCH("flash_prefill_kernel");
}

}  // namespace

bool flash_prefill_supports(const AttentionArgs& a) {
    const int64_t blocks = (a.n_new + 127) / 128 * int64_t(a.heads);
    return (a.head_dim == 64 || a.head_dim == 128) && blocks <= INT_MAX &&
           flash::aligned16(a.q) && flash::aligned16(a.k_cache) && flash::aligned16(a.v_cache) &&
           flash::aligned16(a.out);
}

void attention_prefill_flash(const AttentionArgs& args, cudaStream_t stream, FlashLoop loop) {
    const KernelArgs a = attn::checked_kernel_args(args, "attention_prefill_flash");
    if (a.n_new == 0) return;
    TDM_REQUIRE(flash_prefill_supports(args), TDM_ERR_UNSUPPORTED,
                "attention_prefill_flash: head_dim " + std::to_string(a.head_dim) +
                    " (64 or 128 needed) or q/k_cache/v_cache/out not 16-byte aligned");
    if (runs_wgmma(args, loop, "attention_prefill_flash")) {
        const KvTensorMaps maps = kv_tensor_maps(args);
        if (a.head_dim == 64) launch_wgmma<64>(a, maps, stream);
        else launch_wgmma<128>(a, maps, stream);
        return;
    }
    if (a.head_dim == 64) launch<64>(a, stream);
    else launch<128>(a, stream);
}

}  // namespace tdm::cuda
