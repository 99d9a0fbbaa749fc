// Last-error storage and status names.
#include "capi/guard.h"

namespace tdm::capi {
namespace {
thread_local std::string g_last_error;
}
void set_last_error(const std::string& message) { g_last_error = message; }
const char* last_error() { return g_last_error.c_str(); }
}  // namespace tdm::capi

extern "C" {

TDM_API const char* tdm_last_error(void) { return tdm::capi::last_error(); }

TDM_API const char* tdm_status_name(int32_t status) {
    switch (status) {
        case TDM_OK: return "TDM_OK";
        case TDM_ERR_INVALID_ARGUMENT: return "TDM_ERR_INVALID_ARGUMENT";
        case TDM_ERR_NOT_FOUND: return "TDM_ERR_NOT_FOUND";
        case TDM_ERR_IO: return "TDM_ERR_IO";
        case TDM_ERR_INVALID_MODEL: return "TDM_ERR_INVALID_MODEL";
        case TDM_ERR_UNSUPPORTED: return "TDM_ERR_UNSUPPORTED";
        case TDM_ERR_CONTEXT_FULL: return "TDM_ERR_CONTEXT_FULL";
        case TDM_ERR_TOKEN_OUT_OF_RANGE: return "TDM_ERR_TOKEN_OUT_OF_RANGE";
        case TDM_ERR_OUT_OF_MEMORY: return "TDM_ERR_OUT_OF_MEMORY";
        case TDM_ERR_BACKEND_UNAVAILABLE: return "TDM_ERR_BACKEND_UNAVAILABLE";
        case TDM_ERR_DEVICE: return "TDM_ERR_DEVICE";
        case TDM_ERR_CANCELLED: return "TDM_ERR_CANCELLED";
        case TDM_ERR_INVALID_STATE: return "TDM_ERR_INVALID_STATE";
        case TDM_ERR_INTERNAL: return "TDM_ERR_INTERNAL";
        case TDM_ERR_CALLBACK: return "TDM_ERR_CALLBACK";
        default: return "TDM_ERR_UNKNOWN";
    }
}

}  // extern "C"
