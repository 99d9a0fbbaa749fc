// Tensor-core causal flash-attention prefill for head dims 64 and 128 (FlashAttention-2 style):
// one block of 4 warps per (tile of kRows query rows, query head); each warp owns 16 rows and
// keeps its scores, its online-softmax state and its output accumulators in registers. Both
// products run on mma.sync.m16n8k16 with bf16 operands and f32 accumulation:
//   S = Q K^T   A = Q fragments (registers, loaded once), B = K rows from shared memory;
//   O += P V    A = P, converted in registers from the S accumulators (the m16n8 accumulator
//               layout of two adjacent key octets is exactly the m16k16 A layout), B = V read
//               with ldmatrix.trans.
// GQA reads KV head h / group; K and V are never repeated. Causal: the key tiles every row of the
// block fully sees run unmasked; the diagonal (and sliding-window edge) tiles are masked per score.
//
// The engine's q and KV cache are f32 today, so this kernel converts Q and each K/V tile to bf16
// as it stores them into shared memory (through registers, hence no cp.async/TMA). That doubles
// the bytes read from L2/HBM compared with a bf16 cache; a bf16 KV cache (and then TMA + wgmma,
// FlashAttention-3 style) is later work. The f32 SIMT kernel (cuda_prefill_attention.cu) stays
// the path for every other head dim.
#include <cuda_bf16.h>

#include <climits>
#include <cstdint>
#include <string>

#include "attention/cuda_attention_tile.cuh"

namespace tdm::cuda {
namespace {

using attn::KernelArgs;
using attn::kLn2;

constexpr int kFlashWarps = 4;
constexpr int kFlashThreads = kFlashWarps * kWarpSize;
constexpr int kRows = 16 * kFlashWarps;  // query rows of a block: one m16 slab per warp
constexpr int kKeys = 64;                // keys per tile

// Shared-memory rows are padded by 8 bf16 (16 bytes): the 8 rows a warp's quads read at once
// then start 4 banks apart (D = 64: row stride 36 words; D = 128: 68 words), so the 32-bit
// fragment loads and the ldmatrix rows are conflict-free, and every row stays 16-byte aligned
// as ldmatrix needs.
template <int D>
struct FlashSmem {
    static constexpr int kStride = D + 8;  // bf16 elements per row
    static constexpr size_t kTileBytes = size_t(kKeys) * kStride * sizeof(__nv_bfloat16);
    static constexpr size_t kQBytes = size_t(kRows) * kStride * sizeof(__nv_bfloat16);
    static constexpr size_t kBytes = kQBytes + 2 * kTileBytes;
};

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

// d (16x8, f32) += a (16x16, bf16, row-major) * b (16x8, bf16, column-major).
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 bf16 matrices, transposed: lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const __nv_bfloat16* p) {
    const uint32_t addr = uint32_t(__cvta_generic_to_shared(p));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// Stores `rows` f32 rows of length D (row_ptr(r) gives row r in global memory, 16-byte aligned),
// times `mul`, as bf16 rows of the tile; the tile rows from `rows` on are zero, so masked keys
// keep p * v finite and padded query rows stay finite. 16-byte loads, 8-byte stores.
template <int D, class RowPtr>
__device__ __forceinline__ void store_bf16_tile(__nv_bfloat16* tile, int tile_rows, int rows,
                                                float mul, RowPtr row_ptr) {
    constexpr int kVecs = D / 4;
    for (int idx = threadIdx.x; idx < tile_rows * kVecs; idx += kFlashThreads) {
        const int r = idx / kVecs, c = (idx % kVecs) * 4;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < rows) v = *reinterpret_cast<const float4*>(row_ptr(r) + c);
        uint2 packed;
        packed.x = pack_bf16(v.x * mul, v.y * mul);
        packed.y = pack_bf16(v.z * mul, v.w * mul);
        *reinterpret_cast<uint2*>(tile + r * FlashSmem<D>::kStride + c) = packed;
    }
}

template <int D>
__global__ void __launch_bounds__(kFlashThreads) flash_prefill_kernel(KernelArgs a) {
    using Smem = FlashSmem<D>;
    constexpr int kS = Smem::kStride;
    constexpr int kKSteps = D / 16;   // k16 steps of Q K^T
    constexpr int kDTiles = D / 8;    // n8 tiles of the output
    constexpr int kKeyTiles = kKeys / 8;
    extern __shared__ __align__(16) unsigned char flash_smem[];
    auto* q_s = reinterpret_cast<__nv_bfloat16*>(flash_smem);
    auto* k_s = reinterpret_cast<__nv_bfloat16*>(flash_smem + Smem::kQBytes);
    auto* v_s = reinterpret_cast<__nv_bfloat16*>(flash_smem + Smem::kQBytes + Smem::kTileBytes);

    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int g = lane / 4, t = lane % 4;  // the mma fragment's row group and column pair

    // Heads vary fastest so that the blocks of one KV head run together and share its tiles in
    // L2; the last query tiles see the most keys, so they are handed out first.
    const int tiles = (a.n_new + kRows - 1) / kRows;
    const int head = int(blockIdx.x % unsigned(a.heads));
    const int tile = tiles - 1 - int(blockIdx.x / unsigned(a.heads));
    const int kv_head = head / a.group;
    const int q0 = tile * kRows;
    const int q_rows = min(kRows, a.n_new - q0);

    store_bf16_tile<D>(q_s, kRows, q_rows, a.scale_log2, [&](int r) {
        return a.q + (int64_t(q0 + r) * a.heads + head) * D;
    });
    __syncthreads();

    // This warp's Q fragments, held for the whole key loop.
    uint32_t qf[kKSteps][4];
    {
        const __nv_bfloat16* q_w = q_s + (warp * 16 + g) * kS + 2 * t;
#pragma unroll
        for (int k = 0; k < kKSteps; ++k) {
            qf[k][0] = *reinterpret_cast<const uint32_t*>(q_w + k * 16);
            qf[k][1] = *reinterpret_cast<const uint32_t*>(q_w + 8 * kS + k * 16);
            qf[k][2] = *reinterpret_cast<const uint32_t*>(q_w + k * 16 + 8);
            qf[k][3] = *reinterpret_cast<const uint32_t*>(q_w + 8 * kS + k * 16 + 8);
        }
    }

    // The two rows of the block this thread accumulates (g and g + 8 of the warp's slab), and
    // their positions; padded rows past n_new borrow the last row's position (never written).
    int pos[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) pos[h] = a.pos0 + q0 + min(warp * 16 + g + 8 * h, q_rows - 1);
    const int first_pos = a.pos0 + q0;
    const int last_pos = a.pos0 + q0 + q_rows - 1;
    const int key_begin = a.window > 0 ? max(0, first_pos - a.window + 1) : 0;
    const int key_end = last_pos + 1;

    float o[kDTiles][4];
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY};  // running max (log2 units) of rows g, g + 8
    float l[2] = {0.0f, 0.0f};  // this thread's share of the running sum (quad-summed last)

    const float* k_head = a.k_cache + int64_t(kv_head) * a.capacity * D;
    const float* v_head = a.v_cache + int64_t(kv_head) * a.capacity * D;
    for (int key0 = key_begin; key0 < key_end; key0 += kKeys) {
        const int keys = min(kKeys, key_end - key0);
        __syncthreads();  // every warp is done with the previous tile
        store_bf16_tile<D>(k_s, kKeys, keys, 1.0f,
                           [&](int r) { return k_head + int64_t(key0 + r) * D; });
        store_bf16_tile<D>(v_s, kKeys, keys, 1.0f,
                           [&](int r) { return v_head + int64_t(key0 + r) * D; });
        __syncthreads();

        // S = Q K^T for the warp's 16 rows and the tile's 64 keys.
        float s[kKeyTiles][4];
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            const __nv_bfloat16* k_row = k_s + (n * 8 + g) * kS + 2 * t;
#pragma unroll
            for (int k = 0; k < kKSteps; ++k) {
                mma_bf16(s[n], qf[k], *reinterpret_cast<const uint32_t*>(k_row + k * 16),
                         *reinterpret_cast<const uint32_t*>(k_row + k * 16 + 8));
            }
        }

        const bool full = key0 + kKeys <= key_end && key0 + kKeys - 1 <= first_pos &&
                          (a.window == 0 || key0 > last_pos - a.window);
        if (!full) {
#pragma unroll
            for (int n = 0; n < kKeyTiles; ++n) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int key = key0 + n * 8 + 2 * t + (e & 1);
                    const int p = pos[e / 2];
                    const bool visible =
                        key < key_end && key <= p && (a.window == 0 || key > p - a.window);
                    if (!visible) s[n][e] = -INFINITY;
                }
            }
        }

        // Online softmax in exp2 (Q was pre-scaled by scale * log2 e). A row's 64 scores are
        // spread over the 4 lanes of its quad.
        float alpha[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float mx = m[h];
#pragma unroll
            for (int n = 0; n < kKeyTiles; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * h], s[n][2 * h + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
            // A row that has seen no visible key yet keeps m = -inf: subtract 0 then, so that
            // exp2(-inf) gives 0 rather than NaN.
            const float ref = mx == -INFINITY ? 0.0f : mx;
            alpha[h] = exp2f(m[h] - ref);
            m[h] = mx;
            float sum = 0.0f;
#pragma unroll
            for (int n = 0; n < kKeyTiles; ++n) {
                s[n][2 * h] = exp2f(s[n][2 * h] - ref);
                s[n][2 * h + 1] = exp2f(s[n][2 * h + 1] - ref);
                sum += s[n][2 * h] + s[n][2 * h + 1];
            }
            l[h] = l[h] * alpha[h] + sum;
        }
#pragma unroll
        for (int n = 0; n < kDTiles; ++n) {
            o[n][0] *= alpha[0];
            o[n][1] *= alpha[0];
            o[n][2] *= alpha[1];
            o[n][3] *= alpha[1];
        }

        // O += P V, 16 keys at a time: P's A fragment is two adjacent key octets of S.
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk) {
            const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]),
                                    pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                    pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                    pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
            // Matrices of one ldmatrix: keys 0-7 / 8-15 of the step, times columns d0..d0+7 and
            // d0+8..d0+15: registers 0,1 are the B fragment of d tile 2 dd, 2,3 of 2 dd + 1.
            const __nv_bfloat16* v_base =
                v_s + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * kS + (lane / 16) * 8;
#pragma unroll
            for (int dd = 0; dd < kDTiles / 2; ++dd) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, v_base + dd * 16);
                mma_bf16(o[2 * dd], pa, b[0], b[1]);
                mma_bf16(o[2 * dd + 1], pa, b[2], b[3]);
            }
        }
    }

    // Every row saw at least its own key, so l > 0.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l[h] += __shfl_xor_sync(kFullMask, l[h], 1);
        l[h] += __shfl_xor_sync(kFullMask, l[h], 2);
        const int row = warp * 16 + g + 8 * h;
        if (row >= q_rows) continue;
        const int64_t at = int64_t(q0 + row) * a.heads + head;
        const float inv_l = 1.0f / l[h];
        float* dst = a.out + at * D + 2 * t;
#pragma unroll
        for (int n = 0; n < kDTiles; ++n)
            *reinterpret_cast<float2*>(dst + n * 8) =
                make_float2(o[n][2 * h] * inv_l, o[n][2 * h + 1] * inv_l);
        if (a.lse != nullptr && t == 0) a.lse[at] = (m[h] + log2f(l[h])) * kLn2;
    }
}

template <int D>
void launch(const KernelArgs& a, cudaStream_t stream) {
    const int64_t tiles = (a.n_new + kRows - 1) / kRows;
    const size_t smem = FlashSmem<D>::kBytes;
    attn::allow_shared_memory(flash_prefill_kernel<D>, smem);
    flash_prefill_kernel<D><<<unsigned(tiles * a.heads), kFlashThreads, smem, stream>>>(a);
    TDM_CUDA_CHECK_LAUNCH("flash_prefill_kernel");
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool flash_prefill_supports(const AttentionArgs& a) {
    const int64_t blocks = (a.n_new + kRows - 1) / kRows * int64_t(a.heads);
    return (a.head_dim == 64 || a.head_dim == 128) && blocks <= INT_MAX && aligned16(a.q) &&
           aligned16(a.k_cache) && aligned16(a.v_cache) && aligned16(a.out);
}

void attention_prefill_flash(const AttentionArgs& args, cudaStream_t stream) {
    const KernelArgs a = attn::checked_kernel_args(args, "attention_prefill_flash");
    if (a.n_new == 0) return;
    TDM_REQUIRE(flash_prefill_supports(args), TDM_ERR_UNSUPPORTED,
                "attention_prefill_flash: head_dim " + std::to_string(a.head_dim) +
                    " (64 or 128 needed) or q/k_cache/v_cache/out not 16-byte aligned");
    if (a.head_dim == 64) launch<64>(a, stream);
    else launch<128>(a, stream);
}

}  // namespace tdm::cuda
