#pragma once
// Rescaling: y = x * scale + offset, as Keras' Rescaling layer (no weights). scale and offset are one
// number or one per channel (axis 0 of the per-sample shape [C, ...]: tinycnn is channels-first), so a
// model can carry its own pixel preprocessing, e.g. Rescaling(1 / 127.5, -1) for MobileNet's [-1, 1],
// or (x / 255 - mean) / std as scale = 1 / (255 std), offset = -mean / std.
#include <cmath>
#include <string>
#include <vector>

#include "../autograd/ops/resize.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Rescaling : public UnaryLayer<T> {
 public:
  explicit Rescaling(double scale, double offset = 0.0, std::string name = "")
      : Rescaling(std::vector<double>{scale}, std::vector<double>{offset}, std::move(name)) {}
  Rescaling(std::vector<double> scale, std::vector<double> offset, std::string name = "")
      : UnaryLayer<T>(std::move(name)), scale_(std::move(scale)), offset_(std::move(offset)) {
    for (const auto* v : {&scale_, &offset_}) {
      const char* what = v == &scale_ ? "scale" : "offset";
      if (v->empty()) throw ValueError(std::string("Rescaling: ") + what + " is empty");
      for (double d : *v)
        if (!std::isfinite(d)) throw ValueError(std::string("Rescaling: ") + what + " must be finite");
    }
  }
  std::string type() const override { return "Rescaling"; }
  Shape build1(const Shape& in, Rng&) override {
    if (in.empty()) throw_shape("Rescaling '" + this->name() + "'", "input must have a channel axis [C, ...]", in);
    for (const auto* v : {&scale_, &offset_})
      if (v->size() != 1 && static_cast<int64_t>(v->size()) != in[0])
        throw_shape("Rescaling '" + this->name() + "'",
                    std::string(v == &scale_ ? "scale" : "offset") + " has " + std::to_string(v->size()) +
                        " values; give 1 or one per channel",
                    in);
    return in;
  }
  Var<T> forward1(const Var<T>& x) override { return ops::channel_affine(x, scale_, offset_); }
  Config config() const override { return {{"scale", value(scale_)}, {"offset", value(offset_)}}; }
  const std::vector<double>& scale() const { return scale_; }
  const std::vector<double>& offset() const { return offset_; }

 private:
  static ConfigValue value(const std::vector<double>& v) { return v.size() == 1 ? ConfigValue(v[0]) : ConfigValue(v); }
  std::vector<double> scale_, offset_;
};

}  // namespace tinycnn::nn
