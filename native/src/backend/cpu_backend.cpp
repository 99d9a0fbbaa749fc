// The CPU backend: each operation is one call into kernels/cpu on this session's thread pool.
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "attention/cpu_sparse_attention.h"
#include "backend/backend.h"
#include "core/error.h"
#include "kernels/cpu/kernels.h"

namespace tdm {
namespace {

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads) : pool_(threads) {}

    tdm_device device() const override { return TDM_DEVICE_CPU; }

    float* allocate(int64_t floats) override {
        // 64-byte alignment: one cache line, and the width of an AVX-512 register.
        size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
        TDM_REQUIRE(p != nullptr, TDM_ERR_OUT_OF_MEMORY,
                    "cannot allocate " + std::to_string(bytes) + " bytes of activations");
        std::memset(p, 0, bytes);
        return static_cast<float*>(p);
    }
    void release(float* p) override { std::free(p); }

    void embed(const int32_t* tokens, int64_t n, const MatrixView& table, float* out) override {
        pool_.parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r) {
                const void* row = table.row_ptr(tokens[r]);
                float* dst = out + r * table.cols;
                for (int64_t c = 0; c < table.cols; ++c) dst[c] = load_as_f32(row, c, table.dtype);
            }
        });
    }

    void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n,
                 float* out) override {
        pool_.parallel_for(0, rows, 16, [&](int64_t lo, int64_t hi) {
            cpu::rmsnorm(x + lo * n, w, eps, hi - lo, n, out + lo * n);
        });
    }

    void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                const VectorView& bias, float* y, int64_t ldy) override {
        cpu::matmul(x, M, ldx, W, bias, y, ldy, pool_);
    }

    void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
              const float* inv_freq) override {
        positions_.resize(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) positions_[r] = static_cast<int32_t>(pos0 + r);
        pool_.parallel_for(0, rows, 8, [&](int64_t lo, int64_t hi) {
            cpu::rope(x + lo * heads * head_dim, hi - lo, heads, head_dim, positions_.data() + lo,
                      inv_freq);
        });
    }

    void kv_store(const float* k, const float* v, int64_t n, int64_t pos0, int64_t capacity,
                  int32_t kv_heads, int32_t head_dim, void* k_cache_bytes,
                  void* v_cache_bytes) override {
        auto* k_cache = static_cast<float*>(k_cache_bytes);  // f32 cache (kv_element_bytes)
        auto* v_cache = static_cast<float*>(v_cache_bytes);
        const size_t row_bytes = static_cast<size_t>(head_dim) * sizeof(float);
        for (int32_t h = 0; h < kv_heads; ++h) {
            for (int64_t r = 0; r < n; ++r) {
                int64_t src = (r * kv_heads + h) * head_dim;
                int64_t dst = (h * capacity + pos0 + r) * head_dim;
                std::memcpy(k_cache + dst, k + src, row_bytes);
                std::memcpy(v_cache + dst, v + src, row_bytes);
            }
        }
    }

    void attention(const float* q, const void* k_cache, const void* v_cache,
                   const AttentionCall& c, float* out) override {
        cpu::AttentionShape s{c.n_new, c.pos0, c.capacity, c.heads, c.kv_heads, c.head_dim,
                              c.window, c.scale};
        cpu::attention(q, static_cast<const float*>(k_cache), static_cast<const float*>(v_cache),
                       s, out, pool_);
    }

    // Estimation, selection and the block-sparse kernel all run on this session's pool.
    void attention_sparse(const float* q, const void* k_cache, const void* v_cache,
                          const AttentionCall& c, const SparseAttention& sparse, float* out,
                          float* density_host) override {
        cpu::attention_sparse(q, static_cast<const float*>(k_cache),
                              static_cast<const float*>(v_cache), c, sparse, out, density_host,
                              pool_);
    }

    void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld,
                float* out) override {
        pool_.parallel_for(0, rows, 4, [&](int64_t lo, int64_t hi) {
            cpu::swiglu(gate + lo * ld, up + lo * ld, hi - lo, n, ld, out + lo * n);
        });
    }

    void add_inplace(float* y, const float* x, int64_t n) override {
        pool_.parallel_for(0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
            cpu::add_inplace(y + lo, x + lo, hi - lo);
        });
    }

    void copy(void* dst, const void* src, int64_t bytes) override {
        std::memmove(dst, src, static_cast<size_t>(bytes));
    }

    void to_host(const float* src, int64_t floats, float* dst) override {
        if (src != dst) std::memcpy(dst, src, static_cast<size_t>(floats) * sizeof(float));
    }

private:
    ThreadPool pool_;
    std::vector<int32_t> positions_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
    return std::make_unique<CpuBackend>(threads);
}

}  // namespace tdm
