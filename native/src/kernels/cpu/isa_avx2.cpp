// The AVX2 level (AVX2 + FMA + F16C, 8 floats a register): the kernel templates instantiated
// with VecAvx2. Compiled with a target pragma rather than -mavx2 so that the library as a whole
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
#pragma GCC target("avx2,fma,f16c")

#include "kernels/cpu/attention_simd.h"
#include "kernels/cpu/elementwise_simd.h"
#include "kernels/cpu/estimate_simd.h"
#include "kernels/cpu/gemm_simd.h"
#include "kernels/cpu/gemv_simd.h"
#include "kernels/cpu/simd_avx2.h"

namespace tdm::cpu {
namespace {
using V = VecAvx2;
using E = Elementwise<V>;
using A = DenseAttention<V>;
using D = EstimateDots<EightLanes<VecAvx2>>;
using G = GemmDriver<F32Gemm<V, 6>>;  // 6 x 16 tile: 12 accumulators + 2 of b + 1 broadcast
}  // namespace
}  // namespace tdm::cpu

#pragma GCC pop_options

namespace tdm::cpu {

const KernelTable& avx2_kernels() {
    static constexpr KernelTable table = {
        IsaLevel::Avx2,
        "avx2 fma f16c",
        {Gemv<V, DType::F32, 8>::kernel(), Gemv<V, DType::F16, 8>::kernel(),
         Gemv<V, DType::BF16, 8>::kernel()},
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
