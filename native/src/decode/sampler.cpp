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

// (z - m) / T of step 4, <= 0. One function, so that the weights and the top-k selection see the
// same value (and so the same bin) for a token.
double scaled_logit(float z, double max_logit, float temperature) {
    return (static_cast<double>(z) - max_logit) / static_cast<double>(temperature);
}

// The bin of a token, from its scaled logit: a non-increasing function of the logit.
template <int Bins>
uint8_t bin_of(double scaled, double bins_per_nat) {
    return static_cast<uint8_t>(std::min(-scaled * bins_per_nat, double{Bins - 1}));
}

// Below this many keys a bucket is sorted by comparisons; above, by radix.
constexpr size_t kRadixMinimum = 64;
// The sum over a nucleus of n tokens sorts their ids when n * kScanRatio < V, else scans the
// vocabulary once: O(n log n) against O(V).
constexpr size_t kScanRatio = 32;

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

tdm_sampler_options sampler_options(float temperature, int32_t top_k, float top_p, uint64_t seed) {
    tdm_sampler_options o = default_sampler_options();
    o.temperature = temperature;
    o.top_k = top_k;
    o.top_p = top_p;
    o.seed = seed;
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
    const double scaled = scaled_logit(logits_[id], max_logit_, options_.temperature);
    const double w = std::exp(scaled);
    weights_[id] = w;
    const uint8_t bin = bin_of<kBins>(scaled, kBinsPerNat);
    bin_[id] = bin;
    ++bin_count_[bin];
    return w;
}

void Sampler::select_top_k(size_t k) {
    // Every candidate's bin (the division, not the exp), and how many fall in each.
    std::array<size_t, kBins> count{};
    for (int64_t i = 0; i < vocab_; ++i) {
        const float z = logits_[i];
        if (z == -kInf) {
            bin_[static_cast<size_t>(i)] = kOutside;
            continue;
        }
        const uint8_t bin = bin_of<kBins>(scaled_logit(z, max_logit_, options_.temperature), kBinsPerNat);
        bin_[static_cast<size_t>(i)] = bin;
        ++count[bin];
    }
    // Whole bins before `cut` are in K; K takes the best `rest` of bin `cut` (bins are rank-order
    // runs). k < |C|, so the cut bin exists and rest is in [1, count[cut]].
    size_t before = 0;
    int cut = 0;
    while (before + count[static_cast<size_t>(cut)] < k) before += count[static_cast<size_t>(cut++)];
    const size_t rest = k - before;
    radix_.clear();
    for (int64_t i = 0; i < vocab_; ++i)
        if (bin_[static_cast<size_t>(i)] == cut)
            radix_.push_back(rank_key(logits_[i], static_cast<uint32_t>(i)));
    const auto nth = radix_.begin() + static_cast<std::ptrdiff_t>(rest - 1);
    std::nth_element(radix_.begin(), nth, radix_.end());
    const uint64_t last_key = *nth;  // the k-th best candidate
    k_ids_.clear();
    for (int64_t i = 0; i < vocab_; ++i) {
        const auto id = static_cast<uint32_t>(i);
        const uint8_t bin = bin_[id];
        if (bin < cut || (bin == cut && rank_key(logits_[i], id) <= last_key))
            k_ids_.push_back(id);
        else
            bin_[id] = kOutside;
    }
}

void Sampler::sort_bucket(size_t lo, size_t hi) {
    uint64_t* const keys = keys_.data() + lo;
    const size_t n = hi - lo;
    if (n < kRadixMinimum) {
        std::sort(keys, keys + n);
        return;
    }
    // LSD radix sort on the 32 logit bits (the high half of the key), a byte per pass. Each pass
    // is stable and the ids already ascend, so the result is ordered by the whole key. Bytes
    // that every key of the bucket shares (the sign and exponent, usually: a bin spans a quarter
    // nat) need no pass.
    size_t histogram[4][256] = {};
    for (size_t j = 0; j < n; ++j) {
        const uint64_t key = keys[j];
        ++histogram[0][(key >> 32) & 0xFF];
        ++histogram[1][(key >> 40) & 0xFF];
        ++histogram[2][(key >> 48) & 0xFF];
        ++histogram[3][key >> 56];
    }
    radix_.resize(n);
    uint64_t* from = keys;
    uint64_t* to = radix_.data();
    for (int pass = 0; pass < 4; ++pass) {
        const int shift = 32 + 8 * pass;
        size_t* const offset = histogram[pass];
        if (offset[(from[0] >> shift) & 0xFF] == n) continue;
        size_t sum = 0;
        for (int d = 0; d < 256; ++d) {
            const size_t c = offset[d];
            offset[d] = sum;
            sum += c;
        }
        for (size_t j = 0; j < n; ++j) {
            const uint64_t key = from[j];
            to[offset[(key >> shift) & 0xFF]++] = key;
        }
        std::swap(from, to);
    }
    if (from != keys) std::copy(from, from + n, keys);
}

void Sampler::rank_next_bucket() {
    if (!bucketed_) {
        // Bucket K by bin, each bucket in ascending id order: a counting sort, one pass.
        bin_start_[0] = 0;
        for (int b = 0; b < kBins; ++b) bin_start_[static_cast<size_t>(b) + 1] = bin_start_[static_cast<size_t>(b)] + bin_count_[static_cast<size_t>(b)];
        keys_.resize(kept_k_);
        std::array<size_t, kBins> next;
        std::copy(bin_start_.begin(), bin_start_.begin() + kBins, next.begin());
        const auto place = [&](uint32_t id) {
            keys_[next[bin_[id]]++] = rank_key(logits_[id], id);
        };
        if (top_k_cut_) {
            for (uint32_t id : k_ids_) place(id);
        } else {
            for (int64_t i = 0; i < vocab_; ++i)
                if (bin_[static_cast<size_t>(i)] != kOutside) place(static_cast<uint32_t>(i));
        }
        bucketed_ = true;
    }
    const auto b = static_cast<size_t>(next_bin_++);
    sort_bucket(bin_start_[b], bin_start_[b + 1]);
    ranked_ = bin_start_[b + 1];
}

template <typename Stop>
size_t Sampler::walk(size_t limit, Stop stop) {
    double cumulative = 0.0;
    size_t j = 0;
    while (j < limit) {
        if (j == ranked_) rank_next_bucket();
        // A bucket at a time, so that the loop that carries the sum holds nothing but the sum.
        const size_t end = std::min(ranked_, limit);
        const uint64_t* const keys = keys_.data();
        const double* const weights = weights_.data();
        for (; j < end; ++j) {
            cumulative += weights[key_id(keys[j])];
            if (stop(cumulative)) return j;
        }
    }
    return limit;
}

double Sampler::sum_nucleus_in_id_order() {
    double sum = 0.0;
    if (kept_ * kScanRatio < static_cast<size_t>(vocab_)) {
        ids_.resize(kept_);
        for (size_t j = 0; j < kept_; ++j) ids_[j] = key_id(keys_[j]);
        std::sort(ids_.begin(), ids_.end());
        for (uint32_t id : ids_) sum += weights_[id];
        return sum;
    }
    // N = the tokens whose rank key is at most that of its last token: K is a rank-order prefix
    // of the candidates and N one of K, and -inf keys follow every finite one, so no other token
    // qualifies. Adding +0.0 to a sum of non-negative terms leaves its bits unchanged, so adding
    // w masked to +0.0 outside N is exactly the sum over N in id order. The mask is integer
    // arithmetic because a compiler turns `in ? w : 0.0` into a branch, and whether a token of a
    // flat distribution is in N is a coin toss to the branch predictor.
    const uint64_t last_key = keys_[kept_ - 1];
    for (int64_t i = 0; i < vocab_; ++i) {
        const uint64_t in = rank_key(logits_[i], static_cast<uint32_t>(i)) <= last_key;
        const uint64_t bits = std::bit_cast<uint64_t>(weights_[static_cast<size_t>(i)]) & (0 - in);
        sum += std::bit_cast<double>(bits);
    }
    return sum;
}

double Sampler::prepare(const float* logits, int64_t vocab) {
    check_logits_pointer(logits, vocab);
    logits_ = logits;
    vocab_ = vocab;

    // Steps 0 and 2: validate, find m and count the candidates. Errors name the first bad logit,
    // so the loop only notes that there is one and a second pass finds it.
    float zmax = -kInf;
    size_t masked = 0;
    bool bad = false;
    for (int64_t i = 0; i < vocab; ++i) {
        const float z = logits[i];
        bad |= !(z < kInf);
        masked += z == -kInf;
        zmax = z > zmax ? z : zmax;
    }
    if (bad)
        for (int64_t i = 0; i < vocab; ++i) check_logit(logits[i], i);
    const size_t n_candidates = static_cast<size_t>(vocab) - masked;
    if (n_candidates == 0) fail_all_masked(vocab);
    max_logit_ = zmax;
    weights_.resize(static_cast<size_t>(vocab));
    bin_.resize(static_cast<size_t>(vocab));
    bin_count_.fill(0);
    bucketed_ = false;
    next_bin_ = 0;
    ranked_ = 0;

    // Step 3 and steps 4-5: the weights of K and their sum S in ascending id order.
    const size_t top_k = static_cast<size_t>(options_.top_k);
    top_k_cut_ = top_k > 0 && top_k < n_candidates;
    double total = 0.0;
    if (top_k_cut_) {
        select_top_k(top_k);
        for (uint32_t id : k_ids_) total += weigh(id);
        kept_k_ = top_k;
    } else {
        for (int64_t i = 0; i < vocab; ++i) {
            if (logits[i] == -kInf)
                bin_[static_cast<size_t>(i)] = kOutside;
            else
                total += weigh(static_cast<uint32_t>(i));
        }
        kept_k_ = n_candidates;
    }

    // Step 6: top-p, the shortest prefix in rank order whose mass reaches P * S.
    kept_ = kept_k_;
    if (options_.top_p < 1.0f) {
        const double threshold = static_cast<double>(options_.top_p) * total;
        const size_t j = walk(kept_k_, [threshold](double cumulative) { return cumulative >= threshold; });
        if (j < kept_k_) kept_ = j + 1;
    }

    // Step 7: Z over N in ascending id order (Z = S when N = K).
    return kept_ == kept_k_ ? total : sum_nucleus_in_id_order();
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
    const size_t j = walk(kept_, [target](double cumulative) { return cumulative > target; });
    return static_cast<int32_t>(key_id(keys_[std::min(j, kept_ - 1)]));
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
    if (kept_ == kept_k_) {
        // N = K: every token of K, read in id order straight from the marks.
        for (int64_t i = 0; i < vocab; ++i) {
            const auto id = static_cast<size_t>(i);
            probs[i] = bin_[id] == kOutside ? 0.0f : static_cast<float>(weights_[id] / total);
        }
        return;
    }
    std::fill(probs, probs + vocab, 0.0f);
    for (size_t j = 0; j < kept_; ++j) {
        const uint32_t id = key_id(keys_[j]);
        probs[id] = static_cast<float>(weights_[id] / total);
    }
}

}  // namespace tdm
