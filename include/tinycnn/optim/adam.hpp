#pragma once
// Adam and AdamW with bias correction, as torch.optim.Adam/AdamW:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// Adam adds weight_decay*w to g (L2); AdamW decays the weights directly (w *= 1 - lr*wd).
// Keras' Adam puts epsilon inside the bias correction (eps_hat); with eps = 1e-7 the two agree to
// within rounding for any practical gradient scale.
#include "optimizer.hpp"

namespace tinycnn::optim {

template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<nn::NamedVar<T>> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-7, double weight_decay = 0, bool decoupled = false)
      : Optimizer<T>(std::move(params), lr), beta1_(beta1), beta2_(beta2), eps_(eps), wd_(weight_decay), decoupled_(decoupled) {
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
      throw ValueError("Adam: betas must be in [0, 1), got " + std::to_string(beta1) + ", " + std::to_string(beta2));
    if (!(eps > 0)) throw ValueError("Adam: eps must be > 0");
    this->add_slot("m");
    this->add_slot("v");
  }
  std::string type() const override { return decoupled_ ? "AdamW" : "Adam"; }
  nn::Config config() const override {
    return {{"beta1", beta1_}, {"beta2", beta2_}, {"epsilon", eps_}, {"weight_decay", wd_}};
  }

 protected:
  void update(size_t i, Tensor<T>& w, const Tensor<T>& g) override {
    backend::adam_update(w.device(), w.data(), g.data(), this->slot(0, i).data(), this->slot(1, i).data(), w.numel(),
                         static_cast<T>(this->lr_), static_cast<T>(beta1_), static_cast<T>(beta2_), static_cast<T>(eps_),
                         this->steps_, static_cast<T>(wd_), decoupled_);
  }

 private:
  double beta1_, beta2_, eps_, wd_;
  bool decoupled_;
};

template <class T>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<nn::NamedVar<T>> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 0.01)
      : Adam<T>(std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}
};

}  // namespace tinycnn::optim
