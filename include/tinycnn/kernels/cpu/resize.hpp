#pragma once
// Resampling of the two spatial axes of NCHW planes with a triangle (bilinear) filter, half-pixel
// centres. With antialias, the filter is widened by the scale factor when shrinking (like PIL's
// BILINEAR and tf.image.resize(antialias=True)); without, it is plain 2-tap bilinear
// (tf.image.resize's default). Enlarging is the same either way. The data pipeline's uint8 resize
// (data/resize.hpp) quantises the antialiased taps, so a model that resizes inside itself
// (nn::Resizing with antialias) sees what the pipeline would have given it, up to uint8 rounding.
// Forward writes y; backward ADDS into dx (it is the transpose of the forward's linear map).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"

namespace tinycnn::kernels::cpu {

// The filter taps of one axis: output o reads source samples start[o] .. start[o] + count[o] - 1 with
// weights w[o * max_taps + k] (k < count[o]), which are >= 0 and sum to 1.
struct ResizeTaps {
  std::vector<int64_t> start, count;
  std::vector<double> w;  // [out, max_taps]
  int64_t max_taps = 0;
};

// Taps for resampling the source window [src0, src0 + src_len) of an axis of `in` samples to `out`.
inline ResizeTaps resize_taps(int64_t in, int64_t out, double src0, double src_len, bool antialias = true) {
  ResizeTaps a;
  const double scale = src_len / static_cast<double>(out);           // source samples per output sample
  const double support = antialias ? std::max(1.0, scale) : 1.0;     // triangle half-width in source samples
  a.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  a.start.assign(static_cast<size_t>(out), 0);
  a.count.assign(static_cast<size_t>(out), 0);
  a.w.assign(static_cast<size_t>(out * a.max_taps), 0.0);
  for (int64_t o = 0; o < out; ++o) {
    const double center = src0 + (static_cast<double>(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(std::floor(center - support)), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(std::ceil(center + support)), in);
    double* w = a.w.data() + o * a.max_taps;
    double total = 0;
    int64_t n = 0;
    for (int64_t i = lo; i < hi && n < a.max_taps; ++i) {
      const double d = std::fabs((static_cast<double>(i) + 0.5 - center) / support);
      w[n] = d < 1.0 ? 1.0 - d : 0.0;
      total += w[n++];
    }
    a.start[static_cast<size_t>(o)] = lo;
    if (total <= 0) {  // degenerate window: the nearest sample
      a.start[static_cast<size_t>(o)] = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(center), 0), in - 1);
      a.count[static_cast<size_t>(o)] = 1;
      w[0] = 1.0;
      continue;
    }
    a.count[static_cast<size_t>(o)] = n;
    for (int64_t k = 0; k < n; ++k) w[k] /= total;
  }
  return a;
}

// y[p] = the whole plane x[p] resampled to OH x OW (separable: rows first, then columns).
//   x: [P, H, W] (P = N * C planes), y: [P, OH, OW] (written)
template <class T>
void resize2d_forward(const T* x, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, bool antialias, T* y) {
  const ResizeTaps ax = resize_taps(W, OW, 0.0, static_cast<double>(W), antialias);
  const ResizeTaps ay = resize_taps(H, OH, 0.0, static_cast<double>(H), antialias);
  const bool par = P * OH * OW * (ax.max_taps + ay.max_taps) >= kParallelMinWork;
#pragma omp parallel if (par)
  {
    std::vector<T> tmp(static_cast<size_t>(H * OW));  // the plane, resampled along x only: [H, OW]
#pragma omp for
    for (int64_t p = 0; p < P; ++p) {
      const T* xp = x + p * H * W;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t o = 0; o < OW; ++o) {
          const T* src = xp + h * W + ax.start[static_cast<size_t>(o)];
          const double* w = ax.w.data() + o * ax.max_taps;
          T acc = T(0);
          for (int64_t k = 0; k < ax.count[static_cast<size_t>(o)]; ++k) acc += static_cast<T>(w[k]) * src[k];
          tmp[static_cast<size_t>(h * OW + o)] = acc;
        }
      T* yp = y + p * OH * OW;
      for (int64_t o = 0; o < OH; ++o) {
        T* dst = yp + o * OW;
        for (int64_t j = 0; j < OW; ++j) dst[j] = T(0);
        const double* w = ay.w.data() + o * ay.max_taps;
        for (int64_t k = 0; k < ay.count[static_cast<size_t>(o)]; ++k) {
          const T wk = static_cast<T>(w[k]);
          const T* src = tmp.data() + (ay.start[static_cast<size_t>(o)] + k) * OW;
          for (int64_t j = 0; j < OW; ++j) dst[j] += wk * src[j];
        }
      }
    }
  }
}

// dx += the transpose of resize2d_forward applied to dy.
//   dy: [P, OH, OW], dx: [P, H, W] (+=)
template <class T>
void resize2d_backward(const T* dy, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, bool antialias, T* dx) {
  const ResizeTaps ax = resize_taps(W, OW, 0.0, static_cast<double>(W), antialias);
  const ResizeTaps ay = resize_taps(H, OH, 0.0, static_cast<double>(H), antialias);
  const bool par = P * OH * OW * (ax.max_taps + ay.max_taps) >= kParallelMinWork;
#pragma omp parallel if (par)
  {
    std::vector<T> tmp(static_cast<size_t>(H * OW));  // dy spread back along y: [H, OW]
#pragma omp for
    for (int64_t p = 0; p < P; ++p) {
      std::fill(tmp.begin(), tmp.end(), T(0));
      const T* dyp = dy + p * OH * OW;
      for (int64_t o = 0; o < OH; ++o) {
        const double* w = ay.w.data() + o * ay.max_taps;
        for (int64_t k = 0; k < ay.count[static_cast<size_t>(o)]; ++k) {
          const T wk = static_cast<T>(w[k]);
          T* dst = tmp.data() + (ay.start[static_cast<size_t>(o)] + k) * OW;
          for (int64_t j = 0; j < OW; ++j) dst[j] += wk * dyp[o * OW + j];
        }
      }
      T* dxp = dx + p * H * W;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t o = 0; o < OW; ++o) {
          const T g = tmp[static_cast<size_t>(h * OW + o)];
          T* dst = dxp + h * W + ax.start[static_cast<size_t>(o)];
          const double* w = ax.w.data() + o * ax.max_taps;
          for (int64_t k = 0; k < ax.count[static_cast<size_t>(o)]; ++k) dst[k] += static_cast<T>(w[k]) * g;
        }
    }
  }
}

}  // namespace tinycnn::kernels::cpu
