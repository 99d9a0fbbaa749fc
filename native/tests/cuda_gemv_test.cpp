// The GEMV kernels (kernels.h: the rows kernel, 1..4 rows, and the tensor-core tiles kernel, 1..16
// rows) at every row count, at depths K from a fraction of one 64-column step to the 8B down
// projection's 14336 (which the tiles kernel cuts across a cluster of 8 blocks), in every mode:
// plain products of three outputs sharing the input (ragged against the 8-row tiles, padded
// output strides, biases on some), the residual add, the fused RMSNorm, SwiGLU, and q/k/v with
// RoPE and the KV-cache append. Fresh random inputs for every case; outputs poisoned and guarded
// (cuda_test_support.h): every element must be written and nothing around it touched.
//
// Reference: float64 sums of the bf16 operands the kernels must multiply (bf16 of x, or of
// rmsnorm(x) * w). Both sides multiply the same operands exactly and accumulate in f32, so they
// differ by summation order only: max |gpu - ref| <= 1e-4 rms(ref), where one wrong or missing
// product is about 1/sqrt(K) >= 8e-3 of rms(ref). With a norm, the kernel's f32 1/rms (its own
// summation order, rsqrtf) may sit a few 1e-7 away from the exact one, and an operand that lies
// that close to a bf16 rounding midpoint may round the other way: such operands (within a relative
// 1e-5 of a midpoint, well above the f32 error of K <= 14336 squares) get a slack of their two
// roundings' gap times |w| in the bound of every product they enter. Failures name the worst
// element (input row m, output column n), which points at the tile, lane or K range at fault.
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaGemv, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): CUDA GEMV untested";
}

#else

#include <memory>
#include <sstream>

#include "cuda_test_support.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/matmul.h"

namespace tdm::cuda {
namespace {

using namespace testing;

constexpr double kTol = 1e-4;
constexpr double kNormDelta = 1e-5;  // relative distance to a rounding midpoint called ambiguous
constexpr int64_t kDepths[] = {64, 200, 2048, 14336};

double bf16_round(double v) { return bf16_to_f32(f32_to_bf16(static_cast<float>(v))); }

const char* name_of(GemvKernel k) {
    return k == GemvKernel::kRows ? "rows kernel" : "tiles kernel";
}

// The kernels that take M rows of K: the tiles kernel always, the rows kernel where it fits.
std::vector<GemvKernel> kernels_for(int64_t M, int64_t K) {
    std::vector<GemvKernel> kernels{GemvKernel::kTiles};
    if (gemv_rows_kernel_fits(M, K)) kernels.push_back(GemvKernel::kRows);
    return kernels;
}

// A layer input: x [M, ldx] with poisoned row gaps (never read), optionally an RMSNorm weight,
// and the operands a [M, K] the kernels must multiply, with their rounding slack (see the top).
struct Input {
    int64_t M, K, ldx;
    std::vector<float> x;
    std::vector<uint16_t> norm;  // empty: no norm
    float eps = 1e-5f;
    std::vector<double> a, slack;
    DeviceBuffer d_x, d_norm;

    Input(int64_t M_, int64_t K_, bool with_norm, std::mt19937& rng)
        : M(M_), K(K_), ldx(K_ + 4), x(size_t(M_ * (K_ + 4)), poison()) {
        for (int64_t m = 0; m < M; ++m) {
            const auto row = uniform(size_t(K), rng, -3, 3);
            std::copy(row.begin(), row.end(), x.begin() + m * ldx);
        }
        if (with_norm) norm = to_bf16(uniform(size_t(K), rng, 0.5f, 1.5f));
        a.resize(size_t(M * K));
        slack.assign(size_t(M * K), 0.0);
        for (int64_t m = 0; m < M; ++m) {
            const float* xr = x.data() + m * ldx;
            double ss = 0;
            for (int64_t k = 0; k < K; ++k) ss += double(xr[k]) * xr[k];
            const double inv = 1.0 / std::sqrt(ss / double(K) + eps);
            for (int64_t k = 0; k < K; ++k) {
                const size_t at = size_t(m * K + k);
                if (norm.empty()) {
                    a[at] = bf16_round(xr[k]);  // the kernels round x exactly so
                    continue;
                }
                const double v = xr[k] * inv * bf16_to_f32(norm[size_t(k)]);
                a[at] = bf16_round(v);
                const double lo = bf16_round(v * (1 - kNormDelta));
                const double hi = bf16_round(v * (1 + kNormDelta));
                slack[at] = std::fabs(hi - lo);
            }
        }
        d_x = upload(x);
        if (!norm.empty()) d_norm = upload(norm);
    }

    LayerInput view() const {
        const VectorView w =
            norm.empty() ? VectorView{} : VectorView{d_norm.data(), DType::BF16, K};
        return LayerInput{d_x.as<float>(), M, ldx, w, eps, nullptr};
    }
};

// One output's bf16 weights [N, K] and bias on the host and the device.
struct Output {
    int64_t N, K, ldy;
    bool has_bias;
    std::vector<uint16_t> w, b;
    DeviceBuffer d_w, d_b;

    Output(int64_t N_, int64_t K_, bool bias, int64_t pad, std::mt19937& rng)
        : N(N_), K(K_), ldy(N_ + pad), has_bias(bias), w(to_bf16(uniform(size_t(N_ * K_), rng))),
          b(to_bf16(uniform(size_t(N_), rng))), d_w(upload(w)), d_b(upload(b)) {}

    MatrixView weight() const { return MatrixView{d_w.data(), DType::BF16, N, K}; }
    VectorView bias() const {
        return has_bias ? VectorView{d_b.data(), DType::BF16, N} : VectorView{};
    }
    Projection into(float* y) const { return Projection{weight(), bias(), y, ldy}; }
};

// y [M, N] = a W^T (+ b) in float64, and each element's slack.
struct Ref {
    int64_t M, N;
    std::vector<double> y, slack;
    double rms = 0;
};

Ref reference(const Input& in, const Output& o) {
    const size_t size = size_t(in.M * o.N);
    Ref r{in.M, o.N, std::vector<double>(size), std::vector<double>(size)};
    double ss = 0;
    for (int64_t m = 0; m < in.M; ++m) {
        const double* a = in.a.data() + m * in.K;
        const double* sl = in.slack.data() + m * in.K;
        for (int64_t n = 0; n < o.N; ++n) {
            const uint16_t* w = o.w.data() + n * o.K;
            double s = o.has_bias ? bf16_to_f32(o.b[size_t(n)]) : 0.0, e = 0;
            for (int64_t k = 0; k < in.K; ++k) {
                const double wk = bf16_to_f32(w[k]);
                s += a[k] * wk;
                e += sl[k] * std::fabs(wk);
            }
            r.y[size_t(m * o.N + n)] = s;
            r.slack[size_t(m * o.N + n)] = e;
            ss += s * s;
        }
    }
    r.rms = std::sqrt(ss / double(in.M * o.N));
    return r;
}

// |got - want| <= allowed elementwise ([M, N] dense); else the worst element and the count.
::testing::AssertionResult within(const std::vector<float>& got, const std::vector<double>& want,
                       const std::vector<double>& allowed, int64_t N) {
    size_t bad = 0, worst = 0;
    double worst_excess = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double excess = std::fabs(double(got[i]) - want[i]) - allowed[i];
        if (!(excess <= 0)) {  // NaN fails too
            if (bad++ == 0 || !(excess <= worst_excess)) worst_excess = excess, worst = i;
        }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << bad << " of " << got.size() << " elements off; worst at input row "
           << worst / size_t(N) << ", output column " << worst % size_t(N) << ": got "
           << got[worst] << ", want " << want[worst] << " +- " << allowed[worst];
}

// y = the product (or y0 + the product): within kTol rms(product) plus the slack.
::testing::AssertionResult matches(const std::vector<float>& got, const Ref& r,
                                   const std::vector<float>* y0) {
    std::vector<double> want = r.y, allowed(r.y.size());
    for (size_t i = 0; i < want.size(); ++i) {
        if (y0) want[i] += (*y0)[i];
        allowed[i] = kTol * r.rms + r.slack[i];
    }
    return within(got, want, allowed, r.N);
}

// The logical part of a guarded output set to `values` ([rows, cols] dense).
void fill(const GuardedOutput& out, int64_t rows, int64_t cols, const std::vector<float>& values) {
    TDM_CUDA_CHECK(cudaMemcpy2D(out.data(), size_t(out.ld()) * 4, values.data(), size_t(cols) * 4,
                                size_t(cols) * 4, size_t(rows), cudaMemcpyHostToDevice));
}

TEST(CudaGemv, OnePredicateSaysWhichKernelTakesAShape) {
    TDM_SKIP_WITHOUT_GPU();
    EXPECT_EQ(gemv_kernel_for(1, 4096), GemvKernel::kRows);
    EXPECT_EQ(gemv_kernel_for(1, 14336), GemvKernel::kRows);
    EXPECT_EQ(gemv_kernel_for(2, 14336), GemvKernel::kRows);
    EXPECT_EQ(gemv_kernel_for(4, 2048), GemvKernel::kRows);
    // The rows kernel's bound: the staged input (M * K bf16) beside a weight ring of two stages
    // in one block's shared memory.
    EXPECT_TRUE(gemv_rows_kernel_fits(4, 24640));
    EXPECT_FALSE(gemv_rows_kernel_fits(4, 24648));
    EXPECT_TRUE(gemv_rows_kernel_fits(2, 49280));
    EXPECT_FALSE(gemv_rows_kernel_fits(2, 49288));
    EXPECT_EQ(gemv_kernel_for(2, 49288), GemvKernel::kTiles);
    EXPECT_FALSE(gemv_rows_kernel_fits(5, 64));
    EXPECT_EQ(gemv_kernel_for(5, 64), GemvKernel::kTiles);
    EXPECT_EQ(gemv_kernel_for(16, 14336), GemvKernel::kTiles);
    DeviceBuffer buffer(size_t(64) << 10);
    const float* x = buffer.as<float>();
    EXPECT_TRUE(gemv_supports(x, 16, 14336, 14336));
    EXPECT_TRUE(gemv_supports(x, 16, 16384, 16384));
    EXPECT_TRUE(gemv_supports(x, 8, 28672, 28672));  // a 70B down projection at 8 rows
    EXPECT_FALSE(gemv_supports(x, 16, 32768, 32768));  // the staged input would not fit
    EXPECT_FALSE(gemv_supports(x, 17, 64, 64));
    EXPECT_FALSE(gemv_supports(x, 0, 64, 64));
    EXPECT_FALSE(gemv_supports(x, 2, 60, 60));        // K % 8
    EXPECT_FALSE(gemv_supports(x, 2, 66, 64));        // ldx % 4
    EXPECT_FALSE(gemv_supports(x + 1, 2, 64, 64));    // x not 16-byte aligned
    // The engine's predicate is the same one.
    Matmul gemm(nullptr);
    const Projection out{MatrixView{buffer.data(), DType::BF16, 8, 64}, {}, buffer.as<float>(), 8};
    EXPECT_TRUE(gemm.gemv_applies(LayerInput{x, 16, 64, {}, 0.0f, nullptr}, &out, 1));
    EXPECT_FALSE(gemm.gemv_applies(LayerInput{x, 17, 64, {}, 0.0f, nullptr}, &out, 1));
    // A kernel forced onto a shape it does not take is refused before anything is enqueued.
    try {
        gemv(LayerInput{x, 5, 64, {}, 0.0f, nullptr}, &out, 1, false, nullptr, GemvKernel::kRows);
        FAIL() << "the rows kernel accepted 5 rows";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("rows kernel"), std::string::npos) << e.what();
    }
}

// Three outputs of one input (45 + 8 + 67 rows: tiles that straddle two outputs, a tile-sized
// output, padded strides, biases on two), stored and added into y, with and without the norm;
// the tiles kernel run twice gives the same bits (its K ranges' partials are added in a fixed
// order, no atomics).
TEST(CudaGemv, ProductsMatchFloat64AtEveryRowCount) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(41);
    for (const int64_t K : kDepths) {
        std::vector<std::unique_ptr<Output>> outs;
        outs.push_back(std::make_unique<Output>(45, K, true, 3, rng));
        outs.push_back(std::make_unique<Output>(8, K, false, 0, rng));
        outs.push_back(std::make_unique<Output>(67, K, true, 1, rng));
        for (int64_t M = 1; M <= kGemvMaxRows; ++M) {
            for (const bool norm : {false, true}) {
                const Input in(M, K, norm, rng);
                std::vector<Ref> refs;
                for (const auto& o : outs) refs.push_back(reference(in, *o));
                for (const GemvKernel kernel : kernels_for(M, K)) {
                    for (const bool accumulate : {false, true}) {
                        SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) +
                                     (norm ? " normed" : "") + (accumulate ? " accumulate" : "") +
                                     " " + name_of(kernel));
                        std::vector<std::unique_ptr<GuardedOutput>> y;
                        std::vector<std::vector<float>> y0;
                        std::vector<Projection> projections;
                        for (const auto& o : outs) {
                            y.push_back(std::make_unique<GuardedOutput>(M, o->N, o->ldy));
                            y0.push_back(uniform(size_t(M * o->N), rng, -4, 4));
                            if (accumulate) fill(*y.back(), M, o->N, y0.back());
                            projections.push_back(o->into(y.back()->data()));
                        }
                        gemv(in.view(), projections.data(), 3, accumulate, nullptr, kernel);
                        for (size_t i = 0; i < outs.size(); ++i) {
                            ASSERT_TRUE(y[i]->written_exactly()) << "output " << i;
                            const std::vector<float>* added = accumulate ? &y0[i] : nullptr;
                            EXPECT_TRUE(matches(y[i]->logical(), refs[i], added))
                                << "output " << i << (accumulate ? " (y0 + product)" : "");
                        }
                        if (kernel != GemvKernel::kTiles || accumulate) continue;
                        std::vector<std::unique_ptr<GuardedOutput>> again;
                        std::vector<Projection> same;
                        for (const auto& o : outs) {
                            again.push_back(std::make_unique<GuardedOutput>(M, o->N, o->ldy));
                            same.push_back(o->into(again.back()->data()));
                        }
                        gemv(in.view(), same.data(), 3, false, nullptr, kernel);
                        for (size_t i = 0; i < outs.size(); ++i)
                            EXPECT_EQ(again[i]->logical(), y[i]->logical())
                                << "output " << i << " differs between two identical launches";
                    }
                }
            }
        }
    }
}

// silu(gate) * up in float64 and what the epilogue may be off by: the products carry kTol rms +
// slack (E_g, E_u); silu is 1.1-Lipschitz, so out may be off by 1.1 (|u| + E_u) E_g +
// (|silu(g)| + 1.1 E_g) E_u, plus f32 rounding of the epilogue (1e-5 relative).
struct Swiglu {
    std::vector<double> want, allowed;
};

Swiglu swiglu_reference(const Input& in, const Output& gate, const Output& up) {
    const Ref g = reference(in, gate), u = reference(in, up);
    Swiglu r{std::vector<double>(g.y.size()), std::vector<double>(g.y.size())};
    for (size_t i = 0; i < g.y.size(); ++i) {
        const double silu = g.y[i] / (1 + std::exp(-g.y[i]));
        const double eg = kTol * g.rms + g.slack[i], eu = kTol * u.rms + u.slack[i];
        r.want[i] = silu * u.y[i];
        r.allowed[i] = 1.1 * (std::fabs(u.y[i]) + eu) * eg + (std::fabs(silu) + 1.1 * eg) * eu +
                       1e-5 * std::fabs(r.want[i]);
    }
    return r;
}

TEST(CudaGemv, GatedProductsMatchSwigluOfFloat64AtEveryRowCount) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(42);
    for (const int64_t K : kDepths) {
        const int64_t N = 37;
        const Output gate(N, K, true, 2, rng), up(N, K, false, 2, rng);
        for (int64_t M = 1; M <= kGemvMaxRows; ++M) {
            for (const bool norm : {false, true}) {
                const Input in(M, K, norm, rng);
                const Swiglu ref = swiglu_reference(in, gate, up);
                for (const GemvKernel kernel : kernels_for(M, K)) {
                    SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) +
                                 (norm ? " normed " : " ") + name_of(kernel));
                    GuardedOutput out(M, N, gate.ldy);
                    gemv_gated(in.view(), gate.weight(), gate.bias(), up.weight(), up.bias(),
                               out.data(), gate.ldy, nullptr, kernel);
                    ASSERT_TRUE(out.written_exactly());
                    EXPECT_TRUE(within(out.logical(), ref.want, ref.allowed, N));
                }
            }
        }
    }
}

// More units than one wave of warps: each warp of the rows kernel walks several rows through its
// weight ring (rows of one stage, a partial last stage, and rows of several stages), for plain
// products (two outputs, one boundary between them mid-walk) and the gate/up pair.
TEST(CudaGemv, RowsKernelWalksSeveralRowsPerWarp) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(44);
    for (const int64_t K : {int64_t(200), int64_t(1032), int64_t(4096)}) {
        const Output a(3001, K, true, 5, rng), b(2203, K, false, 0, rng);
        const Output gate(2500, K, false, 0, rng), up(2500, K, true, 0, rng);
        for (int64_t M = 1; M <= kGemvRowsKernelMaxRows; ++M) {
            const Input in(M, K, true, rng);
            SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K));
            ASSERT_TRUE(gemv_rows_kernel_fits(M, K));
            const Ref ra = reference(in, a), rb = reference(in, b);
            GuardedOutput ya(M, a.N, a.ldy), yb(M, b.N, b.ldy);
            const Projection both[2] = {a.into(ya.data()), b.into(yb.data())};
            gemv(in.view(), both, 2, false, nullptr, GemvKernel::kRows);
            ASSERT_TRUE(ya.written_exactly() && yb.written_exactly());
            EXPECT_TRUE(matches(ya.logical(), ra, nullptr));
            EXPECT_TRUE(matches(yb.logical(), rb, nullptr));

            const Swiglu ref = swiglu_reference(in, gate, up);
            GuardedOutput out(M, gate.N, gate.ldy);
            gemv_gated(in.view(), gate.weight(), gate.bias(), up.weight(), up.bias(), out.data(),
                       gate.ldy, nullptr, GemvKernel::kRows);
            ASSERT_TRUE(out.written_exactly());
            EXPECT_TRUE(within(out.logical(), ref.want, ref.allowed, gate.N));
        }
    }
}

// q/k/v with RoPE and the cache append in one launch against the same kernel's products followed by
// rope_and_store, at positions pos0 .. pos0 + M - 1 given on the host or in device memory (a
// recorded graph's way, the host value then wrong on purpose). q agrees to kTol; the cached bf16
// values to one bf16 rounding step (their f32 sources may differ in the last bits); positions the
// pass does not write keep their poison, and the fused launch leaves the k and v outputs alone.
TEST(CudaGemv, QkvRopeEqualsProductsThenRopeAndStoreAtEveryRowCount) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(43);
    constexpr uint16_t kPoison16 = 0x7fad;
    for (const int64_t K : kDepths) {
        const int32_t D = K == 200 ? 16 : K == 64 ? 32 : 128, heads = 4, kv_heads = 2;
        const int64_t qd = heads * D, kvd = kv_heads * D;
        const Output wq(qd, K, true, 3, rng), wk(kvd, K, true, 0, rng), wv(kvd, K, false, 0, rng);
        std::vector<float> inv_freq(size_t(D / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = float(1.0 / std::pow(500000.0, 2.0 * double(i) / double(D)));
        const DeviceBuffer d_freq = upload(inv_freq);
        for (int64_t M = 1; M <= kGemvMaxRows; ++M) {
            const Input in(M, K, M % 3 == 0, rng);
            const int64_t pos0 = 29 + 3 * M, capacity = pos0 + M + 4;
            const std::vector<uint16_t> empty(size_t(kv_heads * capacity * D), kPoison16);
            const DeviceBuffer d_pos = upload(std::vector<int64_t>{pos0});
            for (const GemvKernel kernel : kernels_for(M, K)) {
                // separate: the products, then rope_and_store
                DeviceBuffer q1(size_t(M * qd) * 4), k1(size_t(M * kvd) * 4),
                    v1(size_t(M * kvd) * 4);
                DeviceBuffer kc1 = upload(empty), vc1 = upload(empty);
                const Projection sep[3] = {{wq.weight(), wq.bias(), q1.as<float>(), qd},
                                           {wk.weight(), wk.bias(), k1.as<float>(), kvd},
                                           {wv.weight(), wv.bias(), v1.as<float>(), kvd}};
                gemv(in.view(), sep, 3, false, nullptr, kernel);
                RopeStore a;
                a.q = q1.as<float>();
                a.heads = heads;
                a.k = k1.as<float>();
                a.v = v1.as<float>();
                a.kv_heads = kv_heads;
                a.k_cache = kc1.as<uint16_t>();
                a.v_cache = vc1.as<uint16_t>();
                a.capacity = capacity;
                a.rows = M;
                a.pos0 = pos0;
                a.head_dim = D;
                a.inv_freq = d_freq.as<float>();
                rope_and_store(a, nullptr);
                const auto q_want = download<float>(q1.data(), size_t(M * qd));
                const auto kc_want = download<uint16_t>(kc1.data(), empty.size());
                const auto vc_want = download<uint16_t>(vc1.data(), empty.size());
                for (const bool on_device : {false, true}) {
                    SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) + " D=" +
                                 std::to_string(D) + (M % 3 == 0 ? " normed " : " ") +
                                 name_of(kernel) + (on_device ? " position in device memory" : ""));
                    GuardedOutput q2(M, qd, wq.ldy), k2(M, kvd, kvd), v2(M, kvd, kvd);
                    DeviceBuffer kc2 = upload(empty), vc2 = upload(empty);
                    const Projection fused[3] = {wq.into(q2.data()), wk.into(k2.data()),
                                                 wv.into(v2.data())};
                    const QkvRope rope =
                        qkv_rope_at(on_device, pos0, d_pos, d_freq, kc2, vc2, capacity, D);
                    gemv_qkv_rope(in.view(), fused, rope, nullptr, kernel);
                    ASSERT_TRUE(q2.written_exactly());
                    const auto q_got = q2.logical();
                    std::vector<double> want(q_want.begin(), q_want.end());
                    const std::vector<double> allowed(want.size(), kTol * rms(q_want));
                    EXPECT_TRUE(within(q_got, want, allowed, qd)) << "rotated q";
                    for (const GuardedOutput* untouched : {&k2, &v2}) {
                        const auto all = download<float>(untouched->data(), size_t(M * kvd));
                        EXPECT_TRUE(std::all_of(all.begin(), all.end(), is_poison))
                            << "a k or v output was written";
                    }
                    for (const auto& [got_buf, want_host] :
                         {std::pair{&kc2, &kc_want}, std::pair{&vc2, &vc_want}}) {
                        const auto got = download<uint16_t>(got_buf->data(), empty.size());
                        std::vector<float> written;
                        for (const uint16_t w : *want_host)
                            if (w != kPoison16) written.push_back(bf16_to_f32(w));
                        ASSERT_EQ(written.size(), size_t(M * kvd)) << "rope_and_store's appends";
                        const double scale = kTol * rms(written);
                        for (size_t e = 0; e < got.size(); ++e) {
                            const uint16_t w16 = (*want_host)[e];
                            if (w16 == kPoison16) {
                                ASSERT_EQ(got[e], kPoison16)
                                    << "cache element " << e << " (position "
                                    << e / size_t(D) % size_t(capacity) << ") written";
                                continue;
                            }
                            const float g = bf16_to_f32(got[e]), w = bf16_to_f32(w16);
                            ASSERT_LE(std::fabs(g - w), std::ldexp(std::fabs(w), -7) + scale)
                                << (got_buf == &kc2 ? "k" : "v") << " cache: kv head "
                                << e / size_t(D) / size_t(capacity) << ", position "
                                << e / size_t(D) % size_t(capacity) << ", element "
                                << e % size_t(D);
                        }
                    }
                }
            }
        }
    }
}

}  // namespace
}  // namespace tdm::cuda

#endif  // TANDEM_HAVE_CUDA
