// The choice between the two tensor-core prefill loops (FlashLoop, cuda_attention.h) and what
// the wgmma loop's launches need from the host: the TMA maps of the K and V caches.
#pragma once

#include <cuda.h>

#include "attention/cuda_attention.h"

namespace tdm::cuda {

// Whether a call runs the wgmma loop: kAuto -> where it applies (unless TANDEM_FLASH_LOOP=mma);
// kWgmma where it does not throws TDM_ERR_UNSUPPORTED naming `caller`.
bool runs_wgmma(const AttentionArgs& args, FlashLoop loop, const char* caller);

struct KvTensorMaps {
    CUtensorMap k, v;
};
// Maps over the keys 0 .. pos0 + n_new - 1 of both caches (past them, tiles read zeros).
KvTensorMaps kv_tensor_maps(const AttentionArgs& args);

}  // namespace tdm::cuda
