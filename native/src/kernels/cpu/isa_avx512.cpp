// The AVX-512 level (F, BW, VL; 16 floats a register): the kernel templates instantiated with
// VecAvx512. Compiled with a target pragma rather than -mavx512f so that the library as a whole
// stays baseline x86-64; only dispatch.cpp decides to call in here.
//
// Every header with code that could be shared with other translation units (the standard
// library, core/) is included before the pragma; the headers after it define their code in an
// anonymous namespace, so none of it can be picked by the linker for a caller elsewhere. (The
// ISA code also has no lambdas: GCC 12 does not fully treat them as under the pragma's target,
// and warns that their vector returns change the ABI.)
//
// GCC 12's AVX-512 headers build "undefined" vectors by self-initialisation, which its own
// uninitialised-use warnings then flag at every use; silence them for the header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "kernels/cpu/kernel_table.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")

#include "kernels/cpu/attention_simd.h"
#include "kernels/cpu/elementwise_simd.h"
#include "kernels/cpu/estimate_simd.h"
#include "kernels/cpu/gemm_simd.h"
#include "kernels/cpu/gemv_simd.h"
#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/simd_avx512.h"

namespace tdm::cpu {
namespace {
using V = VecAvx512;
using E = Elementwise<V>;
using A = DenseAttention<V>;
// Two of the estimators' dot products a register: lanes 0-7 and 8-15 are the eight sums of a
// row of a against two rows of b (a's 8 floats in both halves), so each instruction advances two
// pairs; a last odd column takes one ymm (estimate_simd.h).
struct Avx512Pairs {
    static constexpr int P = 2;
    using T = __m512;
    static T zero() { return _mm512_setzero_ps(); }
    static T load_a(const float* a) {
        return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(a))));
    }
    static T load_b(const float* b, int64_t ldb) {
        const __m512d lo = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(b)));
        return _mm512_castpd_ps(
            _mm512_insertf64x4(lo, _mm256_castps_pd(_mm256_loadu_ps(b + ldb)), 1));
    }
    static T add(T x, T y) { return _mm512_add_ps(x, y); }
    static T mul(T x, T y) { return _mm512_mul_ps(x, y); }
    static void sums(T v, float (&t)[P][8]) {
        _mm256_storeu_ps(t[0], _mm512_castps512_ps256(v));
        _mm256_storeu_ps(t[1], _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    }
};
using D = EstimateDots<Avx512Pairs, EightLanes<VecAvx2>>;
using G = GemmDriver<F32Gemm<V, 14>>;  // 14 x 32 tile: 28 accumulators + 2 of b
}  // namespace
}  // namespace tdm::cpu

#pragma GCC pop_options

namespace tdm::cpu {

const KernelTable& avx512_kernels() {
    static constexpr KernelTable table = {
        IsaLevel::Avx512,
        "avx512f avx512bw avx512vl avx2 fma f16c",
        {Gemv<V, DType::F32>::kernel(), Gemv<V, DType::F16>::kernel(),
         Gemv<V, DType::BF16>::kernel()},
        {G::kernel(), G::kernel(), G::kernel()},
        &E::rmsnorm,
        &E::rope_row,
        &E::swiglu,
        &E::add,
        &A::run,
        &A::scratch_bytes,
        A::kRows,
        &D::run,
    };
    return table;
}

}  // namespace tdm::cpu
