#include "kernels/cpu/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace tdm::cpu::ref {

void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W, const VectorView& bias,
            float* y, int64_t ldy, bool round_x_to_bf16) {
    for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < W.rows; ++n) {
            double s = bias.empty() ? 0.0 : load_as_f32(bias.data, n, bias.dtype);
            for (int64_t k = 0; k < W.cols; ++k) {
                float xv = x[m * ldx + k];
                if (round_x_to_bf16) xv = bf16_to_f32(f32_to_bf16(xv));
                s += double(xv) * load_as_f32(W.data, n * W.cols + k, W.dtype);
            }
            y[m * ldy + n] = static_cast<float>(s);
        }
    }
}

void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n, float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        double ss = 0.0;
        for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
        double inv = 1.0 / std::sqrt(ss / n + eps);
        for (int64_t i = 0; i < n; ++i)
            out[r * n + i] =
                static_cast<float>(x[r * n + i] * inv * load_as_f32(w.data, i, w.dtype));
    }
}

void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int32_t* positions,
          const float* inv_freq) {
    const int64_t half = head_dim / 2;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t h = 0; h < heads; ++h) {
            float* v = x + (r * heads + h) * head_dim;
            for (int64_t i = 0; i < half; ++i) {
                // The angle is rounded to f32 as transformers computes it; its cos/sin exactly.
                double angle = static_cast<float>(static_cast<float>(positions[r]) * inv_freq[i]);
                double c = std::cos(angle), s = std::sin(angle);
                double a = v[i], b = v[i + half];
                v[i] = static_cast<float>(a * c - b * s);
                v[i + half] = static_cast<float>(b * c + a * s);
            }
        }
    }
}

void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld, float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < n; ++i) {
            double g = gate[r * ld + i], u = up[r * ld + i];
            out[r * n + i] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
        }
    }
}

void add_inplace(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void attention(const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s,
               float* out) {
    const int64_t D = s.head_dim, group = s.heads / s.kv_heads;
    const int64_t keys = s.pos0 + s.n_new;
    std::vector<double> p(static_cast<size_t>(keys));
    for (int64_t i = 0; i < s.n_new; ++i) {
        const int64_t pos = s.pos0 + i;
        for (int64_t h = 0; h < s.heads; ++h) {
            const int64_t kvh = h / group;
            const float* qv = q + (i * s.heads + h) * D;
            double mx = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < keys; ++j) {
                bool visible = j <= pos && (s.window <= 0 || j > pos - s.window);
                if (!visible) {
                    p[j] = -std::numeric_limits<double>::infinity();
                    continue;
                }
                const float* kv = k_cache + (kvh * s.capacity + j) * D;
                double dot = 0.0;
                for (int64_t d = 0; d < D; ++d) dot += double(qv[d]) * kv[d];
                p[j] = dot * s.scale;
                mx = std::max(mx, p[j]);
            }
            double sum = 0.0;
            for (int64_t j = 0; j < keys; ++j) {
                p[j] = std::exp(p[j] - mx);
                sum += p[j];
            }
            float* o = out + (i * s.heads + h) * D;
            for (int64_t d = 0; d < D; ++d) {
                double acc = 0.0;
                for (int64_t j = 0; j < keys; ++j)
                    acc += p[j] * v_cache[(kvh * s.capacity + j) * D + d];
                o[d] = static_cast<float>(acc / sum);
            }
        }
    }
}

}  // namespace tdm::cpu::ref
