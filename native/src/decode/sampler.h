// The token sampler: temperature, top-k and top-p (nucleus) sampling, reproducible from a seed in
// any language.
//
// THE PROCEDURE. This comment is the specification that tools/make_vectors.py implements
// independently and that tests/vectors/sampler.json pins down; change it and both must change.
// Inputs: logits z[0..V) (float32); the options T = temperature, k = top_k, P = top_p (T and P
// are float32 and are widened to double before any use); the generator G (decode/rng.h).
//
//  0. Every z_i must be finite or -inf (-inf: the token can never be drawn). NaN, +inf, or all
//     logits -inf are errors (TDM_ERR_INVALID_ARGUMENT).
//  1. T == 0 (greedy): return the lowest i with z_i = max z. G is NOT advanced.
//  2. Candidates C = { i : z_i > -inf }. The RANK ORDER sorts them by z descending, then by id
//     ascending (-0.0 and +0.0 are equal logits, so they tie and the lower id ranks first).
//  3. Top-k: if 0 < k < |C|, K = the first k candidates in rank order; otherwise K = C.
//  4. Weights, in double: m = max z, w_i = exp((double(z_i) - m) / double(T)); one subtraction,
//     one division (not a multiplication by 1/T) and one exp per token. The top token has w = 1.
//  5. S = the sum of w_i over K, added left to right in ASCENDING ID order.
//  6. Top-p: if P < 1, W_j = w of the first j tokens of K in rank order, added left to right;
//     n = the smallest j with W_j >= double(P) * S, or |K| if there is none. N = the first n
//     tokens of K in rank order. If P == 1, N = K.
//  7. Z = the sum of w_i over N, added left to right in ascending id order (so Z = S when N = K).
//  8. u = G.uniform(): exactly one draw per sampled token. Walk N in rank order accumulating
//     W_j as in step 6 and return the first token with W_j > u * Z; if rounding leaves none,
//     the last token of N in rank order.
// Steps 7-8 are "renormalise over the kept set and invert the cumulative distribution", written
// with unnormalised sums so that every language performs exactly the same roundings. Only exp
// comes from the math library; a last-ulp difference there could change a token only when u * Z
// falls within about 1e-16 (relative) of a bucket edge.
//
// Cost: O(V) for validation, the weights and one pass that buckets the candidates, plus O(j)
// where j is the rank of the drawn token (or the size of the nucleus), rounded up to the end of
// its bucket: the rank order is never built for the whole vocabulary up front. While weighing,
// the sampler bins every token of K by (m - z) / T, a quarter nat per bin. The bin never
// decreases along the rank order (every operation in it is monotone, and equal logits share a
// bin), so the buckets laid end to end, each sorted, ARE the rank order, and a walk sorts a
// bucket only when it reaches it. The candidates enter their buckets in ascending id order, so
// a stable radix sort on the 32 logit bits alone finishes a bucket (ties stay in id order).
// Top-k finds its cut from the same bins (a selection inside the one bin it cuts), and a sum in
// id order over a rank-order prefix scans the ids against the prefix's last rank key (or sorts
// the prefix's ids when it is short). None of this changes a single rounding of the procedure.
//
// A Sampler is single-threaded: it owns its generator and its scratch buffers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "decode/rng.h"
#include "tandem.h"

namespace tdm {

// The defaults of tdm_sampler_options: temperature 1, top_k 0 (off), top_p 1 (off), seed 0,
// stats_top_k 2 (LogTokU's K). struct_size = sizeof(tdm_sampler_options).
tdm_sampler_options default_sampler_options();

// The defaults with the warp and the seed set (stats_top_k and struct_size as the defaults).
tdm_sampler_options sampler_options(float temperature, int32_t top_k = 0, float top_p = 1.0f,
                                    uint64_t seed = 0);

// Throws tdm::Error(TDM_ERR_INVALID_ARGUMENT), naming the field and its value, unless
// temperature is finite and >= 0, top_k >= 0, 0 < top_p <= 1 and 1 <= stats_top_k <= TDM_MAX_TOP_K.
void validate_sampler_options(const tdm_sampler_options& options);

// Greedy choice: the lowest id among the largest logits (step 1). NaN, +inf or all -inf throw.
int32_t argmax_token(const float* logits, int64_t vocab);

class Sampler {
public:
    // Validates the options (validate_sampler_options) and seeds the generator with options.seed.
    // struct_size is not read: the C ABI layer resolves it before constructing a Sampler.
    explicit Sampler(const tdm_sampler_options& options);

    // Draws one token from logits[0..vocab) by the procedure above. When stats is not NULL it also
    // receives compute_token_stats of the same logits at temperature 1 (the model's own
    // distribution, whatever T, top-k and top-p are) with K = min(stats_top_k, vocab).
    int32_t sample(const float* logits, int64_t vocab, tdm_token_stats* stats = nullptr);

    // The distribution sample() draws from: probs[i] = w_i / Z for i in N, 0 elsewhere (one-hot
    // at the argmax when T == 0). Does not advance the generator. Speculative decoding needs it
    // to compare target and draft under the same temperature, top-k and top-p.
    void probabilities(const float* logits, int64_t vocab, float* probs);

    const tdm_sampler_options& options() const { return options_; }

    // The generator, for callers that need more random numbers from the same seeded stream
    // (e.g. the accept/reject draws of speculative decoding).
    Rng& rng() { return rng_; }

private:
    // Steps 0 and 2-7: afterwards K is known (bin_ marks it, weights_ holds its w), N is its
    // first kept_ tokens in rank order, and the return value is Z. Ranks nothing unless top-p
    // cuts, and then only the buckets the nucleus reaches.
    double prepare(const float* logits, int64_t vocab);
    // Step 3 when top-k cuts: fills k_ids_ with K in ascending id order and marks the rest of
    // the vocabulary kOutside in bin_.
    void select_top_k(std::size_t k);
    // w_i of step 4, stored in weights_; also records the token's bin.
    double weigh(uint32_t id);
    // Z of step 7 when top-p cut K to its first kept_ tokens: their w in ascending id order.
    double sum_nucleus_in_id_order();
    // Walks K in rank order, accumulating W_j left to right (steps 6 and 8), ranking buckets as
    // it reaches them. Returns the first index j < limit (0-based) at which stop(W_{j+1}) holds,
    // or limit if there is none; keys_[0..returned index] are then in rank order (all of
    // keys_[0..limit) when it returns limit).
    template <typename Stop>
    std::size_t walk(std::size_t limit, Stop stop);
    // Sorts the next bucket, extending the ranked prefix keys_[0..ranked_) by it. Buckets the
    // candidates first if this call has not yet done so.
    void rank_next_bucket();
    // Sorts keys_[lo..hi), whose ids ascend, into rank order.
    void sort_bucket(std::size_t lo, std::size_t hi);

    static constexpr int kBins = 128;           // 32 nats below the top token; the last bin
    static constexpr double kBinsPerNat = 4.0;  // takes everything further down
    static constexpr uint8_t kOutside = kBins;  // bin_ of the tokens outside K

    tdm_sampler_options options_;
    Rng rng_;
    // Per-call scratch, kept so that vocabulary-sized buffers are not reallocated every token.
    std::vector<double> weights_;   // w_i by id; valid for the ids of K during a call
    std::vector<uint8_t> bin_;      // bin by id, kOutside outside K
    std::vector<uint32_t> k_ids_;   // K in ascending id order, when top-k cut (else unused)
    std::vector<uint32_t> ids_;     // scratch ids for sums in id order
    std::vector<uint64_t> keys_;    // K as rank keys, (descending-logit bits << 32) | id, by bin
    std::vector<uint64_t> radix_;   // scratch of sort_bucket and select_top_k
    std::array<std::size_t, kBins> bin_count_{};      // tokens of K per bin
    std::array<std::size_t, kBins + 1> bin_start_{};  // bucket b = keys_[bin_start_[b]..[b+1])
    bool bucketed_ = false;  // keys_ and bin_start_ are filled (by the first rank_next_bucket)
    int next_bin_ = 0;       // the first bucket not yet sorted
    std::size_t ranked_ = 0; // keys_[0..ranked_) are in rank order (= bin_start_[next_bin_])
    bool top_k_cut_ = false; // K is k_ids_ rather than every candidate
    std::size_t kept_k_ = 0; // |K|
    std::size_t kept_ = 0;   // |N|
    const float* logits_ = nullptr;  // the logits of the call in progress
    int64_t vocab_ = 0;
    double max_logit_ = 0.0;
};

}  // namespace tdm
