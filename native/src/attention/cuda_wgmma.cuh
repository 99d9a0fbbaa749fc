// Hopper (sm_90a) building blocks of the warp-specialised attention kernels: warpgroup matrix
// instructions (wgmma) and their shared-memory descriptors, bulk tensor copies (TMA)
// and register reallocation. Thin wrappers over PTX, each named for the instruction it issues;
// what the kernels build from them is in cuda_flash_wgmma.cuh.
//
// Shared-memory tiles use the 128-byte swizzle that TMA writes and wgmma reads: a tile is stored
// as regions of 64 bf16 columns (128 bytes a row); inside a region, 8-row atoms of 1024 bytes
// follow each other, and the 16-byte chunk c of row r sits at chunk c ^ (r % 8) of that row. Every
// region starts 1024-byte aligned, so the swizzle is a function of the address bits alone.
#pragma once

#include <cuda.h>  // CUtensorMap (the type only: the map is encoded on the host)
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/async_copy.cuh"  // mbarriers, shared by the GEMV

namespace tdm::cuda::hopper {

// --- shared-memory matrix descriptors (PTX ISA, "Matrix Descriptor Format") ---------------------
// Bits 0-13: start address >> 4; 16-29: leading-dimension byte offset >> 4; 32-45: stride-dimension
// byte offset >> 4; 62-63: swizzle mode (1 = 128-byte). With the 128-byte swizzle:
//  - K-major operand (the K dimension contiguous, as Q and K tiles for S = Q K^T): rows of 128
//    bytes, 8-row groups `stride` (1024) bytes apart; the leading offset is unused (set to 1).
//    The k16 step j of a 64-column region starts 32 j bytes into it.
//  - MN-major operand (the N dimension contiguous, as the V tile for O = P V, "transposed"):
//    64 N-values per 128-byte row, one row per k; 8-k groups `stride` (1024) bytes apart and
//    64-column regions `leading` bytes apart.
__device__ __forceinline__ uint64_t smem_desc(uint32_t smem_addr, uint32_t leading,
                                              uint32_t stride) {
    return uint64_t((smem_addr & 0x3FFFF) >> 4) | (uint64_t((leading >> 4) & 0x3FFF) << 16) |
           (uint64_t((stride >> 4) & 0x3FFF) << 32) | (uint64_t(1) << 62);
}

// Byte offset of element (row, col) inside a swizzled region whose rows are 128 bytes (col < 64).
__device__ __forceinline__ uint32_t swizzled_offset(int row, int col) {
    return uint32_t(row) * 128u + ((uint32_t(col / 8) ^ uint32_t(row % 8)) * 16u) +
           uint32_t(col % 8) * 2u;
}

// --- warpgroup matrix instructions ---------------------------------------------------------------
// Orders this thread's register and shared-memory accesses before the wgmma that follow
// (needed whenever accumulator or A registers were touched by ordinary instructions).
__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most kPending committed groups of this warp are still running.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Keeps the compiler from moving accesses to an accumulator across a wgmma boundary: the
// registers are read and written by the asynchronous unit, which the compiler does not see.
template <int N>
__device__ __forceinline__ void fence_registers(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

#include "attention/cuda_wgmma_ops.inc"

// --- bulk tensor copies -----------------------------------------------------------------------
// Copies the box at coordinates (c0, c1, c2) of the 3-D tensor map into shared memory at dst;
// completion is counted in bytes on `bar`. Coordinates past the tensor's extent read zeros.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, uint64_t* bar,
                                            int c0, int c1, int c2) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "r"(c2)
        : "memory");
}
// The same for a 4-D map (coordinates innermost first).
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap* map, uint64_t* bar,
                                            int c0, int c1, int c2, int c3) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "r"(c2),
        "r"(c3)
        : "memory");
}
__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// Orders this thread's ordinary shared-memory stores before later async-proxy (wgmma, TMA)
// reads of them; a barrier among the threads must follow.
__device__ __forceinline__ void fence_async_shared() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// --- warp specialisation ----------------------------------------------------------------------
// Register reallocation between warpgroups (needs a register cap at entry: __launch_bounds__ with
// a minimum of 1 block).
template <int kRegs>
__device__ __forceinline__ void release_registers() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void claim_registers() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
// A barrier among `threads` threads (a multiple of 32) on hardware barrier `id` (1..15; 0 is
// __syncthreads).
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace tdm::cuda::hopper
