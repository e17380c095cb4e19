#pragma once
// Average: element-wise mean of two or more inputs of one shape (Keras' Average merge layer), e.g.
// the logits of the members of an ensemble (nn/ensemble.hpp).
#include "../autograd/ops/basic.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Average : public Layer<T> {
 public:
  explicit Average(std::string name = "") : Layer<T>(std::move(name)) {}
  std::string type() const override { return "Average"; }
  Shape build(const std::vector<Shape>& in, Rng&) override {
    if (in.size() < 2)
      throw ValueError("Average '" + this->name() + "': needs at least two inputs, got " + std::to_string(in.size()));
    for (size_t i = 1; i < in.size(); ++i)
      if (in[i] != in[0]) throw_shape("Average '" + this->name() + "'", "inputs must have the same shape", in[0], in[i]);
    return in[0];
  }
  Var<T> forward(const std::vector<Var<T>>& in) override {
    Var<T> y = ops::add(in.at(0), in.at(1));
    for (size_t i = 2; i < in.size(); ++i) y = ops::add(y, in[i]);
    return ops::scale(y, T(1) / static_cast<T>(in.size()));
  }
};

}  // namespace tinycnn::nn
