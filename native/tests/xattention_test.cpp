// XAttention's CPU reference (ALGORITHMS.md 4.9): the antidiagonal index mapping, the stride-1
// identity with exact causal block sums, row sums of B/S, the non-materialised reshape against
// explicit Q_r / K_r concatenations, and the selection's invariants (sink, diagonal, nothing above
// it, threshold >= 1 is dense, minimality), on fresh random inputs at ragged sizes, with GQA and
// with a call that starts mid-sequence (pos0 > 0, chunked prefill).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "attention/xattention.h"
#include "sparse_test_support.h"

namespace tdm {
namespace {

using test::make_problem;
using test::SparseProblem;

std::vector<float> scores_of(const SparseProblem& p, int32_t B, int32_t S, ThreadPool* pool) {
    const BlockGrid g = BlockGrid::of(p.call.pos0, p.call.n_new, B);
    std::vector<float> s(size_t(p.call.heads) * g.q_blocks * g.k_blocks, -1.0f);
    xattn::block_scores(p.q.data(), p.k.data(), p.call, B, S, s.data(), pool);
    return s;
}

TEST(XAttention, AntidiagonalPairsForStride4) {
    std::vector<std::pair<int64_t, int64_t>> pairs;
    for (int32_t t = 0; t < 4; ++t)
        pairs.emplace_back(xattn::antidiagonal_query(0, t, 4), xattn::antidiagonal_key(0, t, 4));
    const std::vector<std::pair<int64_t, int64_t>> want = {{3, 0}, {2, 1}, {1, 2}, {0, 3}};
    EXPECT_EQ(pairs, want);
    // Sub-block (2, 1): queries 8..11 against keys 4..7, still lower left to upper right.
    EXPECT_EQ(xattn::antidiagonal_query(2, 0, 4), 11);
    EXPECT_EQ(xattn::antidiagonal_key(1, 0, 4), 4);

    // The score itself uses exactly those pairs: with one-hot q_p = e_p and k_j = e_(3-j) only
    // the antidiagonal pairs have product 1, so Score[0, 0] = scale * 4 / 4; on the main diagonal
    // (k_j = e_j) the antidiagonal sees nothing.
    SparseProblem p = make_problem(4, 0, 1, 1, 4, 1);
    std::fill(p.q.begin(), p.q.end(), 0.0f);
    for (int64_t i = 0; i < 4; ++i) p.q[i * 4 + i] = 1.0f;
    for (int64_t j = 0; j < 4; ++j)
        for (int64_t d = 0; d < 4; ++d) p.k[j * 4 + d] = d == 3 - j ? 1.0f : 0.0f;
    EXPECT_FLOAT_EQ(xattn::antidiagonal_score(p.q.data(), p.k.data(), p.call, 0, 0, 0, 4),
                    p.call.scale);
    for (int64_t j = 0; j < 4; ++j)
        for (int64_t d = 0; d < 4; ++d) p.k[j * 4 + d] = d == j ? 1.0f : 0.0f;
    EXPECT_FLOAT_EQ(xattn::antidiagonal_score(p.q.data(), p.k.data(), p.call, 0, 0, 0, 4), 0.0f);
}

// S = 1: attn_sum is the exact block sum of causal softmax attention.
TEST(XAttention, StrideOneGivesExactCausalBlockSums) {
    ThreadPool pool(3);
    struct Case { int64_t n, pos0; int32_t heads, kv_heads, D, B; };
    uint32_t seed = 100;
    for (const Case c : {Case{70, 0, 2, 1, 16, 16}, Case{129, 0, 4, 2, 32, 32},
                         Case{53, 75, 3, 3, 8, 16}, Case{200, 64, 2, 2, 16, 64}}) {
        SCOPED_TRACE("n=" + std::to_string(c.n) + " pos0=" + std::to_string(c.pos0));
        const SparseProblem p = make_problem(c.n, c.pos0, c.heads, c.kv_heads, c.D, seed++);
        const BlockGrid g = BlockGrid::of(c.pos0, c.n, c.B);
        const std::vector<float> s = scores_of(p, c.B, 1, &pool);
        for (int32_t h = 0; h < c.heads; ++h) {
            std::vector<double> want(size_t(g.q_blocks) * g.k_blocks, 0.0);
            for (int64_t i = 0; i < c.n; ++i) {
                const std::vector<double> a = test::causal_probs(p, h, i);
                const int64_t row = (c.pos0 + i) / c.B - g.first_q_block;
                for (size_t j = 0; j < a.size(); ++j) want[row * g.k_blocks + j / c.B] += a[j];
            }
            for (size_t e = 0; e < want.size(); ++e)
                ASSERT_NEAR(s[h * want.size() + e], want[e], 2e-5 * c.B) << "entry " << e;
        }
    }
}

// Rows sum to (real reshaped rows of the block): B/S for full blocks; nothing above the diagonal.
TEST(XAttention, RowsSumToBlockOverStride) {
    ThreadPool pool(2);
    uint32_t seed = 200;
    for (int32_t S : {2, 4, 8, 16}) {
        for (auto [n, pos0] : {std::pair<int64_t, int64_t>{300, 0}, {211, 64}, {190, 16}}) {
            const int32_t B = 64;
            const SparseProblem p = make_problem(n, pos0, 2, 1, 16, seed++);
            const BlockGrid g = BlockGrid::of(pos0, n, B);
            const std::vector<float> s = scores_of(p, B, S, &pool);
            for (int32_t h = 0; h < 2; ++h) {
                for (int32_t i = 0; i < g.q_blocks; ++i) {
                    const int32_t r = g.q_block(i);
                    const float* row = s.data() + (int64_t(h) * g.q_blocks + i) * g.k_blocks;
                    const int64_t first = std::max<int64_t>(int64_t(r) * B / S, pos0 / S);
                    const int64_t last = std::min<int64_t>((int64_t(r) + 1) * B / S, (pos0 + n - 1) / S + 1);
                    double sum = 0;
                    for (int32_t c = 0; c < g.k_blocks; ++c) {
                        if (c > r) {
                            EXPECT_EQ(row[c], 0.0f);
                        }
                        EXPECT_GE(row[c], 0.0f);
                        sum += row[c];
                    }
                    EXPECT_NEAR(sum, double(last - first), 1e-3 * double(last - first))
                        << "S=" << S << " row " << r;
                }
            }
        }
    }
}

// The fused path never builds Q_r / K_r; here they are built explicitly (4.2) and softmaxed.
TEST(XAttention, MatchesExplicitReshape) {
    const int32_t B = 32, S = 4, D = 8;
    for (auto [n, pos0] : {std::pair<int64_t, int64_t>{150, 0}, {77, 45}}) {
        const SparseProblem p = make_problem(n, pos0, 2, 1, D, 300 + uint32_t(n));
        const BlockGrid g = BlockGrid::of(pos0, n, B);
        const std::vector<float> s = scores_of(p, B, S, nullptr);
        const int64_t keys = pos0 + n, cols = (keys + S - 1) / S;
        for (int32_t h = 0; h < 2; ++h) {
            auto Kr = [&](int64_t j) {  // concat_t k[jS + t], zeros past the last key
                std::vector<double> x(size_t(S * D), 0.0);
                for (int32_t t = 0; t < S; ++t)
                    if (j * S + t < keys)
                        for (int32_t d = 0; d < D; ++d) x[t * D + d] = test::key_row(p, h, j * S + t)[d];
                return x;
            };
            auto Qr = [&](int64_t i) {  // concat_t q[iS + S-1-t], zeros outside the call
                std::vector<double> x(size_t(S * D), 0.0);
                for (int32_t t = 0; t < S; ++t) {
                    const int64_t pos = i * S + S - 1 - t;
                    if (pos >= pos0 && pos < keys)
                        for (int32_t d = 0; d < D; ++d) x[t * D + d] = test::query_row(p, h, pos - pos0)[d];
                }
                return x;
            };
            std::vector<double> want(size_t(g.q_blocks) * g.k_blocks, 0.0);
            for (int64_t i = pos0 / S; i < cols; ++i) {
                const std::vector<double> qi = Qr(i);
                std::vector<double> e(size_t(i + 1));
                double m = -INFINITY, z = 0;
                for (int64_t j = 0; j <= i; ++j) {
                    const std::vector<double> kj = Kr(j);
                    e[j] = std::inner_product(qi.begin(), qi.end(), kj.begin(), 0.0) * p.call.scale / S;
                    m = std::max(m, e[j]);
                }
                for (double& x : e) z += (x = std::exp(x - m));
                for (int64_t j = 0; j <= i; ++j)
                    want[(i * S / B - g.first_q_block) * g.k_blocks + j * S / B] += e[j] / z;
            }
            for (size_t k = 0; k < want.size(); ++k)
                EXPECT_NEAR(s[h * want.size() + k], want[k], 1e-4) << "head " << h << " entry " << k;
        }
    }
}

TEST(XAttention, SelectionKeepsSinkAndDiagonalAndIsMinimal) {
    std::mt19937 rng(400);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<int32_t> cols;
    for (int trial = 0; trial < 300; ++trial) {
        const int32_t r = trial % 23;
        std::vector<float> s(size_t(r) + 1);
        for (float& x : s) x = u(rng) * u(rng);  // skewed, tie-free with probability 1
        const float tau = 0.05f + 0.9f * u(rng);
        xattn::select_row(s.data(), r, tau, cols);
        ASSERT_TRUE(std::is_sorted(cols.begin(), cols.end()));
        ASSERT_EQ(std::adjacent_find(cols.begin(), cols.end()), cols.end());
        ASSERT_EQ(cols.front(), 0);
        ASSERT_EQ(cols.back(), r);  // the diagonal, and nothing above it
        double total = 0, covered = 0;
        for (float x : s) total += x;
        for (int32_t c : cols) covered += s[c];
        ASSERT_GE(covered, tau * total * (1 - 1e-6));
        // Minimality: the smallest selected non-mandatory block was the crossing one.
        float smallest = INFINITY;
        for (int32_t c : cols)
            if (c != 0 && c != r) smallest = std::min(smallest, s[c]);
        if (std::isfinite(smallest)) {
            ASSERT_LT(covered - smallest, tau * total);
        }
        // Every block left out scores no more than the smallest selected one.
        for (int32_t c = 1; c < r; ++c)
            if (!std::binary_search(cols.begin(), cols.end(), c)) {
                ASSERT_LE(s[c], smallest);
            }
    }
}

TEST(XAttention, ThresholdOneSelectsEveryCausalBlockAndZeroOnlyTheMandatory) {
    std::vector<float> s = {0.5f, 0.0f, 0.0f, 0.25f, 0.25f, 0.0f};  // zero scores still count
    std::vector<int32_t> cols;
    xattn::select_row(s.data(), 5, 1.0f, cols);
    EXPECT_EQ(cols, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
    xattn::select_row(s.data(), 5, 0.0f, cols);
    EXPECT_EQ(cols, (std::vector<int32_t>{0, 5}));
    xattn::select_row(s.data(), 0, 0.5f, cols);  // row 0: sink and diagonal are one block
    EXPECT_EQ(cols, (std::vector<int32_t>{0}));
    // Inclusive crossing: 0.5 (sink) < 0.6 * 1.0, so the next best (3, ties -> lower index) joins.
    xattn::select_row(s.data(), 5, 0.6f, cols);
    EXPECT_EQ(cols, (std::vector<int32_t>{0, 3, 5}));
}

TEST(XAttention, PlanUsesEachHeadsThresholdAndObeysTheLayout) {
    ThreadPool pool(2);
    const SparseProblem p = make_problem(333, 64, 4, 2, 16, 500, 2.0f);
    SparseAttention sp;
    sp.method = TDM_ATTENTION_XATTENTION;
    sp.block_size = 32;
    sp.xattn_stride = 8;
    const float thresholds[4] = {1.0f, 0.9f, 0.5f, 0.0f};
    sp.xattn_threshold = thresholds;
    HostBlockPlan plan;
    ASSERT_TRUE(xattn::plan(p.q.data(), p.k.data(), p.call, sp, plan, &pool));
    EXPECT_EQ(plan_violation(plan), "");
    EXPECT_DOUBLE_EQ(plan.density(0), 1.0);
    EXPECT_LE(plan.density(2), plan.density(1));
    const BlockGrid& g = plan.grid;
    int64_t mandatory = 0;
    for (int32_t i = 0; i < g.q_blocks; ++i) mandatory += g.q_block(i) == 0 ? 1 : 2;
    EXPECT_NEAR(plan.density(3), double(mandatory) / double(g.causal_pairs()), 1e-12);
    for (int32_t h = 0; h < 4; ++h) EXPECT_GT(plan.density(h), 0.0);

    // Two key blocks or fewer: every block is mandatory, so the call runs dense.
    const SparseProblem tiny = make_problem(40, 0, 2, 1, 8, 501);
    EXPECT_FALSE(xattn::plan(tiny.q.data(), tiny.k.data(), tiny.call, sp, plan, &pool));
}

TEST(XAttention, RejectsAStrideThatDoesNotDivideTheBlock) {
    const SparseProblem p = make_problem(64, 0, 1, 1, 8, 600);
    std::vector<float> s(16);
    EXPECT_THROW(xattn::block_scores(p.q.data(), p.k.data(), p.call, 32, 6, s.data(), nullptr), Error);
}

}  // namespace
}  // namespace tdm
