#pragma once
// Activation layer by name, like keras.layers.Activation("relu").
#include "activation_fn.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Activation : public UnaryLayer<T> {
 public:
  explicit Activation(std::string activation, std::string name = "")
      : UnaryLayer<T>(std::move(name)), activation_(std::move(activation)) {
    check_activation_name(activation_, "Activation");
  }
  std::string type() const override { return "Activation"; }
  Shape build1(const Shape& in, Rng&) override { return in; }
  Var<T> forward1(const Var<T>& x) override { return apply_activation(x, activation_); }
  bool fusable_relu(T& max_value) const override {
    max_value = activation_ == "relu6" ? T(6) : T(0);
    return activation_ == "relu" || activation_ == "relu6";
  }
  Config config() const override { return {{"activation", activation_}}; }

 private:
  std::string activation_;
};

}  // namespace tinycnn::nn
