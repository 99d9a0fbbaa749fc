// The digamma function psi(x) = d/dx ln Gamma(x), in double precision, for LogTokU's aleatoric
// uncertainty (ALGORITHMS.md section 5.1).
#pragma once

namespace tdm {

// psi(x) for every real x. For x > 0 the error is a few ulps of max(1, |psi(x)|); for x < 0 it
// uses the reflection formula and loses accuracy near the poles like every double-precision
// implementation. Poles (x = 0, -1, -2, ...) and NaN give NaN; psi(+inf) = +inf.
double digamma(double x);

}  // namespace tdm
