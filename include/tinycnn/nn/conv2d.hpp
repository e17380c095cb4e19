#pragma once
// Conv2D: y = activation(conv2d(x, kernel) + bias) over per-sample inputs [C, H, W] (NCHW).
// Kernel [filters, C, R, S] (Keras stores [R, S, C, filters]), Glorot-uniform with
// fan_in = C*R*S and fan_out = filters*R*S as Keras computes them; bias zeros.
//   m.add<nn::Conv2D>(32, 3, 1, "same", "relu");   // filters, kernel_size, strides, padding, activation
#include "../autograd/ops/batchnorm.hpp"
#include "../autograd/ops/conv.hpp"
#include "../autograd/ops/conv_pool.hpp"
#include "activation_fn.hpp"
#include "layer.hpp"
#include "size2.hpp"

namespace tinycnn::nn {

template <class T>
class Conv2D : public UnaryLayer<T> {
 public:
  Conv2D(int64_t filters, Size2 kernel_size, Size2 strides = 1, std::string padding = "valid",
         std::string activation = "", bool use_bias = true, std::string name = "")
      : UnaryLayer<T>(std::move(name)),
        filters_(filters),
        kernel_size_(kernel_size),
        strides_(strides),
        padding_(std::move(padding)),
        activation_(std::move(activation)),
        use_bias_(use_bias) {
    if (filters <= 0) throw ValueError("Conv2D: filters must be positive, got " + std::to_string(filters));
    kernel_size_.check_positive("Conv2D", "kernel_size");
    strides_.check_positive("Conv2D", "strides");
    kernels::cpu::parse_padding(padding_, "Conv2D");
    check_activation_name(activation_, "Conv2D");
  }
  std::string type() const override { return "Conv2D"; }
  Shape build1(const Shape& in, Rng& rng) override {
    if (in.size() != 3) throw_shape("Conv2D '" + this->name() + "'", "input must be [C, H, W] per sample", in);
    const int64_t C = in[0], R = kernel_size_.h, S = kernel_size_.w;
    const auto g = kernels::cpu::make_conv_geom(1, C, in[1], in[2], filters_, R, S, strides_.h, strides_.w,
                                                kernels::cpu::parse_padding(padding_, "Conv2D"),
                                                "Conv2D '" + this->name() + "'");
    kernel_ = this->make_param({filters_, C, R, S});
    this->glorot_uniform(kernel_, C * R * S, filters_ * R * S, rng);
    if (use_bias_) bias_ = this->make_param({filters_});
    return {filters_, g.OH, g.OW};
  }
  Var<T> forward1(const Var<T>& x) override {
    const Var<T> k = this->param_for_forward(kernel_), b = use_bias_ ? this->param_for_forward(bias_) : Var<T>();
    return forward_with(x, k, b);
  }
  // Pool fusion (layer.hpp): with a ReLU, a ReLU6 or no activation (the ops' fused ReLU), a max
  // pooling after it runs in the same op.
  bool can_fuse_max_pool() const override {
    return activation_.empty() || activation_ == "linear" || activation_ == "relu" || activation_ == "relu6";
  }
  Var<T> forward_max_pooled(const Var<T>& x, const ops::MaxPoolSpec& pool, const ChannelAffine<T>* input) override {
    if (!can_fuse_max_pool()) return UnaryLayer<T>::forward_max_pooled(x, pool, input);
    const auto [k, b] = weights_for(input);
    const bool relu = activation_ == "relu" || activation_ == "relu6";
    return ops::conv2d_max_pool2d(x, k, b, strides_.h, strides_.w, padding_, relu, activation_ == "relu6" ? T(6) : T(0),
                                  pool, cache_for(!grad_enabled() || !k.requires_grad()));
  }
  // Inference fusion (layer.hpp): with no activation of its own, a following batch norm folds into
  // the kernel and bias, and a ReLU (or ReLU6) into the convolution's store.
  bool can_fold_affine() const override {
    return (activation_.empty() || activation_ == "linear") && kernel_.value().device() == Device::CPU;
  }
  Var<T> forward_folded(const Var<T>& x, const Tensor<T>& scale, const Tensor<T>& shift, bool relu, T relu_max,
                        const ChannelAffine<T>* input) override {
    const auto [k, b] = weights_for(input);
    auto [wf, bf] = ops::fold_channel_affine(k.value(), b.defined() ? b.value() : Tensor<T>(), scale, shift);
    // Folded only where no gradient is needed (inference_fusion.hpp), so the folded kernel is cached.
    return ops::conv2d(x, Var<T>(wf), Var<T>(bf), strides_.h, strides_.w, padding_, relu, relu_max, cache_for(true));
  }
  // With 'valid' padding a batch norm before it folds into the kernel and bias (nothing padded: every
  // term of every output sees the affine; 'same' would pad zeros where the batch norm's shift belongs).
  bool can_fold_input_affine(int64_t channels) const override {
    return kernels::cpu::parse_padding(padding_, "Conv2D") == kernels::cpu::Padding::Valid &&
           kernel_.value().device() == Device::CPU && channels == kernel_.value().shape()[1];
  }
  Var<T> forward_input_folded(const Var<T>& x, const ChannelAffine<T>& input) override {
    const auto [k, b] = weights_for(&input);
    return forward_with(x, k, b);
  }
  std::vector<NamedVar<T>> parameters() override {
    std::vector<NamedVar<T>> p{{"kernel", kernel_}};
    if (use_bias_) p.push_back({"bias", bias_});
    return p;
  }
  Config config() const override {
    return {{"filters", filters_},
            {"kernel_size", kernel_size_.vec()},
            {"strides", strides_.vec()},
            {"padding", padding_},
            {"activation", activation_.empty() ? std::string("linear") : activation_},
            {"use_bias", use_bias_}};
  }
  Var<T>& kernel() { return kernel_; }
  Var<T>& bias() { return bias_; }
  // The kernel's Winograd transform, kept between forwards whose kernel takes no gradient (inference,
  // a frozen layer) and checked against the kernel's current values on every call; see
  // kernels/cpu/winograd_filter_cache.hpp.
  const kernels::cpu::WinogradFilterCache<T>& filter_cache() const { return filter_cache_; }
  // Off: the transform is made for each call and nothing is kept (saves the cache's memory: a copy of
  // the kernel and 25/9 of its size for the transform).
  void set_filter_caching(bool on) {
    filter_caching_ = on;
    if (!on) filter_cache_.clear();
  }

 private:
  Var<T> forward_with(const Var<T>& x, const Var<T>& k, const Var<T>& b) {
    auto* cache = cache_for(!grad_enabled() || !k.requires_grad());
    if (activation_ == "relu" || activation_ == "relu6")  // fused into the convolution's store
      return ops::conv2d(x, k, b, strides_.h, strides_.w, padding_, true, activation_ == "relu6" ? T(6) : T(0), cache);
    return apply_activation(ops::conv2d(x, k, b, strides_.h, strides_.w, padding_, false, T(0), cache), activation_);
  }
  // The kernel and bias a forward runs with: the parameters, or (inference fusion, no gradient) those
  // with a preceding batch norm folded in (`input`).
  std::pair<Var<T>, Var<T>> weights_for(const ChannelAffine<T>* input) const {
    if (!input)
      return {this->param_for_forward(kernel_), use_bias_ ? this->param_for_forward(bias_) : Var<T>()};
    auto [wf, bf] = ops::fold_input_channel_affine(kernel_.value(), use_bias_ ? bias_.value() : Tensor<T>(),
                                                   input->scale, input->shift, 1);
    return {Var<T>(std::move(wf)), Var<T>(std::move(bf))};
  }
  // use: the forward may keep the transform; otherwise (training this layer) the cache is emptied, so
  // training holds no copy of the weights or their transform (the memory goes back).
  kernels::cpu::WinogradFilterCache<T>* cache_for(bool use) {
    if (use && filter_caching_) return &filter_cache_;
    filter_cache_.clear();
    return nullptr;
  }

  int64_t filters_;
  Size2 kernel_size_, strides_;
  std::string padding_, activation_;
  bool use_bias_;
  Var<T> kernel_, bias_;
  kernels::cpu::WinogradFilterCache<T> filter_cache_;
  bool filter_caching_ = true;
};

}  // namespace tinycnn::nn
