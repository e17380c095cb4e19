#pragma once
// im2col / col2im for one image. Column rows are ordered (c, r, s), so a weight tensor [K, C, R, S]
// viewed as [K, C*R*S] multiplies the column matrix directly.
#include <cstdint>
#include <vector>

#include "conv_geometry.hpp"

namespace tinycnn::kernels::cpu {

// col[(c*R + r)*S + s, oh*OW + ow] = x[c, oh*stride_h - pad_top + r, ow*stride_w - pad_left + s], or 0 in the padding.
//   x: [C, H, W] (one image), col: [C*R*S, OH*OW] (fully written)
template <class T>
void im2col(const T* x, const Conv2DGeom& g, T* col) {
  const int64_t L = g.OH * g.OW;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        T* row = col + ((c * g.R + r) * g.S + s) * L;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          T* out = row + oh * g.OW;
          const int64_t ih = oh * g.stride_h - g.pad_top + r;
          if (ih < 0 || ih >= g.H) {
            for (int64_t ow = 0; ow < g.OW; ++ow) out[ow] = T(0);
            continue;
          }
          const T* in = x + (c * g.H + ih) * g.W;
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const int64_t iw = ow * g.stride_w - g.pad_left + s;
            out[ow] = (iw >= 0 && iw < g.W) ? in[iw] : T(0);
          }
        }
      }
}

// The adjoint of im2col: dx += col scattered back (padding entries dropped).
//   col: [C*R*S, OH*OW], dx: [C, H, W] (one image, +=)
template <class T>
void col2im_add(const T* col, const Conv2DGeom& g, T* dx) {
  const int64_t L = g.OH * g.OW;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        const T* row = col + ((c * g.R + r) * g.S + s) * L;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.stride_h - g.pad_top + r;
          if (ih < 0 || ih >= g.H) continue;
          const T* in = row + oh * g.OW;
          T* out = dx + (c * g.H + ih) * g.W;
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const int64_t iw = ow * g.stride_w - g.pad_left + s;
            if (iw >= 0 && iw < g.W) out[iw] += in[ow];
          }
        }
      }
}

namespace detail {
// Per-thread scratch that only grows: kernels get workspace without a Tensor or a per-call allocation.
// `slot` separates buffers that must be live at the same time.
template <class T, int slot = 0>
T* conv_scratch(int64_t n) {
  static thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}
}  // namespace detail

}  // namespace tinycnn::kernels::cpu
