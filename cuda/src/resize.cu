// Bilinear resampling (conv.hpp: resize2d_forward / resize2d_backward), the twin of
// kernels/cpu/resize.hpp, and horizontal mirroring (flip_w_*, kernels/cpu/flip.hpp). Each thread computes the taps it needs from the geometry, so no tables go
// to the device; the backward pass is a gather (one thread per input element), without atomics.
#include <cuda_runtime.h>

#include <string>

#include <tinycnn/cuda/conv.hpp>

#include "launch.cuh"

namespace tinycnn::cuda {
namespace {
using namespace detail;

// One axis: `in` source samples resampled to `out`.
struct Axis {
  int64_t in, out;
  double scale, support;  // source samples per output sample; triangle half-width
};
Axis make_axis(int64_t in, int64_t out, bool antialias) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  return {in, out, scale, antialias ? (scale > 1.0 ? scale : 1.0) : 1.0};
}

// The window of output o: samples [lo, hi), their weight sum, or the nearest sample when it is empty.
struct Window {
  int64_t lo, hi, nearest;  // nearest >= 0: degenerate window, weight 1 on that sample
  double center, total;
};
__device__ inline double tri(const Axis& a, double center, int64_t i) {
  const double d = fabs((static_cast<double>(i) + 0.5 - center) / a.support);
  return d < 1.0 ? 1.0 - d : 0.0;
}
__device__ inline Window window(const Axis& a, int64_t o) {
  Window w;
  w.center = (static_cast<double>(o) + 0.5) * a.scale;
  w.lo = static_cast<int64_t>(floor(w.center - a.support));
  w.hi = static_cast<int64_t>(ceil(w.center + a.support));
  if (w.lo < 0) w.lo = 0;
  if (w.hi > a.in) w.hi = a.in;
  w.total = 0;
  for (int64_t i = w.lo; i < w.hi; ++i) w.total += tri(a, w.center, i);
  w.nearest = -1;
  if (w.total <= 0) {
    int64_t n = static_cast<int64_t>(w.center);
    w.nearest = n < 0 ? 0 : (n > a.in - 1 ? a.in - 1 : n);
  }
  return w;
}
__device__ inline double weight(const Axis& a, const Window& w, int64_t i) {
  if (w.nearest >= 0) return i == w.nearest ? 1.0 : 0.0;
  return (i >= w.lo && i < w.hi) ? tri(a, w.center, i) / w.total : 0.0;
}

template <class T>
__global__ void resize_fwd(const T* x, int64_t P, Axis ay, Axis ax, T* y) {
  const int64_t H = ay.in, W = ax.in, OH = ay.out, OW = ax.out;
  TINYCNN_GRID_STRIDE(e, P * OH * OW) {
    const int64_t ox = e % OW, oy = (e / OW) % OH, p = e / (OH * OW);
    const Window wy = window(ay, oy), wx = window(ax, ox);
    const int64_t y0 = wy.nearest >= 0 ? wy.nearest : wy.lo, y1 = wy.nearest >= 0 ? wy.nearest + 1 : wy.hi;
    const int64_t x0 = wx.nearest >= 0 ? wx.nearest : wx.lo, x1 = wx.nearest >= 0 ? wx.nearest + 1 : wx.hi;
    const T* xp = x + p * H * W;
    T acc = T(0);
    for (int64_t j = y0; j < y1; ++j) {
      T row = T(0);
      for (int64_t i = x0; i < x1; ++i) row += static_cast<T>(weight(ax, wx, i)) * xp[j * W + i];
      acc += static_cast<T>(weight(ay, wy, j)) * row;
    }
    y[e] = acc;
  }
}

// The outputs whose window can hold source sample i: a superset, the weights are 0 outside.
__device__ inline void outputs_of(const Axis& a, int64_t i, int64_t& o0, int64_t& o1) {
  o0 = static_cast<int64_t>(floor((static_cast<double>(i) - a.support - 1.0) / a.scale - 0.5));
  o1 = static_cast<int64_t>(ceil((static_cast<double>(i) + a.support + 1.0) / a.scale - 0.5)) + 1;
  if (o0 < 0) o0 = 0;
  if (o1 > a.out) o1 = a.out;
}

template <class T>
__global__ void resize_bwd(const T* dy, int64_t P, Axis ay, Axis ax, T* dx) {
  const int64_t H = ay.in, W = ax.in, OH = ay.out, OW = ax.out;
  TINYCNN_GRID_STRIDE(e, P * H * W) {
    const int64_t w = e % W, h = (e / W) % H, p = e / (H * W);
    int64_t oy0, oy1, ox0, ox1;
    outputs_of(ay, h, oy0, oy1);
    outputs_of(ax, w, ox0, ox1);
    const T* g = dy + p * OH * OW;
    T acc = T(0);
    for (int64_t oy = oy0; oy < oy1; ++oy) {
      const double wyv = weight(ay, window(ay, oy), h);
      if (wyv == 0.0) continue;
      T row = T(0);
      for (int64_t ox = ox0; ox < ox1; ++ox) {
        const double wxv = weight(ax, window(ax, ox), w);
        if (wxv != 0.0) row += static_cast<T>(wxv) * g[oy * OW + ox];
      }
      acc += static_cast<T>(wyv) * row;
    }
    dx[e] += acc;
  }
}

template <class T>
__global__ void flip_fwd(const T* x, int64_t n, int64_t W, T* y) {
  TINYCNN_GRID_STRIDE(e, n) {
    const int64_t w = e % W;
    y[e] = x[e - w + W - 1 - w];
  }
}
template <class T>
__global__ void flip_bwd(const T* dy, int64_t n, int64_t W, T* dx) {
  TINYCNN_GRID_STRIDE(e, n) {
    const int64_t w = e % W;
    dx[e] += dy[e - w + W - 1 - w];
  }
}

void check_resize(const char* kernel, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  require_nonneg(kernel, "P", P);
  if (H <= 0 || W <= 0 || OH <= 0 || OW <= 0)
    throw ValueError(std::string("tinycnn::cuda::") + kernel + ": sizes must be positive (" + std::to_string(H) + "x" +
                     std::to_string(W) + " -> " + std::to_string(OH) + "x" + std::to_string(OW) + ")");
}

}  // namespace

template <class T>
void resize2d_forward(const T* x, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, bool antialias, T* y) {
  check_resize("resize2d_forward", P, H, W, OH, OW);
  const int64_t n = P * OH * OW;
  if (n) launch(kname("resize2d_forward", tname<T>()).c_str(), &resize_fwd<T>, dim3(blocks_for(n)), dim3(kThreads), x, P,
                make_axis(H, OH, antialias), make_axis(W, OW, antialias), y);
}
template <class T>
void resize2d_backward(const T* dy, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, bool antialias, T* dx) {
  check_resize("resize2d_backward", P, H, W, OH, OW);
  const int64_t n = P * H * W;
  if (n) launch(kname("resize2d_backward", tname<T>()).c_str(), &resize_bwd<T>, dim3(blocks_for(n)), dim3(kThreads), dy,
                P, make_axis(H, OH, antialias), make_axis(W, OW, antialias), dx);
}

template <class T>
void flip_w_forward(const T* x, int64_t P, int64_t H, int64_t W, T* y) {
  require_nonneg("flip_w_forward", "P", P);
  require_nonneg("flip_w_forward", "H", H);
  require_nonneg("flip_w_forward", "W", W);
  const int64_t n = P * H * W;
  if (n) launch(kname("flip_w_forward", tname<T>()).c_str(), &flip_fwd<T>, dim3(blocks_for(n)), dim3(kThreads), x, n, W, y);
}
template <class T>
void flip_w_backward(const T* dy, int64_t P, int64_t H, int64_t W, T* dx) {
  require_nonneg("flip_w_backward", "P", P);
  require_nonneg("flip_w_backward", "H", H);
  require_nonneg("flip_w_backward", "W", W);
  const int64_t n = P * H * W;
  if (n) launch(kname("flip_w_backward", tname<T>()).c_str(), &flip_bwd<T>, dim3(blocks_for(n)), dim3(kThreads), dy, n, W, dx);
}

template void flip_w_forward<float>(const float*, int64_t, int64_t, int64_t, float*);
template void flip_w_forward<double>(const double*, int64_t, int64_t, int64_t, double*);
template void flip_w_backward<float>(const float*, int64_t, int64_t, int64_t, float*);
template void flip_w_backward<double>(const double*, int64_t, int64_t, int64_t, double*);
template void resize2d_forward<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, float*);
template void resize2d_forward<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, double*);
template void resize2d_backward<float>(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, float*);
template void resize2d_backward<double>(const double*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, double*);

}  // namespace tinycnn::cuda
