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

namespace tinycnn::ops {

// Cropping of the spatial axes, the adjoint of zero_pad2d: x [N, C, H, W] ->
// [N, C, H - top - bottom, W - left - right]. Built from the padding kernels, so it runs on every
// device they do without kernels of its own: the forward adds x's window into a zeroed y (what
// pad's backward does), the backward pads dy (pad's forward) and adds that into dx.
template <class T>
Var<T> crop2d(const Var<T>& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  if (x.value().rank() != 4) throw_shape("crop2d", "needs x [N, C, H, W]", x.shape());
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  if (top < 0 || bottom < 0 || left < 0 || right < 0 || top + bottom >= H || left + right >= W)
    throw_shape("crop2d", "cropping (top, bottom, left, right) must be non-negative and leave at least one pixel",
                x.shape(), Shape{top, bottom, left, right});
  const int64_t OH = H - top - bottom, OW = W - left - right;
  Tensor<T> y = Tensor<T>::zeros({N, C, OH, OW}, x.value().device());
  backend::zero_pad2d_backward(y.device(), x.value().data(), N, C, OH, OW, top, bottom, left, right, y.data());
  return make_result<T>(std::move(y), {x}, "crop2d", [N, C, H, W, OH, OW, top, bottom, left, right](VarNode<T>& n) {
    if (T* dx = input_grad(n, 0)) {
      Tensor<T> padded = Tensor<T>::empty({N, C, H, W}, n.value.device());
      backend::zero_pad2d_forward(n.value.device(), n.grad.data(), N, C, OH, OW, top, bottom, left, right, padded.data());
      backend::add_scaled(n.value.device(), padded.data(), T(1), dx, N * C * H * W);
    }
  });
}

}  // namespace tinycnn::ops
