// TMA tensor maps over the bf16 KV cache, for the warp-specialised attention kernels
// (cuda_flash_wgmma.cuh): one map per cache (K or V) describing it as the 3-D tensor
// [kv_heads][valid keys][head_dim], boxes of 128 keys x 64 columns with the 128-byte swizzle.
// Keys at or past `valid_keys` read as zeros, so a tile that runs past the written prefix of the
// cache never brings uninitialised memory (possibly NaN) into a product.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace tdm::cuda {

constexpr int kKvMapBoxKeys = 128;
constexpr int kKvMapBoxColumns = 64;

// Throws (TDM_ERR_DEVICE, with the driver's message) when the driver cannot encode the map,
// TDM_ERR_UNSUPPORTED when the layout cannot be described (unaligned base, head_dim not a multiple
// of 64). capacity is the cache's rows per KV head, valid_keys <= capacity.
CUtensorMap make_kv_tensor_map(const uint16_t* cache, int kv_heads, int64_t capacity,
                               int head_dim, int64_t valid_keys);

// Whether the layout can be mapped (the checks make_kv_tensor_map would throw on).
bool kv_tensor_map_supports(const uint16_t* cache, int64_t capacity, int head_dim);

// XAttention's strided operands (cuda_xattention.cu): bf16 rows of head_dim, taken in groups of
// `stride` consecutive rows, as the 4-D tensor [outer][groups][stride][head_dim] with
// `outer_stride` elements between outer indices (a head's rows). A box is `box_groups` groups x
// one offset inside the group x 64 columns, 128-byte swizzled: the rows g * stride + t of
// box_groups consecutive groups. Groups at or past `groups` read as zeros.
CUtensorMap make_strided_tensor_map(const uint16_t* base, int outer, int64_t outer_stride,
                                    int64_t groups, int stride, int head_dim, int box_groups);

// XAttention's fp8 operands (cuda_fp8_stage.cu stages them offset-major, [outer][stride]
// [planes_rows][head_dim] bytes: row g * stride + t of a head at plane t, row g), so a box of
// box_groups groups at one offset is one contiguous run of 128-byte rows. Coordinates
// (column, group, offset, outer); groups at or past `groups` (<= planes_rows) read as zeros.
CUtensorMap make_strided_tensor_map_fp8(const uint8_t* base, int outer, int64_t outer_stride,
                                        int64_t planes_rows, int64_t groups, int stride,
                                        int head_dim, int box_groups);

}  // namespace tdm::cuda
