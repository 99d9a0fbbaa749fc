// The two-model decoding loops (ALGORITHMS.md sections 2, 6 and 7) over a ModelPair, one step at a
// time: large alone, small alone, speculative decoding (fixed or adaptive draft length, early stop
// on low draft confidence), R-Stitch and EAD (a built-in rule or the caller's callback).
//
// Every step either succeeds or leaves the decoder as it was before it: the committed sequence,
// the random generator, the routing state, the draft length and the statistics are restored, and
// each session is truncated back to at most its length before the step (it may then have to rerun
// its last token, which changes nothing a caller can see but the time).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "decode/model_pair.h"
#include "decode/routing.h"
#include "decode/sampler.h"
#include "tandem.h"

namespace tdm {

// The defaults of tdm_pair_options (struct_size = sizeof(tdm_pair_options)).
tdm_pair_options default_pair_options();

// Largest draft length a caller may ask for, and the bound of the adaptive draft length.
constexpr uint32_t kMaxDraftLength = 256;

class PairDecoder {
public:
    PairDecoder(std::shared_ptr<const Model> small, std::shared_ptr<const Model> large,
                const SessionConfig& config);

    // Starts a generation: validates the options (TDM_ERR_INVALID_ARGUMENT naming the field),
    // resets the pair to the prompt and prefills it into the model(s) the mode runs first.
    // `policy` is used by R-Stitch and EAD (options.policy is not read here: the C ABI resolves
    // it). On failure the decoder is left unstarted.
    void start(const int32_t* prompt, int64_t n, const tdm_pair_options& options,
               const tdm_route_policy& policy);

    // One decision (see tdm_pair_step): appends its records to `out` (cleared first) and returns
    // whether generation has stopped. TDM_ERR_INVALID_STATE before start().
    bool step(std::vector<tdm_token_record>& out);

    // Largest number of records one step can produce with the started options.
    uint64_t max_records() const;
    tdm_pair_stats stats() const;
    bool started() const { return started_; }
    bool finished() const { return finished_; }
    // The current draft length of speculative decoding (changes only when adaptive).
    uint32_t draft_length() const { return gamma_; }

    ModelPair& pair() { return pair_; }
    const ModelPair& pair() const { return pair_; }

private:
    // Everything a failed step must put back (the sessions are handled by length).
    struct Snapshot;
    Snapshot snapshot() const;
    void restore(const Snapshot& s);

    void single_step(tdm_pair_model m, std::vector<tdm_token_record>& out);
    void routed_step(std::vector<tdm_token_record>& out);
    void speculative_step(std::vector<tdm_token_record>& out);

    // The active model's proposal for the next position (its token and statistics).
    int32_t propose(tdm_pair_model m, tdm_token_stats& stats);
    // Commits a token and updates the counts; returns true when generation has now stopped.
    bool commit(int32_t token, tdm_pair_model m);
    void switch_model();
    void check_abort() const;
    tdm_token_record record(int32_t token, tdm_pair_model m, tdm_token_outcome outcome,
                            int64_t position, const tdm_token_stats& stats) const;
    // Draft length of the next speculative round, after the room and max_new_tokens limits.
    uint32_t round_draft_length() const;
    uint32_t max_adaptive_draft() const;

    ModelPair pair_;
    tdm_pair_options options_{};
    std::unique_ptr<Sampler> sampler_;
    std::optional<Router> router_;
    std::function<bool()> abort_;
    bool started_ = false;
    bool finished_ = false;
    tdm_pair_model active_ = TDM_PAIR_SMALL;  // R-Stitch/EAD: the model writing now
    uint32_t since_switch_ = 0;                // tokens it has committed since it became active
    uint32_t gamma_ = 4;                       // speculative: the current draft length
    tdm_pair_stats stats_{};                   // counts; times come from the pair's counters
    // Sampled speculative: host rows where a round needs them whole (warped probabilities, or a
    // draft's raw logits kept for a full-vocabulary q); a slot is written only where its row had
    // to come to the host.
    std::vector<float> q_rows_, p_rows_;
};

}  // namespace tdm
