#pragma once
// A convolution (optionally with its fused ReLU) followed by max pooling, as one op:
//   conv2d_max_pool2d(x, w, b, stride_h, stride_w, padding, relu, relu_max, pool)
//     == max_pool2d(conv2d(x, w, b, stride_h, stride_w, padding, relu, relu_max), pool)
// with the same values (bit for bit) and gradients (to rounding: sums in another order), but without
// the convolution's full-size output as a graph value: where the CPU pass takes it
// (kernels/cpu/conv_pool.hpp) the output is pooled a group of samples at a time while in cache and
// never written whole; elsewhere it is written, pooled and freed at once instead of being kept until
// the backward. Where the input's gradient is not needed (a first layer), the backward takes the
// weight and bias gradients from the pooled gradient at the windows' winners alone
// (kernels/cpu/conv_pool_filter.hpp). Otherwise it rebuilds the output's gradient from the pooled
// one (the ReLU's mask from the pooled values) and sums the bias gradient in that same pass, instead
// of a pass over the full-size output gradient; where the CPU pass fuses, a chunk of samples at a
// time into one buffer that stays in cache (kernels/cpu/conv_pool.hpp,
// conv2d_max_pool_backward_chunk). Models use it for a Conv2D followed by its only consumer, a
// MaxPool2D (nn/inference_fusion.hpp, "pool fusion"), in training and inference. Devices other than
// the CPU run the two ops.
#include <algorithm>
#include <memory>
#include <string>

#include "conv.hpp"
#include "pool.hpp"

namespace tinycnn::ops {

template <class T>
Var<T> conv2d_max_pool2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, int64_t stride_h, int64_t stride_w,
                         const std::string& padding, bool relu, T relu_max, const MaxPoolSpec& pool,
                         kernels::cpu::WinogradFilterCache<T>* cache = nullptr) {
  Device dev = Device::CPU;
  const Conv2DGeom g = detail::conv2d_checked("conv2d_max_pool2d", x, w, b, stride_h, stride_w, padding, dev);
  if (dev != Device::CPU)
    return max_pool2d(conv2d(x, w, b, stride_h, stride_w, padding, relu, relu_max, cache), pool.pool_h, pool.pool_w,
                      pool.stride_h, pool.stride_w, pool.padding);
  const Conv2DGeom pg = detail::pool_geom("conv2d_max_pool2d", Shape{g.N, g.K, g.OH, g.OW}, pool.pool_h, pool.pool_w,
                                          pool.stride_h, pool.stride_w, pool.padding);
  const bool has_b = b.defined();
  Tensor<T> yp = Tensor<T>::empty({g.N, g.K, pg.OH, pg.OW}, dev);
  // The winners' indices only where a backward will read them (make_result records the op).
  const bool records = grad_enabled() && (x.requires_grad() || w.requires_grad() || (has_b && b.requires_grad()));
  auto argmax = records ? make_storage<int32_t>(yp.numel(), dev) : nullptr;
  auto* am = argmax ? static_cast<int32_t*>(argmax->ptr) : nullptr;
  if (backend::conv2d_max_pool_fuses<T>(dev, g, pg)) {
    backend::conv2d_max_pool2d_forward(dev, x.value().data(), w.value().data(), has_b ? b.value().data() : nullptr, g,
                                       pg, yp.data(), am, relu, relu_max, cache);
  } else {  // the grouped Winograd pass, or overlapping windows on banded samples: the output whole,
            // pooled, freed here
    Tensor<T> y = Tensor<T>::empty({g.N, g.K, g.OH, g.OW}, dev);
    detail::conv2d_forward_into(x, w, b, g, relu, relu_max, cache, y);
    backend::max_pool2d_forward(dev, y.data(), pg, yp.data(), am);
  }
  std::vector<Var<T>> ins{x, w};
  if (has_b) ins.push_back(b);
  return make_result<T>(std::move(yp), ins, relu ? "conv2d_relu_max_pool2d" : "conv2d_max_pool2d",
                        [g, pg, has_b, relu, relu_max, argmax](VarNode<T>& n) {
    const Device d = n.value.device();
    const auto* am = static_cast<const int32_t*>(argmax->ptr);
    // The ReLU's mask at each window's winner is the pooled value's (max_pool2d_backward's relu_y).
    const T* mask_y = relu ? n.value.data() : nullptr;
    T* db = has_b ? input_grad(n, 2) : nullptr;
    bool assign = false;
    T* dx = input_grad_fresh(n, 0, &assign);
    T* dw = input_grad(n, 1);
    if (!dx && !dw && !db) return;
    // No input gradient (a first layer): the weight and bias gradients from the winners only, with
    // no full-size output gradient at all.
    if (!dx && dw && backend::conv2d_max_pool_filter_pays(d, g, pg)) {
      backend::conv2d_max_pool_backward_filter(d, n.inputs[0]->value.data(), n.grad.data(), am, mask_y, relu_max, g,
                                               pg, dw, db);
      return;
    }
    // The convolution's output gradient, and the bias gradient (its sum) in the same pass, a chunk of
    // samples at a time into one buffer that stays in cache (the whole batch where the backward
    // passes run Winograd), then the convolution's passes on it.
    const int64_t chunk = backend::conv2d_max_pool_backward_chunk<T>(d, g);
    Tensor<T> dy = Tensor<T>::empty({chunk, g.K, g.OH, g.OW}, d);
    const int64_t in_n = g.C * g.H * g.W, pool_n = g.K * pg.OH * pg.OW;
    for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
      Conv2DGeom gc = g, pc = pg;
      gc.N = pc.N = std::min(chunk, g.N - n0);
      backend::max_pool2d_backward_to(d, true, n.grad.data() + n0 * pool_n, am + n0 * pool_n, pc, dy.data(),
                                      mask_y ? mask_y + n0 * pool_n : nullptr, relu_max, db);
      if (dx) backend::conv2d_backward_data_to(d, assign, dy.data(), n.inputs[1]->value.data(), gc, dx + n0 * in_n);
      if (dw)
        backend::conv2d_backward_filter(d, n.inputs[0]->value.data() + n0 * in_n, dy.data(), gc, dw,
                                        static_cast<T*>(nullptr));
    }
  });
}

}  // namespace tinycnn::ops
