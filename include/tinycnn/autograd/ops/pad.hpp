#pragma once
// Zero padding of the spatial axes: x [N, C, H, W] -> [N, C, H + top + bottom, W + left + right].
#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

template <class T>
Var<T> zero_pad2d(const Var<T>& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  if (x.value().rank() != 4) throw_shape("zero_pad2d", "needs x [N, C, H, W]", x.shape());
  if (top < 0 || bottom < 0 || left < 0 || right < 0)
    throw_shape("zero_pad2d", "padding (top, bottom, left, right) must be non-negative", x.shape(),
                Shape{top, bottom, left, right});
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  Tensor<T> y = Tensor<T>::empty({N, C, H + top + bottom, W + left + right}, x.value().device());
  backend::zero_pad2d_forward(y.device(), x.value().data(), N, C, H, W, top, bottom, left, right, y.data());
  return make_result<T>(std::move(y), {x}, "zero_pad2d", [N, C, H, W, top, bottom, left, right](VarNode<T>& n) {
    if (T* dx = input_grad(n, 0))
      backend::zero_pad2d_backward(n.value.device(), n.grad.data(), N, C, H, W, top, bottom, left, right, dx);
  });
}

}  // namespace tinycnn::ops
