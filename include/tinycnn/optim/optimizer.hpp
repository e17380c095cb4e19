#pragma once
// Optimizer base: holds the (named) trainable parameters, the learning rate, the step count and
// per-parameter state tensors, all of which a checkpoint saves and restores.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/variable.hpp"
#include "../backend/dispatch.hpp"
#include "../nn/layer.hpp"

namespace tinycnn::optim {

template <class T>
class Optimizer {
 public:
  Optimizer(std::vector<nn::NamedVar<T>> params, double lr) : params_(std::move(params)), lr_(lr) {
    if (!(lr >= 0) || !std::isfinite(lr)) throw ValueError("optimizer: learning rate must be finite and >= 0, got " + std::to_string(lr));
    for (auto& p : params_)
      if (!p.second.requires_grad()) throw ValueError("optimizer: parameter '" + p.first + "' does not require grad");
  }
  virtual ~Optimizer() = default;
  virtual std::string type() const = 0;
  // Hyperparameters (besides the learning rate) that define the run; checkpoints hash them so a
  // resume with other settings is refused.
  virtual nn::Config config() const { return {}; }
  // One update from the accumulated gradients; parameters without a gradient are skipped.
  void step() {
    ++steps_;
    for (size_t i = 0; i < params_.size(); ++i) {
      Var<T>& p = params_[i].second;
      if (!p.grad().defined()) continue;
      for (auto& slot_tensors : slots_)
        if (slot_tensors[i].device() != p.value().device())
          throw Error("optimizer: the state of parameter '" + params_[i].first + "' is on " +
                      device_name(slot_tensors[i].device()) + " but the parameter is on " +
                      device_name(p.value().device()) + "; move the optimizer with the model (optimizer.to(device))");
      update(i, p.value(), p.grad());
    }
  }
  // Moves the per-parameter state (e.g. Adam's m and v) to `dev`: call it with the model's to(dev)
  // (train::to_device does both). The parameters themselves belong to the model.
  void to(Device dev) {
    for (auto& slot_tensors : slots_)
      for (Tensor<T>& t : slot_tensors) t = t.to(dev);
  }
  void zero_grad() {
    for (auto& p : params_) p.second.zero_grad();
  }
  double lr() const { return lr_; }
  void set_lr(double lr) {
    if (!(lr >= 0) || !std::isfinite(lr)) throw ValueError("optimizer: learning rate must be finite and >= 0, got " + std::to_string(lr));
    lr_ = lr;
  }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  std::vector<nn::NamedVar<T>>& params() { return params_; }
  // Per-parameter state ("<param>/<slot>") for checkpoints; restore by copying into these tensors.
  std::vector<std::pair<std::string, Tensor<T>>> state() {
    std::vector<std::pair<std::string, Tensor<T>>> out;
    for (size_t i = 0; i < params_.size(); ++i)
      for (size_t s = 0; s < slots_.size(); ++s) out.push_back({params_[i].first + "/" + slot_names_[s], slot(s, i)});
    return out;
  }

 protected:
  virtual void update(size_t i, Tensor<T>& w, const Tensor<T>& g) = 0;
  // Named per-parameter state slots (e.g. Adam's "m" and "v"), zero-initialised.
  void add_slot(const std::string& name) {
    slot_names_.push_back(name);
    std::vector<Tensor<T>> ts;
    for (auto& p : params_) ts.push_back(Tensor<T>::zeros(p.second.shape(), p.second.value().device()));
    slots_.push_back(std::move(ts));
  }
  Tensor<T>& slot(size_t s, size_t i) { return slots_[s][i]; }

  std::vector<nn::NamedVar<T>> params_;
  double lr_;
  int64_t steps_ = 0;
  std::vector<std::string> slot_names_;
  std::vector<std::vector<Tensor<T>>> slots_;
};

// Rescales all gradients so their global L2 norm is at most max_norm; returns the norm before clipping.
// Host gradients are summed in double; device ones as per-tensor sums of squares on the device (one
// value per tensor comes back), and the rescale is g += (s - 1) g there.
template <class T>
double clip_grad_norm(std::vector<nn::NamedVar<T>>& params, double max_norm) {
  double sq = 0;
  for (auto& p : params) {
    const Tensor<T>& g = p.second.grad();
    if (!g.defined()) continue;
    if (g.device() == Device::CPU) {
      for (int64_t i = 0; i < g.numel(); ++i) sq += static_cast<double>(g[i]) * g[i];
    } else {
      Tensor<T> g2 = Tensor<T>::empty(g.shape(), g.device());
      backend::mul_forward(g.device(), g.data(), g.data(), g2.data(), g.numel());
      Tensor<T> s = Tensor<T>::zeros({1}, g.device());
      backend::sum_add(g.device(), static_cast<const T*>(g2.data()), g.numel(), s.data());
      sq += static_cast<double>(s.to_vector()[0]);
    }
  }
  const double norm = std::sqrt(sq);
  if (norm > max_norm && norm > 0) {
    const T s = static_cast<T>(max_norm / (norm + 1e-6));
    for (auto& p : params) {
      Tensor<T>& g = p.second.grad();
      if (!g.defined()) continue;
      if (g.device() == Device::CPU)
        for (int64_t i = 0; i < g.numel(); ++i) g[i] *= s;
      else
        backend::add_scaled(g.device(), static_cast<const T*>(g.data()), static_cast<T>(s - T(1)), g.data(), g.numel());
    }
  }
  return norm;
}

}  // namespace tinycnn::optim
