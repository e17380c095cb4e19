#pragma once
// Learning-rate schedules: a pure function of the step (an epoch or an iteration — the caller
// decides which it counts), so resuming only needs the step number.
#include <cmath>
#include <memory>
#include <string>

#include "../core/error.hpp"

namespace tinycnn::optim {

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  virtual double lr_at(int64_t step) const = 0;
};

// lr = base * gamma^floor(step / step_size)
class StepDecay : public LRSchedule {
 public:
  StepDecay(double base, int64_t step_size, double gamma) : base_(base), step_size_(step_size), gamma_(gamma) {
    if (step_size <= 0) throw ValueError("StepDecay: step_size must be positive");
  }
  double lr_at(int64_t s) const override { return base_ * std::pow(gamma_, static_cast<double>(s / step_size_)); }

 private:
  double base_;
  int64_t step_size_;
  double gamma_;
};

// lr = base * gamma^step
class ExponentialDecay : public LRSchedule {
 public:
  ExponentialDecay(double base, double gamma) : base_(base), gamma_(gamma) {}
  double lr_at(int64_t s) const override { return base_ * std::pow(gamma_, static_cast<double>(s)); }

 private:
  double base_, gamma_;
};

// Cosine from base to min_lr over total steps, then min_lr.
class CosineDecay : public LRSchedule {
 public:
  CosineDecay(double base, int64_t total, double min_lr = 0) : base_(base), total_(total), min_(min_lr) {
    if (total <= 0) throw ValueError("CosineDecay: total steps must be positive");
  }
  double lr_at(int64_t s) const override {
    if (s >= total_) return min_;
    const double t = static_cast<double>(s) / static_cast<double>(total_);
    return min_ + 0.5 * (base_ - min_) * (1 + std::cos(3.141592653589793 * t));
  }

 private:
  double base_;
  int64_t total_;
  double min_;
};

// One-cycle (Smith; PyTorch OneCycleLR with cosine annealing): from max_lr/div_factor up to max_lr over
// pct_start of the steps, then down to max_lr/(div_factor*final_div_factor).
class OneCycle : public LRSchedule {
 public:
  OneCycle(double max_lr, int64_t total, double pct_start = 0.3, double div_factor = 25, double final_div_factor = 1e4)
      : max_(max_lr), total_(total), pct_(pct_start), div_(div_factor), final_div_(final_div_factor) {
    if (total <= 1) throw ValueError("OneCycle: total steps must be > 1");
    if (!(pct_start > 0 && pct_start < 1)) throw ValueError("OneCycle: pct_start must be in (0, 1)");
  }
  double lr_at(int64_t s) const override {
    const double initial = max_ / div_, final_lr = initial / final_div_;
    const double up = pct_ * static_cast<double>(total_ - 1);
    const double x = static_cast<double>(std::min<int64_t>(s, total_ - 1));
    auto cos_anneal = [](double a, double b, double t) { return b + 0.5 * (a - b) * (1 + std::cos(3.141592653589793 * t)); };
    if (x <= up) return cos_anneal(initial, max_, up > 0 ? x / up : 1.0);
    return cos_anneal(max_, final_lr, (x - up) / (static_cast<double>(total_ - 1) - up));
  }

 private:
  double max_;
  int64_t total_;
  double pct_, div_, final_div_;
};

// Linear warm-up from 0 to the wrapped schedule's value over `warmup` steps, then the wrapped schedule
// (shifted so it starts at its step 0 after the warm-up).
class Warmup : public LRSchedule {
 public:
  Warmup(std::shared_ptr<LRSchedule> after, int64_t warmup) : after_(std::move(after)), warmup_(warmup) {
    if (!after_) throw ValueError("Warmup: needs a schedule to warm up into");
  }
  double lr_at(int64_t s) const override {
    if (s < warmup_) return after_->lr_at(0) * static_cast<double>(s + 1) / static_cast<double>(warmup_);
    return after_->lr_at(s - warmup_);
  }

 private:
  std::shared_ptr<LRSchedule> after_;
  int64_t warmup_;
};

}  // namespace tinycnn::optim
