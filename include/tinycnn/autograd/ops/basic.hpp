#pragma once
// Basic differentiable ops: element-wise arithmetic, reductions, reshape, matmul/linear.
#include <string>

#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

namespace detail {
template <class T>
void same_shape(const char* op, const Var<T>& a, const Var<T>& b) {
  if (a.shape() != b.shape()) throw_shape(op, "operands must have the same shape", a.shape(), b.shape());
  same_device<T>(op, {&a.value(), &b.value()});
}
}  // namespace detail

// a + b (same shape); also the Add layer's op for residual connections.
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  detail::same_shape("add", a, b);
  Tensor<T> y = a.value().clone();
  backend::add_scaled(y.device(), b.value().data(), T(1), y.data(), y.numel());
  return make_result<T>(std::move(y), {a, b}, "add", [](VarNode<T>& n) {
    for (size_t i = 0; i < 2; ++i)
      if (T* g = input_grad(n, i)) backend::add_scaled(n.value.device(), n.grad.data(), T(1), g, n.grad.numel());
  });
}

// a - b (same shape)
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  detail::same_shape("sub", a, b);
  Tensor<T> y = a.value().clone();
  backend::add_scaled(y.device(), b.value().data(), T(-1), y.data(), y.numel());
  return make_result<T>(std::move(y), {a, b}, "sub", [](VarNode<T>& n) {
    if (T* g = input_grad(n, 0)) backend::add_scaled(n.value.device(), n.grad.data(), T(1), g, n.grad.numel());
    if (T* g = input_grad(n, 1)) backend::add_scaled(n.value.device(), n.grad.data(), T(-1), g, n.grad.numel());
  });
}

// a * b element-wise (same shape)
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  detail::same_shape("mul", a, b);
  Tensor<T> y = Tensor<T>::empty(a.shape(), a.value().device());
  backend::mul_forward(y.device(), a.value().data(), b.value().data(), y.data(), y.numel());
  return make_result<T>(std::move(y), {a, b}, "mul", [](VarNode<T>& n) {
    backend::mul_backward(n.value.device(), n.inputs[0]->value.data(), n.inputs[1]->value.data(), n.grad.data(),
                          input_grad(n, 0), input_grad(n, 1), n.grad.numel());
  });
}

// s * a
template <class T>
Var<T> scale(const Var<T>& a, T s) {
  Tensor<T> y = Tensor<T>::zeros(a.shape(), a.value().device());
  backend::add_scaled(y.device(), a.value().data(), s, y.data(), y.numel());
  return make_result<T>(std::move(y), {a}, "scale", [s](VarNode<T>& n) {
    if (T* g = input_grad(n, 0)) backend::add_scaled(n.value.device(), n.grad.data(), s, g, n.grad.numel());
  });
}

// Sum of all elements -> shape [1] (accumulated in double, on the tensor's device). The backward
// broadcasts the output gradient as the bias of the values viewed as [numel, 1].
template <class T>
Var<T> sum(const Var<T>& a) {
  const Device dev = a.value().device();
  const int64_t n = a.value().numel();
  Tensor<T> y = Tensor<T>::zeros({1}, dev);
  backend::sum_add(dev, a.value().data(), n, y.data());
  return make_result<T>(std::move(y), {a}, "sum", [n](VarNode<T>& node) {
    if (T* g = input_grad(node, 0))
      backend::add_bias_rows(node.value.device(), g, static_cast<const T*>(node.grad.data()), n, int64_t(1));
  });
}

// Mean of all elements -> shape [1]
template <class T>
Var<T> mean(const Var<T>& a) {
  const int64_t n = a.value().numel();
  if (n == 0) throw_shape("mean", "mean of an empty tensor", a.shape());
  return scale(sum(a), T(1) / static_cast<T>(n));
}

// Same data, another shape (one dimension may be -1). The result is a view on a's storage, not a
// copy: graph values are never written after they are made (only parameters are, by optimizers and
// weight loading, and no layer reshapes a parameter), and the copy cost the baseline model a pass over
// its 8.6 MB input per batch. The gradient has its own buffer as for every op. As with a PyTorch view,
// a caller who overwrites an input tensor in place before backward() changes what backward reads.
template <class T>
Var<T> reshape(const Var<T>& a, Shape shape) {
  Tensor<T> y = a.value().reshape(std::move(shape));
  return make_result<T>(std::move(y), {a}, "reshape", [](VarNode<T>& n) {
    if (T* g = input_grad(n, 0)) backend::add_scaled(n.value.device(), n.grad.data(), T(1), g, n.grad.numel());
  });
}

// [N, ...] -> [N, prod(...)]
template <class T>
Var<T> flatten(const Var<T>& a) {
  if (a.value().rank() < 1) throw_shape("flatten", "needs a batch axis", a.shape());
  return reshape(a, {a.shape()[0], -1});
}

// y = x W + b (Keras Dense layout).  x: [N, I], W: [I, O], b: [O] (undefined Var = no bias) -> y: [N, O]
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b) {
  if (x.value().rank() != 2 || W.value().rank() != 2 || x.shape()[1] != W.shape()[0])
    throw_shape("linear", "needs x [N, I] and W [I, O]", x.shape(), W.shape());
  const int64_t N = x.shape()[0], I = x.shape()[1], O = W.shape()[1];
  const bool has_b = b.defined();
  if (has_b && b.shape() != Shape{O}) throw_shape("linear", "bias must be [O]", b.shape(), W.shape());
  const Device dev = same_device<T>("linear", {&x.value(), &W.value(), has_b ? &b.value() : nullptr});
  Tensor<T> y = Tensor<T>::empty({N, O}, dev);
  backend::gemm(dev, false, false, N, O, I, T(1), x.value().data(), I, W.value().data(), O, T(0), y.data(), O);
  if (has_b) backend::add_bias_rows(dev, y.data(), b.value().data(), N, O);
  std::vector<Var<T>> ins{x, W};
  if (has_b) ins.push_back(b);
  return make_result<T>(std::move(y), ins, "linear", [N, I, O, has_b](VarNode<T>& n) {
    const Device d = n.value.device();
    const T* gy = n.grad.data();
    if (T* gx = input_grad(n, 0))  // dX += dY W^T
      backend::gemm(d, false, true, N, I, O, T(1), gy, O, n.inputs[1]->value.data(), O, T(1), gx, I);
    bool assign;
    if (T* gw = input_grad_fresh(n, 1, &assign))  // dW += X^T dY (dW = X^T dY when freshly zeroed)
      backend::gemm(d, true, false, I, O, N, T(1), n.inputs[0]->value.data(), I, gy, O, assign ? T(0) : T(1), gw, O);
    if (has_b)
      if (T* gb = input_grad(n, 2)) backend::sum_rows_add(d, gy, gb, N, O);
  });
}

}  // namespace tinycnn::ops
