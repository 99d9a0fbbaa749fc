// The CUDA kernels (kernels/cuda) against their CPU twins (kernels/cpu/reference.h) on fresh
// random inputs at ragged sizes. Outputs are poisoned and guarded (cuda_test_support.h): every
// element must be written and nothing around it touched.
//
// Tolerances, as max |gpu - ref| / rms(ref) (ref accumulates in double):
//   - f32 element-wise arithmetic (rmsnorm, rope, swiglu): 1e-5, a few f32 roundings plus the
//     GPU's 1-2 ulp rsqrtf / sincosf / expf;
//   - matmul: the reference rounds x to bf16 too, so both multiply the same bf16 operands
//     exactly and differ only in f32 summation order: 1e-4, while one wrong or missing product
//     is about 1/sqrt(K) >= 3e-2 of rms(y) at these sizes;
//   - copies and conversions (embed, kv_store, add, bf16 rounding): bit for bit.
#include <gtest/gtest.h>

#if !defined(TANDEM_HAVE_CUDA)

TEST(CudaKernels, SkippedInABuildWithoutCuda) {
    GTEST_SKIP() << "this build has no CUDA backend (nvcc was not found): CUDA kernels untested";
}

#else

#include <memory>

#include "cuda_test_support.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/matmul.h"

namespace tdm::cuda {
namespace {

using namespace testing;

constexpr double kF32Tol = 1e-5;
constexpr double kMatmulTol = 1e-4;

// RoPE on queries only: x [rows, heads, D] in place at positions pos0 + r.
RopeStore queries(float* x, int64_t rows, int64_t heads, int64_t D, int64_t pos0,
                  const float* inv_freq) {
    RopeStore a;
    a.q = x;
    a.heads = int32_t(heads);
    a.rows = rows;
    a.pos0 = pos0;
    a.head_dim = int32_t(D);
    a.inv_freq = inv_freq;
    return a;
}

TEST(CudaKernels, EmbedCopiesTableRowsExactly) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(11);
    for (int64_t cols : {1, 7, 64, 300}) {
        for (int64_t n : {1, 5, 33}) {
            SCOPED_TRACE("cols=" + std::to_string(cols) + " n=" + std::to_string(n));
            const int64_t vocab = 50;
            const auto table = to_bf16(uniform(size_t(vocab * cols), rng, -3, 3));
            std::vector<int32_t> tokens(static_cast<size_t>(n));
            for (auto& t : tokens) t = int32_t(rng() % vocab);
            DeviceBuffer d_table = upload(table), d_tokens = upload(tokens);
            GuardedOutput out(n, cols, cols);
            embed(d_tokens.as<int32_t>(), n, MatrixView{d_table.data(), DType::BF16, vocab, cols},
                  out.data(), nullptr);
            ASSERT_TRUE(out.written_exactly());
            const auto got = out.logical();
            for (int64_t r = 0; r < n; ++r)
                for (int64_t c = 0; c < cols; ++c)
                    ASSERT_EQ(got[size_t(r * cols + c)],
                              bf16_to_f32(table[size_t(tokens[size_t(r)] * cols + c)]));
        }
    }
}

TEST(CudaKernels, RmsnormMatchesReference) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(12);
    for (int64_t rows : {1, 3, 17}) {
        for (int64_t n : {1, 7, 64, 1000, 4097}) {
            SCOPED_TRACE("rows=" + std::to_string(rows) + " n=" + std::to_string(n));
            const auto x = uniform(size_t(rows * n), rng, -4, 4);
            const auto w = to_bf16(uniform(size_t(n), rng, 0.5f, 1.5f));
            const float eps = 1e-5f;
            std::vector<float> ref(x.size());
            cpu::ref::rmsnorm(x.data(), VectorView{w.data(), DType::BF16, n}, eps, rows, n,
                              ref.data());
            DeviceBuffer d_x = upload(x), d_w = upload(w);
            GuardedOutput out(rows, n, n);
            rmsnorm(d_x.as<float>(), VectorView{d_w.data(), DType::BF16, n}, eps, rows, n,
                    out.data(), nullptr);
            ASSERT_TRUE(out.written_exactly());
            EXPECT_LE(relative_error(out.logical(), ref), kF32Tol);
        }
    }
}

TEST(CudaKernels, RopeMatchesReferenceAtNearAndFarPositions) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(13);
    struct Case { int64_t rows, heads, D, pos0; };
    for (const Case c : {Case{1, 1, 2, 0}, Case{5, 3, 16, 7}, Case{19, 8, 64, 0},
                         Case{4, 2, 128, 5000}, Case{3, 5, 96, 100000}, Case{2, 1, 256, 131000}}) {
        SCOPED_TRACE("rows=" + std::to_string(c.rows) + " heads=" + std::to_string(c.heads) +
                     " D=" + std::to_string(c.D) + " pos0=" + std::to_string(c.pos0));
        const int64_t n = c.rows * c.heads * c.D;
        const auto x = uniform(size_t(n), rng, -2, 2);
        std::vector<float> inv_freq(size_t(c.D / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = float(1.0 / std::pow(10000.0, 2.0 * double(i) / double(c.D)));
        std::vector<int32_t> positions(size_t(c.rows));
        for (int64_t r = 0; r < c.rows; ++r) positions[size_t(r)] = int32_t(c.pos0 + r);
        std::vector<float> ref = x;
        cpu::ref::rope(ref.data(), c.rows, c.heads, c.D, positions.data(), inv_freq.data());
        DeviceBuffer d_freq = upload(inv_freq);
        GuardedOutput out(1, n, n);
        TDM_CUDA_CHECK(cudaMemcpy(out.data(), x.data(), size_t(n) * 4, cudaMemcpyHostToDevice));
        rope_and_store(queries(out.data(), c.rows, c.heads, c.D, c.pos0, d_freq.as<float>()),
                       nullptr);
        ASSERT_TRUE(out.written_exactly());
        EXPECT_LE(relative_error(out.logical(), ref), kF32Tol);
    }
}

TEST(CudaKernels, SwigluMatchesReferenceWithStridedInputs) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(14);
    for (int64_t rows : {1, 4, 9}) {
        for (int64_t n : {1, 33, 1000}) {
            SCOPED_TRACE("rows=" + std::to_string(rows) + " n=" + std::to_string(n));
            const int64_t ld = n + 3;
            const auto gate = uniform(size_t(rows * ld), rng, -8, 8);
            const auto up = uniform(size_t(rows * ld), rng, -2, 2);
            std::vector<float> ref(size_t(rows * n));
            cpu::ref::swiglu(gate.data(), up.data(), rows, n, ld, ref.data());
            DeviceBuffer d_gate = upload(gate), d_up = upload(up);
            GuardedOutput out(rows, n, n);
            swiglu(d_gate.as<float>(), d_up.as<float>(), rows, n, ld, out.data(), nullptr);
            ASSERT_TRUE(out.written_exactly());
            EXPECT_LE(relative_error(out.logical(), ref), kF32Tol);
        }
    }
}

TEST(CudaKernels, AddInplaceIsExact) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(15);
    for (int64_t n : {1, 1000, 100003}) {
        const auto y = uniform(size_t(n), rng), x = uniform(size_t(n), rng);
        DeviceBuffer d_y = upload(y), d_x = upload(x);
        add_inplace(d_y.as<float>(), d_x.as<float>(), n, nullptr);
        const auto got = download<float>(d_y.data(), size_t(n));
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], y[size_t(i)] + x[size_t(i)]) << i;
    }
}

TEST(CudaKernels, KvStoreWritesOnlyItsPositions) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(16);
    struct Case { int64_t n, pos0; int32_t kv_heads, D; };
    for (const Case c : {Case{1, 0, 1, 16}, Case{7, 13, 3, 80}, Case{40, 5, 2, 64}}) {
        SCOPED_TRACE("n=" + std::to_string(c.n) + " pos0=" + std::to_string(c.pos0));
        const int64_t capacity = c.pos0 + c.n + 5;
        const auto k = uniform(size_t(c.n * c.kv_heads * c.D), rng);
        const auto v = uniform(k.size(), rng);
        DeviceBuffer d_k = upload(k), d_v = upload(v);
        // The caches are bf16: untouched positions keep a NaN pattern no rounding produces.
        constexpr uint16_t kPoison16 = 0x7fad;
        const std::vector<uint16_t> empty(size_t(c.kv_heads * capacity * c.D), kPoison16);
        DeviceBuffer k_cache = upload(empty), v_cache = upload(empty);
        RopeStore store;  // no queries, no rotation: a plain append
        store.k = d_k.as<float>();
        store.v = d_v.as<float>();
        store.kv_heads = c.kv_heads;
        store.rotate_k = false;
        store.k_cache = k_cache.as<uint16_t>();
        store.v_cache = v_cache.as<uint16_t>();
        store.capacity = capacity;
        store.rows = c.n;
        store.pos0 = c.pos0;
        store.head_dim = c.D;
        rope_and_store(store, nullptr);
        const auto kc = download<uint16_t>(k_cache.data(), empty.size());
        const auto vc = download<uint16_t>(v_cache.data(), empty.size());
        for (int32_t h = 0; h < c.kv_heads; ++h) {
            for (int64_t p = 0; p < capacity; ++p) {
                for (int32_t d = 0; d < c.D; ++d) {
                    const size_t at = size_t((h * capacity + p) * c.D + d);
                    if (p >= c.pos0 && p < c.pos0 + c.n) {
                        const size_t src = size_t(((p - c.pos0) * c.kv_heads + h) * c.D + d);
                        ASSERT_EQ(kc[at], f32_to_bf16(k[src]));
                        ASSERT_EQ(vc[at], f32_to_bf16(v[src]));
                    } else {
                        ASSERT_TRUE(kc[at] == kPoison16 && vc[at] == kPoison16) << "position " << p;
                    }
                }
            }
        }
    }
}

// Random bit patterns cover every class (normal, subnormal, zero, inf, NaN) and rounding ties.
TEST(CudaKernels, Bf16ConversionsRoundLikeTheHost) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(17);
    const int64_t n = 1 << 16;
    std::vector<uint32_t> f32_bits(static_cast<size_t>(n));
    for (auto& u : f32_bits) u = rng();
    f32_bits[0] = 0x7f800000u;  // +inf
    f32_bits[1] = 0x80000000u;  // -0
    f32_bits[2] = 0x3f808000u;  // a tie that rounds to even (down)
    f32_bits[3] = 0x3f818000u;  // a tie that rounds to even (up)
    f32_bits[4] = 0x7f7fffffu;  // max float: rounds to inf
    std::vector<uint16_t> f16_bits(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) f16_bits[size_t(i)] = uint16_t(i);  // all of them

    auto expect_same = [](const std::vector<uint16_t>& got, const std::vector<uint16_t>& want) {
        for (size_t i = 0; i < got.size(); ++i) {
            if (std::isnan(bf16_to_f32(want[i]))) {
                ASSERT_TRUE(std::isnan(bf16_to_f32(got[i]))) << i;  // NaN payloads may differ
            } else {
                ASSERT_EQ(got[i], want[i]) << i;
            }
        }
    };

    {  // activations: round_to_bf16 with a row stride
        const int64_t rows = 256, cols = 250, ldx = 256;
        DeviceBuffer d_src = upload(f32_bits);
        DeviceBuffer d_out(size_t(rows * cols) * 2);
        round_to_bf16(d_src.as<float>(), rows, cols, ldx, d_out.as<uint16_t>(), nullptr);
        std::vector<uint16_t> want(size_t(rows * cols));
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
                float f;
                std::memcpy(&f, &f32_bits[size_t(r * ldx + c)], 4);
                want[size_t(r * cols + c)] = f32_to_bf16(f);
            }
        }
        expect_same(download<uint16_t>(d_out.data(), want.size()), want);
    }
    {  // weights from f32, f16 and bf16 files
        DeviceBuffer d_f32 = upload(f32_bits), d_f16 = upload(f16_bits), d_out(size_t(n) * 2);
        std::vector<uint16_t> want(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            float f;
            std::memcpy(&f, &f32_bits[size_t(i)], 4);
            want[size_t(i)] = f32_to_bf16(f);
        }
        convert_to_bf16(d_f32.data(), DType::F32, n, d_out.as<uint16_t>(), nullptr);
        expect_same(download<uint16_t>(d_out.data(), size_t(n)), want);

        for (int64_t i = 0; i < n; ++i) want[size_t(i)] = f32_to_bf16(f16_to_f32(f16_bits[size_t(i)]));
        convert_to_bf16(d_f16.data(), DType::F16, n, d_out.as<uint16_t>(), nullptr);
        expect_same(download<uint16_t>(d_out.data(), size_t(n)), want);

        convert_to_bf16(d_f16.data(), DType::BF16, n, d_out.as<uint16_t>(), nullptr);
        EXPECT_EQ(download<uint16_t>(d_out.data(), size_t(n)), f16_bits);  // bf16: a plain copy
    }
}

struct MatmulCase {
    int64_t M, K, N;
    bool bias, padded;
};

TEST(CudaKernels, MatmulMatchesReferenceOnBf16Operands) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(18);
    Matmul gemm(nullptr);
    for (const MatmulCase c : {MatmulCase{1, 16, 1, false, false}, MatmulCase{1, 1000, 130, true, false},
                               MatmulCase{3, 64, 64, true, true}, MatmulCase{37, 100, 257, false, true},
                               MatmulCase{130, 1000, 130, true, false}, MatmulCase{512, 256, 96, true, true},
                               MatmulCase{2, 4099, 33, false, true}}) {
        SCOPED_TRACE("M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " N=" +
                     std::to_string(c.N) + (c.bias ? " +bias" : "") + (c.padded ? " padded" : ""));
        const int64_t ldx = c.K + (c.padded ? 3 : 0), ldy = c.N + (c.padded ? 5 : 0);
        std::vector<float> x(size_t(c.M * ldx), poison());  // row gaps stay NaN: never read
        for (int64_t r = 0; r < c.M; ++r)
            for (int64_t k = 0; k < c.K; ++k) x[size_t(r * ldx + k)] = uniform(1, rng)[0];
        const auto w = to_bf16(uniform(size_t(c.N * c.K), rng));
        const auto b = to_bf16(uniform(size_t(c.N), rng));
        const MatrixView host_w{w.data(), DType::BF16, c.N, c.K};
        const VectorView host_b = c.bias ? VectorView{b.data(), DType::BF16, c.N} : VectorView{};
        std::vector<float> ref(size_t(c.M * c.N));
        cpu::ref::matmul(x.data(), c.M, ldx, host_w, host_b, ref.data(), c.N,
                         /*round_x_to_bf16=*/true);

        DeviceBuffer d_x = upload(x), d_w = upload(w), d_b = upload(b);
        const VectorView dev_b = c.bias ? VectorView{d_b.data(), DType::BF16, c.N} : VectorView{};
        for (const bool gemv : {true, false}) {  // the decode kernel (where it applies), cuBLAS
            SCOPED_TRACE(gemv ? "gemv allowed" : "cuBLAS");
            gemm.set_gemv_enabled(gemv);
            GuardedOutput y(c.M, c.N, ldy);
            gemm.matmul(d_x.as<float>(), c.M, ldx, MatrixView{d_w.data(), DType::BF16, c.N, c.K},
                        dev_b, y.data(), ldy);
            ASSERT_TRUE(y.written_exactly());
            EXPECT_LE(relative_error(y.logical(), ref), kMatmulTol);
        }
    }
}

// The decode GEMV on its own: 1..4 input rows, one to three outputs of ragged widths sharing the
// input (as q, k, v do), biases on some, padded output rows, against the bf16-operand reference.
TEST(CudaKernels, GemvMatchesReferenceForEveryOutput) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(31);
    struct Out { int64_t N; bool bias; int64_t pad; };
    struct Case { int64_t M, K; std::vector<Out> outs; };
    const Case cases[] = {
        {1, 8, {{1, false, 0}}},
        {1, 64, {{33, true, 3}, {7, false, 0}, {7, true, 1}}},
        {2, 1000, {{300, false, 0}, {5, true, 2}}},
        {3, 2056, {{129, true, 0}}},
        {4, 4096, {{64, false, 5}, {17, true, 0}, {1, false, 0}}},
        {1, 8192, {{257, false, 0}}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE("M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " outputs=" +
                     std::to_string(c.outs.size()));
        const int64_t ldx = c.K + 4;  // a row stride that keeps 16-byte alignment
        std::vector<float> x(size_t(c.M * ldx), poison());
        for (int64_t r = 0; r < c.M; ++r)
            for (int64_t k = 0; k < c.K; ++k) x[size_t(r * ldx + k)] = uniform(1, rng, -3, 3)[0];
        DeviceBuffer d_x = upload(x);
        ASSERT_TRUE(gemv_supports(d_x.as<float>(), c.M, ldx, c.K));
        std::vector<std::vector<uint16_t>> w, b;
        std::vector<DeviceBuffer> d_w, d_b;
        std::vector<std::unique_ptr<GuardedOutput>> y;
        std::vector<Projection> outputs;
        for (const Out& o : c.outs) {
            w.push_back(to_bf16(uniform(size_t(o.N * c.K), rng)));
            b.push_back(to_bf16(uniform(size_t(o.N), rng)));
            d_w.push_back(upload(w.back()));
            d_b.push_back(upload(b.back()));
            y.push_back(std::make_unique<GuardedOutput>(c.M, o.N, o.N + o.pad));
        }
        for (size_t i = 0; i < c.outs.size(); ++i) {
            const Out& o = c.outs[i];
            outputs.push_back(Projection{
                MatrixView{d_w[i].data(), DType::BF16, o.N, c.K},
                o.bias ? VectorView{d_b[i].data(), DType::BF16, o.N} : VectorView{},
                y[i]->data(), o.N + o.pad});
        }
        gemv(LayerInput{d_x.as<float>(), c.M, ldx, {}, 0.0f, nullptr}, outputs.data(),
             int(outputs.size()), /*accumulate=*/false, nullptr);
        for (size_t i = 0; i < c.outs.size(); ++i) {
            const Out& o = c.outs[i];
            std::vector<float> ref(size_t(c.M * o.N));
            cpu::ref::matmul(x.data(), c.M, ldx, MatrixView{w[i].data(), DType::BF16, o.N, c.K},
                             o.bias ? VectorView{b[i].data(), DType::BF16, o.N} : VectorView{},
                             ref.data(), o.N, /*round_x_to_bf16=*/true);
            ASSERT_TRUE(y[i]->written_exactly()) << "output " << i;
            EXPECT_LE(relative_error(y[i]->logical(), ref), kMatmulTol) << "output " << i;
        }
    }
}

// SwiGLU in the GEMV's epilogue against silu(gate) * up of the reference products. The products
// carry the matmul tolerance; silu and the product with up scale it by at most a small factor
// (|silu'| <= 1.1 and |up| is O(rms)), hence twice the matmul tolerance.
TEST(CudaKernels, GatedGemvMatchesSwigluOfTheProducts) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(32);
    for (const int64_t M : {1, 2, 4}) {
        for (const int64_t K : {16, 2048}) {
            for (const int64_t N : {1, 45, 700}) {
                SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" +
                             std::to_string(N));
                const auto x = uniform(size_t(M * K), rng, -2, 2);
                const auto wg = to_bf16(uniform(size_t(N * K), rng));
                const auto wu = to_bf16(uniform(size_t(N * K), rng));
                const auto bg = to_bf16(uniform(size_t(N), rng));
                std::vector<float> gate(size_t(M * N)), up(size_t(M * N)), ref(size_t(M * N));
                cpu::ref::matmul(x.data(), M, K, MatrixView{wg.data(), DType::BF16, N, K},
                                 VectorView{bg.data(), DType::BF16, N}, gate.data(), N, true);
                cpu::ref::matmul(x.data(), M, K, MatrixView{wu.data(), DType::BF16, N, K},
                                 VectorView{}, up.data(), N, true);
                cpu::ref::swiglu(gate.data(), up.data(), M, N, N, ref.data());
                DeviceBuffer d_x = upload(x), d_wg = upload(wg), d_wu = upload(wu),
                             d_bg = upload(bg);
                GuardedOutput out(M, N, N);
                gemv_gated(LayerInput{d_x.as<float>(), M, K, {}, 0.0f, nullptr},
                           MatrixView{d_wg.data(), DType::BF16, N, K},
                           VectorView{d_bg.data(), DType::BF16, N},
                           MatrixView{d_wu.data(), DType::BF16, N, K}, VectorView{}, out.data(),
                           N, nullptr);
                ASSERT_TRUE(out.written_exactly());
                EXPECT_LE(relative_error(out.logical(), ref), 2 * kMatmulTol);
            }
        }
    }
}

// The layer input's norm and the residual add folded into the products, on both paths (the decode
// GEMV where it applies, cuBLAS after the rmsnorm kernel), against rmsnorm then the bf16-operand
// reference product; and y += x W^T added exactly into y.
TEST(CudaKernels, NormedAndAccumulatingProductsMatchTheReference) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(34);
    Matmul gemm(nullptr);
    for (const int64_t M : {1, 3, 6}) {
        for (const int64_t K : {64, 2048}) {
            for (const int64_t N : {33, 300}) {
                const auto x = uniform(size_t(M * K), rng, -3, 3);
                const auto norm = to_bf16(uniform(size_t(K), rng, 0.5f, 1.5f));
                const auto w = to_bf16(uniform(size_t(N * K), rng));
                const auto y0 = uniform(size_t(M * N), rng, -5, 5);
                const float eps = 1e-5f;
                std::vector<float> h(x.size()), ref(size_t(M * N));
                cpu::ref::rmsnorm(x.data(), VectorView{norm.data(), DType::BF16, K}, eps, M, K,
                                  h.data());
                cpu::ref::matmul(h.data(), M, K, MatrixView{w.data(), DType::BF16, N, K},
                                 VectorView{}, ref.data(), N, /*round_x_to_bf16=*/true);
                std::vector<float> plain(size_t(M * N));
                cpu::ref::matmul(x.data(), M, K, MatrixView{w.data(), DType::BF16, N, K},
                                 VectorView{}, plain.data(), N, true);
                DeviceBuffer d_x = upload(x), d_norm = upload(norm), d_w = upload(w),
                             d_scratch(size_t(M * K) * sizeof(float));
                const MatrixView W{d_w.data(), DType::BF16, N, K};
                for (const bool gemv : {true, false}) {
                    SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" +
                                 std::to_string(N) + (gemv ? " gemv allowed" : " cuBLAS"));
                    gemm.set_gemv_enabled(gemv);
                    GuardedOutput y(M, N, N);
                    const Projection out{W, VectorView{}, y.data(), N};
                    gemm.matmul_many(LayerInput{d_x.as<float>(), M, K,
                                                VectorView{d_norm.data(), DType::BF16, K}, eps,
                                                d_scratch.as<float>()},
                                     &out, 1);
                    ASSERT_TRUE(y.written_exactly());
                    EXPECT_LE(relative_error(y.logical(), ref), kMatmulTol);
                    DeviceBuffer acc = upload(y0);
                    gemm.matmul_accumulate(d_x.as<float>(), M, K, W, VectorView{},
                                           acc.as<float>());
                    const auto got = download<float>(acc.data(), y0.size());
                    std::vector<float> want(y0.size());
                    for (size_t i = 0; i < want.size(); ++i) want[i] = y0[i] + plain[i];
                    EXPECT_LE(relative_error(got, want), kMatmulTol);
                }
            }
        }
    }
}

// The decode step's attention inputs in one GEMV launch (projections, RoPE, cache append) against
// the plain GEMV followed by rope_and_store. The two launches may cut K into different slices, so
// the products agree to f32 summation order (kMatmulTol) and the cached bf16 values to one bf16
// rounding step; positions the step does not write keep their poison.
TEST(CudaKernels, QkvRopeGemvEqualsProductsThenRopeAndAppend) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(35);
    for (const int64_t M : {1, 3}) {
        for (const int32_t D : {16, 64}) {
            for (const bool on_device : {false, true}) {
                SCOPED_TRACE("M=" + std::to_string(M) + " D=" + std::to_string(D) +
                             (on_device ? " position in device memory" : ""));
                const int32_t heads = 4, kv_heads = 2;
                const int64_t K = 256, pos0 = 37, capacity = pos0 + M + 5;
                const int64_t qd = heads * D, kvd = kv_heads * D;
                const auto x = uniform(size_t(M * K), rng, -2, 2);
                const auto wq = to_bf16(uniform(size_t(qd * K), rng));
                const auto wk = to_bf16(uniform(size_t(kvd * K), rng));
                const auto wv = to_bf16(uniform(size_t(kvd * K), rng));
                const auto bq = to_bf16(uniform(size_t(qd), rng));
                std::vector<float> inv_freq(size_t(D / 2));
                for (size_t i = 0; i < inv_freq.size(); ++i)
                    inv_freq[i] = float(1.0 / std::pow(10000.0, 2.0 * double(i) / double(D)));
                const std::vector<uint16_t> empty(size_t(kv_heads * capacity * D), 0x7fad);
                DeviceBuffer d_x = upload(x), d_wq = upload(wq), d_wk = upload(wk),
                             d_wv = upload(wv), d_bq = upload(bq), d_freq = upload(inv_freq),
                             d_pos = upload(std::vector<int64_t>{pos0});
                DeviceBuffer q1(size_t(M * qd) * 4), k1(size_t(M * kvd) * 4),
                    v1(size_t(M * kvd) * 4), q2(size_t(M * qd) * 4);
                DeviceBuffer kc1 = upload(empty), vc1 = upload(empty), kc2 = upload(empty),
                             vc2 = upload(empty);
                const LayerInput in{d_x.as<float>(), M, K, {}, 0.0f, nullptr};
                const MatrixView Wq{d_wq.data(), DType::BF16, qd, K},
                    Wk{d_wk.data(), DType::BF16, kvd, K}, Wv{d_wv.data(), DType::BF16, kvd, K};
                const VectorView Bq{d_bq.data(), DType::BF16, qd};
                // separate: the products, then rope_and_store
                const Projection sep[3] = {{Wq, Bq, q1.as<float>(), qd},
                                           {Wk, {}, k1.as<float>(), kvd},
                                           {Wv, {}, v1.as<float>(), kvd}};
                gemv(in, sep, 3, false, nullptr);
                RopeStore a = queries(q1.as<float>(), M, heads, D, pos0, d_freq.as<float>());
                a.k = k1.as<float>();
                a.v = v1.as<float>();
                a.kv_heads = kv_heads;
                a.k_cache = kc1.as<uint16_t>();
                a.v_cache = vc1.as<uint16_t>();
                a.capacity = capacity;
                rope_and_store(a, nullptr);
                // fused
                const Projection fused[3] = {{Wq, Bq, q2.as<float>(), qd},
                                             {Wk, {}, k1.as<float>(), kvd},
                                             {Wv, {}, v1.as<float>(), kvd}};
                const QkvRope rope =
                    qkv_rope_at(on_device, pos0, d_pos, d_freq, kc2, vc2, capacity, D);
                gemv_qkv_rope(in, fused, rope, nullptr);
                EXPECT_LE(relative_error(download<float>(q2.data(), size_t(M * qd)),
                                         download<float>(q1.data(), size_t(M * qd))),
                          kMatmulTol);
                for (const auto& [got_buf, want_buf] : {std::pair{&kc2, &kc1}, {&vc2, &vc1}}) {
                    const auto got = download<uint16_t>(got_buf->data(), empty.size());
                    const auto want = download<uint16_t>(want_buf->data(), empty.size());
                    for (size_t e = 0; e < got.size(); ++e) {
                        if (want[e] == 0x7fad) {
                            ASSERT_EQ(got[e], 0x7fad) << "element " << e << " written";
                            continue;
                        }
                        const float g = bf16_to_f32(got[e]), w = bf16_to_f32(want[e]);
                        ASSERT_LE(std::fabs(g - w), std::ldexp(std::fabs(w), -7) + 1e-6f)
                            << "element " << e;
                    }
                }
            }
        }
    }
}

// RoPE on q and k with the cache append in one launch against the separate launches, bit for bit
// - also with the position read from device memory (a recorded graph's way) while the host-side
// position says something else.
TEST(CudaKernels, FusedRopeStoreEqualsTheSeparateLaunches) {
    TDM_SKIP_WITHOUT_GPU();
    std::mt19937 rng(33);
    struct Case { int64_t rows, pos0; int32_t heads, kv_heads, D; };
    for (const Case c : {Case{1, 0, 4, 2, 16}, Case{1, 777, 32, 8, 128}, Case{5, 40, 6, 3, 64}}) {
        SCOPED_TRACE("rows=" + std::to_string(c.rows) + " pos0=" + std::to_string(c.pos0));
        const int64_t capacity = c.pos0 + c.rows + 3;
        const auto q = uniform(size_t(c.rows * c.heads * c.D), rng, -2, 2);
        const auto k = uniform(size_t(c.rows * c.kv_heads * c.D), rng, -2, 2);
        const auto v = uniform(k.size(), rng);
        std::vector<float> inv_freq(size_t(c.D / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = float(1.0 / std::pow(500000.0, 2.0 * double(i) / double(c.D)));
        const std::vector<uint16_t> empty(size_t(c.kv_heads * capacity * c.D), 0x7fad);
        const std::vector<int64_t> position{c.pos0};
        DeviceBuffer d_freq = upload(inv_freq), d_pos = upload(position), d_v = upload(v);
        // separate: rotate q, rotate k (as queries), append without rotation
        DeviceBuffer q1 = upload(q), k1 = upload(k), kc1 = upload(empty), vc1 = upload(empty);
        rope_and_store(queries(q1.as<float>(), c.rows, c.heads, c.D, c.pos0, d_freq.as<float>()),
                       nullptr);
        rope_and_store(queries(k1.as<float>(), c.rows, c.kv_heads, c.D, c.pos0,
                               d_freq.as<float>()), nullptr);
        RopeStore append;
        append.k = k1.as<float>();
        append.v = d_v.as<float>();
        append.kv_heads = c.kv_heads;
        append.rotate_k = false;
        append.k_cache = kc1.as<uint16_t>();
        append.v_cache = vc1.as<uint16_t>();
        append.capacity = capacity;
        append.rows = c.rows;
        append.pos0 = c.pos0;
        append.head_dim = c.D;
        rope_and_store(append, nullptr);
        for (const bool on_device : {false, true}) {
            SCOPED_TRACE(on_device ? "position in device memory" : "position as an argument");
            DeviceBuffer q2 = upload(q), k2 = upload(k), kc2 = upload(empty), vc2 = upload(empty);
            RopeStore fused = queries(q2.as<float>(), c.rows, c.heads, c.D, c.pos0,
                                      d_freq.as<float>());
            fused.k = k2.as<float>();
            fused.v = d_v.as<float>();
            fused.kv_heads = c.kv_heads;
            fused.k_cache = kc2.as<uint16_t>();
            fused.v_cache = vc2.as<uint16_t>();
            fused.capacity = capacity;
            if (on_device) {
                fused.pos0 = 0;  // only checked on the host; the kernel reads *pos_dev
                fused.pos_dev = d_pos.as<int64_t>();
            }
            rope_and_store(fused, nullptr);
            EXPECT_EQ(download<float>(q2.data(), q.size()), download<float>(q1.data(), q.size()));
            EXPECT_EQ(download<uint16_t>(kc2.data(), empty.size()),
                      download<uint16_t>(kc1.data(), empty.size()));
            EXPECT_EQ(download<uint16_t>(vc2.data(), empty.size()),
                      download<uint16_t>(vc1.data(), empty.size()));
        }
    }
}

TEST(CudaKernels, HostViewsAndBadShapesAreRefused) {
    TDM_SKIP_WITHOUT_GPU();
    Matmul gemm(nullptr);
    std::vector<float> host(16, 1.0f);
    const MatrixView f32_weights{host.data(), DType::F32, 4, 4};
    try {
        gemm.matmul(nullptr, 1, 4, f32_weights, VectorView{}, nullptr, 4);
        FAIL() << "expected an error for f32 weights";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_INTERNAL);
        EXPECT_NE(std::string(e.what()).find("bfloat16"), std::string::npos) << e.what();
    }
    std::vector<float> freq(4, 1.0f);
    DeviceBuffer d_q = upload(std::vector<float>(7, 1.0f)), d_freq = upload(freq);
    EXPECT_THROW(rope_and_store(queries(d_q.as<float>(), 1, 1, 7, 0, d_freq.as<float>()), nullptr),
                 Error);  // odd head_dim
}

TEST(CudaKernels, CudaFailuresBecomeErrorsWithTheCallAndCudaMessage) {
    TDM_SKIP_WITHOUT_GPU();
    try {
        DeviceBuffer too_big(size_t(1) << 52);  // 4 PiB
        FAIL() << "a 4 PiB allocation succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_OUT_OF_MEMORY);
        EXPECT_NE(std::string(e.what()).find("cudaMalloc"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("cudaErrorMemoryAllocation"), std::string::npos)
            << e.what();
    }
    try {
        TDM_CUDA_CHECK(cudaMemcpy(nullptr, nullptr, 16, cudaMemcpyDeviceToDevice));
        FAIL() << "a copy between null pointers succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TDM_ERR_DEVICE);
        EXPECT_NE(std::string(e.what()).find("cudaMemcpy(nullptr"), std::string::npos) << e.what();
    }
    // Neither failure is sticky: the device still works.
    std::vector<float> one = {1.0f};
    DeviceBuffer b = upload(one);
    EXPECT_EQ(download<float>(b.data(), 1)[0], 1.0f);
}

}  // namespace
}  // namespace tdm::cuda

#endif  // TANDEM_HAVE_CUDA
