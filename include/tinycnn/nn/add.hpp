#pragma once
// Add: element-wise sum of two or more inputs of one shape (residual connections).
#include "../autograd/ops/basic.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Add : public Layer<T> {
 public:
  explicit Add(std::string name = "") : Layer<T>(std::move(name)) {}
  std::string type() const override { return "Add"; }
  Shape build(const std::vector<Shape>& in, Rng&) override {
    if (in.size() < 2) throw ValueError("Add '" + this->name() + "': needs at least two inputs, got " + std::to_string(in.size()));
    for (size_t i = 1; i < in.size(); ++i)
      if (in[i] != in[0]) throw_shape("Add '" + this->name() + "'", "inputs must have the same shape", in[0], in[i]);
    return in[0];
  }
  Var<T> forward(const std::vector<Var<T>>& in) override {
    Var<T> y = ops::add(in.at(0), in.at(1));
    for (size_t i = 2; i < in.size(); ++i) y = ops::add(y, in[i]);
    return y;
  }
};

}  // namespace tinycnn::nn
