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

CUtensorMap encode(const void* base, CUtensorMapDataType type, cuuint32_t rank,
                   const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box) {
    const cuuint32_t element_strides[5] = {1, 1, 1, 1, 1};
    CUtensorMap map{};
    const CUresult r = encode_tiled()(
        &map, type, rank, const_cast<void*>(base), dims, strides,
        box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    TDM_REQUIRE(r == CUDA_SUCCESS, TDM_ERR_DEVICE,
                "cuTensorMapEncodeTiled failed (CUresult " + std::to_string(int(r)) + ")");
    return map;
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
    return encode(cache, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, dims, strides, box);
}

CUtensorMap make_strided_tensor_map(const uint16_t* base, int outer, int64_t outer_stride,
                                    int64_t groups, int stride, int head_dim, int box_groups) {
    TDM_REQUIRE(base != nullptr && reinterpret_cast<uintptr_t>(base) % 16 == 0 &&
                    head_dim % kKvMapBoxColumns == 0 && outer > 0 && groups > 0 && stride > 0 &&
                    (outer_stride * int64_t(sizeof(uint16_t))) % 16 == 0 && box_groups > 0 &&
                    box_groups <= 256,
                TDM_ERR_UNSUPPORTED,
                "make_strided_tensor_map: cannot map " + std::to_string(groups) + " groups of " +
                    std::to_string(stride) + " rows of " + std::to_string(head_dim));
    const cuuint64_t dims[4] = {cuuint64_t(head_dim), cuuint64_t(stride), cuuint64_t(groups),
                                cuuint64_t(outer)};
    const cuuint64_t strides[3] = {cuuint64_t(head_dim) * sizeof(uint16_t),
                                   cuuint64_t(stride) * head_dim * sizeof(uint16_t),
                                   cuuint64_t(outer_stride) * sizeof(uint16_t)};
    const cuuint32_t box[4] = {kKvMapBoxColumns, 1, cuuint32_t(box_groups), 1};
    return encode(base, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, dims, strides, box);
}

CUtensorMap make_strided_tensor_map_fp8(const uint8_t* base, int outer, int64_t outer_stride,
                                        int64_t planes_rows, int64_t groups, int stride,
                                        int head_dim, int box_groups) {
    TDM_REQUIRE(base != nullptr && reinterpret_cast<uintptr_t>(base) % 16 == 0 &&
                    head_dim % 128 == 0 && outer > 0 && groups > 0 && groups <= planes_rows &&
                    stride > 0 && outer_stride % 16 == 0 &&
                    outer_stride >= int64_t(stride) * planes_rows * head_dim && box_groups > 0 &&
                    box_groups <= 256,
                TDM_ERR_UNSUPPORTED,
                "make_strided_tensor_map_fp8: cannot map " + std::to_string(groups) +
                    " groups of " + std::to_string(stride) + " rows of " +
                    std::to_string(head_dim));
    const cuuint64_t dims[4] = {cuuint64_t(head_dim), cuuint64_t(groups), cuuint64_t(stride),
                                cuuint64_t(outer)};
    const cuuint64_t strides[3] = {cuuint64_t(head_dim), cuuint64_t(planes_rows) * head_dim,
                                   cuuint64_t(outer_stride)};
    const cuuint32_t box[4] = {128, cuuint32_t(box_groups), 1, 1};
    return encode(base, CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, dims, strides, box);
}

}  // namespace tdm::cuda
