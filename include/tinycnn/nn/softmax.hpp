#pragma once
// Softmax over the last axis. For training, prefer logits + softmax_cross_entropy (stable, fused);
// predict() applies softmax itself.
#include "../autograd/ops/activation.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Softmax : public UnaryLayer<T> {
 public:
  explicit Softmax(std::string name = "") : UnaryLayer<T>(std::move(name)) {}
  std::string type() const override { return "Softmax"; }
  Shape build1(const Shape& in, Rng&) override { return in; }
  Var<T> forward1(const Var<T>& x) override { return ops::softmax(x); }
};

}  // namespace tinycnn::nn
