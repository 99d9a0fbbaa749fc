// A decode step recorded once as a CUDA graph and replayed (Backend::decode_step on CUDA).
//
// A decode step of a 1B model is ~150 small launches; enqueued one by one, the host's launch cost
// (several microseconds each) exceeds the GPU's time for most of them. Replaying a recorded graph
// costs one launch. The recorded kernels read the step's token and position from device memory
// (cuda::StepState), so one graph serves every step of the same shape; a new shape (other buffers,
// a grown cache) runs one step eagerly - lazily sized scratch buffers settle there, and nothing
// may allocate while recording - then records anew.
//
// TANDEM_CUDA_GRAPH=0 in the environment turns recording off: every step then runs eagerly, with
// the same kernels and arguments (results are bit for bit the same either way).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>

namespace tdm::cuda {

class DecodeGraph {
public:
    DecodeGraph();
    ~DecodeGraph();
    DecodeGraph(const DecodeGraph&) = delete;
    DecodeGraph& operator=(const DecodeGraph&) = delete;

    // Runs `enqueue` (the step's launches on `stream`) eagerly, or records it and launches the
    // recording, or launches the recording of `shape` made earlier. Returns what enqueue returned,
    // or true for a replay.
    bool run(cudaStream_t stream, uint64_t shape, const std::function<bool()>& enqueue);

    bool enabled() const { return enabled_; }
    int64_t replays() const { return replays_; }

private:
    void reset();

    bool enabled_;
    bool have_warm_ = false;      // warm_shape_ ran eagerly once
    uint64_t warm_shape_ = 0;
    cudaGraphExec_t exec_ = nullptr;
    uint64_t exec_shape_ = 0;
    int64_t replays_ = 0;
};

}  // namespace tdm::cuda
