// Checked CUDA and cuBLAS calls. Every runtime call, library call and kernel launch of the CUDA
// backend goes through these, so a device failure becomes a tdm::Error carrying the call that
// failed and CUDA's own message, which the C ABI hands to the caller as a tdm_status:
//   TDM_ERR_OUT_OF_MEMORY for an allocation failure, TDM_ERR_DEVICE for everything else.
//
//   TDM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
//   my_kernel<<<grid, block, smem, stream>>>(...);
//   TDM_CUDA_CHECK_LAUNCH("my_kernel");
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace tdm::cuda {

// Throws tdm::Error(status, "<call>: <CUDA's message> (<error name>)").
[[noreturn]] void fail_cuda(const char* call, cudaError_t error);
[[noreturn]] void fail_cublas(const char* call, cublasStatus_t status);

inline void check_cuda(cudaError_t error, const char* call) {
    if (error != cudaSuccess) fail_cuda(call, error);
}
inline void check_cublas(cublasStatus_t status, const char* call) {
    if (status != CUBLAS_STATUS_SUCCESS) fail_cublas(call, status);
}

// A bad launch (configuration, missing kernel image) is reported at once by cudaGetLastError;
// a fault while the kernel runs surfaces at the next synchronising call, which is checked too.
inline void check_launch(const char* kernel) {
    const cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) fail_cuda(kernel, error);
}

}  // namespace tdm::cuda

#define TDM_CUDA_CHECK(call) ::tdm::cuda::check_cuda((call), #call)
#define TDM_CUBLAS_CHECK(call) ::tdm::cuda::check_cublas((call), #call)
#define TDM_CUDA_CHECK_LAUNCH(kernel_name) ::tdm::cuda::check_launch("launch of " kernel_name)
