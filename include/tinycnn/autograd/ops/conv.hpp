#pragma once
// Convolution ops over NCHW tensors (cross-correlation, as Keras/TF; dilation 1).
//   conv2d:           x [N, C, H, W], w [K, C, R, S], b [K] (undefined Var = no bias) -> [N, K, OH, OW];
//                     relu = true fuses max(0, .) into the GEMM's store (one op, one output tensor:
//                     no separate pass or activation tensor; the backward masks dY by y > 0), capped
//                     at relu_max when that is > 0 (ReLU6; the mask is then 0 < y < relu_max);
//                     cache (optional): keeps w's Winograd transform between calls
//                     (kernels/cpu/winograd_filter_cache.hpp; a layer passes its own)
//   depthwise_conv2d: x [N, C, H, W], w [C, M, R, S], b [C*M] (or none) -> [N, C*M, OH, OW],
//                     output channel c*M + m (Keras order); relu, relu_max as for conv2d, applied to
//                     each output plane as it is written
// padding "valid" or "same" with TensorFlow's placement (extra row/column at the bottom/right).
#include <string>

#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

using kernels::cpu::Conv2DGeom;

namespace detail {
// Geometry for x [N, C, H, W] and a window R x S with K outputs; a window that does not fit, or a
// bad stride or padding string, is a ShapeError / ValueError naming the op and both shapes.
inline Conv2DGeom conv_op_geom(const char* op, const Shape& xs, const Shape& ws, int64_t K, int64_t R, int64_t S,
                               int64_t stride_h, int64_t stride_w, const std::string& padding) {
  const kernels::cpu::Padding p = kernels::cpu::parse_padding(padding, op);
  try {
    return kernels::cpu::make_conv_geom(xs[0], xs[1], xs[2], xs[3], K, R, S, stride_h, stride_w, p, op);
  } catch (const ShapeError& e) {
    throw_shape(op, std::string(e.what()).substr(std::string(op).size() + 2), xs, ws);
  }
}

// The output gradient of a fused ReLU (capped at relu_max > 0): dY * (0 < y < cap) into `masked`
// (written, not added into: no zero fill), y > 0 exactly where the pre-activation is.
template <class T>
const T* relu_masked_grad(const VarNode<T>& n, T relu_max, Tensor<T>& masked) {
  const Device d = n.value.device();
  masked = Tensor<T>::empty(n.value.shape(), d);
  backend::activation_backward_to(d, true, kernels::cpu::ActParams<T>{kernels::cpu::Act::ReLU, T(0), relu_max},
                                  n.value.data(), n.value.data(), n.grad.data(), masked.data(), n.value.numel());
  return masked.data();
}
}  // namespace detail

namespace detail {
// conv2d's checks (op: the name in the errors): the geometry of x [N, C, H, W], w [K, C, R, S] and b
// ([K] or undefined); dev: the device they share.
template <class T>
Conv2DGeom conv2d_checked(const char* op, const Var<T>& x, const Var<T>& w, const Var<T>& b, int64_t stride_h,
                          int64_t stride_w, const std::string& padding, Device& dev) {
  if (x.value().rank() != 4 || w.value().rank() != 4 || x.shape()[1] != w.shape()[1])
    throw_shape(op, "needs x [N, C, H, W] and w [K, C, R, S] with the same C", x.shape(), w.shape());
  const Shape &xs = x.shape(), &ws = w.shape();
  if (b.defined() && b.shape() != Shape{ws[0]}) throw_shape(op, "bias must be [K] for w [K, C, R, S]", b.shape(), ws);
  const Conv2DGeom g = conv_op_geom(op, xs, ws, ws[0], ws[2], ws[3], stride_h, stride_w, padding);
  dev = same_device<T>(op, {&x.value(), &w.value(), b.defined() ? &b.value() : nullptr});
  return g;
}

// conv2d's forward pass into y [N, K, OH, OW] (written).
template <class T>
void conv2d_forward_into(const Var<T>& x, const Var<T>& w, const Var<T>& b, const Conv2DGeom& g, bool relu,
                         T relu_max, kernels::cpu::WinogradFilterCache<T>* cache, Tensor<T>& y) {
  const T* bp = b.defined() ? b.value().data() : nullptr;
  if (cache)
    backend::conv2d_forward_cached(y.device(), x.value().data(), w.value().data(), bp, g, y.data(), relu, relu_max,
                                   cache);
  else if (relu)
    backend::conv2d_forward_relu(y.device(), x.value().data(), w.value().data(), bp, g, y.data(), relu_max);
  else
    backend::conv2d_forward(y.device(), x.value().data(), w.value().data(), bp, g, y.data());
}
}  // namespace detail

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, int64_t stride_h = 1, int64_t stride_w = 1,
              const std::string& padding = "valid", bool relu = false, T relu_max = T(0),
              kernels::cpu::WinogradFilterCache<T>* cache = nullptr) {
  Device dev = Device::CPU;
  const Conv2DGeom g = detail::conv2d_checked("conv2d", x, w, b, stride_h, stride_w, padding, dev);
  const bool has_b = b.defined();
  Tensor<T> y = Tensor<T>::empty({g.N, g.K, g.OH, g.OW}, dev);
  detail::conv2d_forward_into(x, w, b, g, relu, relu_max, cache, y);
  std::vector<Var<T>> ins{x, w};
  if (has_b) ins.push_back(b);
  Var<T> out = make_result<T>(std::move(y), ins, relu ? "conv2d_relu" : "conv2d", [g, has_b, relu, relu_max](VarNode<T>& n) {
    const Device d = n.value.device();
    Tensor<T> masked;
    const T* dy = n.grad.data();
    T* db = has_b ? input_grad(n, 2) : nullptr;
    // (n.grad_masked: the consumers already applied the ReLU's mask; the bias gradient then comes
    // from conv2d_backward_filter's sum over dY)
    if (relu && !n.grad_masked) {  // the masked gradient and the bias gradient in one pass
      masked = Tensor<T>::empty(n.value.shape(), d);
      backend::conv2d_relu_backward_bias(d, n.value.data(), dy, relu_max, g, masked.data(), db);
      dy = masked.data();
      db = nullptr;
    }
    bool assign;
    if (T* dx = input_grad_fresh(n, 0, &assign))
      backend::conv2d_backward_data_to(d, assign, dy, n.inputs[1]->value.data(), g, dx);
    T* dw = input_grad(n, 1);
    if (dw || db) backend::conv2d_backward_filter(d, n.inputs[0]->value.data(), dy, g, dw, db);
  });
  if (relu) out.node()->relu_cap = relu_max;  // a max pooling after it can apply the mask (VarNode::relu_cap)
  return out;
}

template <class T>
Var<T> depthwise_conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, int64_t stride_h = 1,
                        int64_t stride_w = 1, const std::string& padding = "valid", bool relu = false,
                        T relu_max = T(0)) {
  if (x.value().rank() != 4 || w.value().rank() != 4 || x.shape()[1] != w.shape()[0])
    throw_shape("depthwise_conv2d", "needs x [N, C, H, W] and w [C, M, R, S] with the same C", x.shape(), w.shape());
  const Shape &xs = x.shape(), &ws = w.shape();
  const int64_t K = ws[0] * ws[1];
  const bool has_b = b.defined();
  if (has_b && b.shape() != Shape{K})
    throw_shape("depthwise_conv2d", "bias must be [C*M] for w [C, M, R, S]", b.shape(), ws);
  const Conv2DGeom g = detail::conv_op_geom("depthwise_conv2d", xs, ws, K, ws[2], ws[3], stride_h, stride_w, padding);
  const Device dev = same_device<T>("depthwise_conv2d", {&x.value(), &w.value(), has_b ? &b.value() : nullptr});
  Tensor<T> y = Tensor<T>::empty({g.N, g.K, g.OH, g.OW}, dev);
  backend::depthwise_conv2d_forward(y.device(), x.value().data(), w.value().data(),
                                    has_b ? b.value().data() : nullptr, g, y.data(), relu, relu_max);
  std::vector<Var<T>> ins{x, w};
  if (has_b) ins.push_back(b);
  return make_result<T>(std::move(y), ins, relu ? "depthwise_conv2d_relu" : "depthwise_conv2d",
                        [g, has_b, relu, relu_max](VarNode<T>& n) {
    const Device d = n.value.device();
    Tensor<T> masked;
    const T* dy = relu ? detail::relu_masked_grad(n, relu_max, masked) : n.grad.data();
    bool assign;
    if (T* dx = input_grad_fresh(n, 0, &assign))
      backend::depthwise_conv2d_backward_data_to(d, assign, dy, n.inputs[1]->value.data(), g, dx);
    T* dw = input_grad(n, 1);
    T* db = has_b ? input_grad(n, 2) : nullptr;
    if (dw || db) backend::depthwise_conv2d_backward_filter(d, n.inputs[0]->value.data(), dy, g, dw, db);
  });
}

}  // namespace tinycnn::ops
