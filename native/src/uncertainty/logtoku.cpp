#include "uncertainty/logtoku.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "uncertainty/digamma.h"

namespace tdm {

namespace {

// alpha[0..k) widened to double and sorted ascending. Sorting first makes every sum below
// independent of the input order (bit for bit), and adding small values first is also the more
// accurate order. K is small (2..64 in practice), so this costs nothing next to the digammas.
std::vector<double> sorted_evidence(const float* alpha, int k, const char* who) {
    TDM_REQUIRE(alpha != nullptr, TDM_ERR_INVALID_ARGUMENT, std::string(who) + ": alpha is NULL");
    TDM_REQUIRE(k >= 1, TDM_ERR_INVALID_ARGUMENT,
                std::string(who) + ": k must be >= 1, got " + std::to_string(k));
    std::vector<double> values(static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) {
        const float a = alpha[i];
        TDM_REQUIRE(!std::isnan(a) && a != INFINITY, TDM_ERR_INVALID_ARGUMENT,
                    std::string(who) + ": alpha[" + std::to_string(i) + "] is " +
                        (std::isnan(a) ? "NaN" : "+inf"));
        values[static_cast<size_t>(i)] = static_cast<double>(a);
    }
    std::sort(values.begin(), values.end());
    return values;
}

}  // namespace

double logtoku_au(const float* alpha, int k) {
    std::vector<double> a = sorted_evidence(alpha, k, "logtoku_au");
    for (double& v : a) v = std::max(v, kLogTokUEpsilon);  // monotone: the order is kept
    double a0 = 0.0;
    for (double v : a) a0 += v;
    const double psi0 = digamma(a0 + 1.0);
    double au = 0.0;
    for (double v : a) au -= (v / a0) * (digamma(v + 1.0) - psi0);
    return au;
}

double logtoku_eu(const float* alpha, int k) {
    double total = 0.0;
    for (double v : sorted_evidence(alpha, k, "logtoku_eu")) total += std::max(v, 0.0);
    return static_cast<double>(k) / (total + static_cast<double>(k));
}

}  // namespace tdm
