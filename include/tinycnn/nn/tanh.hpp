#pragma once
// Tanh activation layer.
#include "../autograd/ops/activation.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Tanh : public UnaryLayer<T> {
 public:
  explicit Tanh(std::string name = "") : UnaryLayer<T>(std::move(name)) {}
  std::string type() const override { return "Tanh"; }
  Shape build1(const Shape& in, Rng&) override { return in; }
  Var<T> forward1(const Var<T>& x) override { return ops::tanh(x); }
};

}  // namespace tinycnn::nn
