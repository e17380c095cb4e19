// Pooling, batch normalisation and zero padding (conv.hpp). Backward passes are gathers (one thread
// per input element summing the outputs that read it), so there are no atomics and results do not
// depend on scheduling.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <string>

#include <tinycnn/cuda/conv.hpp>

#include "launch.cuh"

namespace tinycnn::cuda {
namespace {
using namespace detail;

struct PG {  // pooling geometry for device code
  int64_t N, C, H, W, R, S, sh, sw, pt, pl, OH, OW;
};
PG pool_geom(const char* kernel, const Conv2DGeom& g) {
  const std::pair<const char*, int64_t> dims[] = {{"N", g.N}, {"C", g.C}, {"H", g.H}, {"W", g.W}, {"R", g.R},
                                                  {"S", g.S}, {"OH", g.OH}, {"OW", g.OW}, {"pad_top", g.pad_top},
                                                  {"pad_left", g.pad_left}};
  for (const auto& d : dims) require_nonneg(kernel, d.first, d.second);
  if (g.stride_h <= 0 || g.stride_w <= 0)
    throw ValueError(std::string("tinycnn::cuda::") + kernel + ": strides must be positive");
  return {g.N, g.C, g.H, g.W, g.R, g.S, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.OH, g.OW};
}

// Output rows [lo, hi] whose windows contain input row i (window start o*stride - pad, length k).
__device__ inline void covering(int64_t i, int64_t pad, int64_t k, int64_t stride, int64_t out, int64_t& lo,
                                int64_t& hi) {
  const int64_t a = i + pad - k + 1;
  lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  hi = (i + pad) / stride;
  if (hi > out - 1) hi = out - 1;
}

template <class T>
__global__ void max_pool_fwd(const T* x, PG g, T* y, int32_t* argmax) {
  const int64_t L = g.OH * g.OW, total = g.N * g.C * L;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, nc = e / L;
    const T* xc = x + nc * g.H * g.W;
    int64_t best = -1;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t ih = oh * g.sh - g.pt + r;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        const int64_t iw = ow * g.sw - g.pl + s;
        if (iw < 0 || iw >= g.W) continue;
        const int64_t i = ih * g.W + iw;
        if (best < 0 || xc[i] > xc[best]) best = i;  // first maximum in row-major order, as on the CPU
      }
    }
    y[e] = best >= 0 ? xc[best] : T(0);
    argmax[e] = static_cast<int32_t>(best);
  }
}

template <class T>
__global__ void max_pool_bwd(const T* dy, const int32_t* argmax, PG g, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W, total = g.N * g.C * HW;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t iw = e % g.W, ih = (e / g.W) % g.H, nc = e / HW, self = ih * g.W + iw;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.pt, g.R, g.sh, g.OH, oh0, oh1);
    covering(iw, g.pl, g.S, g.sw, g.OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = nc * L + oh * g.OW + ow;
        if (argmax[o] == self) acc += dy[o];
      }
    dx[e] += acc;
  }
}

// Real cells of the window of output (oh, ow), clipped to the plane.
__device__ inline int64_t window_cells(const PG& g, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1, int64_t& w0,
                                       int64_t& w1) {
  h0 = oh * g.sh - g.pt;
  w0 = ow * g.sw - g.pl;
  h1 = h0 + g.R < g.H ? h0 + g.R : g.H;
  w1 = w0 + g.S < g.W ? w0 + g.S : g.W;
  if (h0 < 0) h0 = 0;
  if (w0 < 0) w0 = 0;
  return (h1 > h0 && w1 > w0) ? (h1 - h0) * (w1 - w0) : 0;
}

template <class T>
__global__ void avg_pool_fwd(const T* x, PG g, T* y) {
  const int64_t L = g.OH * g.OW, total = g.N * g.C * L;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, nc = e / L;
    const T* xc = x + nc * g.H * g.W;
    int64_t h0, h1, w0, w1;
    const int64_t cnt = window_cells(g, oh, ow, h0, h1, w0, w1);
    T s = T(0);
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) s += xc[ih * g.W + iw];
    y[e] = cnt ? s / static_cast<T>(cnt) : T(0);
  }
}

template <class T>
__global__ void avg_pool_bwd(const T* dy, PG g, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W, total = g.N * g.C * HW;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t iw = e % g.W, ih = (e / g.W) % g.H, nc = e / HW;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.pt, g.R, g.sh, g.OH, oh0, oh1);
    covering(iw, g.pl, g.S, g.sw, g.OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        int64_t h0, h1, w0, w1;
        const int64_t cnt = window_cells(g, oh, ow, h0, h1, w0, w1);
        if (cnt) acc += dy[nc * L + oh * g.OW + ow] / static_cast<T>(cnt);
      }
    dx[e] += acc;
  }
}

// One warp per (n, c) plane.
template <class T>
__global__ void gap_fwd(const T* x, int64_t NC, int64_t HW, T* y) {
  const int64_t nc = blockIdx.x * int64_t(kThreads / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (nc >= NC) return;
  T s = T(0);
  for (int64_t i = lane; i < HW; i += 32) s += x[nc * HW + i];
  s = warp_sum(s);
  if (lane == 0) y[nc] = HW ? s / static_cast<T>(HW) : T(0);
}
template <class T>
__global__ void gap_bwd(const T* dy, int64_t NC, int64_t HW, T* dx) {
  TINYCNN_GRID_STRIDE(e, NC * HW) dx[e] += dy[e / HW] / static_cast<T>(HW);
}

// ---- batch norm: one block per channel, sums in double ------------------------------------------
template <class T>
__global__ void bn_train(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, T eps,
                         T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean, T* running_var) {
  const int64_t c = blockIdx.x, n = N * HW;
  double s = 0;
  for (int64_t q = threadIdx.x; q < n; q += blockDim.x) s += double(x[((q / HW) * C + c) * HW + q % HW]);
  const double mean = n ? block_sum(s) / double(n) : 0.0;
  double ss = 0;
  for (int64_t q = threadIdx.x; q < n; q += blockDim.x) {
    const double d = double(x[((q / HW) * C + c) * HW + q % HW]) - mean;
    ss += d * d;
  }
  const double var = n ? block_sum(ss) / double(n) : 0.0;
  const double inv_std = 1.0 / sqrt(var + double(eps));
  if (threadIdx.x == 0) {
    save_mean[c] = T(mean);
    save_inv_std[c] = T(inv_std);
    if (running_mean && running_var) {
      const double unbiased = n > 1 ? var * double(n) / double(n - 1) : var, m = double(momentum);
      running_mean[c] = T(m * double(running_mean[c]) + (1 - m) * mean);
      running_var[c] = T(m * double(running_var[c]) + (1 - m) * unbiased);
    }
  }
  const T scale = gamma[c] * T(inv_std), shift = beta[c] - T(mean) * scale;
  for (int64_t q = threadIdx.x; q < n; q += blockDim.x) {
    const int64_t o = ((q / HW) * C + c) * HW + q % HW;
    y[o] = x[o] * scale + shift;
  }
}

template <class T>
__global__ void bn_eval(const T* x, const T* gamma, const T* beta, const T* rm, const T* rv, int64_t C, int64_t HW,
                        T eps, T* y, int64_t total) {
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t c = (e / HW) % C;
    const T inv_std = T(1) / dsqrt(rv[c] + eps);
    const T scale = gamma[c] * inv_std, shift = beta[c] - rm[c] * scale;
    y[e] = x[e] * scale + shift;
  }
}
template <class T>
__global__ void bn_eval_save(const T* rm, const T* rv, int64_t C, T eps, T* save_mean, T* save_inv_std) {
  TINYCNN_GRID_STRIDE(c, C) {
    if (save_mean) save_mean[c] = rm[c];
    if (save_inv_std) save_inv_std[c] = T(1) / dsqrt(rv[c] + eps);
  }
}

template <class T>
__global__ void bn_backward(const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std, int64_t N,
                            int64_t C, int64_t HW, bool batch_stats, T* dx, T* dgamma, T* dbeta) {
  const int64_t c = blockIdx.x, n = N * HW;
  const double mc = double(mean[c]), ic = double(inv_std[c]);
  double sdy = 0, sdyx = 0;
  for (int64_t q = threadIdx.x; q < n; q += blockDim.x) {
    const int64_t o = ((q / HW) * C + c) * HW + q % HW;
    const double d = double(dy[o]);
    sdy += d;
    sdyx += d * (double(x[o]) - mc) * ic;
  }
  sdy = block_sum(sdy);
  sdyx = block_sum(sdyx);
  if (threadIdx.x == 0) {
    if (dbeta) dbeta[c] += T(sdy);
    if (dgamma) dgamma[c] += T(sdyx);
  }
  if (!dx) return;
  const T k = gamma[c] * inv_std[c];
  const T mdy = n ? T(sdy / double(n)) : T(0), mdyx = n ? T(sdyx / double(n)) : T(0);
  for (int64_t q = threadIdx.x; q < n; q += blockDim.x) {
    const int64_t o = ((q / HW) * C + c) * HW + q % HW;
    if (batch_stats) {
      const T xhat = (x[o] - mean[c]) * inv_std[c];
      dx[o] += k * (dy[o] - mdy - xhat * mdyx);
    } else {
      dx[o] += k * dy[o];
    }
  }
}

// ---- batch norm, variant 2: several blocks per channel --------------------------------------------
// One block per channel leaves most SMs idle when C is small and N*HW large (model004: C = 32 over
// 256*74*74 values). Here grid (S, C) blocks each reduce a slice of a channel into partial sums in
// double, a per-channel kernel combines them, and an element-wise kernel applies the result.
// The variance uses sums around a shift (the channel's first value), which avoids the cancellation of
// a plain sum of squares.
template <class T>
__global__ void bn_stats_partial(const T* x, int64_t N, int64_t C, int64_t HW, double* part) {
  const int64_t c = blockIdx.y, S = gridDim.x, s = blockIdx.x, n = N * HW;
  const int64_t q0 = s * n / S, q1 = (s + 1) * n / S;
  const double shift = double(x[c * HW]);
  double a = 0, b = 0;
  for (int64_t q = q0 + threadIdx.x; q < q1; q += blockDim.x) {
    const double d = double(x[((q / HW) * C + c) * HW + q % HW]) - shift;
    a += d;
    b += d * d;
  }
  a = block_sum(a);
  b = block_sum(b);
  if (threadIdx.x == 0) {
    part[(c * S + s) * 2] = a;
    part[(c * S + s) * 2 + 1] = b;
  }
}
template <class T>
__global__ void bn_stats_finalize(const T* x, const double* part, int64_t S, int64_t N, int64_t C, int64_t HW, T eps,
                                  T momentum, T* save_mean, T* save_inv_std, T* running_mean, T* running_var) {
  TINYCNN_GRID_STRIDE(c, C) {
    const int64_t n = N * HW;
    double a = 0, b = 0;
    for (int64_t s = 0; s < S; ++s) {
      a += part[(c * S + s) * 2];
      b += part[(c * S + s) * 2 + 1];
    }
    const double m = a / double(n), mean = double(x[c * HW]) + m;
    double var = b / double(n) - m * m;
    var = var > 0 ? var : 0.0;
    save_mean[c] = T(mean);
    save_inv_std[c] = T(1.0 / sqrt(var + double(eps)));
    if (running_mean && running_var) {
      const double unbiased = n > 1 ? var * double(n) / double(n - 1) : var, mo = double(momentum);
      running_mean[c] = T(mo * double(running_mean[c]) + (1 - mo) * mean);
      running_var[c] = T(mo * double(running_var[c]) + (1 - mo) * unbiased);
    }
  }
}
template <class T>
__global__ void bn_apply(const T* x, const T* gamma, const T* beta, const T* mean, const T* inv_std, int64_t C,
                         int64_t HW, T* y, int64_t total) {
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t c = (e / HW) % C;
    const T scale = gamma[c] * inv_std[c], shift = beta[c] - mean[c] * scale;
    y[e] = x[e] * scale + shift;
  }
}
template <class T>
__global__ void bn_grad_partial(const T* x, const T* dy, const T* mean, const T* inv_std, int64_t N, int64_t C,
                                int64_t HW, double* part) {
  const int64_t c = blockIdx.y, S = gridDim.x, s = blockIdx.x, n = N * HW;
  const int64_t q0 = s * n / S, q1 = (s + 1) * n / S;
  const double mc = double(mean[c]), ic = double(inv_std[c]);
  double a = 0, b = 0;
  for (int64_t q = q0 + threadIdx.x; q < q1; q += blockDim.x) {
    const int64_t o = ((q / HW) * C + c) * HW + q % HW;
    const double d = double(dy[o]);
    a += d;
    b += d * (double(x[o]) - mc) * ic;
  }
  a = block_sum(a);
  b = block_sum(b);
  if (threadIdx.x == 0) {
    part[(c * S + s) * 2] = a;
    part[(c * S + s) * 2 + 1] = b;
  }
}
// Per channel: dbeta/dgamma += the sums; coef[c] = (mean dy, mean dy*xhat) for the dx kernel.
template <class T>
__global__ void bn_grad_finalize(const double* part, int64_t S, int64_t n, int64_t C, T* dgamma, T* dbeta, T* coef) {
  TINYCNN_GRID_STRIDE(c, C) {
    double a = 0, b = 0;
    for (int64_t s = 0; s < S; ++s) {
      a += part[(c * S + s) * 2];
      b += part[(c * S + s) * 2 + 1];
    }
    if (dbeta) dbeta[c] += T(a);
    if (dgamma) dgamma[c] += T(b);
    coef[2 * c] = n ? T(a / double(n)) : T(0);
    coef[2 * c + 1] = n ? T(b / double(n)) : T(0);
  }
}
template <class T>
__global__ void bn_dx(const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std, const T* coef,
                      int64_t C, int64_t HW, bool batch_stats, T* dx, int64_t total) {
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t c = (e / HW) % C;
    const T k = gamma[c] * inv_std[c];
    if (batch_stats) {
      const T xhat = (x[e] - mean[c]) * inv_std[c];
      dx[e] += k * (dy[e] - coef[2 * c] - xhat * coef[2 * c + 1]);
    } else {
      dx[e] += k * dy[e];
    }
  }
}

// Slices per channel for variant 2: enough blocks for about four per SM, each slice at least 4096 values.
int64_t bn_slices(int64_t N, int64_t C, int64_t HW) {
  const int64_t n = N * HW, want = (4 * int64_t(multiprocessor_count()) + C - 1) / std::max<int64_t>(C, 1);
  return std::max<int64_t>(1, std::min<int64_t>({want, (n + 4095) / 4096, 65535}));
}

std::atomic<int>& bn_default() {
  static std::atomic<int> v{0};  // 0 = by size
  return v;
}
// Variant 2 pays off only when a channel has many values (threshold to be tuned on the GPU).
int bn_pick(int64_t N, int64_t HW) {
  const int v = bn_default().load();
  return v ? v : (N * HW >= 32768 ? 2 : 1);
}
void check_bn_variant(int v, const char* fn) {
  if (v != 1 && v != 2)
    throw ValueError(std::string("tinycnn::cuda::") + fn + ": batch-norm variant " + std::to_string(v) +
                     " does not exist (1 = one block per channel, 2 = split channels)");
}

template <class T>
__global__ void pad_fwd(const T* x, int64_t NC, int64_t H, int64_t W, int64_t top, int64_t left, int64_t OH,
                        int64_t OW, T* y) {
  TINYCNN_GRID_STRIDE(e, NC * OH * OW) {
    const int64_t ow = e % OW, oh = (e / OW) % OH, nc = e / (OH * OW), h = oh - top, w = ow - left;
    y[e] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(nc * H + h) * W + w] : T(0);
  }
}
template <class T>
__global__ void pad_bwd(const T* dy, int64_t NC, int64_t H, int64_t W, int64_t top, int64_t left, int64_t OH,
                        int64_t OW, T* dx) {
  TINYCNN_GRID_STRIDE(e, NC * H * W) {
    const int64_t w = e % W, h = (e / W) % H, nc = e / (H * W);
    dx[e] += dy[(nc * OH + h + top) * OW + w + left];
  }
}

void check_bn(const char* kernel, int64_t N, int64_t C, int64_t HW) {
  require_nonneg(kernel, "N", N);
  require_nonneg(kernel, "C", C);
  require_nonneg(kernel, "HW", HW);
}
void check_pad(const char* kernel, int64_t N, int64_t C, int64_t H, int64_t W, int64_t top, int64_t bottom,
               int64_t left, int64_t right) {
  const std::pair<const char*, int64_t> a[] = {{"N", N},     {"C", C},         {"H", H},       {"W", W},
                                               {"top", top}, {"bottom", bottom}, {"left", left}, {"right", right}};
  for (const auto& d : a) require_nonneg(kernel, d.first, d.second);
}

}  // namespace

void set_default_batchnorm_variant(int variant) {
  if (variant != 0) check_bn_variant(variant, "set_default_batchnorm_variant");
  bn_default().store(variant);
}

template <class T>
void max_pool2d_forward(const T* x, const Conv2DGeom& g, T* y, int32_t* argmax) {
  const PG p = pool_geom("max_pool2d_forward", g);
  const int64_t n = g.N * g.C * g.OH * g.OW;
  if (n) launch(kname("max_pool2d_forward", tname<T>()).c_str(), &max_pool_fwd<T>, dim3(blocks_for(n)), dim3(kThreads), x, p, y, argmax);
}
template <class T>
void max_pool2d_backward(const T* dy, const int32_t* argmax, const Conv2DGeom& g, T* dx) {
  const PG p = pool_geom("max_pool2d_backward", g);
  const int64_t n = g.N * g.C * g.H * g.W;
  if (n) launch(kname("max_pool2d_backward", tname<T>()).c_str(), &max_pool_bwd<T>, dim3(blocks_for(n)), dim3(kThreads), dy, argmax, p, dx);
}
template <class T>
void avg_pool2d_forward(const T* x, const Conv2DGeom& g, T* y) {
  const PG p = pool_geom("avg_pool2d_forward", g);
  const int64_t n = g.N * g.C * g.OH * g.OW;
  if (n) launch(kname("avg_pool2d_forward", tname<T>()).c_str(), &avg_pool_fwd<T>, dim3(blocks_for(n)), dim3(kThreads), x, p, y);
}
template <class T>
void avg_pool2d_backward(const T* dy, const Conv2DGeom& g, T* dx) {
  const PG p = pool_geom("avg_pool2d_backward", g);
  const int64_t n = g.N * g.C * g.H * g.W;
  if (n) launch(kname("avg_pool2d_backward", tname<T>()).c_str(), &avg_pool_bwd<T>, dim3(blocks_for(n)), dim3(kThreads), dy, p, dx);
}
template <class T>
void global_avg_pool2d_forward(const T* x, int64_t N, int64_t C, int64_t HW, T* y) {
  check_bn("global_avg_pool2d_forward", N, C, HW);
  const int64_t NC = N * C, per = kThreads / 32;
  if (NC) launch(kname("global_avg_pool2d_forward", tname<T>()).c_str(), &gap_fwd<T>, dim3(unsigned((NC + per - 1) / per)), dim3(kThreads), x, NC, HW, y);
}
template <class T>
void global_avg_pool2d_backward(const T* dy, int64_t N, int64_t C, int64_t HW, T* dx) {
  check_bn("global_avg_pool2d_backward", N, C, HW);
  if (N * C * HW) launch(kname("global_avg_pool2d_backward", tname<T>()).c_str(), &gap_bwd<T>, dim3(blocks_for(N * C * HW)), dim3(kThreads), dy, N * C, HW, dx);
}

template <class T>
void batchnorm_forward_train_variant(int variant, const T* x, const T* gamma, const T* beta, int64_t N, int64_t C,
                                     int64_t HW, T eps, T momentum, T* y, T* save_mean, T* save_inv_std,
                                     T* running_mean, T* running_var) {
  check_bn_variant(variant, "batchnorm_forward_train");
  check_bn("batchnorm_forward_train", N, C, HW);
  if (C == 0) return;
  if (variant == 1 || N * HW == 0) {
    launch(kname("batchnorm_forward_train", tname<T>()).c_str(), &bn_train<T>, dim3(unsigned(C)), dim3(kThreads), x,
           gamma, beta, N, C, HW, eps, momentum, y, save_mean, save_inv_std, running_mean, running_var);
    return;
  }
  const int64_t S = bn_slices(N, C, HW), total = N * C * HW;
  double* part = static_cast<double*>(device_alloc(static_cast<size_t>(2 * C * S) * sizeof(double)));
  try {
    launch(kname("batchnorm_stats_partial", tname<T>()).c_str(), &bn_stats_partial<T>, dim3(unsigned(S), unsigned(C)),
           dim3(kThreads), x, N, C, HW, part);
    launch(kname("batchnorm_stats_finalize", tname<T>()).c_str(), &bn_stats_finalize<T>, dim3(blocks_for(C)),
           dim3(kThreads), x, static_cast<const double*>(part), S, N, C, HW, eps, momentum, save_mean, save_inv_std,
           running_mean, running_var);
    launch(kname("batchnorm_apply", tname<T>()).c_str(), &bn_apply<T>, dim3(blocks_for(total)), dim3(kThreads), x,
           gamma, beta, static_cast<const T*>(save_mean), static_cast<const T*>(save_inv_std), C, HW, y, total);
  } catch (...) {
    device_free(part);
    throw;
  }
  device_free(part);
}
template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, T eps,
                             T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean, T* running_var) {
  batchnorm_forward_train_variant<T>(bn_pick(N, HW), x, gamma, beta, N, C, HW, eps, momentum, y, save_mean,
                                     save_inv_std, running_mean, running_var);
}
template <class T>
void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                            int64_t N, int64_t C, int64_t HW, T eps, T* y, T* save_mean, T* save_inv_std) {
  check_bn("batchnorm_forward_eval", N, C, HW);
  if (C == 0) return;
  const int64_t total = N * C * HW;
  if (total)
    launch(kname("batchnorm_forward_eval", tname<T>()).c_str(), &bn_eval<T>, dim3(blocks_for(total)), dim3(kThreads), x, gamma,
           beta, running_mean, running_var, C, HW, eps, y, total);
  if (save_mean || save_inv_std)
    launch(kname("batchnorm_eval_save", tname<T>()).c_str(), &bn_eval_save<T>, dim3(blocks_for(C)), dim3(kThreads),
           running_mean, running_var, C, eps, save_mean, save_inv_std);
}
template <class T>
void batchnorm_backward_variant(int variant, const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std,
                                int64_t N, int64_t C, int64_t HW, bool batch_stats, T* dx, T* dgamma, T* dbeta) {
  check_bn_variant(variant, "batchnorm_backward");
  check_bn("batchnorm_backward", N, C, HW);
  if (C == 0 || (!dx && !dgamma && !dbeta)) return;
  if (variant == 1 || N * HW == 0) {
    launch(kname("batchnorm_backward", tname<T>()).c_str(), &bn_backward<T>, dim3(unsigned(C)), dim3(kThreads), x,
           dy, gamma, mean, inv_std, N, C, HW, batch_stats, dx, dgamma, dbeta);
    return;
  }
  const int64_t S = bn_slices(N, C, HW), total = N * C * HW;
  // One allocation: the partial sums (double) and then the per-channel coefficients (T).
  const size_t part_bytes = static_cast<size_t>(2 * C * S) * sizeof(double);
  char* ws = static_cast<char*>(device_alloc(part_bytes + static_cast<size_t>(2 * C) * sizeof(T)));
  double* part = reinterpret_cast<double*>(ws);
  T* coef = reinterpret_cast<T*>(ws + part_bytes);
  try {
    launch(kname("batchnorm_grad_partial", tname<T>()).c_str(), &bn_grad_partial<T>, dim3(unsigned(S), unsigned(C)),
           dim3(kThreads), x, dy, mean, inv_std, N, C, HW, part);
    launch(kname("batchnorm_grad_finalize", tname<T>()).c_str(), &bn_grad_finalize<T>, dim3(blocks_for(C)),
           dim3(kThreads), static_cast<const double*>(part), S, N * HW, C, dgamma, dbeta, coef);
    if (dx)
      launch(kname("batchnorm_dx", tname<T>()).c_str(), &bn_dx<T>, dim3(blocks_for(total)), dim3(kThreads), x, dy,
             gamma, mean, inv_std, static_cast<const T*>(coef), C, HW, batch_stats, dx, total);
  } catch (...) {
    device_free(ws);
    throw;
  }
  device_free(ws);
}
template <class T>
void batchnorm_backward(const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std, int64_t N, int64_t C,
                        int64_t HW, bool batch_stats, T* dx, T* dgamma, T* dbeta) {
  batchnorm_backward_variant<T>(bn_pick(N, HW), x, dy, gamma, mean, inv_std, N, C, HW, batch_stats, dx, dgamma, dbeta);
}

template <class T>
void zero_pad2d_forward(const T* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t top, int64_t bottom,
                        int64_t left, int64_t right, T* y) {
  check_pad("zero_pad2d_forward", N, C, H, W, top, bottom, left, right);
  const int64_t OH = H + top + bottom, OW = W + left + right, n = N * C * OH * OW;
  if (n) launch(kname("zero_pad2d_forward", tname<T>()).c_str(), &pad_fwd<T>, dim3(blocks_for(n)), dim3(kThreads), x, N * C, H, W, top, left, OH, OW, y);
}
template <class T>
void zero_pad2d_backward(const T* dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t top, int64_t bottom,
                         int64_t left, int64_t right, T* dx) {
  check_pad("zero_pad2d_backward", N, C, H, W, top, bottom, left, right);
  const int64_t OH = H + top + bottom, OW = W + left + right, n = N * C * H * W;
  if (n) launch(kname("zero_pad2d_backward", tname<T>()).c_str(), &pad_bwd<T>, dim3(blocks_for(n)), dim3(kThreads), dy, N * C, H, W, top, left, OH, OW, dx);
}

#define TINYCNN_INSTANTIATE(T)                                                                                     \
  template void max_pool2d_forward<T>(const T*, const Conv2DGeom&, T*, int32_t*);                                  \
  template void max_pool2d_backward<T>(const T*, const int32_t*, const Conv2DGeom&, T*);                           \
  template void avg_pool2d_forward<T>(const T*, const Conv2DGeom&, T*);                                            \
  template void avg_pool2d_backward<T>(const T*, const Conv2DGeom&, T*);                                           \
  template void global_avg_pool2d_forward<T>(const T*, int64_t, int64_t, int64_t, T*);                             \
  template void global_avg_pool2d_backward<T>(const T*, int64_t, int64_t, int64_t, T*);                            \
  template void batchnorm_forward_train<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, T, T, T*, T*, \
                                           T*, T*, T*);                                                            \
  template void batchnorm_forward_eval<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,      \
                                          int64_t, T, T*, T*, T*);                                                 \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                      bool, T*, T*, T*);                                                           \
  template void batchnorm_forward_train_variant<T>(int, const T*, const T*, const T*, int64_t, int64_t, int64_t, T, \
                                                   T, T*, T*, T*, T*, T*);                                         \
  template void batchnorm_backward_variant<T>(int, const T*, const T*, const T*, const T*, const T*, int64_t,      \
                                              int64_t, int64_t, bool, T*, T*, T*);                                 \
  template void zero_pad2d_forward<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,     \
                                      int64_t, T*);                                                                \
  template void zero_pad2d_backward<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                       int64_t, T*);
TINYCNN_INSTANTIATE(float)
TINYCNN_INSTANTIATE(double)
#undef TINYCNN_INSTANTIATE

}  // namespace tinycnn::cuda
