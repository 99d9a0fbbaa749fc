// The CUDA backend: each operation enqueues kernels/cuda launches (or cuBLAS) on this session's
// stream; nothing waits for the GPU except to_host, which the session calls for logits.
#include "backend/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include <string>

#include "attention/cuda_attention.h"
#include "attention/cuda_sparse_prefill.h"
#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/matmul.h"
#include "uncertainty/cuda_logit_summary.h"

namespace tdm {
namespace {

using cuda::DeviceGuard;

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device) : device_(device) {
        DeviceGuard guard(device_);
        multiprocessors_ = cuda::device_info(device_).multiprocessors;
        stream_ = std::make_unique<cuda::Stream>();
        gemm_ = std::make_unique<cuda::CublasMatmul>(stream_->get());
    }

    ~CudaBackend() override {
        // The handle, stream and buffers belong to device_: make it current while they go, and
        // never throw from here.
        int previous = -1;
        const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                              cudaSetDevice(device_) == cudaSuccess;
        gemm_.reset();
        stream_.reset();
        tokens_ = {};
        inv_freq_ = {};
        attention_scratch_ = {};
        sparse_.reset();
        summarizer_.reset();
        if (switched) (void)cudaSetDevice(previous);
    }

    tdm_device device() const override { return TDM_DEVICE_CUDA; }

    float* allocate(int64_t floats) override {
        DeviceGuard guard(device_);
        TDM_REQUIRE(floats >= 0, TDM_ERR_INVALID_ARGUMENT, "cannot allocate a negative size");
        const size_t bytes = size_t(floats == 0 ? 1 : floats) * sizeof(float);
        void* p = nullptr;
        TDM_CUDA_CHECK(cudaMalloc(&p, bytes));
        // Zeroed on the session's stream, so it is ordered before every later use.
        const cudaError_t zeroed = cudaMemsetAsync(p, 0, bytes, stream());
        if (zeroed != cudaSuccess) {
            (void)cudaFree(p);
            cuda::fail_cuda("cudaMemsetAsync(p, 0, bytes, stream())", zeroed);
        }
        return static_cast<float*>(p);
    }

    // Called from destructors, so it never throws. cudaFree finds the owning device from the
    // pointer (unified addressing) and waits for the work still using the buffer.
    void release(float* p) override {
        if (p != nullptr) (void)cudaFree(p);
    }

    void embed(const int32_t* tokens, int64_t n, const MatrixView& table, float* out) override {
        DeviceGuard guard(device_);
        // The ids are staged out of the caller's (pageable) memory before the copy returns.
        tokens_.reserve(size_t(n) * sizeof(int32_t));
        TDM_CUDA_CHECK(cudaMemcpyAsync(tokens_.data(), tokens, size_t(n) * sizeof(int32_t),
                                       cudaMemcpyHostToDevice, stream()));
        cuda::embed(tokens_.as<int32_t>(), n, table, out, stream());
    }

    void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n,
                 float* out) override {
        DeviceGuard guard(device_);
        cuda::rmsnorm(x, w, eps, rows, n, out, stream());
    }

    void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                const VectorView& bias, float* y, int64_t ldy) override {
        DeviceGuard guard(device_);
        gemm_->matmul(x, M, ldx, W, bias, y, ldy);
    }

    void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
              const float* inv_freq_host) override {
        DeviceGuard guard(device_);
        cuda::rope(x, rows, heads, head_dim, pos0, device_inv_freq(inv_freq_host, head_dim / 2),
                   stream());
    }

    // The KV cache is bf16: half the bytes a decode step reads, and the tensor-core attention
    // copies its tiles straight into shared memory.
    int64_t kv_element_bytes() const override { return int64_t(sizeof(uint16_t)); }
    // Large chunks: sparse estimation runs per chunk (FlexPrefill's representative queries are a
    // chunk's last block) and launches amortise; bounded by 2 GiB of workspace, 512 .. 8192 rows.
    int64_t prefill_chunk_rows(int64_t floats_per_row) const override {
        const int64_t fit = (int64_t(2) << 30) / (std::max<int64_t>(floats_per_row, 1) * 4);
        return std::clamp<int64_t>(fit / 256 * 256, 512, 8192);
    }

    void kv_store(const float* k, const float* v, int64_t n, int64_t pos0, int64_t capacity,
                  int32_t kv_heads, int32_t head_dim, void* k_cache, void* v_cache) override {
        DeviceGuard guard(device_);
        cuda::kv_store(k, v, n, pos0, capacity, kv_heads, head_dim,
                       static_cast<uint16_t*>(k_cache), static_cast<uint16_t*>(v_cache),
                       stream());
    }

    // The kernels' view of one attention call (the cache holds bf16).
    static cuda::AttentionArgs attention_args(const float* q, const void* k_cache,
                                              const void* v_cache, const AttentionCall& c,
                                              float* out) {
        return cuda::AttentionArgs{.q = q,
                                   .k_cache = static_cast<const uint16_t*>(k_cache),
                                   .v_cache = static_cast<const uint16_t*>(v_cache),
                                   .out = out,
                                   .lse = nullptr,
                                   .n_new = c.n_new,
                                   .pos0 = c.pos0,
                                   .capacity = c.capacity,
                                   .heads = c.heads,
                                   .kv_heads = c.kv_heads,
                                   .head_dim = c.head_dim,
                                   .window = c.window,
                                   .scale = c.scale};
    }

    void attention(const float* q, const void* k_cache, const void* v_cache,
                   const AttentionCall& c, float* out) override {
        DeviceGuard guard(device_);
        const cuda::AttentionArgs args = attention_args(q, k_cache, v_cache, c, out);
        if (c.n_new == 1) {
            const int splits = cuda::decode_splits(args, multiprocessors_);
            attention_scratch_.reserve(size_t(cuda::decode_scratch_floats(args, splits)) *
                                       sizeof(float));
            cuda::attention_decode(args, splits, attention_scratch_.as<float>(), stream());
        } else {
            cuda::attention_prefill(args, stream());
        }
    }

    // Estimate -> plan -> block-sparse kernel on the stream (attention/cuda_sparse_prefill.h);
    // density_host is filled asynchronously and complete after to_host.
    void attention_sparse(const float* q, const void* k_cache, const void* v_cache,
                          const AttentionCall& c, const SparseAttention& sparse, float* out,
                          float* density_host) override {
        DeviceGuard guard(device_);
        const cuda::AttentionArgs args = attention_args(q, k_cache, v_cache, c, out);
        if (!sparse_) sparse_ = std::make_unique<cuda::SparsePrefill>();
        sparse_->run(args, sparse, density_host, stream());
    }

    void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld,
                float* out) override {
        DeviceGuard guard(device_);
        cuda::swiglu(gate, up, rows, n, ld, out, stream());
    }

    void add_inplace(float* y, const float* x, int64_t n) override {
        DeviceGuard guard(device_);
        cuda::add_inplace(y, x, n, stream());
    }

    void copy(void* dst, const void* src, int64_t bytes) override {
        DeviceGuard guard(device_);
        TDM_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(bytes), cudaMemcpyDeviceToDevice,
                                       stream()));
    }

    void to_host(const float* device_src, int64_t floats, float* host_dst) override {
        DeviceGuard guard(device_);
        TDM_CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, size_t(floats) * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream()));
        // Also where a fault of any kernel enqueued before surfaces.
        stream_->synchronize();
    }

    // Two small kernels and a copy of a few hundred bytes instead of the vocabulary-sized row.
    bool summarize_logits(const float* logits, int64_t vocab, int want, float temperature,
                          LogitSummary* out) override {
        DeviceGuard guard(device_);
        if (!summarizer_) summarizer_ = std::make_unique<cuda::LogitSummarizer>();
        summarizer_->run(logits, vocab, want, temperature, stream(), out);
        return true;
    }

private:
    cudaStream_t stream() const { return stream_->get(); }

    // The RoPE table on the device. The forward pass passes the model's host table, which is
    // immutable and outlives this session's backend, so its address identifies it.
    const float* device_inv_freq(const float* host, int64_t n) {
        if (host != inv_freq_source_ || n != inv_freq_count_) {
            inv_freq_.reserve(size_t(n) * sizeof(float));
            TDM_CUDA_CHECK(cudaMemcpyAsync(inv_freq_.data(), host, size_t(n) * sizeof(float),
                                           cudaMemcpyHostToDevice, stream()));
            inv_freq_source_ = host;
            inv_freq_count_ = n;
        }
        return inv_freq_.as<float>();
    }

    int device_;
    int multiprocessors_ = 0;
    std::unique_ptr<cuda::Stream> stream_;
    std::unique_ptr<cuda::CublasMatmul> gemm_;
    cuda::DeviceBuffer tokens_;             // this call's token ids
    cuda::DeviceBuffer inv_freq_;           // RoPE inverse frequencies (head_dim / 2)
    const float* inv_freq_source_ = nullptr;
    int64_t inv_freq_count_ = 0;
    cuda::DeviceBuffer attention_scratch_;  // decode's partial results per key split
    std::unique_ptr<cuda::SparsePrefill> sparse_;  // block-sparse prefill state (first use)
    std::unique_ptr<cuda::LogitSummarizer> summarizer_;  // logits on the device (first use)
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) {
    return std::make_unique<CudaBackend>(device);
}

}  // namespace tdm
