#pragma once
// The one generic gradient checker, applied to every op, layer and loss (tests/test_gradcheck*.cpp).
//
// For a function f() that computes a Var<double> from leaf Vars `wrt` (inputs and/or parameters):
//  1. Poison mode: every tensor an op allocates uninitialised (outputs, scratch) is NaN-filled, so an
//     element a kernel forgets to write shows up as NaN in the output or the gradients.
//  2. A random cotangent c reduces the output to the scalar L = dot(f(), c).
//  3. Accumulation: each wrt gradient is pre-filled with random values g0 before backward; the
//     analytic gradient is (grad after backward) - g0, so a backward that overwrites instead of adding
//     is caught.
//  4. Central differences on L in float64 for every element of every wrt tensor.
// An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "variable.hpp"

namespace tinycnn {

struct GradCheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;
  int max_report = 5;  // mismatches listed in the message
};

struct GradCheckResult {
  bool ok = true;
  double max_abs_err = 0;
  int64_t checked = 0;
  std::string message;  // empty when ok
};

inline GradCheckResult gradcheck(const std::function<Var<double>()>& f, std::vector<Var<double>> wrt,
                                 const GradCheckOptions& opt = {}) {
  GradCheckResult res;
  std::ostringstream msg;
  int reported = 0;
  auto fail = [&](const std::string& what) {
    res.ok = false;
    if (reported++ < opt.max_report) msg << what << "\n";
  };
  Rng rng(opt.seed);
  for (Var<double>& v : wrt) v.set_requires_grad(true);

  bool& poison = debug::poison_allocations();
  const bool prev_poison = poison;
  poison = true;
  Var<double> y = f();
  Tensor<double> cot(y.shape());
  cot.fill_uniform(-1, 1, rng);
  for (int64_t i = 0; i < y.value().numel(); ++i)
    if (!std::isfinite(y.value()[i])) fail("forward output element " + std::to_string(i) + " is not finite (unwritten?)");

  std::vector<Tensor<double>> prefill;
  for (Var<double>& v : wrt) {
    Tensor<double> g0(v.shape());
    g0.fill_uniform(-1, 1, rng);
    v.grad() = g0.clone();
    prefill.push_back(g0);
  }
  y.backward(cot);
  poison = prev_poison;

  auto loss_at = [&]() {
    NoGradGuard ng;
    Var<double> out = f();
    double s = 0;
    for (int64_t i = 0; i < out.value().numel(); ++i) s += out.value()[i] * cot[i];
    return s;
  };
  for (size_t w = 0; w < wrt.size(); ++w) {
    Tensor<double>& x = wrt[w].value();
    const Tensor<double>& g = wrt[w].grad();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = x[i];
      x[i] = orig + opt.eps;
      const double lp = loss_at();
      x[i] = orig - opt.eps;
      const double lm = loss_at();
      x[i] = orig;
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double analytic = g.defined() ? g[i] - prefill[w][i] : 0.0;
      const double err = std::fabs(analytic - numeric);
      ++res.checked;
      if (std::isnan(analytic) || std::isnan(err)) {
        fail("wrt " + std::to_string(w) + " element " + std::to_string(i) + ": gradient is NaN (unwritten buffer?)");
        continue;
      }
      res.max_abs_err = std::max(res.max_abs_err, err);
      if (err > opt.atol + opt.rtol * std::fabs(numeric)) {
        std::ostringstream o;
        o << "wrt " << w << " element " << i << ": analytic " << analytic << " vs numeric " << numeric;
        fail(o.str());
      }
    }
  }
  res.message = msg.str();
  return res;
}

}  // namespace tinycnn
