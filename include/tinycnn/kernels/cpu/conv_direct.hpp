#pragma once
// Naive direct convolution: the TEST REFERENCE for conv2d.hpp (im2col + GEMM). Never used by ops.
// Same contracts as conv2d_forward / conv2d_backward_data / conv2d_backward_filter.
#include <cstdint>

#include "conv_geometry.hpp"

namespace tinycnn::kernels::cpu {

// y[n, k, oh, ow] = b[k] + sum_{c, r, s} w[k, c, r, s] * x[n, c, oh*sh - pt + r, ow*sw - pl + s]
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
template <class T>
void conv2d_direct_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double acc = b ? static_cast<double>(b[k]) : 0.0;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t r = 0; r < g.R; ++r)
              for (int64_t s = 0; s < g.S; ++s) {
                const int64_t ih = oh * g.stride_h - g.pad_top + r, iw = ow * g.stride_w - g.pad_left + s;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                acc += static_cast<double>(w[((k * g.C + c) * g.R + r) * g.S + s]) *
                       static_cast<double>(x[((n * g.C + c) * g.H + ih) * g.W + iw]);
              }
          y[((n * g.K + k) * g.OH + oh) * g.OW + ow] = static_cast<T>(acc);
        }
}

//   dy: [N, K, OH, OW], w: [K, C, R, S], dx: [N, C, H, W] (+=)
template <class T>
void conv2d_direct_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const T d = dy[((n * g.K + k) * g.OH + oh) * g.OW + ow];
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t r = 0; r < g.R; ++r)
              for (int64_t s = 0; s < g.S; ++s) {
                const int64_t ih = oh * g.stride_h - g.pad_top + r, iw = ow * g.stride_w - g.pad_left + s;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                dx[((n * g.C + c) * g.H + ih) * g.W + iw] += d * w[((k * g.C + c) * g.R + r) * g.S + s];
              }
        }
}

//   x: [N, C, H, W], dy: [N, K, OH, OW], dw: [K, C, R, S] (+=), db: [K] (+=) or nullptr
template <class T>
void conv2d_direct_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const T d = dy[((n * g.K + k) * g.OH + oh) * g.OW + ow];
          if (db) db[k] += d;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t r = 0; r < g.R; ++r)
              for (int64_t s = 0; s < g.S; ++s) {
                const int64_t ih = oh * g.stride_h - g.pad_top + r, iw = ow * g.stride_w - g.pad_left + s;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                dw[((k * g.C + c) * g.R + r) * g.S + s] += d * x[((n * g.C + c) * g.H + ih) * g.W + iw];
              }
        }
}

}  // namespace tinycnn::kernels::cpu
