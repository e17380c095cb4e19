#pragma once
// Pooling ops over NCHW tensors.
//   max_pool2d / avg_pool2d: x [N, C, H, W] -> [N, C, OH, OW]; strides <= 0 mean "= pool size"
//     (Keras' strides=None); padding "valid" or "same" (TF placement). Padded cells are ignored:
//     avg_pool2d divides by the number of real cells in each window.
//   global_avg_pool2d: x [N, C, H, W] -> [N, C]
#include <memory>
#include <string>
#include <vector>

#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

namespace detail {
inline kernels::cpu::Conv2DGeom pool_geom(const char* op, const Shape& xs, int64_t pool_h, int64_t pool_w,
                                          int64_t stride_h, int64_t stride_w, const std::string& padding) {
  if (xs.size() != 4) throw_shape(op, "needs x [N, C, H, W]", xs);
  if (pool_h <= 0 || pool_w <= 0)
    throw_shape(op, "pool size must be positive", xs, Shape{pool_h, pool_w});
  const kernels::cpu::Padding p = kernels::cpu::parse_padding(padding, op);
  try {
    return kernels::cpu::make_conv_geom(xs[0], xs[1], xs[2], xs[3], xs[1], pool_h, pool_w,
                                        stride_h > 0 ? stride_h : pool_h, stride_w > 0 ? stride_w : pool_w, p, op);
  } catch (const ShapeError& e) {  // names the op, the input shape and the pool size
    throw_shape(op, std::string(e.what()).substr(std::string(op).size() + 2), xs, Shape{pool_h, pool_w});
  }
}
}  // namespace detail

template <class T>
Var<T> max_pool2d(const Var<T>& x, int64_t pool_h, int64_t pool_w, int64_t stride_h = -1, int64_t stride_w = -1,
                  const std::string& padding = "valid") {
  const kernels::cpu::Conv2DGeom g = detail::pool_geom("max_pool2d", x.shape(), pool_h, pool_w, stride_h, stride_w, padding);
  Tensor<T> y = Tensor<T>::empty({g.N, g.C, g.OH, g.OW}, x.value().device());
  // The winners' indices live beside the output (device memory for a device tensor); on the CPU only
  // where a backward will read them (inference skips their stores: the pass is bound by its stores).
  const bool records = grad_enabled() && x.requires_grad();
  auto argmax = records || y.device() != Device::CPU ? make_storage<int32_t>(y.numel(), y.device()) : nullptr;
  backend::max_pool2d_forward(y.device(), x.value().data(), g, y.data(), argmax ? argmax->ptr : nullptr);
  return make_result<T>(std::move(y), {x}, "max_pool2d", [g, argmax](VarNode<T>& n) {
    VarNode<T>* in = n.inputs[0].get();
    bool assign;
    if (T* dx = input_grad_fresh(n, 0, &assign)) {
      // The input is a fused ReLU's output whose gradient nothing else wrote yet: the ReLU's mask is
      // applied here, at each window's winner from the pooled value, and its producer skips its own
      // pass over y and dY (VarNode::grad_masked)
      const bool mask = assign && in->relu_cap >= T(0);
      in->grad_masked = backend::max_pool2d_backward_to(n.value.device(), assign, n.grad.data(),
                                                        static_cast<const int32_t*>(argmax->ptr), g, dx,
                                                        mask ? n.value.data() : nullptr, in->relu_cap);
    }
  });
}

// A max pooling's window, as the layer holds it (strides <= 0: the pool size); what the pool fusion
// (ops::conv2d_max_pool2d, nn/inference_fusion.hpp) passes from a MaxPool2D to the convolution before it.
struct MaxPoolSpec {
  int64_t pool_h = 2, pool_w = 2, stride_h = -1, stride_w = -1;
  std::string padding = "valid";
};

template <class T>
Var<T> avg_pool2d(const Var<T>& x, int64_t pool_h, int64_t pool_w, int64_t stride_h = -1, int64_t stride_w = -1,
                  const std::string& padding = "valid") {
  const kernels::cpu::Conv2DGeom g = detail::pool_geom("avg_pool2d", x.shape(), pool_h, pool_w, stride_h, stride_w, padding);
  Tensor<T> y = Tensor<T>::empty({g.N, g.C, g.OH, g.OW}, x.value().device());
  backend::avg_pool2d_forward(y.device(), x.value().data(), g, y.data());
  return make_result<T>(std::move(y), {x}, "avg_pool2d", [g](VarNode<T>& n) {
    if (T* dx = input_grad(n, 0)) backend::avg_pool2d_backward(n.value.device(), n.grad.data(), g, dx);
  });
}

template <class T>
Var<T> global_avg_pool2d(const Var<T>& x) {
  if (x.value().rank() != 4) throw_shape("global_avg_pool2d", "needs x [N, C, H, W]", x.shape());
  const int64_t N = x.shape()[0], C = x.shape()[1], HW = x.shape()[2] * x.shape()[3];
  if (HW == 0) throw_shape("global_avg_pool2d", "empty spatial plane", x.shape());
  Tensor<T> y = Tensor<T>::empty({N, C}, x.value().device());
  backend::global_avg_pool2d_forward(y.device(), x.value().data(), N, C, HW, y.data());
  return make_result<T>(std::move(y), {x}, "global_avg_pool2d", [N, C, HW](VarNode<T>& n) {
    if (T* dx = input_grad(n, 0)) backend::global_avg_pool2d_backward(n.value.device(), n.grad.data(), N, C, HW, dx);
  });
}

}  // namespace tinycnn::ops
