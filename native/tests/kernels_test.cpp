// The CPU kernels against their plain double-accumulating references (kernels/cpu/reference.h),
// at every instruction-set level this CPU has, on fresh random inputs at ragged sizes.
//
// Every output buffer is poisoned with a NaN pattern and surrounded by guard regions: each
// element of the logical extent must be written (finite afterwards) and nothing else may change
// (guards and the gaps of padded row strides keep their exact bits). Inputs carry NaN in their
// padding (x's row gaps, past the end of W, KV-cache rows not yet filled), so a kernel that reads
// beyond its extent poisons its result.
//
// Tolerances. Matmul errors are measured as max |y - ref| over the output relative to a scale:
// rms(ref), or rms(|x||W| + |bias|) / sqrt(K + 1) if that is larger (with K = 1 and a bias, y
// may cancel to near zero while its terms do not).
//   - f32 arithmetic on exact operands (f32, and f16/bf16 weights widened to f32): f32 sums of K
//     products carry a rounding error of about u sqrt(K) relative to rms(y) for random signs
//     (u = 2^-24); 1e-5 (with a sqrt(K) factor above K = 1024) leaves a margin of ~5x over
//     that, while one wrong or missing product (~rms(y) / sqrt(K)) is 1e-3..1e-1 of rms(y).
//   - the avx512_bf16 fast path rounds x to bf16: held to the f32 tolerance against a reference
//     that rounds x the same way, and element by element to 2^-8 (|x||W| + |bias|) against the
//     plain one: rounding moves each x by at most 2^-9 of itself, so each product too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attention/estimate_dot.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/reference.h"

namespace tdm::cpu {
namespace {

constexpr uint32_t kPoisonBits = 0x7fc0dead;  // a quiet NaN no arithmetic produces
constexpr int64_t kGuard = 37;                // floats of guard on each side of an output

float poison() {
    float f;
    std::memcpy(&f, &kPoisonBits, 4);
    return f;
}

bool is_poison(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u == kPoisonBits;
}

// Every level this CPU supports, lowest first.
std::vector<IsaLevel> levels() {
    std::vector<IsaLevel> out;
    for (int l = 0; l <= static_cast<int>(detected_isa_level()); ++l)
        out.push_back(static_cast<IsaLevel>(l));
    return out;
}

// Runs the scope at one level, restoring the previous level afterwards.
class AtLevel {
public:
    explicit AtLevel(IsaLevel level) : saved_(active_isa_level()) {
        EXPECT_EQ(set_isa_level(level), level);
    }
    ~AtLevel() { set_isa_level(saved_); }
    AtLevel(const AtLevel&) = delete;
    AtLevel& operator=(const AtLevel&) = delete;

private:
    IsaLevel saved_;
};

std::vector<float> uniform(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// A row-major [rows, ld] f32 matrix whose logical part is [rows, cols], with kGuard floats of
// poison before and after and poison in the row gaps.
struct Strided {
    int64_t rows, cols, ld;
    std::vector<float> buf;

    Strided(int64_t r, int64_t c, int64_t l) : rows(r), cols(c), ld(l) {
        buf.assign(static_cast<size_t>(2 * kGuard + r * l), poison());
    }
    float* data() { return buf.data() + kGuard; }
    float& at(int64_t r, int64_t c) { return data()[r * ld + c]; }

    void fill(const std::vector<float>& values) {  // values: [rows, cols]
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) at(r, c) = values[r * cols + c];
    }
    void poison_all() { std::fill(buf.begin(), buf.end(), poison()); }

    // Every logical element written (no NaN/inf) and every other float untouched.
    ::testing::AssertionResult written_exactly() const {
        const float* d = buf.data() + kGuard;
        for (int64_t i = 0; i < kGuard; ++i) {
            if (!is_poison(buf[i]))
                return ::testing::AssertionFailure()
                       << "guard before the output overwritten at " << i;
            if (!is_poison(buf[buf.size() - 1 - i]))
                return ::testing::AssertionFailure()
                       << "guard after the output overwritten at " << i;
        }
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < ld; ++c) {
                float v = d[r * ld + c];
                if (c < cols && !std::isfinite(v))
                    return ::testing::AssertionFailure()
                           << "element (" << r << ", " << c << ") not written or not finite: " << v;
                if (c >= cols && !is_poison(v))
                    return ::testing::AssertionFailure()
                           << "row gap (" << r << ", " << c << ") overwritten";
            }
        }
        return ::testing::AssertionSuccess();
    }

    std::vector<float> logical() const {
        std::vector<float> out(static_cast<size_t>(rows * cols));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = buf[kGuard + r * ld + c];
        return out;
    }
};

double rms(const std::vector<float>& v) {
    double s = 0.0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s / std::max<size_t>(1, v.size()));
}

// max |a - b| / rms(b); b is the reference.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0.0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    double scale = rms(b);
    return scale > 0.0 ? worst / scale : worst;
}

double f32_tolerance(int64_t K) { return 1e-5 * std::max(1.0, std::sqrt(K / 1024.0)); }

// max |a - b| / scale.
double error_over(const std::vector<float>& a, const std::vector<float>& b, double scale) {
    double worst = 0.0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    return worst / scale;
}

// Weights stored in a dtype, with poison past the end (NaN in that dtype).
struct StoredWeights {
    DType dtype;
    int64_t rows, cols;
    std::vector<uint8_t> bytes;

    StoredWeights(DType t, int64_t r, int64_t c, const std::vector<float>& values)
        : dtype(t), rows(r), cols(c) {
        const int64_t n = r * c, tail = 64;
        bytes.resize(static_cast<size_t>((n + tail) * dtype_size(t)));
        for (int64_t i = 0; i < n + tail; ++i) {
            float v = i < n ? values[i] : poison();
            if (t == DType::F32) {
                std::memcpy(bytes.data() + 4 * i, &v, 4);
            } else {
                uint16_t h = t == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
                std::memcpy(bytes.data() + 2 * i, &h, 2);
            }
        }
    }
    MatrixView matrix() const { return {bytes.data(), dtype, rows, cols}; }
    VectorView vector() const { return {bytes.data(), dtype, rows * cols}; }
};

// ---------------------------------------------------------------------------------------------
// matmul

struct MatmulCase {
    int64_t M, K, N;
    DType dtype;
    bool bias;
    bool padded;  // ldx > K, ldy > N
    uint32_t seed;
};

std::string describe(const MatmulCase& c) {
    return "M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " N=" + std::to_string(c.N) +
           " " + dtype_name(c.dtype) + (c.bias ? " +bias" : "") + (c.padded ? " padded" : "") +
           " seed=" + std::to_string(c.seed);
}

void check_matmul(const MatmulCase& c, ThreadPool& pool) {
    SCOPED_TRACE(describe(c));
    std::mt19937 rng(c.seed * 7919u + static_cast<uint32_t>(c.M * 131 + c.K * 17 + c.N));
    const int64_t ldx = c.K + (c.padded ? 3 : 0), ldy = c.N + (c.padded ? 5 : 0);
    Strided x(c.M, c.K, ldx);
    x.fill(uniform(static_cast<size_t>(c.M * c.K), rng));
    StoredWeights w(c.dtype, c.N, c.K, uniform(static_cast<size_t>(c.N * c.K), rng));
    StoredWeights b(c.dtype, 1, c.N, uniform(static_cast<size_t>(c.N), rng));
    VectorView bias = c.bias ? b.vector() : VectorView{};

    Strided ref(c.M, c.N, ldy), ref_bf16x(c.M, c.N, ldy);
    ref::matmul(x.data(), c.M, ldx, w.matrix(), bias, ref.data(), ldy);
    const std::vector<float> expected = ref.logical();
    std::vector<float> expected_bf16x;
    if (c.dtype == DType::BF16) {
        ref::matmul(x.data(), c.M, ldx, w.matrix(), bias, ref_bf16x.data(), ldy, true);
        expected_bf16x = ref_bf16x.logical();
    }

    // |x||W| + |bias| of every output: the size of what its sum adds up.
    std::vector<float> magnitude(static_cast<size_t>(c.M * c.N));
    for (int64_t m = 0; m < c.M; ++m) {
        for (int64_t n = 0; n < c.N; ++n) {
            double sum = c.bias ? std::abs(load_as_f32(b.bytes.data(), n, c.dtype)) : 0.0;
            for (int64_t k = 0; k < c.K; ++k)
                sum += std::abs(x.at(m, k) * load_as_f32(w.bytes.data(), n * c.K + k, c.dtype));
            magnitude[m * c.N + n] = static_cast<float>(sum);
        }
    }
    const double scale = std::max(rms(expected), rms(magnitude) / std::sqrt(c.K + 1.0));

    for (IsaLevel level : levels()) {
        SCOPED_TRACE(isa_level_name(level));
        AtLevel at(level);
        Strided y(c.M, c.N, ldy);
        matmul(x.data(), c.M, ldx, w.matrix(), bias, y.data(), ldy, pool);
        ASSERT_TRUE(y.written_exactly());
        const std::vector<float> got = y.logical();
        if (c.dtype == DType::BF16 && level == IsaLevel::Avx512Bf16) {
            EXPECT_LE(error_over(got, expected_bf16x, scale), f32_tolerance(c.K));
            for (size_t i = 0; i < got.size(); ++i)
                ASSERT_LE(std::abs(double(got[i]) - expected[i]), 0x1p-8 * magnitude[i])
                    << "element " << i;
        } else {
            EXPECT_LE(error_over(got, expected, scale), f32_tolerance(c.K));
        }
    }
}

TEST(Matmul, RaggedShapesEveryDtypeAndLevel) {
    ThreadPool pool(2);
    // Both sides of every level's GEMV/GEMM switch (4, 6 or 8 rows a pass; up to 4 passes over a
    // weight matrix that fits in L2: 16, 24 or 32 rows) and of the GEMM's 14-row (AVX-512) and
    // 6-row (AVX2) register tiles. {700, 400} is over the 1 MiB cached-weight bound in f32 and
    // under it in 16 bits.
    const int64_t Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 24, 25, 32, 33, 64, 129};
    // K crosses the packing blocks (256 for f32, 512 for bf16); N crosses the 32-wide tiles.
    const int64_t KN[][2] = {{1, 1}, {5, 33}, {33, 5}, {100, 257}, {257, 100}, {600, 47}, {16, 64}, {700, 400}};
    uint32_t seed = 1;
    for (DType t : {DType::F32, DType::F16, DType::BF16})
        for (int64_t M : Ms)
            for (auto& kn : KN)
                for (bool bias : {false, true})
                    check_matmul({M, kn[0], kn[1], t, bias, (seed % 2) == 1, seed++}, pool);
}

TEST(Matmul, ModelShapes) {
    // The 125M benchmark model's projections: attention (768 -> 768, 768 -> 256), MLP
    // (768 -> 2048, 2048 -> 768), for decode (M = 1), a speculative check (3) and prefill (37).
    ThreadPool pool(2);
    const int64_t KN[][2] = {{768, 768}, {768, 256}, {768, 2048}, {2048, 768}};
    uint32_t seed = 100;
    for (DType t : {DType::F32, DType::F16, DType::BF16})
        for (int64_t M : {1, 3, 37})
            for (auto& kn : KN) check_matmul({M, kn[0], kn[1], t, false, M == 3, seed++}, pool);
}

TEST(Matmul, LmHeadDecode) {
    ThreadPool pool(2);
    uint32_t seed = 200;
    for (DType t : {DType::F32, DType::F16, DType::BF16})
        check_matmul({1, 768, 32000, t, false, false, seed++}, pool);
}

TEST(Matmul, SeveralSeedsAndThreadCounts) {
    for (int threads : {1, 3}) {
        ThreadPool pool(threads);
        for (uint32_t seed = 300; seed < 303; ++seed)
            for (DType t : {DType::F32, DType::BF16})
                for (int64_t M : {1, 6, 40}) check_matmul({M, 129, 95, t, true, true, seed}, pool);
    }
}

TEST(Matmul, EmptyInnerDimensionGivesBias) {
    ThreadPool pool(2);
    std::vector<float> bias = {1.5f, -2.0f, 0.25f};
    Strided y(2, 3, 4);
    float x = 0.0f;
    matmul(&x, 2, 0, MatrixView{nullptr, DType::F32, 3, 0}, VectorView{bias.data(), DType::F32, 3},
           y.data(), 4, pool);
    ASSERT_TRUE(y.written_exactly());
    EXPECT_EQ(y.logical(), (std::vector<float>{1.5f, -2.0f, 0.25f, 1.5f, -2.0f, 0.25f}));
}

TEST(Matmul, RejectsBadArguments) {
    ThreadPool pool(1);
    std::vector<float> w(12, 1.0f), x(4, 1.0f), y(3, 0.0f), bias(2, 0.0f);
    MatrixView W{w.data(), DType::F32, 3, 4};
    EXPECT_THROW(matmul(x.data(), 1, 3, W, {}, y.data(), 3, pool), Error);  // ldx < K
    EXPECT_THROW(matmul(x.data(), 1, 4, W, {}, y.data(), 2, pool), Error);  // ldy < N
    EXPECT_THROW(
        matmul(x.data(), 1, 4, W, VectorView{bias.data(), DType::F32, 2}, y.data(), 3, pool),
        Error);
    EXPECT_THROW(matmul(x.data(), -1, 4, W, {}, y.data(), 3, pool), Error);
}

// ---------------------------------------------------------------------------------------------
// element-wise kernels

TEST(RmsNorm, MatchesReferenceForEveryWeightDtype) {
    uint32_t seed = 1;
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
        for (int64_t n : {1, 5, 16, 33, 100, 768, 1000}) {
            for (int64_t rows : {1, 3}) {
                SCOPED_TRACE(std::string(dtype_name(t)) + " n=" + std::to_string(n) +
                             " rows=" + std::to_string(rows));
                std::mt19937 rng(seed++);
                std::vector<float> x = uniform(static_cast<size_t>(rows * n), rng, -3.0f, 3.0f);
                StoredWeights w(t, 1, n, uniform(static_cast<size_t>(n), rng, 0.5f, 1.5f));
                Strided ref(rows, n, n);
                ref::rmsnorm(x.data(), w.vector(), 1e-5f, rows, n, ref.data());
                for (IsaLevel level : levels()) {
                    SCOPED_TRACE(isa_level_name(level));
                    AtLevel at(level);
                    Strided y(rows, n, n);
                    rmsnorm(x.data(), w.vector(), 1e-5f, rows, n, y.data());
                    ASSERT_TRUE(y.written_exactly());
                    // A handful of f32 roundings per element on top of an f32 sum of squares.
                    EXPECT_LE(relative_error(y.logical(), ref.logical()), 2e-6);
                }
            }
        }
    }
}

TEST(Rope, MatchesReferenceRotateHalf) {
    uint32_t seed = 10;
    for (int64_t head_dim : {2, 6, 16, 64, 80, 128}) {
        for (int64_t heads : {1, 3, 4}) {
            SCOPED_TRACE("head_dim=" + std::to_string(head_dim) +
                         " heads=" + std::to_string(heads));
            std::mt19937 rng(seed++);
            const int64_t rows = 5;
            std::vector<int32_t> positions = {0, 1, 17, 4095, 131071};
            std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
            for (int64_t i = 0; i < head_dim / 2; ++i)
                inv_freq[i] = static_cast<float>(std::pow(500000.0, -2.0 * i / head_dim));
            std::vector<float> x = uniform(static_cast<size_t>(rows * heads * head_dim), rng);
            std::vector<float> expected = x;
            ref::rope(expected.data(), rows, heads, head_dim, positions.data(), inv_freq.data());
            for (IsaLevel level : levels()) {
                SCOPED_TRACE(isa_level_name(level));
                AtLevel at(level);
                Strided y(rows, heads * head_dim, heads * head_dim);
                y.fill(x);
                rope(y.data(), rows, heads, head_dim, positions.data(), inv_freq.data());
                ASSERT_TRUE(y.written_exactly());
                // cos/sin of the same f32 angle to within an ulp or two, then two products.
                EXPECT_LE(relative_error(y.logical(), expected), 2e-6);
            }
        }
    }
}

TEST(Rope, PositionZeroIsIdentity) {
    std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8}, inv_freq = {1.0f, 0.1f};
    std::vector<float> y = x;
    int32_t pos0 = 0;
    rope(y.data(), 1, 2, 4, &pos0, inv_freq.data());
    EXPECT_EQ(y, x);
}

TEST(Swiglu, MatchesReferenceIncludingTheFusedLayout) {
    uint32_t seed = 20;
    for (int64_t n : {1, 7, 16, 33, 2048}) {
        for (int64_t rows : {1, 3}) {
            SCOPED_TRACE("n=" + std::to_string(n) + " rows=" + std::to_string(rows));
            std::mt19937 rng(seed++);
            // gate and up as the two halves of one [rows, 2n] buffer; wide range for exp's tails.
            std::vector<float> fused =
                uniform(static_cast<size_t>(rows * 2 * n), rng, -30.0f, 30.0f);
            const float* gate = fused.data();
            const float* up = fused.data() + n;
            Strided ref(rows, n, n);
            ref::swiglu(gate, up, rows, n, 2 * n, ref.data());
            const std::vector<float> expected = ref.logical();
            for (IsaLevel level : levels()) {
                SCOPED_TRACE(isa_level_name(level));
                AtLevel at(level);
                Strided y(rows, n, n);
                swiglu(gate, up, rows, n, 2 * n, y.data());
                ASSERT_TRUE(y.written_exactly());
                const std::vector<float> got = y.logical();
                for (size_t i = 0; i < got.size(); ++i) {
                    // e^x to ~2 ulp, one division, one product; tiny results may flush.
                    ASSERT_NEAR(got[i], expected[i], 2e-6 * std::abs(expected[i]) + 1e-30)
                        << "element " << i;
                }
            }
        }
    }
}

TEST(AddInplace, AddsExactly) {
    std::mt19937 rng(30);
    for (int64_t n : {1, 7, 8, 16, 33, 1000}) {
        std::vector<float> x = uniform(static_cast<size_t>(n), rng),
                           y0 = uniform(static_cast<size_t>(n), rng);
        for (IsaLevel level : levels()) {
            AtLevel at(level);
            Strided y(1, n, n);
            y.fill(y0);
            add_inplace(y.data(), x.data(), n);
            ASSERT_TRUE(y.written_exactly());
            std::vector<float> got = y.logical();
            for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], y0[i] + x[i]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// attention

struct AttentionCase {
    int64_t n_new, pos0;
    int32_t heads, kv_heads, head_dim, window;
};

void check_attention(const AttentionCase& c, ThreadPool& pool, uint32_t seed) {
    SCOPED_TRACE("n_new=" + std::to_string(c.n_new) + " pos0=" + std::to_string(c.pos0) +
                 " heads=" + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) +
                 " D=" + std::to_string(c.head_dim) + " window=" + std::to_string(c.window) +
                 " threads=" + std::to_string(pool.size()));
    std::mt19937 rng(seed);
    const int64_t D = c.head_dim, keys = c.pos0 + c.n_new, capacity = keys + 11;
    // Scores of a few units, so that the softmax is neither flat nor one-hot.
    std::vector<float> q = uniform(static_cast<size_t>(c.n_new * c.heads * D), rng, -2.0f, 2.0f);
    // Cache rows past the filled ones are poison: attention must never read them.
    std::vector<float> k(static_cast<size_t>(c.kv_heads * capacity * D), poison());
    std::vector<float> v = k;
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int64_t h = 0; h < c.kv_heads; ++h) {
        for (int64_t j = 0; j < keys; ++j) {
            for (int64_t d = 0; d < D; ++d) {
                k[(h * capacity + j) * D + d] = 2.0f * u(rng);
                v[(h * capacity + j) * D + d] = u(rng);
            }
        }
    }
    const AttentionShape shape{
        c.n_new,    c.pos0,     capacity, c.heads,
        c.kv_heads, c.head_dim, c.window, 1.0f / std::sqrt(static_cast<float>(D))};
    const int64_t width = c.heads * D;
    Strided ref(c.n_new, width, width);
    ref::attention(q.data(), k.data(), v.data(), shape, ref.data());
    const std::vector<float> expected = ref.logical();
    for (IsaLevel level : levels()) {
        SCOPED_TRACE(isa_level_name(level));
        AtLevel at(level);
        Strided out(c.n_new, width, width);
        attention(q.data(), k.data(), v.data(), shape, out.data(), pool);
        ASSERT_TRUE(out.written_exactly());
        // Scores are f32 dot products over D (error ~u sqrt(D) of a few units), e^x is good to
        // ~2 ulp, and the outputs are convex combinations of values in [-1, 1].
        EXPECT_LE(relative_error(out.logical(), expected), 1e-5);
    }
}

TEST(Attention, DecodePrefillAndPrefillAfterCache) {
    ThreadPool pool(2);
    const int32_t head_pairs[][2] = {{1, 1}, {2, 1}, {4, 2}, {8, 2}, {8, 8}, {12, 4}};
    const int64_t steps[][2] = {{1, 0}, {1, 37}, {5, 0}, {7, 30}, {70, 0}, {40, 90}};
    uint32_t seed = 1;
    for (auto& hp : head_pairs)
        for (int32_t D : {16, 32, 64, 128, 80})
            for (auto& st : steps)
                check_attention({st[0], st[1], hp[0], hp[1], D, 0}, pool, seed++);
}

TEST(Attention, SlidingWindow) {
    ThreadPool pool(2);
    uint32_t seed = 1000;
    for (int32_t window : {1, 3, 16, 50, 500})
        for (auto st : {std::pair<int64_t, int64_t>{1, 120}, {9, 0}, {65, 20}, {100, 100}})
            check_attention({st.first, st.second, 4, 2, 32, window}, pool, seed++);
}

TEST(Attention, LongContextDecodeSplitsKeys) {
    // One KV head and a long cache: the keys are split across threads and merged.
    uint32_t seed = 2000;
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        check_attention({1, 1500, 4, 1, 64, 0}, pool, seed++);
        check_attention({1, 1500, 8, 1, 128, 700}, pool, seed++);
        check_attention({2, 900, 2, 2, 80, 0}, pool, seed++);
    }
}

TEST(Attention, LargePrefillManyTasks) {
    ThreadPool pool(2);
    check_attention({300, 0, 12, 4, 64, 0}, pool, 3000);
    check_attention({200, 333, 8, 2, 64, 128}, pool, 3001);
}

TEST(Attention, RejectsBadShapes) {
    ThreadPool pool(1);
    float buf[64] = {};
    EXPECT_THROW(attention(buf, buf, buf, {2, 3, 4, 2, 1, 8, 0, 1.0f}, buf, pool),
                 Error);  // past capacity
    EXPECT_THROW(attention(buf, buf, buf, {1, 0, 4, 3, 2, 8, 0, 1.0f}, buf, pool), Error);  // 3 % 2
    EXPECT_THROW(attention(buf, buf, buf, {1, 0, 4, 2, 1, 0, 0, 1.0f}, buf, pool), Error);  // D = 0
}

// ---------------------------------------------------------------------------------------------
// estimate_dots

// The block-sparse estimators' dot products, many at a time, equal attention_estimate::dot bit for
// bit at every level: ragged row and column counts (the 4 x 2 register block's edges), lengths
// that leave a tail past the last 8, strided rows, and values of mixed sign and magnitude, where
// a different order of additions or a fused multiply-add would change low bits.
TEST(EstimateDots, EqualTheEstimatorsDotBitForBitAtEveryLevel) {
    std::mt19937 rng(77);
    struct Case {
        int64_t rows, cols, n, lda, ldb;
    };
    const Case cases[] = {{1, 1, 8, 8, 8},    {4, 2, 128, 128, 128}, {7, 5, 1024, 1030, 1024},
                          {5, 3, 13, 20, 16}, {9, 11, 3, 3, 5},      {16, 129, 256, 512, 256}};
    for (const Case c : cases) {
        SCOPED_TRACE("rows " + std::to_string(c.rows) + " cols " + std::to_string(c.cols) +
                     " n " + std::to_string(c.n));
        std::vector<float> a = uniform(size_t(c.rows * c.lda), rng, -3.0f, 3.0f);
        std::vector<float> b = uniform(size_t(c.cols * c.ldb), rng, -3.0f, 3.0f);
        for (size_t i = 0; i < a.size(); i += 7) a[i] *= 1e3f;  // wide magnitudes: low bits matter
        std::vector<float> want(size_t(c.rows * c.cols));
        for (int64_t r = 0; r < c.rows; ++r)
            for (int64_t j = 0; j < c.cols; ++j)
                want[size_t(r * c.cols + j)] =
                    attention_estimate::dot(a.data() + r * c.lda, b.data() + j * c.ldb, c.n);
        for (IsaLevel level : levels()) {
            SCOPED_TRACE(isa_level_name(level));
            AtLevel at(level);
            Strided out(c.rows, c.cols, c.cols + 3);
            estimate_dots(a.data(), c.lda, c.rows, b.data(), c.ldb, c.cols, c.n, out.data(),
                          c.cols + 3);
            ASSERT_TRUE(out.written_exactly());
            const std::vector<float> got = out.logical();
            for (size_t i = 0; i < got.size(); ++i) {
                uint32_t g, w;
                std::memcpy(&g, &got[i], 4);
                std::memcpy(&w, &want[i], 4);
                ASSERT_EQ(g, w) << "pair " << i << ": " << got[i] << " against " << want[i];
            }
        }
    }
    float buf[8] = {};
    EXPECT_THROW(estimate_dots(buf, 2, 1, buf, 4, 1, 4, buf, 1), Error);  // lda < n
}

// ---------------------------------------------------------------------------------------------
// dispatch

TEST(Dispatch, LevelsCanBeCappedAndNamed) {
    const IsaLevel saved = active_isa_level();
    for (IsaLevel level : levels()) {
        EXPECT_EQ(set_isa_level(level), level);
        EXPECT_EQ(active_isa_level(), level);
        IsaLevel parsed;
        ASSERT_TRUE(parse_isa_level(isa_level_name(level), &parsed));
        EXPECT_EQ(parsed, level);
        EXPECT_NE(std::string(cpu_features()), "");
    }
    // A cap above the CPU is clamped to what it has.
    EXPECT_EQ(set_isa_level(IsaLevel::Avx512Bf16), detected_isa_level());
    IsaLevel unused;
    EXPECT_FALSE(parse_isa_level("sse9", &unused));
    set_isa_level(saved);
}

}  // namespace
}  // namespace tdm::cpu
