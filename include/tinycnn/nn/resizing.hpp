#pragma once
// Resizing: per-sample [C, H, W] -> [C, height, width], as Keras' Resizing layer with
// interpolation "bilinear" (half-pixel centres; the only interpolation offered). antialias = true
// widens the filter when shrinking, exactly the filter of the data pipeline's resize, so a model
// trained at one input size can be wrapped to take another (an ensemble of members with different
// input sizes: nn::ensemble's adapters). Differentiable; no weights.
#include <string>

#include "../autograd/ops/resize.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Resizing : public UnaryLayer<T> {
 public:
  Resizing(int64_t height, int64_t width, std::string interpolation = "bilinear", bool antialias = false,
           std::string name = "")
      : UnaryLayer<T>(std::move(name)), height_(height), width_(width), antialias_(antialias) {
    if (height <= 0 || width <= 0)
      throw ValueError("Resizing: height and width must be positive, got " + std::to_string(height) + "x" +
                       std::to_string(width));
    if (interpolation != "bilinear")
      throw ValueError("Resizing: interpolation '" + interpolation + "' is not supported (only 'bilinear')");
  }
  std::string type() const override { return "Resizing"; }
  Shape build1(const Shape& in, Rng&) override {
    if (in.size() != 3 || in[1] <= 0 || in[2] <= 0)
      throw_shape("Resizing '" + this->name() + "'", "input must be [C, H, W] per sample", in);
    return {in[0], height_, width_};
  }
  Var<T> forward1(const Var<T>& x) override { return ops::resize2d(x, height_, width_, antialias_); }
  Config config() const override {
    return {{"height", height_}, {"width", width_}, {"interpolation", std::string("bilinear")}, {"antialias", antialias_}};
  }

 private:
  int64_t height_, width_;
  bool antialias_;
};

}  // namespace tinycnn::nn
