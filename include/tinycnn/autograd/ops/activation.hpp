#pragma once
// Activation ops (ReLU with optional cap, LeakyReLU, sigmoid, tanh) and softmax over the last axis.
#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

using kernels::cpu::Act;
using kernels::cpu::ActParams;

template <class T>
Var<T> activation(const Var<T>& x, const ActParams<T>& p) {
  if (p.kind == Act::Identity) return x;
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.value().device());
  backend::activation_forward(y.device(), p, x.value().data(), y.data(), y.numel());
  return make_result<T>(std::move(y), {x}, "activation", [p](VarNode<T>& n) {
    bool assign;
    if (T* g = input_grad_fresh(n, 0, &assign))
      backend::activation_backward_to(n.value.device(), assign, p, n.inputs[0]->value.data(), n.value.data(),
                                      n.grad.data(), g, n.value.numel());
  });
}

template <class T>
Var<T> relu(const Var<T>& x, T max_value = T(0)) {
  return activation(x, ActParams<T>{Act::ReLU, T(0), max_value});
}
template <class T>
Var<T> leaky_relu(const Var<T>& x, T alpha = T(0.3)) {
  return activation(x, ActParams<T>{Act::LeakyReLU, alpha, T(0)});
}
template <class T>
Var<T> sigmoid(const Var<T>& x) {
  return activation(x, ActParams<T>{Act::Sigmoid, T(0), T(0)});
}
template <class T>
Var<T> tanh(const Var<T>& x) {
  return activation(x, ActParams<T>{Act::Tanh, T(0), T(0)});
}

// Softmax over the last axis of a tensor viewed as [rows, cols].
template <class T>
Var<T> softmax(const Var<T>& x) {
  if (x.value().rank() < 1) throw_shape("softmax", "needs at least one axis", x.shape());
  const int64_t cols = x.shape().back(), rows = cols ? x.value().numel() / cols : 0;
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.value().device());
  backend::softmax_forward(y.device(), x.value().data(), y.data(), rows, cols);
  return make_result<T>(std::move(y), {x}, "softmax", [rows, cols](VarNode<T>& n) {
    if (T* g = input_grad(n, 0)) backend::softmax_backward(n.value.device(), n.value.data(), n.grad.data(), g, rows, cols);
  });
}

}  // namespace tinycnn::ops
