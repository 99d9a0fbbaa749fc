// The portable level: the kernel templates instantiated with plain C++ "vectors" (8 floats), for
// CPUs without AVX2 and as the baseline the faster levels are tested against.
#include "kernels/cpu/attention_simd.h"
#include "kernels/cpu/elementwise_simd.h"
#include "kernels/cpu/estimate_simd.h"
#include "kernels/cpu/gemm_simd.h"
#include "kernels/cpu/gemv_simd.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_portable.h"

namespace tdm::cpu {
namespace {
using V = VecPortable;
using E = Elementwise<V>;
using A = DenseAttention<V>;
using D = EstimateDots<EightLanes<VecPortable>>;
using G = GemmDriver<F32Gemm<V, 4>>;
}  // namespace

const KernelTable& portable_kernels() {
    static constexpr KernelTable table = {
        IsaLevel::Portable,
        "portable",
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
