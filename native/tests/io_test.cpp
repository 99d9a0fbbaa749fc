// Model-folder I/O: the memory mapping, the safetensors reader (every malformed case the reader
// must refuse, with the right status and a message naming the culprit) and the weight store over
// single-file and sharded folders. Test files are written by a small safetensors writer below.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/error.h"
#include "fixtures.h"
#include "io/mapped_file.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/weight_store.h"
#include "io_test_support.h"

namespace tdm {
namespace {

namespace fs = std::filesystem;
using io_test::expect_error;
using io_test::ScratchDir;
using io_test::write_file;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Helpers

std::string le_u64(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
    return s;
}

// A safetensors file from its raw parts: length field, header text, data bytes.
std::string raw_safetensors(uint64_t declared_length, const std::string& header,
                            const std::string& data) {
    return le_u64(declared_length) + header + data;
}

// One tensor for the writer: its name, safetensors dtype string, shape and raw little-endian bytes.
struct TensorSpec {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;
};

// Writes a well-formed safetensors file the way the reference writer does: tensors packed in the
// given order, header padded with spaces to a multiple of 8 bytes, optional __metadata__.
void write_safetensors(const std::string& path, const std::vector<TensorSpec>& tensors) {
    json header = json::object();
    header["__metadata__"] = {{"format", "pt"}};
    std::string data;
    for (const TensorSpec& t : tensors) {
        header[t.name] = {{"dtype", t.dtype},
                          {"shape", t.shape},
                          {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
        data += t.bytes;
    }
    std::string text = header.dump();
    while (text.size() % 8 != 0) text += ' ';
    write_file(path, raw_safetensors(text.size(), text, data));
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

// `count` random values stored as `dtype`: the bytes, and the values they decode to.
struct Encoded {
    std::string bytes;
    std::vector<float> values;
};

Encoded random_tensor(DType dtype, int64_t count, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 3.0f);
    Encoded e;
    for (int64_t i = 0; i < count; ++i) {
        const float x = dist(rng);
        if (dtype == DType::F32) {
            e.bytes.append(reinterpret_cast<const char*>(&x), 4);
            e.values.push_back(x);
        } else {
            const uint16_t h = dtype == DType::F16 ? f32_to_f16(x) : f32_to_bf16(x);
            e.bytes.append(reinterpret_cast<const char*>(&h), 2);
            e.values.push_back(dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h));
        }
    }
    return e;
}

const char* st_name(DType d) {
    switch (d) {
        case DType::F32: return "F32";
        case DType::F16: return "F16";
        case DType::BF16: return "BF16";
    }
    return "?";
}

uint32_t fresh_seed() {
    const uint32_t seed = std::random_device{}();
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
    return seed;
}

// ---------------------------------------------------------------------------------------------
// MappedFile

TEST(MappedFile, MapsTheWholeFileReadOnly) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    // A ragged size that is not a multiple of the page size.
    const size_t size = 4096 * 3 + std::uniform_int_distribution<size_t>(1, 4095)(rng);
    std::string bytes(size, '\0');
    for (char& c : bytes) c = char(rng() & 0xff);
    write_file(dir + "/blob", bytes);

    MappedFile file(dir + "/blob");
    ASSERT_EQ(file.size(), size);
    ASSERT_NE(file.data(), nullptr);
    EXPECT_EQ(std::memcmp(file.data(), bytes.data(), size), 0);
    EXPECT_EQ(file.path(), dir + "/blob");
    // Hints never change contents, whatever the range (unaligned, past the end, everything).
    file.advise(Access::WillNeed);
    file.advise(Access::Random, 5, 100);
    file.advise(Access::Sequential, size - 1, 1000);
    file.advise(Access::Normal, size + 10, 1);
    EXPECT_EQ(std::memcmp(file.data(), bytes.data(), size), 0);

    // Moving hands over the mapping without remapping it.
    const uint8_t* before = file.data();
    MappedFile moved(std::move(file));
    EXPECT_EQ(moved.data(), before);
    EXPECT_EQ(file.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    MappedFile assigned;
    assigned = std::move(moved);
    EXPECT_EQ(assigned.data(), before);
    EXPECT_EQ(assigned.size(), size);
}

TEST(MappedFile, EmptyFileMapsToNothing) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    write_file(dir + "/empty", "");
    MappedFile file(dir + "/empty");
    EXPECT_EQ(file.size(), 0u);
    EXPECT_EQ(file.data(), nullptr);
}

TEST(MappedFile, MissingPathIsNotFound) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    expect_error([&] { MappedFile f(dir + "/nope.safetensors"); }, TDM_ERR_NOT_FOUND,
                 {dir + "/nope.safetensors", "No such file"});
}

TEST(MappedFile, DirectoryIsAnIoError) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    expect_error([&] { MappedFile f(dir); }, TDM_ERR_IO, {dir, "not a regular file"});
}

TEST(MappedFile, UnreadableFileIsAnIoErrorWithStrerror) {
    if (::geteuid() == 0) GTEST_SKIP() << "running as root: file permissions are not enforced";
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    write_file(dir + "/secret", "abc");
    ::chmod((dir + "/secret").c_str(), 0);
    expect_error([&] { MappedFile f(dir + "/secret"); }, TDM_ERR_IO,
                 {dir + "/secret", "Permission denied"});
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile: good files

TEST(Safetensors, RoundTripsF32F16Bf16AtRaggedShapes) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int64_t> dim(1, 37);

    std::vector<TensorSpec> specs;
    std::vector<std::vector<float>> expected;
    std::vector<DType> dtypes;
    for (int i = 0; i < 12; ++i) {
        const DType dtype = std::array{DType::F32, DType::F16, DType::BF16}[size_t(i % 3)];
        std::vector<int64_t> shape;
        const int rank = i % 4;  // scalars, vectors, matrices and a rank-3 tensor
        for (int r = 0; r < rank; ++r) shape.push_back(dim(rng));
        Encoded e = random_tensor(dtype, numel(shape), rng);
        specs.push_back(
            {"t" + std::to_string(i) + "." + st_name(dtype), st_name(dtype), shape, e.bytes});
        expected.push_back(e.values);
        dtypes.push_back(dtype);
    }
    specs.push_back({"empty", "F32", {0, 5}, ""});
    write_safetensors(dir + "/model.safetensors", specs);

    SafetensorsFile st = SafetensorsFile::open(dir + "/model.safetensors");
    EXPECT_EQ(st.names().size(), specs.size());
    size_t total = 0;
    for (size_t i = 0; i + 1 < specs.size(); ++i) {
        const TensorEntry& t = st.get(specs[i].name);
        EXPECT_EQ(t.name, specs[i].name);
        EXPECT_EQ(t.dtype, dtypes[i]);
        EXPECT_EQ(t.shape, specs[i].shape);
        EXPECT_EQ(t.numel(), numel(specs[i].shape));
        EXPECT_EQ(t.nbytes, specs[i].bytes.size());
        EXPECT_EQ(t.file, dir + "/model.safetensors");
        ASSERT_EQ(std::memcmp(t.data, specs[i].bytes.data(), t.nbytes), 0) << t.name;
        for (int64_t k = 0; k < t.numel(); ++k)
            ASSERT_EQ(load_as_f32(t.data, size_t(k), t.dtype), expected[i][size_t(k)])
                << t.name << "[" << k << "]";
        // The writer pads the header to 8 bytes and packs 4-byte tensors first when they come
        // first; every pointer is at least aligned to the start of the data section.
        total += t.nbytes;
    }
    const TensorEntry& empty = st.get("empty");
    EXPECT_EQ(empty.nbytes, 0u);
    EXPECT_EQ(empty.numel(), 0);
    EXPECT_EQ(st.tensor_bytes(), total);
    EXPECT_FALSE(st.contains("__metadata__"));
    EXPECT_EQ(st.find("absent"), nullptr);
}

TEST(Safetensors, NamesComeInDataOrder) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    // The header JSON is written sorted by name; the data order is b, c, a.
    std::string data(4 * 3, '\0');
    json header = {{"a", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {8, 12}}}},
                   {"b", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}}},
                   {"c", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 8}}}}};
    const std::string text = header.dump();
    write_file(dir + "/x.safetensors", raw_safetensors(text.size(), text, data));
    SafetensorsFile st = SafetensorsFile::open(dir + "/x.safetensors");
    EXPECT_EQ(st.names(), (std::vector<std::string>{"b", "c", "a"}));
    // An unpadded header (N not a multiple of 8) is legal; data still lands where it should.
    EXPECT_EQ(static_cast<const uint8_t*>(st.get("b").data), st.mapping().data() + 8 + text.size());
}

TEST(Safetensors, UnsupportedDtypeFailsOnlyWhenRequested) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    std::vector<float> w = {1.5f, -2.0f};
    write_safetensors(dir + "/m.safetensors", {{"weight", "F32", {2}, bytes_of(w)},
                                               {"positions", "I64", {3}, std::string(24, '\1')},
                                               {"scale", "F64", {1}, std::string(8, '\0')},
                                               {"fp8", "F8_E4M3", {2, 3}, std::string(6, '\0')},
                                               {"flags", "BOOL", {4}, std::string(4, '\0')}});
    SafetensorsFile st = SafetensorsFile::open(dir + "/m.safetensors");
    EXPECT_EQ(st.get("weight").dtype, DType::F32);
    EXPECT_TRUE(st.contains("positions"));
    EXPECT_EQ(st.names().size(), 5u);
    EXPECT_EQ(st.tensor_bytes(), 8u + 24u + 8u + 6u + 4u);
    expect_error([&] { st.get("positions"); }, TDM_ERR_UNSUPPORTED, {"'positions'", "I64", "F32"});
    expect_error([&] { st.find("scale"); }, TDM_ERR_UNSUPPORTED, {"'scale'", "F64"});
    expect_error([&] { st.get("fp8"); }, TDM_ERR_UNSUPPORTED, {"'fp8'", "F8_E4M3"});
    expect_error([&] { st.get("missing"); }, TDM_ERR_NOT_FOUND,
                 {"'missing'", "not found", dir + "/m.safetensors"});
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile: malformed files

// One valid header for a single F32 [2, 3] tensor, as a JSON object to be broken by each test.
json one_tensor_header() {
    return {{"w", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}}}};
}

// Writes `header` (with an honest length) followed by `data_bytes` zero bytes and opens it.
void open_with_header(const std::string& path, const std::string& header, size_t data_bytes) {
    write_file(path, raw_safetensors(header.size(), header, std::string(data_bytes, '\0')));
    SafetensorsFile::open(path);
}

TEST(SafetensorsMalformed, MissingFileIsNotFound) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    expect_error([&] { SafetensorsFile::open(dir + "/absent.safetensors"); }, TDM_ERR_NOT_FOUND,
                 {dir + "/absent.safetensors"});
}

TEST(SafetensorsMalformed, FileShorterThanTheLengthField) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/short.safetensors";
    write_file(path, "abc");
    expect_error([&] { SafetensorsFile::open(path); }, TDM_ERR_INVALID_MODEL,
                 {path, "3 bytes", "too short"});
}

TEST(SafetensorsMalformed, HeaderLengthZero) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/zero.safetensors";
    write_file(path, raw_safetensors(0, "{}", ""));
    expect_error([&] { SafetensorsFile::open(path); }, TDM_ERR_INVALID_MODEL,
                 {path, "header length of 0"});
}

TEST(SafetensorsMalformed, HeaderLengthAboveTheLimit) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/huge.safetensors";
    write_file(path, raw_safetensors(kMaxSafetensorsHeaderBytes + 1, "{}", ""));
    expect_error([&] { SafetensorsFile::open(path); }, TDM_ERR_INVALID_MODEL,
                 {path, std::to_string(kMaxSafetensorsHeaderBytes + 1), "100 MB"});
    // A garbage length (e.g. a file that is not safetensors at all) lands here too.
    write_file(path, raw_safetensors(~uint64_t(0), "{}", ""));
    expect_error([&] { SafetensorsFile::open(path); }, TDM_ERR_INVALID_MODEL, {"100 MB"});
}

TEST(SafetensorsMalformed, HeaderLengthPastTheEndOfFile) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/past.safetensors";
    const std::string header = one_tensor_header().dump();
    write_file(path, raw_safetensors(header.size() + 100, header, std::string(24, '\0')));
    expect_error(
        [&] { SafetensorsFile::open(path); }, TDM_ERR_INVALID_MODEL,
        {path, std::to_string(header.size() + 100), "only " + std::to_string(header.size() + 24)});
}

TEST(SafetensorsMalformed, HeaderNotJson) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/text.safetensors";
    expect_error([&] { open_with_header(path, "{\"w\": {\"dtype\": ", 0); }, TDM_ERR_INVALID_MODEL,
                 {path, "not valid JSON"});
    expect_error([&] { open_with_header(path, "[1, 2, 3]", 0); }, TDM_ERR_INVALID_MODEL,
                 {path, "not a JSON object"});
}

TEST(SafetensorsMalformed, EntryFieldsMissingOrMistyped) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/fields.safetensors";
    struct Case {
        std::function<void(json&)> breakit;
        std::string fragment;
    };
    const std::vector<Case> cases = {
        {[](json& h) { h["w"] = 5; }, "not a JSON object"},
        {[](json& h) { h["w"].erase("dtype"); }, "no 'dtype'"},
        {[](json& h) { h["w"]["dtype"] = "F33"; }, "unknown dtype 'F33'"},
        {[](json& h) { h["w"].erase("shape"); }, "no 'shape'"},
        {[](json& h) {
             h["w"]["shape"] = {2, -3};
         },
         "not a non-negative integer"},
        {[](json& h) {
             h["w"]["shape"] = {2, 1.5};
         },
         "not a non-negative integer"},
        {[](json& h) {
             h["w"]["shape"] = {int64_t(1) << 40, int64_t(1) << 40};
         },
         "overflows"},
        {[](json& h) { h["w"].erase("data_offsets"); }, "no 'data_offsets'"},
        {[](json& h) { h["w"]["data_offsets"] = {0}; }, "no 'data_offsets'"},
        {[](json& h) {
             h["w"]["data_offsets"] = {-8, 16};
         },
         "not non-negative integers"},
        {[](json& h) {
             h["w"]["data_offsets"] = {24, 0};
         },
         "end before they begin"},
    };
    for (const Case& c : cases) {
        json header = one_tensor_header();
        c.breakit(header);
        SCOPED_TRACE(header.dump());
        expect_error([&] { open_with_header(path, header.dump(), 24); }, TDM_ERR_INVALID_MODEL,
                     {path, "'w'", c.fragment});
    }
}

TEST(SafetensorsMalformed, OffsetsOutOfRange) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/range.safetensors";
    json header = one_tensor_header();
    header["w"]["data_offsets"] = {8, 32};  // 24 bytes, but the data section has only 24 in all
    expect_error([&] { open_with_header(path, header.dump(), 24); }, TDM_ERR_INVALID_MODEL,
                 {path, "'w'", "[8,32]", "outside the data section of 24 bytes"});
}

TEST(SafetensorsMalformed, ShapeTimesDtypeSizeMismatch) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/size.safetensors";
    json header = one_tensor_header();
    header["w"]["dtype"] = "BF16";  // [2, 3] x BF16 = 12 bytes, but the offsets span 24
    expect_error([&] { open_with_header(path, header.dump(), 24); }, TDM_ERR_INVALID_MODEL,
                 {path, "'w'", "24 bytes of data", "[2, 3] x BF16 needs 12 bytes"});
}

TEST(SafetensorsMalformed, OverlappingTensors) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string path = dir + "/overlap.safetensors";
    json header = one_tensor_header();
    header["v"] = {{"dtype", "F16"}, {"shape", {4}}, {"data_offsets", {20, 28}}};
    expect_error([&] { open_with_header(path, header.dump(), 28); }, TDM_ERR_INVALID_MODEL,
                 {path, "'w' [0, 24)", "'v' [20, 28)", "overlap"});
    // Identical spans overlap too; adjacent ones and empty ones do not.
    header["v"] = {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}};
    expect_error([&] { open_with_header(path, header.dump(), 24); }, TDM_ERR_INVALID_MODEL,
                 {"overlap"});
    header["v"] = {{"dtype", "F16"}, {"shape", {4}}, {"data_offsets", {24, 32}}};
    header["e"] = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {4, 4}}};
    EXPECT_NO_THROW(open_with_header(path, header.dump(), 32));
}

// ---------------------------------------------------------------------------------------------
// WeightStore

// A small model's worth of tensors: random values at ragged sizes, in a mix of dtypes.
struct ModelTensors {
    std::vector<TensorSpec> specs;
    std::vector<std::vector<float>> values;
};

ModelTensors random_model_tensors(std::mt19937& rng, int layers, int64_t hidden, int64_t inter) {
    ModelTensors m;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, DType dtype) {
        Encoded e = random_tensor(dtype, numel(shape), rng);
        m.specs.push_back({name, st_name(dtype), std::move(shape), e.bytes});
        m.values.push_back(std::move(e.values));
    };
    add("model.embed_tokens.weight", {29, hidden}, DType::BF16);
    for (int l = 0; l < layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "self_attn.q_proj.weight", {hidden, hidden}, DType::F32);
        add(p + "mlp.up_proj.weight", {inter, hidden}, DType::F16);
        add(p + "input_layernorm.weight", {hidden}, DType::F32);
    }
    add("model.norm.weight", {hidden}, DType::BF16);
    return m;
}

TEST(WeightStore, SingleFile) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const int64_t hidden = std::uniform_int_distribution<int64_t>(3, 19)(rng);
    const int64_t inter = std::uniform_int_distribution<int64_t>(5, 41)(rng);
    ModelTensors m = random_model_tensors(rng, 3, hidden, inter);
    write_safetensors(dir + "/model.safetensors", m.specs);

    WeightStore store = WeightStore::open(dir);
    EXPECT_EQ(store.folder(), dir);
    ASSERT_EQ(store.files().size(), 1u);
    size_t total = 0;
    for (const TensorSpec& s : m.specs) total += s.bytes.size();
    EXPECT_EQ(store.total_bytes(), total);
    const std::vector<std::string> names = store.names();
    EXPECT_EQ(names.size(), m.specs.size());
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));

    const MatrixView up = store.matrix("model.layers.1.mlp.up_proj.weight", inter, hidden);
    EXPECT_EQ(up.dtype, DType::F16);
    EXPECT_EQ(up.rows, inter);
    EXPECT_EQ(up.cols, hidden);
    const std::vector<float>& up_values = m.values[5];  // embed, then 3 per layer
    for (int64_t r = 0; r < inter; ++r)
        for (int64_t c = 0; c < hidden; ++c)
            ASSERT_EQ(load_as_f32(up.row_ptr(r), size_t(c), up.dtype),
                      up_values[size_t(r * hidden + c)]);
    const VectorView norm = store.vector("model.norm.weight", hidden);
    EXPECT_EQ(norm.dtype, DType::BF16);
    for (int64_t i = 0; i < hidden; ++i)
        ASSERT_EQ(load_as_f32(norm.data, size_t(i), norm.dtype), m.values.back()[size_t(i)]);

    // Views and entries outlive a move of the store.
    WeightStore moved = std::move(store);
    EXPECT_EQ(moved.get("model.layers.1.mlp.up_proj.weight").data, up.data);
    EXPECT_TRUE(moved.contains("model.layers.2.input_layernorm.weight"));
    EXPECT_FALSE(moved.contains("lm_head.weight"));
}

// Writes m.specs over `shards` files with an index, round-robin; returns the shard file names.
std::vector<std::string> write_sharded(const std::string& dir, const ModelTensors& m, int shards) {
    std::vector<std::vector<TensorSpec>> parts(static_cast<size_t>(shards));
    std::vector<std::string> files;
    json weight_map = json::object();
    for (int s = 0; s < shards; ++s)
        files.push_back("model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) +
                        ".safetensors");
    for (size_t i = 0; i < m.specs.size(); ++i) {
        parts[i % size_t(shards)].push_back(m.specs[i]);
        weight_map[m.specs[i].name] = files[i % size_t(shards)];
    }
    for (int s = 0; s < shards; ++s)
        write_safetensors(dir + "/" + files[size_t(s)], parts[size_t(s)]);
    json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
    write_file(dir + "/model.safetensors.index.json", index.dump(2));
    return files;
}

TEST(WeightStore, ShardedOpensEachShardOnce) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const int64_t hidden = std::uniform_int_distribution<int64_t>(2, 23)(rng);
    const int64_t inter = std::uniform_int_distribution<int64_t>(3, 29)(rng);
    ModelTensors m = random_model_tensors(rng, 4, hidden, inter);
    const std::vector<std::string> files = write_sharded(dir, m, 3);

    WeightStore store = WeightStore::open(dir);
    ASSERT_EQ(store.files().size(), 3u);
    EXPECT_EQ(store.names().size(), m.specs.size());
    size_t total = 0;
    for (size_t i = 0; i < m.specs.size(); ++i) {
        const TensorEntry& t = store.get(m.specs[i].name);
        total += t.nbytes;
        EXPECT_EQ(t.file, dir + "/" + files[i % 3]) << t.name;
        ASSERT_EQ(t.shape, m.specs[i].shape);
        for (int64_t k = 0; k < t.numel(); ++k)
            ASSERT_EQ(load_as_f32(t.data, size_t(k), t.dtype), m.values[i][size_t(k)]) << t.name;
    }
    EXPECT_EQ(store.total_bytes(), total);
}

TEST(WeightStore, PrefersTheSingleFileOverAnIndex) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    std::vector<float> a = {1, 2, 3};
    write_safetensors(dir + "/model.safetensors", {{"a", "F32", {3}, bytes_of(a)}});
    write_file(dir + "/model.safetensors.index.json",
               R"({"weight_map": {"b": "gone.safetensors"}})");
    WeightStore store = WeightStore::open(dir);
    EXPECT_TRUE(store.contains("a"));
    EXPECT_FALSE(store.contains("b"));
}

TEST(WeightStoreErrors, MissingFolder) {
    const ScratchDir tmp;
    const std::string dir = tmp.path() + "/no-such-model";
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_NOT_FOUND, {dir, "does not exist"});
}

TEST(WeightStoreErrors, FolderWithoutWeights) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_NOT_FOUND,
                 {dir, "model.safetensors", "model.safetensors.index.json"});
}

TEST(WeightStoreErrors, IndexNamesAMissingShard) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    std::mt19937 rng(fresh_seed());
    ModelTensors m = random_model_tensors(rng, 2, 4, 6);
    const std::vector<std::string> files = write_sharded(dir, m, 2);
    fs::remove(dir + "/" + files[1]);
    // The message names the missing shard and the first tensor the index maps to it.
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_NOT_FOUND,
                 {"model.safetensors.index.json", files[1], "does not exist", dir, "tensor '"});
}

TEST(WeightStoreErrors, IndexNamesATensorItsShardLacks) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    std::vector<float> a = {1, 2};
    write_safetensors(dir + "/shard-a.safetensors", {{"a", "F32", {2}, bytes_of(a)}});
    write_file(
        dir + "/model.safetensors.index.json",
        R"({"weight_map": {"a": "shard-a.safetensors",
                           "model.norm.weight": "shard-a.safetensors"}})");
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_INVALID_MODEL,
                 {"'model.norm.weight'", "'shard-a.safetensors'", "no such tensor"});
}

TEST(WeightStoreErrors, MalformedIndex) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    const std::string index = dir + "/model.safetensors.index.json";
    write_file(index, "{\"weight_map\": ");
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_INVALID_MODEL, {index, "not valid JSON"});
    write_file(index, R"({"metadata": {}})");
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_INVALID_MODEL, {index, "'weight_map'"});
    write_file(index, R"({"weight_map": {"a": 3}})");
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_INVALID_MODEL,
                 {"'a'", "not a file name"});
    for (const char* escape : {"../outside.safetensors", "/etc/passwd"}) {
        write_file(index, json{{"weight_map", {{"a", escape}}}}.dump());
        expect_error([&] { WeightStore::open(dir); }, TDM_ERR_INVALID_MODEL,
                     {escape, "not a relative path inside the model folder"});
    }
}

TEST(WeightStoreErrors, MalformedShardNamesTheShard) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    write_file(dir + "/s1.safetensors", raw_safetensors(0, "", ""));
    write_file(dir + "/model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors"}})");
    expect_error([&] { WeightStore::open(dir); }, TDM_ERR_INVALID_MODEL,
                 {dir + "/s1.safetensors", "header length of 0"});
}

TEST(WeightStoreErrors, TensorMissing) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    std::mt19937 rng(fresh_seed());
    write_safetensors(dir + "/model.safetensors", random_model_tensors(rng, 2, 4, 6).specs);
    WeightStore store = WeightStore::open(dir);
    expect_error([&] { store.get("model.layers.3.mlp.up_proj.weight"); }, TDM_ERR_NOT_FOUND,
                 {"tensor 'model.layers.3.mlp.up_proj.weight' not found in " + dir});
    expect_error([&] { store.matrix("lm_head.weight", 29, 4); }, TDM_ERR_NOT_FOUND,
                 {"'lm_head.weight'"});
}

TEST(WeightStoreErrors, ShapeDisagreesWithConfig) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    std::mt19937 rng(fresh_seed());
    write_safetensors(dir + "/model.safetensors", random_model_tensors(rng, 2, 4, 6).specs);
    WeightStore store = WeightStore::open(dir);
    expect_error([&] { store.matrix("model.layers.0.mlp.up_proj.weight", 4, 6); },
                 TDM_ERR_INVALID_MODEL,
                 {"tensor 'model.layers.0.mlp.up_proj.weight' in " + dir +
                  " has shape [6, 4], but config.json implies [4, 6]"});
    expect_error([&] { store.vector("model.norm.weight", 5); }, TDM_ERR_INVALID_MODEL,
                 {"has shape [4], but config.json implies [5]"});
    // A vector is not a [1, n] matrix, nor the other way round.
    expect_error([&] { store.matrix("model.norm.weight", 1, 4); }, TDM_ERR_INVALID_MODEL,
                 {"has shape [4], but config.json implies [1, 4]"});
}

TEST(WeightStoreErrors, UnsupportedDtypeRequested) {
    const ScratchDir tmp;
    const std::string& dir = tmp.path();
    std::vector<float> w(6, 0.5f);
    write_safetensors(dir + "/model.safetensors",
                      {{"model.embed_tokens.weight", "F64", {2, 3}, std::string(48, '\0')},
                       {"model.norm.weight", "F32", {6}, bytes_of(w)}});
    WeightStore store = WeightStore::open(dir);  // the F64 tensor does not stop the open
    EXPECT_TRUE(store.contains("model.embed_tokens.weight"));
    EXPECT_EQ(store.vector("model.norm.weight", 6).size, 6);
    expect_error([&] { store.matrix("model.embed_tokens.weight", 2, 3); }, TDM_ERR_UNSUPPORTED,
                 {"'model.embed_tokens.weight'", "F64", "not supported"});
}

// ---------------------------------------------------------------------------------------------
// The fixture models written by Hugging Face transformers (tests/fixtures/<name>/): every config
// parses and every weight the config implies is present with the implied shape.

void expect_weights_match_config(const ModelConfig& c, const WeightStore& w) {
    const int64_t H = c.hidden_size;
    const int64_t I = c.intermediate_size;
    w.matrix("model.embed_tokens.weight", c.vocab_size, H);
    w.vector("model.norm.weight", H);
    if (!c.tie_word_embeddings) {
        w.matrix("lm_head.weight", c.vocab_size, H);
    }
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        w.vector(p + "input_layernorm.weight", H);
        w.vector(p + "post_attention_layernorm.weight", H);
        w.matrix(p + "self_attn.q_proj.weight", c.q_dim(), H);
        w.matrix(p + "self_attn.k_proj.weight", c.kv_dim(), H);
        w.matrix(p + "self_attn.v_proj.weight", c.kv_dim(), H);
        w.matrix(p + "self_attn.o_proj.weight", H, c.q_dim());
        w.matrix(p + "mlp.gate_proj.weight", I, H);
        w.matrix(p + "mlp.up_proj.weight", I, H);
        w.matrix(p + "mlp.down_proj.weight", H, I);
        EXPECT_EQ(w.contains(p + "self_attn.q_proj.bias"), c.qkv_bias) << p;
        EXPECT_EQ(w.contains(p + "self_attn.o_proj.bias"), c.o_bias) << p;
        EXPECT_EQ(w.contains(p + "mlp.up_proj.bias"), c.mlp_bias) << p;
        if (c.qkv_bias) {
            w.vector(p + "self_attn.q_proj.bias", c.q_dim());
            w.vector(p + "self_attn.k_proj.bias", c.kv_dim());
            w.vector(p + "self_attn.v_proj.bias", c.kv_dim());
        }
    }
}

class ModelFolderFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelFolderFixture, ParsesAndItsWeightsMatchItsConfig) {
    const std::string& name = GetParam();
    const std::string dir = testing::fixture_dir(name);
    if (!fs::exists(dir + "/config.json"))
        GTEST_SKIP() << "fixture folder " << dir
                     << " is absent (tools/ writes it with transformers on the GPU machine)";
    const ModelConfig config = parse_model_config(dir);
    const WeightStore weights = WeightStore::open(dir);
    expect_weights_match_config(config, weights);
    EXPECT_FALSE(config.eos_token_ids.empty());
    EXPECT_EQ(config.layer_sliding.size(), size_t(config.num_hidden_layers));
    // What each fixture's name promises.
    auto says = [&](const char* word) { return name.find(word) != std::string::npos; };
    if (says("sharded")) {
        EXPECT_GT(weights.files().size(), 1u);
    }
    if (says("swa")) {
        EXPECT_GT(config.sliding_window, 0);
    }
    if (says("tied")) {
        EXPECT_TRUE(config.tie_word_embeddings);
    }
    const Arch arch = says("qwen2") ? Arch::Qwen2 : says("mistral") ? Arch::Mistral : Arch::Llama;
    EXPECT_EQ(config.arch, arch);
    const DType expected = name.find("bf16") != std::string::npos ? DType::BF16 : DType::F32;
    EXPECT_EQ(weights.get("model.embed_tokens.weight").dtype, expected);

    // What the fixture script recorded from transformers' own reading of the same folder.
    const json golden = testing::read_json(dir + "/golden.json");
    EXPECT_EQ(arch_name(config.arch), golden.at("architecture").get<std::string>());
    EXPECT_EQ(config.dtype, golden.at("dtype").get<std::string>());
    EXPECT_EQ(config.eos_token_ids, golden.at("eos_token_ids").get<std::vector<int32_t>>());
    if (golden.at("bos_token_id").is_null()) {
        EXPECT_FALSE(config.bos_token_id.has_value());
    } else {
        EXPECT_EQ(config.bos_token_id, golden.at("bos_token_id").get<int32_t>());
    }
    const json& checks = golden.at("checks");
    if (checks.contains("rope_parameters_read_back")) {
        const json& rope = checks["rope_parameters_read_back"];
        EXPECT_EQ(rope_type_name(config.rope.type), rope.at("rope_type").get<std::string>());
        EXPECT_EQ(config.rope.theta, rope.at("rope_theta").get<double>());
        EXPECT_EQ(config.rope.factor, rope.at("factor").get<double>());
        EXPECT_EQ(config.rope.low_freq_factor, rope.at("low_freq_factor").get<double>());
        EXPECT_EQ(config.rope.high_freq_factor, rope.at("high_freq_factor").get<double>());
        EXPECT_EQ(config.rope.original_max_position_embeddings,
                  rope.at("original_max_position_embeddings").get<int64_t>());
    }
    if (checks.contains("sliding_window")) {
        EXPECT_EQ(config.sliding_window, checks["sliding_window"].at("window").get<int64_t>());
    }
    if (checks.contains("shards")) {
        EXPECT_EQ(weights.files().size(), checks["shards"].size());
    }
    if (checks.value("tied_lm_head_not_stored", false)) {
        EXPECT_FALSE(weights.contains("lm_head.weight"));
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelFolderFixture,
                         ::testing::ValuesIn(testing::fixture_names()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                             std::string id = param.param;
                             for (char& ch : id)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return id;
                         });

}  // namespace
}  // namespace tdm
