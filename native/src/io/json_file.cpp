#include "io/json_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "core/error.h"

namespace tdm {

namespace fs = std::filesystem;

std::string path_in_folder(const std::string& folder, const std::string& name) {
    return (fs::path(folder) / name).string();
}

bool path_exists(const std::string& path) {
    std::error_code ec;
    return fs::exists(fs::path(path), ec);
}

void require_folder(const std::string& folder, const std::string& what) {
    std::error_code ec;
    const fs::file_status status = fs::status(fs::path(folder), ec);
    TDM_REQUIRE(fs::exists(status), TDM_ERR_NOT_FOUND, what + " '" + folder + "' does not exist");
    TDM_REQUIRE(fs::is_directory(status), TDM_ERR_NOT_FOUND,
                what + " '" + folder + "' is not a directory");
}

nlohmann::json read_json_file(const std::string& path, bool require_object) {
    std::error_code ec;
    const fs::file_status status = fs::status(fs::path(path), ec);
    TDM_REQUIRE(fs::exists(status), TDM_ERR_NOT_FOUND, "'" + path + "' does not exist");
    TDM_REQUIRE(!fs::is_directory(status), TDM_ERR_IO,
                "cannot read '" + path + "': is a directory");

    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int code = errno;
        fail(TDM_ERR_IO,
             "cannot open '" + path + "': " + (code != 0 ? std::strerror(code) : "unknown error"));
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        const int code = errno;
        fail(TDM_ERR_IO,
             "cannot read '" + path + "': " + (code != 0 ? std::strerror(code) : "unknown error"));
    }

    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(TDM_ERR_INVALID_MODEL, "'" + path + "' is not valid JSON: " + e.what());
    }
    if (require_object)
        TDM_REQUIRE(doc.is_object(), TDM_ERR_INVALID_MODEL, "'" + path + "' is not a JSON object");
    return doc;
}

}  // namespace tdm
