// Matrix-vector products for the few rows of a decode step. A decode step reads every weight once
// for one token, so it runs at the speed HBM streams the weights, plus whatever fixed cost each
// kernel adds: cuBLAS needs the activations rounded to bf16 in a pass of their own (a launch per
// product), one launch per matrix, and the sub-layer's RMSNorm and residual add in kernels of
// their own. Here one launch does a whole projection step. Two kernels (kernels.h: GemvKernel):
// the rows kernel below, a warp per weight row on the CUDA cores, for 1..4 input rows of a
// modest K (the decode step's kernel), and the tensor-core tiles kernel (gemv_tiles.cu) for up
// to 16 rows of any K the models have. The rows kernel:
//   - prologue: the first weights are requested before the predecessor kernel has finished
//     (overlap.cuh); then the block stages its input x in shared memory as bf16 - normalised on
//     the way (rmsnorm(x) * w, the sub-layer's norm) when asked, rounded exactly as
//     round_to_bf16 would - so no warp rounds or re-reads x from L2;
//   - main loop: each warp streams one weight row (or a slice of one when there are too few rows
//     to fill the GPU) with 16-byte loads that bypass L1, the next batch in flight while the
//     current one is multiplied, f32 accumulation;
//   - epilogue (gemv_common.cuh, shared with the tiles kernel): bias; then store, add into y (the
//     residual stream), for the gate/up pair silu(gate) * up, or for q, k, v RoPE and the
//     KV-cache append (Mode). Every matrix that reads the same input goes in one launch.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/gemv_common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"
#include "kernels/cuda/overlap.cuh"

namespace tdm::cuda {
namespace {

using namespace gemv_detail;

// Warps to start: about one wave at two blocks per SM on a 132-SM H100. Fewer rows than that
// are cut into slices of K (see slices_for).
constexpr int64_t kTargetWarps = 2048;
// The rows kernel stages its whole input: M * K bf16 within the 48 KB default.
constexpr int64_t kRowsMaxInputElements = 20480;

// The 8 bf16 of a 16-byte word as floats (element 2i is the low half of word i).
__device__ __forceinline__ void widen8(const uint4& w, float (&out)[kElems]) {
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out[2 * i] = __uint_as_float(words[i] << 16);
        out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
}

// What a warp does: one weight row (two for the gated kernel: gate and up), chunks [c_begin,
// c_end) of it. A slice 0 warp finishes its row.
struct WarpTask {
    int64_t row;  // in the concatenation of the outputs; past the end: no work
    int slice;
    int c_begin, c_end;
};

__device__ __forceinline__ WarpTask warp_task(int slices, int K) {
    const int warp = threadIdx.x / kWarpSize;
    const int chunks = K / kElems;
    const int per = (chunks + slices - 1) / slices;
    WarpTask t;
    t.row = int64_t(blockIdx.x) * (kWarps / slices) + warp / slices;
    t.slice = warp % slices;
    t.c_begin = min(chunks, t.slice * per);
    t.c_end = min(chunks, t.c_begin + per);
    return t;
}

// Float4 loads of x (and the norm weight's 4-element words) a thread issues together in
// stage_input: K up to kHeld * 4 * kThreads (8,192) is one round trip to L2 per pass, where a
// loop that used each load at once paid one per iteration (8 for the 1B down projection, whose
// staging then sat between the first weight batch and the first multiply).
constexpr int kHeld = 8;
constexpr int kRound = kHeld * 4 * kThreads;  // elements of a row one round covers

// Loads this thread's float4s of round k0 (elements k0 + j * 4 * kThreads); past K: zeros.
__device__ __forceinline__ void load_round(const float* xr, int k0, int K, float4 (&v)[kHeld]) {
#pragma unroll
    for (int j = 0; j < kHeld; ++j) {
        const int k = k0 + j * 4 * kThreads;
        v[j] = k < K ? *reinterpret_cast<const float4*>(xr + k) : make_float4(0, 0, 0, 0);
    }
}

// Stages x [M, K] in shared memory as bf16: bf16(x) or, with a norm, bf16(x * inv_rms * w) with
// inv_rms = rsqrt(mean(x^2) + eps) per row (the formula of rmsnorm_kernel, the same roundings in
// the same order as before the loads were batched). Whole block.
template <int M>
__device__ __forceinline__ void stage_input(const Params& p, uint16_t* xs) {
    __shared__ float scratch[kWarpSize];
    const int K = p.K;
    const bool norm = p.norm != nullptr;
    const bool one_round = K <= kRound;  // the norm's second pass reuses the registers
#pragma unroll
    for (int m = 0; m < M; ++m) {
        const float* xr = p.x + m * p.ldx;
        float4 v[kHeld];
        float inv = 1.0f;
        if (norm) {
            float ss = 0.0f;
            for (int k0 = threadIdx.x * 4; k0 < K; k0 += kRound) {
                load_round(xr, k0, K, v);
#pragma unroll
                for (int j = 0; j < kHeld; ++j)
                    ss += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
            }
            inv = rsqrtf(block_sum(ss, scratch) / float(K) + p.eps);
        }
        for (int k0 = threadIdx.x * 4; k0 < K; k0 += kRound) {
            if (!(norm && one_round)) load_round(xr, k0, K, v);
            uint2 g[kHeld];
            if (norm) {
#pragma unroll
                for (int j = 0; j < kHeld; ++j) {
                    const int k = k0 + j * 4 * kThreads;
                    g[j] = k < K ? *reinterpret_cast<const uint2*>(p.norm + k) : make_uint2(0, 0);
                }
            }
#pragma unroll
            for (int j = 0; j < kHeld; ++j) {
                const int k = k0 + j * 4 * kThreads;
                if (k >= K) break;
                float4 x = v[j];
                if (norm) {
                    x.x = x.x * inv * __uint_as_float(g[j].x << 16);
                    x.y = x.y * inv * __uint_as_float(g[j].x & 0xffff0000u);
                    x.z = x.z * inv * __uint_as_float(g[j].y << 16);
                    x.w = x.w * inv * __uint_as_float(g[j].y & 0xffff0000u);
                }
                const uint2 packed{
                    uint32_t(float_to_bf16(x.x)) | uint32_t(float_to_bf16(x.y)) << 16,
                    uint32_t(float_to_bf16(x.z)) | uint32_t(float_to_bf16(x.w)) << 16};
                *reinterpret_cast<uint2*>(xs + m * K + k) = packed;
            }
        }
    }
    __syncthreads();
}

// kBatch chunks of each of kMats rows, starting at chunk c (lane-strided by 32); past c_end: 0.
template <int kMats, int kBatch>
__device__ __forceinline__ void load_batch(uint4 (&dst)[kMats][kBatch],
                                           const uint16_t* const (&rows)[kMats], int c,
                                           int c_end, uint64_t policy) {
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
        const int at = c + u * kWarpSize;
#pragma unroll
        for (int t = 0; t < kMats; ++t)
            dst[t][u] = at < c_end ? load_weights(reinterpret_cast<const uint4*>(rows[t]) + at,
                                                  policy)
                                   : make_uint4(0, 0, 0, 0);
    }
}

// acc[t][m] += the batch's weights times the staged x.
template <int M, int kMats, int kBatch>
__device__ __forceinline__ void multiply_batch(const uint4 (&wv)[kMats][kBatch],
                                               const uint16_t* xs, int K, int c, int c_end,
                                               float (&acc)[kMats][M]) {
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
        const int at = c + u * kWarpSize;
        if (at >= c_end) continue;
        float wf[kMats][kElems];
#pragma unroll
        for (int t = 0; t < kMats; ++t) widen8(wv[t][u], wf[t]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
            float xf[kElems];
            widen8(*reinterpret_cast<const uint4*>(xs + m * K + at * kElems), xf);
#pragma unroll
            for (int t = 0; t < kMats; ++t)
#pragma unroll
                for (int e = 0; e < kElems; ++e) acc[t][m] = fmaf(wf[t][e], xf[e], acc[t][m]);
        }
    }
}

// Adds the slices of every row of the block into the warps of slice 0 (all threads call it).
template <int M, int kMats>
__device__ __forceinline__ void sum_slices(float (&acc)[kMats][M], int slices) {
    __shared__ float partial[kWarps][kMats][M];
    if (slices == 1) return;
    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    if (lane == 0) {
#pragma unroll
        for (int t = 0; t < kMats; ++t)
#pragma unroll
            for (int m = 0; m < M; ++m) partial[warp][t][m] = acc[t][m];
    }
    __syncthreads();
    if (warp % slices == 0) {
#pragma unroll
        for (int t = 0; t < kMats; ++t)
#pragma unroll
            for (int m = 0; m < M; ++m) {
                float v = partial[warp][t][m];
                for (int s = 1; s < slices; ++s) v += partial[warp + s][t][m];
                acc[t][m] = v;
            }
    }
}

template <int M, Mode kMode>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(Params p, int slices) {
    constexpr int kMats = kMatsOf<kMode>;
    extern __shared__ uint16_t xs[];  // [M][K]
    // Loads in flight per lane: two batches of 8 (one row) or 4 (two rows) chunks per row.
    constexpr int kBatch = kMats == 1 ? 8 : 4;
    const int lane = threadIdx.x % kWarpSize;
    const WarpTask task = warp_task(slices, p.K);

    // This warp's unit (a row, or a row pair for kRope), the output it falls in, its rows.
    constexpr int kUnitRows = kMode == Mode::kRope ? 2 : 1;
    int64_t unit = task.row;
    const int seg = kMode == Mode::kGated ? 0 : locate(p, unit, kUnitRows);
    const bool valid = unit < p.rows[seg] / kUnitRows;
    int64_t r[kMats];
    if (kMode == Mode::kRope) {
        r[0] = pair_row(p, unit);
        r[kMats - 1] = r[0] + p.rope.head_dim / 2;
    } else {
#pragma unroll
        for (int t = 0; t < kMats; ++t) r[t] = unit;
    }
    const uint16_t* rows[kMats];
#pragma unroll
    for (int t = 0; t < kMats; ++t)
        rows[t] = p.w[kMode == Mode::kGated ? t : seg] + (valid ? r[t] : 0) * p.K;

    uint4 cur[kMats][kBatch], next[kMats][kBatch];
    const int step = kWarpSize * kBatch;
    int c = task.c_begin + lane;
    const int c_end = valid ? task.c_end : 0;
    const uint64_t policy = weight_policy(p.evict_first);
    load_batch(cur, rows, c, c_end, policy);  // weights depend on nothing: before the wait
    wait_for_predecessor();
    if (p.early_successor) allow_successor();
    stage_input<M>(p, xs);

    float acc[kMats][M] = {};
    for (; c < c_end; c += step) {
        load_batch(next, rows, c + step, c_end, policy);
        multiply_batch<M>(cur, xs, p.K, c, c_end, acc);
#pragma unroll
        for (int t = 0; t < kMats; ++t)
#pragma unroll
            for (int u = 0; u < kBatch; ++u) cur[t][u] = next[t][u];
    }
    if (!p.early_successor) allow_successor();
#pragma unroll
    for (int t = 0; t < kMats; ++t)
#pragma unroll
        for (int m = 0; m < M; ++m) acc[t][m] = warp_sum(acc[t][m]);
    sum_slices<M, kMats>(acc, slices);
    if (!valid || task.slice != 0 || lane >= M) return;

    // Lane m writes input row m.
    float v[kMats];
#pragma unroll
    for (int t = 0; t < kMats; ++t) {
        v[t] = acc[t][0];
#pragma unroll
        for (int m = 1; m < M; ++m) v[t] = lane == m ? acc[t][m] : v[t];
    }
    if (kMode == Mode::kGated)
        store_gated(p, lane, unit, v[0], v[kMats - 1]);
    else if (kMode == Mode::kPlain)
        store_plain(p, lane, seg, unit, v[0]);
    else
        store_rope(p, lane, seg, r[0], v[0], v[kMats - 1]);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Slices of K per row (1, 2, 4 or 8): the most that keep the grid within kTargetWarps (one wave:
// a partial second wave starts only as the first drains, a second round of load latency), while
// every slice keeps at least two chunks per lane.
int slices_for(int64_t rows, int64_t K) {
    int slices = 1;
    while (slices < kWarps && rows * slices * 2 <= kTargetWarps &&
           K / kElems / (2 * slices) >= 2 * kWarpSize)
        slices *= 2;
    return slices;
}

// Checks one output and adds it to p.
void add_output(Params& p, const Projection& o, int64_t K, const char* kernel) {
    require_bf16(o.weight.dtype, kernel, "the weight matrix");
    if (!o.bias.empty()) require_bf16(o.bias.dtype, kernel, "the bias");
    TDM_REQUIRE(o.weight.cols == K && (o.bias.empty() || o.bias.size == o.weight.rows) &&
                    o.ldy >= o.weight.rows && o.weight.rows > 0 && o.y != nullptr,
                TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": a " + std::to_string(o.weight.rows) + " x " +
                    std::to_string(o.weight.cols) + " weight does not fit input rows of " +
                    std::to_string(K) + ", its bias or its output stride " +
                    std::to_string(o.ldy));
    TDM_REQUIRE(aligned16(o.weight.data), TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": weights not 16-byte aligned (see gemv_supports)");
    const int i = p.count++;
    p.w[i] = static_cast<const uint16_t*>(o.weight.data);
    p.b[i] = static_cast<const uint16_t*>(o.bias.data);
    p.y[i] = o.y;
    p.ldy[i] = o.ldy;
    p.rows[i] = o.weight.rows;
}

Params input_params(const LayerInput& in, int64_t K, const char* kernel) {
    TDM_REQUIRE(gemv_supports(in.x, in.M, in.ldx, K), TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": M " + std::to_string(in.M) + ", K " + std::to_string(K) +
                    ", row stride " + std::to_string(in.ldx) +
                    " or x alignment unsupported (see gemv_supports)");
    Params p{};
    p.x = in.x;
    p.ldx = in.ldx;
    p.K = int(K);
    if (!in.norm.empty()) {
        require_bf16(in.norm.dtype, kernel, "the norm weight");
        TDM_REQUIRE(in.norm.size == K && aligned16(in.norm.data), TDM_ERR_INVALID_ARGUMENT,
                    std::string(kernel) + ": the norm weight has " +
                        std::to_string(in.norm.size) + " elements for rows of " +
                        std::to_string(K));
        p.norm = static_cast<const uint16_t*>(in.norm.data);
        p.eps = in.eps;
    }
    return p;
}

template <Mode kMode>
void launch_rows(const Params& p, int64_t M, int64_t units, cudaStream_t stream,
                 const char* name) {
    const int slices = slices_for(units, p.K);
    const int64_t per_block = kWarps / slices;
    const int64_t blocks = (units + per_block - 1) / per_block;
    TDM_REQUIRE(blocks <= INT_MAX, TDM_ERR_INVALID_ARGUMENT,
                std::string(name) + ": too many output rows");
    const size_t smem = size_t(M) * size_t(p.K) * sizeof(uint16_t);
    Params q = p;
    q.early_successor = early_successor(blocks * kWarps <= kTargetWarps);
    q.evict_first = weights_evict_first();
    auto go = [&](auto kernel) {
        launch_overlapped(name, kernel, dim3(unsigned(blocks)), dim3(kThreads), smem, stream, q,
                          slices);
    };
    switch (M) {
        case 1: go(gemv_kernel<1, kMode>); break;
        case 2: go(gemv_kernel<2, kMode>); break;
        case 3: go(gemv_kernel<3, kMode>); break;
        default: go(gemv_kernel<4, kMode>); break;
    }
}

bool rows_fit(int64_t M, int64_t K) {
    return M >= 1 && M <= kGemvRowsKernelMaxRows && K > 0 && K % kElems == 0 &&
           M * K <= kRowsMaxInputElements;
}

// Runs `units` rows (a warp each; kRope: row pairs) on the kernel asked for or, for kAuto, on
// gemv_kernel_for's choice; the tiles kernel takes them 8 rows (4 pairs) a tile.
template <Mode kMode>
void launch(const Params& p, int64_t M, int64_t units, GemvKernel kernel, cudaStream_t stream,
            const char* what) {
    if (kernel == GemvKernel::kAuto) kernel = gemv_kernel_for(M, p.K);
    if (kernel == GemvKernel::kRows) {
        TDM_REQUIRE(rows_fit(M, p.K), TDM_ERR_INVALID_ARGUMENT,
                    std::string(what) + ": " + std::to_string(M) + " rows of " +
                        std::to_string(p.K) + " do not fit the rows kernel (M <= " +
                        std::to_string(kGemvRowsKernelMaxRows) + ", M * K <= " +
                        std::to_string(kRowsMaxInputElements) + ")");
        launch_rows<kMode>(p, M, units, stream, "launch of gemv_kernel");
    } else {
        const int64_t per_tile = kMode == Mode::kRope ? 4 : 8;
        launch_tiles<kMode>(p, M, (units + per_tile - 1) / per_tile, stream,
                            "launch of gemv_tiles_kernel");
    }
}

}  // namespace

bool gemv_supports(const float* x, int64_t M, int64_t ldx, int64_t K) {
    // The tiles kernel takes every shape the rows kernel takes, and more.
    return gemv_tiles_fits(M, K) && ldx >= K && ldx % 4 == 0 && aligned16(x);
}

// The rows kernel streams each weight row once per input row's dot product set and its cost grows
// with M; the tiles kernel's mma covers up to 16 rows at one price. Measured on an H100
// (tandem_cuda_gemv_bench, 1B and 8B projections): rows wins at M = 1 (e.g. 8B q/k/v 20.6 vs
// 26.0 us) and mostly at M = 2, tiles from M = 4 on (8B gate/up 90 vs 100 us, the 1B vocabulary
// 204 vs 382 us), so M >= 3 takes the tiles kernel.
bool gemv_rows_kernel_fits(int64_t M, int64_t K) { return rows_fit(M, K); }

GemvKernel gemv_kernel_for(int64_t M, int64_t K) {
    return M <= 2 && rows_fit(M, K) ? GemvKernel::kRows : GemvKernel::kTiles;
}

void gemv(const LayerInput& in, const Projection* outputs, int count, bool accumulate,
          cudaStream_t stream, GemvKernel kernel) {
    TDM_REQUIRE(count >= 1 && count <= kGemvMaxOutputs, TDM_ERR_INVALID_ARGUMENT,
                "gemv: " + std::to_string(count) + " outputs (1.." +
                    std::to_string(kGemvMaxOutputs) + ")");
    const int64_t K = outputs[0].weight.cols;
    Params p = input_params(in, K, "gemv");
    p.accumulate = accumulate;
    int64_t rows = 0;
    for (int i = 0; i < count; ++i) {
        add_output(p, outputs[i], K, "gemv");
        rows += outputs[i].weight.rows;
    }
    launch<Mode::kPlain>(p, in.M, rows, kernel, stream, "gemv");
}

void gemv_gated(const LayerInput& in, const MatrixView& w_gate, const VectorView& b_gate,
                const MatrixView& w_up, const VectorView& b_up, float* out, int64_t ldo,
                cudaStream_t stream, GemvKernel kernel) {
    const int64_t K = w_gate.cols;
    Params p = input_params(in, K, "gemv_gated");
    add_output(p, Projection{w_gate, b_gate, out, ldo}, K, "gemv_gated");
    add_output(p, Projection{w_up, b_up, out, ldo}, K, "gemv_gated");
    TDM_REQUIRE(w_up.rows == w_gate.rows, TDM_ERR_INVALID_ARGUMENT,
                "gemv_gated: gate has " + std::to_string(w_gate.rows) + " rows, up " +
                    std::to_string(w_up.rows));
    launch<Mode::kGated>(p, in.M, w_gate.rows, kernel, stream, "gemv_gated");
}

void gemv_qkv_rope(const LayerInput& in, const Projection (&qkv)[3], const QkvRope& rope,
                   cudaStream_t stream, GemvKernel kernel) {
    const int64_t K = qkv[0].weight.cols, D = rope.head_dim;
    Params p = input_params(in, K, "gemv_qkv_rope");
    for (const Projection& o : qkv) add_output(p, o, K, "gemv_qkv_rope");
    TDM_REQUIRE(D > 0 && D % 2 == 0 && rope.inv_freq && rope.k_cache && rope.v_cache &&
                    qkv[0].weight.rows % D == 0 && qkv[1].weight.rows % D == 0 &&
                    qkv[2].weight.rows == qkv[1].weight.rows,
                TDM_ERR_INVALID_ARGUMENT,
                "gemv_qkv_rope: head_dim " + std::to_string(D) + " must be even and divide the " +
                    "q and k rows (" + std::to_string(qkv[0].weight.rows) + ", " +
                    std::to_string(qkv[1].weight.rows) + "), v like k, and the rope table and " +
                    "caches given");
    TDM_REQUIRE(rope.pos0 >= 0 && rope.pos0 + in.M <= rope.capacity, TDM_ERR_INVALID_ARGUMENT,
                "gemv_qkv_rope: positions " + std::to_string(rope.pos0) + ".." +
                    std::to_string(rope.pos0 + in.M) + " do not fit the cache capacity " +
                    std::to_string(rope.capacity));
    p.rope = rope;
    const int64_t pairs = (qkv[0].weight.rows + 2 * qkv[1].weight.rows) / 2;
    launch<Mode::kRope>(p, in.M, pairs, kernel, stream, "gemv_qkv_rope");
}

}  // namespace tdm::cuda
