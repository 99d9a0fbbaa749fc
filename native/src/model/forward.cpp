// The Llama-family forward pass, one screen per step, reading like the paper. The arithmetic lives
// in the backend's kernels; this file only says which happens in what order.
#include "model/forward.h"

#include <cmath>

namespace tdm {

Workspace::Workspace(Backend& backend, const ModelConfig& c, int64_t rows_)
    : rows(rows_), backend_(backend), vocab_(c.vocab_size) {
    const int64_t qd = c.q_dim(), kvd = c.kv_dim();
    x = backend.allocate(rows * c.hidden_size);
    h = backend.allocate(rows * c.hidden_size);
    q = backend.allocate(rows * qd);
    k = backend.allocate(rows * kvd);
    v = backend.allocate(rows * kvd);
    att = backend.allocate(rows * qd);
    proj = backend.allocate(rows * c.hidden_size);
    gate = backend.allocate(rows * c.intermediate_size);
    up = backend.allocate(rows * c.intermediate_size);
    act = backend.allocate(rows * c.intermediate_size);
    logits = nullptr;
    reserve_logit_rows(1);
}

void Workspace::reserve_logit_rows(int64_t wanted) {
    if (wanted <= logit_rows_) return;
    float* fresh = backend_.allocate(wanted * vocab_);
    if (logits) backend_.release(logits);
    logits = fresh;
    logit_rows_ = wanted;
}

Workspace::~Workspace() {
    for (float* p : {x, h, q, k, v, att, proj, gate, up, act, logits}) {
        if (p) backend_.release(p);
    }
}

bool forward(const Model& model, Backend& be, KVCache& cache, Workspace& ws, const int32_t* tokens,
             int64_t n, int64_t pos0, int64_t logit_rows, const std::function<bool()>& abort,
             const SparsePrefill* sparse) {
    const ModelConfig& c = model.config();
    const ModelWeights& w = model.weights();
    const int64_t dim = c.hidden_size, hid = c.intermediate_size, D = c.head_dim;
    const int64_t qd = c.q_dim(), kvd = c.kv_dim();
    const float* inv_freq = model.rope_inv_freq().data();

    // x = embedding rows of the tokens
    be.embed(tokens, n, w.embed, ws.x);

    for (size_t l = 0; l < w.layers.size(); ++l) {
        if (abort && abort()) return false;
        const LayerWeights& L = w.layers[l];

        // --- attention sub-layer: x += o_proj(attention(rope(q), rope(k), v)), q, k, v
        // projections of norm(x); rope(k) and v join the cache ---
        const LayerInput attn_in{ws.x, n, dim, L.attn_norm, float(c.rms_norm_eps), ws.h};
        const Projection qkv[] = {{L.wq, L.bq, ws.q, qd}, {L.wk, L.bk, ws.k, kvd},
                                  {L.wv, L.bv, ws.v, kvd}};
        const RopeAppend append{pos0,
                                inv_freq,
                                int32_t(c.num_attention_heads),
                                int32_t(c.num_key_value_heads),
                                int32_t(D),
                                cache.allocated(),
                                cache.keys(int32_t(l)),
                                cache.values(int32_t(l))};
        be.attention_inputs(attn_in, qkv, append);
        AttentionCall call{n,
                           pos0,
                           cache.allocated(),
                           int32_t(c.num_attention_heads),
                           int32_t(c.num_key_value_heads),
                           int32_t(D),
                           int32_t(c.window_for_layer(int64_t(l))),
                           1.0f / std::sqrt(float(D))};
        if (sparse) {  // block-sparse prefill: the backend estimates and selects the blocks
            SparseAttention layer = sparse->settings;
            layer.xattn_threshold = sparse->thresholds + l * call.heads;
            be.attention_sparse(ws.q, cache.keys(int32_t(l)), cache.values(int32_t(l)), call,
                                layer, ws.att, sparse->density + l * call.heads);
        } else {
            be.attention(ws.q, cache.keys(int32_t(l)), cache.values(int32_t(l)), call, ws.att);
        }
        be.matmul_accumulate(ws.att, n, qd, L.wo, L.bo, ws.x, ws.proj);

        // --- feed-forward sub-layer: x += down(silu(gate(h)) * up(h)), h = norm(x) ---
        const LayerInput mlp_in{ws.x, n, dim, L.mlp_norm, float(c.rms_norm_eps), ws.h};
        be.gated_up(mlp_in, L.w_gate, L.b_gate, L.w_up, L.b_up, ws.gate, ws.up, ws.act);
        be.matmul_accumulate(ws.act, n, hid, L.w_down, L.b_down, ws.x, ws.proj);
    }

    // logits = lm_head(norm(x)) for the rows asked for (usually only the last one)
    if (logit_rows > 0) {
        const LayerInput last{ws.x + (n - logit_rows) * dim, logit_rows, dim, w.final_norm,
                              float(c.rms_norm_eps), ws.h};
        const Projection head{w.lm_head, VectorView{}, ws.logits, c.vocab_size};
        be.matmul_many(last, &head, 1);
    }
    return true;
}

}  // namespace tdm
