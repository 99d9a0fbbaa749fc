#include "attention/cuda_flash_loop.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "attention/cuda_kv_tensor_map.h"
#include "core/error.h"

namespace tdm::cuda {

bool wgmma_prefill_supports(const AttentionArgs& a) {
    return flash_prefill_supports(a) && a.window == 0 &&
           kv_tensor_map_supports(a.k_cache, a.capacity, a.head_dim) &&
           kv_tensor_map_supports(a.v_cache, a.capacity, a.head_dim);
}

bool runs_wgmma(const AttentionArgs& args, FlashLoop loop, const char* caller) {
    if (loop == FlashLoop::kMmaSync) return false;
    if (loop == FlashLoop::kWgmma) {
        TDM_REQUIRE(wgmma_prefill_supports(args), TDM_ERR_UNSUPPORTED,
                    std::string(caller) +
                        ": the wgmma loop needs head_dim 64 or 128, no sliding window and a "
                        "16-byte aligned cache");
        return true;
    }
    static const bool forced_mma = [] {
        const char* v = std::getenv("TANDEM_FLASH_LOOP");
        return v != nullptr && std::strcmp(v, "mma") == 0;
    }();
    return !forced_mma && wgmma_prefill_supports(args);
}

KvTensorMaps kv_tensor_maps(const AttentionArgs& a) {
    const int64_t valid = a.pos0 + a.n_new;
    return {make_kv_tensor_map(a.k_cache, a.kv_heads, a.capacity, a.head_dim, valid),
            make_kv_tensor_map(a.v_cache, a.kv_heads, a.capacity, a.head_dim, valid)};
}

}  // namespace tdm::cuda
