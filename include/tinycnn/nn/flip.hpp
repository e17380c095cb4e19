#pragma once
// Flip: the horizontal mirror of per-sample [C, H, W] inputs, always (not only in training, unlike
// Keras' RandomFlip). Its use is test-time flip averaging baked into a model: an ensemble whose
// members see the photo and its mirror (intel_scenes ensemble --flip) averages both predictions in
// every evaluate/predict/sort without a flag. Differentiable; no weights.
#include <string>

#include "../autograd/ops/resize.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Flip : public UnaryLayer<T> {
 public:
  explicit Flip(std::string mode = "horizontal", std::string name = "") : UnaryLayer<T>(std::move(name)) {
    if (mode != "horizontal") throw ValueError("Flip: mode '" + mode + "' is not supported (only 'horizontal')");
  }
  std::string type() const override { return "Flip"; }
  Shape build1(const Shape& in, Rng&) override {
    if (in.size() != 3) throw_shape("Flip '" + this->name() + "'", "input must be [C, H, W] per sample", in);
    return in;
  }
  Var<T> forward1(const Var<T>& x) override { return ops::flip_w(x); }
  Config config() const override { return {{"mode", std::string("horizontal")}}; }
};

}  // namespace tinycnn::nn
