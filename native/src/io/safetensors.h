// Reader for the safetensors format (https://github.com/huggingface/safetensors):
//
//   [8 bytes: N, little-endian u64] [N bytes: JSON header] [data section]
//
// The header maps each tensor name to {"dtype": "F32", "shape": [rows, cols],
// "data_offsets": [begin, end]}, offsets relative to the start of the data section, plus an
// optional "__metadata__" object of strings (ignored here). The file is memory-mapped; a tensor
// is a pointer into the mapping, never a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "io/mapped_file.h"

namespace tdm {

// One tensor as stored: where its bytes are and how to read them. `data` points into a mapping
// owned by the SafetensorsFile (or WeightStore) it came from and lives as long as that object.
// Alignment: `data` is aligned to the element size when the header length N is a multiple of 8,
// which the safetensors writer guarantees by padding the header with spaces; a file written
// otherwise may hand out unaligned pointers, which the CPU kernels tolerate (unaligned loads).
struct TensorEntry {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;  // row-major; an empty shape is a scalar
    const void* data = nullptr;
    size_t nbytes = 0;  // product(shape) * dtype_size(dtype)
    std::string file;   // path of the safetensors file that holds it (for messages)

    int64_t numel() const;
};

// "[4096, 11008]": the spelling error messages use for a shape.
std::string format_shape(const std::vector<int64_t>& shape);

// The largest header a file may declare, as in the reference implementation (its
// MAX_HEADER_SIZE): a bigger one is a corrupt length field, not a real header.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// One memory-mapped .safetensors file whose header has been validated in full at open.
//
// open() checks, failing with TDM_ERR_INVALID_MODEL and a message naming the file and tensor:
//  - the header length N: not 0, not above kMaxSafetensorsHeaderBytes, not past the end of file;
//  - the header: a JSON object whose entries (other than "__metadata__") each have a known dtype
//    string, a shape of non-negative integers and data_offsets [begin, end] with
//    begin <= end <= size of the data section and end - begin == product(shape) * dtype size;
//  - no two tensors share a byte.
// Holes between tensors are tolerated (the reference writer leaves none, but a hole is harmless).
// Dtypes: F32, F16 and BF16 are supported. Every other dtype the format defines (F64, I64, I32,
// F8_E4M3, BOOL, ...) is validated like the others and recorded as unsupported, so that a file
// carrying, say, an unused I64 buffer still opens and only a request for that tensor fails
// (TDM_ERR_UNSUPPORTED). A dtype string the format does not define is TDM_ERR_INVALID_MODEL.
// A missing file is TDM_ERR_NOT_FOUND; one that cannot be read or mapped is TDM_ERR_IO.
class SafetensorsFile {
public:
    SafetensorsFile() = default;
    static SafetensorsFile open(const std::string& path);

    SafetensorsFile(SafetensorsFile&&) noexcept = default;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;

    const std::string& path() const { return file_.path(); }

    // True for every tensor in the header, supported dtype or not.
    bool contains(const std::string& name) const;
    // The tensor, or nullptr when the header has no such name. Throws TDM_ERR_UNSUPPORTED when the
    // tensor exists but its dtype is not F32/F16/BF16 (the message names tensor, dtype and file).
    const TensorEntry* find(const std::string& name) const;
    // Like find(), but a missing name is TDM_ERR_NOT_FOUND ("tensor 'x' not found in <file>").
    const TensorEntry& get(const std::string& name) const;

    // Every tensor name in the header, in data-offset order.
    const std::vector<std::string>& names() const { return names_; }
    // Bytes of tensor data described by the header (all tensors, any dtype).
    size_t tensor_bytes() const { return tensor_bytes_; }

    // The mapping, for paging hints (e.g. advise(Access::WillNeed) before a first pass).
    const MappedFile& mapping() const { return file_; }

private:
    MappedFile file_;
    std::unordered_map<std::string, TensorEntry> tensors_;            // supported dtypes
    std::unordered_map<std::string, std::string> unsupported_dtype_;  // name -> dtype string
    std::vector<std::string> names_;
    size_t tensor_bytes_ = 0;
};

}  // namespace tdm
