#pragma once
// im2col / col2im for one image. Column rows are ordered (c, r, s), so a weight tensor [K, C, R, S]
// viewed as [K, C*R*S] multiplies the column matrix directly. The _ld variants write (read) the
// column matrix with a row stride `ldcol` >= OH*OW, so the columns of several images can sit side by
// side in one [C*R*S, nb*OH*OW] matrix (whole-batch GEMMs). Stride-1 rows are contiguous copies /
// adds between the computed valid bounds (the compiler vectorises them); im2col's stride-2 rows a copy
// with a constant stride (vectorised with shuffles); other strides gather.
#include <algorithm>
#include <cstdint>

#include "../../core/host_alloc.hpp"
#include "conv_geometry.hpp"

namespace tinycnn::kernels::cpu {

namespace detail {
// Output columns [ow0, ow1) whose input column ow*stride - pad + s lies inside [0, W).
inline void im2col_valid_cols(const Conv2DGeom& g, int64_t s, int64_t& ow0, int64_t& ow1) {
  // iw = ow*sw - pl + s >= 0  <=>  ow >= ceil((pl - s) / sw);  iw < W  <=>  ow <= (W - 1 + pl - s) / sw
  const int64_t lo = g.pad_left - s, hi = g.W - 1 + g.pad_left - s;
  ow0 = lo <= 0 ? 0 : (lo + g.stride_w - 1) / g.stride_w;
  ow1 = hi < 0 ? 0 : hi / g.stride_w + 1;
  if (ow1 > g.OW) ow1 = g.OW;
  if (ow0 > ow1) ow0 = ow1;
}
}  // namespace detail

// col[(c*R + r)*S + s, oh*OW + ow] = x[c, oh*stride_h - pad_top + r, ow*stride_w - pad_left + s], or 0 in the padding.
//   x: [C, H, W] (one image), col: [C*R*S, ldcol] (columns [0, OH*OW) of every row fully written)
template <class T>
void im2col_ld(const T* x, const Conv2DGeom& g, T* col, int64_t ldcol) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        T* row = col + ((c * g.R + r) * g.S + s) * ldcol;
        int64_t ow0, ow1;
        detail::im2col_valid_cols(g, s, ow0, ow1);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          T* out = row + oh * g.OW;
          const int64_t ih = oh * g.stride_h - g.pad_top + r;
          if (ih < 0 || ih >= g.H) {
            for (int64_t ow = 0; ow < g.OW; ++ow) out[ow] = T(0);
            continue;
          }
          const T* in = x + (c * g.H + ih) * g.W;
          const int64_t off = s - g.pad_left;  // in[ow*sw + off] = x[c, ih, ow*sw - pl + s]
          for (int64_t ow = 0; ow < ow0; ++ow) out[ow] = T(0);
          if (g.stride_w == 1) {
            for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = in[ow + off];
          } else if (g.stride_w == 2) {  // MobileNet's and ResNets' downsampling layers: a constant
            // stride the compiler vectorises (even lanes of pairs of loads); with the runtime stride
            // below it stayed a scalar loop, 70% of im2col's time on MobileNet's first layer
            const T* in2 = in + off;
            for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = in2[2 * ow];
          } else {
            for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = in[ow * g.stride_w + off];
          }
          for (int64_t ow = ow1; ow < g.OW; ++ow) out[ow] = T(0);
        }
      }
}

//   x: [C, H, W] (one image), col: [C*R*S, OH*OW] (fully written)
template <class T>
void im2col(const T* x, const Conv2DGeom& g, T* col) {
  im2col_ld(x, g, col, g.OH * g.OW);
}

// The transpose of im2col's matrix ("im2row"): one row per output pixel,
//   rows[oh*OW + ow, (c*R + r)*S + s] = x[c, oh*stride_h - pad_top + r, ow*stride_w - pad_left + s], or 0.
// For GEMMs that want the pixels as their K dimension with C*R*S contiguous (the backward-filter
// GEMM packs it by plain copies then). Output-row-major order keeps the block being written (OW
// pixels x C*R*S values) in L1/L2 while the input rows are re-read from cache.
//   x: [C, H, W] (one image), rows: [OH*OW, C*R*S] (fully written)
template <class T>
void im2row(const T* x, const Conv2DGeom& g, T* rows) {
  const int64_t CRS = g.C * g.R * g.S;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    T* blk = rows + oh * g.OW * CRS;
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t r = 0; r < g.R; ++r) {
        const int64_t ih = oh * g.stride_h - g.pad_top + r;
        const bool inside = ih >= 0 && ih < g.H;
        const T* in = x + (c * g.H + (inside ? ih : 0)) * g.W;
        for (int64_t s = 0; s < g.S; ++s) {
          T* out = blk + (c * g.R + r) * g.S + s;
          int64_t ow0 = g.OW, ow1 = g.OW;
          if (inside) detail::im2col_valid_cols(g, s, ow0, ow1);
          else ow0 = ow1 = 0;
          const int64_t off = s - g.pad_left;
          for (int64_t ow = 0; ow < ow0; ++ow) out[ow * CRS] = T(0);
          for (int64_t ow = ow0; ow < ow1; ++ow) out[ow * CRS] = in[ow * g.stride_w + off];
          for (int64_t ow = ow1; ow < g.OW; ++ow) out[ow * CRS] = T(0);
        }
      }
  }
}

// The adjoint of im2col: dx += col scattered back (padding entries dropped).
//   col: [C*R*S, ldcol] (columns [0, OH*OW) read), dx: [C, H, W] (one image, +=)
template <class T>
void col2im_add_ld(const T* col, const Conv2DGeom& g, T* dx, int64_t ldcol) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        const T* row = col + ((c * g.R + r) * g.S + s) * ldcol;
        int64_t ow0, ow1;
        detail::im2col_valid_cols(g, s, ow0, ow1);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.stride_h - g.pad_top + r;
          if (ih < 0 || ih >= g.H) continue;
          const T* in = row + oh * g.OW;
          T* out = dx + (c * g.H + ih) * g.W;
          const int64_t off = s - g.pad_left;
          if (g.stride_w == 1) {
            for (int64_t ow = ow0; ow < ow1; ++ow) out[ow + off] += in[ow];
          } else {
            for (int64_t ow = ow0; ow < ow1; ++ow) out[ow * g.stride_w + off] += in[ow];
          }
        }
      }
}

//   col: [C*R*S, OH*OW], dx: [C, H, W] (one image, +=)
template <class T>
void col2im_add(const T* col, const Conv2DGeom& g, T* dx) {
  col2im_add_ld(col, g, dx, g.OH * g.OW);
}

namespace detail {
// Per-thread scratch that only grows: kernels get workspace without a Tensor or a per-call allocation.
// `slot` separates buffers that must be live at the same time.
template <class T, int slot = 0>
HostBuffer<T>& conv_scratch_buffer() {
  static thread_local HostBuffer<T> buf;
  return buf;
}
template <class T, int slot = 0>
T* conv_scratch(int64_t n) {
  return conv_scratch_buffer<T, slot>().get(static_cast<size_t>(n));
}
}  // namespace detail

}  // namespace tinycnn::kernels::cpu
