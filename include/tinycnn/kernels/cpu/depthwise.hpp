#pragma once
// Depthwise 2-D convolution with depth multiplier M = g.K / g.C: input channel c, multiplier m feeds
// output channel c*M + m (Keras order). Weight layout [C, M, R, S]. Direct loops; forward writes y,
// backward ADDS into dx / dw / db.
#include <algorithm>
#include <cstdint>

#include "../../core/parallel.hpp"
#include "conv_geometry.hpp"
#include "cpu_features.hpp"

namespace tinycnn::kernels::cpu {

// y[n, c*M+m, oh, ow] = b[c*M+m] + sum_{r, s} w[c, m, r, s] * x[n, c, oh*sh - pt + r, ow*sw - pl + s]
//   x: [N, C, H, W], w: [C, M, R, S], b: [C*M] or nullptr, g.K = C*M, y: [N, C*M, OH, OW] (written)
// Reference: one output at a time (ground truth for depthwise_conv2d_forward).
template <class T>
void depthwise_conv2d_forward_ref(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW;
  const bool par = g.N * g.K * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
    const int64_t n = nk / g.K, k = nk % g.K, c = k / M;
    const T* xc = x + (n * g.C + c) * g.H * g.W;
    const T* wk = w + k * g.R * g.S;  // [c, m] flattened is k
    T* yk = y + nk * L;
    const T bias = b ? b[k] : T(0);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        T acc = bias;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t ih = oh * g.stride_h - g.pad_top + r;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t iw = ow * g.stride_w - g.pad_left + s;
            if (iw >= 0 && iw < g.W) acc += wk[r * g.S + s] * xc[ih * g.W + iw];
          }
        }
        yk[oh * g.OW + ow] = acc;
      }
  }
}

namespace detail {
// relu: max(0, .) over a freshly written output row or plane (still in cache), capped at
// relu_max > 0 (ReLU6), instead of a separate pass over the whole output. Selects on a loaded
// value, as activation_forward: std::max / std::min (references) kept the loop scalar.
template <class T>
inline void depthwise_relu_plane(T* y, int64_t n, T relu_max) {
  if (relu_max > T(0)) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const T v = y[i];
      y[i] = v > T(0) ? (v < relu_max ? v : relu_max) : T(0);
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const T v = y[i];
      y[i] = v > T(0) ? v : T(0);
    }
  }
}

// Output columns ow in [lo, hi) whose tap column s reads inside the input row: 0 <= ow * stride_w + s - pad_left < W.
inline void depthwise_tap_span(const Conv2DGeom& g, int64_t s, int64_t& lo, int64_t& hi) {
  const int64_t off = s - g.pad_left, sw = g.stride_w;
  lo = std::min<int64_t>(g.OW, off >= 0 ? 0 : (-off + sw - 1) / sw);
  hi = std::max<int64_t>(lo, std::min<int64_t>(g.OW, (g.W - off + sw - 1) / sw));
}
}  // namespace detail

// Variant 1: the same sums a row at a time: for each tap (r, s) the valid stretch of an output row
// gets w[r, s] times the matching input row (stride apart), a loop the compiler vectorises, where the
// reference tests bounds per output and tap. Same terms in the same order (bias, then r-major, s-minor
// taps, out-of-bounds ones skipped), so the result equals the reference's. Any window and stride.
template <class T>
void depthwise_conv2d_forward_rows(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, bool relu = false,
                                   T relu_max = T(0)) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW, sw = g.stride_w;
  const bool par = g.N * g.K * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
    const int64_t n = nk / g.K, k = nk % g.K, c = k / M;
    const T* xc = x + (n * g.C + c) * g.H * g.W;
    const T* wk = w + k * g.R * g.S;  // [c, m] flattened is k
    const T bias = b ? b[k] : T(0);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      T* yr = y + nk * L + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] = bias;
      for (int64_t r = 0; r < g.R; ++r) {
        const int64_t ih = oh * g.stride_h - g.pad_top + r;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t s = 0; s < g.S; ++s) {
          const int64_t off = s - g.pad_left;
          int64_t lo, hi;
          detail::depthwise_tap_span(g, s, lo, hi);
          const T wv = wk[r * g.S + s];
          const T* xr = xc + ih * g.W + off;
          if (sw == 1) {
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow];
          } else {
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * sw];
          }
        }
      }
    }
    if (relu) detail::depthwise_relu_plane(y + nk * L, L, relu_max);
  }
}

namespace detail {
// Output row of a 3x3 window over the nr valid input rows xr[0..nr) (weights wr[r][0..3)), column
// stride SW: the taps stay in registers and each output is stored once, where variant 1 loads and
// stores the row once per tap. Terms in the reference's order; columns whose window reaches past the
// row's ends are summed with bounds checks.
template <class T, int NR, int SW>
inline void depthwise3x3_row(const T* const* xr, const T (*wr)[3], T bias, int64_t W, int64_t OW, int64_t pl,
                             T* y) {
  auto edge = [&](int64_t ow) {
    T acc = bias;
    for (int r = 0; r < NR; ++r)
      for (int s = 0; s < 3; ++s) {
        const int64_t iw = ow * SW - pl + s;
        if (iw >= 0 && iw < W) acc += wr[r][s] * xr[r][iw];
      }
    y[ow] = acc;
  };
  // Interior columns: ow * SW - pl >= 0 and ow * SW - pl + 2 < W.
  const int64_t lo = std::min<int64_t>(OW, (pl + SW - 1) / SW);
  const int64_t hi = std::max<int64_t>(lo, W - 3 + pl >= 0 ? std::min<int64_t>(OW, (W - 3 + pl) / SW + 1) : 0);
  for (int64_t ow = 0; ow < lo; ++ow) edge(ow);
  const T* x0 = xr[0];
  const T* x1 = xr[NR > 1 ? 1 : 0];
  const T* x2 = xr[NR > 2 ? 2 : 0];
  const T w00 = wr[0][0], w01 = wr[0][1], w02 = wr[0][2];
  const T w10 = wr[NR > 1 ? 1 : 0][0], w11 = wr[NR > 1 ? 1 : 0][1], w12 = wr[NR > 1 ? 1 : 0][2];
  const T w20 = wr[NR > 2 ? 2 : 0][0], w21 = wr[NR > 2 ? 2 : 0][1], w22 = wr[NR > 2 ? 2 : 0][2];
#pragma omp simd
  for (int64_t ow = lo; ow < hi; ++ow) {
    const int64_t i = ow * SW - pl;
    T acc = bias;
    acc += w00 * x0[i];
    acc += w01 * x0[i + 1];
    acc += w02 * x0[i + 2];
    if constexpr (NR > 1) {
      acc += w10 * x1[i];
      acc += w11 * x1[i + 1];
      acc += w12 * x1[i + 2];
    }
    if constexpr (NR > 2) {
      acc += w20 * x2[i];
      acc += w21 * x2[i + 1];
      acc += w22 * x2[i + 2];
    }
    y[ow] = acc;
  }
  for (int64_t ow = hi; ow < OW; ++ow) edge(ow);
}

// One (sample, output channel) plane of a 3x3 depthwise convolution with column stride 1 or 2.
template <class T>
inline void depthwise3x3_plane_body(const T* xc, const T* wk, T bias, const Conv2DGeom& g, T* yk, bool relu,
                                    T relu_max) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* xr[3];
    T wr[3][3];
    int nr = 0;
    for (int64_t r = 0; r < 3; ++r) {
      const int64_t ih = oh * g.stride_h - g.pad_top + r;
      if (ih < 0 || ih >= g.H) continue;
      xr[nr] = xc + ih * g.W;
      for (int s = 0; s < 3; ++s) wr[nr][s] = wk[r * 3 + s];
      ++nr;
    }
    T* y = yk + oh * g.OW;
    const int64_t W = g.W, OW = g.OW, pl = g.pad_left;
    if (g.stride_w == 1) {
      if (nr == 3) depthwise3x3_row<T, 3, 1>(xr, wr, bias, W, OW, pl, y);
      else if (nr == 2) depthwise3x3_row<T, 2, 1>(xr, wr, bias, W, OW, pl, y);
      else if (nr == 1) depthwise3x3_row<T, 1, 1>(xr, wr, bias, W, OW, pl, y);
      else std::fill(y, y + OW, bias);
    } else {
      if (nr == 3) depthwise3x3_row<T, 3, 2>(xr, wr, bias, W, OW, pl, y);
      else if (nr == 2) depthwise3x3_row<T, 2, 2>(xr, wr, bias, W, OW, pl, y);
      else if (nr == 1) depthwise3x3_row<T, 1, 2>(xr, wr, bias, W, OW, pl, y);
      else std::fill(y, y + OW, bias);
    }
    if (relu) depthwise_relu_plane(y, OW, relu_max);  // the row just written, in L1
  }
}
template <class T>
void depthwise3x3_plane(const T* xc, const T* wk, T bias, const Conv2DGeom& g, T* yk, bool relu, T relu_max) {
  depthwise3x3_plane_body(xc, wk, bias, g, yk, relu, relu_max);
}
#ifdef TINYCNN_HAVE_X86_TARGETS
template <class T>
TINYCNN_TARGET_AVX2 void depthwise3x3_plane_avx2(const T* xc, const T* wk, T bias, const Conv2DGeom& g, T* yk,
                                                 bool relu, T relu_max) {
  depthwise3x3_plane_body(xc, wk, bias, g, yk, relu, relu_max);
}
#endif
}  // namespace detail

// Variant 2: 3x3 windows with column stride 1 or 2 (MobileNet's), a row at a time with the nine taps
// in registers (detail::depthwise3x3_row), AVX2 + FMA where the CPU has them. With FMA the sums round
// differently from the reference (within float rounding of it); without, they are the same.
template <class T>
void depthwise_conv2d_forward_3x3(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, bool relu = false,
                                  T relu_max = T(0)) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW;
  const bool par = g.N * g.K * L * 9 > kParallelMinWork;
  auto plane = &detail::depthwise3x3_plane<T>;
#ifdef TINYCNN_HAVE_X86_TARGETS
  if (cpu_features().avx2_fma) plane = &detail::depthwise3x3_plane_avx2<T>;
#endif
#pragma omp parallel for if (par)
  for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
    const int64_t n = nk / g.K, k = nk % g.K, c = k / M;
    plane(x + (n * g.C + c) * g.H * g.W, w + k * 9, b ? b[k] : T(0), g, y + nk * L, relu, relu_max);
  }
}

inline bool depthwise_3x3_applies(const Conv2DGeom& g) {
  return g.R == 3 && g.S == 3 && (g.stride_w == 1 || g.stride_w == 2);
}

// y[n, c*M+m] = b + depthwise correlation: variant 2 where it applies, else variant 1 (docs/performance.md,
// seventeenth session: bench `depthwise/`). The shipped ensemble's MobileNets spend most of their
// time here (tenth session). relu: max(0, .) (capped at relu_max > 0) on each plane as it is written.
template <class T>
void depthwise_conv2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, bool relu = false,
                              T relu_max = T(0)) {
  if (depthwise_3x3_applies(g)) return depthwise_conv2d_forward_3x3(x, w, b, g, y, relu, relu_max);
  depthwise_conv2d_forward_rows(x, w, b, g, y, relu, relu_max);
}

//   dy: [N, C*M, OH, OW], w: [C, M, R, S], dx: [N, C, H, W] (+=)
// Reference: one output gradient at a time (ground truth for depthwise_conv2d_backward_data).
template <class T>
void depthwise_conv2d_backward_data_ref(const T* dy, const T* w, const Conv2DGeom& g, T* dx) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW;
  const bool par = g.N * g.K * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {  // each (n, c) owns its dx plane: no races
    const int64_t n = nc / g.C, c = nc % g.C;
    T* dxc = dx + nc * g.H * g.W;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t k = c * M + m;
      const T* wk = w + k * g.R * g.S;
      const T* dyk = dy + (n * g.K + k) * L;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const T d = dyk[oh * g.OW + ow];
          for (int64_t r = 0; r < g.R; ++r) {
            const int64_t ih = oh * g.stride_h - g.pad_top + r;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t s = 0; s < g.S; ++s) {
              const int64_t iw = ow * g.stride_w - g.pad_left + s;
              if (iw >= 0 && iw < g.W) dxc[ih * g.W + iw] += d * wk[r * g.S + s];
            }
          }
        }
    }
  }
}

//   x: [N, C, H, W], dy: [N, C*M, OH, OW], dw: [C, M, R, S] (+=), db: [C*M] (+=) or nullptr
// Reference: one output gradient at a time (ground truth for depthwise_conv2d_backward_filter).
template <class T>
void depthwise_conv2d_backward_filter_ref(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW;
  const bool par = g.N * g.K * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t k = 0; k < g.K; ++k) {  // each output channel owns its dw slice and db entry
    const int64_t c = k / M;
    T* dwk = dw ? dw + k * g.R * g.S : nullptr;
    T bsum = T(0);
    for (int64_t n = 0; n < g.N; ++n) {
      const T* xc = x + (n * g.C + c) * g.H * g.W;
      const T* dyk = dy + (n * g.K + k) * L;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const T d = dyk[oh * g.OW + ow];
          bsum += d;
          if (!dwk) continue;
          for (int64_t r = 0; r < g.R; ++r) {
            const int64_t ih = oh * g.stride_h - g.pad_top + r;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t s = 0; s < g.S; ++s) {
              const int64_t iw = ow * g.stride_w - g.pad_left + s;
              if (iw >= 0 && iw < g.W) dwk[r * g.S + s] += d * xc[ih * g.W + iw];
            }
          }
        }
    }
    if (db) db[k] += bsum;
  }
}

// The reference's sums a row at a time, as in the forward: for each output row and tap (r, s) the
// valid stretch of dy's row times w[r, s] is added into the matching dx row (stride apart), a loop the
// compiler vectorises. The taps run s-descending so that each dx element still gets its terms in the
// reference's order (by output row, then output column), which keeps the result bitwise equal to it.
//   dy: [N, C*M, OH, OW], w: [C, M, R, S], dx: [N, C, H, W] (+=; assign: a fresh buffer, zeroed here
//   a plane at a time first)
template <class T>
void depthwise_conv2d_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx, bool assign = false) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW, sw = g.stride_w;
  const bool par = g.N * g.K * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {  // each (n, c) owns its dx plane: no races
    const int64_t n = nc / g.C, c = nc % g.C;
    T* dxc = dx + nc * g.H * g.W;
    if (assign) std::fill(dxc, dxc + g.H * g.W, T(0));
    for (int64_t m = 0; m < M; ++m) {
      const int64_t k = c * M + m;
      const T* wk = w + k * g.R * g.S;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const T* dyr = dy + (n * g.K + k) * L + oh * g.OW;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t ih = oh * g.stride_h - g.pad_top + r;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t s = g.S - 1; s >= 0; --s) {
            const int64_t off = s - g.pad_left;
            int64_t lo, hi;
            detail::depthwise_tap_span(g, s, lo, hi);
            const T wv = wk[r * g.S + s];
            T* xr = dxc + ih * g.W + off;
            if (sw == 1) {
#pragma omp simd
              for (int64_t ow = lo; ow < hi; ++ow) xr[ow] += dyr[ow] * wv;
            } else {
#pragma omp simd
              for (int64_t ow = lo; ow < hi; ++ow) xr[ow * sw] += dyr[ow] * wv;
            }
          }
        }
      }
    }
  }
}

// The same sums a row at a time: per output row, the bias gradient gets the row's sum and each tap
// (r, s) the dot product of the row with the matching input row (stride apart), vectorised reductions.
// The terms are grouped per row before they reach dw / db, so the result differs from the reference's
// one-term-at-a-time sums by float rounding only (tests/test_conv.cpp).
//   x: [N, C, H, W], dy: [N, C*M, OH, OW], dw: [C, M, R, S] (+=), db: [C*M] (+=) or nullptr
template <class T>
void depthwise_conv2d_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW, sw = g.stride_w;
  const bool par = g.N * g.K * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t k = 0; k < g.K; ++k) {  // each output channel owns its dw slice and db entry
    const int64_t c = k / M;
    T* dwk = dw ? dw + k * g.R * g.S : nullptr;
    T bsum = T(0);
    for (int64_t n = 0; n < g.N; ++n) {
      const T* xc = x + (n * g.C + c) * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const T* dyr = dy + (n * g.K + k) * L + oh * g.OW;
        T rsum = T(0);
#pragma omp simd reduction(+ : rsum)
        for (int64_t ow = 0; ow < g.OW; ++ow) rsum += dyr[ow];
        bsum += rsum;
        if (!dwk) continue;
        for (int64_t r = 0; r < g.R; ++r) {
          const int64_t ih = oh * g.stride_h - g.pad_top + r;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t off = s - g.pad_left;
            int64_t lo, hi;
            detail::depthwise_tap_span(g, s, lo, hi);
            const T* xr = xc + ih * g.W + off;
            T dot = T(0);
            if (sw == 1) {
#pragma omp simd reduction(+ : dot)
              for (int64_t ow = lo; ow < hi; ++ow) dot += dyr[ow] * xr[ow];
            } else {
#pragma omp simd reduction(+ : dot)
              for (int64_t ow = lo; ow < hi; ++ow) dot += dyr[ow] * xr[ow * sw];
            }
            dwk[r * g.S + s] += dot;
          }
        }
      }
    }
    if (db) db[k] += bsum;
  }
}

}  // namespace tinycnn::kernels::cpu
