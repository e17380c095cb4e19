#pragma once
// Reshape to a per-sample target shape (one entry may be -1), like keras.layers.Reshape.
#include "../autograd/ops/basic.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Reshape : public UnaryLayer<T> {
 public:
  explicit Reshape(Shape target, std::string name = "") : UnaryLayer<T>(std::move(name)), target_(std::move(target)) {}
  std::string type() const override { return "Reshape"; }
  Shape build1(const Shape& in, Rng&) override {
    // Resolve -1 against the input's element count by reshaping an empty view.
    Shape full{1};
    full.insert(full.end(), target_.begin(), target_.end());
    Shape src{1};
    src.insert(src.end(), in.begin(), in.end());
    Shape out = Tensor<T>::empty(src).reshape(full).shape();
    resolved_ = Shape(out.begin() + 1, out.end());
    return resolved_;
  }
  Var<T> forward1(const Var<T>& x) override {
    Shape s{x.shape()[0]};
    s.insert(s.end(), resolved_.begin(), resolved_.end());
    return ops::reshape(x, s);
  }
  Config config() const override { return {{"target_shape", std::vector<int64_t>(target_.begin(), target_.end())}}; }

 private:
  Shape target_, resolved_;
};

}  // namespace tinycnn::nn
