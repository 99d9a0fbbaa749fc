// The avx512_bf16 level: the AVX-512 level with bf16 weights multiplied by vdpbf16ps, which
// takes pairs of bf16 and accumulates their dot product into f32 lanes: 32 multiply-adds per
// instruction, twice the f32 FMA rate, and no widening of the weights on the way.
//
// The activations are rounded to bf16 (round to nearest even) to meet the weights. That adds a
// relative error of at most 2^-9 per element of x, below what bf16 weights already carry; the
// accumulation stays f32. f32 and f16 weights keep the exact AVX-512 kernels.
//
// See isa_avx2.cpp for why the includes come before the target pragma.
// GCC 12's AVX-512 headers build "undefined" vectors by self-initialisation, which its own
// uninitialised-use warnings then flag at every use; silence them for the header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "kernels/cpu/kernel_table.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")

#include "kernels/cpu/gemm_simd.h"
#include "kernels/cpu/simd_avx512.h"

namespace tdm::cpu {
namespace {

using V = VecAvx512;

__mmask32 first32(int n) { return n >= 32 ? ~0u : (1u << n) - 1u; }

// x[0:k] (k <= 32) as 16 bf16 pairs, zero past k.
__m512i bf16_pairs(const float* x, int k) {
    __m512 lo = k >= 16 ? _mm512_loadu_ps(x) : V::load(x, k);
    __m512 hi = k >= 32 ? _mm512_loadu_ps(x + 16) : V::load(x + 16, k > 16 ? k - 16 : 0);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

__m512 dot2(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

// GEMM traits for gemm_simd.h's driver: a[kp][MR] and b[kp][NR] hold pairs (k = 2 kp, 2 kp + 1)
// of bf16 in one uint32, so a broadcast of a and a load of b feed vdpbf16ps directly.
struct Bf16Gemm {
    using Packed = uint32_t;
    static constexpr int W = 16;
    static constexpr int MR = 14;  // 14 x 32 tile: 28 accumulators + 2 of b
    static constexpr int NR = 32;
    static constexpr int64_t kKC = 512;  // 256 pairs: b sliver = 32 KiB
    static constexpr int64_t kMC = 36 * MR;

    static int64_t packed_k(int64_t kc) { return (kc + 1) / 2; }

    // a[q][m] = (x[m][2q], x[m][2q + 1]) as bf16, zero past kc and for rows <= m < MR:
    // 16 pairs of each row at a time, transposed in registers.
    static void pack_a(const float* x, int64_t ldx, int rows, int64_t kc, uint32_t* a) {
        for (int64_t q = 0; q < packed_k(kc); q += 16) {
            const int k = kc - 2 * q < 32 ? static_cast<int>(kc - 2 * q) : 32;
            __m512 r[16];
            for (int i = 0; i < 16; ++i)
                r[i] = i < rows ? _mm512_castsi512_ps(bf16_pairs(x + i * ldx + 2 * q, k))
                                : _mm512_setzero_ps();
            V::transpose(r);
            for (int i = 0; i < (k + 1) / 2; ++i)
                V::store(reinterpret_cast<float*>(a + (q + i) * MR), r[i], MR);
        }
    }

    // b[q][j] = (W[n + j][k0 + 2q], W[n + j][k0 + 2q + 1]), zero past kc and for nr <= j < NR.
    // A pair of bf16 is one 32-bit lane, so the f32 register transpose moves pairs intact.
    static void pack_b(const MatmulProblem& p, int64_t n, int nr, int64_t k0, int64_t kc,
                       uint32_t* b) {
        const uint16_t* w = static_cast<const uint16_t*>(p.w);
        for (int jb = 0; jb < NR; jb += 16) {
            for (int64_t q = 0; q < packed_k(kc); q += 16) {
                const int k = kc - 2 * q < 32 ? static_cast<int>(kc - 2 * q) : 32;
                __m512 r[16];
                for (int i = 0; i < 16; ++i) {
                    const uint16_t* src = w + (n + jb + i) * p.K + k0 + 2 * q;
                    r[i] = jb + i < nr
                               ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(first32(k), src))
                               : _mm512_setzero_ps();
                }
                V::transpose(r);
                for (int i = 0; i < (k + 1) / 2; ++i)
                    V::store(reinterpret_cast<float*>(b + (q + i) * NR + jb), r[i]);
            }
        }
    }

    template <int R>
    static void tile(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                     int nr, bool first, const float* bias) {
        __m512 acc[R][2];
        for (int m = 0; m < R; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
        for (int64_t k = 0; k < kp; ++k) {
            __m512i b0 = _mm512_loadu_si512(b + k * NR);
            __m512i b1 = _mm512_loadu_si512(b + k * NR + 16);
            for (int m = 0; m < R; ++m) {
                __m512i av = _mm512_set1_epi32(static_cast<int>(a[k * MR + m]));
                acc[m][0] = dot2(acc[m][0], av, b0);
                acc[m][1] = dot2(acc[m][1], av, b1);
            }
        }
        store_tile<V, R>(acc, c, ldc, nr, first, bias);
    }
};

// GEMV with bf16 weights: x is converted to bf16 once per call into scratch (each row padded
// with zeros to a multiple of 32), then each 32 weights of a row are one load and one vdpbf16ps.
struct Bf16Gemv {
    static constexpr int kMaxRows = 8;
    static constexpr int kRowBlock = 4;

    // W rows per tile for mb x rows, with at most 16 accumulators (as Gemv::row_block).
    static constexpr int row_block(int mb) {
        int nb = 16 / (mb == 1 ? 2 : mb);
        return nb > kRowBlock ? kRowBlock : (nb < 1 ? 1 : nb);
    }

    static int64_t padded(int64_t K) { return (K + 31) / 32 * 32; }

    template <int MB, int NB>
    static void tile(const MatmulProblem& p, const uint16_t* xb, int64_t m0, int64_t n) {
        constexpr int U = MB == 1 ? 2 : 1;
        const int64_t K = p.K, Kp = padded(K);
        const uint16_t* wr[NB];
        for (int r = 0; r < NB; ++r) wr[r] = static_cast<const uint16_t*>(p.w) + (n + r) * K;
        __m512 acc[U][MB][NB];
        for (int u = 0; u < U; ++u)
            for (int m = 0; m < MB; ++m)
                for (int r = 0; r < NB; ++r) acc[u][m][r] = _mm512_setzero_ps();
        // Prefetch the same columns of rows a tile or so further down, as Gemv::tile does.
        const int64_t row_bytes = K * 2;
        const int64_t tiles = 8 * 1024 / (NB * row_bytes), tiles_ahead = tiles > 0 ? tiles : 1;
        const char* ahead = reinterpret_cast<const char*>(wr[0] + tiles_ahead * NB * K);
        int64_t k = 0;
        for (; k + 32 * U <= K; k += 32 * U) {
            for (int r = 0; r < NB; ++r)
                for (int line = 0; line < 64 * U; line += 64)
                    __builtin_prefetch(ahead + r * row_bytes + 2 * k + line);
            for (int u = 0; u < U; ++u) {
                __m512i wv[NB];
                for (int r = 0; r < NB; ++r) wv[r] = _mm512_loadu_si512(wr[r] + k + 32 * u);
                for (int m = 0; m < MB; ++m) {
                    __m512i xv = _mm512_loadu_si512(xb + m * Kp + k + 32 * u);
                    for (int r = 0; r < NB; ++r) acc[u][m][r] = dot2(acc[u][m][r], wv[r], xv);
                }
            }
        }
        for (; k < K; k += 32) {
            __mmask32 mask = first32(static_cast<int>(K - k));
            __m512i wv[NB];
            for (int r = 0; r < NB; ++r) wv[r] = _mm512_maskz_loadu_epi16(mask, wr[r] + k);
            for (int m = 0; m < MB; ++m) {
                __m512i xv = _mm512_loadu_si512(xb + m * Kp + k);
                for (int r = 0; r < NB; ++r) acc[0][m][r] = dot2(acc[0][m][r], wv[r], xv);
            }
        }
        for (int m = 0; m < MB; ++m) {
            float* y = p.y + (m0 + m) * p.ldy + n;
            for (int r = 0; r < NB; ++r) {
                __m512 a = acc[0][m][r];
                for (int u = 1; u < U; ++u) a = _mm512_add_ps(a, acc[u][m][r]);
                float s = _mm512_reduce_add_ps(a);
                y[r] = p.bias ? s + p.bias[n + r] : s;
            }
        }
    }

    template <int MB>
    static void rows(const MatmulProblem& p, const uint16_t* xb, int64_t m0, int64_t n0,
                     int64_t n1) {
        constexpr int NB = row_block(MB);
        int64_t n = n0;
        for (; n + NB <= n1; n += NB) tile<MB, NB>(p, xb, m0, n);
        for (; n < n1; ++n) tile<MB, 1>(p, xb, m0, n);
    }

    static void run(const MatmulProblem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                    void* scratch) {
        const int64_t K = p.K, Kp = padded(K);
        uint16_t* xb = static_cast<uint16_t*>(scratch);
        for (int64_t m = m0; m < m1; ++m) {
            const float* src = p.x + m * p.ldx;
            uint16_t* dst = xb + (m - m0) * Kp;
            for (int64_t k = 0; k < Kp; k += 32) {
                int n = K - k < 32 ? static_cast<int>(K - k) : 32;
                _mm512_storeu_si512(dst + k, bf16_pairs(src + k, n));
            }
        }
        for (int64_t m = m0; m < m1; m += kMaxRows) {
            const uint16_t* x = xb + (m - m0) * Kp;
            switch (m1 - m < kMaxRows ? m1 - m : kMaxRows) {
                case 1:
                    rows<1>(p, x, m, n0, n1);
                    break;
                case 2:
                    rows<2>(p, x, m, n0, n1);
                    break;
                case 3:
                    rows<3>(p, x, m, n0, n1);
                    break;
                case 4:
                    rows<4>(p, x, m, n0, n1);
                    break;
                case 5:
                    rows<5>(p, x, m, n0, n1);
                    break;
                case 6:
                    rows<6>(p, x, m, n0, n1);
                    break;
                case 7:
                    rows<7>(p, x, m, n0, n1);
                    break;
                default:
                    rows<8>(p, x, m, n0, n1);
                    break;
            }
        }
    }

    static size_t scratch_bytes(int64_t rows, int64_t K) {
        return static_cast<size_t>(rows * padded(K)) * sizeof(uint16_t);
    }
};

using G = GemmDriver<Bf16Gemm>;

}  // namespace
}  // namespace tdm::cpu

#pragma GCC pop_options

namespace tdm::cpu {

const KernelTable& avx512bf16_kernels() {
    static const KernelTable table = [] {
        KernelTable t = avx512_kernels();
        t.level = IsaLevel::Avx512Bf16;
        t.features = "avx512f avx512bw avx512vl avx512_bf16 avx2 fma f16c";
        const int bf16 = static_cast<int>(DType::BF16);
        t.gemv[bf16] = {&Bf16Gemv::run, &Bf16Gemv::scratch_bytes, Bf16Gemv::kMaxRows,
                        Bf16Gemv::kRowBlock};
        t.gemm[bf16] = G::kernel();
        return t;
    }();
    return table;
}

}  // namespace tdm::cpu
