#include "kernels/cuda/device_buffer.h"

#include "kernels/cuda/check.h"

namespace tdm::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) {
    if (bytes == 0) return;
    TDM_CUDA_CHECK(cudaMalloc(&data_, bytes));
    bytes_ = bytes;
}

DeviceBuffer::~DeviceBuffer() {
    if (data_) (void)cudaFree(data_);
}

void DeviceBuffer::reserve(size_t bytes) {
    if (bytes <= bytes_) return;
    DeviceBuffer fresh(bytes);
    *this = std::move(fresh);
}

Stream::Stream() { TDM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }

Stream::~Stream() {
    if (stream_) {
        (void)cudaStreamSynchronize(stream_);
        (void)cudaStreamDestroy(stream_);
    }
}

void Stream::synchronize() const { TDM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace tdm::cuda
