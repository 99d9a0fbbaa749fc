#include "kernels/cpu/scratch.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace tdm::cpu {
namespace {

struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
};

}  // namespace

void* thread_scratch(ScratchSlot slot, size_t bytes) {
    thread_local Buffer buffers[static_cast<int>(ScratchSlot::Count)];
    Buffer& b = buffers[static_cast<int>(slot)];
    if (bytes <= b.size) return b.data;  // (nullptr for 0 bytes before any allocation)
    // Grow by half again so that a slowly growing size (a KV length) does not reallocate each time.
    size_t want = (std::max(bytes, b.size + b.size / 2) + 4095) / 4096 * 4096;
    std::free(b.data);
    b.data = std::aligned_alloc(64, want);
    b.size = b.data ? want : 0;
    TDM_REQUIRE(b.data != nullptr, TDM_ERR_OUT_OF_MEMORY,
                "cannot allocate " + std::to_string(want) + " bytes of kernel scratch");
    return b.data;
}

}  // namespace tdm::cpu
