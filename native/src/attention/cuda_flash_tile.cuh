// The tensor-core inner loop shared by the dense and the block-sparse prefill kernels
// (FlashAttention-2 style, bf16 mma.sync.m16n8k16 with f32 accumulation), for head dims 64 and 128.
//
// A block of 4 warps owns kRows = 64 * kSlabs query rows of one query head; each warp owns
// kSlabs slabs of 16 rows and keeps their scores, online-softmax state and output accumulators in
// registers. Two slabs per warp (128 rows) let every K and V fragment read from shared memory
// feed two matrix instructions, which halves the shared-memory traffic per FLOP (the limit of
// mma.sync on Hopper); one slab (64 rows) is the block-sparse kernel's 64-key block size.
//   S = Q K^T   A = Q (ldmatrix from the Q tile), B = K (ldmatrix);
//   O += P V    A = P, converted in registers from the S accumulators (the m16n8 accumulator
//               layout of two adjacent key octets is exactly the m16k16 A layout), B = V
//               (ldmatrix.trans).
// Keys come kKeys = 64 (32 at D = 128) at a time: the caller names the first key of each tile
// (a range for the dense kernel, the CSR list of active blocks for the sparse one), and run_tiles
// copies the next tiles' K and V rows straight from the bf16 cache into shared memory with
// cp.async while the current one is computed (several stages). Keys outside [0, key_end) are
// zero-filled, never read.
// Q arrives in f32 and is rounded to bf16 once, pre-multiplied by scale * log2(e) so that the
// softmax runs in exp2. Tiles every row of a warp fully sees skip the mask; tiles no row of a
// warp sees are skipped by that warp; the rest (the diagonal, window edges) are masked per score.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "attention/cuda_attention_tile.cuh"
#include "attention/cuda_flash_math.cuh"

namespace tdm::cuda::flash {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
// K/V stages (kStages, a template parameter, at least 3): tile i is computed while tiles
// i + 1 .. i + kStages - 1 are copied, and a stage is refilled only after the barrier that
// follows its last read, so one barrier per tile orders both hazards. The dense kernel's tiles
// mostly hit L2 (the query heads of a KV head and neighbouring query tiles read the same keys);
// the sparse kernel's come from scattered blocks and want a deeper pipeline.

// Keys per tile: 64, or 32 at D = 128, where with two slabs the 64-key scores would push the
// register demand past 255 (the output accumulators alone take 128) and spill, and with one slab
// three 64-key stages would leave room for only one block per SM.
template <int D, int kSlabs>
constexpr int keys_per_tile() { return D == 128 ? 32 : 64; }

// Shared memory: the Q tile and kStages (K tile, V tile) pairs, rows of D bf16 padded by 8
// (16 bytes): the 8 rows one ldmatrix reads start 4 banks apart (D = 64: a row is 36 words,
// D = 128: 68), so they are conflict-free, and every row stays 16-byte aligned for cp.async.
template <int D, int kSlabs, int kStages>
struct Config {
    static constexpr int kKeys = keys_per_tile<D, kSlabs>();
    static constexpr int kRows = 16 * kSlabs * kWarps;
    static constexpr int kStride = D + 8;  // bf16 elements per shared row
    static constexpr int kTileElems = kKeys * kStride;
    static constexpr size_t kQBytes = size_t(kRows) * kStride * sizeof(__nv_bfloat16);
    static constexpr size_t kBytes =
        kQBytes + size_t(2 * kStages) * kTileElems * sizeof(__nv_bfloat16);
};

// d (16x8, f32) += a (16x16, bf16, row-major) * b (16x8, bf16, column-major).
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return uint32_t(__cvta_generic_to_shared(p));
}

// Four 8x8 bf16 matrices: lanes 8i..8i+7 give the (shared-window) row addresses of matrix i.
// 32-bit shared addresses rather than pointers: fewer registers in the inner loop.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// The same, each matrix transposed.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// 16 bytes global -> shared, asynchronously; src_bytes = 0 writes zeros and reads nothing.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// The query rows of one block and their attention state. Rows are consecutive queries of one
// head: block row r is query q_first + r (position pos0 + q_first + r) for r < rows.
template <int D, int kSlabs, int kStages>
struct FlashRows {
    static_assert(kStages >= 3, "one barrier per tile needs a spare stage");
    using C = Config<D, kSlabs, kStages>;
    static constexpr int kS = C::kStride;
    static constexpr int kKSteps = D / 16;    // k16 steps of Q K^T
    static constexpr int kDTiles = D / 8;     // n8 tiles of the output
    static constexpr int kKeys = C::kKeys;
    static constexpr int kKeyOcts = kKeys / 8;
    static constexpr int kWarpRows = 16 * kSlabs;

    static constexpr uint32_t kTileBytes = uint32_t(C::kTileElems * sizeof(__nv_bfloat16));
    static constexpr uint32_t kRowBytes = uint32_t(kS * sizeof(__nv_bfloat16));

    uint32_t q_lane;   // shared address of this lane's ldmatrix row of the Q tile (slab 0, k 0)
    uint32_t kv_base;  // shared address of stage 0's K tile; stage i: K at 2 i, V at 2 i + 1 tiles
    const __nv_bfloat16* k_head;
    const __nv_bfloat16* v_head;
    int lane, warp, g, t;        // g, t: the mma fragment's row group and column pair
    int first_pos, key_end, window;
    int warp_first, warp_last;   // positions of this warp's first and last existing rows
    float o[kSlabs][kDTiles][4];
    float m[kSlabs][2];          // running max (log2 units); -inf before the first visible key
    float l[kSlabs][2];          // this thread's share of the running sum (quad-summed last)

    // Sets up the state of rows q_first .. q_first + rows - 1 of query head `head`; load_q then
    // fills the Q tile (after the first K/V copies are under way).
    __device__ __forceinline__ FlashRows(unsigned char* smem, const attn::KernelArgs& a, int head,
                                         int q_first, int rows) {
        auto* q_s = reinterpret_cast<__nv_bfloat16*>(smem);
        kv_base = smem_addr(smem + C::kQBytes);
        const int kv_head = head / a.group;
        const int64_t head_offset = int64_t(kv_head) * a.capacity * D;
        k_head = reinterpret_cast<const __nv_bfloat16*>(a.k_cache) + head_offset;
        v_head = reinterpret_cast<const __nv_bfloat16*>(a.v_cache) + head_offset;
        lane = threadIdx.x % kWarpSize;
        warp = threadIdx.x / kWarpSize;
        g = lane / 4;
        t = lane % 4;
        window = a.window;
        first_pos = a.pos0 + q_first;
        key_end = first_pos + rows;  // one past the last row's position
        warp_first = first_pos + min(warp * kWarpRows, rows - 1);
        warp_last = first_pos + min(warp * kWarpRows + kWarpRows - 1, rows - 1);
        q_lane = smem_addr(q_s + (warp * kWarpRows + lane % 16) * kS + (lane / 16) * 8);
#pragma unroll
        for (int sl = 0; sl < kSlabs; ++sl) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                m[sl][h] = -INFINITY;
                l[sl][h] = 0.0f;
            }
#pragma unroll
            for (int n = 0; n < kDTiles; ++n)
                o[sl][n][0] = o[sl][n][1] = o[sl][n][2] = o[sl][n][3] = 0.0f;
        }
    }

    // Stores the block's query rows as the Q tile (rows past `rows` are zero), rounded to bf16
    // and multiplied by scale * log2 e: 16-byte loads, 8-byte stores. The first barrier of
    // run_tiles orders these stores before their reads.
    __device__ __forceinline__ void load_q(unsigned char* smem, const attn::KernelArgs& a,
                                           int head, int q_first, int rows) {
        auto* q_s = reinterpret_cast<__nv_bfloat16*>(smem);
        constexpr int kVecs = D / 4;
        for (int idx = threadIdx.x; idx < C::kRows * kVecs; idx += kThreads) {
            const int r = idx / kVecs, c = (idx % kVecs) * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (r < rows) {
                const float* row = a.q + (int64_t(q_first + r) * a.heads + head) * D;
                v = *reinterpret_cast<const float4*>(row + c);
            }
            uint2 packed;
            packed.x = pack_bf16(v.x * a.scale_log2, v.y * a.scale_log2);
            packed.y = pack_bf16(v.z * a.scale_log2, v.w * a.scale_log2);
            *reinterpret_cast<uint2*>(q_s + r * kS + c) = packed;
        }
    }

    // Starts copying keys [key0, key0 + kKeys) of K and V into stage `stage`; keys outside
    // [0, key_end) are zero-filled (a zero V row keeps p * v finite for masked keys).
    __device__ __forceinline__ void issue_kv(int stage, int key0) {
        constexpr int kChunks = D / 8;  // 16-byte pieces of a row
        const uint32_t k_t = kv_base + (2 * stage) * kTileBytes;
#pragma unroll
        for (int i = 0; i < kKeys * kChunks / kThreads; ++i) {
            const int idx = threadIdx.x + i * kThreads;
            const int r = idx / kChunks, c = (idx % kChunks) * 8;
            const int key = key0 + r;
            const bool valid = key >= 0 && key < key_end;
            const int64_t at = valid ? int64_t(key) * D + c : 0;
            const uint32_t dst = k_t + r * kRowBytes + c * uint32_t(sizeof(__nv_bfloat16));
            cp_async_16(dst, k_head + at, valid ? 16 : 0);
            cp_async_16(dst + kTileBytes, v_head + at, valid ? 16 : 0);
        }
    }

    // Whether this warp's rows see none / all of the keys [key0, key0 + kKeys).
    __device__ __forceinline__ bool warp_sees_none(int key0) const {
        return key0 > warp_last || key0 >= key_end || key0 + kKeys <= 0 ||
               (window > 0 && key0 + kKeys - 1 <= warp_first - window);
    }
    __device__ __forceinline__ bool warp_sees_all(int key0) const {
        return key0 >= 0 && key0 + kKeys - 1 <= warp_first && key0 + kKeys <= key_end &&
               (window == 0 || key0 > warp_last - window);
    }

    // One tile of keys (in stage `stage`, starting at key0) for this warp's rows.
    template <bool kMasked>
    __device__ __forceinline__ void attend(int stage, int key0) {
        const uint32_t k_t = kv_base + (2 * stage) * kTileBytes;
        const uint32_t v_t = k_t + kTileBytes;

        // S = Q K^T for the warp's slabs and the tile's keys.
        float s[kSlabs][kKeyOcts][4];
#pragma unroll
        for (int sl = 0; sl < kSlabs; ++sl)
#pragma unroll
            for (int n = 0; n < kKeyOcts; ++n)
                s[sl][n][0] = s[sl][n][1] = s[sl][n][2] = s[sl][n][3] = 0.0f;
        // Byte offsets: element (row, col) of a tile is at row * kRowBytes + col * 2.
        const uint32_t k_lane =
            k_t + ((lane / 16) * 8 + lane % 8) * kRowBytes + ((lane / 8) % 2) * 16;
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
            uint32_t qa[kSlabs][4];
#pragma unroll
            for (int sl = 0; sl < kSlabs; ++sl)
                ldmatrix_x4(qa[sl], q_lane + sl * 16 * kRowBytes + kk * 32);
#pragma unroll
            for (int p = 0; p < kKeyOcts / 2; ++p) {
                uint32_t kb[4];  // key octets 2p (kb 0, 1) and 2p + 1 (kb 2, 3), k16 step kk
                ldmatrix_x4(kb, k_lane + p * 16 * kRowBytes + kk * 32);
#pragma unroll
                for (int sl = 0; sl < kSlabs; ++sl) {
                    mma_bf16(s[sl][2 * p], qa[sl], kb[0], kb[1]);
                    mma_bf16(s[sl][2 * p + 1], qa[sl], kb[2], kb[3]);
                }
            }
        }

        if constexpr (kMasked) {
            // Positions of this thread's rows (recomputed here, which saves registers in the
            // unmasked loop); padded rows past the last take its position (never written).
            const int last_pos = key_end - 1;
#pragma unroll
            for (int sl = 0; sl < kSlabs; ++sl)
#pragma unroll
                for (int n = 0; n < kKeyOcts; ++n)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = key0 + n * 8 + 2 * t + (e & 1);
                        const int p = min(first_pos + warp * kWarpRows + sl * 16 + g + 8 * (e / 2),
                                          last_pos);
                        const bool visible = key >= 0 && key < key_end && key <= p &&
                                             (window == 0 || key > p - window);
                        if (!visible) s[sl][n][e] = -INFINITY;
                    }
        }

        // Online softmax in exp2; a row's scores are spread over the 4 lanes of its quad.
#pragma unroll
        for (int sl = 0; sl < kSlabs; ++sl) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float mx = m[sl][h];
#pragma unroll
                for (int n = 0; n < kKeyOcts; ++n)
                    mx = fmaxf(mx, fmaxf(s[sl][n][2 * h], s[sl][n][2 * h + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
                // A row that has seen no visible key yet keeps m = -inf: subtract 0 then, so
                // that exp2(-inf) gives 0 rather than NaN.
                const float ref = mx == -INFINITY ? 0.0f : mx;
                const float alpha = fast_exp2(m[sl][h] - ref);
                m[sl][h] = mx;
                float sum = 0.0f;
#pragma unroll
                for (int n = 0; n < kKeyOcts; ++n) {
                    s[sl][n][2 * h] = fast_exp2(s[sl][n][2 * h] - ref);
                    s[sl][n][2 * h + 1] = fast_exp2(s[sl][n][2 * h + 1] - ref);
                    sum += s[sl][n][2 * h] + s[sl][n][2 * h + 1];
                }
                l[sl][h] = l[sl][h] * alpha + sum;
#pragma unroll
                for (int n = 0; n < kDTiles; ++n) {
                    o[sl][n][2 * h] *= alpha;
                    o[sl][n][2 * h + 1] *= alpha;
                }
            }
        }

        // O += P V, 16 keys at a time. One ldmatrix.trans gives keys 0-7 / 8-15 of the step
        // times columns d0..d0+7 and d0+8..d0+15: registers 0, 1 are the B fragment of d tile
        // 2 dd, registers 2, 3 of 2 dd + 1.
        const uint32_t v_lane =
            v_t + ((lane % 8) + ((lane / 8) % 2) * 8) * kRowBytes + (lane / 16) * 16;
#pragma unroll
        for (int kk = 0; kk < kKeys / 16; ++kk) {
            uint32_t pa[kSlabs][4];
#pragma unroll
            for (int sl = 0; sl < kSlabs; ++sl) {
                pa[sl][0] = pack_bf16(s[sl][2 * kk][0], s[sl][2 * kk][1]);
                pa[sl][1] = pack_bf16(s[sl][2 * kk][2], s[sl][2 * kk][3]);
                pa[sl][2] = pack_bf16(s[sl][2 * kk + 1][0], s[sl][2 * kk + 1][1]);
                pa[sl][3] = pack_bf16(s[sl][2 * kk + 1][2], s[sl][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dd = 0; dd < kDTiles / 2; ++dd) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, v_lane + kk * 16 * kRowBytes + dd * 32);
#pragma unroll
                for (int sl = 0; sl < kSlabs; ++sl) {
                    mma_bf16(o[sl][2 * dd], pa[sl], b[0], b[1]);
                    mma_bf16(o[sl][2 * dd + 1], pa[sl], b[2], b[3]);
                }
            }
        }
    }

    // The pipeline's prologue: starts the copies of tiles 0 .. kStages - 2 (one commit group
    // each, empty past the last tile). Tile i starts at key key0_of(i), a pure function of i,
    // uniform over the block.
    template <class KeyOf>
    __device__ __forceinline__ void prefetch(int tiles, KeyOf key0_of) {
#pragma unroll
        for (int i = 0; i < kStages - 1; ++i) {
            if (i < tiles) issue_kv(i, key0_of(i));
            cp_async_commit();
        }
    }

    // Visits the `tiles` tiles (after prefetch and load_q), keeping kStages - 1 copies in flight.
    template <class KeyOf>
    __device__ __forceinline__ void run_tiles(int tiles, KeyOf key0_of) {
        int stage = 0;
        for (int i = 0; i < tiles; ++i) {
            // Groups committed so far: tiles 0 .. i + kStages - 2 (some possibly empty); all but
            // the newest kStages - 2 done means tile i has landed. The barrier publishes it to
            // every warp and says every warp is done with tile i - 1, whose stage the copy of
            // tile i + kStages - 1 now refills.
            cp_async_wait<kStages - 2>();
            __syncthreads();
            const int ahead = i + kStages - 1;
            if (ahead < tiles) issue_kv(stage == 0 ? kStages - 1 : stage - 1, key0_of(ahead));
            cp_async_commit();  // possibly empty: the group count stays uniform
            const int key0 = key0_of(i);
            if (warp_sees_all(key0)) attend<false>(stage, key0);
            else if (!warp_sees_none(key0)) attend<true>(stage, key0);
            stage = stage == kStages - 1 ? 0 : stage + 1;
        }
        cp_async_wait<0>();
    }

    // Writes the rows that exist: out [n_new, heads, D] and lse [n_new, heads] (natural log;
    // optional). A row that saw no key (only possible with an invalid sparse plan) gets zeros
    // and lse = -inf.
    __device__ __forceinline__ void store(const attn::KernelArgs& a, int head, int q_first,
                                          int rows) {
#pragma unroll
        for (int sl = 0; sl < kSlabs; ++sl) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float sum = l[sl][h];
                sum += __shfl_xor_sync(kFullMask, sum, 1);
                sum += __shfl_xor_sync(kFullMask, sum, 2);
                const int row = warp * kWarpRows + sl * 16 + g + 8 * h;
                if (row >= rows) continue;
                const int64_t at = int64_t(q_first + row) * a.heads + head;
                const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
                float* dst = a.out + at * D + 2 * t;
#pragma unroll
                for (int n = 0; n < kDTiles; ++n)
                    *reinterpret_cast<float2*>(dst + n * 8) =
                        make_float2(o[sl][n][2 * h] * inv, o[sl][n][2 * h + 1] * inv);
                if (a.lse != nullptr && t == 0)
                    a.lse[at] = sum > 0.0f ? (m[sl][h] + __log2f(sum)) * attn::kLn2 : -INFINITY;
            }
        }
    }
};

// Alignment the kernels need: 16-byte rows for cp.async, float4 Q loads, float2 stores.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace tdm::cuda::flash
