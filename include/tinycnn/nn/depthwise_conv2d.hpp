#pragma once
// DepthwiseConv2D: each input channel c is convolved with its own depth_multiplier (M) filters,
// giving output channel c*M + m (Keras order). Per-sample input [C, H, W] -> [C*M, OH, OW].
// Depthwise kernel [C, M, R, S] (Keras stores [R, S, C, M]), Glorot-uniform with Keras' fans for
// that 4-D shape: fan_in = R*S*C, fan_out = R*S*M; bias [C*M] zeros.
#include "../autograd/ops/batchnorm.hpp"
#include "../autograd/ops/conv.hpp"
#include "activation_fn.hpp"
#include "layer.hpp"
#include "size2.hpp"

namespace tinycnn::nn {

template <class T>
class DepthwiseConv2D : public UnaryLayer<T> {
 public:
  explicit DepthwiseConv2D(Size2 kernel_size, Size2 strides = 1, std::string padding = "valid",
                           int64_t depth_multiplier = 1, std::string activation = "", bool use_bias = true,
                           std::string name = "")
      : UnaryLayer<T>(std::move(name)),
        kernel_size_(kernel_size),
        strides_(strides),
        padding_(std::move(padding)),
        depth_multiplier_(depth_multiplier),
        activation_(std::move(activation)),
        use_bias_(use_bias) {
    kernel_size_.check_positive("DepthwiseConv2D", "kernel_size");
    strides_.check_positive("DepthwiseConv2D", "strides");
    if (depth_multiplier <= 0)
      throw ValueError("DepthwiseConv2D: depth_multiplier must be positive, got " + std::to_string(depth_multiplier));
    kernels::cpu::parse_padding(padding_, "DepthwiseConv2D");
    check_activation_name(activation_, "DepthwiseConv2D");
  }
  std::string type() const override { return "DepthwiseConv2D"; }
  Shape build1(const Shape& in, Rng& rng) override {
    if (in.size() != 3)
      throw_shape("DepthwiseConv2D '" + this->name() + "'", "input must be [C, H, W] per sample", in);
    const int64_t C = in[0], M = depth_multiplier_, R = kernel_size_.h, S = kernel_size_.w;
    const auto g = kernels::cpu::make_conv_geom(1, C, in[1], in[2], C * M, R, S, strides_.h, strides_.w,
                                                kernels::cpu::parse_padding(padding_, "DepthwiseConv2D"),
                                                "DepthwiseConv2D '" + this->name() + "'");
    kernel_ = this->make_param({C, M, R, S});
    this->glorot_uniform(kernel_, R * S * C, R * S * M, rng);
    if (use_bias_) bias_ = this->make_param({C * M});
    return {C * M, g.OH, g.OW};
  }
  Var<T> forward1(const Var<T>& x) override {
    const Var<T> k = this->param_for_forward(kernel_), b = use_bias_ ? this->param_for_forward(bias_) : Var<T>();
    if (activation_ == "relu" || activation_ == "relu6")  // fused: applied to each plane as it is written
      return ops::depthwise_conv2d(x, k, b, strides_.h, strides_.w, padding_, true,
                                   activation_ == "relu6" ? T(6) : T(0));
    return apply_activation(ops::depthwise_conv2d(x, k, b, strides_.h, strides_.w, padding_), activation_);
  }
  // Inference fusion (layer.hpp): with no activation of its own, a following batch norm folds into
  // the kernel and bias (output channel c*M + m scales kernel row [c, m]), and a ReLU (or ReLU6) into
  // the output planes as they are written.
  bool can_fold_affine() const override {
    return (activation_.empty() || activation_ == "linear") && kernel_.value().device() == Device::CPU;
  }
  Var<T> forward_folded(const Var<T>& x, const Tensor<T>& scale, const Tensor<T>& shift, bool relu, T relu_max,
                        const ChannelAffine<T>* input) override {
    if (input) return UnaryLayer<T>::forward_folded(x, scale, shift, relu, relu_max, input);  // none planned
    auto [wf, bf] = ops::fold_channel_affine(kernel_.value(), use_bias_ ? bias_.value() : Tensor<T>(), scale, shift);
    return ops::depthwise_conv2d(x, Var<T>(wf), Var<T>(bf), strides_.h, strides_.w, padding_, relu, relu_max);
  }
  std::vector<NamedVar<T>> parameters() override {
    std::vector<NamedVar<T>> p{{"depthwise_kernel", kernel_}};
    if (use_bias_) p.push_back({"bias", bias_});
    return p;
  }
  Config config() const override {
    return {{"kernel_size", kernel_size_.vec()},
            {"strides", strides_.vec()},
            {"padding", padding_},
            {"depth_multiplier", depth_multiplier_},
            {"activation", activation_.empty() ? std::string("linear") : activation_},
            {"use_bias", use_bias_}};
  }
  Var<T>& depthwise_kernel() { return kernel_; }
  Var<T>& bias() { return bias_; }

 private:
  Size2 kernel_size_, strides_;
  std::string padding_;
  int64_t depth_multiplier_;
  std::string activation_;
  bool use_bias_;
  Var<T> kernel_, bias_;
};

}  // namespace tinycnn::nn
