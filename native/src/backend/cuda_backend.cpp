// The CUDA backend: each operation enqueues kernels/cuda launches (or cuBLAS) on this session's
// stream; nothing waits for the GPU except to_host, which the session calls for logits.
#include "backend/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include <string>

#include "attention/cuda_attention.h"
#include "attention/cuda_sparse_prefill.h"
#include "backend/cuda_decode_graph.h"
#include "core/error.h"
#include "decode/cuda_row_draw.h"
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
        gemm_ = std::make_unique<cuda::Matmul>(stream_->get());
        step_ = cuda::DeviceBuffer(sizeof(cuda::StepState));
        graph_ = std::make_unique<cuda::DecodeGraph>();
    }

    ~CudaBackend() override {
        // The handle, stream and buffers belong to device_: make it current while they go, and
        // never throw from here.
        int previous = -1;
        const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                              cudaSetDevice(device_) == cudaSuccess;
        graph_.reset();
        gemm_.reset();
        stream_.reset();
        step_ = {};
        tokens_ = {};
        inv_freq_ = {};
        attention_scratch_ = {};
        sparse_.reset();
        summarizer_.reset();
        drawer_.reset();
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
        if (in_step_) {  // the step's token is in device memory already
            TDM_REQUIRE(n == 1, TDM_ERR_INTERNAL, "a decode step embeds one token");
            cuda::embed(&step_state()->token, 1, table, out, stream());
            return;
        }
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

    void matmul_many(const LayerInput& in, const Projection* projections, int count) override {
        DeviceGuard guard(device_);
        gemm_->matmul_many(in, projections, count);
    }

    void matmul_accumulate(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                           const VectorView& bias, float* y, float* scratch) override {
        (void)scratch;  // the GEMV adds in its epilogue, cuBLAS with beta = 1
        DeviceGuard guard(device_);
        gemm_->matmul_accumulate(x, M, ldx, W, bias, y);
    }

    void gated_up(const LayerInput& in, const MatrixView& w_gate, const VectorView& b_gate,
                  const MatrixView& w_up, const VectorView& b_up, float* gate, float* up,
                  float* out) override {
        DeviceGuard guard(device_);
        gemm_->gated_up(in, w_gate, b_gate, w_up, b_up, gate, up, out);
    }

    // rope, kv_store and their fusion are one kernel (kernels/cuda/rope_store.cu).
    void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
              const float* inv_freq_host) override {
        DeviceGuard guard(device_);
        TDM_REQUIRE(heads > 0 && heads <= INT32_MAX && head_dim <= INT32_MAX,
                    TDM_ERR_INVALID_ARGUMENT, "rope: heads " + std::to_string(heads));
        cuda::RopeStore a = positioned(rows, pos0, int32_t(head_dim));
        a.q = x;
        a.heads = int32_t(heads);
        a.inv_freq = device_inv_freq(inv_freq_host, head_dim / 2);
        cuda::rope_and_store(a, stream());
    }

    // One GEMV launch for the projections, rope and the append where the decode GEMV applies;
    // else the products and the rope_and_store kernel.
    void attention_inputs(const LayerInput& in, const Projection (&qkv)[3],
                          const RopeAppend& r) override {
        DeviceGuard guard(device_);
        const float* inv_freq = device_inv_freq(r.inv_freq_host, r.head_dim / 2);
        if (gemm_->gemv_applies(in, qkv, 3) && r.head_dim % 2 == 0) {
            cuda::QkvRope rope;
            rope.pos0 = r.pos0;
            rope.pos_dev = in_step_ ? &step_state()->pos : nullptr;
            rope.inv_freq = inv_freq;
            rope.k_cache = static_cast<uint16_t*>(r.k_cache);
            rope.v_cache = static_cast<uint16_t*>(r.v_cache);
            rope.capacity = r.capacity;
            rope.head_dim = r.head_dim;
            cuda::gemv_qkv_rope(in, qkv, rope, stream());
            return;
        }
        gemm_->matmul_many(in, qkv, 3);
        cuda::RopeStore a = positioned(in.M, r.pos0, r.head_dim);
        a.q = qkv[0].y;
        a.heads = r.heads;
        a.inv_freq = inv_freq;
        store_into(a, qkv[1].y, qkv[2].y, r.kv_heads, r.capacity, r.k_cache, r.v_cache);
        cuda::rope_and_store(a, stream());
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
        cuda::RopeStore a = positioned(n, pos0, head_dim);
        store_into(a, k, v, kv_heads, capacity, k_cache, v_cache);
        a.rotate_k = false;
        cuda::rope_and_store(a, stream());
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
        cuda::AttentionArgs args = attention_args(q, k_cache, v_cache, c, out);
        if (c.n_new == 1) {
            // A recorded step replays at any position: split for the longest one.
            cuda::AttentionArgs longest = args;
            if (in_step_) {
                args.pos_dev = &step_state()->pos;
                longest.pos0 = c.capacity - 1;
            }
            const int splits = cuda::decode_splits(longest, multiprocessors_);
            const size_t bytes = size_t(cuda::decode_scratch_floats(args, splits)) * sizeof(float);
            if (attention_scratch_.bytes() < bytes || splits != scratch_splits_ ||
                c.heads != scratch_heads_ || c.kv_heads != scratch_kv_heads_ ||
                c.head_dim != scratch_head_dim_) {
                // The arrival counts sit after the partial results: clear them where they are
                // for this layout (calls leave them zero).
                attention_scratch_.reserve(bytes);
                cuda::clear_decode_scratch(attention_scratch_.as<float>(), args, splits, stream());
                scratch_splits_ = splits;
                scratch_heads_ = c.heads;
                scratch_kv_heads_ = c.kv_heads;
                scratch_head_dim_ = c.head_dim;
            }
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

    // A cooperative kernel and a copy of one int instead of the row(s) and the host sampler.
    bool draw_from_logits(const RowDraw& draw, int32_t* token) override {
        DeviceGuard guard(device_);
        if (!drawer_) drawer_ = std::make_unique<cuda::RowDrawer>();
        *token = drawer_->run(draw, stream());
        return true;
    }

    bool shares_memory_with(const Backend& other) const override {
        const auto* cuda = dynamic_cast<const CudaBackend*>(&other);
        return cuda != nullptr && cuda->device_ == device_;
    }

    void synchronize() override {
        DeviceGuard guard(device_);
        stream_->synchronize();
    }

    // The step's token and position go to device memory first; the forward pass then reads them
    // there (in_step_), recorded as a graph or not (cuda_decode_graph.h).
    bool decode_step(int32_t token, int64_t pos, uint64_t shape,
                     const std::function<bool()>& enqueue) override {
        DeviceGuard guard(device_);
        cuda::write_step_state(step_state(), token, pos, stream());
        in_step_ = true;
        struct Leave {
            bool& flag;
            ~Leave() { flag = false; }
        } leave{in_step_};
        return graph_->run(stream(), shape, enqueue);
    }

    int64_t graph_replays() const override { return graph_->replays(); }

private:
    cudaStream_t stream() const { return stream_->get(); }
    cuda::StepState* step_state() const { return step_.as<cuda::StepState>(); }

    // A RopeStore at positions pos0.. (or the step's position in device memory during a step).
    cuda::RopeStore positioned(int64_t rows, int64_t pos0, int32_t head_dim) const {
        cuda::RopeStore a;
        a.rows = rows;
        a.pos0 = pos0;
        a.head_dim = head_dim;
        if (in_step_) a.pos_dev = &step_state()->pos;
        return a;
    }
    static void store_into(cuda::RopeStore& a, const float* k, const float* v, int32_t kv_heads,
                           int64_t capacity, void* k_cache, void* v_cache) {
        a.k = k;
        a.v = v;
        a.kv_heads = kv_heads;
        a.capacity = capacity;
        a.k_cache = static_cast<uint16_t*>(k_cache);
        a.v_cache = static_cast<uint16_t*>(v_cache);
    }

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
    std::unique_ptr<cuda::Matmul> gemm_;
    cuda::DeviceBuffer step_;                   // cuda::StepState of the decode step
    bool in_step_ = false;                      // inside decode_step: read step_ for token/pos
    std::unique_ptr<cuda::DecodeGraph> graph_;  // the recorded decode step
    cuda::DeviceBuffer tokens_;             // this call's token ids
    cuda::DeviceBuffer inv_freq_;           // RoPE inverse frequencies (head_dim / 2)
    const float* inv_freq_source_ = nullptr;
    int64_t inv_freq_count_ = 0;
    cuda::DeviceBuffer attention_scratch_;  // decode's partial results per key split
    int scratch_splits_ = 0, scratch_heads_ = 0, scratch_kv_heads_ = 0, scratch_head_dim_ = 0;
    std::unique_ptr<cuda::SparsePrefill> sparse_;  // block-sparse prefill state (first use)
    std::unique_ptr<cuda::LogitSummarizer> summarizer_;  // logits on the device (first use)
    std::unique_ptr<cuda::RowDrawer> drawer_;            // whole-row draws (first use)
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) {
    return std::make_unique<CudaBackend>(device);
}

}  // namespace tdm
