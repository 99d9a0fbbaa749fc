// One piece of dense causal attention (an AttentionTask): up to kRows query rows of one KV head
// against a range of keys, flash-attention style (online softmax, never the whole score matrix).
//
// Query rows live in the vector lanes: q is packed transposed and pre-scaled, qt[d][row], so the
// scores of key j for W rows at once are sum_d k[j][d] * qt[d][rows] -- broadcasts of k, no
// horizontal sums and no transposition of K. The softmax state (running max m, denominator l)
// is then per lane too, and P.V adds p[row][j] * v[j][:] into an output tile held in registers.
// The rows of a GQA group share each K and V load, which is why a task is one KV head. A task
// of at most kFewRows rows (decode) puts the keys in the lanes instead (few_rows_softmax).
//
// Per block of kKeys keys: scores (masked only in blocks that straddle the causal diagonal or the
// window edge), m_new = max(m, max_j s), p = e^(s - m_new), l = l e^(m - m_new) + sum_j p,
// o = o e^(m - m_new) + p.V. A row that has seen no visible key yet keeps m = -inf; the
// "safe" max (0 in that case) keeps e^(-inf - -inf) out of the arithmetic.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "kernels/cpu/kernel_table.h"

namespace tdm::cpu {
namespace {

template <class V>
struct DenseAttention {
    using T = typename V::T;
    static constexpr int W = V::W;
    static constexpr int kRows = 64;                  // query rows per task (a multiple of W)
    static constexpr int kKeys = 64;                  // keys per block
    static constexpr int kKeyTile = W == 16 ? 8 : 6;  // keys per score register tile
    static constexpr float kNegInf = -std::numeric_limits<float>::infinity();

    static int64_t padded_dim(int32_t head_dim) { return (head_dim + W - 1) / W * W; }

    // Floats: qt [D][kRows], o [kRows][Dp], s [kKeys][kRows], m, l, alpha, pos [kRows].
    static size_t scratch_bytes(int32_t head_dim) {
        int64_t floats =
            head_dim * kRows + kRows * padded_dim(head_dim) + kKeys * kRows + 4 * kRows;
        return static_cast<size_t>(floats) * sizeof(float);
    }

    // s[j][lanes] = sum_d k[j][d] * qt[d][lanes] for J keys and NG lane groups.
    template <int NG, int J>
    static void score_tile(const float* k, int64_t D, const float* qt, int64_t ld, float* s) {
        T acc[J][NG];
        for (int j = 0; j < J; ++j)
            for (int g = 0; g < NG; ++g) acc[j][g] = V::zero();
        for (int64_t d = 0; d < D; ++d) {
            T qv[NG];
            for (int g = 0; g < NG; ++g) qv[g] = V::load(qt + d * ld + g * W);
            for (int j = 0; j < J; ++j) {
                T kb = V::set1(k[j * D + d]);
                for (int g = 0; g < NG; ++g) acc[j][g] = V::fmadd(kb, qv[g], acc[j][g]);
            }
        }
        for (int j = 0; j < J; ++j)
            for (int g = 0; g < NG; ++g) V::store(s + j * ld + g * W, acc[j][g]);
    }

    template <int NG>
    static void scores_for_groups(const float* k, int64_t D, int bk, const float* qt, int64_t ld,
                                  float* s) {
        int j = 0;
        for (; j + kKeyTile <= bk; j += kKeyTile)
            score_tile<NG, kKeyTile>(k + j * D, D, qt, ld, s + j * ld);
        for (; j < bk; ++j) score_tile<NG, 1>(k + j * D, D, qt, ld, s + j * ld);
    }

    static void scores(const float* k, int64_t D, int bk, const float* qt, int64_t ld, int groups,
                       float* s) {
        int g = 0;
        for (; g + 2 <= groups; g += 2) scores_for_groups<2>(k, D, bk, qt + g * W, ld, s + g * W);
        if (g < groups) scores_for_groups<1>(k, D, bk, qt + g * W, ld, s + g * W);
    }

    // Masks one lane group's scores where needed, turns them into probabilities in place, updates
    // m and l, and leaves the rescale factor of the old output in alpha.
    static void softmax_block(float* s, int64_t ld, int bk, int64_t j0, const float* pos,
                              int32_t window, bool masked, float* m, float* l, float* alpha) {
        const T neg_inf = V::set1(kNegInf);
        T posv = V::load(pos);
        T lo = V::sub(posv, V::set1(static_cast<float>(window)));
        T bmax = neg_inf;
        for (int j = 0; j < bk; ++j) {
            T sv = V::load(s + j * ld);
            if (masked) {
                T jv = V::set1(static_cast<float>(j0 + j));
                auto visible = V::le(jv, posv);
                if (window > 0) visible = V::both(visible, V::gt(jv, lo));
                sv = V::select(visible, sv, neg_inf);
                V::store(s + j * ld, sv);
            }
            bmax = V::max(bmax, sv);
        }
        T mold = V::load(m);
        T mnew = V::max(mold, bmax);
        T msafe = V::select(V::eq(mnew, neg_inf), V::zero(), mnew);
        T a = V::exp(V::sub(mold, msafe));
        T sum = V::zero();
        for (int j = 0; j < bk; ++j) {
            T p = V::exp(V::sub(V::load(s + j * ld), msafe));
            V::store(s + j * ld, p);
            sum = V::add(sum, p);
        }
        V::store(l, V::fmadd(V::load(l), a, sum));
        V::store(m, mnew);
        V::store(alpha, a);
    }

    // --- Few query rows (decode: one query times the GQA group) -------------------------------
    // With a handful of rows, rows-in-lanes would leave most lanes idle, so these tasks put the
    // keys in the lanes instead: W keys' products with one q row are accumulated with d in the
    // lanes, and one register transpose plus W - 1 adds turns them into a vector of W scores.
    static constexpr int kFewRows = W / 2;

    // scores[j] = q . k[j] for W keys (jn of them real: the rest score 0 and are never used).
    template <bool kFull>
    static T key_chunk_scores(const float* k, int64_t D, int jn, const float* q) {
        T acc[W];
        for (int j = 0; j < W; ++j) acc[j] = V::zero();
        for (int64_t c = 0; c < D; c += W) {
            const int dn = D - c < W ? static_cast<int>(D - c) : W;
            const T qv = V::load(q + c);  // zero-padded to a whole vector
            for (int j = 0; j < W; ++j) {
                if (!kFull && j >= jn) break;
                const float* kr = k + j * D + c;
                acc[j] = V::fmadd(qv, dn == W ? V::load(kr) : V::load(kr, dn), acc[j]);
            }
        }
        V::transpose(acc);
        T sum = acc[0];
        for (int j = 1; j < W; ++j) sum = V::add(sum, acc[j]);
        return sum;
    }

    // One key block for one row: scores, mask, online-softmax update of (m, l), and the
    // probabilities written to p[j * W + r] (the layout pv_group reads); returns alpha.
    static float few_rows_softmax(const float* k, int64_t D, int bk, int64_t j0, const float* q,
                                  float pos, int32_t window, float* m, float* l, float* p, int r) {
        alignas(64) static constexpr float kIota[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                                        8, 9, 10, 11, 12, 13, 14, 15};
        alignas(64) float sc[kKeys];
        const bool masked = static_cast<float>(j0 + bk - 1) > pos ||
                            (window > 0 && static_cast<float>(j0) <= pos - window);
        const T neg_inf = V::set1(kNegInf), posv = V::set1(pos);
        const T lo = V::set1(pos - static_cast<float>(window));
        T bmax = neg_inf;
        for (int j = 0; j < bk; j += W) {
            const int jn = bk - j < W ? bk - j : W;
            T sv = jn == W ? key_chunk_scores<true>(k + j * D, D, jn, q)
                           : key_chunk_scores<false>(k + j * D, D, jn, q);
            if (masked) {
                T jv = V::add(V::set1(static_cast<float>(j0 + j)), V::load(kIota));
                auto visible = V::le(jv, posv);
                if (window > 0) visible = V::both(visible, V::gt(jv, lo));
                sv = V::select(visible, sv, neg_inf);
            }
            if (jn < W) sv = V::select(V::le(V::load(kIota), V::set1(jn - 1.0f)), sv, neg_inf);
            V::store(sc + j, sv);
            bmax = V::max(bmax, sv);
        }
        const float mold = *m;
        const float bm = V::reduce_max(bmax);
        const float mnew = mold > bm ? mold : bm;
        const float msafe = mnew == kNegInf ? 0.0f : mnew;
        const float a = std::exp(mold - msafe);
        T sum = V::zero();
        for (int j = 0; j < bk; j += W) {
            T e = V::exp(V::sub(V::load(sc + j), V::set1(msafe)));
            V::store(sc + j, e);
            sum = V::add(sum, e);
        }
        for (int j = 0; j < bk; ++j) p[j * W + r] = sc[j];
        *l = *l * a + V::reduce_add(sum);
        *m = mnew;
        return a;
    }

    // o[r][:] = o[r][:] * alpha[r] + sum_j p[j][r] v[j][:] for the R rows of one lane group
    // (R < W only for the last, partly filled group: decode has a handful of rows).
    template <int R>
    static void pv_group(const float* v, int64_t D, int bk, const float* p, int64_t ld,
                         const float* alpha, float* o, int64_t ldo) {
        for (int64_t c = 0; c < D; c += W) {
            const int dn = D - c < W ? static_cast<int>(D - c) : W;
            T acc[R];
            for (int r = 0; r < R; ++r)
                acc[r] = V::mul(V::load(o + r * ldo + c), V::set1(alpha[r]));
            for (int j = 0; j < bk; ++j) {
                T vv = dn == W ? V::load(v + j * D + c) : V::load(v + j * D + c, dn);
                for (int r = 0; r < R; ++r) acc[r] = V::fmadd(V::set1(p[j * ld + r]), vv, acc[r]);
            }
            for (int r = 0; r < R; ++r) V::store(o + r * ldo + c, acc[r]);
        }
    }

    template <size_t... R>
    static constexpr auto pv_table(std::index_sequence<R...>) {
        using Fn = void (*)(const float*, int64_t, int, const float*, int64_t, const float*, float*,
                            int64_t);
        return std::array<Fn, sizeof...(R)>{&pv_group<static_cast<int>(R) + 1>...};
    }

    static void run(const AttentionTask& t, void* scratch) {
        static constexpr auto pv = pv_table(std::make_index_sequence<W>());
        const int64_t D = t.head_dim;
        const int64_t Dp = padded_dim(t.head_dim);
        const int rows = static_cast<int>(t.r1 - t.r0);
        const bool few = rows <= kFewRows;
        const int groups = (rows + W - 1) / W;
        const int64_t ld = static_cast<int64_t>(groups) * W;  // lanes actually used

        float* qt = static_cast<float*>(scratch);  // few rows: q[r][Dp] instead
        float* o = qt + D * kRows;
        float* s = o + kRows * Dp;
        float* m = s + kKeys * kRows;
        float* l = m + kRows;
        float* alpha = l + kRows;
        float* pos = alpha + kRows;

        // Positions are compared as floats: exact below 2^24, far beyond any context here.
        for (int r = 0; r < ld; ++r) {
            if (r < rows) {
                const int64_t row = t.r0 + r;
                const int64_t i = row / t.group;
                const int64_t head = static_cast<int64_t>(t.kv_head) * t.group + row % t.group;
                const float* src = t.q + (i * t.heads + head) * D;
                if (few) {
                    for (int64_t d = 0; d < Dp; ++d)
                        qt[r * Dp + d] = d < D ? src[d] * t.scale : 0.0f;
                } else {
                    for (int64_t d = 0; d < D; ++d) qt[d * ld + r] = src[d] * t.scale;
                }
                pos[r] = static_cast<float>(t.pos0 + i);
            } else {
                if (!few)
                    for (int64_t d = 0; d < D; ++d) qt[d * ld + r] = 0.0f;
                pos[r] = -1.0f;  // sees no key
            }
            m[r] = kNegInf;
            l[r] = 0.0f;
            for (int64_t d = 0; d < Dp; ++d) o[r * Dp + d] = 0.0f;
        }

        for (int64_t j0 = t.key_lo; j0 < t.key_hi; j0 += kKeys) {
            const int bk = static_cast<int>(t.key_hi - j0 < kKeys ? t.key_hi - j0 : kKeys);
            const float* k = t.k + j0 * D;
            const float* v = t.v + j0 * D;
            if (few) {
                for (int r = 0; r < rows; ++r)
                    alpha[r] = few_rows_softmax(k, D, bk, j0, qt + r * Dp, pos[r], t.window, m + r,
                                                l + r, s, r);
                pv[rows - 1](v, D, bk, s, W, alpha, o, Dp);
                continue;
            }
            scores(k, D, bk, qt, ld, groups, s);
            for (int g = 0; g < groups; ++g) {
                const int first = g * W;
                const int real = rows - first < W ? rows - first : W;
                // Lanes hold rows in position order: the block needs no mask when every key
                // in it is visible to the group's first (earliest) and last real row. (Padding
                // lanes past `real` may then see keys; their results are never read.)
                const float pmin = pos[first], pmax = pos[first + real - 1];
                const bool masked = static_cast<float>(j0 + bk - 1) > pmin ||
                                    (t.window > 0 && static_cast<float>(j0) <= pmax - t.window);
                softmax_block(s + first, ld, bk, j0, pos + first, t.window, masked, m + first,
                              l + first, alpha + first);
                pv[real - 1](v, D, bk, s + first, ld, alpha + first, o + first * Dp, Dp);
            }
        }

        for (int r = 0; r < rows; ++r) {
            const int64_t row = t.r0 + r;
            const int64_t i = row / t.group;
            const int64_t head = static_cast<int64_t>(t.kv_head) * t.group + row % t.group;
            if (t.partial_o) {
                for (int64_t d = 0; d < D; ++d) t.partial_o[r * D + d] = o[r * Dp + d];
                t.partial_m[r] = m[r];
                t.partial_l[r] = l[r];
            } else {
                const float inv = 1.0f / l[r];
                float* dst = t.out + (i * t.heads + head) * D;
                for (int64_t d = 0; d < D; ++d) dst[d] = o[r * Dp + d] * inv;
            }
        }
    }
};

}  // namespace
}  // namespace tdm::cpu
