#pragma once
// The dispatch facade: the ONLY way an autograd op reaches a kernel. Each entry takes the device of
// the tensors first and forwards the raw pointers and dimensions to the kernel for that device.
// CPU kernels live in kernels/cpu/; the CUDA backend (cuda/, TINYCNN_USE_CUDA) plugs in here, in the
// same functions, so no op ever needs a second mechanism.
#include <string>
#include <utility>

#include "../core/device.hpp"
#include "../core/error.hpp"
#include "../kernels/cpu/all.hpp"
#ifdef TINYCNN_HAS_CUDA
// Set by linking tinycnn::cuda (cuda/, TINYCNN_USE_CUDA=ON): its kernels take the CPU kernels' arguments.
#include <tinycnn/cuda/conv.hpp>
#include <tinycnn/cuda/gemm.hpp>
#include <tinycnn/cuda/ops.hpp>
#include <tinycnn/cuda/runtime.hpp>
#endif

namespace tinycnn::backend {
namespace detail {
[[noreturn]] inline void no_backend(const char* op, Device d) {
  throw Error(std::string(op) + ": no kernel for device '" + device_name(d) +
              "' (this build has CPU kernels only; configure with -DTINYCNN_USE_CUDA=ON for CUDA)");
}
}  // namespace detail

// Device::CUDA goes to tinycnn::cuda::<name> (same arguments) when tinycnn::cuda is linked
// (TINYCNN_HAS_CUDA); otherwise it is an error that says how to get CUDA kernels.
#ifdef TINYCNN_HAS_CUDA
#define TINYCNN_DISPATCH_CUDA(name) return ::tinycnn::cuda::name(std::forward<Args>(args)...)
#else
#define TINYCNN_DISPATCH_CUDA(name) detail::no_backend(#name, dev)
#endif

#define TINYCNN_DISPATCH(name)                                       \
  template <class... Args>                                           \
  void name(Device dev, Args&&... args) {                            \
    if (dev == Device::CUDA) TINYCNN_DISPATCH_CUDA(name);            \
    if (dev != Device::CPU) detail::no_backend(#name, dev);          \
    kernels::cpu::name(std::forward<Args>(args)...);                 \
  }

// GEMM (kernels/cpu/gemm.hpp)
TINYCNN_DISPATCH(gemm)
// Element-wise (kernels/cpu/elementwise.hpp)
TINYCNN_DISPATCH(add_scaled)
TINYCNN_DISPATCH(sum_add)
TINYCNN_DISPATCH(mul_forward)
TINYCNN_DISPATCH(mul_backward)
TINYCNN_DISPATCH(add_bias_rows)
TINYCNN_DISPATCH(sum_rows_add)
TINYCNN_DISPATCH(channel_affine_forward)
TINYCNN_DISPATCH(channel_affine_backward)
// Activations (kernels/cpu/activation.hpp)
TINYCNN_DISPATCH(activation_forward)
TINYCNN_DISPATCH(activation_backward)
TINYCNN_DISPATCH(softmax_forward)
TINYCNN_DISPATCH(softmax_backward)
// Losses (kernels/cpu/loss.hpp)
TINYCNN_DISPATCH(softmax_cross_entropy_forward)
TINYCNN_DISPATCH(softmax_cross_entropy_backward)
TINYCNN_DISPATCH(bce_logits_forward)
TINYCNN_DISPATCH(bce_logits_backward)
// Dropout (kernels/cpu/dropout.hpp)
TINYCNN_DISPATCH(dropout_apply)
// Optimizer updates (kernels/cpu/optim.hpp)
TINYCNN_DISPATCH(sgd_update)
TINYCNN_DISPATCH(adam_update)

#include "dispatch_conv.inc"

// A convolution's forward with its Winograd filter kept between calls (kernels/cpu/conv2d.hpp's
// conv2d_forward_cached): the cache is a CPU-kernel structure, so CUDA runs the plain forward.
template <class T>
void conv2d_forward_cached(Device dev, const T* x, const T* w, const T* b, const kernels::cpu::Conv2DGeom& g, T* y,
                           bool relu, T relu_max, kernels::cpu::WinogradFilterCache<T>* cache) {
  if (dev == Device::CPU) return kernels::cpu::conv2d_forward_cached(x, w, b, g, y, relu, relu_max, cache);
  if (relu) return conv2d_forward_relu(dev, x, w, b, g, y, relu_max);
  conv2d_forward(dev, x, w, b, g, y);
}

// A convolution and the max pooling after it in one forward pass, and the chunks of samples its
// backward runs in (kernels/cpu/conv_pool.hpp): CPU passes only. ops::conv2d_max_pool2d asks
// conv2d_max_pool_fuses first and runs the two passes where it says no, and on other devices runs the
// separate ops.
template <class T>
bool conv2d_max_pool_fuses(Device dev, const kernels::cpu::Conv2DGeom& g, const kernels::cpu::Conv2DGeom& pg) {
  return dev == Device::CPU && kernels::cpu::conv2d_max_pool_fuses<T>(g, pg);
}
template <class T>
int64_t conv2d_max_pool_backward_chunk(Device dev, const kernels::cpu::Conv2DGeom& g) {
  return dev == Device::CPU ? kernels::cpu::conv2d_max_pool_backward_chunk<T>(g) : g.N;
}
// Where the convolution's input gradient is not needed, its weight and bias gradients straight from
// the pooled gradient (kernels/cpu/conv_pool_filter.hpp) when conv2d_max_pool_filter_pays says so.
inline bool conv2d_max_pool_filter_pays(Device dev, const kernels::cpu::Conv2DGeom& g,
                                        const kernels::cpu::Conv2DGeom& pg) {
  return dev == Device::CPU && kernels::cpu::conv2d_max_pool_filter_pays(g, pg);
}
template <class T>
void conv2d_max_pool_backward_filter(Device dev, const T* x, const T* dyp, const int32_t* argmax, const T* relu_y,
                                     T relu_cap, const kernels::cpu::Conv2DGeom& g,
                                     const kernels::cpu::Conv2DGeom& pg, T* dw, T* db) {
  if (dev != Device::CPU) detail::no_backend("conv2d_max_pool_backward_filter", dev);
  kernels::cpu::conv2d_max_pool_backward_filter(x, dyp, argmax, relu_y, relu_cap, g, pg, dw, db);
}
template <class T>
void conv2d_max_pool2d_forward(Device dev, const T* x, const T* w, const T* b, const kernels::cpu::Conv2DGeom& g,
                               const kernels::cpu::Conv2DGeom& pg, T* yp, int32_t* argmax, bool relu, T relu_max,
                               kernels::cpu::WinogradFilterCache<T>* cache = nullptr) {
  if (dev != Device::CPU) detail::no_backend("conv2d_max_pool2d_forward", dev);
  kernels::cpu::conv2d_max_pool2d_forward(x, w, b, g, pg, yp, argmax, relu, relu_max, {},
                                          kernels::cpu::kConvPoolBandBytes, cache);
}

// Backward entries that may write a fresh gradient buffer (assign: the op got it unfilled from
// input_grad_fresh) instead of adding into zeros, which spares a pass over it. The CPU kernels take
// the flag (the scatters among them, col2im, depthwise and max pooling, zero a plane at a time right
// before adding into it, so the zeros are still in cache); the CUDA kernels add, so there the n
// elements of dx are zeroed first.
namespace detail {
template <class T, class CpuCall, class AddCall>
void backward_into(Device dev, bool assign, T* dx, int64_t n, CpuCall cpu, AddCall add) {
  if (dev == Device::CPU) return cpu();
#ifdef TINYCNN_HAS_CUDA
  if (assign && dx && dev == Device::CUDA) ::tinycnn::cuda::fill<T>(dx, T(0), n);
#else
  (void)assign, (void)dx, (void)n;
#endif
  add();
}
}  // namespace detail
template <class T>
void activation_backward_to(Device dev, bool assign, const kernels::cpu::ActParams<T>& p, const T* x, const T* y,
                            const T* dy, T* dx, int64_t n) {
  detail::backward_into(
      dev, assign, dx, n, [&] { kernels::cpu::activation_backward(p, x, y, dy, dx, n, assign); },
      [&] { activation_backward(dev, p, x, y, dy, dx, n); });
}
// A fused ReLU's output gradient (written into masked) and the bias gradient (db, += ; may be null):
// one pass over dY on the CPU (kernels/cpu/conv2d.hpp's conv2d_relu_backward_bias); CUDA runs its
// masking kernel, then its bias reduction (conv2d_backward_filter without dw).
template <class T>
void conv2d_relu_backward_bias(Device dev, const T* y, const T* dy, T relu_max, const kernels::cpu::Conv2DGeom& g,
                               T* masked, T* db) {
  if (dev == Device::CPU) return kernels::cpu::conv2d_relu_backward_bias(y, dy, relu_max, g, masked, db);
  activation_backward_to(dev, true, kernels::cpu::ActParams<T>{kernels::cpu::Act::ReLU, T(0), relu_max}, y, y, dy,
                         masked, g.N * g.K * g.OH * g.OW);
  if (db) conv2d_backward_filter(dev, static_cast<const T*>(nullptr), static_cast<const T*>(masked), g,
                                 static_cast<T*>(nullptr), db);
}

template <class T>
void batchnorm_backward_to(Device dev, bool assign_dx, const T* x, const T* dy, const T* gamma, const T* mean,
                           const T* inv_std, int64_t N, int64_t C, int64_t HW, bool batch_stats, T* dx, T* dgamma,
                           T* dbeta) {
  detail::backward_into(
      dev, assign_dx, dx, N * C * HW,
      [&] {
        kernels::cpu::batchnorm_backward(x, dy, gamma, mean, inv_std, N, C, HW, batch_stats, dx, dgamma, dbeta,
                                         assign_dx);
      },
      [&] { batchnorm_backward(dev, x, dy, gamma, mean, inv_std, N, C, HW, batch_stats, dx, dgamma, dbeta); });
}
template <class T>
void conv2d_backward_data_to(Device dev, bool assign, const T* dy, const T* w, const kernels::cpu::Conv2DGeom& g,
                             T* dx) {
  detail::backward_into(
      dev, assign, dx, g.N * g.C * g.H * g.W, [&] { kernels::cpu::conv2d_backward_data(dy, w, g, dx, assign); },
      [&] { conv2d_backward_data(dev, dy, w, g, dx); });
}
template <class T>
void depthwise_conv2d_backward_data_to(Device dev, bool assign, const T* dy, const T* w,
                                       const kernels::cpu::Conv2DGeom& g, T* dx) {
  detail::backward_into(
      dev, assign, dx, g.N * g.C * g.H * g.W,
      [&] { kernels::cpu::depthwise_conv2d_backward_data(dy, w, g, dx, assign); },
      [&] { depthwise_conv2d_backward_data(dev, dy, w, g, dx); });
}
// relu_y (optional): the pooled values of a ReLU's output (capped at relu_cap when > 0), whose mask
// the CPU kernel applies at each window's winner; returns whether it was applied (CUDA: the plain
// backward, and the ReLU's producer masks as usual). db (optional, CPU only): the per-channel sums of
// the gradient added into dx, added into db (a convolution's bias gradient: ops::conv2d_max_pool2d).
template <class T>
bool max_pool2d_backward_to(Device dev, bool assign, const T* dy, const int32_t* argmax,
                            const kernels::cpu::Conv2DGeom& g, T* dx, const T* relu_y = nullptr, T relu_cap = T(0),
                            T* db = nullptr) {
  if (db && dev != Device::CPU) detail::no_backend("max_pool2d_backward_to (with a bias gradient)", dev);
  detail::backward_into(
      dev, assign, dx, g.N * g.C * g.H * g.W,
      [&] { kernels::cpu::max_pool2d_backward(dy, argmax, g, dx, assign, relu_y, relu_cap, db); },
      [&] { max_pool2d_backward(dev, dy, argmax, g, dx); });
  return relu_y != nullptr && dev == Device::CPU;
}

#undef TINYCNN_DISPATCH
#undef TINYCNN_DISPATCH_CUDA

}  // namespace tinycnn::backend
