// Per-thread scratch memory for the kernels' packed tiles and partial results: grown on demand,
// never shrunk, 64-byte aligned, reused by every later call on the same thread (the pool's
// workers live as long as the pool, so after the first call of a given size nothing is
// allocated on the hot path).
#pragma once

#include <cstddef>

namespace tdm::cpu {

enum class ScratchSlot : int {
    Kernel = 0,  // what one ISA kernel call uses on its thread
    Shared = 1,  // what a front end allocates on the calling thread and shares with the workers
    Count = 2,
};

// At least `bytes` bytes private to this thread and slot; valid until the next call with the
// same slot on this thread. Throws tdm::Error(TDM_ERR_OUT_OF_MEMORY) if it cannot be had.
void* thread_scratch(ScratchSlot slot, size_t bytes);

}  // namespace tdm::cpu
