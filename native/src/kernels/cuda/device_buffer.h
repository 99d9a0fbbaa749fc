// Owners of device resources: one cudaMalloc'd region (DeviceBuffer) and one stream (Stream).
// Move-only; destructors never throw (a failure to free is ignored: there is nothing to do).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

namespace tdm::cuda {

class DeviceBuffer {
public:
    DeviceBuffer() = default;
    // `bytes` of uninitialised device memory on the current device (0 bytes: no allocation).
    explicit DeviceBuffer(size_t bytes);
    ~DeviceBuffer();
    DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        DeviceBuffer(std::move(other)).swap(*this);
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    void* data() const { return data_; }
    template <class T>
    T* as() const { return static_cast<T*>(data_); }
    size_t bytes() const { return bytes_; }

    // Makes the buffer at least `bytes` long; on growth the old contents are dropped. cudaFree
    // waits for the device, so work still reading the old buffer finishes first.
    void reserve(size_t bytes);

private:
    void swap(DeviceBuffer& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(bytes_, o.bytes_);
    }
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

// A non-blocking stream of the current device.
class Stream {
public:
    Stream();
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    cudaStream_t get() const { return stream_; }
    void synchronize() const;

private:
    cudaStream_t stream_ = nullptr;
};

}  // namespace tdm::cuda
