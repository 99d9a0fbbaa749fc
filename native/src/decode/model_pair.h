// Two models that share a tokenizer, one session (KV cache) each, and the committed sequence they
// write together (ALGORITHMS.md section 1, item 6).
//
// Each session is kept in step lazily. It always holds a prefix of the committed sequence
// (its `synced_len` is its length). Before a model runs, logits_after() prefills the committed
// tokens it has not seen yet (catch-up), followed by any extra tokens the caller wants scored
// (drafts); settle() then truncates every session back to the longest prefix it shares with the
// committed sequence, so tokens a model wrote that were not committed never stay in its cache.
// Single-threaded, like a session.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/session.h"
#include "tandem.h"

namespace tdm {

// Throws TDM_ERR_INVALID_MODEL, naming the first difference, unless two models can share a token
// sequence: equal vocabulary sizes and, when both folders hold a tokenizer.json, the same text for
// every id (model.vocab plus added_tokens) and the same special tokens. Reads only the folders'
// tokenizer.json files, so it needs no loaded model.
void check_same_tokenizer(const std::string& small_folder, int64_t small_vocab,
                          const std::string& large_folder, int64_t large_vocab);

// Forward passes and their wall time, per model (tdm_pair_stats counts them).
struct ForwardCounters {
    uint64_t forwards = 0;
    double seconds = 0.0;
};

class ModelPair {
public:
    // Checks the tokenizers (check_same_tokenizer) and creates both sessions with `config`.
    ModelPair(std::shared_ptr<const Model> small, std::shared_ptr<const Model> large,
              const SessionConfig& config);

    // Clears both caches and makes `prompt` the committed sequence. Nothing runs yet.
    // TDM_ERR_CONTEXT_FULL when the prompt does not fit the smaller context; INVALID_ARGUMENT when
    // it is empty; TOKEN_OUT_OF_RANGE for a bad id.
    void reset(const int32_t* prompt, int64_t n);

    // The distribution of the token after committed + extra (e.g. the drafts so far): one logit
    // row of vocab() floats. Catches the model up first (prefilling what its cache lacks, after
    // truncating what it holds beyond the common prefix), and reuses the held row when the cache
    // already ends there. Valid until the next call that runs or truncates this model. `abort` is
    // checked between layers (TDM_ERR_CANCELLED); on any failure the session holds no token past
    // what it held before, and nothing uncommitted.
    const float* next_logits(tdm_pair_model which, const std::vector<int32_t>& extra,
                             const std::function<bool()>& abort = {});

    // The distributions at every position of extra and one more, in one batched forward (the
    // verification pass of speculative decoding): row i (i = 0..extra.size()) is the distribution
    // of the token at position committed_length() + i. Same lifetime and failure rules as above.
    std::vector<const float*> score_after(tdm_pair_model which, const std::vector<int32_t>& extra,
                                          const std::function<bool()>& abort = {});

    // next_logits without bringing the row to the host: afterwards the session's last held row
    // (session(which).logit_rows() - 1) is that distribution, on the device where it runs there.
    void advance(tdm_pair_model which, const std::vector<int32_t>& extra,
                 const std::function<bool()>& abort = {});

    // score_after without bringing the rows to the host: where row i of the pass lives, either a
    // host copy (`host`, valid like score_after's rows) or the session's held row `row`.
    struct ScoredRow {
        const float* host = nullptr;
        int64_t row = -1;
    };
    std::vector<ScoredRow> score_rows(tdm_pair_model which, const std::vector<int32_t>& extra,
                                      const std::function<bool()>& abort = {});

    // Commits one token / drops committed tokens back to length n (n >= the prompt length).
    void commit(int32_t token) { committed_.push_back(token); }
    void uncommit_to(int64_t n);

    // Truncates each session to the longest prefix of the committed sequence it holds.
    void settle();
    // Truncates one session to at most n tokens (never grows it); the step rollback uses it.
    void truncate_to_at_most(tdm_pair_model which, int64_t n);

    const std::vector<int32_t>& committed() const { return committed_; }
    int64_t committed_length() const { return static_cast<int64_t>(committed_.size()); }
    int64_t prompt_length() const { return prompt_length_; }
    // The smaller of the two sessions' context limits: the committed sequence never exceeds it.
    int64_t capacity() const;
    int64_t vocab() const { return vocab_; }
    Session& session(tdm_pair_model which) { return *sessions_[index(which)]; }
    const Session& session(tdm_pair_model which) const { return *sessions_[index(which)]; }
    const Model& model(tdm_pair_model which) const { return *models_[index(which)]; }
    ForwardCounters& counters(tdm_pair_model which) { return counters_[index(which)]; }
    const ForwardCounters& counters(tdm_pair_model which) const { return counters_[index(which)]; }
    // End-of-sequence ids of either model (they share a tokenizer, their configs may differ).
    bool is_eos(int32_t token) const;

private:
    static size_t index(tdm_pair_model which) { return which == TDM_PAIR_LARGE ? 1 : 0; }
    // Runs tokens through one session, counting the pass and its time.
    void forward(tdm_pair_model which, const std::vector<int32_t>& tokens, bool all_logits,
                 const std::function<bool()>& abort);

    std::array<std::shared_ptr<const Model>, 2> models_;
    std::array<std::unique_ptr<Session>, 2> sessions_;
    std::array<std::vector<int32_t>, 2> cached_;  // the tokens each session's cache holds
    std::array<ForwardCounters, 2> counters_;
    std::vector<int32_t> committed_;
    std::vector<float> first_row_;  // a held logit row saved before a forward replaces it
    std::vector<int32_t> eos_ids_;
    int64_t prompt_length_ = 0;
    int64_t vocab_ = 0;
};

}  // namespace tdm
