// A whole file mapped read-only into memory. Weights are read straight from the page cache: a
// model loads in the time it takes to parse the headers, pages come in on first touch, and several
// engines on one machine share one physical copy of the same weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tdm {

// How the caller is about to read a mapped range; passed to madvise (POSIX) or
// PrefetchVirtualMemory (Windows, WillNeed only). Hints never change results, only paging.
enum class Access {
    Normal,      // the kernel's default read-ahead
    Sequential,  // one front-to-back pass (e.g. converting or uploading weights to a GPU)
    Random,      // scattered reads (e.g. embedding rows looked up by token id)
    WillNeed,    // start reading the range in now (prefault before the first forward pass)
};

// RAII read-only mapping of a whole file. Move-only; the mapping lives until destruction.
// Errors (thrown as tdm::Error): TDM_ERR_NOT_FOUND when the path does not exist,
// TDM_ERR_IO when it exists but is not a regular file or cannot be opened, sized or mapped
// (the message names the path and carries strerror / the Windows error code).
class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path);
    ~MappedFile();

    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    // First byte of the file (page-aligned), or nullptr for an empty file or a default-constructed
    // object. Valid for the lifetime of this object; the bytes are read-only.
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

    // Paging hint for [offset, offset + length) (clamped to the file). Best effort: a kernel that
    // refuses the hint changes nothing, so failures are ignored.
    void advise(Access access, size_t offset = 0, size_t length = SIZE_MAX) const;

private:
    void release() noexcept;

    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    std::string path_;
#ifdef _WIN32
    void* mapping_handle_ = nullptr;  // HANDLE of the file-mapping object
#endif
};

}  // namespace tdm
