#include "kernels/cuda/device.h"

#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"

namespace tdm::cuda {

int device_count() noexcept {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();  // no driver or no device: not an error of ours
        return 0;
    }
    return count;
}

DeviceInfo device_info(int index) {
    cudaDeviceProp p{};
    TDM_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
    DeviceInfo info;
    info.index = index;
    info.name = p.name;
    info.major = p.major;
    info.minor = p.minor;
    info.multiprocessors = p.multiProcessorCount;
    info.memory_bytes = p.totalGlobalMem;
    return info;
}

DeviceInfo require_supported_device(int index) {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        fail(TDM_ERR_BACKEND_UNAVAILABLE,
             std::string("no usable CUDA device: cudaGetDeviceCount: ") + cudaGetErrorString(e));
    }
    TDM_REQUIRE(index >= 0 && index < count, TDM_ERR_BACKEND_UNAVAILABLE,
                "CUDA device index " + std::to_string(index) + " is out of range: " +
                    std::to_string(count) + " CUDA device(s) found");
    DeviceInfo info = device_info(index);
    TDM_REQUIRE(info.major == 9, TDM_ERR_BACKEND_UNAVAILABLE,
                "CUDA device " + std::to_string(index) + " is '" + info.name +
                    "' (compute capability " + std::to_string(info.major) + "." +
                    std::to_string(info.minor) +
                    "); Tandem's CUDA backend is built for Hopper GPUs (compute capability 9.x, "
                    "e.g. H100 or H200)");
    return info;
}

bool supported_device_present() noexcept {
    const int count = device_count();
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp p{};
        if (cudaGetDeviceProperties(&p, i) == cudaSuccess && p.major == 9) return true;
    }
    (void)cudaGetLastError();
    return false;
}

DeviceGuard::DeviceGuard(int device) {
    TDM_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
        TDM_CUDA_CHECK(cudaSetDevice(device));
        switched_ = true;
    }
}

DeviceGuard::~DeviceGuard() {
    if (switched_) (void)cudaSetDevice(previous_);  // nothing useful to do if this fails
}

}  // namespace tdm::cuda
