// The scalar pieces both tensor-core attention loops (cuda_flash_tile.cuh, cuda_flash_wgmma.cuh)
// use between their matrix products: rounding two probabilities into one bf16 pair (the A
// operand of O += P V) and the softmax's exp2.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace tdm::cuda::flash {

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx: 2 ulp, exp2(-inf) = 0
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

}  // namespace tdm::cuda::flash
