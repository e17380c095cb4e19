#pragma once
// Loss ops. Targets are validated BEFORE anything is computed, and a non-finite or negative loss
// throws LossError, so a bad batch can never reach the optimizer.
#include <cmath>
#include <string>
#include <vector>

#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

enum class Reduction { Mean, Sum };

template <class T>
struct CrossEntropyOptions {
  T label_smoothing = T(0);     // in [0, 1): target = (1-s) * target + s / K
  Reduction reduction = Reduction::Mean;
  std::vector<T> class_weights;  // optional, one per class: per-sample loss scaled by its class' weight (Keras)
};

namespace detail {
template <class T>
void check_loss_value(const char* op, double loss) {
  if (!std::isfinite(loss))
    throw LossError(std::string(op) + ": loss is not finite (" + std::to_string(loss) +
                    "); check the learning rate and the input data");
  if (loss < -1e-6)
    throw LossError(std::string(op) + ": loss is negative (" + std::to_string(loss) +
                    "); targets must be probabilities (one-hot, soft or multi-hot in [0, 1])");
}

// The scalar gradient of a loss node (its output is [1] on the logits' device; one value comes back).
template <class T>
T scalar_grad(const VarNode<T>& n) {
  return n.grad.to(Device::CPU)[0];  // the same handle on the host
}

template <class T>
Var<T> softmax_ce_impl(const Var<T>& logits, std::vector<int32_t> labels, Tensor<T> targets,
                       const CrossEntropyOptions<T>& opt) {
  const char* op = "softmax_cross_entropy";
  if (logits.value().rank() != 2) throw_shape(op, "logits must be [N, classes]", logits.shape());
  const int64_t N = logits.shape()[0], K = logits.shape()[1];
  if (!(opt.label_smoothing >= T(0) && opt.label_smoothing < T(1)))
    throw ValueError(std::string(op) + ": label_smoothing must be in [0, 1), got " + std::to_string(opt.label_smoothing));
  if (!opt.class_weights.empty() && static_cast<int64_t>(opt.class_weights.size()) != K)
    throw ValueError(std::string(op) + ": " + std::to_string(opt.class_weights.size()) + " class weights for " +
                     std::to_string(K) + " classes");
  const Device dev = logits.value().device();
  const bool use_labels = targets.numel() == 0 && !targets.defined();
  // Labels and targets are validated on the host; the kernels get copies on the logits' device.
  Tensor<T> host_targets;
  if (use_labels) {
    if (static_cast<int64_t>(labels.size()) != N)
      throw ValueError(std::string(op) + ": " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(N));
    for (int64_t n = 0; n < N; ++n)
      if (labels[n] < 0 || labels[n] >= K)
        throw ValueError(std::string(op) + ": label of sample " + std::to_string(n) + " is " + std::to_string(labels[n]) +
                         ", outside [0, " + std::to_string(K) + ")");
  } else {
    if (targets.shape() != logits.shape()) throw_shape(op, "targets must match logits", targets.shape(), logits.shape());
    host_targets = targets.to(Device::CPU);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const T t = host_targets[n * K + k];
        if (!(t >= T(0) && t <= T(1)))
          throw ValueError(std::string(op) + ": target of sample " + std::to_string(n) + ", class " + std::to_string(k) +
                           " is " + std::to_string(t) + ", outside [0, 1]");
      }
    targets = targets.to(dev);
  }
  const std::shared_ptr<Storage<int32_t>> dev_labels =
      use_labels ? make_storage<int32_t>(N, dev, labels.data()) : nullptr;
  const int32_t* lab = use_labels ? dev_labels->ptr : nullptr;
  Tensor<T> probs = Tensor<T>::empty({N, K}, dev);
  Tensor<T> losses = Tensor<T>::empty({N}, dev);
  backend::softmax_cross_entropy_forward(dev, logits.value().data(), lab, use_labels ? nullptr : targets.data(),
                                         opt.label_smoothing, probs.data(), losses.data(), N, K);
  const std::vector<T> host_losses = losses.to_vector();
  // scale[n] = d(total)/d(loss_n): class weight, divided by N for the mean.
  std::vector<T> scale(static_cast<size_t>(N));
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    T w = T(1);
    if (!opt.class_weights.empty()) {
      int64_t cls = 0;
      if (use_labels) {
        cls = labels[n];
      } else {
        for (int64_t k = 1; k < K; ++k)
          if (host_targets[n * K + k] > host_targets[n * K + cls]) cls = k;
      }
      w = opt.class_weights[cls];
    }
    scale[n] = opt.reduction == Reduction::Mean ? w / static_cast<T>(N) : w;
    total += static_cast<double>(scale[n]) * host_losses[n];
  }
  check_loss_value<T>(op, total);
  const T smoothing = opt.label_smoothing;
  return make_result<T>(Tensor<T>::full({1}, static_cast<T>(total), dev), {logits}, op,
                        [probs, dev_labels, targets, scale = std::move(scale), smoothing, use_labels, N, K](VarNode<T>& n) {
                          T* g = input_grad(n, 0);
                          if (!g) return;
                          const Device d = n.value.device();
                          std::vector<T> s = scale;
                          const T g0 = scalar_grad(n);
                          for (T& v : s) v *= g0;
                          const Tensor<T> sd = Tensor<T>::from({N}, s).to(d);
                          backend::softmax_cross_entropy_backward(d, probs.data(), use_labels ? dev_labels->ptr : nullptr,
                                                                  use_labels ? nullptr : targets.data(), smoothing,
                                                                  sd.data(), g, N, K);
                        });
}
}  // namespace detail

// Softmax cross-entropy from logits [N, K] with integer class labels (each in [0, K)).
template <class T>
Var<T> softmax_cross_entropy(const Var<T>& logits, const std::vector<int32_t>& labels,
                             const CrossEntropyOptions<T>& opt = {}) {
  return detail::softmax_ce_impl<T>(logits, labels, Tensor<T>(), opt);
}

// Softmax cross-entropy from logits [N, K] with one-hot or soft targets [N, K] (values in [0, 1]).
template <class T>
Var<T> softmax_cross_entropy(const Var<T>& logits, const Tensor<T>& targets, const CrossEntropyOptions<T>& opt = {}) {
  if (!targets.defined()) throw ValueError("softmax_cross_entropy: targets tensor is empty");
  return detail::softmax_ce_impl<T>(logits, {}, targets, opt);
}

// Binary cross-entropy from logits, for multi-label (multi-hot) targets in [0, 1] of the logits' shape.
template <class T>
Var<T> binary_cross_entropy(const Var<T>& logits, const Tensor<T>& targets, Reduction reduction = Reduction::Mean) {
  const char* op = "binary_cross_entropy";
  if (targets.shape() != logits.shape()) throw_shape(op, "targets must match logits", targets.shape(), logits.shape());
  const int64_t n = targets.numel();
  const int64_t per = logits.value().rank() >= 2 ? n / logits.shape()[0] : 1;
  const Device dev = logits.value().device();
  {
    const Tensor<T> host_targets = targets.to(Device::CPU);  // validated on the host
    for (int64_t i = 0; i < n; ++i) {
      const T t = host_targets[i];
      if (!(t >= T(0) && t <= T(1)))
        throw ValueError(std::string(op) + ": target of sample " + std::to_string(i / per) + " is " + std::to_string(t) +
                         ", outside [0, 1]. Integer class labels need softmax_cross_entropy (categorical cross-entropy); "
                         "binary cross-entropy takes multi-hot targets (0 or 1 per class)");
    }
  }
  const Tensor<T> dev_targets = targets.to(dev);
  Tensor<T> losses = Tensor<T>::empty(targets.shape(), dev);
  backend::bce_logits_forward(dev, logits.value().data(), dev_targets.data(), losses.data(), n);
  double total = 0;
  for (T l : losses.to_vector()) total += l;
  const T s = reduction == Reduction::Mean ? T(1) / static_cast<T>(n) : T(1);
  total *= s;
  detail::check_loss_value<T>(op, total);
  return make_result<T>(Tensor<T>::full({1}, static_cast<T>(total), dev), {logits}, op,
                        [dev_targets, s, n](VarNode<T>& node) {
                          if (T* g = input_grad(node, 0))
                            backend::bce_logits_backward(node.value.device(), node.inputs[0]->value.data(),
                                                         dev_targets.data(), s * detail::scalar_grad(node), g, n);
                        });
}

// Mean (or sum) squared error between pred and a target of the same shape. The loss value is summed
// on the host (a device prediction is copied back); the backward is two add_scaled calls on its device.
template <class T>
Var<T> mse(const Var<T>& pred, const Tensor<T>& target, Reduction reduction = Reduction::Mean) {
  if (target.shape() != pred.shape()) throw_shape("mse", "target must match prediction", target.shape(), pred.shape());
  const int64_t n = target.numel();
  const Device dev = pred.value().device();
  const Tensor<T> hp = pred.value().to(Device::CPU), ht = target.to(Device::CPU);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(hp[i]) - ht[i];
    total += d * d;
  }
  const T s = reduction == Reduction::Mean ? T(1) / static_cast<T>(n) : T(1);
  total *= s;
  detail::check_loss_value<T>("mse", total);
  const Tensor<T> dev_target = target.to(dev);
  return make_result<T>(Tensor<T>::full({1}, static_cast<T>(total), dev), {pred}, "mse",
                        [dev_target, s, n](VarNode<T>& node) {
                          if (T* g = input_grad(node, 0)) {  // g += k (p - t)
                            const Device d = node.value.device();
                            const T k = T(2) * s * detail::scalar_grad(node);
                            backend::add_scaled(d, node.inputs[0]->value.data(), k, g, n);
                            backend::add_scaled(d, dev_target.data(), -k, g, n);
                          }
                        });
}

}  // namespace tinycnn::ops
