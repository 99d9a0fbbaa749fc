// Launch facts the runtime is slow to give (how many blocks or clusters of a kernel run at once,
// after lifting its shared-memory limit), asked once per kernel, key and device and remembered:
// the GEMV launchers size their grids from them on every call.
#pragma once

#include <cstdint>
#include <functional>

namespace tdm::cuda {

// compute(device) the first time (kernel, key) is asked on the calling thread's current device,
// its result from then on. compute runs under a lock; if it throws, nothing is remembered.
int remembered_launch_fit(const void* kernel, int64_t key,
                          const std::function<int(int device)>& compute);

// Blocks of `kernel` (`threads` a block, `smem` bytes of dynamic shared memory) resident at once
// on the whole of `device`: its SMs times the occupancy per SM.
int resident_blocks_on(int device, const void* kernel, int threads, size_t smem);

}  // namespace tdm::cuda
