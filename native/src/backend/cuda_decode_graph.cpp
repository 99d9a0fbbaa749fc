#include "backend/cuda_decode_graph.h"

#include <cstdlib>
#include <cstring>

#include "kernels/cuda/check.h"

namespace tdm::cuda {
namespace {

bool graphs_requested() {
    const char* v = std::getenv("TANDEM_CUDA_GRAPH");
    return v == nullptr || std::strcmp(v, "0") != 0;
}

// Destroys a captured graph (the executable copy outlives it).
struct GraphOwner {
    cudaGraph_t graph = nullptr;
    ~GraphOwner() {
        if (graph) (void)cudaGraphDestroy(graph);
    }
};

}  // namespace

DecodeGraph::DecodeGraph() : enabled_(graphs_requested()) {}

DecodeGraph::~DecodeGraph() { reset(); }

void DecodeGraph::reset() {
    if (exec_) (void)cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
}

bool DecodeGraph::run(cudaStream_t stream, uint64_t shape, const std::function<bool()>& enqueue) {
    if (!enabled_) return enqueue();
    if (exec_ && exec_shape_ == shape) {
        TDM_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
        ++replays_;
        return true;
    }
    if (!have_warm_ || warm_shape_ != shape) {
        reset();
        warm_shape_ = shape;
        have_warm_ = true;
        return enqueue();
    }

    // Thread-local capture mode: a call on this thread that cannot be recorded (an allocation, a
    // synchronisation) fails at once instead of being silently left out of the graph.
    TDM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    GraphOwner captured;
    bool completed = false;
    try {
        completed = enqueue();
    } catch (...) {
        (void)cudaStreamEndCapture(stream, &captured.graph);
        (void)cudaGetLastError();  // the invalidated capture's error is the one thrown above
        throw;
    }
    TDM_CUDA_CHECK(cudaStreamEndCapture(stream, &captured.graph));
    if (!completed) return false;  // aborted: nothing was enqueued for real
    cudaGraphExec_t exec = nullptr;
    TDM_CUDA_CHECK(cudaGraphInstantiateWithFlags(&exec, captured.graph, 0));
    exec_ = exec;
    exec_shape_ = shape;
    TDM_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
    ++replays_;
    return true;
}

}  // namespace tdm::cuda
