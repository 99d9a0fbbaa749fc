// tdm_session_options as the core uses it, shared by sessions and pairs (each of whose two
// sessions takes the same options).
#pragma once

#include "model/session.h"
#include "tandem.h"

namespace tdm::capi {

// Reads the caller's options up to their struct_size (NULL = defaults) and checks them.
SessionConfig read_session_config(const tdm_session_options* options);

}  // namespace tdm::capi
