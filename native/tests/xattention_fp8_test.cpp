// XAttention's fp8 estimation on the CPU (the twin of the GPU's E4M3 estimator): the host E4M3
// rounding of attention/fp8_e4m3.h at its edges (ties to even, subnormals, saturation, the byte
// encoding, the scale exponent), fp8_operands (every value on its head's scaled E4M3 grid, each
// head's max in [224, 448], nothing read past the call's last key), and xattn::plan with
// xattn_fp8 (dense at threshold 1, close to the f32 plan at 0.9, sink and diagonal always, a
// chunked call), on fresh random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "attention/fp8_e4m3.h"
#include "attention/xattention.h"
#include "sparse_test_support.h"

namespace tdm {
namespace {

using fp8::e4m3_bits;
using fp8::e4m3_scale_exponent;
using fp8::round_to_e4m3;
using test::make_problem;
using test::SparseProblem;

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---- fp8_e4m3.h ---------------------------------------------------------------------------------

TEST(Fp8E4m3, RoundsToNearestTiesToEvenInANormalBinade) {
    // [1, 2): steps of 1/8. Halfway points go to the even mantissa.
    EXPECT_EQ(round_to_e4m3(1.0625f), 1.0f);     // between 1.000 (m=0) and 1.125 (m=1)
    EXPECT_EQ(round_to_e4m3(1.1875f), 1.25f);    // between 1.125 (m=1) and 1.250 (m=2)
    EXPECT_EQ(round_to_e4m3(-1.0625f), -1.0f);
    EXPECT_EQ(round_to_e4m3(1.0626f), 1.125f);   // just past halfway
    EXPECT_EQ(round_to_e4m3(432.0f), 448.0f);    // [256, 512) in steps of 32: 416 (m=5) | 448 (m=6)
    EXPECT_EQ(round_to_e4m3(431.0f), 416.0f);
    EXPECT_EQ(round_to_e4m3(0.3f), 0.3125f);     // [0.25, 0.5) in steps of 1/32
}

TEST(Fp8E4m3, RoundsSubnormalsInStepsOfTwoToTheMinusNine) {
    const float u = std::ldexp(1.0f, -9);  // the smallest subnormal
    EXPECT_EQ(round_to_e4m3(1.5f * u), 2.0f * u);  // tie between 1u (odd) and 2u (even)
    EXPECT_EQ(round_to_e4m3(2.5f * u), 2.0f * u);  // tie between 2u (even) and 3u (odd)
    EXPECT_EQ(round_to_e4m3(0.5f * u), 0.0f);      // tie between 0 (even) and 1u
    EXPECT_EQ(round_to_e4m3(0.51f * u), u);
    EXPECT_EQ(round_to_e4m3(-7.4f * u), -7.0f * u);
    EXPECT_EQ(round_to_e4m3(7.5f * u), 8.0f * u);  // up into the smallest normal, 2^-6
}

TEST(Fp8E4m3, SaturatesAt448AndKeepsNaN) {
    EXPECT_EQ(round_to_e4m3(448.0f), 448.0f);
    EXPECT_EQ(round_to_e4m3(464.0f), 448.0f);  // the tie with 480, which E4M3 lacks
    EXPECT_EQ(round_to_e4m3(1e6f), 448.0f);
    EXPECT_EQ(round_to_e4m3(kInf), 448.0f);
    EXPECT_EQ(round_to_e4m3(-kInf), -448.0f);
    EXPECT_EQ(round_to_e4m3(-500.0f), -448.0f);
    EXPECT_TRUE(std::isnan(round_to_e4m3(std::numeric_limits<float>::quiet_NaN())));
}

TEST(Fp8E4m3, BitsOfKnownValues) {
    EXPECT_EQ(e4m3_bits(0.0f), 0x00);
    EXPECT_EQ(e4m3_bits(-0.0f), 0x80);
    EXPECT_EQ(e4m3_bits(1.0f), 0x38);              // exponent 7 (bias 7), mantissa 0
    EXPECT_EQ(e4m3_bits(1.75f), 0x3e);
    EXPECT_EQ(e4m3_bits(-2.0f), 0xc0);
    EXPECT_EQ(e4m3_bits(448.0f), 0x7e);            // the largest finite value
    EXPECT_EQ(e4m3_bits(1e9f), 0x7e);              // saturated
    EXPECT_EQ(e4m3_bits(-kInf), 0xfe);
    EXPECT_EQ(e4m3_bits(std::ldexp(1.0f, -6)), 0x08);  // the smallest normal
    EXPECT_EQ(e4m3_bits(std::ldexp(1.0f, -9)), 0x01);  // the smallest subnormal
    EXPECT_EQ(e4m3_bits(std::ldexp(7.0f, -9)), 0x07);  // the largest subnormal
    EXPECT_EQ(e4m3_bits(std::numeric_limits<float>::quiet_NaN()), 0x7f);
}

TEST(Fp8E4m3, ScaleExponentIsTheLargestThatKeepsAmaxWithin448) {
    EXPECT_EQ(e4m3_scale_exponent(448.0f), 0);
    EXPECT_EQ(e4m3_scale_exponent(449.0f), -1);
    EXPECT_EQ(e4m3_scale_exponent(0.875f), 9);   // 0.875 * 2^9 = 448 exactly
    EXPECT_EQ(e4m3_scale_exponent(0.876f), 8);
    EXPECT_EQ(e4m3_scale_exponent(0.0f), 0);
    EXPECT_EQ(e4m3_scale_exponent(kInf), 0);
    EXPECT_EQ(e4m3_scale_exponent(std::numeric_limits<float>::quiet_NaN()), 0);
    for (float amax : {1e-3f, 0.3f, 1.0f, 3.7f, 1000.0f, 6e4f}) {
        const int32_t e = e4m3_scale_exponent(amax);
        EXPECT_LE(amax * fp8::pow2(e), 448.0f) << amax;
        EXPECT_GT(amax * fp8::pow2(e + 1), 448.0f) << amax;
    }
}

// ---- fp8_operands -------------------------------------------------------------------------------

// q scaled per head by 10^(h-1), so each head gets its own exponent; the cache past the last key
// holds `past` (make_problem puts NaN there).
SparseProblem scaled_problem(int64_t n_new, int64_t pos0, uint32_t seed, float past) {
    SparseProblem p = make_problem(n_new, pos0, 4, 2, 16, seed);
    const AttentionCall& c = p.call;
    for (int64_t i = 0; i < c.n_new; ++i)
        for (int32_t h = 0; h < c.heads; ++h)
            for (int32_t d = 0; d < c.head_dim; ++d)
                p.q[size_t((i * c.heads + h) * c.head_dim + d)] *= std::pow(10.0f, float(h - 1));
    for (float& x : p.k)
        if (std::isnan(x)) x = past;
    return p;
}

// Every value of one head: on the E4M3 grid scaled by 2^-e, the rounding of its source, and the
// head's largest magnitude lands in [224, 448] once scaled.
void expect_head_on_grid(const std::vector<const float*>& src_rows,
                         const std::vector<const float*>& out_rows, int32_t D, int32_t e,
                         const char* what) {
    float amax = 0.0f, qmax = 0.0f;
    for (const float* row : src_rows)
        for (int32_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(row[d]));
    ASSERT_EQ(e, e4m3_scale_exponent(amax)) << what;
    for (size_t r = 0; r < src_rows.size(); ++r) {
        for (int32_t d = 0; d < D; ++d) {
            const float y = out_rows[r][d], scaled = y * fp8::pow2(e);
            ASSERT_EQ(round_to_e4m3(scaled), scaled) << what << " row " << r << " d " << d;
            ASSERT_EQ(y, fp8::quantize_e4m3(src_rows[r][d], e)) << what << " row " << r;
            qmax = std::max(qmax, std::fabs(scaled));
        }
    }
    EXPECT_GE(qmax, 224.0f) << what;
    EXPECT_LE(qmax, 448.0f) << what;
}

TEST(XAttentionFp8, OperandsAreOnEachHeadsScaledGrid) {
    ThreadPool pool(2);
    const SparseProblem p = scaled_problem(150, 70, 700, 0.0f);
    const AttentionCall& c = p.call;
    const int64_t keys = c.pos0 + c.n_new;
    const xattn::Fp8Operands f = xattn::fp8_operands(p.q.data(), p.k.data(), c, &pool);
    ASSERT_EQ(f.q.size(), p.q.size());
    ASSERT_EQ(f.k.size(), size_t(c.kv_heads * keys * c.head_dim));
    ASSERT_EQ(f.q_exp.size(), size_t(c.heads));
    ASSERT_EQ(f.k_exp.size(), size_t(c.kv_heads));
    EXPECT_EQ(f.call.capacity, keys);
    EXPECT_EQ(f.call.n_new, c.n_new);
    EXPECT_EQ(f.call.pos0, c.pos0);
    for (int32_t h = 0; h < c.heads; ++h) {
        std::vector<const float*> src, out;
        for (int64_t i = 0; i < c.n_new; ++i) {
            src.push_back(test::query_row(p, h, i));
            out.push_back(f.q.data() + (i * c.heads + h) * c.head_dim);
        }
        expect_head_on_grid(src, out, c.head_dim, f.q_exp[size_t(h)], "q");
    }
    // Heads scaled 10x apart get exponents about log2(10) apart: the scale is per head.
    for (int32_t h = 1; h < c.heads; ++h)
        EXPECT_LE(f.q_exp[size_t(h)], f.q_exp[size_t(h - 1)] - 3) << h;
    for (int32_t g = 0; g < c.kv_heads; ++g) {
        std::vector<const float*> src, out;
        for (int64_t j = 0; j < keys; ++j) {
            src.push_back(p.k.data() + (g * c.capacity + j) * c.head_dim);
            out.push_back(f.k.data() + (g * keys + j) * c.head_dim);
        }
        expect_head_on_grid(src, out, c.head_dim, f.k_exp[size_t(g)], "k");
    }
    // Threads do not matter.
    const xattn::Fp8Operands one = xattn::fp8_operands(p.q.data(), p.k.data(), c);
    EXPECT_EQ(one.q, f.q);
    EXPECT_EQ(one.k, f.k);
}

TEST(XAttentionFp8, KeysPastTheCallAreNeverRead) {
    ThreadPool pool(2);
    const SparseProblem clean = scaled_problem(100, 30, 710, 0.0f);
    const SparseProblem huge = scaled_problem(100, 30, 710, 3e38f);
    const auto a = xattn::fp8_operands(clean.q.data(), clean.k.data(), clean.call, &pool);
    const auto b = xattn::fp8_operands(huge.q.data(), huge.k.data(), huge.call, &pool);
    EXPECT_EQ(a.k_exp, b.k_exp);
    EXPECT_EQ(a.k, b.k);
    EXPECT_EQ(a.q, b.q);
    for (int32_t e : b.k_exp) EXPECT_GT(e, 0) << "N(0, 1) keys have amax well under 448";

    // Nor by the plan: the same selection with NaN (make_problem's poison) past the last key.
    const SparseProblem nan = scaled_problem(100, 30, 710, std::numeric_limits<float>::quiet_NaN());
    SparseAttention sp;
    sp.method = TDM_ATTENTION_XATTENTION;
    sp.block_size = 16;
    sp.xattn_stride = 4;
    sp.xattn_fp8 = true;
    const float thresholds[4] = {0.9f, 0.9f, 0.9f, 0.9f};
    sp.xattn_threshold = thresholds;
    HostBlockPlan pa, pb;
    ASSERT_TRUE(xattn::plan(clean.q.data(), clean.k.data(), clean.call, sp, pa, &pool));
    ASSERT_TRUE(xattn::plan(nan.q.data(), nan.k.data(), nan.call, sp, pb, &pool));
    EXPECT_EQ(pa.cols, pb.cols);
    EXPECT_EQ(pa.row_ptr, pb.row_ptr);
}

// ---- xattn::plan with xattn_fp8 -----------------------------------------------------------------

SparseAttention fp8_settings(const float* thresholds, bool fp8) {
    SparseAttention sp;
    sp.method = TDM_ATTENTION_XATTENTION;
    sp.block_size = 32;
    sp.xattn_stride = 8;
    sp.xattn_threshold = thresholds;
    sp.xattn_fp8 = fp8;
    return sp;
}

TEST(XAttentionFp8, ThresholdOneIsDense) {
    ThreadPool pool(2);
    const SparseProblem p = make_problem(300, 0, 4, 2, 16, 720, 2.0f);
    const float ones[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    HostBlockPlan plan;
    ASSERT_TRUE(xattn::plan(p.q.data(), p.k.data(), p.call, fp8_settings(ones, true), plan, &pool));
    const HostBlockPlan full = full_plan(4, plan.grid);
    EXPECT_EQ(plan.row_ptr, full.row_ptr);
    EXPECT_EQ(plan.cols, full.cols);
}

// The fraction of selected (head, row, block) triples the two plans share: |A and B| / |A or B|.
double agreement(const HostBlockPlan& a, const HostBlockPlan& b) {
    int64_t both = 0, either = 0;
    for (int32_t h = 0; h < a.heads; ++h) {
        for (int32_t i = 0; i < a.grid.q_blocks; ++i) {
            const int32_t r = a.grid.q_block(i);
            for (int32_t c = 0; c <= r; ++c) {
                const bool x = a.contains(h, r, c), y = b.contains(h, r, c);
                both += x && y;
                either += x || y;
            }
        }
    }
    return either == 0 ? 1.0 : double(both) / double(either);
}

// The fp8 plan of peaked random inputs (spread 4: about half the causal blocks selected) at
// threshold 0.9: exactly the selection from fp8_operands' scores, the layout (sink and diagonal in
// every row), and the share of blocks it agrees on with the f32 plan.
void expect_close_to_f32(int64_t n_new, int64_t pos0, uint32_t seed, const char* what) {
    ThreadPool pool(2);
    const SparseProblem p = make_problem(n_new, pos0, 4, 2, 32, seed, 4.0f);
    const float tau[4] = {0.9f, 0.9f, 0.9f, 0.9f};
    const SparseAttention with_fp8 = fp8_settings(tau, true);
    const SparseAttention without = fp8_settings(tau, false);
    HostBlockPlan exact, fp8;
    ASSERT_TRUE(xattn::plan(p.q.data(), p.k.data(), p.call, without, exact, &pool));
    ASSERT_TRUE(xattn::plan(p.q.data(), p.k.data(), p.call, with_fp8, fp8, &pool));

    const xattn::Fp8Operands f = xattn::fp8_operands(p.q.data(), p.k.data(), p.call);
    const BlockGrid g = BlockGrid::of(p.call.pos0, p.call.n_new, with_fp8.block_size);
    std::vector<float> s(size_t(p.call.heads) * g.q_blocks * g.k_blocks);
    xattn::block_scores(f.q.data(), f.k.data(), f.call, with_fp8.block_size, with_fp8.xattn_stride,
                        s.data(), nullptr);
    const HostBlockPlan from_operands = xattn::select_blocks(s.data(), p.call.heads, g, tau);
    EXPECT_EQ(fp8.row_ptr, from_operands.row_ptr) << what;
    EXPECT_EQ(fp8.cols, from_operands.cols) << what;

    EXPECT_EQ(fp8.grid.first_q_block, exact.grid.first_q_block);
    EXPECT_EQ(fp8.grid.q_blocks, exact.grid.q_blocks);
    EXPECT_EQ(plan_violation(fp8), "") << what;  // sink and diagonal in every row, causal
    for (int32_t h = 0; h < 4; ++h) {
        for (int32_t i = 0; i < fp8.grid.q_blocks; ++i) {
            const int32_t r = fp8.grid.q_block(i);
            EXPECT_TRUE(fp8.contains(h, r, 0) && fp8.contains(h, r, r))
                << what << ": head " << h << " row " << r;
        }
        EXPECT_LT(fp8.density(h), 1.0) << what << " head " << h << ": the test should be sparse";
    }
    const double share = agreement(exact, fp8);
    std::printf("[ fp8 vs f32 ] %s: %.4f of the selected blocks agree\n", what, share);
    // 3 mantissa bits perturb each product by up to 1/8 of it (1/16 per operand in the normal
    // range), so blocks near a row's threshold crossing may flip; the bulk may not. Seeds
    // 730..842 gave 0.93-0.99 here, where a random selection of the same density would share
    // about a third.
    EXPECT_GE(share, 0.9) << what;
}

TEST(XAttentionFp8, PlanAgreesWithTheF32PlanOnTheBulkOfTheBlocks) {
    expect_close_to_f32(700, 0, 730, "prefill from 0");
}

TEST(XAttentionFp8, AChunkedCallIsPlannedAgainstTheWholePrefix) {
    expect_close_to_f32(200, 333, 740, "chunk at 333");
}

}  // namespace
}  // namespace tdm
