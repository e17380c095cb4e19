#pragma once
// Convolution-family kernels on the GPU, with the argument lists of their CPU twins in
// include/tinycnn/kernels/cpu (conv2d.hpp, depthwise.hpp, pool.hpp, batchnorm.hpp, pad.hpp), so the
// dispatch facade forwards the same arguments. Pointers are device pointers. Forward kernels write
// their outputs; backward kernels ADD into gradients (as on the CPU).
//
// conv2d variants: 0 = direct loops (the GPU reference), 1..kGemmVariants = im2col + that GEMM
// variant (gemm.hpp), over chunks of samples as strided-batched GEMMs (no per-sample launches; a 1x1,
// stride-1, unpadded convolution skips im2col), kConvVariants (6) = implicit GEMM: variant 3's tiles
// computing the im2col elements while loading (no column buffer) for the forward pass and the weight
// gradient; its data gradient uses variant 3. The default follows default_gemm_variant().
#include <cstdint>

#include <tinycnn/kernels/cpu/conv_geometry.hpp>

namespace tinycnn::cuda {

using kernels::cpu::Conv2DGeom;

constexpr int kConvVariants = 6;  // 0..kConvVariants

int default_conv_variant();       // default_gemm_variant() unless set
void set_default_conv_variant(int variant);  // 0..kConvVariants, or -1 = follow the GEMM default
// Bytes of im2col workspace one convolution may take (default 512 MiB or TINYCNN_CUDA_WORKSPACE_MB);
// the batch is processed in chunks that fit.
void set_conv_workspace_limit(size_t bytes);

//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y);
//   the same followed by ReLU (y = max(0, conv + b), capped at relu_max when that is > 0)
template <class T>
void conv2d_forward_relu(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, T relu_max = T(0));
//   dy: [N, K, OH, OW], w: [K, C, R, S], dx: [N, C, H, W] (+=)
template <class T>
void conv2d_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx);
//   x: [N, C, H, W], dy: [N, K, OH, OW], dw: [K, C, R, S] (+=) or nullptr, db: [K] (+=) or nullptr
template <class T>
void conv2d_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db);

// The same with an explicit variant (0..kConvVariants).
template <class T>
void conv2d_forward_variant(int variant, const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y);
template <class T>
void conv2d_backward_data_variant(int variant, const T* dy, const T* w, const Conv2DGeom& g, T* dx);
template <class T>
void conv2d_backward_filter_variant(int variant, const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db);

// Depthwise, depth multiplier M = g.K / g.C (Keras order: output channel c*M + m).
//   x: [N, C, H, W], w: [C, M, R, S], b: [C*M] or nullptr, y: [N, C*M, OH, OW] (written); relu: as above
template <class T>
void depthwise_conv2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, bool relu = false,
                              T relu_max = T(0));
//   dy: [N, C*M, OH, OW], w: [C, M, R, S], dx: [N, C, H, W] (+=)
template <class T>
void depthwise_conv2d_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx);
//   x: [N, C, H, W], dy: [N, C*M, OH, OW], dw: [C, M, R, S] (+=) or nullptr, db: [C*M] (+=) or nullptr
template <class T>
void depthwise_conv2d_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db);

// Pooling (g.K = C, R x S = window). argmax = ih*W + iw of the first maximum in its plane, -1 when the
// window has no real cell (y = 0 there).
//   x: [N, C, H, W], y: [N, C, OH, OW] (written), argmax: [N, C, OH, OW] (written)
template <class T>
void max_pool2d_forward(const T* x, const Conv2DGeom& g, T* y, int32_t* argmax);
//   dy: [N, C, OH, OW], argmax: [N, C, OH, OW], dx: [N, C, H, W] (+=)
template <class T>
void max_pool2d_backward(const T* dy, const int32_t* argmax, const Conv2DGeom& g, T* dx);
//   x: [N, C, H, W], y: [N, C, OH, OW] (written; mean of the real cells)
template <class T>
void avg_pool2d_forward(const T* x, const Conv2DGeom& g, T* y);
//   dy: [N, C, OH, OW], dx: [N, C, H, W] (+=)
template <class T>
void avg_pool2d_backward(const T* dy, const Conv2DGeom& g, T* dx);
//   x: [N, C, HW], y: [N, C] (written)
template <class T>
void global_avg_pool2d_forward(const T* x, int64_t N, int64_t C, int64_t HW, T* y);
//   dy: [N, C], dx: [N, C, HW] (+=)
template <class T>
void global_avg_pool2d_backward(const T* dy, int64_t N, int64_t C, int64_t HW, T* dx);

// Batch normalisation (semantics in kernels/cpu/batchnorm.hpp; statistics accumulate in double).
//   x: [N, C, HW], gamma, beta: [C], y: [N, C, HW] (written), save_mean, save_inv_std: [C] (written),
//   running_mean, running_var: [C] (updated; both nullptr = no update)
template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, T eps,
                             T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean, T* running_var);
//   x: [N, C, HW], gamma, beta, running_mean, running_var: [C], y: [N, C, HW] (written),
//   save_mean, save_inv_std: [C] (written; nullptr = not needed)
template <class T>
void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                            int64_t N, int64_t C, int64_t HW, T eps, T* y, T* save_mean, T* save_inv_std);
//   x, dy: [N, C, HW], gamma, mean, inv_std: [C], dx: [N, C, HW] (+=), dgamma, dbeta: [C] (+=); any
//   of dx, dgamma, dbeta may be nullptr
template <class T>
void batchnorm_backward(const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std, int64_t N,
                        int64_t C, int64_t HW, bool batch_stats, T* dx, T* dgamma, T* dbeta);

// Batch-norm variants: 1 = one block per channel; 2 = each channel split over several blocks (partial
// sums in double, combined per channel), for small C and large N*HW. The default picks 2 when
// N*HW >= 32768 (a guess until measured) unless set_default_batchnorm_variant(1 or 2) fixes one
// (0 = by size again).
void set_default_batchnorm_variant(int variant);
template <class T>
void batchnorm_forward_train_variant(int variant, const T* x, const T* gamma, const T* beta, int64_t N, int64_t C,
                                     int64_t HW, T eps, T momentum, T* y, T* save_mean, T* save_inv_std,
                                     T* running_mean, T* running_var);
template <class T>
void batchnorm_backward_variant(int variant, const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std,
                                int64_t N, int64_t C, int64_t HW, bool batch_stats, T* dx, T* dgamma, T* dbeta);

// Zero padding of the spatial axes.
//   x: [N, C, H, W], y: [N, C, H + top + bottom, W + left + right] (written)
template <class T>
void zero_pad2d_forward(const T* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t top, int64_t bottom,
                        int64_t left, int64_t right, T* y);
//   dy: [N, C, H + top + bottom, W + left + right], dx: [N, C, H, W] (+=)
template <class T>
void zero_pad2d_backward(const T* dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t top, int64_t bottom,
                         int64_t left, int64_t right, T* dx);

// Bilinear resampling of NCHW planes, half-pixel centres; antialias widens the filter when shrinking
// (kernels/cpu/resize.hpp has the definition). The taps are computed in each thread (no host tables).
//   x: [P, H, W] (P = N * C), y: [P, OH, OW] (written)
template <class T>
void resize2d_forward(const T* x, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, bool antialias, T* y);
//   dy: [P, OH, OW], dx: [P, H, W] (+=)
template <class T>
void resize2d_backward(const T* dy, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, bool antialias, T* dx);
// Horizontal mirror: y[p, h, w] = x[p, h, W - 1 - w];  x, y: [P, H, W] (written)
template <class T>
void flip_w_forward(const T* x, int64_t P, int64_t H, int64_t W, T* y);
// dx[p, h, w] += dy[p, h, W - 1 - w];  dy, dx: [P, H, W]
template <class T>
void flip_w_backward(const T* dy, int64_t P, int64_t H, int64_t W, T* dx);

}  // namespace tinycnn::cuda
