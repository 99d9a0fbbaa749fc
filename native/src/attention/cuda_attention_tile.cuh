// The inner loop of the CUDA attention kernels: one tile of keys against the query rows of a
// block, with an online softmax (flash attention) whose state stays in registers. Shared by the
// prefill and decode kernels, and meant for the block-sparse prefill too (it visits a list of
// key tiles instead of all of them).
//
// This is the straightforward f32 SIMT version: each lane scores one key of the tile against the
// warp's rows, then owns head-dimension columns lane + 32 c of the output. It is correct at any
// head dimension up to 256 (the bf16 cache is widened to f32 as a tile is loaded); head dims 64
// and 128 take the tensor-core loop of cuda_flash_tile.cuh instead.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "attention/cuda_attention.h"
#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"

namespace tdm::cuda::attn {

// Tile shapes: a block of kWarps warps owns kBlockM query rows and walks the keys kBlockN at a
// time; each warp owns kRowsPerWarp of the rows.
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kBlockM = 32;
constexpr int kBlockN = kWarpSize;  // scoring gives each lane one key of the tile
constexpr int kRowsPerWarp = kBlockM / kWarps;

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2 = 0.693147180559945309f;

// Block row owned by slot `slot` of warp `warp`. Interleaved, so that a block with few rows (the
// GQA heads of one decode step) still spreads them over all warps.
__device__ __forceinline__ int row_of(int warp, int slot) { return warp + kWarps * slot; }

// Shared memory of one block for head dimension D: the Q tile [kBlockM][D] (pre-scaled), the K
// tile [kBlockN][D + 1] and the V tile [kBlockN][D]. The K rows are padded by one float so that
// lane j reading element d of key j hits bank (j + d) % 32: no conflicts while scoring.
struct SmemLayout {
    int D;
    __host__ __device__ int q_floats() const { return kBlockM * D; }
    __host__ __device__ int k_stride() const { return D + 1; }
    __host__ __device__ int k_floats() const { return kBlockN * (D + 1); }
    __host__ __device__ int v_floats() const { return kBlockN * D; }
    __host__ __device__ size_t bytes() const {
        return sizeof(float) * size_t(q_floats() + k_floats() + v_floats());
    }
};

// What the kernels read, with the host checks done and the scale folded with log2(e) so that
// the softmax runs in exp2.
struct KernelArgs {
    const float* q;
    const uint16_t* k_cache;  // bf16
    const uint16_t* v_cache;  // bf16
    float* out;
    float* lse;
    int n_new, pos0, capacity;
    int heads, kv_heads, group, head_dim, window;
    float scale_log2;
    const int64_t* pos_dev;  // decode: the position in device memory, or null (pos0)
};

// Throws unless the kernels support the shape of `a` (its pointers are not looked at).
inline void check_attention_shape(const AttentionArgs& a, const char* kernel) {
    const std::string k = kernel;
    TDM_REQUIRE(a.n_new >= 0 && a.pos0 >= 0 && a.pos0 + a.n_new <= a.capacity &&
                    a.capacity <= INT_MAX,
                TDM_ERR_INVALID_ARGUMENT,
                k + ": positions " + std::to_string(a.pos0) + ".." +
                    std::to_string(a.pos0 + a.n_new) + " do not fit the cache capacity " +
                    std::to_string(a.capacity));
    TDM_REQUIRE(a.heads > 0 && a.kv_heads > 0 && a.kv_heads <= 65535 &&
                    a.heads % a.kv_heads == 0,
                TDM_ERR_INVALID_ARGUMENT,
                k + ": " + std::to_string(a.heads) + " query heads are not a multiple of " +
                    std::to_string(a.kv_heads) + " KV heads");
    TDM_REQUIRE(a.head_dim >= 1 && a.head_dim <= kMaxHeadDim, TDM_ERR_UNSUPPORTED,
                k + ": head_dim " + std::to_string(a.head_dim) + " is outside 1.." +
                    std::to_string(kMaxHeadDim));
    TDM_REQUIRE(a.window >= 0 && std::isfinite(a.scale), TDM_ERR_INVALID_ARGUMENT,
                k + ": bad window " + std::to_string(a.window) + " or scale");
    const int64_t group = a.heads / a.kv_heads;
    TDM_REQUIRE(a.n_new * group <= INT_MAX, TDM_ERR_INVALID_ARGUMENT,
                k + ": " + std::to_string(a.n_new) + " rows of " + std::to_string(group) +
                    " heads per KV head are too many for one call");
}

inline KernelArgs checked_kernel_args(const AttentionArgs& a, const char* kernel) {
    check_attention_shape(a, kernel);
    TDM_REQUIRE(a.n_new == 0 || (a.q && a.k_cache && a.v_cache && a.out),
                TDM_ERR_INVALID_ARGUMENT, std::string(kernel) + ": null q, k_cache, v_cache or out");
    const int64_t group = a.heads / a.kv_heads;
    return KernelArgs{.q = a.q,
                      .k_cache = a.k_cache,
                      .v_cache = a.v_cache,
                      .out = a.out,
                      .lse = a.lse,
                      .n_new = int(a.n_new),
                      .pos0 = int(a.pos0),
                      .capacity = int(a.capacity),
                      .heads = a.heads,
                      .kv_heads = a.kv_heads,
                      .group = int(group),
                      .head_dim = a.head_dim,
                      .window = a.window,
                      .scale_log2 = a.scale * kLog2e,
                      .pos_dev = a.pos_dev};
}

// Calls f(std::integral_constant<int, kChunks>) with the number of 32-column chunks that covers
// head dimension D: one instantiation per bucket (32, 64, 128, 256), inactive columns masked.
template <class F>
void dispatch_head_dim(int D, F&& f) {
    if (D <= 32) f(std::integral_constant<int, 1>{});
    else if (D <= 64) f(std::integral_constant<int, 2>{});
    else if (D <= 128) f(std::integral_constant<int, 4>{});
    else f(std::integral_constant<int, 8>{});
}

// Online-softmax state of the rows one warp owns, in log2 units.
template <int kChunks>
struct RowState {
    float m[kRowsPerWarp];           // running max score; -inf before the first visible key
    float l[kRowsPerWarp];           // running sum of 2^(s - m)
    float o[kRowsPerWarp][kChunks];  // running sum of 2^(s - m) v; lane owns d = lane + 32 c

    __device__ __forceinline__ void init() {
#pragma unroll
        for (int i = 0; i < kRowsPerWarp; ++i) {
            m[i] = -INFINITY;
            l[i] = 0.0f;
#pragma unroll
            for (int c = 0; c < kChunks; ++c) o[i][c] = 0.0f;
        }
    }
};

// Stores the block's query rows, multiplied by scale * log2(e), as the Q tile; rows past `rows`
// are zero. row_ptr(r) gives the first element of block row r in global memory.
template <class RowPtr>
__device__ __forceinline__ void load_q_tile(float* q_s, int D, float scale_log2, int rows,
                                            RowPtr row_ptr) {
    for (int idx = threadIdx.x; idx < kBlockM * D; idx += kThreads) {
        const int r = idx / D, d = idx - r * D;
        q_s[idx] = r < rows ? row_ptr(r)[d] * scale_log2 : 0.0f;
    }
}

// Loads keys [key0, key0 + kBlockN) of one KV head (bf16) into the f32 K and V tiles. Keys at
// or past key_end are never read: their tile rows are zero (their scores are masked, and a zero V
// row keeps p * v finite).
__device__ __forceinline__ void load_kv_tile(float* k_s, float* v_s,
                                             const uint16_t* __restrict__ k_head,
                                             const uint16_t* __restrict__ v_head, int key0,
                                             int key_end, int D) {
    for (int idx = threadIdx.x; idx < kBlockN * D; idx += kThreads) {
        const int j = idx / D, d = idx - j * D;
        float kv = 0.0f, vv = 0.0f;
        if (key0 + j < key_end) {
            const int64_t at = int64_t(key0 + j) * D + d;
            kv = bf16_to_float(k_head[at]);
            vv = bf16_to_float(v_head[at]);
        }
        k_s[j * (D + 1) + d] = kv;
        v_s[idx] = vv;
    }
}

// True when every row of the block (positions first_pos..last_pos) sees every key of the tile
// starting at key0 and every key is below key_end: the tile needs no mask.
__device__ __forceinline__ bool tile_is_full(int key0, int key_end, int first_pos, int last_pos,
                                             int window) {
    return key0 + kBlockN <= key_end && key0 + kBlockN - 1 <= first_pos &&
           (window == 0 || key0 > last_pos - window);
}

// One tile of keys for the rows of the calling warp: scores, the online-softmax update, P V.
// pos[i] is the query position of the warp's slot i. kMasked applies the causal, window and
// key_end mask per score; full tiles skip it.
template <int kChunks, bool kMasked>
__device__ __forceinline__ void attend_tile(RowState<kChunks>& st, const float* q_s,
                                            const float* k_s, const float* v_s, int D, int key0,
                                            int key_end, const int (&pos)[kRowsPerWarp],
                                            int window) {
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;

    // s[i] = q_i . k_(key0 + lane), one pass over the key's row for all of the warp's rows.
    float s[kRowsPerWarp];
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) s[i] = 0.0f;
    const float* k_row = k_s + lane * (D + 1);
    for (int d = 0; d < D; ++d) {
        const float kd = k_row[d];
#pragma unroll
        for (int i = 0; i < kRowsPerWarp; ++i) s[i] = fmaf(q_s[row_of(warp, i) * D + d], kd, s[i]);
    }

    const int key = key0 + lane;
    float p[kRowsPerWarp];
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
        if constexpr (kMasked) {
            const bool visible =
                key < key_end && key <= pos[i] && (window == 0 || key > pos[i] - window);
            if (!visible) s[i] = -INFINITY;
        }
        const float m_new = fmaxf(st.m[i], warp_max(s[i]));
        // A row that has seen no visible key yet keeps m = -inf: subtract 0 then, so that the
        // exp2 of -inf gives 0 rather than NaN.
        const float m_ref = m_new == -INFINITY ? 0.0f : m_new;
        p[i] = exp2f(s[i] - m_ref);
        const float alpha = exp2f(st.m[i] - m_ref);
        st.l[i] = st.l[i] * alpha + warp_sum(p[i]);
        st.m[i] = m_new;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) st.o[i][c] *= alpha;
    }

    // o_i += sum_j p_ij v_j: p_ij lives in lane j; each lane reads its columns of v_j once.
#pragma unroll 4
    for (int j = 0; j < kBlockN; ++j) {
        float v[kChunks];
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const int d = lane + c * kWarpSize;
            v[c] = d < D ? v_s[j * D + d] : 0.0f;
        }
#pragma unroll
        for (int i = 0; i < kRowsPerWarp; ++i) {
            const float pij = __shfl_sync(kFullMask, p[i], j);
#pragma unroll
            for (int c = 0; c < kChunks; ++c) st.o[i][c] = fmaf(pij, v[c], st.o[i][c]);
        }
    }
}

// Raises a kernel's dynamic shared-memory limit when it needs more than the default 48 KB.
template <class Kernel>
void allow_shared_memory(Kernel* kernel, size_t bytes) {
    constexpr size_t kDefaultLimit = 48 * 1024;
    if (bytes > kDefaultLimit) {
        TDM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            int(bytes)));
    }
}

}  // namespace tdm::cuda::attn
