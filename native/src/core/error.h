// Errors inside the core: thrown as tdm::Error (a status code plus a message), caught at the C ABI
// (src/capi/), which turns them into a tdm_status and the thread-local last-error message.
#pragma once

#include <stdexcept>
#include <string>

#include "tandem.h"

namespace tdm {

class Error : public std::runtime_error {
public:
    Error(tdm_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    tdm_status status() const noexcept { return status_; }

private:
    tdm_status status_;
};

[[noreturn]] inline void fail(tdm_status status, const std::string& message) {
    throw Error(status, message);
}

// TDM_REQUIRE(cond, status, message-expression): fail with status unless cond holds.
#define TDM_REQUIRE(cond, status, message)                                                        \
    do {                                                                                          \
        if (!(cond)) ::tdm::fail((status), (message));                                            \
    } while (0)

}  // namespace tdm
