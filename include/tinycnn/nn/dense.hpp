#pragma once
// Dense (fully connected): y = activation(x W + b). Kernel W is [in, units] as in Keras, Glorot-uniform
// initialised; bias zeros. Input must be [N, in] (add Flatten after convolutions).
#include "../autograd/ops/basic.hpp"
#include "../autograd/ops/batchnorm.hpp"
#include "activation_fn.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Dense : public UnaryLayer<T> {
 public:
  explicit Dense(int64_t units, std::string activation = "", bool use_bias = true, std::string name = "")
      : UnaryLayer<T>(std::move(name)), units_(units), activation_(std::move(activation)), use_bias_(use_bias) {
    if (units <= 0) throw ValueError("Dense: units must be positive, got " + std::to_string(units));
    check_activation_name(activation_, "Dense");
  }
  std::string type() const override { return "Dense"; }
  Shape build1(const Shape& in, Rng& rng) override {
    if (in.size() != 1) throw_shape("Dense '" + this->name() + "'", "input must be flat [features] per sample (add Flatten)", in);
    kernel_ = this->make_param({in[0], units_});
    this->glorot_uniform(kernel_, in[0], units_, rng);
    if (use_bias_) bias_ = this->make_param({units_});
    return {units_};
  }
  Var<T> forward1(const Var<T>& x) override {
    return apply_activation(ops::linear(x, this->param_for_forward(kernel_), use_bias_ ? this->param_for_forward(bias_) : Var<T>()), activation_);
  }
  // Inference fusion (layer.hpp): a batch norm over the input features folds into the kernel's rows.
  bool can_fold_input_affine(int64_t channels) const override {
    return kernel_.value().device() == Device::CPU && channels == kernel_.value().shape()[0];
  }
  Var<T> forward_input_folded(const Var<T>& x, const ChannelAffine<T>& input) override {
    auto [wf, bf] = ops::fold_input_channel_affine(kernel_.value(), use_bias_ ? bias_.value() : Tensor<T>(), input.scale,
                                                   input.shift, 0);
    return apply_activation(ops::linear(x, Var<T>(wf), Var<T>(bf)), activation_);
  }
  std::vector<NamedVar<T>> parameters() override {
    std::vector<NamedVar<T>> p{{"kernel", kernel_}};
    if (use_bias_) p.push_back({"bias", bias_});
    return p;
  }
  Config config() const override {
    return {{"units", units_}, {"activation", activation_.empty() ? std::string("linear") : activation_}, {"use_bias", use_bias_}};
  }
  Var<T>& kernel() { return kernel_; }
  Var<T>& bias() { return bias_; }

 private:
  int64_t units_;
  std::string activation_;
  bool use_bias_;
  Var<T> kernel_, bias_;
};

}  // namespace tinycnn::nn
