// Front ends of the element-wise kernels: argument checks, then one call into the active level.
// (RoPE's cos/sin are computed here, once per row, and shared by all heads of the row.)
#include <cmath>
#include <string>

#include "core/error.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/kernels.h"

namespace tdm::cpu {

void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n, float* out) {
    TDM_REQUIRE(
        rows >= 0 && n > 0, TDM_ERR_INVALID_ARGUMENT,
        "rmsnorm: bad size (rows=" + std::to_string(rows) + ", n=" + std::to_string(n) + ")");
    TDM_REQUIRE(w.size == n && !w.empty(), TDM_ERR_INVALID_ARGUMENT,
                "rmsnorm: weight has " + std::to_string(w.size) + " entries, rows have " +
                    std::to_string(n));
    TDM_REQUIRE(eps >= 0.0f, TDM_ERR_INVALID_ARGUMENT,
                "rmsnorm: eps must be >= 0, got " + std::to_string(eps));
    if (rows == 0) return;
    TDM_REQUIRE(x != nullptr && out != nullptr, TDM_ERR_INVALID_ARGUMENT, "rmsnorm: null x or out");
    active_kernels().rmsnorm(x, w.data, w.dtype, eps, rows, n, out);
}

void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int32_t* positions,
          const float* inv_freq) {
    constexpr int64_t kMaxHalf = 512;
    TDM_REQUIRE(
        rows >= 0 && heads > 0 && head_dim > 0 && head_dim % 2 == 0 && head_dim / 2 <= kMaxHalf,
        TDM_ERR_INVALID_ARGUMENT,
        "rope: bad shape (rows=" + std::to_string(rows) + ", heads=" + std::to_string(heads) +
            ", head_dim=" + std::to_string(head_dim) + "; head_dim must be even and at most 1024)");
    if (rows == 0) return;
    TDM_REQUIRE(x != nullptr && positions != nullptr && inv_freq != nullptr,
                TDM_ERR_INVALID_ARGUMENT, "rope: null x, positions or inv_freq");
    const KernelTable& kt = active_kernels();
    const int64_t half = head_dim / 2;
    float cos[kMaxHalf], sin[kMaxHalf];
    for (int64_t r = 0; r < rows; ++r) {
        // As transformers does: the angle is an f32 product, its cos and sin are taken in f32.
        const float pos = static_cast<float>(positions[r]);
        for (int64_t i = 0; i < half; ++i) {
            const float angle = pos * inv_freq[i];
            cos[i] = std::cos(angle);
            sin[i] = std::sin(angle);
        }
        kt.rope_row(x + r * heads * head_dim, heads, head_dim, cos, sin);
    }
}

void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld, float* out) {
    TDM_REQUIRE(rows >= 0 && n >= 0 && ld >= n, TDM_ERR_INVALID_ARGUMENT,
                "swiglu: bad shape (rows=" + std::to_string(rows) + ", n=" + std::to_string(n) +
                    ", ld=" + std::to_string(ld) + ")");
    if (rows == 0 || n == 0) return;
    TDM_REQUIRE(gate != nullptr && up != nullptr && out != nullptr, TDM_ERR_INVALID_ARGUMENT,
                "swiglu: null gate, up or out");
    active_kernels().swiglu(gate, up, rows, n, ld, out);
}

void add_inplace(float* y, const float* x, int64_t n) {
    TDM_REQUIRE(n >= 0, TDM_ERR_INVALID_ARGUMENT, "add_inplace: n < 0");
    if (n == 0) return;
    TDM_REQUIRE(y != nullptr && x != nullptr, TDM_ERR_INVALID_ARGUMENT, "add_inplace: null y or x");
    active_kernels().add(y, x, n);
}

void estimate_dots(const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                   int64_t cols, int64_t n, float* out, int64_t ldo) {
    TDM_REQUIRE(rows >= 0 && cols >= 0 && n >= 0 && lda >= n && ldb >= n && ldo >= cols,
                TDM_ERR_INVALID_ARGUMENT,
                "estimate_dots: bad shape (rows=" + std::to_string(rows) + ", cols=" +
                    std::to_string(cols) + ", n=" + std::to_string(n) + ")");
    if (rows == 0 || cols == 0) return;
    active_kernels().estimate_dots(a, lda, rows, b, ldb, cols, n, out, ldo);
}

}  // namespace tdm::cpu
