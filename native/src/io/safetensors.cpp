#include "io/safetensors.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tdm {

namespace {

using nlohmann::json;

// Every dtype the safetensors format defines, with its width in bits (the sub-byte float formats
// pack several elements per byte). `supported` is set for the three the engine computes with.
struct StoredDType {
    std::string_view name;
    uint32_t bits;
    std::optional<DType> supported;
};

constexpr StoredDType kStoredDTypes[] = {
    {"F32", 32, DType::F32},      {"F16", 16, DType::F16},      {"BF16", 16, DType::BF16},
    {"F64", 64, std::nullopt},    {"I64", 64, std::nullopt},    {"U64", 64, std::nullopt},
    {"I32", 32, std::nullopt},    {"U32", 32, std::nullopt},    {"I16", 16, std::nullopt},
    {"U16", 16, std::nullopt},    {"I8", 8, std::nullopt},      {"U8", 8, std::nullopt},
    {"BOOL", 8, std::nullopt},    {"F8_E4M3", 8, std::nullopt}, {"F8_E5M2", 8, std::nullopt},
    {"F8_E8M0", 8, std::nullopt}, {"F6_E2M3", 6, std::nullopt}, {"F6_E3M2", 6, std::nullopt},
    {"F4", 4, std::nullopt},      {"C64", 64, std::nullopt},
};

const StoredDType* find_stored_dtype(std::string_view name) {
    for (const StoredDType& d : kStoredDTypes)
        if (d.name == name) return &d;
    return nullptr;
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// A JSON value as a non-negative integer; nullopt for anything else (negative, fractional,
// string, ...). nlohmann stores every non-negative integer literal as number_unsigned.
std::optional<uint64_t> as_count(const json& v) {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0)
        return static_cast<uint64_t>(v.get<int64_t>());
    return std::nullopt;
}

// a * b, or nullopt when it overflows `limit`.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b, uint64_t limit) {
    if (a != 0 && b > limit / a) return std::nullopt;
    return a * b;
}

uint64_t read_le_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// Where one tensor's bytes lie in the data section, for the overlap check.
struct Span {
    uint64_t begin;
    uint64_t end;
    std::string name;
};

}  // namespace

int64_t TensorEntry::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string format_shape(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile st;
    st.file_ = MappedFile(path);
    const uint8_t* bytes = st.file_.data();
    const uint64_t file_size = st.file_.size();
    const std::string where = "safetensors file " + in_quotes(path);

    // 1. The header length.
    TDM_REQUIRE(file_size >= 8, TDM_ERR_INVALID_MODEL,
                where + " is " + std::to_string(file_size) +
                    " bytes, too short for the 8-byte header length");
    const uint64_t header_len = read_le_u64(bytes);
    TDM_REQUIRE(header_len != 0, TDM_ERR_INVALID_MODEL, where + " declares a header length of 0");
    TDM_REQUIRE(header_len <= kMaxSafetensorsHeaderBytes, TDM_ERR_INVALID_MODEL,
                where + " declares a header length of " + std::to_string(header_len) +
                    " bytes, above the 100 MB limit (corrupt or not a safetensors file)");
    TDM_REQUIRE(header_len <= file_size - 8, TDM_ERR_INVALID_MODEL,
                where + " declares a header length of " + std::to_string(header_len) +
                    " bytes, but only " + std::to_string(file_size - 8) +
                    " bytes follow the length field");
    const uint8_t* data_section = bytes + 8 + header_len;
    const uint64_t data_size = file_size - 8 - header_len;

    // 2. The header JSON.
    json header;
    try {
        header = json::parse(bytes + 8, bytes + 8 + header_len);
    } catch (const json::exception& e) {
        fail(TDM_ERR_INVALID_MODEL, where + " has a header that is not valid JSON: " + e.what());
    }
    TDM_REQUIRE(header.is_object(), TDM_ERR_INVALID_MODEL,
                where + " has a header that is not a JSON object");

    // 3. Every entry.
    std::vector<Span> spans;
    spans.reserve(header.size());
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") continue;
        const std::string what = where + ": tensor " + in_quotes(name);
        TDM_REQUIRE(info.is_object(), TDM_ERR_INVALID_MODEL, what + " is not a JSON object");

        auto dtype_it = info.find("dtype");
        TDM_REQUIRE(dtype_it != info.end() && dtype_it->is_string(), TDM_ERR_INVALID_MODEL,
                    what + " has no 'dtype' string");
        const std::string dtype_name = dtype_it->get<std::string>();
        const StoredDType* dtype = find_stored_dtype(dtype_name);
        TDM_REQUIRE(dtype != nullptr, TDM_ERR_INVALID_MODEL,
                    what + " has unknown dtype " + in_quotes(dtype_name));

        auto shape_it = info.find("shape");
        TDM_REQUIRE(shape_it != info.end() && shape_it->is_array(), TDM_ERR_INVALID_MODEL,
                    what + " has no 'shape' array");
        std::vector<int64_t> shape;
        uint64_t numel = 1;
        for (const json& d : *shape_it) {
            std::optional<uint64_t> dim = as_count(d);
            TDM_REQUIRE(dim && *dim <= uint64_t(std::numeric_limits<int64_t>::max()),
                        TDM_ERR_INVALID_MODEL,
                        what + " has shape " + shape_it->dump() +
                            " with an entry that is not a non-negative integer");
            std::optional<uint64_t> product = checked_mul(numel, *dim, uint64_t(1) << 62);
            TDM_REQUIRE(product.has_value(), TDM_ERR_INVALID_MODEL,
                        what + " has shape " + shape_it->dump() + " whose element count overflows");
            numel = *product;
            shape.push_back(static_cast<int64_t>(*dim));
        }

        auto offsets_it = info.find("data_offsets");
        TDM_REQUIRE(offsets_it != info.end() && offsets_it->is_array() && offsets_it->size() == 2,
                    TDM_ERR_INVALID_MODEL, what + " has no 'data_offsets' pair [begin, end]");
        std::optional<uint64_t> begin = as_count((*offsets_it)[0]);
        std::optional<uint64_t> end = as_count((*offsets_it)[1]);
        TDM_REQUIRE(begin && end, TDM_ERR_INVALID_MODEL,
                    what + " has data_offsets " + offsets_it->dump() +
                        " that are not non-negative integers");
        TDM_REQUIRE(
            *begin <= *end, TDM_ERR_INVALID_MODEL,
            what + " has data_offsets " + offsets_it->dump() + " that end before they begin");
        TDM_REQUIRE(*end <= data_size, TDM_ERR_INVALID_MODEL,
                    what + " has data_offsets " + offsets_it->dump() +
                        " outside the data section of " + std::to_string(data_size) + " bytes");

        std::optional<uint64_t> bits =
            checked_mul(numel, dtype->bits, std::numeric_limits<uint64_t>::max());
        TDM_REQUIRE(bits && *bits % 8 == 0 && *bits / 8 == *end - *begin, TDM_ERR_INVALID_MODEL,
                    what + " has " + std::to_string(*end - *begin) + " bytes of data, but shape " +
                        format_shape(shape) + " x " + dtype_name + " needs " +
                        (bits ? std::to_string(*bits / 8) : std::string("more than 2^64")) +
                        " bytes");

        st.tensor_bytes_ += *end - *begin;
        spans.push_back({*begin, *end, name});

        if (dtype->supported) {
            TensorEntry entry;
            entry.name = name;
            entry.dtype = *dtype->supported;
            entry.shape = std::move(shape);
            entry.data = data_section + *begin;
            entry.nbytes = static_cast<size_t>(*end - *begin);
            entry.file = path;
            st.tensors_.emplace(name, std::move(entry));
        } else {
            st.unsupported_dtype_.emplace(name, dtype_name);
        }
    }

    // 4. No shared bytes: sorted by offset, each tensor must start at or after the previous end.
    // Empty tensors occupy nothing and may sit anywhere.
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    const Span* previous = nullptr;
    for (const Span& s : spans) {
        if (s.begin == s.end) continue;
        if (previous != nullptr && s.begin < previous->end) {
            fail(TDM_ERR_INVALID_MODEL,
                 where + ": tensors " + in_quotes(previous->name) + " [" +
                     std::to_string(previous->begin) + ", " + std::to_string(previous->end) +
                     ") and " + in_quotes(s.name) + " [" + std::to_string(s.begin) + ", " +
                     std::to_string(s.end) + ") overlap in the data section");
        }
        previous = &s;
    }
    st.names_.reserve(spans.size());
    for (Span& s : spans) st.names_.push_back(std::move(s.name));
    return st;
}

bool SafetensorsFile::contains(const std::string& name) const {
    return tensors_.count(name) != 0 || unsupported_dtype_.count(name) != 0;
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it != tensors_.end()) return &it->second;
    auto bad = unsupported_dtype_.find(name);
    if (bad != unsupported_dtype_.end()) {
        fail(TDM_ERR_UNSUPPORTED, "tensor " + in_quotes(name) + " in " + in_quotes(path()) +
                                      " has dtype " + bad->second +
                                      ", which is not supported (supported: F32, F16, BF16)");
    }
    return nullptr;
}

const TensorEntry& SafetensorsFile::get(const std::string& name) const {
    const TensorEntry* entry = find(name);
    if (entry == nullptr)
        fail(TDM_ERR_NOT_FOUND, "tensor " + in_quotes(name) + " not found in " + in_quotes(path()));
    return *entry;
}

}  // namespace tdm
