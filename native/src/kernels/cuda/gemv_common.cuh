// What the two GEMV kernels share (gemv.cu: a warp per weight row on the CUDA cores, for the
// one-to-four rows of a decode step; gemv_tiles.cu: tensor-core tiles for up to 16 rows): the
// launch arguments, the streaming weight load, where a row of the concatenated outputs lives, and
// the epilogues, so that both kernels store, add, gate and rotate with one formula.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"

namespace tdm::cuda::gemv_detail {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kElems = 8;  // bf16 per 16-byte load

struct Params {
    const float* x;
    int64_t ldx;
    int K;
    int count;                   // matrices: the plain kernel's outputs, or gate and up
    const uint16_t* norm;        // bf16 [K] RMSNorm weight, or null: x is used as it is
    float eps;
    bool accumulate;             // y += result (plain kernel)
    bool early_successor;        // trigger the successor right after the wait (see below)
    bool evict_first;            // the weights' L2 policy (weight_policy)
    QkvRope rope;                // the rope-and-append epilogue's arguments (kRope only)
    const uint16_t* w[kGemvMaxOutputs];
    const uint16_t* b[kGemvMaxOutputs];
    float* y[kGemvMaxOutputs];
    int64_t ldy[kGemvMaxOutputs];
    int64_t rows[kGemvMaxOutputs];
};

// What a launch computes. kPlain: rows of the concatenated outputs, stored or added into y.
// kGated: gate row r and up row r, silu(gate) * up stored. kRope: q, k, v (the three outputs,
// rows head * D + d) by row pairs - d and d + D/2 of one head, the pair RoPE rotates - with q
// rotated into y[0] and k (rotated) and v appended to the layer's bf16 KV cache instead of being
// stored: the projection, rope and the append in one launch.
enum class Mode { kPlain, kGated, kRope };

template <Mode kMode>
constexpr int kMatsOf = kMode == Mode::kPlain ? 1 : 2;

// When a GEMV lets its successor be scheduled (overlap.cuh): right after its own wait, so the
// successor launches and prefetches its weights while this kernel's blocks drain, or at the end of
// its streaming loop. PDL launches the successor only once every block of this grid has triggered
// or exited, so an early trigger never takes slots from this grid's own blocks; early for grids of
// one wave measured best on the 1B decode step (H100: 899 tok/s against 895 late everywhere and
// 896 early everywhere). TANDEM_GEMV_EARLY_SUCCESSOR: "0" late everywhere, "all" early
// everywhere, default early for grids resident at once (one wave) - an A/B switch for timing.
enum class EarlySuccessor { kNever, kOneWave, kAlways };
inline EarlySuccessor early_successor_rule() {
    static const EarlySuccessor rule = [] {
        const char* v = std::getenv("TANDEM_GEMV_EARLY_SUCCESSOR");
        const std::string s = v == nullptr ? "" : v;
        return s == "0" ? EarlySuccessor::kNever
                        : s == "all" ? EarlySuccessor::kAlways : EarlySuccessor::kOneWave;
    }();
    return rule;
}
inline bool early_successor(bool one_wave) {
    const EarlySuccessor r = early_successor_rule();
    return r == EarlySuccessor::kAlways || (r == EarlySuccessor::kOneWave && one_wave);
}

// The L2 policy of the weight loads. A pass reads every weight once and the next pass is too far
// away for L2 to keep any, so the weights are marked evict-first: L2 then keeps what the step
// does reread (the KV cache the attention reads every step, the activations) instead of weights.
// TANDEM_GEMV_L2_EVICT_FIRST=0 loads them evict-normal (A/B timing).
inline bool weights_evict_first() {
    static const bool enabled = [] {
        const char* v = std::getenv("TANDEM_GEMV_L2_EVICT_FIRST");
        return v == nullptr || std::string(v) != "0";
    }();
    return enabled;
}

__device__ __forceinline__ uint64_t weight_policy(bool evict_first) {
    uint64_t policy;
    if (evict_first)
        asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    else
        asm("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
    return policy;
}

// Streaming load: every weight is read once per pass, so it bypasses L1; `policy` is
// weight_policy's.
__device__ __forceinline__ uint4 load_weights(const uint4* p, uint64_t policy) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p), "l"(policy));
    return v;
}

// Unit u of the concatenated outputs (a row, or a row pair for kRope: per = 2) as (output, unit
// within it): returns the output and leaves the local unit in u, which is past that output's end
// when u was past the last one.
__device__ __forceinline__ int locate(const Params& p, int64_t& u, int per) {
    int seg = 0;
    while (seg + 1 < p.count && u >= p.rows[seg] / per) u -= p.rows[seg++] / per;
    return seg;
}

// The first row of RoPE pair `pair` of an output: element i of head h pairs with i + D/2.
__device__ __forceinline__ int64_t pair_row(const Params& p, int64_t pair) {
    const int half = p.rope.head_dim / 2;
    return pair / half * p.rope.head_dim + pair % half;
}

// The epilogues, for input row m: the sum over k (v, without bias) of output row r of output seg.
__device__ __forceinline__ void store_plain(const Params& p, int m, int seg, int64_t r, float v) {
    if (p.b[seg] != nullptr) v += bf16_to_float(p.b[seg][r]);
    float* y = p.y[seg] + m * p.ldy[seg] + r;
    *y = p.accumulate ? *y + v : v;
}

__device__ __forceinline__ void store_gated(const Params& p, int m, int64_t r, float g, float u) {
    if (p.b[0] != nullptr) g += bf16_to_float(p.b[0][r]);
    if (p.b[1] != nullptr) u += bf16_to_float(p.b[1][r]);
    p.y[0][m * p.ldy[0] + r] = g / (1.0f + expf(-g)) * u;  // swiglu's formula
}

// Rows r0 and r0 + D/2 of q (seg 0), k (1) or v (2) at position pos0 + m: rope_store_kernel's
// rotation for q and k, then q stored, k and v appended to the caches as bf16.
__device__ __forceinline__ void store_rope(const Params& p, int m, int seg, int64_t r0, float v0,
                                           float v1) {
    const QkvRope& q = p.rope;
    const int D = q.head_dim, half = D / 2;
    if (p.b[seg] != nullptr) {
        v0 += bf16_to_float(p.b[seg][r0]);
        v1 += bf16_to_float(p.b[seg][r0 + half]);
    }
    const int64_t pos = (q.pos_dev != nullptr ? *q.pos_dev : q.pos0) + m;
    const int head = int(r0 / D), i = int(r0 % D);
    if (seg < 2) {
        float sn, cs;
        sincosf(__fmul_rn(float(pos), q.inv_freq[i]), &sn, &cs);
        const float a = v0, b = v1;
        v0 = a * cs - b * sn;
        v1 = b * cs + a * sn;
    }
    if (seg == 0) {
        p.y[0][m * p.ldy[0] + r0] = v0;
        p.y[0][m * p.ldy[0] + r0 + half] = v1;
    } else {
        uint16_t* cache = seg == 1 ? q.k_cache : q.v_cache;
        const int64_t at = (int64_t(head) * q.capacity + pos) * D + i;
        cache[at] = float_to_bf16(v0);
        cache[at + half] = float_to_bf16(v1);
    }
}

// The tensor-core kernel's launcher (gemv_tiles.cu): `units` are its 8-row tiles (kRope: 4 row
// pairs). gemv_tiles_fits says which shapes it takes.
template <Mode kMode>
void launch_tiles(const Params& p, int64_t M, int64_t units, cudaStream_t stream,
                  const char* name);
bool gemv_tiles_fits(int64_t M, int64_t K);

}  // namespace tdm::cuda::gemv_detail
