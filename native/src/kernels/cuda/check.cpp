#include "kernels/cuda/check.h"

#include <string>

#include "core/error.h"

namespace tdm::cuda {

void fail_cuda(const char* call, cudaError_t error) {
    // Clear the error if it is not sticky, so that the next call of this thread starts clean.
    (void)cudaGetLastError();
    const tdm_status status =
        error == cudaErrorMemoryAllocation ? TDM_ERR_OUT_OF_MEMORY : TDM_ERR_DEVICE;
    fail(status, std::string(call) + ": " + cudaGetErrorString(error) + " (" +
                     cudaGetErrorName(error) + ")");
}

void fail_cublas(const char* call, cublasStatus_t status) {
    const tdm_status code =
        status == CUBLAS_STATUS_ALLOC_FAILED ? TDM_ERR_OUT_OF_MEMORY : TDM_ERR_DEVICE;
    fail(code, std::string(call) + ": " + cublasGetStatusString(status) + " (" +
                   cublasGetStatusName(status) + ")");
}

}  // namespace tdm::cuda
