#include "io/weight_store.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "io/json_file.h"

namespace tdm {

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// A shard named by the index must be a relative path that stays inside the model folder; an
// index pointing elsewhere is malformed (or hostile), never followed.
bool stays_in_folder(const std::string& shard) {
    const std::filesystem::path p(shard);
    if (shard.empty() || p.is_absolute() || p.has_root_path()) return false;
    for (const auto& part : p)
        if (part == "..") return false;
    return true;
}

}  // namespace

WeightStore WeightStore::open(const std::string& folder) {
    require_folder(folder, "model folder");
    WeightStore store;
    store.folder_ = folder;

    const std::string single = path_in_folder(folder, kSingleFile);
    const std::string index_path = path_in_folder(folder, kIndexFile);
    if (path_exists(single)) {
        auto file = std::make_unique<SafetensorsFile>(SafetensorsFile::open(single));
        for (const std::string& name : file->names()) store.by_name_.emplace(name, file.get());
        store.total_bytes_ = file->tensor_bytes();
        store.files_.push_back(std::move(file));
        return store;
    }
    TDM_REQUIRE(
        path_exists(index_path), TDM_ERR_NOT_FOUND,
        "model folder " + in_quotes(folder) + " has neither " + kSingleFile + " nor " + kIndexFile);

    const nlohmann::json index = read_json_file(index_path);
    auto map_it = index.find("weight_map");
    TDM_REQUIRE(map_it != index.end() && map_it->is_object(), TDM_ERR_INVALID_MODEL,
                in_quotes(index_path) + " has no 'weight_map' object");

    // Each shard is opened once, however many tensors it holds.
    std::map<std::string, const SafetensorsFile*> shard_by_file;
    for (const auto& [name, shard_value] : map_it->items()) {
        TDM_REQUIRE(shard_value.is_string(), TDM_ERR_INVALID_MODEL,
                    in_quotes(index_path) + " maps tensor " + in_quotes(name) +
                        " to a value that is not a file name: " + shard_value.dump());
        const std::string shard = shard_value.get<std::string>();
        TDM_REQUIRE(stays_in_folder(shard), TDM_ERR_INVALID_MODEL,
                    in_quotes(index_path) + " maps tensor " + in_quotes(name) + " to " +
                        in_quotes(shard) +
                        ", which is not a relative path inside the model folder");

        auto found = shard_by_file.find(shard);
        if (found == shard_by_file.end()) {
            const std::string shard_path = path_in_folder(folder, shard);
            TDM_REQUIRE(path_exists(shard_path), TDM_ERR_NOT_FOUND,
                        in_quotes(index_path) + " maps tensor " + in_quotes(name) + " to shard " +
                            in_quotes(shard) + ", which does not exist in " + in_quotes(folder));
            auto file = std::make_unique<SafetensorsFile>(SafetensorsFile::open(shard_path));
            store.total_bytes_ += file->tensor_bytes();
            found = shard_by_file.emplace(shard, file.get()).first;
            store.files_.push_back(std::move(file));
        }
        TDM_REQUIRE(found->second->contains(name), TDM_ERR_INVALID_MODEL,
                    in_quotes(index_path) + " maps tensor " + in_quotes(name) + " to shard " +
                        in_quotes(shard) + ", but that shard has no such tensor");
        store.by_name_.emplace(name, found->second);
    }
    return store;
}

bool WeightStore::contains(const std::string& name) const { return by_name_.count(name) != 0; }

const TensorEntry& WeightStore::get(const std::string& name) const {
    auto it = by_name_.find(name);
    TDM_REQUIRE(it != by_name_.end(), TDM_ERR_NOT_FOUND,
                "tensor " + in_quotes(name) + " not found in " + folder_);
    return it->second->get(name);
}

const TensorEntry& WeightStore::checked(const std::string& name,
                                        const std::vector<int64_t>& expected) const {
    const TensorEntry& entry = get(name);
    TDM_REQUIRE(entry.shape == expected, TDM_ERR_INVALID_MODEL,
                "tensor " + in_quotes(name) + " in " + folder_ + " has shape " +
                    format_shape(entry.shape) + ", but config.json implies " +
                    format_shape(expected));
    return entry;
}

MatrixView WeightStore::matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const TensorEntry& e = checked(name, {rows, cols});
    MatrixView view;
    view.data = e.data;
    view.dtype = e.dtype;
    view.rows = rows;
    view.cols = cols;
    return view;
}

VectorView WeightStore::vector(const std::string& name, int64_t size) const {
    const TensorEntry& e = checked(name, {size});
    VectorView view;
    view.data = e.data;
    view.dtype = e.dtype;
    view.size = size;
    return view;
}

std::vector<std::string> WeightStore::names() const {
    std::vector<std::string> out;
    out.reserve(by_name_.size());
    for (const auto& [name, file] : by_name_) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace tdm
