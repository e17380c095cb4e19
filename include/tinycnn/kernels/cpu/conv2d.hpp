#pragma once
// 2-D convolution (cross-correlation, as in Keras) over NCHW tensors by im2col + GEMM, one sample
// at a time; GEMM parallelises internally. A 1x1, stride-1, unpadded convolution skips im2col: the
// image [C, H*W] is already the column matrix. Forward writes y; backward ADDS into dx / dw / db.
// Weight layout [K, C, R, S] (viewed as [K, C*R*S] in the GEMMs).
#include <cstdint>

#include "conv_geometry.hpp"
#include "gemm.hpp"
#include "im2col.hpp"

namespace tinycnn::kernels::cpu {

namespace detail {
inline bool conv_is_pointwise(const Conv2DGeom& g) {
  return g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.OH == g.H && g.OW == g.W;
}
}  // namespace detail

// y[n] = W * im2col(x[n]) + b
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W;
  const bool pointwise = detail::conv_is_pointwise(g);
  T* col = pointwise ? nullptr : detail::conv_scratch<T>(CRS * L);
  for (int64_t n = 0; n < g.N; ++n) {
    const T* xn = x + n * g.C * HW;
    T* yn = y + n * g.K * L;
    if (!pointwise) im2col(xn, g, col);
    gemm<T>(false, false, g.K, L, CRS, T(1), w, CRS, pointwise ? xn : col, L, T(0), yn, L);
    if (b)
      for (int64_t k = 0; k < g.K; ++k)
        for (int64_t i = 0; i < L; ++i) yn[k * L + i] += b[k];
  }
}

// dx[n] += col2im(W^T * dy[n])
//   dy: [N, K, OH, OW], w: [K, C, R, S], dx: [N, C, H, W] (+=)
template <class T>
void conv2d_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W;
  const bool pointwise = detail::conv_is_pointwise(g);
  T* dcol = pointwise ? nullptr : detail::conv_scratch<T>(CRS * L);
  for (int64_t n = 0; n < g.N; ++n) {
    const T* dyn = dy + n * g.K * L;
    T* dxn = dx + n * g.C * HW;
    if (pointwise) {  // dx[n] [C, HW] += W^T [C, K] * dy[n] [K, HW]
      gemm<T>(true, false, g.C, L, g.K, T(1), w, CRS, dyn, L, T(1), dxn, L);
    } else {
      gemm<T>(true, false, CRS, L, g.K, T(1), w, CRS, dyn, L, T(0), dcol, L);
      col2im_add(dcol, g, dxn);
    }
  }
}

// dw += sum_n dy[n] * im2col(x[n])^T;  db += sum over n, oh, ow of dy (when db is not null)
//   x: [N, C, H, W], dy: [N, K, OH, OW], dw: [K, C, R, S] (+=), db: [K] (+=) or nullptr
template <class T>
void conv2d_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W;
  const bool pointwise = detail::conv_is_pointwise(g);
  T* col = pointwise ? nullptr : detail::conv_scratch<T>(CRS * L);
  for (int64_t n = 0; n < g.N; ++n) {
    const T* xn = x + n * g.C * HW;
    const T* dyn = dy + n * g.K * L;
    if (dw) {
      if (!pointwise) im2col(xn, g, col);
      // dw [K, CRS] += dy[n] [K, L] * col^T [L, CRS]
      gemm<T>(false, true, g.K, CRS, L, T(1), dyn, L, pointwise ? xn : col, L, T(1), dw, CRS);
    }
    if (db)
      for (int64_t k = 0; k < g.K; ++k) {
        T s = T(0);
        for (int64_t i = 0; i < L; ++i) s += dyn[k * L + i];
        db[k] += s;
      }
  }
}

}  // namespace tinycnn::kernels::cpu
