#pragma once
// Callbacks: hooks fit() calls around epochs and batches, with Keras' built-ins.
//
//   ModelCheckpoint     save through a function you give it (e.g. io::save_model), every epoch or
//                       only when the monitored value improves (save_best_only)
//   EarlyStopping       stop after `patience` epochs without improvement; optionally restore the
//                       best epoch's weights (and buffers) when it stops
//   TerminateOnNaN      stop at the first non-finite batch loss (fit() also does this by default)
//   ReduceLROnPlateau   multiply the learning rate by `factor` after `patience` flat epochs
//   LearningRateScheduler  set the learning rate from an optim::LRSchedule (per epoch or per step)
//                       or from a function (epoch, lr) -> lr
//   CSVLogger           one CSV row per epoch, flushed as it goes
//
// Your own: derive from Callback<T>, override what you need, set ctx.stop_training to stop. A
// callback whose state() returns something is checkpointed with the run and restored on resume.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../nn/model.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/schedule.hpp"
#include "history.hpp"

namespace tinycnn::train {

// What callbacks see of the run.
template <class T>
struct TrainContext {
  nn::Model<T>* model = nullptr;
  optim::Optimizer<T>* optimizer = nullptr;
  History* history = nullptr;
  int64_t epoch = 0;            // current epoch, 0-based
  int64_t epochs = 0;           // fit()'s epoch count
  int64_t batch = 0;            // batches done in the current epoch
  int64_t steps_per_epoch = 0;  // batches per epoch
  int64_t iteration = 0;        // optimizer steps done in total (across resumes)
  bool stop_training = false;   // set to stop after the current batch / epoch
  std::string stop_reason;      // say why (shown in History::stop_reason)
  // Writes a resumable checkpoint of the current state (call it from on_batch_end).
  std::function<void(const std::string& path)> save_checkpoint;
};

template <class T>
class Callback {
 public:
  virtual ~Callback() = default;
  // Identifies the callback's saved state in a checkpoint.
  virtual std::string name() const { return "Callback"; }
  virtual void on_train_begin(TrainContext<T>&) {}
  virtual void on_epoch_begin(TrainContext<T>&, int64_t /*epoch*/) {}
  virtual void on_batch_begin(TrainContext<T>&, int64_t /*batch*/) {}
  // logs: the running loss and metrics of the epoch so far.
  virtual void on_batch_end(TrainContext<T>&, int64_t /*batch*/, const Logs& /*logs*/) {}
  // logs: the epoch's loss, metrics, val_ loss and metrics, "lr" and "seconds"; keys added here
  // go into the History.
  virtual void on_epoch_end(TrainContext<T>&, int64_t /*epoch*/, Logs& /*logs*/) {}
  virtual void on_train_end(TrainContext<T>&, const Logs& /*last epoch's logs*/) {}
  // State to keep across a checkpoint/resume (null: nothing).
  virtual nlohmann::json state() const { return nullptr; }
  virtual void set_state(const nlohmann::json&) {}
};

template <class T>
using CallbackPtr = std::shared_ptr<Callback<T>>;

enum class Mode { Auto, Min, Max };

namespace detail {
// Keras' "auto": maximise accuracy-like quantities, minimise the rest (losses).
inline bool maximises(const std::string& monitor, Mode m) {
  if (m != Mode::Auto) return m == Mode::Max;
  for (const char* s : {"acc", "f1", "precision", "recall", "auc", "exact_match"})
    if (monitor.find(s) != std::string::npos) return true;
  return false;
}
inline double monitored(const Logs& logs, const std::string& monitor, const std::string& who) {
  auto it = logs.find(monitor);
  if (it == logs.end()) {
    std::string have;
    for (const auto& kv : logs) have += (have.empty() ? "" : ", ") + kv.first;
    throw ValueError(who + ": monitored quantity '" + monitor + "' is not in the epoch logs (available: " + have +
                     "); val_ quantities need validation data");
  }
  return it->second;
}
inline double json_double(const nlohmann::json& j, const char* key, double dflt) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return dflt;
  return j[key].get<double>();
}
// +-inf survive JSON as null.
inline nlohmann::json json_num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// Copies of every parameter and buffer (Keras' get_weights()).
template <class T>
std::vector<Tensor<T>> snapshot_weights(nn::Model<T>& m) {
  std::vector<Tensor<T>> w;
  for (auto& p : m.parameters()) w.push_back(p.second.value().clone());
  for (auto& b : m.buffers()) w.push_back(b.second.value().clone());
  return w;
}
template <class T>
void restore_weights(nn::Model<T>& m, const std::vector<Tensor<T>>& w) {
  size_t i = 0;
  for (auto& p : m.parameters()) p.second.value().copy_from(w.at(i++));
  for (auto& b : m.buffers()) b.second.value().copy_from(w.at(i++));
}
}  // namespace detail

// Saves through `save(path)` at the end of every epoch, or only when `monitor` improves
// (save_best_only). The path may contain "{epoch}" or "{epoch:02d}" (1-based, as Keras).
//   ModelCheckpoint<float>("best.safetensors", [&](const std::string& p) { io::save_model(p, model); },
//                          "val_accuracy", Mode::Auto, true);
template <class T>
class ModelCheckpoint : public Callback<T> {
 public:
  ModelCheckpoint(std::string filepath, std::function<void(const std::string& path)> save, std::string monitor = "val_loss",
                  Mode mode = Mode::Auto, bool save_best_only = false)
      : path_(std::move(filepath)), save_(std::move(save)), monitor_(std::move(monitor)), max_(detail::maximises(monitor_, mode)),
        best_only_(save_best_only) {
    if (!save_) throw ValueError("ModelCheckpoint: no save function");
    best_ = max_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  std::string name() const override { return "ModelCheckpoint"; }
  void on_epoch_end(TrainContext<T>&, int64_t epoch, Logs& logs) override {
    if (best_only_) {
      const double v = detail::monitored(logs, monitor_, "ModelCheckpoint");
      if (!std::isfinite(v) || !(max_ ? v > best_ : v < best_)) return;
      best_ = v;
    }
    last_path_ = format_path(path_, epoch + 1);
    save_(last_path_);
    ++saves_;
  }
  double best() const { return best_; }
  int64_t saves() const { return saves_; }
  const std::string& last_path() const { return last_path_; }
  nlohmann::json state() const override { return {{"best", detail::json_num(best_)}, {"saves", saves_}}; }
  void set_state(const nlohmann::json& j) override {
    best_ = detail::json_double(j, "best", best_);
    saves_ = j.value("saves", int64_t(0));
  }

  static std::string format_path(std::string p, int64_t epoch1) {
    for (const std::string& key : {std::string("{epoch:02d}"), std::string("{epoch}")}) {
      std::string v = std::to_string(epoch1);
      if (key == "{epoch:02d}" && v.size() < 2) v = "0" + v;
      for (size_t at; (at = p.find(key)) != std::string::npos;) p.replace(at, key.size(), v);
    }
    return p;
  }

 private:
  std::string path_;
  std::function<void(const std::string&)> save_;
  std::string monitor_;
  bool max_, best_only_;
  double best_;
  int64_t saves_ = 0;
  std::string last_path_;
};

// Stops when `monitor` has not improved by more than min_delta for `patience` epochs (Keras 2
// semantics). With restore_best_weights, the weights and buffers of the best epoch are put back
// when it stops (not when training simply runs out of epochs).
template <class T>
class EarlyStopping : public Callback<T> {
 public:
  EarlyStopping(std::string monitor = "val_loss", double min_delta = 0, int64_t patience = 0, Mode mode = Mode::Auto,
                bool restore_best_weights = false)
      : monitor_(std::move(monitor)), min_delta_(std::fabs(min_delta)), patience_(patience), max_(detail::maximises(monitor_, mode)),
        restore_(restore_best_weights) {
    if (patience < 0) throw ValueError("EarlyStopping: patience must be >= 0");
  }
  std::string name() const override { return "EarlyStopping"; }
  void on_train_begin(TrainContext<T>&) override {
    wait_ = 0;
    stopped_epoch_ = -1;
    best_epoch_ = -1;
    best_ = max_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    best_weights_.clear();
  }
  void on_epoch_end(TrainContext<T>& ctx, int64_t epoch, Logs& logs) override {
    const double v = detail::monitored(logs, monitor_, "EarlyStopping");
    ++wait_;
    if (improves(v)) {
      best_ = v;
      best_epoch_ = epoch;
      wait_ = 0;
      if (restore_) best_weights_ = detail::snapshot_weights(*ctx.model);
      return;
    }
    if (wait_ >= patience_ && epoch > 0) {
      stopped_epoch_ = epoch;
      ctx.stop_training = true;
      ctx.stop_reason = "early stopping";
      if (restore_ && !best_weights_.empty()) {
        detail::restore_weights(*ctx.model, best_weights_);
        restored_ = true;
      }
    }
  }
  double best() const { return best_; }
  int64_t best_epoch() const { return best_epoch_; }
  int64_t stopped_epoch() const { return stopped_epoch_; }  // -1: did not stop
  bool restored() const { return restored_; }
  // The best weights are not checkpointed: after a resume they are the best seen since the resume.
  nlohmann::json state() const override {
    return {{"best", detail::json_num(best_)}, {"wait", wait_}, {"best_epoch", best_epoch_}};
  }
  void set_state(const nlohmann::json& j) override {
    best_ = detail::json_double(j, "best", best_);
    wait_ = j.value("wait", int64_t(0));
    best_epoch_ = j.value("best_epoch", int64_t(-1));
  }

 private:
  bool improves(double v) const {
    if (!std::isfinite(v)) return false;
    return max_ ? v - min_delta_ > best_ : v + min_delta_ < best_;
  }
  std::string monitor_;
  double min_delta_;
  int64_t patience_;
  bool max_, restore_;
  double best_ = 0;
  int64_t wait_ = 0, stopped_epoch_ = -1, best_epoch_ = -1;
  bool restored_ = false;
  std::vector<Tensor<T>> best_weights_;
};

// Stops training at the first non-finite batch loss. fit() does the same without it
// (FitOptions::terminate_on_nan, on by default); add it to be explicit.
template <class T>
class TerminateOnNaN : public Callback<T> {
 public:
  std::string name() const override { return "TerminateOnNaN"; }
  void on_batch_end(TrainContext<T>& ctx, int64_t, const Logs& logs) override {
    auto it = logs.find("loss");
    if (it != logs.end() && !std::isfinite(it->second)) {
      ctx.stop_training = true;
      ctx.stop_reason = "non-finite loss";
    }
  }
};

// Keras' ReduceLROnPlateau: after `patience` epochs without an improvement of more than min_delta,
// lr = max(lr * factor, min_lr), then `cooldown` epochs before counting again.
template <class T>
class ReduceLROnPlateau : public Callback<T> {
 public:
  ReduceLROnPlateau(std::string monitor = "val_loss", double factor = 0.1, int64_t patience = 10, Mode mode = Mode::Auto,
                    double min_delta = 1e-4, int64_t cooldown = 0, double min_lr = 0)
      : monitor_(std::move(monitor)), factor_(factor), patience_(patience), max_(detail::maximises(monitor_, mode)),
        min_delta_(std::fabs(min_delta)), cooldown_(cooldown), min_lr_(min_lr) {
    if (!(factor > 0 && factor < 1)) throw ValueError("ReduceLROnPlateau: factor must be in (0, 1), got " + std::to_string(factor));
    if (patience < 0 || cooldown < 0) throw ValueError("ReduceLROnPlateau: patience and cooldown must be >= 0");
    reset();
  }
  std::string name() const override { return "ReduceLROnPlateau"; }
  void on_train_begin(TrainContext<T>&) override { reset(); }
  void on_epoch_end(TrainContext<T>& ctx, int64_t, Logs& logs) override {
    const double v = detail::monitored(logs, monitor_, "ReduceLROnPlateau");
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      wait_ = 0;
    }
    if (std::isfinite(v) && (max_ ? v > best_ + min_delta_ : v < best_ - min_delta_)) {
      best_ = v;
      wait_ = 0;
    } else if (cooldown_counter_ <= 0) {
      if (++wait_ >= patience_) {
        const double lr = ctx.optimizer->lr();
        if (lr > min_lr_) {
          ctx.optimizer->set_lr(std::max(lr * factor_, min_lr_));
          ++reductions_;
          cooldown_counter_ = cooldown_;
          wait_ = 0;
        }
      }
    }
  }
  int64_t reductions() const { return reductions_; }
  nlohmann::json state() const override {
    return {{"best", detail::json_num(best_)}, {"wait", wait_}, {"cooldown_counter", cooldown_counter_}, {"reductions", reductions_}};
  }
  void set_state(const nlohmann::json& j) override {
    best_ = detail::json_double(j, "best", best_);
    wait_ = j.value("wait", int64_t(0));
    cooldown_counter_ = j.value("cooldown_counter", int64_t(0));
    reductions_ = j.value("reductions", int64_t(0));
  }

 private:
  void reset() {
    best_ = max_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    wait_ = cooldown_counter_ = 0;
  }
  std::string monitor_;
  double factor_;
  int64_t patience_;
  bool max_;
  double min_delta_;
  int64_t cooldown_;
  double min_lr_;
  double best_ = 0;
  int64_t wait_ = 0, cooldown_counter_ = 0, reductions_ = 0;
};

// Sets the learning rate from a schedule: lr = schedule.lr_at(epoch) at each epoch's start, or
// lr_at(iteration) before each step (per_step). Schedules are pure functions of the step, so a
// resumed run continues the schedule exactly. Or Keras-style, a function (epoch, lr) -> lr.
template <class T>
class LearningRateScheduler : public Callback<T> {
 public:
  explicit LearningRateScheduler(std::shared_ptr<const optim::LRSchedule> schedule, bool per_step = false)
      : schedule_(std::move(schedule)), per_step_(per_step) {
    if (!schedule_) throw ValueError("LearningRateScheduler: no schedule");
  }
  explicit LearningRateScheduler(std::function<double(int64_t epoch, double lr)> fn) : fn_(std::move(fn)) {
    if (!fn_) throw ValueError("LearningRateScheduler: no function");
  }
  std::string name() const override { return "LearningRateScheduler"; }
  void on_epoch_begin(TrainContext<T>& ctx, int64_t epoch) override {
    if (fn_) ctx.optimizer->set_lr(fn_(epoch, ctx.optimizer->lr()));
    else if (!per_step_) ctx.optimizer->set_lr(schedule_->lr_at(epoch));
  }
  void on_batch_begin(TrainContext<T>& ctx, int64_t) override {
    if (schedule_ && per_step_) ctx.optimizer->set_lr(schedule_->lr_at(ctx.iteration));
  }

 private:
  std::shared_ptr<const optim::LRSchedule> schedule_;
  bool per_step_ = false;
  std::function<double(int64_t, double)> fn_;
};

// One CSV row per epoch ("epoch" then the log keys, sorted), flushed after every row. With
// append, rows are added to an existing file (a resumed run) and the header is written only
// when the file is empty.
template <class T>
class CSVLogger : public Callback<T> {
 public:
  explicit CSVLogger(std::string path, char separator = ',', bool append = false)
      : path_(std::move(path)), sep_(separator), append_(append) {}
  std::string name() const override { return "CSVLogger"; }
  void on_train_begin(TrainContext<T>&) override {
    bool empty = true;
    if (append_) {
      std::ifstream in(path_, std::ios::binary | std::ios::ate);
      empty = !in || in.tellg() <= 0;
    }
    out_.open(path_, std::ios::binary | (append_ ? std::ios::app : std::ios::trunc));
    if (!out_) throw IOError("CSVLogger: cannot open '" + path_ + "' for writing");
    need_header_ = empty;
    keys_.clear();
  }
  void on_epoch_end(TrainContext<T>&, int64_t epoch, Logs& logs) override {
    if (keys_.empty())
      for (const auto& kv : logs) keys_.push_back(kv.first);
    if (need_header_) {
      out_ << "epoch";
      for (const auto& k : keys_) out_ << sep_ << k;
      out_ << '\n';
      need_header_ = false;
    }
    out_ << epoch;
    for (const auto& k : keys_) {
      out_ << sep_;
      auto it = logs.find(k);
      if (it != logs.end()) out_ << format_double(it->second);
    }
    out_ << '\n';
    out_.flush();
    if (!out_) throw IOError("CSVLogger: writing '" + path_ + "' failed");
  }
  void on_train_end(TrainContext<T>&, const Logs&) override { out_.close(); }

 private:
  std::string path_;
  char sep_;
  bool append_;
  std::ofstream out_;
  bool need_header_ = true;
  std::vector<std::string> keys_;
};

}  // namespace tinycnn::train
