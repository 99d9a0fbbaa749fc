// One forward pass of a Llama-family decoder over a batch of new tokens.
#pragma once

#include <cstdint>
#include <functional>

#include "backend/backend.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace tdm {

// Activation buffers for batches of up to `rows` tokens, on the backend's device.
class Workspace {
public:
    Workspace(Backend& backend, const ModelConfig& config, int64_t rows);
    ~Workspace();
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;

    int64_t rows;
    float* x;       // (rows, hidden)          the residual stream
    float* h;       // (rows, hidden)          normed input of a sub-layer
    float* q;       // (rows, heads * D)
    float* k;       // (rows, kv_heads * D)
    float* v;       // (rows, kv_heads * D)
    float* att;     // (rows, heads * D)       attention output before o_proj
    float* proj;    // (rows, hidden)          a sub-layer's output before the residual add
    float* gate;    // (rows, intermediate)
    float* up;      // (rows, intermediate)
    float* act;     // (rows, intermediate)    silu(gate) * up
    float* logits;  // (rows, vocab)

private:
    Backend& backend_;
};

// Runs tokens[0..n) at positions pos0..pos0+n-1 (n <= ws.rows), appending their keys and values to
// the cache (which must have room), and writes logits for the last `logit_rows` of them
// (0 <= logit_rows <= n) to ws.logits. `abort`, when set, is polled between layers; if it returns
// true the pass stops and returns false (the cache then holds garbage past pos0).
bool forward(const Model& model, Backend& backend, KVCache& cache, Workspace& ws,
             const int32_t* tokens, int64_t n, int64_t pos0, int64_t logit_rows,
             const std::function<bool()>& abort);

}  // namespace tdm
