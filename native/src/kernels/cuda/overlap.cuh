// Programmatic dependent launch (Hopper): a kernel launched with launch_overlapped() may be
// scheduled while the kernel before it on the stream is still finishing, instead of after it has
// drained. A decode step is ~100 short kernels in a chain; without this, every boundary leaves the
// GPU idle for the launch latency plus the predecessor's tail, and a weight-streaming kernel
// cannot start fetching its weights (which depend on nothing) until the previous kernel is done.
//
// The contract, for every kernel launched with launch_overlapped():
//   - before wait_for_predecessor() it may only read memory no kernel of the step writes (the
//     weights: a GEMV prefetches its rows into L2 there) - never read activations, never write;
//   - wait_for_predecessor() returns once the predecessor grid has completed and its writes are
//     visible (and, transitively, those of every kernel before it).
//   - allow_successor() comes after wait_for_predecessor() in every kernel, so when a kernel
//     starts, every kernel before its predecessor has completed: decode attention relies on this
//     to read the step's position and the older cache rows before its own wait.
// allow_successor() lets the next overlapped kernel be scheduled once every block of this grid has
// called it (or exited), so its own blocks are all resident or done by then. Called early, the
// successor's blocks occupy the slots this grid frees and prefetch their weights while it drains;
// the GEMVs do so for grids of one wave and call it after their streaming loop otherwise
// (gemv_common.cuh: early_successor, measured, not derived).
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/check.h"

namespace tdm::cuda {

__device__ __forceinline__ void wait_for_predecessor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_successor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Brings the 16-byte chunk at p into L2 without waiting for it.
__device__ __forceinline__ void prefetch_l2(const void* p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialisation allowed,
// checked (`name` names the kernel in an error).
template <class... Params, class... Args>
void launch_overlapped(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block,
                       size_t smem, cudaStream_t stream, Args&&... args) {
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = attribute;
    config.numAttrs = 1;
    check_cuda(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...), name);
}

}  // namespace tdm::cuda
