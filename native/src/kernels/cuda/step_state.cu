// The scalars of one decode step in device memory, written by a one-thread kernel: ordered on the
// stream like every other launch, with no staging of host memory, so the host can write the next
// step's values while the GPU still runs the previous step.
#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/kernels.h"

namespace tdm::cuda {
namespace {

__global__ void write_step_state_kernel(StepState* state, int32_t token, int64_t pos) {
    state->token = token;
    state->pos = pos;
}

}  // namespace

void write_step_state(StepState* state, int32_t token, int64_t pos, cudaStream_t stream) {
    TDM_REQUIRE(state != nullptr && pos >= 0 && token >= 0, TDM_ERR_INVALID_ARGUMENT,
                "write_step_state: null state or negative token/position");
    write_step_state_kernel<<<1, 1, 0, stream>>>(state, token, pos);
    TDM_CUDA_CHECK_LAUNCH("write_step_state_kernel");
}

}  // namespace tdm::cuda
