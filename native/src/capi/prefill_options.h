// tdm_prefill_options as the core uses it: read up to the caller's struct_size, every knob checked
// with a clear message, and the block-sparse settings resolved for a model (the XAttention
// threshold of each layer and head).
#pragma once

#include <functional>

#include "model/model.h"
#include "model/session.h"
#include "tandem.h"

namespace tdm::capi {

// The library's defaults (what tdm_prefill_options_init writes).
void default_prefill_options(tdm_prefill_options* options);

// Reads and validates the caller's options (NULL = defaults). Checks every field the chosen
// method uses: block size 64 or 128, a stride that divides it, thresholds >= 0 and finite (>= 1
// means every causal block), gamma in (0, 1], tau >= 0, max budget 0 or >= min budget, known
// compatibility flags.
tdm_prefill_options read_prefill_options(const tdm_prefill_options* given);

// The attention of a prefill for `model`: the settings plus the [layers * heads] XAttention
// threshold table (the caller's, checked entry by entry, or the scalar everywhere).
PrefillAttention prefill_attention(const tdm_prefill_options& options, const ModelConfig& config);

// The abort callback as the session polls it (empty when none).
std::function<bool()> abort_check(const tdm_prefill_options& options);

}  // namespace tdm::capi
