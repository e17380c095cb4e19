#pragma once
// SGD with momentum, Nesterov momentum and L2 weight decay (PyTorch's torch.optim.SGD semantics:
// v = momentum*v + (g + wd*w); w -= lr * (nesterov ? g + momentum*v : v)).
#include "optimizer.hpp"

namespace tinycnn::optim {

template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<nn::NamedVar<T>> params, double lr = 0.01, double momentum = 0, bool nesterov = false,
      double weight_decay = 0)
      : Optimizer<T>(std::move(params), lr), momentum_(momentum), nesterov_(nesterov), weight_decay_(weight_decay) {
    if (momentum < 0) throw ValueError("SGD: momentum must be >= 0, got " + std::to_string(momentum));
    if (nesterov && momentum <= 0) throw ValueError("SGD: nesterov needs momentum > 0");
    if (momentum > 0) this->add_slot("velocity");
  }
  std::string type() const override { return "SGD"; }
  nn::Config config() const override {
    return {{"momentum", momentum_}, {"nesterov", nesterov_}, {"weight_decay", weight_decay_}};
  }

 protected:
  void update(size_t i, Tensor<T>& w, const Tensor<T>& g) override {
    T* vel = momentum_ > 0 ? this->slot(0, i).data() : nullptr;
    backend::sgd_update(w.device(), w.data(), g.data(), vel, w.numel(), static_cast<T>(this->lr_), static_cast<T>(momentum_),
                        nesterov_, static_cast<T>(weight_decay_));
  }

 private:
  double momentum_;
  bool nesterov_;
  double weight_decay_;
};

}  // namespace tinycnn::optim
