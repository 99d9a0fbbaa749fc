// Blocked matrix-matrix product for prefill: y[m, n] = x[m, :] . W[n, :] (+ bias[n]), in the
// BLIS arrangement.
//
//   for each block of kMC rows of x (ic):          packed A: kMC x kKC, stays in L2
//     for each block of kKC along k (pc):
//       pack x[ic.., pc..] into MR-row slivers     a[k][MR]
//       for each NR-column sliver of W (jr):
//         pack W[jr.., pc..] transposed            b[k][NR], stays in L1
//         for each MR-row sliver: micro-kernel     MR x NR accumulators in registers
//
// The micro-kernel holds an MR x NR tile of y in registers and per k does NR / W vector loads of
// b, MR broadcasts of a and MR * NR / W FMAs. The first k block writes y (+ bias), later ones add.
// Rows and columns past the edge are zero in the packed slivers, so the micro-kernel always runs
// its full tile and only the stores are trimmed. Traits supplies the packing and the kernel, so
// the avx512_bf16 variant (pairs of bf16, vdpbf16ps) reuses this driver.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/cpu/kernel_table.h"

namespace tdm::cpu {
namespace {

constexpr int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Stores an MR x NR tile (two vectors of W per row): y = acc + bias on the first k block,
// y += acc on the others; nr trims the columns.
template <class V, int R>
inline void store_tile(typename V::T (&acc)[R][2], float* c, int64_t ldc, int nr, bool first,
                       const float* bias) {
    using T = typename V::T;
    constexpr int W = V::W;
    const int n0 = nr < W ? nr : W;
    const int n1 = nr - n0;
    if (nr == 2 * W) {
        T b0 = V::zero(), b1 = V::zero();
        if (first && bias) {
            b0 = V::load(bias);
            b1 = V::load(bias + W);
        }
        for (int m = 0; m < R; ++m) {
            float* row = c + m * ldc;
            T y0 = first ? b0 : V::load(row);
            T y1 = first ? b1 : V::load(row + W);
            V::store(row, V::add(acc[m][0], y0));
            V::store(row + W, V::add(acc[m][1], y1));
        }
        return;
    }
    T b0 = V::zero(), b1 = V::zero();
    if (first && bias) {
        b0 = V::load(bias, n0);
        if (n1 > 0) b1 = V::load(bias + W, n1);
    }
    for (int m = 0; m < R; ++m) {
        float* row = c + m * ldc;
        T y0 = first ? b0 : V::load(row, n0);
        V::store(row, V::add(acc[m][0], y0), n0);
        if (n1 > 0) {
            T y1 = first ? b1 : V::load(row + W, n1);
            V::store(row + W, V::add(acc[m][1], y1), n1);
        }
    }
}

// f32 micro-kernel and packing: a[k][MR] and b[k][NR] are f32, NR = 2 W. f16 and bf16 weights
// are widened to f32 while b is packed.
template <class V, int MR_>
struct F32Gemm {
    using T = typename V::T;
    using Packed = float;
    static constexpr int W = V::W;
    static constexpr int MR = MR_;
    static constexpr int NR = 2 * W;
    static constexpr int64_t kKC = 256;      // b sliver: kKC x NR floats = 32 KiB at W = 16
    static constexpr int64_t kMC = 36 * MR;  // packed A: ~500 rows x kKC, half of L2

    static int64_t packed_k(int64_t kc) { return kc; }

    // a[k][m] = x[m][k] for m < rows, 0 for rows <= m < MR (MR <= W: one register transpose
    // per W values of k).
    static void pack_a(const float* x, int64_t ldx, int rows, int64_t kc, float* a) {
        static_assert(MR <= W, "an A sliver is one transposed block");
        for (int64_t k = 0; k < kc; k += W) {
            const int kw = kc - k < W ? static_cast<int>(kc - k) : W;
            T r[W];
            for (int i = 0; i < W; ++i)
                r[i] = i < rows
                           ? (kw == W ? V::load(x + i * ldx + k) : V::load(x + i * ldx + k, kw))
                           : V::zero();
            V::transpose(r);
            for (int i = 0; i < kw; ++i) V::store(a + (k + i) * MR, r[i], MR);
        }
    }

    // W values of row `row` from column k (kw < W: zero-filled), widened to f32.
    template <DType D>
    static T load_row(const void* w, int64_t K, int64_t row, int64_t k, int kw) {
        if constexpr (D == DType::F32) {
            const float* p = static_cast<const float*>(w) + row * K + k;
            return kw == W ? V::load(p) : V::load(p, kw);
        } else {
            const uint16_t* p = static_cast<const uint16_t*>(w) + row * K + k;
            if constexpr (D == DType::F16)
                return kw == W ? V::load_f16(p) : V::load_f16(p, kw);
            else
                return kw == W ? V::load_bf16(p) : V::load_bf16(p, kw);
        }
    }

    // b[k][j] = W[n + j][k0 + k] as f32 for j < nr, 0 for nr <= j < NR: W x W blocks are loaded
    // (and widened) row by row, transposed in registers and stored column by column.
    template <DType D>
    static void pack_b_typed(const MatmulProblem& p, int64_t n, int nr, int64_t k0, int64_t kc,
                             float* b) {
        for (int jb = 0; jb < NR; jb += W) {
            for (int64_t k = 0; k < kc; k += W) {
                const int kw = kc - k < W ? static_cast<int>(kc - k) : W;
                T r[W];
                for (int i = 0; i < W; ++i)
                    r[i] = jb + i < nr ? load_row<D>(p.w, p.K, n + jb + i, k0 + k, kw) : V::zero();
                V::transpose(r);
                for (int i = 0; i < kw; ++i) V::store(b + (k + i) * NR + jb, r[i]);
            }
        }
    }

    static void pack_b(const MatmulProblem& p, int64_t n, int nr, int64_t k0, int64_t kc,
                       float* b) {
        switch (p.wtype) {
            case DType::F32:
                return pack_b_typed<DType::F32>(p, n, nr, k0, kc, b);
            case DType::F16:
                return pack_b_typed<DType::F16>(p, n, nr, k0, kc, b);
            case DType::BF16:
                return pack_b_typed<DType::BF16>(p, n, nr, k0, kc, b);
        }
    }

    template <int R>
    static void tile(int64_t kp, const float* a, const float* b, float* c, int64_t ldc, int nr,
                     bool first, const float* bias) {
        T acc[R][2];
        for (int m = 0; m < R; ++m) acc[m][0] = acc[m][1] = V::zero();
        for (int64_t k = 0; k < kp; ++k) {
            T b0 = V::load(b + k * NR);
            T b1 = V::load(b + k * NR + W);
            for (int m = 0; m < R; ++m) {
                T av = V::set1(a[k * MR + m]);
                acc[m][0] = V::fmadd(av, b0, acc[m][0]);
                acc[m][1] = V::fmadd(av, b1, acc[m][1]);
            }
        }
        store_tile<V, R>(acc, c, ldc, nr, first, bias);
    }
};

// The kernel for the edge tile of r < MR rows, picked from a table built at compile time.
template <class Tr, size_t... R>
constexpr auto tile_table(std::index_sequence<R...>) {
    using Fn = void (*)(int64_t, const typename Tr::Packed*, const typename Tr::Packed*, float*,
                        int64_t, int, bool, const float*);
    return std::array<Fn, sizeof...(R)>{&Tr::template tile<static_cast<int>(R) + 1>...};
}

template <class Tr>
struct GemmDriver {
    using Packed = typename Tr::Packed;
    static constexpr int MR = Tr::MR, NR = Tr::NR;
    static constexpr int64_t kKC = Tr::kKC, kMC = Tr::kMC;

    static size_t a_bytes() {
        return static_cast<size_t>(kMC * Tr::packed_k(kKC)) * sizeof(Packed);
    }
    static size_t b_bytes() { return static_cast<size_t>(NR * Tr::packed_k(kKC)) * sizeof(Packed); }
    static size_t scratch_bytes(int64_t, int64_t) { return round_up(a_bytes(), 64) + b_bytes(); }

    static void run(const MatmulProblem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                    void* scratch) {
        static constexpr auto tiles = tile_table<Tr>(std::make_index_sequence<MR>());
        Packed* a = static_cast<Packed*>(scratch);
        Packed* b =
            reinterpret_cast<Packed*>(static_cast<uint8_t*>(scratch) + round_up(a_bytes(), 64));
        // Equal row blocks (of whole slivers), so that no block is a thin remainder that costs
        // a full repacking of W for a few rows.
        const int64_t blocks = (m1 - m0 + kMC - 1) / kMC;
        const int64_t step = round_up((m1 - m0 + blocks - 1) / blocks, MR);
        for (int64_t ic = m0; ic < m1; ic += step) {
            const int64_t mc = m1 - ic < step ? m1 - ic : step;
            for (int64_t pc = 0; pc < p.K; pc += kKC) {
                const int64_t kc = p.K - pc < kKC ? p.K - pc : kKC;
                const int64_t kp = Tr::packed_k(kc);
                for (int64_t s = 0; s * MR < mc; ++s) {
                    int rows = static_cast<int>(mc - s * MR < MR ? mc - s * MR : MR);
                    Tr::pack_a(p.x + (ic + s * MR) * p.ldx + pc, p.ldx, rows, kc, a + s * MR * kp);
                }
                for (int64_t jr = n0; jr < n1; jr += NR) {
                    const int nr = static_cast<int>(n1 - jr < NR ? n1 - jr : NR);
                    Tr::pack_b(p, jr, nr, pc, kc, b);
                    const float* bias = p.bias ? p.bias + jr : nullptr;
                    for (int64_t s = 0; s * MR < mc; ++s) {
                        int rows = static_cast<int>(mc - s * MR < MR ? mc - s * MR : MR);
                        tiles[rows - 1](kp, a + s * MR * kp, b, p.y + (ic + s * MR) * p.ldy + jr,
                                        p.ldy, nr, pc == 0, bias);
                    }
                }
            }
        }
    }

    static constexpr MatmulKernel kernel() { return {&run, &scratch_bytes, MR, NR}; }
};

}  // namespace
}  // namespace tdm::cpu
