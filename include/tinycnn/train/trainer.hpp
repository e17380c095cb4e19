#pragma once
// fit / evaluate / predict, Keras style.
//
//   train::TensorDataset data(images, labels, /*batch*/ 32, /*shuffle*/ true, /*seed*/ 1);
//   optim::Adam<float> opt(model.parameters(true), 1e-3);
//   train::FitOptions<float> o;
//   o.epochs = 10;
//   o.validation_split = 0.2;
//   o.callbacks = {std::make_shared<train::EarlyStopping<float>>("val_loss", 0, 3, train::Mode::Auto, true)};
//   o.checkpoint_path = "run.ckpt";          // resumable checkpoint after every epoch (and on Ctrl-C)
//   train::History h = train::fit(model, opt, data, o);
//   ... o.resume_from = "run.ckpt"; train::fit(model, opt, data, o);   // continue an interrupted run
//
// The model must output logits (no softmax/sigmoid at the end): the loss applies the softmax
// (LossKind::SoftmaxCrossEntropy, integer labels) or the sigmoid (LossKind::BinaryCrossEntropy,
// multi-hot targets), and predict() returns probabilities.
//
// A non-finite loss stops training at once (terminate_on_nan, on by default): no optimizer step
// is taken on it and no checkpoint is written afterwards, so the last good checkpoint stays intact.
// SIGINT (Ctrl-C) while fit() runs lets the current step finish, writes checkpoint_path (when set)
// and returns with History::interrupted set.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../autograd/ops/activation.hpp"
#include "../autograd/ops/loss.hpp"
#include "../autograd/variable.hpp"
#include "../nn/model.hpp"
#include "../optim/optimizer.hpp"
#include "callbacks.hpp"
#include "checkpoint.hpp"
#include "dataset.hpp"
#include "history.hpp"
#include "metrics.hpp"
#include "progress.hpp"
#include "signal.hpp"

namespace tinycnn::train {

enum class LossKind {
  SoftmaxCrossEntropy,  // single-label: integer labels, softmax over the logits (Keras categorical CE)
  BinaryCrossEntropy,   // multi-label: multi-hot targets, a sigmoid per logit
};

inline const char* loss_name(LossKind k) {
  return k == LossKind::SoftmaxCrossEntropy ? "softmax_cross_entropy" : "binary_cross_entropy";
}

template <class T>
struct FitOptions {
  int64_t epochs = 1;
  int verbose = 1;                     // 0 silent, 1 progress bar, 2 one line per epoch
  std::ostream* out = nullptr;         // progress output (nullptr: std::cout)
  BatchSource* validation = nullptr;   // validation data, or:
  double validation_split = 0;         // the last fraction of the training source (if it can split)
  std::vector<CallbackPtr<T>> callbacks;
  LossKind loss = LossKind::SoftmaxCrossEntropy;
  std::vector<double> class_weights;   // per class (softmax CE only), as Keras' class_weight
  double label_smoothing = 0;          // softmax CE only
  std::vector<std::string> metrics = {"accuracy"};  // see MetricAccumulator
  double clip_grad_norm = 0;           // > 0: clip the global gradient norm
  bool terminate_on_nan = true;
  // Checkpoints for resuming (not model files: they hold the optimizer and the run's position).
  std::string checkpoint_path;         // written atomically; empty: none (Ctrl-C then just stops)
  int64_t checkpoint_every_epochs = 1; // 0: only on SIGINT and at ctx.save_checkpoint()
  int64_t checkpoint_every_steps = 0;  // > 0: also every that many optimizer steps
  std::string resume_from;             // a checkpoint of this configuration to continue from
  bool handle_sigint = true;
  // Extra hyperparameters folded into the configuration hash (e.g. {"augment", "flip+rot15"}).
  std::map<std::string, std::string> hyperparameters;
};

struct EvalOptions {
  LossKind loss = LossKind::SoftmaxCrossEntropy;
  std::vector<std::string> metrics = {"accuracy"};
};

namespace detail {

template <class T>
Tensor<T> to_model_dtype(const Tensor<float>& x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else return Tensor<T>::cast(x);
}
// A batch's inputs as the model's dtype on the model's device (the loader's batches are host tensors).
template <class T>
Var<T> model_input(const Tensor<float>& x, Device dev) {
  return Var<T>(to_model_dtype<T>(x).to(dev));
}
// Host view of a result (the same handle for a host tensor; a copy of a device one).
template <class T>
Tensor<T> host(const Tensor<T>& t) {
  return t.to(Device::CPU);
}

// Multi-hot targets for BCE: the batch's own, or one-hot from its labels.
template <class T>
Tensor<T> bce_targets(const Batch& b, int64_t K) {
  if (b.targets.defined()) return to_model_dtype<T>(b.targets);
  Tensor<T> t({b.size(), K});
  for (size_t i = 0; i < b.labels.size(); ++i) {
    if (b.labels[i] < 0 || b.labels[i] >= K) throw ValueError("binary_cross_entropy: label out of range");
    t[static_cast<int64_t>(i) * K + b.labels[i]] = T(1);
  }
  return t;
}

template <class T>
void check_batch(const Batch& b, LossKind k) {
  if (!b.x.defined() || b.size() == 0) throw ValueError("fit: empty batch");
  if (k == LossKind::SoftmaxCrossEntropy && static_cast<int64_t>(b.labels.size()) != b.size())
    throw ValueError("fit: softmax cross-entropy needs one integer label per sample (got " + std::to_string(b.labels.size()) +
                     " for " + std::to_string(b.size()) + "); multi-hot targets need LossKind::BinaryCrossEntropy");
}

template <class T>
void check_logits_model(nn::Model<T>& m) {
  if (m.entries().empty()) return;
  auto& last = *m.entries().back().layer;
  bool prob = last.type() == "Softmax" || last.type() == "Sigmoid";
  for (const auto& kv : last.config())
    if (kv.first == "activation")
      if (const auto* s = std::get_if<std::string>(&kv.second)) prob = prob || *s == "softmax" || *s == "sigmoid";
  if (prob)
    throw ValueError("fit: the model ends in a softmax/sigmoid ('" + last.name() +
                     "'); fit() expects logits — the loss applies it (remove the activation; predict() returns probabilities)");
}

// Mean loss of a batch (and its logits) without touching gradients.
template <class T>
Var<T> batch_loss(const Var<T>& logits, const Batch& b, LossKind kind, const ops::CrossEntropyOptions<T>& ce) {
  if (kind == LossKind::SoftmaxCrossEntropy) return ops::softmax_cross_entropy(logits, b.labels, ce);
  return ops::binary_cross_entropy(logits, bce_targets<T>(b, logits.shape()[1]));
}

// Restores the model's train/eval mode on scope exit.
template <class T>
struct ModeGuard {
  nn::Model<T>& m;
  bool was;
  explicit ModeGuard(nn::Model<T>& model) : m(model), was(model.is_training()) {}
  ~ModeGuard() {
    if (was) m.train();
    else m.eval();
  }
};

template <class T>
Logs evaluate_impl(nn::Model<T>& model, BatchSource& src, int64_t epoch, LossKind kind, const std::vector<std::string>& metrics,
                   const ops::CrossEntropyOptions<T>& ce, const std::string& prefix) {
  ModeGuard<T> mg(model);
  model.eval();
  NoGradGuard ng;
  MetricAccumulator acc(metrics, kind == LossKind::BinaryCrossEntropy);
  const Device dev = model.device();
  nn::DeviceScope<T> on_device(model);
  src.seek({epoch, 0});
  Batch b;
  while (src.next(b)) {
    check_batch<T>(b, kind);
    Var<T> logits = model.forward(model_input<T>(b.x, dev));
    const double loss = host(batch_loss(logits, b, kind, ce).value())[0];
    Tensor<T> targets;
    if (kind == LossKind::BinaryCrossEntropy) targets = bce_targets<T>(b, logits.shape()[1]);
    acc.add(loss, host(logits.value()), b.labels, targets, true);
  }
  return acc.results(prefix);
}

inline nlohmann::json metric_state_json(const MetricAccumulator::State& s) {
  return {{"loss_sum", s.loss_sum}, {"samples", s.samples}, {"exact", s.exact}, {"classes", s.classes}, {"counts", s.counts}, {"topk", s.topk}};
}
inline MetricAccumulator::State metric_state_from(const nlohmann::json& j) {
  MetricAccumulator::State s;
  if (!j.is_object()) return s;
  s.loss_sum = j.value("loss_sum", 0.0);
  s.samples = j.value("samples", int64_t(0));
  s.exact = j.value("exact", int64_t(0));
  s.classes = j.value("classes", int64_t(0));
  if (j.contains("counts")) s.counts = j["counts"].get<std::vector<int64_t>>();
  if (j.contains("topk")) s.topk = j["topk"].get<std::map<std::string, int64_t>>();
  return s;
}

// Zeroes every gradient the next backward pass accumulates into, each once: the model's parameters
// and any the optimizer holds outside the model. (fit called model.zero_grad() and opt.zero_grad(),
// and fit's optimizer holds the model's trainable parameters, so every gradient was zeroed twice:
// for model3 a second fill of 44 M floats per step, 3.2-3.6 ms on 2 threads, about 1% of a step.)
template <class T>
void zero_grads_once(nn::Model<T>& model, optim::Optimizer<T>& opt) {
  model.zero_grad();
  std::unordered_set<const VarNode<T>*> done;
  for (auto& p : model.parameters()) done.insert(p.second.node());
  for (auto& p : opt.params())
    if (!done.count(p.second.node())) p.second.zero_grad();
}

}  // namespace detail

// Moves a model and its optimizer's state to `dev` in one call; fit/evaluate/predict then upload each
// batch of the (host) data loader to the model's device and copy the logits back for the metrics.
template <class T>
void to_device(nn::Model<T>& model, optim::Optimizer<T>& opt, Device dev) {
  model.to(dev);
  opt.to(dev);
}

// The configuration fit() hashes into checkpoints: model + optimizer + these training settings.
template <class T>
RunConfig fit_config(nn::Model<T>& model, optim::Optimizer<T>& opt, const BatchSource& train, const FitOptions<T>& o) {
  std::map<std::string, std::string> extra = o.hyperparameters;
  extra["fit loss"] = loss_name(o.loss);
  std::string cw;
  for (double w : o.class_weights) cw += format_double(w) + " ";
  extra["fit class_weights"] = cw;
  extra["fit label_smoothing"] = format_double(o.label_smoothing);
  extra["fit clip_grad_norm"] = format_double(o.clip_grad_norm);
  extra["fit batches_per_epoch"] = std::to_string(train.num_batches());
  extra["fit samples_per_epoch"] = std::to_string(train.num_samples());
  extra["fit validation_split"] = format_double(o.validation_split);
  return describe_config(model, opt, extra);
}

// Trains `model` with `opt` on `train`. The model must be built (the optimizer holds its parameters).
template <class T>
History fit(nn::Model<T>& model, optim::Optimizer<T>& opt, BatchSource& train_src, const FitOptions<T>& o = {}) {
  if (!model.built()) throw ValueError("fit: build the model (model.build(input_shape)) before creating the optimizer");
  if (o.epochs < 0) throw ValueError("fit: epochs must be >= 0");
  if (!o.class_weights.empty() && o.loss != LossKind::SoftmaxCrossEntropy)
    throw ValueError("fit: class_weights need LossKind::SoftmaxCrossEntropy");
  if (o.class_weights.size() > 0 && !model.output_shape().empty() &&
      static_cast<int64_t>(o.class_weights.size()) != model.output_shape().back())
    throw ValueError("fit: " + std::to_string(o.class_weights.size()) + " class weights for " +
                     std::to_string(model.output_shape().back()) + " classes");
  detail::check_logits_model(model);

  // Data: the training source, and validation from a source or a split of it.
  BatchSource* train = &train_src;
  BatchSource* val = o.validation;
  std::unique_ptr<BatchSource> split_train, split_val;
  if (!val && o.validation_split > 0) {
    auto parts = train_src.split(o.validation_split);
    split_train = std::move(parts.first);
    split_val = std::move(parts.second);
    train = split_train.get();
    val = split_val.get();
  }

  ops::CrossEntropyOptions<T> ce;
  ce.label_smoothing = static_cast<T>(o.label_smoothing);
  for (double w : o.class_weights) ce.class_weights.push_back(static_cast<T>(w));
  const bool multi = o.loss == LossKind::BinaryCrossEntropy;
  const RunConfig config = fit_config(model, opt, train_src, o);

  History history;
  TrainContext<T> ctx;
  ctx.model = &model;
  ctx.optimizer = &opt;
  ctx.history = &history;
  ctx.epochs = o.epochs;
  ctx.steps_per_epoch = train->num_batches();
  MetricAccumulator acc(o.metrics, multi);

  int64_t start_epoch = 0, start_batch = 0;
  CheckpointState resumed;
  const bool resuming = !o.resume_from.empty();
  if (resuming) {
    resumed = load_checkpoint(o.resume_from, model, opt, config);
    start_epoch = resumed.epoch;
    start_batch = resumed.batch;
    ctx.iteration = resumed.iteration;
    if (resumed.history.is_object() && !resumed.history.empty()) {
      History h = History::from_json_value(resumed.history);
      history.epochs = h.epochs;
      history.logs = h.logs;
    }
    if (start_batch > 0) acc.set_state(detail::metric_state_from(resumed.metrics));
  }

  auto callback_states = [&] {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& cb : o.callbacks) a.push_back({{"name", cb->name()}, {"state", cb->state()}});
    return a;
  };
  auto write_checkpoint = [&](const std::string& path, int64_t epoch, int64_t batch) {
    CheckpointState st;
    st.epoch = epoch;
    st.batch = batch;
    st.iteration = ctx.iteration;
    st.metrics = batch > 0 ? detail::metric_state_json(acc.state()) : nlohmann::json::object();
    st.history = history.empty() ? nlohmann::json::object() : history.to_json_value();
    st.callbacks = callback_states();
    save_checkpoint(path, model, opt, config, st);
  };
  ctx.save_checkpoint = [&](const std::string& path) { write_checkpoint(path, ctx.epoch, ctx.batch); };

  ProgressPrinter progress(o.verbose, o.out);
  SigintGuard sigint(o.handle_sigint);
  model.train();
  const Device dev = model.device();  // batches are uploaded there (train::to_device moves model + optimizer)
  nn::DeviceScope<T> on_device(model);
  for (auto& cb : o.callbacks) cb->on_train_begin(ctx);
  if (resuming && resumed.callbacks.is_array())
    for (size_t i = 0; i < o.callbacks.size() && i < resumed.callbacks.size(); ++i) {
      const auto& s = resumed.callbacks[i];
      if (s.is_object() && s.value("name", std::string()) == o.callbacks[i]->name() && s.contains("state") && !s["state"].is_null())
        o.callbacks[i]->set_state(s["state"]);
    }

  Logs last_logs;
  bool aborted = false;  // NaN or SIGINT: no epoch-end processing
  for (int64_t epoch = start_epoch; epoch < o.epochs && !ctx.stop_training && !aborted; ++epoch) {
    const bool mid = epoch == start_epoch && start_batch > 0;
    if (!mid) acc.reset();
    ctx.epoch = epoch;
    ctx.batch = mid ? start_batch : 0;
    train->seek({epoch, ctx.batch});
    const auto t0 = std::chrono::steady_clock::now();
    int64_t images = 0;
    for (auto& cb : o.callbacks) cb->on_epoch_begin(ctx, epoch);
    progress.epoch_begin(epoch, o.epochs, ctx.steps_per_epoch);

    Batch b;
    while (!ctx.stop_training && train->next(b)) {
      detail::check_batch<T>(b, o.loss);
      for (auto& cb : o.callbacks) cb->on_batch_begin(ctx, ctx.batch);
      double loss = 0;
      Var<T> logits;
      try {
        logits = model.forward(detail::model_input<T>(b.x, dev));
        Var<T> L = detail::batch_loss(logits, b, o.loss, ce);
        loss = detail::host(L.value())[0];
        if (!std::isfinite(loss)) throw LossError("fit: loss is not finite (" + std::to_string(loss) + ")");
        detail::zero_grads_once(model, opt);
        L.backward();
        if (o.clip_grad_norm > 0) optim::clip_grad_norm(opt.params(), o.clip_grad_norm);
        opt.step();
      } catch (const LossError& e) {
        if (!o.terminate_on_nan) throw;
        history.terminated_on_nan = true;
        history.stop_reason = "non-finite loss";
        progress.message(std::string("Terminating: ") + e.what());
        aborted = true;
        break;
      }
      Tensor<T> targets;
      if (multi) targets = detail::bce_targets<T>(b, logits.shape()[1]);
      acc.add(loss, detail::host(logits.value()), b.labels, targets, true);
      images += b.size();
      ++ctx.batch;
      ++ctx.iteration;
      const Logs running = acc.results();
      for (auto& cb : o.callbacks) cb->on_batch_end(ctx, ctx.batch - 1, running);
      progress.batch_end(ctx.batch, images, running);
      if (ctx.stop_training && ctx.stop_reason == "non-finite loss") {
        history.terminated_on_nan = true;
        aborted = true;
        break;
      }
      if (o.checkpoint_every_steps > 0 && !o.checkpoint_path.empty() && ctx.iteration % o.checkpoint_every_steps == 0)
        write_checkpoint(o.checkpoint_path, ctx.epoch, ctx.batch);
      if (interrupt_requested()) {
        if (!o.checkpoint_path.empty()) write_checkpoint(o.checkpoint_path, ctx.epoch, ctx.batch);
        history.interrupted = true;
        history.stop_reason = "interrupted (SIGINT)";
        progress.message(o.checkpoint_path.empty() ? "Interrupted." : "Interrupted: checkpoint written to " + o.checkpoint_path);
        aborted = true;
        break;
      }
    }
    if (aborted) break;

    Logs logs = acc.results();
    if (val) {
      const Logs v = detail::evaluate_impl(model, *val, epoch, o.loss, o.metrics, ce, "val_");
      logs.insert(v.begin(), v.end());
    }
    logs["lr"] = opt.lr();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    logs["seconds"] = secs;
    for (auto& cb : o.callbacks) cb->on_epoch_end(ctx, epoch, logs);
    history.add(epoch, logs);
    last_logs = logs;
    progress.epoch_end(logs, secs, images);
    if (!o.checkpoint_path.empty() && o.checkpoint_every_epochs > 0 && (epoch + 1) % o.checkpoint_every_epochs == 0)
      write_checkpoint(o.checkpoint_path, epoch + 1, 0);
  }
  if (ctx.stop_training && history.stop_reason.empty())
    history.stop_reason = ctx.stop_reason.empty() ? "stopped by a callback" : ctx.stop_reason;
  history.iterations = ctx.iteration;
  for (auto& cb : o.callbacks) cb->on_train_end(ctx, last_logs);
  return history;
}

// Loss and metrics of `model` on one epoch of `src`, in eval mode without gradients.
template <class T>
Logs evaluate(nn::Model<T>& model, BatchSource& src, const EvalOptions& o = {}) {
  return detail::evaluate_impl(model, src, src.position().epoch, o.loss, o.metrics, ops::CrossEntropyOptions<T>{}, "");
}

// Probabilities [N, K] for one epoch of `src` (in its order: do not shuffle it): softmax of the
// logits, or a sigmoid per logit when multi_label. Eval mode, no gradients.
template <class T>
Tensor<T> predict(nn::Model<T>& model, BatchSource& src, bool multi_label = false) {
  detail::ModeGuard<T> mg(model);
  model.eval();
  NoGradGuard ng;
  src.seek({src.position().epoch, 0});
  std::vector<Tensor<T>> parts;
  int64_t rows = 0, K = -1;
  const Device dev = model.device();
  nn::DeviceScope<T> on_device(model);
  Batch b;
  while (src.next(b)) {
    Var<T> logits = model.forward(detail::model_input<T>(b.x, dev));
    if (logits.value().rank() != 2) throw_shape("predict", "the model must output [N, classes] logits", logits.shape());
    Var<T> p = multi_label ? ops::sigmoid(logits) : ops::softmax(logits);
    K = p.shape()[1];
    rows += p.shape()[0];
    parts.push_back(detail::host(p.value()));
  }
  Tensor<T> out = Tensor<T>::empty({rows, K < 0 ? 0 : K});
  int64_t at = 0;
  for (const auto& p : parts) {
    std::copy(p.data(), p.data() + p.numel(), out.data() + at);
    at += p.numel();
  }
  return out;
}

// Probabilities for in-memory inputs x [N, ...], in batches of batch_size.
template <class T>
Tensor<T> predict(nn::Model<T>& model, const Tensor<float>& x, int64_t batch_size = 32, bool multi_label = false) {
  if (x.rank() < 1) throw_shape("predict", "inputs need a batch axis", x.shape());
  std::vector<int32_t> dummy(static_cast<size_t>(x.dim(0)), 0);
  TensorDataset ds(x, dummy, TensorDataset::Options{batch_size, false, 0, false});
  return predict(model, ds, multi_label);
}

}  // namespace tinycnn::train
