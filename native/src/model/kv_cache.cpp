#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace tdm {

KVCache::KVCache(int32_t layers, int32_t kv_heads, int32_t head_dim, int64_t capacity)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), capacity_(capacity),
      keys_(static_cast<size_t>(layers), nullptr), values_(static_cast<size_t>(layers), nullptr) {}

KVCache::~KVCache() = default;  // buffers are released by the session through its backend

void KVCache::release(Backend& backend) {
    for (auto& p : keys_) { if (p) backend.release(p); p = nullptr; }
    for (auto& p : values_) { if (p) backend.release(p); p = nullptr; }
    allocated_ = 0;
}

void KVCache::reserve(Backend& backend, int64_t positions, int64_t keep) {
    if (positions <= allocated_) return;
    TDM_REQUIRE(positions <= capacity_, TDM_ERR_CONTEXT_FULL, "KV cache capacity exceeded");
    int64_t grown = std::min(capacity_, std::max<int64_t>({positions, allocated_ * 2, 256}));
    const int64_t elem = backend.kv_element_bytes();
    const int64_t per_layer = static_cast<int64_t>(kv_heads_) * grown * head_dim_ * elem;
    const int64_t per_layer_floats = (per_layer + 3) / 4;  // allocate() counts floats
    for (int32_t l = 0; l < layers_; ++l) {
        for (auto* table : {&keys_, &values_}) {
            float* fresh = backend.allocate(per_layer_floats);
            float* old = (*table)[l];
            if (old) {
                // Re-lay out [kv_heads, allocated_, D] as [kv_heads, grown, D].
                auto* to = reinterpret_cast<char*>(fresh);
                const auto* from = reinterpret_cast<const char*>(old);
                for (int32_t h = 0; h < kv_heads_; ++h) {
                    backend.copy(to + static_cast<int64_t>(h) * grown * head_dim_ * elem,
                                 from + static_cast<int64_t>(h) * allocated_ * head_dim_ * elem,
                                 keep * head_dim_ * elem);
                }
                backend.release(old);
            }
            (*table)[l] = fresh;
        }
    }
    allocated_ = grown;
}

}  // namespace tdm
