#pragma once
// Sigmoid activation layer.
#include "../autograd/ops/activation.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Sigmoid : public UnaryLayer<T> {
 public:
  explicit Sigmoid(std::string name = "") : UnaryLayer<T>(std::move(name)) {}
  std::string type() const override { return "Sigmoid"; }
  Shape build1(const Shape& in, Rng&) override { return in; }
  Var<T> forward1(const Var<T>& x) override { return ops::sigmoid(x); }
};

}  // namespace tinycnn::nn
