// The block-sparse estimators' dot products (attention/estimate_dot.h) many at a time: a block of
// rows of `a` against a block of rows of `b`, each pair's eight partial sums held in eight lanes
// of a register. Every result is bit for bit attention_estimate::dot - the same products added
// into the same eight sums in the same order, the same final combination - so an estimate (and
// the blocks it selects) does not depend on the instruction-set level; what the blocking buys is
// that a loaded vector serves several pairs (XAttention's reshaped keys are read once per block
// of query rows instead of once per row).
//
// Lanes describes the register: P pairs a register, eight lanes each (EightLanes<V> for an
// 8-float V: VecPortable, VecAvx2; Avx512Pairs holds two). Products and sums stay separate
// operations: a fused multiply-add would round once where the reference rounds twice, so
// contraction is turned off for this code.
//
// Include only from an ISA translation unit (isa_*.cpp), after its `#pragma GCC target`.
#pragma once

#include <cstdint>

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

namespace tdm::cpu {
namespace {

// One pair a register: V's 8 lanes are the reference's eight sums.
template <class V>
struct EightLanes {
    static_assert(V::W == 8, "the lanes are attention_estimate::dot's eight partial sums");
    static constexpr int P = 1;
    using T = typename V::T;
    static T zero() { return V::zero(); }
    static T load_a(const float* a) { return V::load(a); }
    static T load_b(const float* b, int64_t) { return V::load(b); }
    static T add(T x, T y) { return V::add(x, y); }
    static T mul(T x, T y) { return V::mul(x, y); }
    static void sums(T v, float (&t)[P][8]) { V::store(t[0], v); }
};

template <class L, class Rest = L>
struct EstimateDots {
    static constexpr int P = L::P;

    // out[r * ldo + c] = dot(a + r * lda, b + c * ldb, n) for r < R, c < C * P.
    template <int R, int C>
    static void block(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t n,
                      float* out, int64_t ldo) {
        typename L::T acc[R][C];
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c) acc[r][c] = L::zero();
        int64_t k = 0;
        for (; k + 8 <= n; k += 8) {
            typename L::T bv[C];
            for (int c = 0; c < C; ++c) bv[c] = L::load_b(b + c * P * ldb + k, ldb);
            for (int r = 0; r < R; ++r) {
                const typename L::T av = L::load_a(a + r * lda + k);
                for (int c = 0; c < C; ++c) acc[r][c] = L::add(acc[r][c], L::mul(av, bv[c]));
            }
        }
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c) {
                float t[P][8];
                L::sums(acc[r][c], t);
                for (int p = 0; p < P; ++p) {
                    const int64_t col = c * P + p;
                    float s = ((t[p][0] + t[p][1]) + (t[p][2] + t[p][3])) +
                              ((t[p][4] + t[p][5]) + (t[p][6] + t[p][7]));
                    for (int64_t i = k; i < n; ++i) s += a[r * lda + i] * b[col * ldb + i];
                    out[r * ldo + col] = s;
                }
            }
    }

    // Rows [0, rows) of a against the columns [c, c + C * P) of b.
    template <int C>
    static void columns(const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                        int64_t c, int64_t n, float* out, int64_t ldo) {
        int64_t r = 0;
        for (; r + 4 <= rows; r += 4)
            block<4, C>(a + r * lda, lda, b + c * ldb, ldb, n, out + r * ldo + c, ldo);
        for (; r < rows; ++r)
            block<1, C>(a + r * lda, lda, b + c * ldb, ldb, n, out + r * ldo + c, ldo);
    }

    // Every pair of `rows` rows of a and the columns [c, cols) of b, 2 P columns at a time (on
    // the outside, so those rows of b stay in L1 while every row of a passes them), then P; a
    // rest narrower than P (P = 2: one column) goes to Rest.
    static void run_from(const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                         int64_t c, int64_t cols, int64_t n, float* out, int64_t ldo) {
        for (; c + 2 * P <= cols; c += 2 * P) columns<2>(a, lda, rows, b, ldb, c, n, out, ldo);
        for (; c + P <= cols; c += P) columns<1>(a, lda, rows, b, ldb, c, n, out, ldo);
        if (c < cols) EstimateDots<Rest>::run_from(a, lda, rows, b, ldb, c, cols, n, out, ldo);
    }

    static void run(const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                    int64_t cols, int64_t n, float* out, int64_t ldo) {
        run_from(a, lda, rows, b, ldb, 0, cols, n, out, ldo);
    }
};

}  // namespace
}  // namespace tdm::cpu

#pragma GCC pop_options
