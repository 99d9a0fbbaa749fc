// Version and build information.
#include "capi/guard.h"
#include "kernels/cpu/kernels.h"

#if defined(TANDEM_HAVE_CUDA)
#include "kernels/cuda/device.h"
#endif

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "0.0.0"
#endif

namespace {
const char* compiler_name() {
#if defined(__clang__)
    return "Clang " __clang_version__;
#elif defined(__GNUC__)
    return "GNU " __VERSION__;
#elif defined(_MSC_VER)
    return "MSVC";
#else
    return "unknown";
#endif
}
}  // namespace

extern "C" {

TDM_API uint32_t tdm_abi_version(void) { return TDM_ABI_VERSION; }

TDM_API tdm_status tdm_get_build_info(tdm_build_info* out) {
    return tdm::capi::guarded([&] {
        tdm::capi::require_not_null(out, "out");
        tdm_build_info info{};
        info.struct_size = sizeof(tdm_build_info);
        info.abi_version = TDM_ABI_VERSION;
        info.version = TANDEM_VERSION;
        info.compiler = compiler_name();
        info.cpu_features = tdm::cpu::cpu_features();
        info.has_cpu = 1;
#if defined(TANDEM_HAVE_CUDA)
        info.has_cuda = 1;
        info.cuda_device_found = tdm::cuda::supported_device_present() ? 1 : 0;
#else
        info.has_cuda = 0;
        info.cuda_device_found = 0;
#endif
        tdm::capi::write_output(out, info);
    });
}

}  // extern "C"
