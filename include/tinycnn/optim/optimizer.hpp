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
      update(i, p.value(), p.grad());
    }
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
    for (auto& p : params_) ts.push_back(Tensor<T>(p.second.shape()));
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
template <class T>
double clip_grad_norm(std::vector<nn::NamedVar<T>>& params, double max_norm) {
  double sq = 0;
  for (auto& p : params)
    if (p.second.grad().defined())
      for (int64_t i = 0; i < p.second.grad().numel(); ++i) sq += static_cast<double>(p.second.grad()[i]) * p.second.grad()[i];
  const double norm = std::sqrt(sq);
  if (norm > max_norm && norm > 0) {
    const T s = static_cast<T>(max_norm / (norm + 1e-6));
    for (auto& p : params)
      if (p.second.grad().defined())
        for (int64_t i = 0; i < p.second.grad().numel(); ++i) p.second.grad()[i] *= s;
  }
  return norm;
}

}  // namespace tinycnn::optim
