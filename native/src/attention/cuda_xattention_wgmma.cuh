// XAttention's antidiagonal scores on Hopper (sm_90a): the one-pass estimator of
// cuda_xattention.cu with its score products on warpgroup matrix instructions fed by TMA, for a
// bf16 cache, head dims 64 and 128 and 8 to 64 score rows per query block (B / S); or, for the
// fp8 estimation (head dim 128), on fp8 e4m3 copies of Q and K (cuda_fp8_stage.cu): half the
// bytes a product streams and twice the tensor-core rate, the products rescaled by the heads'
// power-of-two scales in the epilogue. The fp8 copies are staged offset-major, so a Q_t or K_t
// box is one contiguous 16 KB run instead of 128 rows 1 KB apart.
//
// Score row R, column C (ALGORITHMS.md 4.2): sum_t q[R S + S-1-t] . k[C S + t]. A block owns 128
// score rows (two consumer warpgroups of 64) and walks the causal column tiles of 128; a tile is
// the sum over t of one product per offset, Q_t (the rows' tokens at offset S-1-t) times K_t (the
// columns' keys at offset t), each a [128 x D] TMA box of strided rows (make_strided_tensor_map),
// so the reshape is never materialised and every operand row arrives swizzled for wgmma. The
// producer warpgroup streams the (Q_t, K_t) pairs through a ring of kStages stages; the
// consumers chain the S products of a tile into one accumulator, releasing each stage as soon as
// the product after it is issued (wgmma keeps one group in flight).
//
// Keys at or past key_len must read as zeros, but a 4-D map cannot cut a group in two: the keys
// come through two maps of the same cache, one over the whole groups only (floor(key_len / S)) and
// one over every started group (ceil); offsets t < key_len % S, whose keys in the last started
// group are all written, read the second, the others the first.
//
// The epilogue of a tile is the one-pass one of cuda_xattention.cu: per row an online max and sum
// (log2 domain), and for every segment of `seg` columns the log2 of its partial sum against the
// running max into the scratch row; after the last tile each consumer folds its own 64 rows (whole
// query blocks, as B / S <= 64) into the block sums.
#pragma once

#include "attention/cuda_wgmma.cuh"

namespace tdm::cuda::xattn_wg {

constexpr int kRows = 128;  // score rows per block
// Score columns per tile. The operands stream from L2 (a row tile's Q_t, S x 32 KB at D = 128,
// cannot stay resident), so bytes per product matter; 256-column tiles halve the Q_t traffic but
// leave room for only two 96 KB stages, and ran slower than 128 columns with three stages (H100,
// S = 8 at 128K: 51.6 against 40.6 ms; the mma.sync engine took 78.9 and 77.9 ms in those runs).
// Sharing each K_t tile among a cluster of 4 blocks of consecutive row tiles (TMA multicast, a
// stage refilled once every consumer of the cluster released it) was correct but ran 2x slower
// (82.1 against 41.3 ms): the blocks then advance in lockstep through a 3-stage ring.
constexpr int kCols = 128;
constexpr int kWarpgroup = 128;
constexpr int kThreads = 3 * kWarpgroup;
constexpr uint32_t kRowBytes = 128;  // a swizzled region row: 64 bf16 or 128 fp8

template <int D, bool kFp8>
struct Config {
    static_assert(D == 64 || D == 128, "head dims 64 and 128");
    static_assert(!kFp8 || D == 128, "fp8 operands: head dim 128 (one 128-byte row)");
    static constexpr int kRegionCols = kFp8 ? 128 : 64;  // elements of a 128-byte region row
    static constexpr int kRegions = D / kRegionCols;
    static constexpr uint32_t kQRegionBytes = kRows * kRowBytes;  // 16 KB
    static constexpr uint32_t kKRegionBytes = kCols * kRowBytes;  // 16 KB
    static constexpr uint32_t kQBytes = kRegions * kQRegionBytes;
    static constexpr uint32_t kStageBytes = kQBytes + kRegions * kKRegionBytes;  // Q_t, then K_t
    // 192 KB of stages at 64 KB (bf16, D = 128) and 32 KB (fp8); D = 64 bf16 keeps 4.
    static constexpr int kStages = kFp8 ? 6 : (D == 128 ? 3 : 4);
    static constexpr size_t kSmemBytes =
        1024 + size_t(kStages) * kStageBytes + 2 * kStages * sizeof(uint64_t);
};

// The one-pass epilogue's arguments (cuda_xattention.cu), the same for both score engines.
struct OnePassArgs {
    float* scratch;          // [heads, tiles_per_launch * rows per tile, segs] log2 partial sums
    int32_t segs;            // segments per score row (score columns / seg)
    int32_t seg;             // columns per segment: min(B/S, 32), divides 32
    int32_t rows_per_block;  // B / S
    int32_t first_q_block, q_blocks, k_blocks;
    int32_t launch, launches;  // row tiles of this launch: launch + launches * i (interleaved, so
                               // every launch gets long and short causal rows alike)
    float* sums;               // [heads, q_blocks, k_blocks] (zeroed before)
};

struct Args {
    int32_t stride;            // S
    int32_t rows;              // score rows per head (row_base .. row_base + rows - 1)
    int64_t row_base;          // score row of local row 0 (and of staging group 0)
    int64_t q_lo, q_hi;        // the call's query positions: a row is valid iff it holds one
    int32_t key_rem;           // key_len % S: offsets below it read the ceil map
    int32_t group;             // query heads per KV head
    int32_t heads;             // query heads (the grid is heads x tiles, heads fastest)
    int32_t tiles;             // row tiles of this launch
    float scale_log2;          // scale / S * log2(e)
    // fp8 operands only: [heads + kv_heads] the scale exponents e (the operands hold
    // e4m3(x * 2^e)), so a product is rescaled by 2^-(e_q + e_k).
    const int32_t* fp8_exp;
    OnePassArgs o;             // the one-pass epilogue
};

__device__ __forceinline__ bool row_valid(const Args& a, int64_t R) {
    return R * a.stride + a.stride - 1 >= a.q_lo && R * a.stride < a.q_hi;
}

template <int D, bool kFp8>
__global__ void __launch_bounds__(kThreads, 1)
xattn_wgmma_kernel(Args a, const __grid_constant__ CUtensorMap q_map,
                   const __grid_constant__ CUtensorMap k_floor,
                   const __grid_constant__ CUtensorMap k_ceil) {
    using C = Config<D, kFp8>;
    constexpr int kStages = C::kStages;
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    __shared__ float row_m[kRows], row_inv_l[kRows];
    const uint32_t raw = hopper::smem_u32(smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    unsigned char* aligned = smem_raw + (base - raw);
    auto* full = reinterpret_cast<uint64_t*>(aligned + size_t(kStages) * C::kStageBytes);
    uint64_t* empty = full + kStages;

    // Heads vary fastest: the blocks resident together hold one row tile of every head, so their
    // K_t tiles (a few KV heads, walked in step) and Q_t tiles (one row tile a head) stay in L2.
    // Longest causal rows first (the scheduler starts low block indices first): a shorter tail.
    const int head = int(blockIdx.x % unsigned(a.heads));
    const int local = a.tiles - 1 - int(blockIdx.x / unsigned(a.heads));
    const int tile = a.o.launch + a.o.launches * local;
    const int r0 = tile * kRows;
    const int64_t R0 = a.row_base + r0;
    int64_t last = min(R0 + kRows - 1, a.row_base + a.rows - 1);
    last = min(last, (a.q_hi - 1) / a.stride);
    const int col_tiles = last >= R0 ? int(last / kCols) + 1 : 0;
    const int S = a.stride;

    if (threadIdx.x == 0) {
        for (int s = 0; s < kStages; ++s) {
            hopper::mbarrier_init(&full[s], 1);
            hopper::mbarrier_init(&empty[s], 8);  // every consumer warp
        }
        hopper::mbarrier_init_fence();
    }
    __syncthreads();

    const int warpgroup = threadIdx.x / kWarpgroup;
    if (warpgroup == 0) {
        hopper::release_registers<24>();
        if (threadIdx.x == 0) {
            hopper::prefetch_tensor_map(&q_map);
            hopper::prefetch_tensor_map(&k_floor);
            hopper::prefetch_tensor_map(&k_ceil);
            const int kv_head = head / a.group;
            int it = 0;
            for (int ct = 0; ct < col_tiles; ++ct) {
                for (int t = 0; t < S; ++t, ++it) {
                    const int s = it % kStages;
                    if (it >= kStages) hopper::mbarrier_wait(&empty[s], ((it / kStages) - 1) & 1);
                    hopper::mbarrier_arrive_expect_tx(&full[s], C::kStageBytes);
                    const uint32_t q_dst = base + s * C::kStageBytes;
                    const uint32_t k_dst = q_dst + C::kQBytes;
                    const CUtensorMap* k_map = t < a.key_rem ? &k_ceil : &k_floor;
                    if constexpr (kFp8) {  // offset-major staging: (column, group, offset, head)
                        hopper::tma_load_4d(q_dst, &q_map, &full[s], 0, r0, S - 1 - t, head);
                        hopper::tma_load_4d(k_dst, k_map, &full[s], 0, ct * kCols, t, kv_head);
                    } else {
#pragma unroll
                        for (int r = 0; r < C::kRegions; ++r) {
                            hopper::tma_load_4d(q_dst + r * C::kQRegionBytes, &q_map, &full[s],
                                                r * C::kRegionCols, S - 1 - t, r0, head);
                            hopper::tma_load_4d(k_dst + r * C::kKRegionBytes, k_map, &full[s],
                                                r * C::kRegionCols, t, ct * kCols, kv_head);
                        }
                    }
                }
            }
        }
        return;
    }

    hopper::claim_registers<240>();
    const int consumer = warpgroup - 1;
    const int tid = threadIdx.x % kWarpgroup;
    const int warp = tid / 32, lane = tid % 32, g = lane / 4, tq = lane % 4;
    const int row0 = consumer * 64;
    // This thread's two rows (h = 0, 1) within the block, and their scratch rows.
    int my_row[2];
    float* my_scratch[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        my_row[h] = row0 + warp * 16 + g + 8 * h;
        my_scratch[h] = a.o.scratch +
                        (int64_t(head) * a.tiles * kRows + int64_t(local) * kRows + my_row[h]) *
                            a.o.segs;
    }
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    // seg is 8, 16 or 32 (a power of two): the epilogue's segment arithmetic is shifts and masks,
    // not 64-bit divisions (H100, S = 8 at 128K: 37.1 -> 34.1 ms for the bf16 estimation).
    const int seg_shift = __ffs(a.o.seg) - 1;
    const int seg_tile_mask = (a.o.seg >> 3) - 1;  // n8 tiles per segment, minus one
    float scale_log2 = a.scale_log2;
    if constexpr (kFp8) {  // ldexpf is exact: the scaling is undone without rounding
        const int32_t e = a.fp8_exp[head] + a.fp8_exp[a.heads + head / a.group];
        scale_log2 = ldexpf(scale_log2, -e);
    }

    int it = 0;
    for (int ct = 0; ct < col_tiles; ++ct) {
        float acc[kCols / 2];
        for (int t = 0; t < S; ++t, ++it) {
            const int s = it % kStages;
            hopper::mbarrier_wait(&full[s], (it / kStages) & 1);
            const uint32_t q_tile = base + s * C::kStageBytes + row0 * kRowBytes;
            const uint32_t k_tile = base + s * C::kStageBytes + C::kQBytes;
            hopper::wgmma_fence();
            // Four 32-byte k steps a 128-byte region row: k16 of bf16 or k32 of fp8.
#pragma unroll
            for (int kk = 0; kk < 4 * C::kRegions; ++kk) {
                const uint32_t step = (kk % 4) * 32;
                const uint64_t qa =
                    hopper::smem_desc(q_tile + (kk / 4) * C::kQRegionBytes + step, 16, 1024);
                const uint64_t kb =
                    hopper::smem_desc(k_tile + (kk / 4) * C::kKRegionBytes + step, 16, 1024);
                if constexpr (kFp8)
                    hopper::wgmma_m64n128k32_e4m3_ss(acc, qa, kb, (t > 0 || kk > 0) ? 1 : 0);
                else
                    hopper::wgmma_m64n128k16_ss<0>(acc, qa, kb, (t > 0 || kk > 0) ? 1 : 0);
            }
            hopper::wgmma_commit();
            // The product before this one is done: its stage may be refilled.
            hopper::wgmma_wait<1>();
            if (t > 0 && lane == 0) hopper::mbarrier_arrive(&empty[(it - 1) % kStages]);
        }
        hopper::wgmma_wait<0>();
        if (lane == 0) hopper::mbarrier_arrive(&empty[(it - 1) % kStages]);
        hopper::fence_registers(acc);

        // Epilogue: scores in the log2 domain, causal at group granularity.
        const int64_t C0 = int64_t(ct) * kCols;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            // The tile's columns c with C0 + c <= R (the row's causal limit), in 32 bits.
            const int64_t reach = R0 + my_row[h] - C0;
            const int limit = reach < -1 ? -1 : (reach > kCols ? kCols : int(reach));
            float* out = my_scratch[h] + (C0 >> seg_shift);  // C0 is a multiple of 128
            float tmax = -INFINITY;
#pragma unroll
            for (int j = 0; j < kCols / 8; ++j)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    float& x = acc[4 * j + 2 * h + e];
                    x = j * 8 + 2 * tq + e <= limit ? x * scale_log2 : -INFINITY;
                    tmax = fmaxf(tmax, x);
                }
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
            const float m_new = fmaxf(m[h], tmax);
            float sum = 0.0f, part = 0.0f;
#pragma unroll
            for (int j = 0; j < kCols / 8; ++j) {
                if (m_new != -INFINITY)
                    part += exp2f(acc[4 * j + 2 * h] - m_new) +
                            exp2f(acc[4 * j + 2 * h + 1] - m_new);
                if (((j + 1) & seg_tile_mask) == 0) {  // a segment ends: its sum over the quad
                    part += __shfl_xor_sync(0xffffffffu, part, 1);
                    part += __shfl_xor_sync(0xffffffffu, part, 2);
                    if (tq == 0) out[(((j + 1) * 8) >> seg_shift) - 1] = m_new + log2f(part);
                    sum += part;
                    part = 0.0f;
                }
            }
            if (m_new != -INFINITY) {
                l[h] = l[h] * exp2f(m[h] - m_new) + sum;
                m[h] = m_new;
            }
        }
    }

    // Fold this warpgroup's rows: sums[qb, kb] = sum over the rows r of qb and the segments of kb
    // of exp2(L - m_r) / l_r.
    if (tq == 0) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const bool valid = r0 + my_row[h] < a.rows && row_valid(a, R0 + my_row[h]);
            row_m[my_row[h]] = m[h];
            row_inv_l[my_row[h]] = valid && l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
        }
    }
    hopper::named_barrier_sync(1 + consumer, kWarpgroup);  // also orders the scratch writes
    const int rpb = a.o.rows_per_block, segs_per_kb = max(1, rpb / a.o.seg);
    const int64_t written = int64_t(col_tiles) * kCols / a.o.seg;  // segments written per row
    const int q_local = 64 / rpb;
    const float* wg_scratch =
        a.o.scratch +
        (int64_t(head) * a.tiles * kRows + int64_t(local) * kRows + row0) * a.o.segs;
    const int64_t kb_count = (written + segs_per_kb - 1) / segs_per_kb;
    for (int64_t i = tid; i < int64_t(q_local) * kb_count; i += kWarpgroup) {
        const int ql = int(i / kb_count);
        const int64_t kb = i % kb_count;
        const int64_t qb = (R0 + row0 + int64_t(ql) * rpb) / rpb;  // absolute query block
        const int64_t qb_rel = qb - a.o.first_q_block;
        if (kb > qb || kb >= a.o.k_blocks || qb_rel < 0 || qb_rel >= a.o.q_blocks) continue;
        float s = 0.0f;
        for (int r = ql * rpb; r < ql * rpb + rpb; ++r) {
            const float inv = row_inv_l[row0 + r];
            if (inv == 0.0f) continue;
            const float mr = row_m[row0 + r];
            for (int64_t sg = kb * segs_per_kb; sg < min(written, (kb + 1) * segs_per_kb); ++sg)
                s += exp2f(wg_scratch[int64_t(r) * a.o.segs + sg] - mr) * inv;
        }
        a.o.sums[(int64_t(head) * a.o.q_blocks + qb_rel) * a.o.k_blocks + kb] = s;
    }
}

}  // namespace tdm::cuda::xattn_wg
