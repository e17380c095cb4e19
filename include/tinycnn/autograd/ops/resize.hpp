#pragma once
// Input-adaptation ops, so a model can carry its own preprocessing (nn::Resizing, nn::Rescaling):
//   resize2d(x, OH, OW, antialias)      x [N, C, H, W] -> [N, C, OH, OW], bilinear; antialias widens
//                                       the filter when shrinking (kernels/cpu/resize.hpp: with it,
//                                       the data pipeline's filter)
//   flip_w(x)                           the horizontal mirror (nn::Flip: test-time flip averaging)
//   channel_affine(x, scale, offset)    y = x * scale[c] + offset[c] per channel; scale and offset
//                                       are constants (1 value: every channel), not parameters
#include <string>
#include <vector>

#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

template <class T>
Var<T> resize2d(const Var<T>& x, int64_t OH, int64_t OW, bool antialias) {
  if (x.value().rank() != 4) throw_shape("resize2d", "needs x [N, C, H, W]", x.shape());
  if (OH <= 0 || OW <= 0) throw_shape("resize2d", "output height and width must be positive", x.shape(), Shape{OH, OW});
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  if (H <= 0 || W <= 0) throw_shape("resize2d", "input height and width must be positive", x.shape());
  Tensor<T> y = Tensor<T>::empty({N, C, OH, OW}, x.value().device());
  backend::resize2d_forward(y.device(), x.value().data(), N * C, H, W, OH, OW, antialias, y.data());
  return make_result<T>(std::move(y), {x}, "resize2d", [N, C, H, W, OH, OW, antialias](VarNode<T>& n) {
    if (T* dx = input_grad(n, 0))
      backend::resize2d_backward(n.value.device(), n.grad.data(), N * C, H, W, OH, OW, antialias, dx);
  });
}

// Horizontal mirror: x [N, C, H, W] -> the same shape with the W axis reversed.
template <class T>
Var<T> flip_w(const Var<T>& x) {
  if (x.value().rank() != 4) throw_shape("flip_w", "needs x [N, C, H, W]", x.shape());
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.value().device());
  backend::flip_w_forward(y.device(), x.value().data(), N * C, H, W, y.data());
  return make_result<T>(std::move(y), {x}, "flip_w", [N, C, H, W](VarNode<T>& n) {
    if (T* dx = input_grad(n, 0)) backend::flip_w_backward(n.value.device(), n.grad.data(), N * C, H, W, dx);
  });
}

template <class T>
Var<T> channel_affine(const Var<T>& x, const std::vector<double>& scale, const std::vector<double>& offset) {
  if (x.value().rank() < 2) throw_shape("channel_affine", "needs x [N, C, ...]", x.shape());
  const int64_t N = x.shape()[0], C = x.shape()[1], L = C ? x.value().numel() / std::max<int64_t>(N * C, 1) : 0;
  auto per_channel = [C](const std::vector<double>& v, const char* what) {
    if (v.size() != 1 && static_cast<int64_t>(v.size()) != C)
      throw ValueError(std::string("channel_affine: ") + what + " has " + std::to_string(v.size()) +
                       " values; give 1 or one per channel (" + std::to_string(C) + ")");
    std::vector<T> out(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) out[static_cast<size_t>(c)] = static_cast<T>(v.size() == 1 ? v[0] : v[static_cast<size_t>(c)]);
    return out;
  };
  // Constants built on the host, uploaded beside x (a device model keeps its preprocessing on the device).
  const Tensor<T> s = Tensor<T>::from({C}, per_channel(scale, "scale")).to(x.value().device());
  const Tensor<T> b = Tensor<T>::from({C}, per_channel(offset, "offset")).to(x.value().device());
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.value().device());
  backend::channel_affine_forward(y.device(), x.value().data(), s.data(), b.data(), N, C, L, y.data());
  return make_result<T>(std::move(y), {x}, "channel_affine", [s, N, C, L](VarNode<T>& n) {
    if (T* dx = input_grad(n, 0)) backend::channel_affine_backward(n.value.device(), n.grad.data(), s.data(), N, C, L, dx);
  });
}

}  // namespace tinycnn::ops
