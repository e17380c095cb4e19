#pragma once
// ReLU with an optional cap (max_value 6 = ReLU6, as MobileNet uses).
#include "../autograd/ops/activation.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class ReLU : public UnaryLayer<T> {
 public:
  explicit ReLU(double max_value = 0, std::string name = "") : UnaryLayer<T>(std::move(name)), max_value_(max_value) {
    if (max_value < 0) throw ValueError("ReLU: max_value must be >= 0 (0 = no cap), got " + std::to_string(max_value));
  }
  std::string type() const override { return "ReLU"; }
  Shape build1(const Shape& in, Rng&) override { return in; }
  Var<T> forward1(const Var<T>& x) override { return ops::relu(x, static_cast<T>(max_value_)); }
  bool fusable_relu(T& max_value) const override {
    max_value = static_cast<T>(max_value_);
    return true;
  }
  Config config() const override { return {{"max_value", max_value_}}; }

 private:
  double max_value_;
};

}  // namespace tinycnn::nn
