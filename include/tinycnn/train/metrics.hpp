#pragma once
// Classification metrics.
//
// Single-label (softmax) models: scores are [N, K] (logits or probabilities — only their order
// matters), labels are class indices. accuracy, top-k accuracy, the confusion matrix and from it
// per-class precision/recall/F1 with macro and weighted averages (scikit-learn's definitions;
// a 0/0 ratio counts as 0, as sklearn's zero_division=0).
//
// Multi-label (sigmoid) models: probabilities [N, K] in [0, 1] and multi-hot targets [N, K];
// a class is predicted when its probability is >= the threshold (one for all classes, or one per
// class). choose_thresholds() picks each class' threshold on validation data by maximising that
// class' F1 over a grid, instead of one hand-picked value.
//
// MetricAccumulator gathers the statistics batch by batch, as fit() and evaluate() do.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tinycnn::train {

namespace detail {
template <class T>
void check_scores(const char* fn, const Tensor<T>& scores, size_t n_labels) {
  if (scores.rank() != 2) throw_shape(fn, "scores must be [N, classes]", scores.shape());
  if (static_cast<int64_t>(n_labels) != scores.dim(0))
    throw ValueError(std::string(fn) + ": " + std::to_string(n_labels) + " labels for " + std::to_string(scores.dim(0)) +
                     " score rows");
}
inline void check_label(const char* fn, int32_t label, int64_t K, size_t i) {
  if (label < 0 || label >= K)
    throw ValueError(std::string(fn) + ": label of sample " + std::to_string(i) + " is " + std::to_string(label) +
                     ", outside [0, " + std::to_string(K) + ")");
}
inline double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }
inline double f1_of(double tp, double fp, double fn) { return ratio(2 * tp, 2 * tp + fp + fn); }
}  // namespace detail

// Index of the largest score in each row (the first one on ties).
template <class T>
std::vector<int32_t> argmax(const Tensor<T>& scores) {
  if (scores.rank() != 2) throw_shape("argmax", "scores must be [N, classes]", scores.shape());
  const int64_t N = scores.dim(0), K = scores.dim(1);
  std::vector<int32_t> out(static_cast<size_t>(N), 0);
  for (int64_t n = 0; n < N; ++n) {
    const T* r = scores.data() + n * K;
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (r[k] > r[best]) best = k;
    out[static_cast<size_t>(n)] = static_cast<int32_t>(best);
  }
  return out;
}

// Number of rows whose label is among the k highest scores (ties broken towards lower indices:
// a class counts as ranked above the label when its score is higher, or equal with a lower index).
template <class T>
int64_t top_k_correct(const Tensor<T>& scores, const std::vector<int32_t>& labels, int64_t k) {
  detail::check_scores("top_k_accuracy", scores, labels.size());
  if (k < 1) throw ValueError("top_k_accuracy: k must be >= 1, got " + std::to_string(k));
  const int64_t N = scores.dim(0), K = scores.dim(1);
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t y = labels[static_cast<size_t>(n)];
    detail::check_label("top_k_accuracy", y, K, static_cast<size_t>(n));
    const T* r = scores.data() + n * K;
    int64_t above = 0;
    for (int64_t c = 0; c < K; ++c)
      if (r[c] > r[y] || (r[c] == r[y] && c < y)) ++above;
    if (above < k) ++correct;
  }
  return correct;
}

// Fraction of rows whose label is among the k highest scores.
template <class T>
double top_k_accuracy(const Tensor<T>& scores, const std::vector<int32_t>& labels, int64_t k) {
  const int64_t c = top_k_correct(scores, labels, k);
  return labels.empty() ? 0.0 : static_cast<double>(c) / static_cast<double>(labels.size());
}

// Fraction of rows whose arg-max score is the label.
template <class T>
double accuracy(const Tensor<T>& scores, const std::vector<int32_t>& labels) {
  return top_k_accuracy(scores, labels, 1);
}

// Fraction of equal entries of two label vectors.
inline double accuracy(const std::vector<int32_t>& predicted, const std::vector<int32_t>& labels) {
  if (predicted.size() != labels.size())
    throw ValueError("accuracy: " + std::to_string(predicted.size()) + " predictions for " + std::to_string(labels.size()) + " labels");
  int64_t c = 0;
  for (size_t i = 0; i < labels.size(); ++i) c += predicted[i] == labels[i];
  return labels.empty() ? 0.0 : static_cast<double>(c) / static_cast<double>(labels.size());
}

// Per-class precision, recall, F1 and support, with macro and weighted (by support) averages.
struct ClassificationReport {
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;  // true samples per class
  double accuracy = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double weighted_precision = 0, weighted_recall = 0, weighted_f1 = 0;
};

// counts[true][predicted].
class ConfusionMatrix {
 public:
  ConfusionMatrix() = default;
  explicit ConfusionMatrix(int64_t num_classes) : k_(num_classes), counts_(static_cast<size_t>(num_classes * num_classes), 0) {
    if (num_classes < 1) throw ValueError("ConfusionMatrix: num_classes must be >= 1, got " + std::to_string(num_classes));
  }
  int64_t num_classes() const { return k_; }
  void add(int32_t truth, int32_t predicted, int64_t count = 1) {
    detail::check_label("ConfusionMatrix", truth, k_, 0);
    detail::check_label("ConfusionMatrix", predicted, k_, 0);
    counts_[static_cast<size_t>(truth * k_ + predicted)] += count;
  }
  void add(const std::vector<int32_t>& truth, const std::vector<int32_t>& predicted) {
    if (truth.size() != predicted.size())
      throw ValueError("ConfusionMatrix: " + std::to_string(predicted.size()) + " predictions for " + std::to_string(truth.size()) + " labels");
    for (size_t i = 0; i < truth.size(); ++i) add(truth[i], predicted[i]);
  }
  int64_t at(int32_t truth, int32_t predicted) const { return counts_.at(static_cast<size_t>(truth * k_ + predicted)); }
  int64_t total() const {
    int64_t t = 0;
    for (int64_t c : counts_) t += c;
    return t;
  }
  const std::vector<int64_t>& counts() const { return counts_; }  // row-major [true][predicted]
  std::vector<int64_t>& counts() { return counts_; }

  ClassificationReport report() const {
    ClassificationReport r;
    const size_t K = static_cast<size_t>(k_);
    r.precision.assign(K, 0);
    r.recall.assign(K, 0);
    r.f1.assign(K, 0);
    r.support.assign(K, 0);
    int64_t correct = 0, total = 0;
    for (int64_t c = 0; c < k_; ++c) {
      int64_t tp = at(static_cast<int32_t>(c), static_cast<int32_t>(c)), pred = 0, truth = 0;
      for (int64_t o = 0; o < k_; ++o) {
        pred += at(static_cast<int32_t>(o), static_cast<int32_t>(c));
        truth += at(static_cast<int32_t>(c), static_cast<int32_t>(o));
      }
      const size_t i = static_cast<size_t>(c);
      r.precision[i] = detail::ratio(static_cast<double>(tp), static_cast<double>(pred));
      r.recall[i] = detail::ratio(static_cast<double>(tp), static_cast<double>(truth));
      r.f1[i] = detail::f1_of(static_cast<double>(tp), static_cast<double>(pred - tp), static_cast<double>(truth - tp));
      r.support[i] = truth;
      correct += tp;
      total += truth;
    }
    r.accuracy = detail::ratio(static_cast<double>(correct), static_cast<double>(total));
    for (size_t i = 0; i < K; ++i) {
      r.macro_precision += r.precision[i] / static_cast<double>(K);
      r.macro_recall += r.recall[i] / static_cast<double>(K);
      r.macro_f1 += r.f1[i] / static_cast<double>(K);
      const double w = detail::ratio(static_cast<double>(r.support[i]), static_cast<double>(total));
      r.weighted_precision += w * r.precision[i];
      r.weighted_recall += w * r.recall[i];
      r.weighted_f1 += w * r.f1[i];
    }
    return r;
  }

 private:
  int64_t k_ = 0;
  std::vector<int64_t> counts_;
};

// Confusion matrix from scores [N, K] (arg-max prediction) and labels.
template <class T>
ConfusionMatrix confusion_matrix(const Tensor<T>& scores, const std::vector<int32_t>& labels) {
  detail::check_scores("confusion_matrix", scores, labels.size());
  ConfusionMatrix cm(scores.dim(1));
  cm.add(labels, argmax(scores));
  return cm;
}
inline ConfusionMatrix confusion_matrix(const std::vector<int32_t>& labels, const std::vector<int32_t>& predicted,
                                        int64_t num_classes) {
  ConfusionMatrix cm(num_classes);
  cm.add(labels, predicted);
  return cm;
}

template <class T>
ClassificationReport classification_report(const Tensor<T>& scores, const std::vector<int32_t>& labels) {
  return confusion_matrix(scores, labels).report();
}
template <class T>
double macro_f1(const Tensor<T>& scores, const std::vector<int32_t>& labels) {
  return classification_report(scores, labels).macro_f1;
}
template <class T>
double weighted_f1(const Tensor<T>& scores, const std::vector<int32_t>& labels) {
  return classification_report(scores, labels).weighted_f1;
}

// ---- multi-label -------------------------------------------------------------------------

// Per-class true/false positives and false negatives of thresholded multi-label predictions.
struct MultiLabelCounts {
  std::vector<int64_t> tp, fp, fn, tn;
  explicit MultiLabelCounts(int64_t K = 0)
      : tp(static_cast<size_t>(K), 0), fp(static_cast<size_t>(K), 0), fn(static_cast<size_t>(K), 0), tn(static_cast<size_t>(K), 0) {}
  int64_t num_classes() const { return static_cast<int64_t>(tp.size()); }
};

struct MultiLabelReport {
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;  // positives per class
  double micro_f1 = 0;           // F1 of the pooled counts of all classes
  double macro_f1 = 0;           // mean of the per-class F1
  double weighted_f1 = 0;        // per-class F1 weighted by support
  double binary_accuracy = 0;    // fraction of correct (sample, class) decisions (Keras binary_accuracy)
  double exact_match = 0;        // fraction of samples with every class right (subset accuracy)
};

namespace detail {
template <class T>
void check_multilabel(const char* fn, const Tensor<T>& probs, const Tensor<T>& targets, size_t n_thresholds) {
  if (probs.rank() != 2) throw_shape(fn, "probabilities must be [N, classes]", probs.shape());
  if (targets.shape() != probs.shape()) throw_shape(fn, "targets must match the probabilities", targets.shape(), probs.shape());
  if (n_thresholds != 1 && static_cast<int64_t>(n_thresholds) != probs.dim(1))
    throw ValueError(std::string(fn) + ": " + std::to_string(n_thresholds) + " thresholds for " + std::to_string(probs.dim(1)) + " classes");
}
}  // namespace detail

// Adds a batch to per-class counts; returns the number of samples with every class right.
template <class T>
int64_t add_multilabel_counts(MultiLabelCounts& c, const Tensor<T>& probs, const Tensor<T>& targets,
                              const std::vector<double>& thresholds) {
  detail::check_multilabel("multilabel_f1", probs, targets, thresholds.size());
  const int64_t N = probs.dim(0), K = probs.dim(1);
  if (c.num_classes() == 0) c = MultiLabelCounts(K);
  if (c.num_classes() != K) throw ValueError("multilabel_f1: class count changed between batches");
  int64_t exact = 0;
  for (int64_t n = 0; n < N; ++n) {
    bool all = true;
    for (int64_t k = 0; k < K; ++k) {
      const double th = thresholds.size() == 1 ? thresholds[0] : thresholds[static_cast<size_t>(k)];
      const bool pred = static_cast<double>(probs[n * K + k]) >= th;
      const bool truth = targets[n * K + k] >= T(0.5);
      const size_t i = static_cast<size_t>(k);
      if (pred && truth) ++c.tp[i];
      else if (pred) ++c.fp[i];
      else if (truth) ++c.fn[i];
      else ++c.tn[i];
      all = all && pred == truth;
    }
    exact += all;
  }
  return exact;
}

inline MultiLabelReport multilabel_report(const MultiLabelCounts& c, int64_t exact_matches = -1) {
  MultiLabelReport r;
  const size_t K = static_cast<size_t>(c.num_classes());
  double TP = 0, FP = 0, FN = 0, TN = 0, pos = 0;
  for (size_t k = 0; k < K; ++k) {
    const double tp = static_cast<double>(c.tp[k]), fp = static_cast<double>(c.fp[k]), fn = static_cast<double>(c.fn[k]);
    r.precision.push_back(detail::ratio(tp, tp + fp));
    r.recall.push_back(detail::ratio(tp, tp + fn));
    r.f1.push_back(detail::f1_of(tp, fp, fn));
    r.support.push_back(c.tp[k] + c.fn[k]);
    TP += tp;
    FP += fp;
    FN += fn;
    TN += static_cast<double>(c.tn[k]);
    pos += tp + fn;
  }
  r.micro_f1 = detail::f1_of(TP, FP, FN);
  for (size_t k = 0; k < K; ++k) {
    r.macro_f1 += r.f1[k] / static_cast<double>(K);
    r.weighted_f1 += detail::ratio(static_cast<double>(r.support[k]), pos) * r.f1[k];
  }
  const double decisions = TP + FP + FN + TN;
  r.binary_accuracy = detail::ratio(TP + TN, decisions);
  const double samples = K ? decisions / static_cast<double>(K) : 0;
  r.exact_match = exact_matches >= 0 ? detail::ratio(static_cast<double>(exact_matches), samples) : 0;
  return r;
}

// Multi-label precision/recall/F1 with one threshold for every class, or one per class.
template <class T>
MultiLabelReport multilabel_report(const Tensor<T>& probs, const Tensor<T>& targets, const std::vector<double>& thresholds) {
  MultiLabelCounts c(probs.rank() == 2 ? probs.dim(1) : 0);
  const int64_t exact = add_multilabel_counts(c, probs, targets, thresholds);
  return multilabel_report(c, exact);
}
template <class T>
MultiLabelReport multilabel_report(const Tensor<T>& probs, const Tensor<T>& targets, double threshold = 0.5) {
  return multilabel_report(probs, targets, std::vector<double>{threshold});
}
// Micro-averaged multi-label F1 at a threshold.
template <class T>
double multilabel_f1(const Tensor<T>& probs, const Tensor<T>& targets, double threshold = 0.5) {
  return multilabel_report(probs, targets, threshold).micro_f1;
}

// The default threshold grid: 0.05, 0.10, ..., 0.95.
inline std::vector<double> default_threshold_grid() {
  std::vector<double> g;
  for (int i = 1; i <= 19; ++i) g.push_back(i * 0.05);
  return g;
}

// Per-class thresholds that maximise each class' F1 on (validation) probabilities and targets.
// Ties go to the threshold closest to 0.5; a class without positives keeps 0.5.
template <class T>
std::vector<double> choose_thresholds(const Tensor<T>& probs, const Tensor<T>& targets,
                                      std::vector<double> grid = default_threshold_grid()) {
  detail::check_multilabel("choose_thresholds", probs, targets, 1);
  if (grid.empty()) throw ValueError("choose_thresholds: empty threshold grid");
  const int64_t N = probs.dim(0), K = probs.dim(1);
  std::vector<double> best(static_cast<size_t>(K), 0.5);
  for (int64_t k = 0; k < K; ++k) {
    int64_t positives = 0;
    for (int64_t n = 0; n < N; ++n) positives += targets[n * K + k] >= T(0.5);
    if (positives == 0) continue;
    double best_f1 = -1;
    for (double th : grid) {
      double tp = 0, fp = 0, fn = 0;
      for (int64_t n = 0; n < N; ++n) {
        const bool pred = static_cast<double>(probs[n * K + k]) >= th, truth = targets[n * K + k] >= T(0.5);
        tp += pred && truth;
        fp += pred && !truth;
        fn += !pred && truth;
      }
      const double f1 = detail::f1_of(tp, fp, fn);
      const size_t i = static_cast<size_t>(k);
      if (f1 > best_f1 + 1e-12 || (std::fabs(f1 - best_f1) <= 1e-12 && std::fabs(th - 0.5) < std::fabs(best[i] - 0.5))) {
        best_f1 = f1;
        best[i] = th;
      }
    }
  }
  return best;
}

// ---- streaming accumulation for fit()/evaluate() -----------------------------------------

// Named metrics, gathered batch by batch. Single-label names: "accuracy", "top<k>_accuracy"
// (e.g. "top5_accuracy"), "macro_f1", "weighted_f1". Multi-label names: "accuracy" (= binary
// accuracy at 0.5, as Keras' "accuracy" with a binary cross-entropy loss), "binary_accuracy",
// "f1" / "micro_f1", "macro_f1", "weighted_f1", "exact_match" (all at threshold 0.5).
class MetricAccumulator {
 public:
  MetricAccumulator() = default;
  MetricAccumulator(std::vector<std::string> names, bool multi_label) : names_(std::move(names)), multi_label_(multi_label) {
    for (const auto& n : names_) {
      if (multi_label_) {
        if (n != "accuracy" && n != "binary_accuracy" && n != "f1" && n != "micro_f1" && n != "macro_f1" && n != "weighted_f1" &&
            n != "exact_match")
          throw ValueError("metrics: unknown multi-label metric '" + n +
                           "' (known: accuracy, binary_accuracy, f1, micro_f1, macro_f1, weighted_f1, exact_match)");
      } else if (n != "accuracy" && n != "macro_f1" && n != "weighted_f1" && top_k_of(n) < 1) {
        throw ValueError("metrics: unknown metric '" + n + "' (known: accuracy, top<k>_accuracy, macro_f1, weighted_f1)");
      }
    }
  }
  const std::vector<std::string>& names() const { return names_; }
  bool multi_label() const { return multi_label_; }

  void reset() {
    loss_sum_ = 0;
    samples_ = 0;
    exact_ = 0;
    topk_.clear();
    cm_ = ConfusionMatrix();
    ml_ = MultiLabelCounts();
  }
  // One batch: its mean loss, outputs (logits or probabilities: only the order / the 0.5
  // crossing of the sigmoid matters), labels (single-label) or multi-hot targets (multi-label).
  template <class T>
  void add(double batch_loss, const Tensor<T>& outputs, const std::vector<int32_t>& labels, const Tensor<T>& targets,
           bool outputs_are_logits) {
    const int64_t N = outputs.dim(0);
    loss_sum_ += batch_loss * static_cast<double>(N);
    samples_ += N;
    if (names_.empty()) return;
    if (multi_label_) {
      // sigmoid(z) >= 0.5  <=>  z >= 0
      exact_ += add_multilabel_counts(ml_, outputs, targets, {outputs_are_logits ? 0.0 : 0.5});
      return;
    }
    if (cm_.num_classes() == 0) cm_ = ConfusionMatrix(outputs.dim(1));
    cm_.add(labels, argmax(outputs));
    for (const auto& n : names_) {
      const int64_t k = top_k_of(n);
      if (k >= 1) topk_[n] += top_k_correct(outputs, labels, k);
    }
  }

  int64_t samples() const { return samples_; }
  double loss() const { return samples_ ? loss_sum_ / static_cast<double>(samples_) : 0.0; }
  // "loss" and every metric, prefixed (e.g. "val_").
  std::map<std::string, double> results(const std::string& prefix = "") const {
    std::map<std::string, double> out;
    out[prefix + "loss"] = loss();
    if (names_.empty()) return out;
    if (multi_label_) {
      const MultiLabelReport r = multilabel_report(ml_, exact_);
      for (const auto& n : names_) {
        double v = 0;
        if (n == "accuracy" || n == "binary_accuracy") v = r.binary_accuracy;
        else if (n == "f1" || n == "micro_f1") v = r.micro_f1;
        else if (n == "macro_f1") v = r.macro_f1;
        else if (n == "weighted_f1") v = r.weighted_f1;
        else if (n == "exact_match") v = r.exact_match;
        out[prefix + n] = v;
      }
      return out;
    }
    const ClassificationReport r = cm_.num_classes() ? cm_.report() : ClassificationReport{};
    for (const auto& n : names_) {
      double v = 0;
      if (n == "accuracy") v = r.accuracy;
      else if (n == "macro_f1") v = r.macro_f1;
      else if (n == "weighted_f1") v = r.weighted_f1;
      else {
        auto it = topk_.find(n);
        v = samples_ && it != topk_.end() ? static_cast<double>(it->second) / static_cast<double>(samples_) : 0.0;
      }
      out[prefix + n] = v;
    }
    return out;
  }
  const ConfusionMatrix& confusion() const { return cm_; }

  // Raw state, so a checkpoint taken mid-epoch resumes the epoch's running figures exactly.
  struct State {
    double loss_sum = 0;
    int64_t samples = 0, exact = 0, classes = 0;
    std::vector<int64_t> counts;  // confusion matrix, or tp|fp|fn|tn per class for multi-label
    std::map<std::string, int64_t> topk;
  };
  State state() const {
    State s{loss_sum_, samples_, exact_, 0, {}, topk_};
    if (multi_label_) {
      s.classes = ml_.num_classes();
      for (const auto* v : {&ml_.tp, &ml_.fp, &ml_.fn, &ml_.tn}) s.counts.insert(s.counts.end(), v->begin(), v->end());
    } else {
      s.classes = cm_.num_classes();
      s.counts = cm_.counts();
    }
    return s;
  }
  void set_state(const State& s) {
    reset();
    loss_sum_ = s.loss_sum;
    samples_ = s.samples;
    exact_ = s.exact;
    topk_ = s.topk;
    if (s.classes <= 0) return;
    const size_t K = static_cast<size_t>(s.classes);
    if (multi_label_) {
      if (s.counts.size() != 4 * K) throw FormatError("metric state: bad multi-label counts");
      ml_ = MultiLabelCounts(s.classes);
      std::vector<int64_t>* v[4] = {&ml_.tp, &ml_.fp, &ml_.fn, &ml_.tn};
      for (size_t j = 0; j < 4; ++j) std::copy(s.counts.begin() + j * K, s.counts.begin() + (j + 1) * K, v[j]->begin());
    } else {
      if (s.counts.size() != K * K) throw FormatError("metric state: bad confusion matrix");
      cm_ = ConfusionMatrix(s.classes);
      cm_.counts() = s.counts;
    }
  }

  // "top5_accuracy" -> 5; 0 when the name is not of that form.
  static int64_t top_k_of(const std::string& n) {
    const std::string pre = "top", suf = "_accuracy";
    if (n.size() <= pre.size() + suf.size() || n.compare(0, pre.size(), pre) != 0 ||
        n.compare(n.size() - suf.size(), suf.size(), suf) != 0)
      return 0;
    const std::string digits = n.substr(pre.size(), n.size() - pre.size() - suf.size());
    if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stoll(digits);
  }

 private:
  std::vector<std::string> names_;
  bool multi_label_ = false;
  double loss_sum_ = 0;
  int64_t samples_ = 0, exact_ = 0;
  std::map<std::string, int64_t> topk_;
  ConfusionMatrix cm_;
  MultiLabelCounts ml_;
};

}  // namespace tinycnn::train
