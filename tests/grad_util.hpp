#pragma once
// Shared helpers for the gradient-check tests.
#include <doctest/doctest.h>

#include <tinycnn/tinycnn.hpp>

namespace tt {
using namespace tinycnn;

// Random tensor in [lo, hi), optionally pushed away from 0 (ReLU kinks) by at least `gap`.
inline Tensor<double> rand_t(Shape s, uint64_t seed, double lo = -1, double hi = 1, double gap = 0) {
  Rng r(seed);
  Tensor<double> t(std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = r.uniform(lo, hi);
    if (gap > 0 && std::fabs(v) < gap) v = v < 0 ? v - gap : v + gap;
    t[i] = v;
  }
  return t;
}

inline void expect_grad_ok(const GradCheckResult& r) {
  INFO(r.message);
  CHECK(r.checked > 0);
  CHECK(r.ok);
}

// Gradient check of a whole layer: w.r.t. its input and every parameter.
inline void check_layer(nn::Layer<double>& layer, const Shape& batch_shape, uint64_t seed, double gap = 0.05) {
  Rng rng(seed);
  Shape per(batch_shape.begin() + 1, batch_shape.end());
  layer.build({per}, rng);
  layer.mark_built();
  Var<double> x(rand_t(batch_shape, seed + 1, -1, 1, gap));
  std::vector<Var<double>> wrt{x};
  for (auto& p : layer.parameters()) {
    // Perturb parameters away from their init (e.g. zero biases) so every path carries gradient.
    Tensor<double> noise = rand_t(p.second.shape(), seed + 7, -0.2, 0.2);
    for (int64_t i = 0; i < noise.numel(); ++i) p.second.value()[i] += noise[i];
    wrt.push_back(p.second);
  }
  expect_grad_ok(gradcheck([&] { return layer.forward({x}); }, wrt));
}
}  // namespace tt
