// Helpers shared by the model-folder I/O tests (io_test.cpp, config_test.cpp): a scratch folder
// per test, file writing, and a check that a call fails with a given status and message.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace tdm::io_test {

// A fresh, empty folder under GoogleTest's temp dir, named for the running test, removed when the
// test ends (kept only if removal fails, which never fails the test).
class ScratchDir {
public:
    ScratchDir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string leaf = "tandem_io_" + std::to_string(::getpid()) + "_" +
                           info->test_suite_name() + "_" + info->name();
        for (char& c : leaf)
            if (c == '/') c = '_';  // parameterized test names contain '/'
        path_ = (std::filesystem::path(::testing::TempDir()) / leaf).string();
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// Runs `f`, which must throw tdm::Error with `status` and a message containing every fragment.
inline void expect_error(const std::function<void()>& f, tdm_status status,
                         const std::vector<std::string>& fragments) {
    try {
        f();
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), status) << "message: " << e.what();
        for (const std::string& frag : fragments)
            EXPECT_NE(std::string(e.what()).find(frag), std::string::npos)
                << "message \"" << e.what() << "\" lacks \"" << frag << "\"";
        return;
    }
    ADD_FAILURE() << "no tdm::Error thrown (expected status " << status << ")";
}

}  // namespace tdm::io_test
