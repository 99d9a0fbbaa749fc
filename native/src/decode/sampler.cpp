#include "decode/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/error.h"
#include "uncertainty/token_stats.h"

namespace tdm {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The fallback ranking (Sampler::rank_until) grows the ranked prefix to at least this many.
constexpr size_t kFirstRankChunk = 64;

std::string show(double v) {
    std::ostringstream s;
    s.precision(9);
    s << v;
    return s.str();
}

void check_logit(float z, int64_t i) {
    if (!(z < kInf))
        fail(TDM_ERR_INVALID_ARGUMENT,
             "sampler: logit[" + std::to_string(i) + "] is " + (std::isnan(z) ? "NaN" : "+inf"));
}

void check_logits_pointer(const float* logits, int64_t vocab) {
    TDM_REQUIRE(logits != nullptr, TDM_ERR_INVALID_ARGUMENT, "sampler: logits is NULL");
    TDM_REQUIRE(vocab >= 1 && vocab <= std::numeric_limits<int32_t>::max(),
                TDM_ERR_INVALID_ARGUMENT,
                "sampler: vocab must be in [1, 2^31), got " + std::to_string(vocab));
}

[[noreturn]] void fail_all_masked(int64_t vocab) {
    fail(TDM_ERR_INVALID_ARGUMENT,
         "sampler: all " + std::to_string(vocab) + " logits are -inf, nothing can be sampled");
}

// A key whose unsigned order is the rank order: logit descending, then id ascending. The float
// bits are mapped to an unsigned integer that grows with the float, then complemented.
uint64_t rank_key(float z, uint32_t id) {
    z += 0.0f;  // -0.0 + 0.0 == +0.0: equal logits must get equal bits, so the lower id wins
    const uint32_t bits = std::bit_cast<uint32_t>(z);
    const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return (static_cast<uint64_t>(~ascending) << 32) | id;
}

uint32_t key_id(uint64_t key) { return static_cast<uint32_t>(key); }

}  // namespace

tdm_sampler_options default_sampler_options() {
    tdm_sampler_options o{};
    o.struct_size = sizeof(tdm_sampler_options);
    o.temperature = 1.0f;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.seed = 0;
    o.stats_top_k = 2;
    return o;
}

void validate_sampler_options(const tdm_sampler_options& o) {
    TDM_REQUIRE(std::isfinite(o.temperature) && o.temperature >= 0.0f, TDM_ERR_INVALID_ARGUMENT,
                "sampler: temperature must be finite and >= 0 (0 = greedy), got " +
                    show(o.temperature));
    TDM_REQUIRE(o.top_k >= 0, TDM_ERR_INVALID_ARGUMENT,
                "sampler: top_k must be >= 0 (0 = off), got " + std::to_string(o.top_k));
    TDM_REQUIRE(o.top_p > 0.0f && o.top_p <= 1.0f, TDM_ERR_INVALID_ARGUMENT,
                "sampler: top_p must be in (0, 1] (1 = off), got " + show(o.top_p));
    TDM_REQUIRE(o.stats_top_k >= 1 && o.stats_top_k <= TDM_MAX_TOP_K, TDM_ERR_INVALID_ARGUMENT,
                "sampler: stats_top_k must be in [1, " + std::to_string(TDM_MAX_TOP_K) + "], got " +
                    std::to_string(o.stats_top_k));
}

int32_t argmax_token(const float* logits, int64_t vocab) {
    check_logits_pointer(logits, vocab);
    int64_t best = -1;
    float best_logit = -kInf;
    for (int64_t i = 0; i < vocab; ++i) {
        const float z = logits[i];
        check_logit(z, i);
        if (z > best_logit) {  // strict: an equal later logit keeps the lower id
            best_logit = z;
            best = i;
        }
    }
    if (best < 0) fail_all_masked(vocab);
    return static_cast<int32_t>(best);
}

Sampler::Sampler(const tdm_sampler_options& options) : options_(options), rng_(options.seed) {
    validate_sampler_options(options_);
}

double Sampler::weigh(uint32_t id) {
    const double scaled = (static_cast<double>(logits_[id]) - max_logit_) /
                          static_cast<double>(options_.temperature);  // <= 0
    const double w = std::exp(scaled);
    weights_[id] = w;
    // The bin is a non-decreasing function of the rank (every operation here is monotone), so
    // whole bins are rank-order prefixes; ties always share a bin.
    const int bin = static_cast<int>(std::min(-scaled * kBinsPerNat, double{kMassBins - 1}));
    bin_mass_[static_cast<size_t>(bin)] += w;
    ++bin_count_[static_cast<size_t>(bin)];
    return w;
}

double Sampler::sum_in_id_order(size_t count, bool weigh_first) {
    ids_.resize(count);
    for (size_t j = 0; j < count; ++j) ids_[j] = key_id(keys_[j]);
    std::sort(ids_.begin(), ids_.end());
    double sum = 0.0;
    for (uint32_t id : ids_) sum += weigh_first ? weigh(id) : weights_[id];
    return sum;
}

void Sampler::rank_exactly(size_t count) {
    if (count <= ranked_) return;
    const auto first = keys_.begin() + static_cast<std::ptrdiff_t>(ranked_);
    const auto last = keys_.begin() + static_cast<std::ptrdiff_t>(count);
    // keys_[0..ranked_) already hold the smallest keys in order, so the next (count - ranked_)
    // smallest of the rest, sorted, extend that prefix.
    if (count < keys_.size()) std::nth_element(first, last, keys_.end());
    std::sort(first, last);
    ranked_ = count;
}

void Sampler::rank_until(size_t count) {
    if (count <= ranked_) return;
    rank_exactly(std::min(keys_.size(), std::max({count, 2 * ranked_, kFirstRankChunk})));
}

void Sampler::rank_prefix_holding(double mass) {
    // The histogram adds the same weights in another order than the walks do, so its masses can
    // differ from theirs in the last bits: the margin covers that many times over.
    const double goal = mass * (1.0 + 1e-9);
    double cumulative = 0.0;
    size_t count = 0;
    for (int b = 0; b < kMassBins && cumulative < goal; ++b) {
        cumulative += bin_mass_[static_cast<size_t>(b)];
        count += bin_count_[static_cast<size_t>(b)];
    }
    rank_exactly(cumulative < goal ? keys_.size() : std::min(count, keys_.size()));
}

double Sampler::prepare(const float* logits, int64_t vocab) {
    check_logits_pointer(logits, vocab);
    logits_ = logits;

    // Steps 0 and 2: validate, and collect the candidates as rank keys.
    keys_.clear();
    keys_.reserve(static_cast<size_t>(vocab));
    float zmax = -kInf;
    for (int64_t i = 0; i < vocab; ++i) {
        const float z = logits[i];
        check_logit(z, i);
        if (z == -kInf) continue;
        keys_.push_back(rank_key(z, static_cast<uint32_t>(i)));
        zmax = std::max(zmax, z);
    }
    if (keys_.empty()) fail_all_masked(vocab);
    max_logit_ = zmax;
    ranked_ = 0;
    weights_.resize(static_cast<size_t>(vocab));
    bin_mass_.fill(0.0);
    bin_count_.fill(0);
    const size_t n_candidates = keys_.size();

    // Step 3: top-k by selection; the k smallest keys are the k best candidates.
    const size_t top_k = static_cast<size_t>(options_.top_k);
    if (top_k > 0 && top_k < n_candidates) {
        std::nth_element(keys_.begin(), keys_.begin() + static_cast<std::ptrdiff_t>(top_k),
                         keys_.end());
        keys_.resize(top_k);
    }
    const size_t kept_k = keys_.size();

    // Steps 4-5: the weights of K and their sum S in ascending id order. Without a top-k cut K is
    // every candidate, and the logits array already is in id order.
    double total = 0.0;
    if (kept_k == n_candidates) {
        for (int64_t i = 0; i < vocab; ++i)
            if (logits[i] != -kInf) total += weigh(static_cast<uint32_t>(i));
    } else {
        total = sum_in_id_order(kept_k, /*weigh_first=*/true);
    }

    // Step 6: top-p, the shortest prefix in rank order whose mass reaches P * S.
    size_t kept = kept_k;
    if (options_.top_p < 1.0f) {
        const double threshold = static_cast<double>(options_.top_p) * total;
        rank_prefix_holding(threshold);
        double cumulative = 0.0;
        for (size_t j = 0; j < kept_k; ++j) {
            rank_until(j + 1);
            cumulative += weights_[key_id(keys_[j])];
            if (cumulative >= threshold) {
                kept = j + 1;
                break;
            }
        }
    }

    // Step 7: Z over N in ascending id order. N = its ranked prefix of K when top-p cut.
    if (kept == kept_k) return total;
    keys_.resize(kept);
    ranked_ = std::min(ranked_, kept);
    return sum_in_id_order(kept, /*weigh_first=*/false);
}

int32_t Sampler::sample(const float* logits, int64_t vocab, tdm_token_stats* stats) {
    if (stats != nullptr) {
        check_logits_pointer(logits, vocab);
        const int k = static_cast<int>(std::min<int64_t>(options_.stats_top_k, vocab));
        compute_token_stats(logits, vocab, k, stats);
    }
    if (options_.temperature == 0.0f) return argmax_token(logits, vocab);

    const double total = prepare(logits, vocab);
    // Step 8: one uniform draw, then the first token whose cumulative weight exceeds u * Z.
    const double target = rng_.uniform() * total;
    const size_t kept = keys_.size();
    rank_prefix_holding(target);  // a no-op when top-p already ranked all of N
    double cumulative = 0.0;
    for (size_t j = 0; j < kept; ++j) {
        rank_until(j + 1);
        const uint32_t id = key_id(keys_[j]);
        cumulative += weights_[id];
        if (cumulative > target) return static_cast<int32_t>(id);
    }
    rank_until(kept);
    return static_cast<int32_t>(key_id(keys_[kept - 1]));
}

void Sampler::probabilities(const float* logits, int64_t vocab, float* probs) {
    TDM_REQUIRE(probs != nullptr, TDM_ERR_INVALID_ARGUMENT, "sampler: probs is NULL");
    if (options_.temperature == 0.0f) {
        const int32_t best = argmax_token(logits, vocab);
        std::fill(probs, probs + vocab, 0.0f);
        probs[best] = 1.0f;
        return;
    }
    const double total = prepare(logits, vocab);
    std::fill(probs, probs + vocab, 0.0f);
    for (uint64_t key : keys_) {
        const uint32_t id = key_id(key);
        probs[id] = static_cast<float>(weights_[id] / total);
    }
}

}  // namespace tdm
