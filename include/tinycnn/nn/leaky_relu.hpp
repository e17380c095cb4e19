#pragma once
// LeakyReLU: x for x > 0, alpha * x otherwise (Keras default alpha 0.3).
#include "../autograd/ops/activation.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class LeakyReLU : public UnaryLayer<T> {
 public:
  explicit LeakyReLU(double alpha = 0.3, std::string name = "") : UnaryLayer<T>(std::move(name)), alpha_(alpha) {}
  std::string type() const override { return "LeakyReLU"; }
  Shape build1(const Shape& in, Rng&) override { return in; }
  Var<T> forward1(const Var<T>& x) override { return ops::leaky_relu(x, static_cast<T>(alpha_)); }
  Config config() const override { return {{"alpha", alpha_}}; }

 private:
  double alpha_;
};

}  // namespace tinycnn::nn
