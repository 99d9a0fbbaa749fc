// Matrix-vector products for the few rows of a decode step. A decode step reads every weight once
// for one token, so it runs at the speed HBM streams the weights; cuBLAS needs the activations
// rounded to bf16 in a separate pass first (one extra launch per product), and one launch per
// matrix. Here each warp streams a few weight rows, or slices of them when there are too few rows
// to fill the GPU (16-byte loads that bypass L1, four per row in flight per lane), and multiplies
// them with every input row, which it reads through L1 (all warps of a block
// share it) and rounds to bf16 in registers exactly as round_to_bf16 would; accumulation is f32.
// One launch covers every matrix that reads the same input (q, k and v), or the gate/up pair with
// SwiGLU applied in the epilogue.
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"
#include "kernels/cuda/overlap.cuh"

namespace tdm::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kElems = 8;                            // bf16 per 16-byte load

struct Params {
    const float* x;
    int64_t ldx;
    int K;
    int count;  // matrices: the plain kernel's outputs, or gate and up for the gated one
    const uint16_t* w[kGemvMaxOutputs];
    const uint16_t* b[kGemvMaxOutputs];
    float* y[kGemvMaxOutputs];
    int64_t ldy[kGemvMaxOutputs];
    int64_t rows[kGemvMaxOutputs];
};

// Streaming load: the weights are read once per step, so they should not evict x from L1.
__device__ __forceinline__ uint4 load_weights(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

__device__ __forceinline__ float round_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

// acc += the 8 bf16 of w (element 2i in the low half of word i) times xs[0..8).
__device__ __forceinline__ float dot8(const uint4& w, const float (&xs)[kElems], float acc) {
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        acc = fmaf(__uint_as_float(words[i] << 16), xs[2 * i], acc);
        acc = fmaf(__uint_as_float(words[i] & 0xffff0000u), xs[2 * i + 1], acc);
    }
    return acc;
}

// acc[t][m] = this lane's share of sum_k bf16(x[m, k]) * rows[t][k] over the 8-element chunks
// [c_begin, c_end) of kMats weight rows, then summed over the warp (every lane gets the sums).
// 16-byte weight loads in flight per lane and row: 8 per lane in all, at most 128 registers so
// that two blocks fit an SM (16 warps, 64 KB of loads outstanding per SM).
template <int kMats>
constexpr int kUnroll = kMats >= 4 ? 2 : 4;

template <int M, int kMats>
__device__ __forceinline__ void dot_rows(const uint16_t* const (&rows)[kMats], const float* x,
                                         int64_t ldx, int c_begin, int c_end, int lane,
                                         float (&acc)[kMats][M]) {
    for (int c0 = c_begin + lane; c0 < c_end; c0 += kWarpSize * kUnroll<kMats>) {
        uint4 wv[kMats][kUnroll<kMats>];
#pragma unroll
        for (int u = 0; u < kUnroll<kMats>; ++u) {
            const int c = c0 + u * kWarpSize;
#pragma unroll
            for (int t = 0; t < kMats; ++t)
                wv[t][u] = c < c_end ? load_weights(reinterpret_cast<const uint4*>(rows[t]) + c)
                                     : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kUnroll<kMats>; ++u) {
            const int c = c0 + u * kWarpSize;
            if (c >= c_end) continue;
#pragma unroll
            for (int m = 0; m < M; ++m) {
                const float4* xp = reinterpret_cast<const float4*>(x + m * ldx) + 2 * c;
                const float4 a = __ldg(xp), b = __ldg(xp + 1);
                const float xs[kElems] = {round_bf16(a.x), round_bf16(a.y), round_bf16(a.z),
                                          round_bf16(a.w), round_bf16(b.x), round_bf16(b.y),
                                          round_bf16(b.z), round_bf16(b.w)};
#pragma unroll
                for (int t = 0; t < kMats; ++t) acc[t][m] = dot8(wv[t][u], xs, acc[t][m]);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < kMats; ++t)
#pragma unroll
        for (int m = 0; m < M; ++m) acc[t][m] = warp_sum(acc[t][m]);
}

// Asks L2 for this lane's chunks of the rows before the predecessor kernel has finished (the
// weights depend on nothing), so that they stream while it drains (kernels/cuda/overlap.cuh).
template <int kRows>
__device__ __forceinline__ void prefetch_rows(const uint16_t* const (&rows)[kRows], int c_begin,
                                              int c_end, int lane) {
    for (int c = c_begin + lane; c < c_end; c += kWarpSize)
#pragma unroll
        for (int t = 0; t < kRows; ++t) prefetch_l2(reinterpret_cast<const uint4*>(rows[t]) + c);
}

// The rows a warp works on and its share of K. Each warp multiplies kRowsPerWarp weight rows
// (kGatedRows gate rows and the same up rows) with the same x, so x is read and rounded once per
// that many rows. (1, 2 and 4 rows per warp, 4096 to 16384 warps, measured within 4% of each
// other on the 1B decode step, H100.) Rows too short to keep the
// memory system busy with one warp each (few rows: o_proj, down_proj of a small model) are cut
// into `slices` consecutive pieces of K, one warp each, summed through shared memory.

constexpr int kRowsPerWarp = 2;
constexpr int kGatedRows = 1;

struct WarpTask {
    int64_t first_row;  // of kRowsPerWarp consecutive rows; rows past the end do no work
    int slice;          // 0 .. slices-1; slice 0 finishes the rows
    int c_begin, c_end;
};

__device__ __forceinline__ WarpTask warp_task(int slices, int K, int rows_per_warp) {
    const int warp = threadIdx.x / kWarpSize;
    const int chunks = K / kElems;
    const int per = (chunks + slices - 1) / slices;
    WarpTask t;
    t.first_row = (int64_t(blockIdx.x) * (kWarps / slices) + warp / slices) * rows_per_warp;
    t.slice = warp % slices;
    t.c_begin = min(chunks, t.slice * per);
    t.c_end = min(chunks, t.c_begin + per);
    return t;
}

// Adds the slices of every row of the block into the warps of slice 0 (all threads call it).
template <int M, int kRows>
__device__ __forceinline__ void sum_slices(float (&acc)[kRows][M], int slices) {
    __shared__ float partial[kWarps][kRows][M];
    if (slices == 1) return;
    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    if (lane == 0) {
#pragma unroll
        for (int t = 0; t < kRows; ++t)
#pragma unroll
            for (int m = 0; m < M; ++m) partial[warp][t][m] = acc[t][m];
    }
    __syncthreads();
    if (warp % slices == 0) {
#pragma unroll
        for (int t = 0; t < kRows; ++t)
#pragma unroll
            for (int m = 0; m < M; ++m) {
                float v = partial[warp][t][m];
                for (int s = 1; s < slices; ++s) v += partial[warp + s][t][m];
                acc[t][m] = v;
            }
    }
}

// acc[t][m] for lane m: the value lane m writes.
template <int M, int kRows>
__device__ __forceinline__ float pick(const float (&acc)[kRows][M], int t, int lane) {
    float v = acc[t][0];
#pragma unroll
    for (int m = 1; m < M; ++m) v = lane == m ? acc[t][m] : v;
    return v;
}

// Plain: rows of the concatenation of the outputs (a warp's rows may straddle two outputs).
template <int M>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(Params p, int slices) {
    const int lane = threadIdx.x % kWarpSize;
    const WarpTask task = warp_task(slices, p.K, kRowsPerWarp);
    int seg[kRowsPerWarp];
    int64_t row[kRowsPerWarp];
    const uint16_t* w[kRowsPerWarp];
    bool any = false;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        int s = 0;
        int64_t i = task.first_row + r;
        while (s + 1 < p.count && i >= p.rows[s]) i -= p.rows[s++];
        seg[r] = i < p.rows[s] ? s : -1;
        row[r] = i;
        w[r] = seg[r] >= 0 ? p.w[s] + i * p.K : p.w[0];  // a row past the end reads row 0
        any |= seg[r] >= 0;
    }
    float acc[kRowsPerWarp][M] = {};
    if (any) prefetch_rows<kRowsPerWarp>(w, task.c_begin, task.c_end, lane);
    wait_for_predecessor();  // x comes from the previous kernel
    if (any) dot_rows<M, kRowsPerWarp>(w, p.x, p.ldx, task.c_begin, task.c_end, lane, acc);
    allow_successor();
    sum_slices<M, kRowsPerWarp>(acc, slices);
    if (task.slice != 0 || lane >= M) return;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        const int s = seg[r];
        if (s < 0) continue;
        float v = pick<M, kRowsPerWarp>(acc, r, lane);
        if (p.b[s] != nullptr) v += bf16_to_float(p.b[s][row[r]]);
        p.y[s][lane * p.ldy[s] + row[r]] = v;
    }
}

// Gated: gate rows and the same up rows together (kGatedRows of each per warp); writes
// silu(gate) * up (the formula of swiglu_kernel) to y[0].
template <int M>
__global__ void __launch_bounds__(kThreads, 2) gemv_gated_kernel(Params p, int slices) {
    const int lane = threadIdx.x % kWarpSize;
    const WarpTask task = warp_task(slices, p.K, kGatedRows);
    const uint16_t* w[2 * kGatedRows];
#pragma unroll
    for (int r = 0; r < kGatedRows; ++r) {
        const int64_t row = task.first_row + r < p.rows[0] ? task.first_row + r : 0;
        w[r] = p.w[0] + row * p.K;
        w[kGatedRows + r] = p.w[1] + row * p.K;
    }
    float acc[2 * kGatedRows][M] = {};
    const bool any = task.first_row < p.rows[0];
    if (any) prefetch_rows<2 * kGatedRows>(w, task.c_begin, task.c_end, lane);
    wait_for_predecessor();
    if (any) dot_rows<M, 2 * kGatedRows>(w, p.x, p.ldx, task.c_begin, task.c_end, lane, acc);
    allow_successor();
    sum_slices<M, 2 * kGatedRows>(acc, slices);
    if (task.slice != 0 || lane >= M) return;
#pragma unroll
    for (int r = 0; r < kGatedRows; ++r) {
        const int64_t row = task.first_row + r;
        if (row >= p.rows[0]) continue;
        float g = pick<M, 2 * kGatedRows>(acc, r, lane);
        float u = pick<M, 2 * kGatedRows>(acc, kGatedRows + r, lane);
        if (p.b[0] != nullptr) g += bf16_to_float(p.b[0][row]);
        if (p.b[1] != nullptr) u += bf16_to_float(p.b[1][row]);
        p.y[0][lane * p.ldy[0] + row] = g / (1.0f + expf(-g)) * u;
    }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Checks one output and adds it to p.
void add_output(Params& p, const Projection& o, int64_t K, const char* kernel) {
    require_bf16(o.weight.dtype, kernel, "the weight matrix");
    static_assert(kGemvMaxOutputs >= 2, "the gated kernel takes two matrices");
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

Params input_params(const float* x, int64_t M, int64_t ldx, int64_t K, const char* kernel) {
    TDM_REQUIRE(M >= 1 && M <= kGemvMaxRows && K > 0 && K % kElems == 0 && K <= INT_MAX &&
                    ldx >= K && ldx % 4 == 0 && aligned16(x),
                TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": M " + std::to_string(M) + ", K " + std::to_string(K) +
                    ", row stride " + std::to_string(ldx) + " or x alignment unsupported (see "
                    "gemv_supports)");
    Params p{};
    p.x = x;
    p.ldx = ldx;
    p.K = int(K);
    return p;
}

// Warps to keep in flight: about 32 per SM on a 132-SM H100, each with kRowsPerWarp rows of
// 16-byte loads outstanding - enough to stream HBM at full speed.
constexpr int64_t kTargetWarps = 4096;

// Slices of K per warp group (1, 2, 4 or 8): as many as bring the grid to kTargetWarps, while
// every slice keeps at least one chunk per lane.
int slices_for(int64_t warps, int64_t K) {
    int slices = 1;
    while (slices < kWarps && warps * slices < kTargetWarps &&
           K / kElems / (2 * slices) >= kWarpSize)
        slices *= 2;
    return slices;
}

// f(std::integral_constant<int, M>, blocks, slices) launches the instance for `rows` rows,
// rows_per_warp to a warp.
template <class F>
void launch(int64_t M, int64_t rows, int rows_per_warp, int64_t K, F&& f) {
    const int64_t warps = (rows + rows_per_warp - 1) / rows_per_warp;
    const int slices = slices_for(warps, K);
    const int64_t per_block = kWarps / slices;
    const int64_t blocks = (warps + per_block - 1) / per_block;
    TDM_REQUIRE(blocks <= INT_MAX, TDM_ERR_INVALID_ARGUMENT, "gemv: too many output rows");
    switch (M) {
        case 1: f(std::integral_constant<int, 1>{}, unsigned(blocks), slices); break;
        case 2: f(std::integral_constant<int, 2>{}, unsigned(blocks), slices); break;
        case 3: f(std::integral_constant<int, 3>{}, unsigned(blocks), slices); break;
        default: f(std::integral_constant<int, 4>{}, unsigned(blocks), slices); break;
    }
}

}  // namespace

bool gemv_supports(const float* x, int64_t M, int64_t ldx, int64_t K) {
    return M >= 1 && M <= kGemvMaxRows && K > 0 && K % kElems == 0 && K <= INT_MAX && ldx >= K &&
           ldx % 4 == 0 && aligned16(x);
}

void gemv(const float* x, int64_t M, int64_t ldx, const Projection* outputs, int count,
          cudaStream_t stream) {
    TDM_REQUIRE(count >= 1 && count <= kGemvMaxOutputs, TDM_ERR_INVALID_ARGUMENT,
                "gemv: " + std::to_string(count) + " outputs (1.." +
                    std::to_string(kGemvMaxOutputs) + ")");
    const int64_t K = outputs[0].weight.cols;
    Params p = input_params(x, M, ldx, K, "gemv");
    int64_t rows = 0;
    for (int i = 0; i < count; ++i) {
        add_output(p, outputs[i], K, "gemv");
        rows += outputs[i].weight.rows;
    }
    launch(M, rows, kRowsPerWarp, K, [&](auto m, unsigned blocks, int slices) {
        launch_overlapped("launch of gemv_kernel", gemv_kernel<decltype(m)::value>, dim3(blocks),
                          dim3(kThreads), 0, stream, p, slices);
    });
}

void gemv_gated(const float* x, int64_t M, int64_t ldx, const MatrixView& w_gate,
                const VectorView& b_gate, const MatrixView& w_up, const VectorView& b_up,
                float* out, int64_t ldo, cudaStream_t stream) {
    const int64_t K = w_gate.cols;
    Params p = input_params(x, M, ldx, K, "gemv_gated");
    add_output(p, Projection{w_gate, b_gate, out, ldo}, K, "gemv_gated");
    add_output(p, Projection{w_up, b_up, out, ldo}, K, "gemv_gated");
    TDM_REQUIRE(w_up.rows == w_gate.rows, TDM_ERR_INVALID_ARGUMENT,
                "gemv_gated: gate has " + std::to_string(w_gate.rows) + " rows, up " +
                    std::to_string(w_up.rows));
    launch(M, w_gate.rows, kGatedRows, K, [&](auto m, unsigned blocks, int slices) {
        launch_overlapped("launch of gemv_gated_kernel", gemv_gated_kernel<decltype(m)::value>,
                          dim3(blocks), dim3(kThreads), 0, stream, p, slices);
    });
}

}  // namespace tdm::cuda
