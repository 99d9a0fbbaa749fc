#include "decode/model_pair.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <string>

#include "core/error.h"
#include "io/json_file.h"

namespace tdm {

namespace {

// One tokenizer.json as an id -> (text, special) table: model.vocab (an object text -> id for
// BPE and WordPiece, an array of [text, score] for Unigram) overlaid by added_tokens.
struct TokenText {
    std::string text;
    bool special = false;
};

std::map<int64_t, TokenText> token_texts(const std::string& path) {
    const nlohmann::json doc = read_json_file(path);
    std::map<int64_t, TokenText> table;
    auto bad = [&](const std::string& what) {
        fail(TDM_ERR_INVALID_MODEL, "'" + path + "': " + what);
    };
    const auto model = doc.find("model");
    if (model != doc.end() && model->is_object()) {
        const auto vocab = model->find("vocab");
        if (vocab != model->end() && vocab->is_object()) {
            for (const auto& [text, id] : vocab->items()) {
                if (!id.is_number_integer()) bad("model.vocab['" + text + "'] is not an integer id");
                table[id.get<int64_t>()] = {text, false};
            }
        } else if (vocab != model->end() && vocab->is_array()) {
            int64_t id = 0;
            for (const auto& entry : *vocab) {
                if (!entry.is_array() || entry.empty() || !entry[0].is_string())
                    bad("model.vocab[" + std::to_string(id) + "] is not [text, score]");
                table[id++] = {entry[0].get<std::string>(), false};
            }
        }
    }
    const auto added = doc.find("added_tokens");
    if (added != doc.end() && added->is_array()) {
        for (const auto& t : *added) {
            if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
                !t.contains("content") || !t["content"].is_string())
                bad("an added_tokens entry lacks an integer id or a string content");
            table[t["id"].get<int64_t>()] = {t["content"].get<std::string>(),
                                              t.value("special", false)};
        }
    }
    return table;
}

// A token text as a quoted JSON string, so that spaces and control bytes are visible.
std::string quoted(const TokenText* t) {
    if (t == nullptr) return "(no token)";
    std::string s = nlohmann::json(t->text).dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
    return t->special ? s + " (special)" : s;
}

const TokenText* find(const std::map<int64_t, TokenText>& table, int64_t id) {
    const auto it = table.find(id);
    return it == table.end() ? nullptr : &it->second;
}

using Clock = std::chrono::steady_clock;

}  // namespace

void check_same_tokenizer(const std::string& small_folder, int64_t vs,
                          const std::string& large_folder, int64_t vl) {
    TDM_REQUIRE(vs == vl, TDM_ERR_INVALID_MODEL,
                "the models cannot share tokens: the small model ('" + small_folder + "') has " +
                    std::to_string(vs) + " vocabulary entries, the large one ('" + large_folder +
                    "') has " + std::to_string(vl));
    const std::string ps = path_in_folder(small_folder, "tokenizer.json");
    const std::string pl = path_in_folder(large_folder, "tokenizer.json");
    if (!path_exists(ps) || !path_exists(pl)) return;  // nothing more to compare
    const auto ts = token_texts(ps), tl = token_texts(pl);
    // Walk the union of ids in order; the first difference is the one reported.
    auto is = ts.begin(), il = tl.begin();
    while (is != ts.end() || il != tl.end()) {
        const int64_t id = il == tl.end() || (is != ts.end() && is->first < il->first)
                               ? is->first
                               : il->first;
        const TokenText* a = find(ts, id);
        const TokenText* b = find(tl, id);
        if (a == nullptr || b == nullptr || a->text != b->text || a->special != b->special) {
            fail(TDM_ERR_INVALID_MODEL,
                 "the models do not share a tokenizer: token id " + std::to_string(id) + " is " +
                     quoted(a) + " in '" + ps + "' but " + quoted(b) + " in '" + pl + "'");
        }
        if (is != ts.end() && is->first == id) ++is;
        if (il != tl.end() && il->first == id) ++il;
    }
}

ModelPair::ModelPair(std::shared_ptr<const Model> small, std::shared_ptr<const Model> large,
                     const SessionConfig& config) {
    TDM_REQUIRE(small != nullptr && large != nullptr, TDM_ERR_INVALID_ARGUMENT,
                "a model pair needs two models");
    check_same_tokenizer(small->folder(), small->config().vocab_size, large->folder(),
                         large->config().vocab_size);
    models_ = {std::move(small), std::move(large)};
    for (size_t i = 0; i < 2; ++i) {
        sessions_[i] = std::make_unique<Session>(models_[i], config);
        for (int32_t id : models_[i]->config().eos_token_ids)
            if (std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end())
                eos_ids_.push_back(id);
    }
    vocab_ = models_[0]->config().vocab_size;
}

int64_t ModelPair::capacity() const {
    return std::min(sessions_[0]->capacity(), sessions_[1]->capacity());
}

bool ModelPair::is_eos(int32_t token) const {
    return std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end();
}

void ModelPair::reset(const int32_t* prompt, int64_t n) {
    TDM_REQUIRE(n > 0, TDM_ERR_INVALID_ARGUMENT, "the prompt is empty (a pair needs a first token)");
    TDM_REQUIRE(prompt != nullptr, TDM_ERR_INVALID_ARGUMENT, "prompt is NULL");
    for (int64_t i = 0; i < n; ++i)
        TDM_REQUIRE(prompt[i] >= 0 && prompt[i] < vocab_, TDM_ERR_TOKEN_OUT_OF_RANGE,
                    "prompt token id " + std::to_string(prompt[i]) + " at index " +
                        std::to_string(i) + " is out of range [0, " + std::to_string(vocab_) + ")");
    TDM_REQUIRE(n <= capacity(), TDM_ERR_CONTEXT_FULL,
                "the prompt of " + std::to_string(n) + " tokens exceeds the pair's context of " +
                    std::to_string(capacity()) + " tokens");
    for (size_t i = 0; i < 2; ++i) {
        sessions_[i]->truncate(0);
        cached_[i].clear();
        counters_[i] = {};
    }
    committed_.assign(prompt, prompt + n);
    prompt_length_ = n;
}

void ModelPair::uncommit_to(int64_t n) {
    TDM_REQUIRE(n >= prompt_length_ && n <= committed_length(), TDM_ERR_INTERNAL,
                "uncommit_to(" + std::to_string(n) + ") outside [prompt, committed]");
    committed_.resize(static_cast<size_t>(n));
}

void ModelPair::truncate_to_at_most(tdm_pair_model which, int64_t n) {
    Session& s = session(which);
    if (s.length() <= n) return;
    s.truncate(n);
    cached_[index(which)].resize(static_cast<size_t>(n));
}

void ModelPair::settle() {
    for (tdm_pair_model which : {TDM_PAIR_SMALL, TDM_PAIR_LARGE}) {
        const auto& cached = cached_[index(which)];
        const auto mismatch =
            std::mismatch(cached.begin(), cached.end(), committed_.begin(), committed_.end());
        truncate_to_at_most(which, mismatch.first - cached.begin());
    }
}

void ModelPair::forward(tdm_pair_model which, const std::vector<int32_t>& tokens, bool all_logits,
                        const std::function<bool()>& abort) {
    ForwardCounters& c = counters_[index(which)];
    const auto start = Clock::now();
    try {
        session(which).prefill(tokens.data(), static_cast<int64_t>(tokens.size()), all_logits,
                               abort);
    } catch (...) {
        c.seconds += std::chrono::duration<double>(Clock::now() - start).count();
        throw;
    }
    c.seconds += std::chrono::duration<double>(Clock::now() - start).count();
    ++c.forwards;
    auto& cached = cached_[index(which)];
    cached.insert(cached.end(), tokens.begin(), tokens.end());
}

const float* ModelPair::next_logits(tdm_pair_model which, const std::vector<int32_t>& extra,
                                    const std::function<bool()>& abort) {
    advance(which, extra, abort);
    const Session& s = session(which);
    return s.logits(s.logit_rows() - 1);
}

void ModelPair::advance(tdm_pair_model which, const std::vector<int32_t>& extra,
                        const std::function<bool()>& abort) {
    Session& s = session(which);
    auto& cached = cached_[index(which)];
    std::vector<int32_t> target = committed_;
    target.insert(target.end(), extra.begin(), extra.end());
    const int64_t T = static_cast<int64_t>(target.size());
    const int64_t common =
        std::mismatch(cached.begin(), cached.end(), target.begin(), target.end()).first -
        cached.begin();
    if (common == T && s.length() == T && s.logit_rows() > 0) return;  // the held row is it
    // The row wanted is the output of token T-1, so that token at least must run again.
    truncate_to_at_most(which, std::min(common, T - 1));
    const std::vector<int32_t> missing(target.begin() + s.length(), target.end());
    forward(which, missing, /*all_logits=*/false, abort);
}

std::vector<const float*> ModelPair::score_after(tdm_pair_model which,
                                                 const std::vector<int32_t>& extra,
                                                 const std::function<bool()>& abort) {
    const std::vector<ScoredRow> where = score_rows(which, extra, abort);
    const Session& s = session(which);
    std::vector<const float*> rows;
    rows.reserve(where.size());
    for (const ScoredRow& r : where) rows.push_back(r.host != nullptr ? r.host : s.logits(r.row));
    return rows;
}

std::vector<ModelPair::ScoredRow> ModelPair::score_rows(tdm_pair_model which,
                                                        const std::vector<int32_t>& extra,
                                                        const std::function<bool()>& abort) {
    Session& s = session(which);
    if (extra.empty()) {
        advance(which, extra, abort);
        return {ScoredRow{nullptr, s.logit_rows() - 1}};
    }
    auto& cached = cached_[index(which)];
    const int64_t n = committed_length();
    std::vector<int32_t> target = committed_;
    target.insert(target.end(), extra.begin(), extra.end());
    const int64_t common =
        std::mismatch(cached.begin(), cached.end(), target.begin(), target.end()).first -
        cached.begin();
    std::vector<ScoredRow> rows;
    rows.reserve(extra.size() + 1);
    if (common == n && s.length() == n && s.logit_rows() > 0) {
        // The cache ends at the committed sequence with its last row held: keep that row (the
        // forward below replaces the held logits) and run only the extra tokens.
        const float* held = s.logits(s.logit_rows() - 1);
        first_row_.assign(held, held + vocab_);
        forward(which, extra, /*all_logits=*/true, abort);
        rows.push_back(ScoredRow{first_row_.data(), -1});
        for (int64_t r = 0; r < s.logit_rows(); ++r) rows.push_back(ScoredRow{nullptr, r});
        return rows;
    }
    // Otherwise rerun from the last committed token on (or from wherever the cache diverges).
    truncate_to_at_most(which, std::min(common, n - 1));
    const int64_t from = s.length();
    const std::vector<int32_t> missing(target.begin() + from, target.end());
    forward(which, missing, /*all_logits=*/true, abort);
    const int64_t first = (n - 1) - from;  // the row that predicts position n
    for (int64_t r = first; r < s.logit_rows(); ++r) rows.push_back(ScoredRow{nullptr, r});
    return rows;
}

}  // namespace tdm
