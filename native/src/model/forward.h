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
    float* logits;  // (logit_rows, vocab)

    // Rows the logits buffer holds: 1 until a caller asks for the logits of every position. A
    // batch of 512 rows of a 128k vocabulary is 256 MB, which a generate call never needs.
    int64_t logit_rows() const { return logit_rows_; }
    void reserve_logit_rows(int64_t rows);

private:
    Backend& backend_;
    int64_t vocab_;
    int64_t logit_rows_ = 0;
};

// Block-sparse attention for one forward pass (ALGORITHMS.md 3 and 4): layer l runs
// Backend::attention_sparse with `settings`, its xattn_threshold pointing at row l of
// `thresholds` [layers * heads], and writes its per-head density to density + l * heads (host).
struct SparsePrefill {
    SparseAttention settings;  // method != TDM_ATTENTION_DENSE; settings.xattn_threshold unused
    const float* thresholds;   // [layers * heads]
    float* density;            // [layers * heads]
};

// Runs tokens[0..n) at positions pos0..pos0+n-1 (n <= ws.rows), appending their keys and values to
// the cache (which must have room), and writes logits for the last `logit_rows` of them
// (0 <= logit_rows <= min(n, ws.logit_rows())) to ws.logits. `abort`, when set, is polled between
// layers; if it returns true the pass stops and returns false (the cache then holds garbage past
// pos0).
bool forward(const Model& model, Backend& backend, KVCache& cache, Workspace& ws,
             const int32_t* tokens, int64_t n, int64_t pos0, int64_t logit_rows,
             const std::function<bool()>& abort, const SparsePrefill* sparse = nullptr);

}  // namespace tdm
