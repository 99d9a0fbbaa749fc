// LogTokU (Ma et al., arXiv 2502.00290; ALGORITHMS.md section 5.1): the top-K logits of one step
// read as Dirichlet evidence alpha_1..alpha_K, alpha_0 = sum_k alpha_k.
//
//   AU = -sum_k (alpha_k / alpha_0) (psi(alpha_k + 1) - psi(alpha_0 + 1))   aleatoric: the expected
//        entropy of Cat(p), p ~ Dir(alpha); high when several tokens are plausible.
//   EU = K / (sum_k relu(alpha_k) + K)                                       epistemic: Dirichlet
//        vacuity in (0, 1]; high when the total evidence is small.
//
// As in the reference code (MaHuanAAA/logtoku, SenU/metrics.py) AU reads the raw logits, without
// the ReLU that EU applies. psi has poles at 0, -1, -2, ..., so AU clamps each alpha_k to at least
// kLogTokUEpsilon; the reference does not, and produces NaN or garbage on negative logits (GPT-2).
//
// Both are computed in double over the values sorted ascending, so they are exactly invariant
// to the order of the inputs, as the method requires.
#pragma once

#include <cstdint>

namespace tdm {

// Evidence floor inside AU (ALGORITHMS.md 5.1 suggests 1e-6).
inline constexpr double kLogTokUEpsilon = 1e-6;

// AU and EU of alpha[0..k). k >= 1; every alpha finite or -inf (a masked token: no evidence).
// NaN or +inf throw tdm::Error(TDM_ERR_INVALID_ARGUMENT) naming the index.
double logtoku_au(const float* alpha, int k);
double logtoku_eu(const float* alpha, int k);

}  // namespace tdm
