// Reading the small JSON files of a model folder (config.json, generation_config.json,
// model.safetensors.index.json) with the error statuses the C ABI promises.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace tdm {

// The path `name` inside `folder` ("folder/name"), as a string for messages and for opening.
std::string path_in_folder(const std::string& folder, const std::string& name);

// True when `path` exists (as anything). Never throws.
bool path_exists(const std::string& path);

// Fails with TDM_ERR_NOT_FOUND unless `folder` is an existing directory; `what` names its role
// in the message ("model folder").
void require_folder(const std::string& folder, const std::string& what);

// Parses the whole file as JSON. TDM_ERR_NOT_FOUND when it does not exist, TDM_ERR_IO when it
// cannot be read (strerror in the message), TDM_ERR_INVALID_MODEL when it is not valid JSON or,
// with `require_object`, not a JSON object. Every message names the path.
nlohmann::json read_json_file(const std::string& path, bool require_object = true);

}  // namespace tdm
