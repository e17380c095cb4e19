#pragma once
// Stochastic weight averaging (Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
// Generalization", 2018; PyTorch's torch.optim.swa_utils.AveragedModel): a callback that keeps the
// running mean of the trainable weights at the end of every epoch from `start_epoch` (0-based) on.
// The mean of the points a run visits late in training lies nearer the middle of the wide optimum
// they circle than any one of them, which tends to generalise better.
//
//   auto swa = std::make_shared<train::SWA<float>>(model, /*start_epoch*/ 4);
//   o.callbacks.push_back(swa);
//   train::fit(model, opt, data, o);
//   swa->apply();                                 // the model's weights := their average
//   train::update_batch_norm(model, plain_data);  // BN statistics of no single epoch fit the average
//
// The averages live beside the parameters (on their device) and are updated in place through the
// dispatch facade (add_scaled), so this works on the CPU and the GPU alike. They are not part of a
// checkpoint: a resumed run would average only the epochs after the resume (intel_scenes refuses
// --swa-from with --resume for that reason).
#include <cstdint>
#include <string>
#include <vector>

#include "../backend/dispatch.hpp"
#include "callbacks.hpp"

namespace tinycnn::train {

template <class T>
class SWA : public Callback<T> {
 public:
  explicit SWA(nn::Model<T>& model, int64_t start_epoch = 0) : model_(model), start_(start_epoch) {
    if (start_epoch < 0) throw ValueError("SWA: start_epoch must be >= 0, got " + std::to_string(start_epoch));
  }
  std::string name() const override { return "SWA"; }
  void on_epoch_end(TrainContext<T>&, int64_t epoch, Logs&) override {
    if (epoch >= start_) add(model_.parameters(true));
  }
  // How many weight sets are in the average.
  int64_t count() const { return n_; }
  // Copies the average into the model's trainable weights.
  void apply() {
    if (n_ == 0)
      throw ValueError("SWA::apply: no epoch was averaged (start_epoch " + std::to_string(start_) +
                       " was not reached)");
    auto ps = model_.parameters(true);
    check_same(ps);
    for (size_t k = 0; k < ps.size(); ++k) ps[k].second.value().copy_from(avg_[k]);
  }

 private:
  // avg += (w - avg) / n, as two in-place scaled additions.
  void add(std::vector<nn::NamedVar<T>> ps) {
    if (n_ == 0) {
      names_.clear();
      for (auto& p : ps) {
        avg_.push_back(p.second.value().clone());
        names_.push_back(p.first);
      }
      n_ = 1;
      return;
    }
    check_same(ps);
    ++n_;
    const T a = T(1) / static_cast<T>(n_);
    for (size_t k = 0; k < ps.size(); ++k) {
      Tensor<T>& avg = avg_[k];
      const Tensor<T>& w = ps[k].second.value();
      backend::add_scaled(avg.device(), avg.data(), -a, avg.data(), avg.numel());
      backend::add_scaled(avg.device(), w.data(), a, avg.data(), avg.numel());
    }
  }
  void check_same(const std::vector<nn::NamedVar<T>>& ps) const {
    bool same = ps.size() == names_.size();
    for (size_t k = 0; same && k < ps.size(); ++k)
      same = ps[k].first == names_[k] && ps[k].second.value().shape() == avg_[k].shape() &&
             ps[k].second.value().device() == avg_[k].device();
    if (!same)
      throw ValueError("SWA: the model's trainable parameters changed (names, shapes, device or trainable flags) since "
                       "averaging started");
  }

  nn::Model<T>& model_;
  int64_t start_;
  int64_t n_ = 0;
  std::vector<Tensor<T>> avg_;
  std::vector<std::string> names_;
};

}  // namespace tinycnn::train
