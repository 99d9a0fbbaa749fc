#include "kernels/cuda/launch_fit.h"

#include <cuda_runtime_api.h>

#include <mutex>
#include <vector>

#include "kernels/cuda/check.h"

namespace tdm::cuda {

int remembered_launch_fit(const void* kernel, int64_t key,
                          const std::function<int(int device)>& compute) {
    int device = 0;
    TDM_CUDA_CHECK(cudaGetDevice(&device));
    struct Known {
        const void* kernel;
        int64_t key;
        int device, value;
    };
    static std::mutex mutex;
    static std::vector<Known> known;  // a few dozen: the GEMV kernels x their sizes x the devices
    const std::lock_guard<std::mutex> lock(mutex);
    for (const Known& k : known)
        if (k.kernel == kernel && k.key == key && k.device == device) return k.value;
    const int value = compute(device);
    known.push_back(Known{kernel, key, device, value});
    return value;
}

int resident_blocks_on(int device, const void* kernel, int threads, size_t smem) {
    int per_sm = 0, sms = 0;
    TDM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
    TDM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return per_sm * sms;
}

}  // namespace tdm::cuda
