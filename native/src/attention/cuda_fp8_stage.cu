// XAttention's fp8 estimation operands (ALGORITHMS.md 4, ENGINE.md; the host twin is
// xattn::fp8_operands with attention/fp8_e4m3.h): each query head's queries and each KV head's
// keys 0 .. key_len-1 get a power-of-two scale 2^e from their largest magnitude, then are rounded
// to fp8 e4m3 (nearest, ties to even, saturating). Three launches, no host synchronisation:
//   1. amax_kernel: the magnitudes' maximum per head, an atomicMax on the float's bits (order-free,
//      so exactly the host's maximum);
//   2. exponents_kernel: e per head (the host's e4m3_scale_exponent);
//   3. quantize_kernel (queries, then keys): e4m3(x * 2^e) with the hardware conversion
//      (cvt.rn.satfinite.e4m3x2.f32), written as fp8 bytes for the wgmma engine, or as the bf16 of
//      the value it stands for, e4m3 * 2^-e (exact in bf16), for the other engines - so every
//      engine scores the same operand values.
// The fp8 bytes are stored offset-major ([head][t][group][D], t the offset inside a group of S):
// the copy has to be made anyway, and a wgmma Q_t / K_t box is then one contiguous run instead of
// 128 rows S * D bytes apart (H100, 128K, S = 8: 22.9 ms against 28.7 ms token-major).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <string>

#include "attention/cuda_estimate_tile.cuh"
#include "attention/cuda_sparse_estimation.h"
#include "core/error.h"
#include "kernels/cuda/check.h"

namespace tdm::cuda {

using estimate::ensure;

namespace {

constexpr int kThreads = 256;
constexpr int kVec = 8;  // elements a thread takes at a time (one 16- or 32-byte load)

// Values of one head: `rows` rows of D at `base + r * row_stride` (floats or bf16).
template <class T>
struct HeadRows {
    using Elem = T;
    const T* base;
    int64_t rows, row_stride, head_stride;
};

__device__ __forceinline__ void load8(const float* p, float (&x)[kVec]) {
    const float4 a = *reinterpret_cast<const float4*>(p);
    const float4 b = *reinterpret_cast<const float4*>(p + 4);
    x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}
__device__ __forceinline__ void load8(const __nv_bfloat16* p, float (&x)[kVec]) {
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        x[2 * i] = __uint_as_float(w[i] << 16);
        x[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

// e4m3 of (a, b), rounded to nearest even and saturating: what fp8::e4m3_bits gives on the host.
__device__ __forceinline__ __nv_fp8x2_storage_t to_e4m3x2(float a, float b) {
    return __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
}

// The thread's place in a pass over rows of D: a fixed column group, rows r0, r0 + step, ...
struct RowWalk {
    int64_t r0, step;
    int c;
};
__device__ __forceinline__ RowWalk row_walk(int D) {
    const int vecs = D / kVec, per = kThreads / vecs;  // rows a block takes at a time
    return {int64_t(blockIdx.x) * per + int(threadIdx.x) / vecs, int64_t(gridDim.x) * per,
            (int(threadIdx.x) % vecs) * kVec};
}

// bits[blockIdx.y] = max over the head's values of |x| (as float bits; zeroed before).
template <class T>
__global__ void __launch_bounds__(kThreads)
    amax_kernel(HeadRows<T> in, int D, unsigned* __restrict__ bits) {
    const int head = blockIdx.y;
    const T* base = in.base + head * in.head_stride;
    const RowWalk w = row_walk(D);
    float m = 0.0f;
    for (int64_t r = w.r0; r < in.rows; r += w.step) {
        float x[kVec];
        load8(base + r * in.row_stride + w.c, x);
#pragma unroll
        for (int i = 0; i < kVec; ++i) m = fmaxf(m, fabsf(x[i]));
    }
    for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    __shared__ float warp_max[kThreads / 32];
    if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int i = 1; i < kThreads / 32; ++i) m = fmaxf(m, warp_max[i]);
        // Non-negative floats order as their bits; fmaxf dropped any NaN.
        atomicMax(bits + head, __float_as_uint(m));
    }
}

// fp8::e4m3_scale_exponent on the device: the largest e with amax * 2^e <= 448.
__global__ void exponents_kernel(const unsigned* __restrict__ bits, int n, int32_t* __restrict__ e) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float amax = __uint_as_float(bits[i]);
        int32_t x = 0;
        if (amax > 0.0f && isfinite(amax)) {
            int E = 0;
            const float m = frexpf(amax, &E);
            x = min(127, max(-126, (m <= 0.875f ? 9 : 8) - E));
        }
        e[i] = x;
    }
}

// Row t < out_rows of head h: e4m3(in[h, t - shift, :] * 2^e[h]) for the rows inside
// [0, in.rows), else 0. As fp8 bytes (Out = uint8_t) or as the bf16 of e4m3 * 2^-e. Stored at
// out[h, t, :], or with offset_major = S > 0 at out[h, t % S, t / S, :] (planes of out_rows / S
// rows: the wgmma engine's boxes are then contiguous).
template <class T, class Out>
__global__ void __launch_bounds__(kThreads)
    quantize_kernel(HeadRows<T> in, int D, int64_t shift, int64_t out_rows, int offset_major,
                    const int32_t* __restrict__ exps, Out* __restrict__ out) {
    const int head = blockIdx.y;
    const int32_t e = exps[head];
    const float up = __int_as_float((e + 127) << 23);  // 2^e, e in [-126, 127]
    const T* base = in.base + head * in.head_stride;
    Out* dst = out + head * out_rows * D;
    const RowWalk w = row_walk(D);
    for (int64_t t = w.r0; t < out_rows; t += w.step) {
        const int64_t r = t - shift;
        float x[kVec] = {};
        if (r >= 0 && r < in.rows) {
            load8(base + r * in.row_stride + w.c, x);
#pragma unroll
            for (int i = 0; i < kVec; ++i) x[i] *= up;
        }
        __nv_fp8x2_storage_t q[kVec / 2];
#pragma unroll
        for (int i = 0; i < kVec / 2; ++i) q[i] = to_e4m3x2(x[2 * i], x[2 * i + 1]);
        const int64_t at = offset_major > 0
                               ? (t % offset_major) * (out_rows / offset_major) + t / offset_major
                               : t;
        Out* o = dst + at * D + w.c;
        if constexpr (sizeof(Out) == 1) {
            *reinterpret_cast<uint2*>(o) = make_uint2(uint32_t(q[0]) | (uint32_t(q[1]) << 16),
                                                      uint32_t(q[2]) | (uint32_t(q[3]) << 16));
        } else {
            __nv_bfloat162 b[kVec / 2];
#pragma unroll
            for (int i = 0; i < kVec / 2; ++i) {
                const float2 f =
                    __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(q[i], __NV_E4M3)));
                b[i] = __floats2bfloat162_rn(ldexpf(f.x, -e), ldexpf(f.y, -e));
            }
            *reinterpret_cast<uint4*>(o) = *reinterpret_cast<const uint4*>(b);
        }
    }
}

__global__ void e4m3_bytes_kernel(const float* __restrict__ x, int64_t pairs,
                                  __nv_fp8x2_storage_t* __restrict__ out) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < pairs;
         i += int64_t(gridDim.x) * blockDim.x)
        out[i] = to_e4m3x2(x[2 * i], x[2 * i + 1]);
}

// Blocks along x for `rows` rows of D a head: enough for a few waves over all heads (the row
// walks stride over the rest).
unsigned grid_x(int64_t rows, int D, int heads) {
    const int64_t per_block = kThreads / (D / kVec);
    const int64_t want = std::max<int64_t>(1, 4096 / std::max(1, heads));
    return unsigned(std::clamp<int64_t>((rows + per_block - 1) / per_block, 1, want));
}

// fn(rows) for the cache's keys 0 .. key_len-1 as HeadRows of the type the cache holds.
template <class Fn>
void with_keys(const EstimateInputs& in, int64_t key_len, Fn&& fn) {
    const int64_t head_stride = in.capacity * in.head_dim;
    if (in.k_bf16)
        fn(HeadRows<__nv_bfloat16>{static_cast<const __nv_bfloat16*>(in.k_cache), key_len,
                                   in.head_dim, head_stride});
    else
        fn(HeadRows<float>{static_cast<const float*>(in.k_cache), key_len, in.head_dim,
                           head_stride});
}

template <class Out>
void quantize_all(const EstimateInputs& in, int64_t tok_base, int64_t tokens, int64_t key_len,
                  int64_t keys_cap, int offset_major, const int32_t* exps, Out* q_out, Out* k_out,
                  cudaStream_t s) {
    const int D = in.head_dim;
    const HeadRows<float> q{in.q, in.n_new, int64_t(in.heads) * D, D};
    quantize_kernel<float, Out>
        <<<dim3(grid_x(tokens, D, in.heads), unsigned(in.heads)), kThreads, 0, s>>>(
            q, D, in.pos0 - tok_base, tokens, offset_major, exps, q_out);
    TDM_CUDA_CHECK_LAUNCH("quantize_kernel (queries)");
    const dim3 kgrid(grid_x(keys_cap, D, in.kv_heads), unsigned(in.kv_heads));
    with_keys(in, key_len, [&](auto k) {
        quantize_kernel<typename decltype(k)::Elem, Out><<<kgrid, kThreads, 0, s>>>(
            k, D, 0, keys_cap, offset_major, exps + in.heads, k_out);
    });
    TDM_CUDA_CHECK_LAUNCH("quantize_kernel (keys)");
}

}  // namespace

void e4m3_bytes(const float* x, int64_t n, uint8_t* out, cudaStream_t s) {
    TDM_REQUIRE(n % 2 == 0, TDM_ERR_INVALID_ARGUMENT, "e4m3_bytes: n must be even");
    if (n == 0) return;
    const int64_t pairs = n / 2;
    e4m3_bytes_kernel<<<unsigned(std::min<int64_t>((pairs + 255) / 256, 4096)), 256, 0, s>>>(
        x, pairs, reinterpret_cast<__nv_fp8x2_storage_t*>(out));
    TDM_CUDA_CHECK_LAUNCH("e4m3_bytes_kernel");
}

int64_t SparsePlanner::stage_fp8(const EstimateInputs& in, int64_t tok_base, int64_t tokens,
                                 int offset_major, cudaStream_t s) {
    const bool bytes = offset_major > 0;
    const int D = in.head_dim;
    TDM_REQUIRE(D % kVec == 0 && kThreads % (D / kVec) == 0 && D / kVec <= kThreads,
                TDM_ERR_UNSUPPORTED,
                "fp8 estimation: head dim " + std::to_string(D) + " is not supported");
    const int64_t key_len = in.pos0 + in.n_new;
    // Whole planes of 16-row multiples (S is a power of two dividing the block size).
    const int64_t align = std::max<int64_t>(16, offset_major);
    const int64_t keys_cap = (key_len + align - 1) / align * align;
    TDM_REQUIRE(!bytes || tokens % offset_major == 0, TDM_ERR_INTERNAL,
                "fp8 staging: the queries are not whole groups of S");
    const int heads = in.heads, kv_heads = in.kv_heads;
    ensure(fp8_amax_, size_t(heads + kv_heads) * (sizeof(unsigned) + sizeof(int32_t)));
    auto* bits = fp8_amax_.as<unsigned>();
    int32_t* exps = fp8_exponents(heads, kv_heads);
    TDM_CUDA_CHECK(cudaMemsetAsync(bits, 0, size_t(heads + kv_heads) * sizeof(unsigned), s));

    const HeadRows<float> q{in.q, in.n_new, int64_t(heads) * D, D};
    amax_kernel<float><<<dim3(grid_x(in.n_new, D, heads), unsigned(heads)), kThreads, 0, s>>>(
        q, D, bits);
    TDM_CUDA_CHECK_LAUNCH("amax_kernel (queries)");
    const dim3 kgrid(grid_x(key_len, D, kv_heads), unsigned(kv_heads));
    with_keys(in, key_len, [&](auto k) {
        amax_kernel<typename decltype(k)::Elem><<<kgrid, kThreads, 0, s>>>(k, D, bits + heads);
    });
    TDM_CUDA_CHECK_LAUNCH("amax_kernel (keys)");
    exponents_kernel<<<1, 128, 0, s>>>(bits, heads + kv_heads, exps);
    TDM_CUDA_CHECK_LAUNCH("exponents_kernel");

    const size_t elem = bytes ? 1 : sizeof(__nv_bfloat16);
    ensure(q_stage_, size_t(heads) * tokens * D * elem);
    ensure(k_stage_, size_t(kv_heads) * keys_cap * D * elem);
    if (bytes)
        quantize_all(in, tok_base, tokens, key_len, keys_cap, offset_major, exps,
                     q_stage_.as<uint8_t>(), k_stage_.as<uint8_t>(), s);
    else
        quantize_all(in, tok_base, tokens, key_len, keys_cap, 0, exps,
                     q_stage_.as<__nv_bfloat16>(), k_stage_.as<__nv_bfloat16>(), s);
    return keys_cap;
}

}  // namespace tdm::cuda
