// The block-sparse estimators' dot products (attention/estimate_dot.h) many at a time: a block of
// rows of `a` against a block of rows of `b`, each pair's eight partial sums held in the eight
// lanes of one register. Every result is bit for bit attention_estimate::dot - the same products
// added into the same eight sums in the same order, the same final combination - so an estimate
// (and the blocks it selects) does not depend on the instruction-set level; what the blocking
// buys is that a loaded vector serves several pairs (XAttention's reshaped keys are read once per
// block of query rows instead of once per row).
//
// V must hold exactly 8 floats (VecPortable, VecAvx2): the lanes are the reference's eight sums.
// Products and sums stay separate operations: a fused multiply-add would round once where the
// reference rounds twice, so contraction is turned off for this code.
//
// Include only from an ISA translation unit (isa_*.cpp), after its `#pragma GCC target`.
#pragma once

#include <cstdint>

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

namespace tdm::cpu {
namespace {

template <class V>
struct EstimateDots {
    static_assert(V::W == 8, "the lanes are attention_estimate::dot's eight partial sums");

    // out[r * ldo + c] = dot(a + r * lda, b + c * ldb, n) for r < R, c < C.
    template <int R, int C>
    static void block(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t n,
                      float* out, int64_t ldo) {
        typename V::T acc[R][C];
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c) acc[r][c] = V::zero();
        int64_t k = 0;
        for (; k + 8 <= n; k += 8) {
            typename V::T bv[C];
            for (int c = 0; c < C; ++c) bv[c] = V::load(b + c * ldb + k);
            for (int r = 0; r < R; ++r) {
                const typename V::T av = V::load(a + r * lda + k);
                for (int c = 0; c < C; ++c) acc[r][c] = V::add(acc[r][c], V::mul(av, bv[c]));
            }
        }
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c) {
                float t[8];
                V::store(t, acc[r][c]);
                float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
                for (int64_t i = k; i < n; ++i) s += a[r * lda + i] * b[c * ldb + i];
                out[r * ldo + c] = s;
            }
    }

    // Every pair of `rows` rows of a and `cols` rows of b; b's rows in pairs on the outside, so
    // the two rows of b stay in L1 while every row of a passes them.
    static void run(const float* a, int64_t lda, int64_t rows, const float* b, int64_t ldb,
                    int64_t cols, int64_t n, float* out, int64_t ldo) {
        int64_t c = 0;
        for (; c + 2 <= cols; c += 2) {
            int64_t r = 0;
            for (; r + 4 <= rows; r += 4)
                block<4, 2>(a + r * lda, lda, b + c * ldb, ldb, n, out + r * ldo + c, ldo);
            for (; r < rows; ++r)
                block<1, 2>(a + r * lda, lda, b + c * ldb, ldb, n, out + r * ldo + c, ldo);
        }
        for (; c < cols; ++c) {
            int64_t r = 0;
            for (; r + 4 <= rows; r += 4)
                block<4, 1>(a + r * lda, lda, b + c * ldb, ldb, n, out + r * ldo + c, ldo);
            for (; r < rows; ++r)
                block<1, 1>(a + r * lda, lda, b + c * ldb, ldb, n, out + r * ldo + c, ldo);
        }
    }
};

}  // namespace
}  // namespace tdm::cpu

#pragma GCC pop_options
