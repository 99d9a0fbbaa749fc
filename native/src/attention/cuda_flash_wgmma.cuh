// The Hopper inner loop shared by the dense and the block-sparse prefill kernels
// (FlashAttention-3 style): warp-specialised, K/V tiles brought in by the tensor copy engine (TMA)
// and multiplied by warpgroup matrix instructions (wgmma), head dims 64 and 128.
//
// A block of 3 warpgroups owns kRows = 128 query rows of one query head:
//   - warpgroup 0, the producer, gives most of its registers away; one thread walks the block's
//     key tiles (kKeys = 128 keys each: a range for the dense kernel, the CSR list of active
//     blocks for the sparse one) and copies each tile's K and V rows from the bf16 cache into a
//     ring of kStages shared-memory stages with TMA, which also applies the 128-byte swizzle wgmma
//     reads; a stage is refilled once both consumers have released it (an `empty` mbarrier), and
//     the consumers learn that a tile has landed from its `full` mbarrier.
//   - warpgroups 1 and 2, the consumers, own 64 query rows each: S = Q K^T with Q and K both read
//     by wgmma from shared memory, the online softmax in registers (exp2, the scale folded into Q),
//     then O += P V with P fed from registers (the f32 accumulator layout of two adjacent key
//     octets is exactly the bf16 A-fragment layout) and V read from shared memory as a transposed
//     (N-major) operand. While one consumer runs its softmax the other's matrix instructions keep
//     the tensor cores busy.
// Q arrives in f32; each consumer rounds its 64 rows to bf16 once, multiplied by scale * log2 e,
// and stores them swizzled. Keys the tensor map does not cover (past the last valid position)
// read as zeros. A tile every row of a consumer fully sees skips the mask; a tile none of its
// rows sees is skipped (but still released); the diagonal tile is masked per score. No sliding
// window here (those layers keep the mma.sync loop of cuda_flash_tile.cuh).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "attention/cuda_attention_tile.cuh"
#include "attention/cuda_flash_math.cuh"
#include "attention/cuda_wgmma.cuh"

namespace tdm::cuda::flash_wg {

constexpr int kRows = 128;           // query rows per block
constexpr int kKeys = 128;           // keys per tile
constexpr int kConsumers = 2;        // warpgroups of 64 rows
constexpr int kWarpgroup = 128;      // threads
constexpr int kThreads = kWarpgroup * (1 + kConsumers);
constexpr int kProducerRegisters = 24;
constexpr int kConsumerRegisters = 240;
constexpr uint32_t kRegionRowBytes = 128;  // 64 bf16 columns, the swizzle width

template <int D>
struct Config {
    static_assert(D == 64 || D == 128, "head dims 64 and 128");
    static constexpr int kRegions = D / 64;
    static constexpr uint32_t kQRegionBytes = kRows * kRegionRowBytes;
    static constexpr uint32_t kTileRegionBytes = kKeys * kRegionRowBytes;
    static constexpr uint32_t kQBytes = kRegions * kQRegionBytes;
    static constexpr uint32_t kTileBytes = kRegions * kTileRegionBytes;  // a K or a V tile
    // D = 128: 32 KB of Q and 64 KB per stage; two stages fit with room for the barriers (one block
    // per SM). D = 64: half of that, four stages.
    // (A third stage at D = 128 fits too, but measured no faster.)
    static constexpr int kStages = D == 128 ? 2 : 4;
    static constexpr uint32_t kBarrierBytes = 2 * kStages * sizeof(uint64_t);
    // 1024 bytes of slack: the dynamic shared window is only guaranteed 16-byte aligned and the
    // swizzled regions need 1024.
    static constexpr size_t kSmemBytes = 1024 + kQBytes + 2 * kStages * kTileBytes + kBarrierBytes;
};

using flash::fast_exp2;
using flash::pack_bf16;

// S = Q K^T for one 64-row warpgroup and a 128-key tile: D / 16 k-steps, Q and K both K-major.
template <int D>
__device__ __forceinline__ void scores(float (&s)[kKeys / 2], uint32_t q_rows, uint32_t k_tile) {
    using C = Config<D>;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t in_region = (kk % 4) * 32;  // the k16 step inside its 128-byte row
        const uint64_t a = hopper::smem_desc(q_rows + (kk / 4) * C::kQRegionBytes + in_region, 16,
                                             1024);
        const uint64_t b = hopper::smem_desc(k_tile + (kk / 4) * C::kTileRegionBytes + in_region,
                                             16, 1024);
        hopper::wgmma_m64n128k16_ss<0>(s, a, b, kk > 0 ? 1 : 0);
    }
}

// O += P V: kKeys / 16 k-steps of 16 keys (2048 bytes of the V tile each); V is N-major.
template <int D>
__device__ __forceinline__ void accumulate_pv(float (&o)[D / 2], const uint32_t (&p)[kKeys / 16][4],
                                              uint32_t v_tile) {
    using C = Config<D>;
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
        const uint64_t b = hopper::smem_desc(v_tile + kk * 16 * kRegionRowBytes,
                                             C::kTileRegionBytes, 1024);
        if constexpr (D == 128) hopper::wgmma_m64n128k16_rs<1>(o, p[kk], b);
        else hopper::wgmma_m64n64k16_rs<1>(o, p[kk], b);
    }
}

// The block's rows q_first .. q_first + rows - 1 (rows <= kRows) of query head `head` attend to
// `tiles` key tiles, tile i starting at key key0_of(i) (a multiple of nothing in particular, but
// the same value for the producer and the consumers); writes out and lse of the existing rows.
// `smem_raw` is the dynamic shared window of Config<D>::kSmemBytes.
// Which (query head, query tile) block x of the grid computes: the query heads of one KV head
// vary fastest, then the query tiles (the last first: they see the most keys, so they do not
// finish last), then the KV heads, so the blocks resident together share one KV head's tiles in
// L2. On an H200 this beat heads-fastest order by 6% dense and 16% on 10%-dense random masks at
// 128K (566 vs 534 and 520 vs 448 TFLOP/s).
struct WorkItem {
    int head, tile;
};
__device__ __forceinline__ WorkItem work_item(int x, int group, int tiles_q) {
    const int per_kv = tiles_q * group;
    const int kv = x / per_kv, w = x % per_kv;
    return {kv * group + w % group, tiles_q - 1 - w / group};
}

template <int D, class KeyOf>
__device__ __forceinline__ void attend_rows(unsigned char* smem_raw, const attn::KernelArgs& a,
                                            const CUtensorMap* k_map, const CUtensorMap* v_map,
                                            int head, int q_first, int rows, int tiles,
                                            KeyOf key0_of) {
    using C = Config<D>;
    constexpr int kStages = C::kStages;
    const uint32_t raw = hopper::smem_u32(smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    unsigned char* aligned = smem_raw + (base - raw);
    const uint32_t q_base = base;
    const uint32_t tiles_base = base + C::kQBytes;  // stage s: K at 2 s, V at 2 s + 1 tiles
    auto* full = reinterpret_cast<uint64_t*>(aligned + C::kQBytes + 2 * kStages * C::kTileBytes);
    uint64_t* empty = full + kStages;

    if (threadIdx.x == 0) {
        for (int s = 0; s < kStages; ++s) {
            hopper::mbarrier_init(&full[s], 1);                      // the producer's arrival
            hopper::mbarrier_init(&empty[s], kConsumers * 4);        // every consumer warp
        }
        hopper::mbarrier_init_fence();
    }
    __syncthreads();

    const int warpgroup = threadIdx.x / kWarpgroup;
    if (warpgroup == 0) {
        hopper::release_registers<kProducerRegisters>();
        if (threadIdx.x == 0) {
            hopper::prefetch_tensor_map(k_map);
            hopper::prefetch_tensor_map(v_map);
            const int kv_head = head / a.group;
            for (int i = 0; i < tiles; ++i) {
                const int s = i % kStages;
                // Refill i reuses the stage of tile i - kStages: wait for that use's release
                // (its completion number i / kStages - 1).
                if (i >= kStages) hopper::mbarrier_wait(&empty[s], ((i / kStages) - 1) & 1);
                hopper::mbarrier_arrive_expect_tx(&full[s], 2 * C::kTileBytes);
                const int key0 = key0_of(i);
                const uint32_t k_dst = tiles_base + (2 * s) * C::kTileBytes;
                const uint32_t v_dst = k_dst + C::kTileBytes;
#pragma unroll
                for (int r = 0; r < C::kRegions; ++r) {
                    hopper::tma_load_3d(k_dst + r * C::kTileRegionBytes, k_map, &full[s], r * 64,
                                        key0, kv_head);
                    hopper::tma_load_3d(v_dst + r * C::kTileRegionBytes, v_map, &full[s], r * 64,
                                        key0, kv_head);
                }
            }
        }
        return;
    }

    hopper::claim_registers<kConsumerRegisters>();
    const int consumer = warpgroup - 1;
    const int tid = threadIdx.x % kWarpgroup;
    const int warp = tid / kWarpSize, lane = tid % kWarpSize;
    const int g = lane / 4, t = lane % 4;
    const int row0 = consumer * 64;  // this warpgroup's first block row

    // This warpgroup's Q rows, rounded to bf16 and pre-scaled, into the swizzled Q tile (rows past
    // `rows` are zeros: computed, never written).
    {
        constexpr int kVecs = D / 4;
        for (int idx = tid; idx < 64 * kVecs; idx += kWarpgroup) {
            const int r = row0 + idx / kVecs, c = (idx % kVecs) * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (r < rows) {
                const float* src = a.q + (int64_t(q_first + r) * a.heads + head) * D;
                v = *reinterpret_cast<const float4*>(src + c);
            }
            uint2 packed;
            packed.x = pack_bf16(v.x * a.scale_log2, v.y * a.scale_log2);
            packed.y = pack_bf16(v.z * a.scale_log2, v.w * a.scale_log2);
            *reinterpret_cast<uint2*>(aligned + (c / 64) * C::kQRegionBytes +
                                      hopper::swizzled_offset(r, c % 64)) = packed;
        }
        hopper::fence_async_shared();
        hopper::named_barrier_sync(1 + consumer, kWarpgroup);
    }
    const uint32_t q_rows = q_base + row0 * kRegionRowBytes;

    const int first_pos = a.pos0 + q_first;
    const int last_pos = first_pos + rows - 1;
    const int wg_first = first_pos + min(row0, rows - 1);
    const int wg_last = first_pos + min(row0 + 63, rows - 1);

    float o[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY};
    float l[2] = {0.0f, 0.0f};

    for (int i = 0; i < tiles; ++i) {
        const int s = i % kStages;
        const int key0 = key0_of(i);
        const bool sees_none = key0 > wg_last;
        hopper::mbarrier_wait(&full[s], (i / kStages) & 1);
        if (!sees_none) {
            const uint32_t k_tile = tiles_base + (2 * s) * C::kTileBytes;
            const uint32_t v_tile = k_tile + C::kTileBytes;
            float sc[kKeys / 2];
            hopper::wgmma_fence();
            scores<D>(sc, q_rows, k_tile);
            hopper::wgmma_commit();
            hopper::wgmma_wait<0>();
            hopper::fence_registers(sc);

            if (key0 + kKeys - 1 > wg_first) {  // some row of this warpgroup misses some key
#pragma unroll
                for (int j = 0; j < kKeys / 8; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = key0 + j * 8 + 2 * t + (e & 1);
                        const int p = min(first_pos + row0 + warp * 16 + g + 8 * (e / 2), last_pos);
                        if (key > p) sc[4 * j + e] = -INFINITY;
                    }
            }

            // Online softmax in exp2; a row's scores are spread over the 4 lanes of its quad.
            uint32_t pa[kKeys / 16][4];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float mx = m[h];
#pragma unroll
                for (int j = 0; j < kKeys / 8; ++j)
                    mx = fmaxf(mx, fmaxf(sc[4 * j + 2 * h], sc[4 * j + 2 * h + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                // A row that has seen no visible key yet keeps m = -inf: subtract 0 then, so that
                // exp2(-inf) gives 0 rather than NaN.
                const float ref = mx == -INFINITY ? 0.0f : mx;
                const float alpha = fast_exp2(m[h] - ref);
                m[h] = mx;
                float sum = 0.0f;
#pragma unroll
                for (int j = 0; j < kKeys / 8; ++j) {
                    sc[4 * j + 2 * h] = fast_exp2(sc[4 * j + 2 * h] - ref);
                    sc[4 * j + 2 * h + 1] = fast_exp2(sc[4 * j + 2 * h + 1] - ref);
                    sum += sc[4 * j + 2 * h] + sc[4 * j + 2 * h + 1];
                }
                l[h] = l[h] * alpha + sum;
#pragma unroll
                for (int j = 0; j < D / 8; ++j) {
                    o[4 * j + 2 * h] *= alpha;
                    o[4 * j + 2 * h + 1] *= alpha;
                }
            }
#pragma unroll
            for (int kk = 0; kk < kKeys / 16; ++kk) {
                pa[kk][0] = pack_bf16(sc[8 * kk + 0], sc[8 * kk + 1]);
                pa[kk][1] = pack_bf16(sc[8 * kk + 2], sc[8 * kk + 3]);
                pa[kk][2] = pack_bf16(sc[8 * kk + 4], sc[8 * kk + 5]);
                pa[kk][3] = pack_bf16(sc[8 * kk + 6], sc[8 * kk + 7]);
            }

            hopper::fence_registers(o);
            hopper::wgmma_fence();
            accumulate_pv<D>(o, pa, v_tile);
            hopper::wgmma_commit();
            hopper::wgmma_wait<0>();
            hopper::fence_registers(o);
        }
        if (lane == 0) hopper::mbarrier_arrive(&empty[s]);
    }

    // Write the rows that exist: out [n_new, heads, D], lse [n_new, heads] (natural log). A row
    // that saw no key (only with an invalid sparse plan) gets zeros and lse = -inf.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float sum = l[h];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const int row = row0 + warp * 16 + g + 8 * h;
        if (row >= rows) continue;
        const int64_t at = int64_t(q_first + row) * a.heads + head;
        const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        float* dst = a.out + at * D + 2 * t;
#pragma unroll
        for (int j = 0; j < D / 8; ++j)
            *reinterpret_cast<float2*>(dst + j * 8) =
                make_float2(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
        if (a.lse != nullptr && t == 0)
            a.lse[at] = sum > 0.0f ? (m[h] + __log2f(sum)) * attn::kLn2 : -INFINITY;
    }
}

}  // namespace tdm::cuda::flash_wg
