#include "io/mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <filesystem>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace tdm {

#ifdef _WIN32

namespace {

[[noreturn]] void fail_windows(const std::string& what, const std::string& path) {
    DWORD code = GetLastError();
    tdm_status status = (code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND)
                            ? TDM_ERR_NOT_FOUND
                            : TDM_ERR_IO;
    fail(status, "cannot " + what + " '" + path + "' (Windows error " + std::to_string(code) + ")");
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
    // std::filesystem::path turns the UTF-8 string into the wide path the W API wants.
    const std::filesystem::path wide = std::filesystem::u8path(path);
    HANDLE file = CreateFileW(wide.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL, nullptr);
    if (file == INVALID_HANDLE_VALUE) fail_windows("open", path);
    LARGE_INTEGER size{};
    if (!GetFileSizeEx(file, &size)) {
        CloseHandle(file);
        fail_windows("get the size of", path);
    }
    size_ = static_cast<size_t>(size.QuadPart);
    if (size_ ==
        0) {  // a zero-length mapping is an error on Windows; an empty file maps to nothing
        CloseHandle(file);
        return;
    }
    HANDLE mapping = CreateFileMappingW(file, nullptr, PAGE_READONLY, 0, 0, nullptr);
    CloseHandle(file);  // the mapping object keeps the file open
    if (mapping == nullptr) fail_windows("map", path);
    void* view = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
    if (view == nullptr) {
        CloseHandle(mapping);
        fail_windows("map a view of", path);
    }
    mapping_handle_ = mapping;
    data_ = static_cast<const uint8_t*>(view);
}

void MappedFile::release() noexcept {
    if (data_ != nullptr) UnmapViewOfFile(data_);
    if (mapping_handle_ != nullptr) CloseHandle(static_cast<HANDLE>(mapping_handle_));
    data_ = nullptr;
    mapping_handle_ = nullptr;
    size_ = 0;
}

void MappedFile::advise(Access access, size_t offset, size_t length) const {
    if (access != Access::WillNeed || data_ == nullptr || offset >= size_) return;
    WIN32_MEMORY_RANGE_ENTRY range;
    range.VirtualAddress = const_cast<uint8_t*>(data_) + offset;
    range.NumberOfBytes = std::min(length, size_ - offset);
    PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0);
}

#else  // POSIX

namespace {

std::string errno_text(int code) { return std::strerror(code); }

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int code = errno;
        fail(code == ENOENT ? TDM_ERR_NOT_FOUND : TDM_ERR_IO,
             "cannot open '" + path + "': " + errno_text(code));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int code = errno;
        ::close(fd);
        fail(TDM_ERR_IO, "cannot stat '" + path + "': " + errno_text(code));
    }
    // A directory opens fine with O_RDONLY and only fails later in mmap with a puzzling ENODEV.
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(TDM_ERR_IO, "cannot map '" + path + "': not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) {  // mmap of length 0 is EINVAL; an empty file maps to nothing
        ::close(fd);
        return;
    }
    // MAP_PRIVATE + PROT_READ: pages come from the page cache and are shared with every other
    // reader of the file; nothing is ever written back.
    void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int code = errno;
    ::close(fd);  // the mapping keeps its own reference to the file
    if (addr == MAP_FAILED) {
        size_ = 0;
        fail(TDM_ERR_IO, "cannot mmap '" + path + "' (" + std::to_string(st.st_size) +
                             " bytes): " + errno_text(code));
    }
    data_ = static_cast<const uint8_t*>(addr);
}

void MappedFile::release() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

void MappedFile::advise(Access access, size_t offset, size_t length) const {
    if (data_ == nullptr || offset >= size_) return;
    int advice = MADV_NORMAL;
    switch (access) {
        case Access::Normal: advice = MADV_NORMAL; break;
        case Access::Sequential: advice = MADV_SEQUENTIAL; break;
        case Access::Random: advice = MADV_RANDOM; break;
        case Access::WillNeed: advice = MADV_WILLNEED; break;
    }
    // madvise wants a page-aligned start; the mapping itself is page-aligned, so round the offset
    // down to a page boundary and widen the length by what was added.
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t start = offset - offset % page;
    const size_t end = (length >= size_ - offset) ? size_ : offset + length;
    ::madvise(const_cast<uint8_t*>(data_) + start, end - start, advice);
}

#endif

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_))
#ifdef _WIN32
      ,
      mapping_handle_(std::exchange(other.mapping_handle_, nullptr))
#endif
{
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        path_ = std::move(other.path_);
#ifdef _WIN32
        mapping_handle_ = std::exchange(other.mapping_handle_, nullptr);
#endif
    }
    return *this;
}

}  // namespace tdm
