// The operations a transformer forward pass needs, as one small interface per device.
//
// model/forward.cpp is written once against this interface; the CPU backend (cpu_backend.cpp)
// runs the kernels in kernels/cpu/ on a thread pool, and the CUDA backend (next) runs its own
// kernels on a stream. All activation pointers are device pointers of the backend (host memory for
// the CPU). Weights are MatrixView/VectorView into memory the model prepared for this device.
//
// A backend instance belongs to one session (it owns that session's threads or stream), so it is
// used from one thread at a time; the model's weights are shared read-only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/error.h"
#include "core/tensor.h"
#include "tandem.h"

namespace tdm {

// Shape of one attention call; see kernels/cpu/kernels.h for the meaning of each field.
struct AttentionCall {
    int64_t n_new;      // queries in this call, at positions pos0 .. pos0 + n_new - 1
    int64_t pos0;
    int64_t capacity;   // positions the KV cache of one layer can hold
    int32_t heads, kv_heads, head_dim;
    int32_t window;     // sliding window (0 = none)
    float scale;
};

// Where attention_inputs puts the new keys and values: RoPE at positions pos0.. with the model's
// inverse frequencies (host memory), appended to one layer's caches.
struct RopeAppend {
    int64_t pos0 = 0;
    const float* inv_freq_host = nullptr;
    int32_t heads = 0, kv_heads = 0, head_dim = 0;
    int64_t capacity = 0;
    void* k_cache = nullptr;
    void* v_cache = nullptr;
};

// Block-sparse settings of one layer's prefill attention, resolved from tdm_prefill_options.
struct SparseAttention {
    tdm_attention method = TDM_ATTENTION_DENSE;
    int32_t block_size = 128;           // B: 64 or 128
    int32_t xattn_stride = 8;           // S, divides B
    const float* xattn_threshold = nullptr;  // [heads] for this layer, host memory
    float flex_gamma = 0.95f;
    float flex_tau = 0.1f;
    int64_t flex_min_budget = 1024;     // tokens
    int64_t flex_max_budget = 0;        // tokens; 0 = no cap
    uint32_t compat = 0;                // tdm_sparse_compat flags
    // XAttention scores from fp8 E4M3 copies of Q and K (attention/fp8_e4m3.h: a power-of-two
    // scale per head, then round to nearest even), the same values on every backend.
    bool xattn_fp8 = false;
};

// A logits row summarised where it lives (Backend::summarize_logits): what the token statistics
// (uncertainty/token_stats.h) and the sampler (decode/candidate_sampling.h) need from the row
// when the top of the distribution decides, so a GPU session need not copy the whole row.
struct LogitSummary {
    int32_t count = 0;               // ranked entries below: min(want, vocab)
    int32_t ids[TDM_MAX_TOP_K];      // best first: logit descending, then the lower id
    float logits[TDM_MAX_TOP_K];
    int64_t candidates = 0;          // logits > -inf
    int64_t invalid_index = -1;      // lowest index holding NaN or +inf; -1 if none
    double rest = 0;      // sum over j != argmax with z_j > -inf of exp(z_j - zmax)
    double tilt = 0;      // sum over the same j of exp(z_j - zmax) * (z_j - zmax)   (<= 0)
    double tempered = 0;  // sum over every z_j > -inf of exp((z_j - zmax) / T) (0 when T == 0)
};

// One token drawn by inverse CDF from whole logits rows where they live
// (Backend::draw_from_logits): the draws a LogitSummary cannot decide, i.e. pure-temperature
// warps on flat rows whose draw runs past the summary's ranked list (decode/candidate_sampling.h,
// decode/summary_verify.h). A row's warp is w = exp((double(z) - max_logit) / temperature) over
// every z > -inf, normalised by z_total (the summary's tempered sum); rows must be valid (no NaN
// or +inf: the summary checked).
struct WarpedLogits {
    const float* logits = nullptr;  // device memory, vocab floats; null: absent
    double max_logit = 0.0;
    double z_total = 1.0;
};
struct RowDraw {
    enum class Order {
        // Sampler step 8 on p: walk w in rank order (logit descending, then id ascending) and
        // return the first token whose cumulative weight exceeds u * z_total.
        kRank,
        // Speculative verification's emitted token: walk max(0, P - Q) in ascending id order,
        // where P and Q are the float probabilities Sampler::probabilities writes
        // (float(w / z_total); Q = 0 when q is absent: the bonus draw from p); where that has no
        // mass (rounding, see verify_sampled), P itself.
        kId,
    };
    Order order = Order::kRank;
    int64_t vocab = 0;
    float temperature = 1.0f;  // > 0
    WarpedLogits p, q;
    double u = 0.0;            // the uniform, in [0, 1)
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual tdm_device device() const = 0;

    // Device memory for activations and caches, zero-initialised. Freed with release().
    virtual float* allocate(int64_t floats) = 0;
    virtual void release(float* p) = 0;

    // out[r, :] = table[tokens[r], :] as f32 (tokens are host ids, already range-checked).
    virtual void embed(const int32_t* tokens, int64_t n, const MatrixView& table, float* out) = 0;
    virtual void rmsnorm(const float* x, const VectorView& w, float eps, int64_t rows, int64_t n,
                         float* out) = 0;
    // y[M, W.rows] = x[M, W.cols] W^T + bias
    virtual void matmul(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                        const VectorView& bias, float* y, int64_t ldy) = 0;
    // In place on x [rows, heads, head_dim] at positions pos0 + r.
    virtual void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                      const float* inv_freq_host) = 0;
    // Bytes of one KV-cache element: the CPU keeps the cache in f32, the CUDA backend in bf16
    // (half the bytes every decode step reads; its attention kernels run on bf16 operands anyway).
    // Cache pointers are therefore untyped; allocate() buffers hold them (rounded up to floats).
    virtual int64_t kv_element_bytes() const { return int64_t(sizeof(float)); }
    // Rows per prefill chunk (Session) when a row of work needs `floats_per_row` floats of
    // workspace. Each chunk is one forward call, and block-sparse attention estimates each chunk
    // on its own. The CPU keeps 512-row batches (cache-sized); a GPU prefers few large chunks.
    virtual int64_t prefill_chunk_rows(int64_t floats_per_row) const {
        (void)floats_per_row;
        return 512;
    }
    // Copies k, v [n, kv_heads, head_dim] (f32) into the layer's caches
    // [kv_heads, capacity, head_dim] (kv_element_bytes() each) at positions pos0 .. pos0 + n - 1.
    virtual void kv_store(const float* k, const float* v, int64_t n, int64_t pos0,
                          int64_t capacity, int32_t kv_heads, int32_t head_dim, void* k_cache,
                          void* v_cache) = 0;
    virtual void attention(const float* q, const void* k_cache, const void* v_cache,
                           const AttentionCall& call, float* out) = 0;
    // Block-sparse prefill attention (ALGORITHMS.md 3 and 4): estimates which key blocks matter
    // for each (query head, query block), selects them (attention/block_plan.h) and computes
    // attention over those blocks only. density_host[heads] (host memory) receives, per query
    // head, the fraction of causal blocks computed; the backend may write it asynchronously, so
    // it is read only after the forward pass has finished (after to_host). Layers with a sliding
    // window and calls too short for the method run dense (density 1).
    virtual void attention_sparse(const float* q, const void* k_cache, const void* v_cache,
                                  const AttentionCall& call, const SparseAttention& sparse,
                                  float* out, float* density_host) {
        (void)q, (void)k_cache, (void)v_cache, (void)call, (void)sparse, (void)out, (void)density_host;
        fail(TDM_ERR_UNSUPPORTED, "block-sparse attention is not available on this backend");
    }
    virtual void swiglu(const float* gate, const float* up, int64_t rows, int64_t n, int64_t ld,
                        float* out) = 0;
    virtual void add_inplace(float* y, const float* x, int64_t n) = 0;

    // --- Fusions. Each default composes the primitives above, so the CPU (which gains nothing
    // from them) runs exactly what it always ran; a GPU overrides them to save launches and
    // passes over memory, which is what bounds a decode step. ---

    // Every projection of the same layer input: projections[i].y = in W_i^T + b_i, where the
    // input is in.x or, with in.norm set, rmsnorm(in.x) * in.norm (the sub-layer's norm).
    virtual void matmul_many(const LayerInput& in, const Projection* projections, int count) {
        const float* x = normed(in, projections[0].weight.cols);
        const int64_t ldx = in.norm.empty() ? in.ldx : projections[0].weight.cols;
        for (int i = 0; i < count; ++i) {
            const Projection& p = projections[i];
            matmul(x, in.M, ldx, p.weight, p.bias, p.y, p.ldy);
        }
    }
    // The MLP's first half: out = silu(in Wg^T + bg) * (in Wu^T + bu), dense [M, Wg.rows]; gate and
    // up are [M, Wg.rows] workspace the backend may use (their contents afterwards are unspecified).
    virtual void gated_up(const LayerInput& in, const MatrixView& w_gate, const VectorView& b_gate,
                          const MatrixView& w_up, const VectorView& b_up, float* gate, float* up,
                          float* out) {
        const int64_t n = w_gate.rows;
        const float* x = normed(in, w_gate.cols);
        const int64_t ldx = in.norm.empty() ? in.ldx : w_gate.cols;
        matmul(x, in.M, ldx, w_gate, b_gate, gate, n);
        matmul(x, in.M, ldx, w_up, b_up, up, n);
        swiglu(gate, up, in.M, n, n, out);
    }
    // The residual add folded into a projection: y += x W^T + bias (y dense [M, W.rows]);
    // `scratch` [M, W.rows] is workspace the backend may use.
    virtual void matmul_accumulate(const float* x, int64_t M, int64_t ldx, const MatrixView& W,
                                   const VectorView& bias, float* y, float* scratch) {
        matmul(x, M, ldx, W, bias, scratch, W.rows);
        add_inplace(y, scratch, M * W.rows);
    }
    // The attention sub-layer's inputs: q, k, v = projections of `in` (qkv[0..2], dense rows of
    // heads * D, kv_heads * D, kv_heads * D), RoPE on q and k at positions r.pos0 + m, and k, v
    // appended to the layer's caches there (as kv_store). qkv[0].y receives the rotated queries;
    // qkv[1].y and qkv[2].y are workspace (contents unspecified afterwards).
    virtual void attention_inputs(const LayerInput& in, const Projection (&qkv)[3],
                                  const RopeAppend& r) {
        matmul_many(in, qkv, 3);
        rope(qkv[0].y, in.M, r.heads, r.head_dim, r.pos0, r.inv_freq_host);
        rope(qkv[1].y, in.M, r.kv_heads, r.head_dim, r.pos0, r.inv_freq_host);
        kv_store(qkv[1].y, qkv[2].y, in.M, r.pos0, r.capacity, r.kv_heads, r.head_dim, r.k_cache,
                 r.v_cache);
    }

    // --- Decode steps. ---

    // Runs one decode step: `enqueue` enqueues the forward pass of `token` at position `pos`
    // (with the same token and position it is called with). A GPU backend records that work once
    // as a graph and replays it for later steps, taking the token and the position from device
    // memory; `shape` must change whenever anything else the recorded work depends on changes
    // (buffer addresses, cache capacity, model). Returns what enqueue returned (false: aborted),
    // or true for a replay. The default runs enqueue.
    virtual bool decode_step(int32_t token, int64_t pos, uint64_t shape,
                             const std::function<bool()>& enqueue) {
        (void)token, (void)pos, (void)shape;
        return enqueue();
    }
    // Decode steps replayed from a recorded graph so far (0 where there are none): lets tests and
    // benchmarks see that the graph path is the one running.
    virtual int64_t graph_replays() const { return 0; }

    // dst[0..bytes) = src[0..bytes), both device memory.
    virtual void copy(void* dst, const void* src, int64_t bytes) = 0;
    // Copies device floats to host memory (a plain copy on the CPU).
    virtual void to_host(const float* device_src, int64_t floats, float* host_dst) = 0;
    // Summarises logits[0..vocab) (device memory) into *out with `want` ranked candidates
    // (1 <= want <= TDM_MAX_TOP_K) and the tempered sum at `temperature` (>= 0), waiting for the
    // result. Returns false where the backend has no such path (the CPU: its logits already are
    // host memory, and the caller works on them directly).
    virtual bool summarize_logits(const float* logits, int64_t vocab, int want, float temperature,
                                  LogitSummary* out) {
        (void)logits, (void)vocab, (void)want, (void)temperature, (void)out;
        return false;
    }

    // Draws one token from whole rows of this backend's device memory (RowDraw) and waits for it.
    // False where the backend has no such path (the CPU: its rows already are host memory).
    virtual bool draw_from_logits(const RowDraw& draw, int32_t* token) {
        (void)draw, (void)token;
        return false;
    }
    // Whether this backend's kernels can read `other`'s device memory (the same GPU).
    virtual bool shares_memory_with(const Backend& other) const { return &other == this; }
    // Waits for the work enqueued so far: another backend is about to read this one's memory.
    virtual void synchronize() {}

protected:
    // The layer input as a dense [M, K] matrix: in.x itself, or its norm written to in.scratch.
    const float* normed(const LayerInput& in, int64_t K) {
        if (in.norm.empty()) return in.x;
        TDM_REQUIRE(in.ldx == K && in.scratch != nullptr, TDM_ERR_INTERNAL,
                    "a normed layer input needs dense rows and a scratch buffer");
        rmsnorm(in.x, in.norm, in.eps, in.M, K, in.scratch);
        return in.scratch;
    }
};

// The CPU backend with its own pool of `threads` threads (<= 0: one per hardware thread).
std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace tdm
