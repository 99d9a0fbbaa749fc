#include "model/session.h"

#include <algorithm>
#include <string>

#include "attention/block_grid.h"
#include "core/error.h"
#include "decode/candidate_sampling.h"
#include "uncertainty/token_stats.h"

#if defined(TANDEM_HAVE_CUDA)
#include "backend/cuda_backend.h"
#endif

namespace tdm {

namespace {
std::unique_ptr<Backend> make_backend(const Model& model, int threads) {
    switch (model.device()) {
        case TDM_DEVICE_CPU: return make_cpu_backend(threads);
#if defined(TANDEM_HAVE_CUDA)
        case TDM_DEVICE_CUDA: return make_cuda_backend(model.device_index());
#endif
        default: break;
    }
    fail(TDM_ERR_BACKEND_UNAVAILABLE, "no backend for this device in this build");
}
}  // namespace

Session::Session(std::shared_ptr<const Model> model, const SessionConfig& config)
    : model_(std::move(model)),
      backend_(make_backend(*model_, config.threads > 0 ? config.threads
                                                        : model_->default_threads())),
      cache_(int32_t(model_->config().num_hidden_layers),
             int32_t(model_->config().num_key_value_heads), int32_t(model_->config().head_dim),
             config.kv_capacity > 0
                 ? std::min<int64_t>(config.kv_capacity, model_->config().max_position_embeddings)
                 : model_->config().max_position_embeddings) {
    TDM_REQUIRE(config.kv_capacity >= 0, TDM_ERR_INVALID_ARGUMENT, "kv_capacity must be >= 0");
    TDM_REQUIRE(config.prefill_chunk >= 0, TDM_ERR_INVALID_ARGUMENT,
                "prefill_chunk must be >= 0");
    prefill_chunk_ = config.prefill_chunk;
    const int64_t max_pos = model_->config().max_position_embeddings;
    capacity_ = cache_.capacity();
    capacity_from_kv_ = config.kv_capacity > 0 && config.kv_capacity < max_pos;
}

Session::~Session() {
    workspace_.reset();
    cache_.release(*backend_);
}

int64_t Session::vocab() const { return model_->config().vocab_size; }

const float* Session::logits(int64_t row) const {
    TDM_REQUIRE(logit_rows_ > 0, TDM_ERR_INVALID_STATE,
                "the session holds no logits: run a prefill or decode first");
    TDM_REQUIRE(row >= 0 && row < logit_rows_, TDM_ERR_INVALID_ARGUMENT,
                "logit row " + std::to_string(row) + " out of range: the session holds " +
                    std::to_string(logit_rows_) + " row(s)");
    copy_logits_to_host();
    return logits_.data() + row * vocab();
}

void Session::copy_logits_to_host() const {
    if (!host_pending_) return;
    const int64_t V = vocab();
    const size_t old = logits_.size();
    logits_.resize(old + size_t(device_rows_ * V));
    backend_->to_host(workspace_->logits, device_rows_ * V, logits_.data() + old);
    host_pending_ = false;
}

int32_t Session::sample(Sampler& sampler, tdm_token_stats* stats) {
    TDM_REQUIRE(logit_rows_ > 0, TDM_ERR_INVALID_STATE,
                "the session holds no logits: run a prefill or decode first");
    const int64_t V = vocab();
    const int stats_k = int(std::min<int64_t>(sampler.options().stats_top_k, V));
    if (device_rows_ > 0) {
        const float* row = workspace_->logits + (device_rows_ - 1) * V;
        const float T = sampler.options().temperature;
        // A summary path is a device path: pure-temperature draws past the list go to draw_row.
        const int want = std::max(stats ? stats_k : 1,
                                  T == 0.0f ? 1 : summary_candidates_for(sampler, true));
        LogitSummary summary;
        // Bad rows (NaN, +inf, all -inf) go to the host path below, which names the index.
        if (backend_->summarize_logits(row, V, want, T, &summary) && summary.invalid_index < 0 &&
            summary.candidates > 0) {
            if (stats) {
                token_stats_from_parts(summary.ids, summary.logits, stats_k, summary.rest,
                                       summary.tilt, V, stats);
            }
            const int64_t last = logit_rows_ - 1;
            const auto whole_row = [&](const SummaryWarp& w, double u) {
                return draw_row(last, T, WarpedLogits{nullptr, w.max_logit, w.z_total}, u);
            };
            if (const auto token = sample_from_summary(sampler, summary, whole_row)) return *token;
            return sampler.sample(logits(logit_rows_ - 1), V, nullptr);  // stats are done
        }
    }
    return sampler.sample(logits(logit_rows_ - 1), V, stats);
}

std::string Session::context_limit_reason() const {
    return capacity_from_kv_ ? "the session's KV capacity"
                             : "the model's max_position_embeddings";
}

void Session::check_tokens(const int32_t* tokens, int64_t n) const {
    TDM_REQUIRE(n > 0, TDM_ERR_INVALID_ARGUMENT, "no tokens given (an empty prompt?)");
    TDM_REQUIRE(tokens != nullptr, TDM_ERR_INVALID_ARGUMENT, "tokens is NULL");
    const int64_t V = vocab();
    for (int64_t i = 0; i < n; ++i) {
        TDM_REQUIRE(tokens[i] >= 0 && tokens[i] < V, TDM_ERR_TOKEN_OUT_OF_RANGE,
                    "token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                        " is out of range [0, " + std::to_string(V) + ")");
    }
    TDM_REQUIRE(length_ + n <= capacity_, TDM_ERR_CONTEXT_FULL,
                std::to_string(n) + " new token(s) after " + std::to_string(length_) +
                    " in the cache exceed the context limit of " + std::to_string(capacity_) +
                    " tokens (" + context_limit_reason() + ")");
}

void Session::prefill(const int32_t* tokens, int64_t n, bool all_logits,
                      const std::function<bool()>& abort, const PrefillAttention* attention) {
    run(tokens, n, all_logits, abort, attention, /*record_density=*/true);
}

// Chunked prefill and block-sparse attention: each chunk is one forward call whose queries sit at
// absolute positions start+done.. and whose keys are everything before them too; the block grid
// of attention/block_plan.h is absolute, so a chunk is estimated and computed against the whole
// prefix exactly as one long call would see it (only FlexPrefill's representative queries, the
// last block of the chunk, are per chunk).
void Session::run(const int32_t* tokens, int64_t n, bool all_logits,
                  const std::function<bool()>& abort, const PrefillAttention* attention,
                  bool record_density) {
    check_tokens(tokens, n);
    const ModelConfig& config = model_->config();
    const int64_t cells = config.num_hidden_layers * config.num_attention_heads;
    const bool sparse = attention && attention->settings.method != TDM_ATTENTION_DENSE;
    if (sparse && attention->settings.method == TDM_ATTENTION_XATTENTION) {
        TDM_REQUIRE(int64_t(attention->xattn_thresholds.size()) == cells, TDM_ERR_INVALID_ARGUMENT,
                    "the XAttention threshold table has " +
                        std::to_string(attention->xattn_thresholds.size()) +
                        " entries; the model needs layers x heads = " + std::to_string(cells));
    }
    // Each chunk's densities get their own slot: the backend may write them asynchronously, so
    // they are read only after the last chunk's logits came to the host.
    std::vector<float> chunk_density;
    std::vector<double> chunk_pairs;
    SparsePrefill plan_args{};
    if (sparse) {
        plan_args.settings = attention->settings;
        plan_args.thresholds = attention->xattn_thresholds.data();
    }
    const int64_t start = length_;
    const int64_t V = vocab();
    logits_.clear();
    logit_rows_ = 0;
    device_rows_ = 0;
    host_pending_ = false;
    try {
        if (!workspace_) {
            const ModelConfig& c = model_->config();
            const int64_t per_row = 4 * c.hidden_size + 2 * c.q_dim() + 2 * c.kv_dim() +
                                    3 * c.intermediate_size + c.vocab_size;  // Workspace + a logits row
            const int64_t rows = prefill_chunk_ > 0 ? prefill_chunk_
                                                    : backend_->prefill_chunk_rows(per_row);
            workspace_ = std::make_unique<Workspace>(*backend_, c, std::min(rows, capacity_));
        }
        // A recorded decode step (Backend::decode_step) holds these buffers' addresses.
        const void* const layout_before[] = {cache_.keys(0), workspace_->logits};
        const int64_t allocated_before = cache_.allocated();
        cache_.reserve(*backend_, start + n, start);
        if (all_logits) workspace_->reserve_logit_rows(std::min(workspace_->rows, n));
        if (cache_.keys(0) != layout_before[0] || workspace_->logits != layout_before[1] ||
            cache_.allocated() != allocated_before)
            ++buffers_generation_;
        if (sparse) {  // sized once: earlier chunks' slots must not move
            chunk_density.resize(size_t((n + workspace_->rows - 1) / workspace_->rows * cells));
        }
        // Written straight into logits_ (clear() keeps its capacity: no allocation per decode step).
        logits_.reserve(static_cast<size_t>((all_logits ? n : 1) * V));
        for (int64_t done = 0; done < n;) {
            const int64_t chunk = std::min(workspace_->rows, n - done);
            const bool last_chunk = done + chunk == n;
            const int64_t rows = all_logits ? chunk : (last_chunk ? 1 : 0);
            if (sparse) {
                chunk_pairs.push_back(double(
                    BlockGrid::of(start + done, chunk, attention->settings.block_size).causal_pairs()));
                plan_args.density = chunk_density.data() + (chunk_pairs.size() - 1) * cells;
            }
            const auto pass = [&] {
                return forward(*model_, *backend_, cache_, *workspace_, tokens + done, chunk,
                               start + done, rows, abort, sparse ? &plan_args : nullptr);
            };
            // One dense token is a decode step: the backend may replay it from a recording.
            const bool completed = n == 1 && !sparse
                                       ? backend_->decode_step(tokens[0], start, buffers_generation_, pass)
                                       : pass();
            if (!completed) fail(TDM_ERR_CANCELLED, "cancelled by the abort callback");
            if (rows > 0) {
                // The next chunk overwrites the workspace: only the last chunk's rows may wait
                // there for a caller that wants them on the host (Session::logits).
                device_rows_ = rows;
                host_pending_ = true;
                if (!last_chunk) copy_logits_to_host();
            }
            done += chunk;
            length_ = start + done;
        }
        // Block-sparse densities are written asynchronously: the copy also waits for them.
        if (sparse) copy_logits_to_host();
        logit_rows_ = all_logits ? n : 1;
        if (record_density) {
            // Weighted by each chunk's causal block pairs: the density of the whole prompt.
            density_.assign(size_t(cells), 1.0f);
            if (sparse) {
                double total = 0;
                for (double p : chunk_pairs) total += p;
                for (int64_t c = 0; c < cells; ++c) {
                    double sum = 0;
                    for (size_t k = 0; k < chunk_pairs.size(); ++k)
                        sum += chunk_density[k * cells + c] * chunk_pairs[k];
                    density_[c] = float(sum / total);
                }
            }
        }
    } catch (...) {
        length_ = start;  // what the cache holds past `start` is garbage now; forget it
        logits_.clear();
        logit_rows_ = 0;
        device_rows_ = 0;
        host_pending_ = false;
        throw;
    }
}

void Session::truncate(int64_t n) {
    TDM_REQUIRE(n >= 0 && n <= length_, TDM_ERR_INVALID_ARGUMENT,
                "cannot truncate to " + std::to_string(n) + " tokens: the session holds " +
                    std::to_string(length_));
    length_ = n;
    logits_.clear();
    logit_rows_ = 0;
    device_rows_ = 0;
    host_pending_ = false;
}

void Session::check_row(int64_t row) const {
    TDM_REQUIRE(logit_rows_ > 0, TDM_ERR_INVALID_STATE,
                "the session holds no logits: run a prefill or decode first");
    TDM_REQUIRE(row >= 0 && row < logit_rows_, TDM_ERR_INVALID_ARGUMENT,
                "logit row " + std::to_string(row) + " out of range: the session holds " +
                    std::to_string(logit_rows_) + " row(s)");
}

const float* Session::device_row(int64_t row) const {
    const int64_t first_device = logit_rows_ - device_rows_;
    if (device_rows_ <= 0 || row < first_device) return nullptr;
    return workspace_->logits + (row - first_device) * vocab();
}

bool Session::summarize_row(int64_t row, int want, float temperature, LogitSummary* out) const {
    check_row(row);
    const float* d = device_row(row);
    if (d == nullptr) return false;
    return backend_->summarize_logits(d, vocab(), want, temperature, out) &&
           out->invalid_index < 0 && out->candidates > 0;
}

float Session::logit_at(int64_t row, int64_t id) const {
    check_row(row);
    TDM_REQUIRE(id >= 0 && id < vocab(), TDM_ERR_INVALID_ARGUMENT,
                "token id " + std::to_string(id) + " out of range");
    const float* d = device_row(row);
    if (d == nullptr || !host_pending_) return logits_[size_t(row * vocab() + id)];
    float z = 0.0f;
    backend_->to_host(d + id, 1, &z);
    return z;
}

void Session::copy_row(int64_t row, float* dst) const {
    check_row(row);
    const int64_t V = vocab();
    const float* d = device_row(row);
    if (d == nullptr || !host_pending_) {
        std::copy_n(logits_.data() + row * V, V, dst);
        return;
    }
    backend_->to_host(d, V, dst);
}

bool Session::stash_row(int64_t row, int64_t slot) {
    check_row(row);
    TDM_REQUIRE(slot >= 0, TDM_ERR_INVALID_ARGUMENT, "negative stash slot");
    const float* src = device_row(row);
    if (src == nullptr) return false;  // the backend has no host-to-device copy for it
    const int64_t V = vocab();
    if (slot >= stash_.rows) {
        // Grown by doubling; the rows kept so far move along (a device-to-device copy, ordered
        // before the release, which waits for the device).
        const int64_t rows = std::max({slot + 1, 2 * stash_.rows, int64_t{4}});
        float* grown = backend_->allocate(rows * V);
        if (stash_.data != nullptr) {
            backend_->copy(grown, stash_.data, stash_.rows * V * int64_t(sizeof(float)));
            backend_->release(stash_.data);
        }
        stash_.backend = backend_.get();
        stash_.data = grown;
        stash_.rows = rows;
    }
    backend_->copy(stash_.data + slot * V, src, V * int64_t(sizeof(float)));
    return true;
}

void Session::copy_stashed_row(int64_t slot, float* dst) const {
    TDM_REQUIRE(slot >= 0 && slot < stash_.rows, TDM_ERR_INVALID_ARGUMENT,
                "stash slot " + std::to_string(slot) + " was never written");
    backend_->to_host(stash_.data + slot * vocab(), vocab(), dst);
}

float Session::stashed_logit(int64_t slot, int64_t id) const {
    TDM_REQUIRE(slot >= 0 && slot < stash_.rows, TDM_ERR_INVALID_ARGUMENT,
                "stash slot " + std::to_string(slot) + " was never written");
    TDM_REQUIRE(id >= 0 && id < vocab(), TDM_ERR_INVALID_ARGUMENT,
                "token id " + std::to_string(id) + " out of range");
    float z = 0.0f;
    backend_->to_host(stash_.data + slot * vocab() + id, 1, &z);
    return z;
}

std::optional<int32_t> Session::draw_row(int64_t row, float temperature, WarpedLogits warp,
                                         double u) const {
    check_row(row);
    warp.logits = device_row(row);
    if (warp.logits == nullptr) return std::nullopt;
    RowDraw d;
    d.order = RowDraw::Order::kRank;
    d.p = warp;
    return draw(d, temperature, u);
}

std::optional<int32_t> Session::draw_residual(int64_t row, WarpedLogits p, const Session* draft,
                                              int64_t slot, WarpedLogits q, float temperature,
                                              double u) const {
    check_row(row);
    p.logits = device_row(row);
    if (p.logits == nullptr) return std::nullopt;
    q.logits = nullptr;
    if (draft != nullptr) {
        TDM_REQUIRE(draft->vocab() == vocab(), TDM_ERR_INVALID_ARGUMENT,
                    "residual draw: the draft's vocabulary differs");
        if (slot < 0 || slot >= draft->stash_.rows ||
            !backend_->shares_memory_with(*draft->backend_))
            return std::nullopt;
        draft->backend_->synchronize();  // the stash copy was enqueued on the draft's stream
        q.logits = draft->stash_.data + slot * vocab();
    }
    RowDraw d;
    d.order = RowDraw::Order::kId;
    d.p = p;
    d.q = q;
    return draw(d, temperature, u);
}

std::optional<int32_t> Session::draw(RowDraw d, float temperature, double u) const {
    d.vocab = vocab();
    d.temperature = temperature;
    d.u = u;
    int32_t token = -1;
    if (!backend_->draw_from_logits(d, &token)) return std::nullopt;
    return token;
}

}  // namespace tdm
