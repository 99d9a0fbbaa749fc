// A session: one growing sequence of tokens over a shared model, with its own KV cache, its own
// backend instance (threads or stream) and the logits of its last forward pass.
// Single-threaded: call it from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "decode/sampler.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace tdm {

struct SessionConfig {
    int64_t kv_capacity = 0;  // 0 = the model's context length
    int threads = 0;          // 0 = the model's default
    // Most rows one prefill forward pass takes (its activations scale with it); 0 = the backend's
    // choice (Backend::prefill_chunk_rows). Longer prompts run as several passes in one call.
    int64_t prefill_chunk = 0;
};

// The attention of a prefill: dense, or block-sparse with its settings (tdm_prefill_options,
// already validated) and the XAttention threshold of every layer and query head.
struct PrefillAttention {
    SparseAttention settings;              // settings.xattn_threshold is unused
    std::vector<float> xattn_thresholds;   // [layers * heads]; only read for XAttention
};

class Session {
public:
    Session(std::shared_ptr<const Model> model, const SessionConfig& config);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Appends tokens and runs them as batches of at most the backend's prefill chunk
    // (Backend::prefill_chunk_rows: kPrefillChunk on the CPU, thousands of rows on a GPU). Keeps the logits of
    // the last token, or of every new token with all_logits. On any failure or abort the session
    // is rolled back to its length before the call (the held logits are then dropped).
    // `attention` (null = dense) chooses block-sparse attention for every chunk; decode is dense.
    void prefill(const int32_t* tokens, int64_t n, bool all_logits,
                 const std::function<bool()>& abort = {},
                 const PrefillAttention* attention = nullptr);
    void decode(int32_t token) { run(&token, 1, false, {}, nullptr, /*record_density=*/false); }
    void truncate(int64_t n);

    int64_t length() const { return length_; }
    // The context limit: the smaller of the KV capacity and max_position_embeddings.
    int64_t capacity() const { return capacity_; }
    int64_t logit_rows() const { return logit_rows_; }
    int64_t vocab() const;
    // Logit row r (0 = oldest held row), host memory, valid until the next forward or truncate.
    // On a GPU the rows are copied to the host here, on first request, not by every forward.
    const float* logits(int64_t row) const;

    // sampler.sample() on the last held logit row, with its stats (when not NULL). On a GPU the
    // row is summarised where it lives (decode/candidate_sampling.h) and only the chosen token
    // and the stats come back; the whole row is copied only when the summary cannot decide.
    int32_t sample(Sampler& sampler, tdm_token_stats* stats);

    // Rows per prefill forward pass, once the first forward has sized the workspace (0 before).
    int64_t prefill_chunk_rows() const { return workspace_ ? workspace_->rows : 0; }
    const Model& model() const { return *model_; }
    const Backend& backend() const { return *backend_; }

    // The attention density of the last successful prefill (decode steps do not count): for each
    // layer and query head, row-major by layer, the fraction of causal (query block, key block)
    // pairs computed, 1 for dense. Chunks are weighted by their causal block pairs. Empty before
    // the first prefill.
    const std::vector<float>& attention_density() const { return density_; }

    // Prefill batches: large enough for matrix-matrix speed, small enough to bound activations.
    static constexpr int64_t kPrefillChunk = 512;

private:
    void run(const int32_t* tokens, int64_t n, bool all_logits, const std::function<bool()>& abort,
             const PrefillAttention* attention, bool record_density);
    void check_tokens(const int32_t* tokens, int64_t n) const;
    std::string context_limit_reason() const;

    std::shared_ptr<const Model> model_;
    std::unique_ptr<Backend> backend_;
    KVCache cache_;
    std::unique_ptr<Workspace> workspace_;  // created on first use
    int64_t capacity_;
    bool capacity_from_kv_;                 // true when the KV capacity is the binding limit
    int64_t length_ = 0;
    // Copies the held rows still only in the workspace to logits_ (no-op when none are).
    void copy_logits_to_host() const;

    mutable std::vector<float> logits_;     // (logit_rows_, vocab), host copy, filled lazily
    int64_t logit_rows_ = 0;
    // The last device_rows_ held rows are still in workspace_->logits (until the next forward);
    // host_pending_ says whether logits_ lacks them yet.
    int64_t device_rows_ = 0;
    mutable bool host_pending_ = false;
    int64_t prefill_chunk_ = 0;             // SessionConfig::prefill_chunk
    std::vector<float> density_;            // (layers, heads) of the last prefill
    // Changes whenever the cache or the logits buffer moves: the shape of a recorded decode step.
    uint64_t buffers_generation_ = 0;

public:
    // Row-level access for speculative decoding on summaries (decode/pair_speculative.cpp), so
    // that a GPU round moves a few hundred bytes per row instead of the vocabulary.

    // Summarises held logit row `row` where it lives (Backend::summarize_logits: `want` ranked
    // candidates, the tempered sum at `temperature`). False where the backend has no summary (the
    // CPU: read logits(row)), the row is no longer on the device, or it is invalid (NaN, +inf,
    // all -inf: the host path reports the index).
    bool summarize_row(int64_t row, int want, float temperature, LogitSummary* out) const;
    // Logit `id` of held row `row`, copying one float (not the rows) when it is on the device.
    float logit_at(int64_t row, int64_t id) const;
    // Copies held row `row` (vocab floats) to dst: that row only.
    void copy_row(int64_t row, float* dst) const;
    // Keeps a copy of held row `row` in stash slot `slot` (device memory, grown on demand), which
    // survives later forwards and truncation until the slot is written again: a draft's row that
    // the verification may need whole after the next drafts have replaced the logits. False
    // (nothing kept) when the row is only on the host (an earlier prefill chunk's row).
    bool stash_row(int64_t row, int64_t slot);
    // Copies stash slot `slot` (vocab floats) to dst.
    void copy_stashed_row(int64_t slot, float* dst) const;
    // Logit `id` of stash slot `slot` (one float).
    float stashed_logit(int64_t slot, int64_t id) const;

    // Draws on the device the token Sampler step 8 gives for uniform `u` from held row `row`
    // under a pure-temperature warp (warp.max_logit, warp.z_total at `temperature`; warp.logits
    // is ignored): RowDraw::Order::kRank, for draws that run past the row's summary. nullopt
    // where the backend has no such path or the row is only on the host.
    std::optional<int32_t> draw_row(int64_t row, float temperature, WarpedLogits warp,
                                    double u) const;
    // Draws on the device speculative verification's emitted token (RowDraw::Order::kId): the
    // residual of held row `row` (warp p) minus stash slot `slot` of `draft` (warp q), or the
    // bonus draw from row `row` alone when draft is null. nullopt where either row is not in
    // device memory this session's backend can read.
    std::optional<int32_t> draw_residual(int64_t row, WarpedLogits p, const Session* draft,
                                         int64_t slot, WarpedLogits q, float temperature,
                                         double u) const;

private:
    // Runs `d` (its rows set) on the backend at `temperature` and uniform `u`; nullopt where the
    // backend has no whole-row draw.
    std::optional<int32_t> draw(RowDraw d, float temperature, double u) const;
    // Where held row `row` is in the workspace, or null when it is only on the host.
    const float* device_row(int64_t row) const;
    void check_row(int64_t row) const;

    // Device rows owned through the session's backend (released before the backend goes).
    struct RowStash {
        Backend* backend = nullptr;
        float* data = nullptr;
        int64_t rows = 0;
        RowStash() = default;
        RowStash(const RowStash&) = delete;
        RowStash& operator=(const RowStash&) = delete;
        ~RowStash() {
            if (data != nullptr) backend->release(data);
        }
    };
    RowStash stash_;
};

}  // namespace tdm
