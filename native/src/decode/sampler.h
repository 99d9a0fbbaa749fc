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
// Cost: O(V) for the candidate keys and the weights, plus O(j log j) where j is the rank of the
// drawn token (or the size of the nucleus): the rank order is never built for the whole
// vocabulary up front. While summing S the sampler also bins the weights by (m - z) / T, a quarter
// nat per bin; whole bins are rank-order prefixes, so the bins say how long a prefix must be to
// hold a given mass, and only that prefix is selected (nth_element) and sorted.
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
    // Steps 0 and 2-7: afterwards keys_ holds exactly N (its first ranked_ entries in rank
    // order), weights_ holds w_i for every i in K, and the return value is Z.
    double prepare(const float* logits, int64_t vocab);
    // w_i of step 4, stored in weights_ and added to the mass histogram.
    double weigh(uint32_t id);
    // Sum of weights_[id] over keys_[0..count) in ascending id order (steps 5 and 7).
    double sum_in_id_order(std::size_t count, bool weigh_first);
    // Ranks the shortest run of whole histogram bins whose mass reaches `mass`.
    void rank_prefix_holding(double mass);
    // Puts keys_[0..count) in rank order (count <= keys_.size()).
    void rank_exactly(std::size_t count);
    // The same for at least count entries, doubling the ranked prefix: the fallback when a walk
    // runs past the prefix the histogram predicted (only rounding can make it do so).
    void rank_until(std::size_t count);

    static constexpr int kMassBins = 128;       // 32 nats below the top token; the last bin
    static constexpr double kBinsPerNat = 4.0;  // takes everything further down

    tdm_sampler_options options_;
    Rng rng_;
    // Per-call scratch, kept so that vocabulary-sized buffers are not reallocated every token.
    std::vector<uint64_t> keys_;   // candidates as rank keys: (descending-logit bits << 32) | id
    std::size_t ranked_ = 0;       // keys_[0..ranked_) are in rank order
    std::vector<double> weights_;  // w_i by id; valid for the ids of K during a call
    std::vector<uint32_t> ids_;
    std::array<double, kMassBins> bin_mass_{};
    std::array<std::size_t, kMassBins> bin_count_{};
    const float* logits_ = nullptr;  // the logits of the call in progress
    double max_logit_ = 0.0;
};

}  // namespace tdm
