// The block-sparse prefill kernel (attention/cuda_block_sparse_prefill.cu) against a float64
// token-level reference: query i of head h sees key j iff j <= pos0 + i and j's block is listed in
// the plan row of (h, i's block). Fresh random plans (sink and diagonal always present, the other
// causal blocks drawn at a density), ragged query counts and pos0 > 0 (partial first and last
// query blocks), GQA groups 1 to 8, head dims 64 and 128, block sizes 64 and 128. The bf16 cache
// holds NaN past the last query's position (never read); outputs are poisoned. With every causal
// block listed the kernel must give the dense tensor-core kernel's bits (same tiles, same order).
// Tolerances: the dense tensor-core kernel's (bf16 Q and P, f32 accumulation; see
// cuda_attention_test.cpp): 1e-2 norm-wise overall, 3e-2 per row, lse within 1e-2 (1 + |lse|).
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaBlockSparse, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): block-sparse attention "
                    "untested";
}

#else

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "attention/cuda_attention.h"
#include "cuda_test_support.h"

namespace tdm::cuda {
namespace {

using namespace testing;

constexpr double kTol = 1e-2, kRowTol = 3e-2, kLseTol = 1e-2;
constexpr uint16_t kPoison16 = 0x7fad;  // a bf16 NaN no rounding produces

struct Case {
    int64_t n_new, pos0;
    int32_t heads, kv_heads, D, B;
    double density;  // chance that a causal block other than sink and diagonal is listed
};

std::string describe(const Case& c) {
    return "n_new=" + std::to_string(c.n_new) + " pos0=" + std::to_string(c.pos0) + " heads=" +
           std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " D=" +
           std::to_string(c.D) + " B=" + std::to_string(c.B) +
           " density=" + std::to_string(c.density);
}

struct HostPlan {
    int32_t first_q_block = 0, q_blocks = 0, k_blocks = 0;
    std::vector<int32_t> row_ptr, cols;
};

HostPlan random_plan(const Case& c, std::mt19937& rng) {
    HostPlan p;
    p.first_q_block = int32_t(c.pos0 / c.B);
    const int32_t last = int32_t((c.pos0 + c.n_new - 1) / c.B);
    p.q_blocks = last - p.first_q_block + 1;
    p.k_blocks = last + 1;
    std::bernoulli_distribution keep(c.density);
    p.row_ptr.push_back(0);
    for (int32_t h = 0; h < c.heads; ++h) {
        for (int32_t r = p.first_q_block; r <= last; ++r) {
            for (int32_t col = 0; col <= r; ++col)
                if (col == 0 || col == r || keep(rng)) p.cols.push_back(col);
            p.row_ptr.push_back(int32_t(p.cols.size()));
        }
    }
    return p;
}

struct Problem {
    int64_t capacity;
    float scale;
    std::vector<float> q, k, v;  // k, v hold bf16-rounded values
    DeviceBuffer d_q, d_k, d_v;
};

Problem make_problem(const Case& c, std::mt19937& rng) {
    Problem p;
    p.capacity = c.pos0 + c.n_new + 9;
    p.scale = 1.0f / std::sqrt(float(c.D));
    p.q = uniform(size_t(c.n_new * c.heads * c.D), rng, -2, 2);
    p.k = uniform(size_t(c.kv_heads * p.capacity * c.D), rng, -2, 2);
    p.v = uniform(p.k.size(), rng);
    std::vector<uint16_t> k16 = to_bf16(p.k), v16 = to_bf16(p.v);
    for (size_t i = 0; i < p.k.size(); ++i) {
        p.k[i] = bf16_to_f32(k16[i]);
        p.v[i] = bf16_to_f32(v16[i]);
        const int64_t pos = int64_t(i / size_t(c.D)) % p.capacity;
        if (pos >= c.pos0 + c.n_new) k16[i] = v16[i] = kPoison16;
    }
    p.d_q = upload(p.q);
    p.d_k = upload(k16);
    p.d_v = upload(v16);
    return p;
}

// Float64 output [n_new, heads, D] and lse [n_new, heads] of the plan's attention. A row that sees
// no key has output 0 and lse -inf (what the kernel promises for invalid plans).
void reference(const Case& c, const Problem& p, const HostPlan& plan, std::vector<double>& out,
               std::vector<double>& lse) {
    const int64_t group = c.heads / c.kv_heads;
    out.assign(size_t(c.n_new * c.heads * c.D), 0.0);
    lse.assign(size_t(c.n_new * c.heads), -std::numeric_limits<double>::infinity());
    std::vector<double> s;
    for (int64_t i = 0; i < c.n_new; ++i) {
        const int64_t pos = c.pos0 + i, r = pos / c.B;
        for (int64_t h = 0; h < c.heads; ++h) {
            const int64_t row = h * plan.q_blocks + (r - plan.first_q_block);
            std::set<int64_t> blocks(plan.cols.begin() + plan.row_ptr[size_t(row)],
                                     plan.cols.begin() + plan.row_ptr[size_t(row) + 1]);
            const float* qr = &p.q[size_t((i * c.heads + h) * c.D)];
            const int64_t kvh = h / group;
            s.clear();
            std::vector<int64_t> keys;
            double mx = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j <= pos; ++j) {
                if (!blocks.count(j / c.B)) continue;
                const float* kr = &p.k[size_t((kvh * p.capacity + j) * c.D)];
                double dot = 0;
                for (int64_t d = 0; d < c.D; ++d) dot += double(qr[d]) * kr[d];
                s.push_back(dot * p.scale);
                keys.push_back(j);
                mx = std::max(mx, s.back());
            }
            if (keys.empty()) continue;
            double l = 0;
            double* o = &out[size_t((i * c.heads + h) * c.D)];
            for (size_t x = 0; x < keys.size(); ++x) {
                const double w = std::exp(s[x] - mx);
                l += w;
                const float* vr = &p.v[size_t((kvh * p.capacity + keys[x]) * c.D)];
                for (int64_t d = 0; d < c.D; ++d) o[d] += w * vr[d];
            }
            for (int64_t d = 0; d < c.D; ++d) o[d] /= l;
            lse[size_t(i * c.heads + h)] = mx + std::log(l);
        }
    }
}

// A 16-byte aligned, poisoned f32 output of n floats with poisoned guards on both sides.
class Output {
public:
    static constexpr int64_t kPad = 64;
    explicit Output(int64_t n)
        : n_(n), buffer_(upload(std::vector<float>(size_t(n + 2 * kPad), poison()))) {}
    float* data() const { return buffer_.as<float>() + kPad; }
    // Every element written (finite, or -inf where allow_neg_inf) and every guard untouched.
    ::testing::AssertionResult written(bool allow_neg_inf = false) const {
        const auto all = download<float>(buffer_.data(), size_t(n_ + 2 * kPad));
        for (size_t i = 0; i < all.size(); ++i) {
            const bool inside = int64_t(i) >= kPad && int64_t(i) < kPad + n_;
            const bool ok = std::isfinite(all[i]) || (allow_neg_inf && all[i] == -INFINITY);
            if (inside && !ok)
                return ::testing::AssertionFailure() << "element " << i - kPad << " = " << all[i];
            if (!inside && !is_poison(all[i]))
                return ::testing::AssertionFailure() << "guard float " << i << " overwritten";
        }
        return ::testing::AssertionSuccess();
    }
    std::vector<float> values() const {
        return download<float>(buffer_.as<float>() + kPad, size_t(n_));
    }

private:
    int64_t n_;
    DeviceBuffer buffer_;
};

struct DevicePlan {
    DeviceBuffer row_ptr, cols;
    BlockPlanView view;
    DevicePlan(const HostPlan& p, const Case& c)
        : row_ptr(upload(p.row_ptr)),
          cols(upload(p.cols.empty() ? std::vector<int32_t>{0} : p.cols)) {
        view.heads = c.heads;
        view.block_size = c.B;
        view.first_q_block = p.first_q_block;
        view.q_blocks = p.q_blocks;
        view.k_blocks = p.k_blocks;
        view.row_ptr = row_ptr.as<int32_t>();
        view.cols = cols.as<int32_t>();
    }
};

AttentionArgs args_for(const Case& c, const Problem& p, float* out, float* lse) {
    return AttentionArgs{.q = p.d_q.as<float>(),
                         .k_cache = p.d_k.as<uint16_t>(),
                         .v_cache = p.d_v.as<uint16_t>(),
                         .out = out,
                         .lse = lse,
                         .n_new = c.n_new,
                         .pos0 = c.pos0,
                         .capacity = p.capacity,
                         .heads = c.heads,
                         .kv_heads = c.kv_heads,
                         .head_dim = c.D,
                         .window = 0,
                         .scale = p.scale};
}

struct Errors {
    double overall = 0, worst_row = 0, worst_lse = 0;
};

// Norm-wise errors of out against ref (rows of D), lse against ref_lse.
Errors errors(const std::vector<float>& out, const std::vector<double>& ref,
              const std::vector<float>& lse, const std::vector<double>& ref_lse, int64_t D) {
    Errors e;
    double num = 0, den = 0;
    for (size_t r0 = 0; r0 < ref.size(); r0 += size_t(D)) {
        double rn = 0, rd = 0;
        for (size_t i = r0; i < r0 + size_t(D); ++i) {
            const double d = double(out[i]) - ref[i];
            rn += d * d;
            rd += ref[i] * ref[i];
        }
        num += rn;
        den += rd;
        if (rd > 0) e.worst_row = std::max(e.worst_row, std::sqrt(rn / rd));
        else if (rn > 0) e.worst_row = INFINITY;
    }
    e.overall = std::sqrt(num / std::max(den, 1e-300));
    for (size_t i = 0; i < lse.size(); ++i) {
        if (std::isinf(ref_lse[i])) {
            if (lse[i] != -INFINITY) e.worst_lse = INFINITY;
            continue;
        }
        const double err = std::fabs(lse[i] - ref_lse[i]) / (1 + std::fabs(ref_lse[i]));
        e.worst_lse = std::max(e.worst_lse, err);
    }
    return e;
}

TEST(CudaBlockSparse, MatchesTokenLevelReferenceOnRandomPlans) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(31);
    const Case cases[] = {
        {1, 0, 4, 1, 64, 128, 0.3},     {100, 0, 4, 2, 128, 128, 0.3},
        {129, 0, 8, 2, 128, 128, 0.5},  {300, 77, 4, 1, 64, 64, 0.3},
        {1000, 0, 8, 8, 128, 128, 0.1}, {700, 300, 8, 1, 128, 64, 0.2},
        {513, 256, 4, 4, 64, 128, 0.5}, {1500, 1000, 4, 2, 128, 128, 0.3},
        {64, 64, 2, 1, 64, 64, 0.0},    {900, 0, 16, 2, 64, 128, 0.05},
        {383, 129, 6, 3, 128, 64, 1.0},
    };
    Errors worst;
    for (const Case& c : cases) {
        SCOPED_TRACE(describe(c));
        const Problem p = make_problem(c, rng);
        const HostPlan plan = random_plan(c, rng);
        const DevicePlan dplan(plan, c);
        std::vector<double> ref, ref_lse;
        reference(c, p, plan, ref, ref_lse);
        // Block size 128 runs either tensor-core loop (wgmma by default); 64 only mma.sync.
        for (const FlashLoop loop : {FlashLoop::kAuto, FlashLoop::kMmaSync}) {
            if (loop == FlashLoop::kMmaSync && c.B != 128) continue;
            SCOPED_TRACE(loop == FlashLoop::kAuto ? "default loop" : "mma.sync loop");
            Output out(c.n_new * c.heads * c.D), lse(c.n_new * c.heads);
            attention_prefill_block_sparse(args_for(c, p, out.data(), lse.data()), dplan.view,
                                           nullptr, loop);
            ASSERT_TRUE(out.written());
            ASSERT_TRUE(lse.written());
            const Errors e = errors(out.values(), ref, lse.values(), ref_lse, c.D);
            EXPECT_LE(e.overall, kTol);
            EXPECT_LE(e.worst_row, kRowTol);
            EXPECT_LE(e.worst_lse, kLseTol);
            worst.overall = std::max(worst.overall, e.overall);
            worst.worst_row = std::max(worst.worst_row, e.worst_row);
            worst.worst_lse = std::max(worst.worst_lse, e.worst_lse);
        }
    }
    RecordProperty("worst_relative_error", sci(worst.overall));
    RecordProperty("worst_row_relative_error", sci(worst.worst_row));
    RecordProperty("worst_lse_error", sci(worst.worst_lse));
    std::printf("block-sparse vs float64: ||err||/||ref|| %.2e, worst row %.2e, lse %.2e\n",
                worst.overall, worst.worst_row, worst.worst_lse);
}

TEST(CudaBlockSparse, FullPlanGivesTheDenseKernelsBits) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(32);
    // pos0 = 0 and B = 128: the sparse kernel's query blocks are the dense kernel's row tiles,
    // and a full plan lists exactly the dense kernel's key tiles, in the same order.
    for (const Case& c : {Case{640, 0, 8, 2, 128, 128, 1.0}, Case{333, 0, 4, 1, 64, 128, 1.0}}) {
        SCOPED_TRACE(describe(c));
        const Problem p = make_problem(c, rng);
        const HostPlan plan = random_plan(c, rng);
        const DevicePlan dplan(plan, c);
        for (const FlashLoop loop : {FlashLoop::kWgmma, FlashLoop::kMmaSync}) {
            SCOPED_TRACE(loop == FlashLoop::kWgmma ? "wgmma loop" : "mma.sync loop");
            Output sparse(c.n_new * c.heads * c.D), dense(c.n_new * c.heads * c.D);
            Output sparse_lse(c.n_new * c.heads), dense_lse(c.n_new * c.heads);
            attention_prefill_block_sparse(args_for(c, p, sparse.data(), sparse_lse.data()),
                                           dplan.view, nullptr, loop);
            attention_prefill_flash(args_for(c, p, dense.data(), dense_lse.data()), nullptr, loop);
            ASSERT_TRUE(sparse.written());
            EXPECT_EQ(sparse.values(), dense.values());
            EXPECT_EQ(sparse_lse.values(), dense_lse.values());
        }
    }
}

TEST(CudaBlockSparse, InvalidPlanColumnsAreIgnoredAndEmptyRowsAreZero) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(33);
    const Case c{300, 0, 2, 1, 64, 128, 0.0};  // query blocks 0, 1, 2
    const Problem p = make_problem(c, rng);
    // Head 0: block 0 lists nothing valid (-5, a huge column, block 1 above the diagonal), so its
    // rows see no key; block 1 lists 0 and an out-of-range 7; block 2 lists 1 only (no sink, no
    // diagonal). Head 1: the usual sink + diagonal.
    HostPlan plan;
    plan.first_q_block = 0;
    plan.q_blocks = 3;
    plan.k_blocks = 3;
    plan.cols = {-5, 1 << 30, 1, 0, 7, 1, 0, 0, 1, 0, 2};
    plan.row_ptr = {0, 3, 5, 6, 7, 9, 11};
    const DevicePlan dplan(plan, c);
    HostPlan valid = plan;  // what the kernel must compute: the invalid columns dropped
    valid.cols = {0, 1, 0, 0, 1, 0, 2};
    valid.row_ptr = {0, 0, 1, 2, 3, 5, 7};
    std::vector<double> ref, ref_lse;
    reference(c, p, valid, ref, ref_lse);
    Output out(c.n_new * c.heads * c.D), lse(c.n_new * c.heads);
    attention_prefill_block_sparse(args_for(c, p, out.data(), lse.data()), dplan.view, nullptr);
    ASSERT_TRUE(out.written());
    ASSERT_TRUE(lse.written(/*allow_neg_inf=*/true));
    const Errors e = errors(out.values(), ref, lse.values(), ref_lse, c.D);
    EXPECT_LE(e.overall, kTol);
    EXPECT_LE(e.worst_row, kRowTol);
    EXPECT_LE(e.worst_lse, kLseTol);
}

TEST(CudaBlockSparse, RefusesWhatItCannotRun) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(34);
    const Case c{200, 0, 4, 2, 64, 128, 0.5};
    const Problem p = make_problem(c, rng);
    const HostPlan plan = random_plan(c, rng);
    const DevicePlan dplan(plan, c);
    Output out(c.n_new * c.heads * c.D);
    const AttentionArgs good = args_for(c, p, out.data(), nullptr);
    auto status_of = [&](AttentionArgs a, BlockPlanView v) {
        try {
            attention_prefill_block_sparse(a, v, nullptr);
            return TDM_OK;
        } catch (const Error& e) {
            return e.status();
        }
    };
    EXPECT_EQ(status_of(good, dplan.view), TDM_OK);
    BlockPlanView v = dplan.view;
    v.block_size = 32;
    EXPECT_EQ(status_of(good, v), TDM_ERR_UNSUPPORTED);
    v = dplan.view;
    v.heads = 8;
    EXPECT_EQ(status_of(good, v), TDM_ERR_INVALID_ARGUMENT);
    v = dplan.view;
    v.q_blocks = 1;
    EXPECT_EQ(status_of(good, v), TDM_ERR_INVALID_ARGUMENT);
    v = dplan.view;
    v.cols = nullptr;
    EXPECT_EQ(status_of(good, v), TDM_ERR_INVALID_ARGUMENT);
    AttentionArgs a = good;
    a.window = 16;
    EXPECT_EQ(status_of(a, dplan.view), TDM_ERR_UNSUPPORTED);
    a = good;
    a.head_dim = 80;
    EXPECT_EQ(status_of(a, dplan.view), TDM_ERR_UNSUPPORTED);
    TDM_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace tdm::cuda

#endif  // TANDEM_HAVE_CUDA
