#include "uncertainty/digamma.h"

#include <cmath>
#include <iterator>
#include <limits>
#include <numbers>

namespace tdm {

namespace {

// Below this, the recurrence psi(x) = psi(x + 1) - 1/x lifts x; at or above it the asymptotic
// series is used. The series is divergent, so its accuracy is set by where it starts: from 6 the
// first omitted term (3617 / (8160 x^16)) is 1.6e-13, from 10 it is 4.4e-17, i.e. below double
// rounding, for at most four more divisions in the recurrence.
constexpr double kAsymptoticFrom = 10.0;

// psi(x) ~ ln x - 1/(2x) - sum_{n>=1} B_2n / (2n x^2n), for x >= kAsymptoticFrom.
double digamma_asymptotic(double x) {
    // B_2n / (2n) for n = 1..7: 1/12, -1/120, 1/252, -1/240, 1/132, -691/32760, 1/12.
    constexpr double c[] = {1.0 / 12.0,  -1.0 / 120.0,     1.0 / 252.0, -1.0 / 240.0,
                            1.0 / 132.0, -691.0 / 32760.0, 1.0 / 12.0};
    const double inv2 = 1.0 / (x * x);
    // Horner in 1/x^2, smallest term first.
    double series = 0.0;
    for (int n = static_cast<int>(std::size(c)) - 1; n >= 0; --n) series = (series + c[n]) * inv2;
    return std::log(x) - 0.5 / x - series;
}

}  // namespace

double digamma(double x) {
    if (std::isnan(x) || x == -std::numeric_limits<double>::infinity())
        return std::numeric_limits<double>::quiet_NaN();
    if (x <= 0.0) {
        if (x == std::floor(x)) return std::numeric_limits<double>::quiet_NaN();  // pole
        // Reflection: psi(x) = psi(1 - x) - pi / tan(pi x). The fractional part keeps the
        // argument of tan small, so pi x does not lose the digits that matter for large |x|.
        const double frac = x - std::floor(x);
        return digamma(1.0 - x) - std::numbers::pi / std::tan(std::numbers::pi * frac);
    }
    // Recurrence: psi(x) = psi(x + n) - sum_{j<n} 1/(x + j). Summing the corrections apart and
    // subtracting once keeps the rounding to a couple of ulps of the largest term.
    double shift = 0.0;
    while (x < kAsymptoticFrom) {
        shift += 1.0 / x;
        x += 1.0;
    }
    return digamma_asymptotic(x) - shift;
}

}  // namespace tdm
