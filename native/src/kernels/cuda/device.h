// Which CUDA devices are present and whether the backend supports them. Plain C++ (no CUDA
// headers), so the model loader and tdm_get_build_info can ask without pulling in the runtime.
#pragma once

#include <cstddef>
#include <string>

namespace tdm::cuda {

struct DeviceInfo {
    int index = 0;
    std::string name;         // e.g. "NVIDIA H100 80GB HBM3"
    int major = 0, minor = 0; // compute capability
    int multiprocessors = 0;
    size_t memory_bytes = 0;
};

// Number of CUDA devices; 0 when there is none or no usable driver. Never throws.
int device_count() noexcept;

// Properties of device `index` (throws TDM_ERR_DEVICE if the runtime fails).
DeviceInfo device_info(int index);

// The kernels are built for Hopper (sm_90a). Returns device `index`'s properties if it is a Hopper
// GPU (compute capability 9.x); otherwise throws TDM_ERR_BACKEND_UNAVAILABLE naming what was found.
DeviceInfo require_supported_device(int index);

// True when some device is a supported GPU. Never throws.
bool supported_device_present() noexcept;

// Makes `device` the calling thread's current device for a scope, restoring the previous one.
// Every backend entry point takes one: sessions may move between threads, and the current device
// is per thread.
class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = -1;
    bool switched_ = false;
};

}  // namespace tdm::cuda
