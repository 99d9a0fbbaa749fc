// Matrix-vector product for decode (and a few rows at once, e.g. a speculative-decoding check):
// y[m, n] = x[m, :] . W[n, :] for a few rows m0 <= m < m1 and n0 <= n < n1.
//
// This is memory-bound: each weight is used (m1 - m0) times, so the loop streams W once per
// kMaxRows rows of x, a few W rows at a time (interleaved sequential streams), with x in L1.
// Weights are widened to f32 as they are loaded, so every dtype computes with exact products;
// the avx512_bf16 level replaces the bf16 case with vdpbf16ps (isa_avx512bf16.cpp).
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"

namespace tdm::cpu {
namespace {

// kAccumulators: vector registers a tile may spend on accumulators (24 of AVX-512's 32, 8 of
// AVX2's 16). A tile covers MB x rows and NB = kRowBlock W rows where they fit; on AVX-512 up to
// kMaxRows = 6 x rows share one pass over W. (Tiles of 3 W rows measured 2-3x slower than tiles
// of 4 on Zen 5 even with W in L3, so more x rows take more passes rather than narrower tiles.)
template <class V, DType D, int kAccumulators = 24>
struct Gemv {
    using T = typename V::T;
    static constexpr int W = V::W;
    static constexpr int kRowBlock = 4;  // W rows per register tile, at most
    static constexpr int kMaxRows = kAccumulators / kRowBlock > 4 ? kAccumulators / kRowBlock : 4;

    // W rows per tile for MB x rows: as many as the accumulators allow, up to kRowBlock.
    static constexpr int row_block(int mb) {
        int nb = kAccumulators / (mb == 1 ? 2 : mb);
        return nb > kRowBlock ? kRowBlock : (nb < 1 ? 1 : nb);
    }

    static T load_w(const void* row, int64_t k, int n = W) {
        if constexpr (D == DType::F32) {
            const float* p = static_cast<const float*>(row) + k;
            return n == W ? V::load(p) : V::load(p, n);
        } else if constexpr (D == DType::F16) {
            const uint16_t* p = static_cast<const uint16_t*>(row) + k;
            return n == W ? V::load_f16(p) : V::load_f16(p, n);
        } else {
            const uint16_t* p = static_cast<const uint16_t*>(row) + k;
            return n == W ? V::load_bf16(p) : V::load_bf16(p, n);
        }
    }

    // Rows ahead to prefetch: whole tiles of `nb` rows, at least one and about kPrefetchBytes
    // (8 KiB measured as good as anything from 6 to 48 KiB at the 125M model's shapes).
    static int64_t prefetch_rows(size_t row_bytes, int nb) {
        constexpr size_t kPrefetchBytes = 8 * 1024;
        size_t tiles = kPrefetchBytes / (row_bytes * static_cast<size_t>(nb));
        return static_cast<int64_t>(nb) * static_cast<int64_t>(tiles > 0 ? tiles : 1);
    }

    // y[m0 + m, n + r] for m < MB, r < NB. With one x row the k loop is unrolled twice into
    // separate accumulators, so that 2 * NB FMA chains hide the FMA latency.
    template <int MB, int NB>
    static void tile(const MatmulProblem& p, int64_t m0, int64_t n) {
        constexpr int U = MB == 1 ? 2 : 1;
        const int64_t K = p.K;
        const size_t row_bytes = static_cast<size_t>(K) * dtype_size(D);
        const uint8_t* w0 = static_cast<const uint8_t*>(p.w) + static_cast<size_t>(n) * row_bytes;
        const void* wr[NB];
        for (int r = 0; r < NB; ++r) wr[r] = w0 + r * row_bytes;
        const float* xr[MB];
        for (int m = 0; m < MB; ++m) xr[m] = p.x + (m0 + m) * p.ldx;

        T acc[U][MB][NB];
        for (int u = 0; u < U; ++u)
            for (int m = 0; m < MB; ++m)
                for (int r = 0; r < NB; ++r) acc[u][m][r] = V::zero();

        // The hardware prefetchers alone leave this latency-bound on streams this short (a row
        // is a few KiB): measured 16 GB/s for f32 on two Zen 5 cores, against ~60 with this.
        // So each step also prefetches the same columns of the rows a tile or so further down.
        constexpr int kStepBytes = U * W * (D == DType::F32 ? 4 : 2);
        const char* ahead =
            reinterpret_cast<const char*>(w0) + prefetch_rows(row_bytes, NB) * row_bytes;
        int64_t k = 0;
        for (; k + U * W <= K; k += U * W) {
            const char* pf = ahead + k * static_cast<int64_t>(dtype_size(D));
            for (int r = 0; r < NB; ++r)
                for (int line = 0; line < kStepBytes; line += 64)
                    __builtin_prefetch(pf + r * row_bytes + line);
            for (int u = 0; u < U; ++u) {
                T wv[NB];
                for (int r = 0; r < NB; ++r) wv[r] = load_w(wr[r], k + u * W);
                for (int m = 0; m < MB; ++m) {
                    T xv = V::load(xr[m] + k + u * W);
                    for (int r = 0; r < NB; ++r) acc[u][m][r] = V::fmadd(wv[r], xv, acc[u][m][r]);
                }
            }
        }
        for (; k < K; k += W) {
            int rem = K - k < W ? static_cast<int>(K - k) : W;
            T wv[NB];
            for (int r = 0; r < NB; ++r) wv[r] = load_w(wr[r], k, rem);
            for (int m = 0; m < MB; ++m) {
                T xv = V::load(xr[m] + k, rem);
                for (int r = 0; r < NB; ++r) acc[0][m][r] = V::fmadd(wv[r], xv, acc[0][m][r]);
            }
        }
        for (int m = 0; m < MB; ++m) {
            float* y = p.y + (m0 + m) * p.ldy + n;
            for (int r = 0; r < NB; ++r) {
                T a = acc[0][m][r];
                for (int u = 1; u < U; ++u) a = V::add(a, acc[u][m][r]);
                float s = V::reduce_add(a);
                y[r] = p.bias ? s + p.bias[n + r] : s;
            }
        }
    }

    template <int MB>
    static void rows(const MatmulProblem& p, int64_t m0, int64_t n0, int64_t n1) {
        constexpr int NB = row_block(MB);
        int64_t n = n0;
        for (; n + NB <= n1; n += NB) tile<MB, NB>(p, m0, n);
        for (; n < n1; ++n) tile<MB, 1>(p, m0, n);
    }

    // Passes of equal height (7 rows: 4 + 3, not 6 + 1), each streaming W once.
    static void run(const MatmulProblem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1, void*) {
        const int64_t passes = (m1 - m0 + kMaxRows - 1) / kMaxRows;
        const int64_t height = (m1 - m0 + passes - 1) / passes;
        for (int64_t m = m0; m < m1; m += height) {
            switch (m1 - m < height ? m1 - m : height) {
                case 1:
                    rows<1>(p, m, n0, n1);
                    break;
                case 2:
                    rows<2>(p, m, n0, n1);
                    break;
                case 3:
                    rows<3>(p, m, n0, n1);
                    break;
                case 4:
                    rows<4>(p, m, n0, n1);
                    break;
                case 5:
                    if constexpr (kMaxRows >= 5) rows<5>(p, m, n0, n1);
                    break;
                default:
                    if constexpr (kMaxRows >= 6) rows<6>(p, m, n0, n1);
                    break;
            }
        }
    }

    static size_t scratch_bytes(int64_t, int64_t) { return 0; }

    static constexpr MatmulKernel kernel() { return {&run, &scratch_bytes, kMaxRows, kRowBlock}; }
};

}  // namespace
}  // namespace tdm::cpu
