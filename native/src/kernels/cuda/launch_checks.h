// Host-side argument checks shared by the CUDA launchers: one clear line naming the kernel and
// the value at fault, thrown before anything is enqueued.
#pragma once

#include <climits>
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace tdm::cuda {

// Device weights are bf16 by construction (the model converts them at load); anything else here
// means a host view reached a device kernel.
inline void require_bf16(DType dtype, const char* kernel, const char* what) {
    TDM_REQUIRE(dtype == DType::BF16, TDM_ERR_INTERNAL,
                std::string(kernel) + ": " + what + " is " + dtype_name(dtype) +
                    ", but device weights must be bfloat16");
}

inline void require_non_negative(int64_t v, const char* kernel, const char* what) {
    TDM_REQUIRE(v >= 0, TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": " + what + " = " + std::to_string(v) + " is negative");
}

// Positions and per-head extents are indexed with 32-bit ints inside the kernels.
inline void require_int32(int64_t v, const char* kernel, const char* what) {
    TDM_REQUIRE(v >= 0 && v <= INT_MAX, TDM_ERR_INVALID_ARGUMENT,
                std::string(kernel) + ": " + what + " = " + std::to_string(v) +
                    " is outside [0, 2^31)");
}

}  // namespace tdm::cuda
