// The score engine shared by the GPU estimators (cuda_xattention.cu, cuda_flexprefill.cu): rows of
// softmax(scale * Q_r K_r^T) over causal key columns, never stored, produced tile by tile and
// handed to an epilogue that sums them the way its method needs.
//
// Score row R and column C are strided groups of S tokens (ALGORITHMS.md 4.2, "inverse" mode):
//   score(R, C) = scale / S * sum_{t<S} q[R S + S-1-t] . k[C S + t],   C <= R (causal at group
// granularity; the diagonal group is included). S = 1 gives plain attention scores (FlexPrefill's
// last-block estimate). The reshape is never materialised: a tile's product accumulates over the
// S offsets, each a 128 x D by 64 x D product of tokens taken at stride S.
//
// One thread block of 8 warps owns 128 score rows of one query head and walks the key columns in
// tiles of 64; each warp computes 16 rows x 64 columns with mma.sync m16n8k16 (bf16 operands,
// f32 accumulation). The next tile's operands are loaded into registers while the tensor cores
// work on the current one. Two launches of the same kernel make the exact softmax:
//   pass 1: each row's running max and sum (log2 domain), merged over column splits;
//   pass 2: the tile again, normalised with the final statistics, given to the epilogue.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_buffer.h"

namespace tdm::cuda::estimate {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTileRows = 16 * kWarps;  // score rows per block (one m16 slab per warp)
constexpr int kTileCols = 64;           // score columns per key tile
constexpr int kScoreStride = kTileCols + 4;  // f32 score tile row pitch (diagonal reads skew banks)
constexpr float kLog2e = 1.4426950408889634f;

// Operand rows are padded by 8 bf16 (16 bytes) so the 32-bit fragment loads of a warp's 8 row
// groups land 4 banks apart and every row stays 16-byte aligned.
template <int D>
struct TileSmem {
    static constexpr int kStride = D + 8;
    static constexpr size_t kQBytes = size_t(kTileRows) * kStride * 2;
    static constexpr size_t kKBytes = size_t(kTileCols) * kStride * 2;
    static constexpr size_t kScoreBytes = size_t(kTileRows) * kScoreStride * 4;
    static constexpr size_t kBytes = kQBytes + kKBytes + kScoreBytes;
};

struct ScoreArgs {
    // Staged queries [heads, q_tokens, D], zero outside the call (fp8 bytes for the wgmma
    // engine's fp8 products).
    const __nv_bfloat16* q = nullptr;
    int64_t q_tokens = 0;              // tokens per head in the staging
    int64_t q_tok_base = 0;            // absolute position of staging token 0
    const void* k = nullptr;           // KV cache keys [kv_heads, capacity, D]
    int64_t capacity = 0;
    int32_t group = 1;                 // query heads per KV head
    int64_t key_len = 0;               // keys at positions >= key_len read as zero
    int32_t stride = 1;                // S
    int64_t row_base = 0;              // score row of local row 0
    int32_t rows = 0;                  // score rows per head
    int64_t q_lo = 0, q_hi = 0;        // the call's query positions: a row is valid iff it holds one
    float scale_log2 = 0.0f;           // scale / S * log2(e)
    int32_t col_splits = 1;            // blocks sharing one row tile's columns (grid.z)
    float2* partial = nullptr;         // pass 1 out: [col_splits, heads, rows] (max, sum), log2 domain
    const float2* stats = nullptr;     // pass 2 in: [heads, rows] merged (max, sum)
};

__device__ __forceinline__ bool row_valid(const ScoreArgs& a, int64_t R) {
    return R * a.stride + a.stride - 1 >= a.q_lo && R * a.stride < a.q_hi;
}

// The last score row of a tile that holds a query of the call (-1 if none).
__device__ __forceinline__ int64_t last_valid_row(const ScoreArgs& a, int64_t R0) {
    int64_t last = R0 + kTileRows - 1;
    last = min(last, a.row_base + a.rows - 1);
    last = min(last, (a.q_hi - 1) / a.stride);
    return last;
}

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                               uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <class KT>
struct KeyVec;  // 8 consecutive key elements as 8 bf16 (16 bytes)
template <>
struct KeyVec<__nv_bfloat16> {
    static constexpr int kRegs = 4;
    __device__ static void load(uint32_t (&r)[4], const __nv_bfloat16* p) {
        const uint4 v = *reinterpret_cast<const uint4*>(p);
        r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
    }
};
template <>
struct KeyVec<float> {
    __device__ static void load(uint32_t (&r)[4], const float* p) {
        const float4 a = *reinterpret_cast<const float4*>(p);
        const float4 b = *reinterpret_cast<const float4*>(p + 4);
        const __nv_bfloat162 v0 = __floats2bfloat162_rn(a.x, a.y), v1 = __floats2bfloat162_rn(a.z, a.w);
        const __nv_bfloat162 v2 = __floats2bfloat162_rn(b.x, b.y), v3 = __floats2bfloat162_rn(b.z, b.w);
        r[0] = *reinterpret_cast<const uint32_t*>(&v0), r[1] = *reinterpret_cast<const uint32_t*>(&v1);
        r[2] = *reinterpret_cast<const uint32_t*>(&v2), r[3] = *reinterpret_cast<const uint32_t*>(&v3);
    }
};

// The operands of one (column tile, offset t) step, held in registers between the global loads
// and the shared-memory stores.
template <int D, class KT>
struct StepOperands {
    static constexpr int kVecs = D / 8;  // 16-byte vectors per row
    static constexpr int kQPer = kTileRows * kVecs / kThreads;
    static constexpr int kKPer = kTileCols * kVecs / kThreads;
    uint32_t q[kQPer][4];
    uint32_t k[kKPer][4];

    __device__ void load(const ScoreArgs& a, int head, int64_t R0, int64_t C0, int t) {
        const __nv_bfloat16* qh = a.q + int64_t(head) * a.q_tokens * D;
        const KT* kh = static_cast<const KT*>(a.k) + int64_t(head / a.group) * a.capacity * D;
#pragma unroll
        for (int i = 0; i < kQPer; ++i) {
            const int idx = threadIdx.x + i * kThreads, r = idx / kVecs, c = (idx % kVecs) * 8;
            const int64_t tok = (R0 + r) * a.stride + (a.stride - 1 - t) - a.q_tok_base;
            if (tok >= 0 && tok < a.q_tokens) {
                const uint4 v = *reinterpret_cast<const uint4*>(qh + tok * D + c);
                q[i][0] = v.x, q[i][1] = v.y, q[i][2] = v.z, q[i][3] = v.w;
            } else {
                q[i][0] = q[i][1] = q[i][2] = q[i][3] = 0u;
            }
        }
#pragma unroll
        for (int i = 0; i < kKPer; ++i) {
            const int idx = threadIdx.x + i * kThreads, r = idx / kVecs, c = (idx % kVecs) * 8;
            const int64_t tok = (C0 + r) * a.stride + t;
            if (tok < a.key_len) KeyVec<KT>::load(k[i], kh + tok * D + c);
            else k[i][0] = k[i][1] = k[i][2] = k[i][3] = 0u;
        }
    }

    __device__ void store(__nv_bfloat16* qs, __nv_bfloat16* ks) const {
        constexpr int kStride = TileSmem<D>::kStride;
#pragma unroll
        for (int i = 0; i < kQPer; ++i) {
            const int idx = threadIdx.x + i * kThreads, r = idx / kVecs, c = (idx % kVecs) * 8;
            *reinterpret_cast<uint4*>(qs + r * kStride + c) = make_uint4(q[i][0], q[i][1], q[i][2], q[i][3]);
        }
#pragma unroll
        for (int i = 0; i < kKPer; ++i) {
            const int idx = threadIdx.x + i * kThreads, r = idx / kVecs, c = (idx % kVecs) * 8;
            *reinterpret_cast<uint4*>(ks + r * kStride + c) = make_uint4(k[i][0], k[i][1], k[i][2], k[i][3]);
        }
    }
};

// acc += Q_tile(warp's 16 rows) K_tile^T (64 columns) over D.
template <int D>
__device__ __forceinline__ void tile_product(const __nv_bfloat16* qs, const __nv_bfloat16* ks,
                                             float (&acc)[kTileCols / 8][4]) {
    constexpr int kStride = TileSmem<D>::kStride;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;
    const __nv_bfloat16* qw = qs + (warp * 16 + g) * kStride + 2 * tq;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        const __nv_bfloat16* qa = qw + kk * 16;
        const uint32_t a0 = *reinterpret_cast<const uint32_t*>(qa);
        const uint32_t a1 = *reinterpret_cast<const uint32_t*>(qa + 8 * kStride);
        const uint32_t a2 = *reinterpret_cast<const uint32_t*>(qa + 8);
        const uint32_t a3 = *reinterpret_cast<const uint32_t*>(qa + 8 * kStride + 8);
#pragma unroll
        for (int nt = 0; nt < kTileCols / 8; ++nt) {
            const __nv_bfloat16* kb = ks + (nt * 8 + g) * kStride + kk * 16 + 2 * tq;
            mma_bf16_16816(acc[nt], a0, a1, a2, a3, *reinterpret_cast<const uint32_t*>(kb),
                           *reinterpret_cast<const uint32_t*>(kb + 8));
        }
    }
}

// The column tiles [begin, end) of split blockIdx.z for a tile whose last valid row is `last`.
__device__ __forceinline__ void column_range(const ScoreArgs& a, int64_t last, int64_t& begin,
                                             int64_t& end) {
    const int64_t tiles = last / kTileCols + 1;
    const int64_t per = (tiles + a.col_splits - 1) / a.col_splits;
    begin = min(tiles, per * blockIdx.z);
    end = min(tiles, begin + per);
}

// One column tile of scores into shared memory: sc[r * kScoreStride + c] = score of row R0 + r and
// column C0 + c in the log2 domain (-inf above the causal diagonal), accumulated over the S
// offsets. On entry `ops` holds the operands of (C0, t = 0); on exit those of the next tile when
// there is one (has_next), so the global loads overlap the tensor-core work.
template <int D, class KT>
__device__ __forceinline__ void score_tile(const ScoreArgs& a, int head, int64_t R0, int64_t C0,
                                           bool has_next, StepOperands<D, KT>& ops,
                                           __nv_bfloat16* qs, __nv_bfloat16* ks, float* sc) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;
    float acc[kTileCols / 8][4];
#pragma unroll
    for (int nt = 0; nt < kTileCols / 8; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
    for (int t = 0; t < a.stride; ++t) {
        __syncthreads();  // the previous step's operands (and the previous tile's scores) are consumed
        ops.store(qs, ks);
        __syncthreads();
        if (t + 1 < a.stride) ops.load(a, head, R0, C0, t + 1);
        else if (has_next) ops.load(a, head, R0, C0 + kTileCols, 0);
        tile_product<D>(qs, ks, acc);
    }
#pragma unroll
    for (int nt = 0; nt < kTileCols / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int r = warp * 16 + g + (e >= 2 ? 8 : 0), c = nt * 8 + 2 * tq + (e & 1);
            sc[r * kScoreStride + c] = C0 + c <= R0 + r ? acc[nt][e] * a.scale_log2 : -INFINITY;
        }
    }
    __syncthreads();
}

// One launch of the score engine. kPass2 = false: writes each row's partial (max, sum) of this
// split; true: hands every normalised tile to epi.tile(sc, R0, C0, head) (all threads call it;
// sc[r * kScoreStride + c] is the probability of row R0 + r and column C0 + c, 0 where masked or
// the row holds no query of the call).
template <int D, class KT, bool kPass2, class Epilogue>
__global__ void __launch_bounds__(kThreads) score_kernel(ScoreArgs a, Epilogue epi) {
    extern __shared__ __align__(16) unsigned char smem[];
    __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem);
    __nv_bfloat16* ks = reinterpret_cast<__nv_bfloat16*>(smem + TileSmem<D>::kQBytes);
    float* sc = reinterpret_cast<float*>(smem + TileSmem<D>::kQBytes + TileSmem<D>::kKBytes);

    const int head = blockIdx.y;
    const int heads = gridDim.y;
    const int r0 = blockIdx.x * kTileRows;
    const int64_t R0 = a.row_base + r0;
    const int64_t last = last_valid_row(a, R0);
    int64_t ct_begin = 0, ct_end = 0;
    if (last >= R0) column_range(a, last, ct_begin, ct_end);

    // Row statistics: two threads per row, each over half of the tile's columns.
    const int my_row = threadIdx.x / 2, half = threadIdx.x % 2;
    const int64_t my_R = R0 + my_row;
    const bool my_valid = my_row + r0 < a.rows && row_valid(a, my_R);
    float m = -INFINITY, l = 0.0f;
    if (kPass2 && my_valid) {
        const float2 s = a.stats[int64_t(head) * a.rows + r0 + my_row];
        m = s.x;
        l = s.y;
    }
    const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;

    StepOperands<D, KT> ops;
    if (ct_begin < ct_end) ops.load(a, head, R0, ct_begin * kTileCols, 0);
    for (int64_t ct = ct_begin; ct < ct_end; ++ct) {
        const int64_t C0 = ct * kTileCols;
        score_tile<D, KT>(a, head, R0, C0, ct + 1 < ct_end, ops, qs, ks, sc);
        float* row = sc + my_row * kScoreStride + half * (kTileCols / 2);
        if (!kPass2) {
            float tmax = -INFINITY;
#pragma unroll 8
            for (int c = 0; c < kTileCols / 2; ++c) tmax = fmaxf(tmax, row[c]);
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
            const float m_new = fmaxf(m, tmax);
            if (m_new != -INFINITY) {
                float sum = 0.0f;
#pragma unroll 8
                for (int c = 0; c < kTileCols / 2; ++c) sum += exp2f(row[c] - m_new);
                sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                l = l * exp2f(m - m_new) + sum;
                m = m_new;
            }
        } else {
#pragma unroll 8
            for (int c = 0; c < kTileCols / 2; ++c)
                row[c] = my_valid ? exp2f(row[c] - m) * inv_l : 0.0f;
            __syncthreads();
            epi.tile(sc, R0, C0, head);
        }
    }
    if (!kPass2 && half == 0 && r0 + my_row < a.rows)
        a.partial[(int64_t(blockIdx.z) * heads + head) * a.rows + r0 + my_row] =
            my_valid ? make_float2(m, l) : make_float2(-INFINITY, 0.0f);
}

// stats[i] = the (max, sum) of the column splits merged, i over heads * rows. (A template so that
// each including translation unit has its own instance without relocatable device code.)
template <int kUnused = 0>
__global__ void merge_row_stats(const float2* partial, int splits, int64_t rows_total, float2* stats) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows_total) return;
    float m = -INFINITY;
    for (int s = 0; s < splits; ++s) m = fmaxf(m, partial[s * rows_total + i].x);
    float l = 0.0f;
    if (m != -INFINITY)
        for (int s = 0; s < splits; ++s) {
            const float2 p = partial[s * rows_total + i];
            if (p.y > 0.0f) l += p.y * exp2f(p.x - m);
        }
    stats[i] = make_float2(m, l);
}

}  // namespace tdm::cuda::estimate

// ---- host side -------------------------------------------------------------------------------

namespace tdm::cuda::estimate {

// Grows `b` to at least `bytes` (contents dropped on growth).
inline void ensure(DeviceBuffer& b, size_t bytes) {
    if (b.bytes() < bytes) b.reserve(bytes);
}

// Column splits that give at least two blocks per multiprocessor when the row tiles alone do not
// (FlexPrefill's estimate has one row tile per head; XAttention's long rows need none).
inline int column_splits(int64_t row_tiles, int64_t heads, int64_t max_col_tiles) {
    int sms = 132;
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess)
        (void)cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    const int64_t blocks = row_tiles * heads;
    int64_t splits = (2 * int64_t(sms) + blocks - 1) / blocks;
    splits = std::min<int64_t>(splits, std::max<int64_t>(1, max_col_tiles / 4));
    return int(std::max<int64_t>(1, std::min<int64_t>(splits, 64)));
}

template <int D, class KT, class Epi>
void launch_score_passes(ScoreArgs a, int heads, DeviceBuffer& partial, DeviceBuffer& stats,
                         const Epi& epi, cudaStream_t s) {
    constexpr size_t smem = TileSmem<D>::kBytes;
    auto pass1 = score_kernel<D, KT, false, Epi>;
    auto pass2 = score_kernel<D, KT, true, Epi>;
    TDM_CUDA_CHECK(cudaFuncSetAttribute(pass1, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    TDM_CUDA_CHECK(cudaFuncSetAttribute(pass2, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const int64_t row_tiles = (a.rows + kTileRows - 1) / kTileRows;
    const int64_t rows_total = int64_t(heads) * a.rows;
    ensure(stats, size_t(rows_total) * sizeof(float2));
    if (a.col_splits > 1) ensure(partial, size_t(rows_total) * a.col_splits * sizeof(float2));
    a.partial = a.col_splits > 1 ? partial.as<float2>() : stats.as<float2>();
    const dim3 grid(unsigned(row_tiles), unsigned(heads), unsigned(a.col_splits));
    pass1<<<grid, kThreads, smem, s>>>(a, epi);
    TDM_CUDA_CHECK_LAUNCH("estimate score pass 1");
    if (a.col_splits > 1) {
        merge_row_stats<<<unsigned((rows_total + 255) / 256), 256, 0, s>>>(
            partial.as<float2>(), a.col_splits, rows_total, stats.as<float2>());
        TDM_CUDA_CHECK_LAUNCH("merge_row_stats");
    }
    a.stats = stats.as<float2>();
    pass2<<<grid, kThreads, smem, s>>>(a, epi);
    TDM_CUDA_CHECK_LAUNCH("estimate score pass 2");
}

// Dispatch on head dim (64, 128) and the cache's element type.
template <class Epi>
void score_passes(const ScoreArgs& a, int heads, int head_dim, bool k_bf16, DeviceBuffer& partial,
                  DeviceBuffer& stats, const Epi& epi, cudaStream_t s) {
    if (head_dim == 64) {
        if (k_bf16) launch_score_passes<64, __nv_bfloat16>(a, heads, partial, stats, epi, s);
        else launch_score_passes<64, float>(a, heads, partial, stats, epi, s);
    } else if (head_dim == 128) {
        if (k_bf16) launch_score_passes<128, __nv_bfloat16>(a, heads, partial, stats, epi, s);
        else launch_score_passes<128, float>(a, heads, partial, stats, epi, s);
    } else {
        fail(TDM_ERR_UNSUPPORTED, "sparse estimation supports head dims 64 and 128, not " +
                                      std::to_string(head_dim));
    }
}

}  // namespace tdm::cuda::estimate
