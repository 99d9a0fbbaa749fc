#include "attention/cuda_kv_tensor_map.h"

#include <cuda_runtime_api.h>

#include <mutex>
#include <string>

#include "core/error.h"
#include "kernels/cuda/check.h"

namespace tdm::cuda {
namespace {

// cuTensorMapEncodeTiled lives in the driver library; asking the runtime for the entry point
// keeps libtandem from linking libcuda itself.
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                 const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                 const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                 CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encode_tiled() {
    static EncodeTiled fn = nullptr;
    static std::once_flag once;
    std::call_once(once, [] {
        void* entry = nullptr;
        cudaDriverEntryPointQueryResult found{};
        TDM_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &entry, 12000,
                                                        cudaEnableDefault, &found));
        if (found == cudaDriverEntryPointSuccess) fn = reinterpret_cast<EncodeTiled>(entry);
    });
    TDM_REQUIRE(fn != nullptr, TDM_ERR_DEVICE,
                "the CUDA driver does not provide cuTensorMapEncodeTiled (driver 12.0 or newer "
                "needed)");
    return fn;
}

}  // namespace

bool kv_tensor_map_supports(const uint16_t* cache, int64_t capacity, int head_dim) {
    return cache != nullptr && reinterpret_cast<uintptr_t>(cache) % 16 == 0 && head_dim > 0 &&
           head_dim % kKvMapBoxColumns == 0 && capacity > 0 &&
           (capacity * head_dim * int64_t(sizeof(uint16_t))) % 16 == 0;
}

CUtensorMap make_kv_tensor_map(const uint16_t* cache, int kv_heads, int64_t capacity,
                               int head_dim, int64_t valid_keys) {
    TDM_REQUIRE(kv_tensor_map_supports(cache, capacity, head_dim), TDM_ERR_UNSUPPORTED,
                "make_kv_tensor_map: the cache cannot be mapped for TMA (base not 16-byte "
                "aligned, head_dim " + std::to_string(head_dim) +
                    " not a multiple of 64, or capacity " + std::to_string(capacity) + ")");
    TDM_REQUIRE(kv_heads > 0 && valid_keys > 0 && valid_keys <= capacity,
                TDM_ERR_INVALID_ARGUMENT,
                "make_kv_tensor_map: " + std::to_string(valid_keys) + " valid keys of " +
                    std::to_string(capacity) + ", " + std::to_string(kv_heads) + " KV heads");
    const cuuint64_t dims[3] = {cuuint64_t(head_dim), cuuint64_t(valid_keys),
                                cuuint64_t(kv_heads)};
    const cuuint64_t strides[2] = {cuuint64_t(head_dim) * sizeof(uint16_t),
                                   cuuint64_t(capacity) * head_dim * sizeof(uint16_t)};
    const cuuint32_t box[3] = {kKvMapBoxColumns, kKvMapBoxKeys, 1};
    const cuuint32_t element_strides[3] = {1, 1, 1};
    CUtensorMap map{};
    const CUresult r = encode_tiled()(
        &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<uint16_t*>(cache), dims, strides,
        box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    TDM_REQUIRE(r == CUDA_SUCCESS, TDM_ERR_DEVICE,
                "cuTensorMapEncodeTiled failed (CUresult " + std::to_string(int(r)) + ")");
    return map;
}

}  // namespace tdm::cuda
