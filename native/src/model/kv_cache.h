// The KV cache of one session: for every layer, keys and values of every position so far, laid
// out [kv_heads, positions, head_dim] so that one head's keys are contiguous for attention.
//
// Memory grows on demand (doubling, up to the session's capacity), so a session created with a
// large capacity costs nothing until it is used; growing re-lays out the positions held.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace tdm {

class KVCache {
public:
    KVCache(int32_t layers, int32_t kv_heads, int32_t head_dim, int64_t capacity);
    ~KVCache();
    KVCache(const KVCache&) = delete;
    KVCache& operator=(const KVCache&) = delete;

    // Makes room for `positions` positions (<= capacity), keeping the first `keep` positions.
    void reserve(Backend& backend, int64_t positions, int64_t keep);

    int64_t capacity() const { return capacity_; }   // the most positions it may ever hold
    int64_t allocated() const { return allocated_; } // positions the buffers hold now
    // Untyped: elements of the backend's kv_element_bytes() (f32 on the CPU, bf16 on CUDA).
    void* keys(int32_t layer) { return keys_[layer]; }
    void* values(int32_t layer) { return values_[layer]; }

    void release(Backend& backend);

private:
    int32_t layers_, kv_heads_, head_dim_;
    int64_t capacity_;
    int64_t allocated_ = 0;
    std::vector<float*> keys_, values_;  // allocate() buffers holding the elements
};

}  // namespace tdm
