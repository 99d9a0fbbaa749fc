// The one wrapper every extern "C" body runs in: it turns any exception into a tdm_status and
// the thread-local last-error message, so nothing ever unwinds across the C ABI.
#pragma once

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "core/error.h"
#include "tandem.h"

namespace tdm::capi {

void set_last_error(const std::string& message);
const char* last_error();

template <typename F>
tdm_status guarded(F&& body) noexcept {
    try {
        body();
        return TDM_OK;
    } catch (const Error& e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc&) {
        set_last_error("out of memory");
        return TDM_ERR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        set_last_error(std::string("internal error: ") + e.what());
        return TDM_ERR_INTERNAL;
    } catch (...) {
        set_last_error("internal error: unknown exception");
        return TDM_ERR_INTERNAL;
    }
}

// Argument checks shared by the bodies.
inline void require_not_null(const void* p, const char* name) {
    TDM_REQUIRE(p != nullptr, TDM_ERR_INVALID_ARGUMENT, std::string(name) + " is NULL");
}

// Options structs are read only up to the caller's struct_size: fields appended later keep their
// defaults for older callers. `defaults` must already hold the library's defaults.
template <typename T>
T read_options(const T* given, T defaults, const char* name) {
    if (given == nullptr) return defaults;
    TDM_REQUIRE(given->struct_size >= sizeof(uint32_t), TDM_ERR_INVALID_ARGUMENT,
                std::string(name) + ".struct_size is " + std::to_string(given->struct_size) +
                    "; initialise it with " + name + "_init()");
    size_t n = given->struct_size < sizeof(T) ? given->struct_size : sizeof(T);
    std::memcpy(static_cast<void*>(&defaults), given, n);
    defaults.struct_size = sizeof(T);
    return defaults;
}

// Output structs are written only up to the caller's struct_size (0 = the caller's struct is ours),
// so a caller compiled against an older, shorter struct is never overrun.
template <typename T>
void write_output(T* out, const T& value) {
    uint32_t n = out->struct_size >= sizeof(uint32_t) && out->struct_size < sizeof(T)
                     ? out->struct_size
                     : static_cast<uint32_t>(sizeof(T));
    std::memcpy(static_cast<void*>(out), &value, n);
    out->struct_size = n;
}

}  // namespace tdm::capi
