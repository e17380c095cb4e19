#pragma once
// Batch normalisation over the channel axis 1 of x [N, C, H, W] or [N, C]:
//   y = gamma * (x - mean) / sqrt(var + eps) + beta.
// training: batch mean and biased variance; running_mean / running_var are updated in place
//   (running = momentum * running + (1 - momentum) * batch, the variance unbiased by n / (n - 1)),
//   and the gradient flows through the batch statistics.
// inference (training == false): the running statistics, which are then constants.
// gamma, beta, running_mean, running_var: [C]. Keras defaults: momentum 0.99, eps 1e-3.
#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                  Tensor<T>& running_var, bool training, T momentum = T(0.99), T eps = T(1e-3)) {
  const Shape& xs = x.shape();
  if (xs.size() != 2 && xs.size() != 4) throw_shape("batch_norm", "needs x [N, C, H, W] or [N, C]", xs);
  const int64_t N = xs[0], C = xs[1], HW = xs.size() == 4 ? xs[2] * xs[3] : 1;
  const Shape cs{C};
  if (gamma.shape() != cs) throw_shape("batch_norm", "gamma must be [C] for x", gamma.shape(), xs);
  if (beta.shape() != cs) throw_shape("batch_norm", "beta must be [C] for x", beta.shape(), xs);
  if (running_mean.shape() != cs) throw_shape("batch_norm", "running_mean must be [C] for x", running_mean.shape(), xs);
  if (running_var.shape() != cs) throw_shape("batch_norm", "running_var must be [C] for x", running_var.shape(), xs);
  if (!(eps > T(0))) throw ValueError("batch_norm: eps must be positive, got " + std::to_string(eps));
  if (training && N * HW == 0) throw_shape("batch_norm", "training needs at least one value per channel", xs);

  const Device dev = same_device<T>("batch_norm", {&x.value(), &gamma.value(), &beta.value(), &running_mean, &running_var});
  Tensor<T> y = Tensor<T>::empty(xs, dev);
  Tensor<T> mean = Tensor<T>::empty(cs, dev), inv_std = Tensor<T>::empty(cs, dev);
  if (training)
    backend::batchnorm_forward_train(dev, x.value().data(), gamma.value().data(), beta.value().data(), N, C, HW, eps,
                                     momentum, y.data(), mean.data(), inv_std.data(), running_mean.data(),
                                     running_var.data());
  else
    backend::batchnorm_forward_eval(dev, x.value().data(), gamma.value().data(), beta.value().data(),
                                    static_cast<const T*>(running_mean.data()), static_cast<const T*>(running_var.data()),
                                    N, C, HW, eps, y.data(), mean.data(), inv_std.data());
  return make_result<T>(std::move(y), {x, gamma, beta}, "batch_norm",
                        [N, C, HW, training, mean, inv_std](VarNode<T>& n) {
                          bool assign_dx;
                          T* dx = input_grad_fresh(n, 0, &assign_dx);
                          T* dgamma = input_grad(n, 1);
                          T* dbeta = input_grad(n, 2);
                          backend::batchnorm_backward_to(n.value.device(), assign_dx, n.inputs[0]->value.data(),
                                                         n.grad.data(), n.inputs[1]->value.data(), mean.data(),
                                                         inv_std.data(), N, C, HW, training, dx, dgamma, dbeta);
                        });
}

// Inference only (no autograd): the weights of a layer y[k] = w[k, ...] . patch + b[k] with the
// per-channel affine y * scale[k] + shift[k] folded in (nn/inference_fusion.hpp), on the CPU.
//   w: [K, ...] (a depthwise kernel [C, M, R, S] is K = C*M rows), b: [K] or undefined,
//   scale, shift: [K] -> {wf [K, ...], bf [K]}
template <class T>
std::pair<Tensor<T>, Tensor<T>> fold_channel_affine(const Tensor<T>& w, const Tensor<T>& b, const Tensor<T>& scale,
                                                    const Tensor<T>& shift) {
  const int64_t K = scale.numel();
  if (w.rank() < 1 || K == 0 || w.numel() % K != 0 || shift.numel() != K || (b.defined() && b.numel() != K))
    throw_shape("fold_channel_affine", "needs w [K, ...], b [K], scale and shift [K]", w.shape(), scale.shape());
  for (const Tensor<T>* t : {&w, &b, &scale, &shift})
    if (t->defined() && t->device() != Device::CPU) throw Error("fold_channel_affine: CPU tensors only");
  Tensor<T> wf = Tensor<T>::empty(w.shape()), bf = Tensor<T>::empty({K});
  kernels::cpu::fold_channel_affine(w.data(), b.defined() ? b.data() : nullptr, scale.data(), shift.data(), K,
                                    w.numel() / K, wf.data(), bf.data());
  return {std::move(wf), std::move(bf)};
}

// Inference only (no autograd): the weights of a layer whose input axis `axis` of w runs over the
// channels of a per-channel affine x * scale + shift applied to its unpadded input, with the affine
// folded in (nn/inference_fusion.hpp): a 'valid' convolution's kernel [F, C, R, S] (axis 1, outputs
// along axis 0) or a dense kernel [in, units] (axis 0, outputs along axis 1), on the CPU.
//   w: [..., C, ...], b: [K] or undefined, scale, shift: [C] -> {wf (w's shape), bf [K]}
template <class T>
std::pair<Tensor<T>, Tensor<T>> fold_input_channel_affine(const Tensor<T>& w, const Tensor<T>& b,
                                                          const Tensor<T>& scale, const Tensor<T>& shift, int axis) {
  if ((axis != 0 && axis != 1) || w.rank() < axis + 2 || w.shape()[static_cast<size_t>(axis)] != scale.numel() ||
      shift.numel() != scale.numel())
    throw_shape("fold_input_channel_affine", "needs w [F, C, ...] (axis 1) or [C, K] (axis 0), scale and shift [C]",
                w.shape(), scale.shape());
  for (const Tensor<T>* t : {&w, &b, &scale, &shift})
    if (t->defined() && t->device() != Device::CPU) throw Error("fold_input_channel_affine: CPU tensors only");
  const int64_t C = scale.numel(), O = axis == 1 ? w.shape()[0] : 1, P = w.numel() / (O * C);
  const int64_t K = axis == 1 ? O : P;
  if (b.defined() && b.numel() != K) throw_shape("fold_input_channel_affine", "bias must be [K]", w.shape(), b.shape());
  Tensor<T> wf = Tensor<T>::empty(w.shape()), bf = Tensor<T>::empty({K});
  kernels::cpu::fold_input_channel_affine(w.data(), b.defined() ? b.data() : nullptr, scale.data(), shift.data(), O, C,
                                          P, axis == 0, wf.data(), bf.data());
  return {std::move(wf), std::move(bf)};
}

}  // namespace tinycnn::ops
