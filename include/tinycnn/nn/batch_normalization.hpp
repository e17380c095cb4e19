#pragma once
// BatchNormalization over the channel axis of per-sample inputs [C, H, W] or [C].
// Parameters gamma (ones) and beta (zeros); buffers moving_mean (zeros) and moving_variance (ones),
// Keras' names, counted by Keras as non-trainable parameters (4*C in all, 2*C non-trainable).
// Batch statistics are used, and the moving ones updated, only when training() is true; a frozen
// layer (trainable false) or a model in inference uses the moving statistics, as Keras does.
#include "../autograd/ops/batchnorm.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class BatchNormalization : public UnaryLayer<T> {
 public:
  explicit BatchNormalization(double momentum = 0.99, double epsilon = 1e-3, std::string name = "")
      : UnaryLayer<T>(std::move(name)), epsilon_(epsilon) {
    set_momentum(momentum);
    if (!(epsilon > 0)) throw ValueError("BatchNormalization: epsilon must be positive, got " + std::to_string(epsilon));
  }
  std::string type() const override { return "BatchNormalization"; }
  Shape build1(const Shape& in, Rng&) override {
    if (in.size() != 3 && in.size() != 1)
      throw_shape("BatchNormalization '" + this->name() + "'", "input must be [C, H, W] or [C] per sample", in);
    const int64_t C = in[0];
    gamma_ = this->make_param({C});
    gamma_.value().fill(T(1));
    beta_ = this->make_param({C});
    moving_mean_ = Var<T>(Tensor<T>::zeros({C}));
    moving_variance_ = Var<T>(Tensor<T>::full({C}, T(1)));
    return in;
  }
  Var<T> forward1(const Var<T>& x) override {
    return ops::batch_norm(x, this->param_for_forward(gamma_), this->param_for_forward(beta_), moving_mean_.value(), moving_variance_.value(), this->training(),
                           static_cast<T>(momentum_), static_cast<T>(epsilon_));
  }
  // In inference on the CPU, the affine x * scale + shift this layer is (nn/inference_fusion.hpp).
  bool inference_affine(Tensor<T>& scale, Tensor<T>& shift) const override {
    if (this->training() || gamma_.value().device() != Device::CPU) return false;
    const int64_t C = gamma_.value().numel();
    scale = Tensor<T>::empty({C});
    shift = Tensor<T>::empty({C});
    kernels::cpu::batchnorm_inference_affine(gamma_.value().data(), beta_.value().data(), moving_mean_.value().data(),
                                             moving_variance_.value().data(), C, static_cast<T>(epsilon_),
                                             scale.data(), shift.data());
    return true;
  }
  std::vector<NamedVar<T>> parameters() override { return {{"gamma", gamma_}, {"beta", beta_}}; }
  std::vector<NamedVar<T>> buffers() override {
    return {{"moving_mean", moving_mean_}, {"moving_variance", moving_variance_}};
  }
  Config config() const override { return {{"momentum", momentum_}, {"epsilon", epsilon_}}; }
  double momentum() const { return momentum_; }
  // Keras' convention: moving = momentum * moving + (1 - momentum) * batch statistic (PyTorch's
  // momentum 0.1 is Keras' 0.9). Changeable after construction for fine-tuning recipes.
  void set_momentum(double momentum) {
    if (!(momentum >= 0 && momentum <= 1))
      throw ValueError("BatchNormalization" + (this->name().empty() ? std::string() : " '" + this->name() + "'") +
                       ": momentum must be in [0, 1], got " + std::to_string(momentum));
    momentum_ = momentum;
  }
  Var<T>& gamma() { return gamma_; }
  Var<T>& beta() { return beta_; }
  Var<T>& moving_mean() { return moving_mean_; }
  Var<T>& moving_variance() { return moving_variance_; }

 private:
  double momentum_ = 0.99, epsilon_;
  Var<T> gamma_, beta_, moving_mean_, moving_variance_;
};

}  // namespace tinycnn::nn
