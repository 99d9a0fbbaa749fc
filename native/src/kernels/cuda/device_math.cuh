// Small device helpers shared by the CUDA kernels: bf16 conversions (bit-exact twins of
// core/dtype.h, so GPU and CPU round identically), warp and block reductions, launch sizes.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace tdm::cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float bf16_to_float(uint16_t bits) {
    return __uint_as_float(uint32_t(bits) << 16);
}

// Round to nearest even, NaN kept quiet: the same function as tdm::f32_to_bf16.
__device__ __forceinline__ uint16_t float_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

__device__ __forceinline__ float f16_to_float(uint16_t bits) {
    return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        v += __shfl_xor_sync(kFullMask, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
}

// Sums over the whole block of each of kN values (blockDim.x a multiple of 32, at most 1024), in
// place; every thread gets them. `scratch` holds kN x 32 floats of shared memory; the call ends
// with the block synchronised. One reduction for kN values costs what one costs.
template <int kN>
__device__ __forceinline__ void block_sums(float (&v)[kN], float (*scratch)[kWarpSize]) {
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int warps = blockDim.x / kWarpSize;
#pragma unroll
    for (int i = 0; i < kN; ++i) {
        v[i] = warp_sum(v[i]);
        if (lane == 0) scratch[i][warp] = v[i];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kN; ++i) v[i] = warp_sum(lane < warps ? scratch[i][lane] : 0.0f);
    __syncthreads();  // scratch may be reused right after
}

// Sum over the whole block; `scratch` holds 32 floats of shared memory (block_sums).
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    float a[1] = {v};
    block_sums<1>(a, reinterpret_cast<float(*)[kWarpSize]>(scratch));
    return a[0];
}

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, capped so the grid
// stays within limits (the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads) {
    constexpr int64_t kMaxBlocks = 1 << 16;
    return unsigned(std::clamp<int64_t>((n + threads - 1) / threads, 1, kMaxBlocks));
}

}  // namespace tdm::cuda
