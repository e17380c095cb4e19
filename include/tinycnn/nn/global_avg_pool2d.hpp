#pragma once
// GlobalAvgPool2D (Keras class GlobalAveragePooling2D): per-sample [C, H, W] -> [C].
#include "../autograd/ops/pool.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class GlobalAvgPool2D : public UnaryLayer<T> {
 public:
  explicit GlobalAvgPool2D(std::string name = "") : UnaryLayer<T>(std::move(name)) {}
  std::string type() const override { return "GlobalAveragePooling2D"; }
  Shape build1(const Shape& in, Rng&) override {
    if (in.size() != 3 || in[1] * in[2] == 0)
      throw_shape("GlobalAveragePooling2D '" + this->name() + "'", "input must be a non-empty [C, H, W] per sample", in);
    return {in[0]};
  }
  Var<T> forward1(const Var<T>& x) override { return ops::global_avg_pool2d(x); }
};

// Keras' other name for the same layer.
template <class T>
using GlobalAveragePooling2D = GlobalAvgPool2D<T>;

}  // namespace tinycnn::nn
