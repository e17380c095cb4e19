// Convolutions (conv.hpp): variant 0 = direct loops (the GPU reference), variants 1..5 = im2col +
// strided-batched GEMM of that variant over chunks of samples; depthwise convolution (direct).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include <tinycnn/cuda/conv.hpp>
#include <tinycnn/cuda/gemm.hpp>
#include <tinycnn/cuda/ops.hpp>

#include "gemm_tiles.cuh"

namespace tinycnn::cuda {
namespace {
using namespace detail;

// The geometry as plain ints for device code (Conv2DGeom is a host struct with the same fields).
struct G {
  int64_t N, C, H, W, K, R, S, sh, sw, pt, pl, OH, OW;
};
G dev_geom(const Conv2DGeom& g) {
  return {g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.OH, g.OW};
}

void check_geom(const char* kernel, const Conv2DGeom& g) {
  const std::pair<const char*, int64_t> dims[] = {{"N", g.N},   {"C", g.C},   {"H", g.H},   {"W", g.W},
                                                  {"K", g.K},   {"R", g.R},   {"S", g.S},   {"OH", g.OH},
                                                  {"OW", g.OW}, {"pad_top", g.pad_top}, {"pad_left", g.pad_left}};
  for (const auto& d : dims) require_nonneg(kernel, d.first, d.second);
  if (g.stride_h <= 0 || g.stride_w <= 0)
    throw ValueError(std::string("tinycnn::cuda::") + kernel + ": strides " + std::to_string(g.stride_h) + "x" +
                     std::to_string(g.stride_w) + " must be positive");
}

// Accumulator type of the reference kernels: double, so they are the most accurate variant.
using Acc = double;

// ---- im2col / col2im ---------------------------------------------------------------------------
// col[j, (c*R + r)*S + s, oh*OW + ow] = x[n0 + j, c, oh*sh - pt + r, ow*sw - pl + s] (0 in the padding)
template <class T>
__global__ void im2col_kernel(const T* x, G g, int64_t n0, int64_t nb, T* col) {
  const int64_t L = g.OH * g.OW, CRS = g.C * g.R * g.S, total = nb * CRS * L;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t l = e % L, crs = (e / L) % CRS, j = e / (L * CRS);
    const int64_t s = crs % g.S, r = (crs / g.S) % g.R, c = crs / (g.R * g.S);
    const int64_t ih = (l / g.OW) * g.sh - g.pt + r, iw = (l % g.OW) * g.sw - g.pl + s;
    col[e] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[(((n0 + j) * g.C + c) * g.H + ih) * g.W + iw] : T(0);
  }
}

// dx[n0 + j, c, ih, iw] += sum of the column entries that im2col copied from that pixel. A gather (one
// thread per dx element), so there are no atomics and the sum order is fixed.
template <class T>
__global__ void col2im_add_kernel(const T* col, G g, int64_t n0, int64_t nb, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W, total = nb * g.C * HW;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t iw = e % g.W, ih = (e / g.W) % g.H, c = (e / HW) % g.C, j = e / (g.C * HW);
    T acc = T(0);
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t th = ih + g.pt - r;
      if (th < 0 || th % g.sh) continue;
      const int64_t oh = th / g.sh;
      if (oh >= g.OH) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        const int64_t tw = iw + g.pl - s;
        if (tw < 0 || tw % g.sw) continue;
        const int64_t ow = tw / g.sw;
        if (ow >= g.OW) continue;
        acc += col[(j * g.C * g.R * g.S + (c * g.R + r) * g.S + s) * L + oh * g.OW + ow];
      }
    }
    dx[(n0 + j) * g.C * HW + c * HW + ih * g.W + iw] += acc;
  }
}

// ---- variant 0: direct -------------------------------------------------------------------------
template <class T>
__global__ void conv_direct_forward(const T* x, const T* w, const T* b, G g, T* y) {
  const int64_t L = g.OH * g.OW, total = g.N * g.K * L;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, k = (e / L) % g.K, n = e / (g.K * L);
    Acc acc = b ? Acc(b[k]) : Acc(0);
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t r = 0; r < g.R; ++r) {
        const int64_t ih = oh * g.sh - g.pt + r;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t s = 0; s < g.S; ++s) {
          const int64_t iw = ow * g.sw - g.pl + s;
          if (iw < 0 || iw >= g.W) continue;
          acc += Acc(w[((k * g.C + c) * g.R + r) * g.S + s]) * Acc(x[((n * g.C + c) * g.H + ih) * g.W + iw]);
        }
      }
    y[e] = T(acc);
  }
}

template <class T>
__global__ void conv_direct_backward_data(const T* dy, const T* w, G g, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W, total = g.N * g.C * HW;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t iw = e % g.W, ih = (e / g.W) % g.H, c = (e / HW) % g.C, n = e / (g.C * HW);
    Acc acc = 0;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t th = ih + g.pt - r;
      if (th < 0 || th % g.sh || th / g.sh >= g.OH) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        const int64_t tw = iw + g.pl - s;
        if (tw < 0 || tw % g.sw || tw / g.sw >= g.OW) continue;
        const int64_t l = (th / g.sh) * g.OW + tw / g.sw;
        for (int64_t k = 0; k < g.K; ++k)
          acc += Acc(dy[(n * g.K + k) * L + l]) * Acc(w[((k * g.C + c) * g.R + r) * g.S + s]);
      }
    }
    dx[e] += T(acc);
  }
}

// One block per weight element (k, c, r, s) reducing over n, oh, ow; with db, blocks K*C*R*S .. +K
// reduce dy per output channel.
template <class T>
__global__ void conv_direct_backward_filter(const T* x, const T* dy, G g, T* dw, T* db) {
  const int64_t L = g.OH * g.OW, CRS = g.C * g.R * g.S, e = blockIdx.x;
  Acc acc = 0;
  if (e < g.K * CRS) {
    if (!dw) return;
    const int64_t s = e % g.S, r = (e / g.S) % g.R, c = (e / (g.R * g.S)) % g.C, k = e / CRS;
    for (int64_t q = threadIdx.x; q < g.N * L; q += blockDim.x) {
      const int64_t n = q / L, l = q % L;
      const int64_t ih = (l / g.OW) * g.sh - g.pt + r, iw = (l % g.OW) * g.sw - g.pl + s;
      if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
        acc += Acc(dy[(n * g.K + k) * L + l]) * Acc(x[((n * g.C + c) * g.H + ih) * g.W + iw]);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) dw[e] += T(acc);
  } else {
    const int64_t k = e - g.K * CRS;
    for (int64_t q = threadIdx.x; q < g.N * L; q += blockDim.x) acc += Acc(dy[((q / L) * g.K + k) * L + q % L]);
    acc = block_sum(acc);
    if (threadIdx.x == 0) db[k] += T(acc);
  }
}

// db[k] += sum over n, l of dy[n, k, l]: one block per channel.
template <class T>
__global__ void conv_bias_grad(const T* dy, G g, T* db) {
  const int64_t L = g.OH * g.OW, k = blockIdx.x;
  Acc acc = 0;
  for (int64_t q = threadIdx.x; q < g.N * L; q += blockDim.x) acc += Acc(dy[((q / L) * g.K + k) * L + q % L]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) db[k] += T(acc);
}

// ---- variant 6: implicit GEMM ----------------------------------------------------------------------
// op(B) of the forward / weight-gradient GEMMs is the im2col matrix of one sample; instead of writing
// it to memory, variant 3's tile kernel computes each element from x while it loads a B tile.
template <class T>
struct Im2colB {
  static constexpr bool kDense = false;
  G g;
  // im2col[crs, l] of the sample whose image starts at x
  __device__ T operator()(const T* x, int64_t crs, int64_t l) const {
    const int64_t s = crs % g.S, r = (crs / g.S) % g.R, c = crs / (g.R * g.S);
    const int64_t ih = (l / g.OW) * g.sh - g.pt + r, iw = (l % g.OW) * g.sw - g.pl + s;
    return (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[(c * g.H + ih) * g.W + iw] : T(0);
  }
};

template <class T>
void implicit_gemm(const GemmArgs<T>& p, const G& dg) {
  const Im2colB<T> src{dg};
  drive_gemm(p, 128, 128, [&](const GemmArgs<T>& q, dim3 grid) {
    launch(kname("conv_implicit_gemm", tname<T>()).c_str(), &gemm_regblock<T, Im2colB<T>>, grid, dim3(256), q, src);
  });
}

// y[n] [K, L] = W [K, CRS] * im2col(x[n]) [CRS, L] + bias, all samples in one launch.
template <class T>
void forward_implicit(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW;
  GemmEpilogue<T> ep;
  ep.bias = b;
  const GemmArgs<T> p{false, false, g.K, L, CRS, CRS, L, L, T(1), T(0), w, x, y, ep,
                      g.N, 0, g.C * g.H * g.W, g.K * L, false};
  implicit_gemm(p, dev_geom(g));
}

// dw [K, CRS] += sum_n dy[n] [K, L] * im2col(x[n])^T [L, CRS]: a batch reduction (split between blocks).
template <class T>
void backward_filter_implicit(const T* x, const T* dy, const Conv2DGeom& g, T* dw) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW;
  const GemmArgs<T> p{false, true, g.K, CRS, L, L, L, CRS, T(1), T(1), dy, x, dw, GemmEpilogue<T>{},
                      g.N, g.K * L, g.C * g.H * g.W, 0, true};
  implicit_gemm(p, dev_geom(g));
}

// db[k] += sum over n, l of dy[n, k, l] for the GEMM variants: with few channels (model3's conv1: 32)
// and many values per channel (256 * 22500), one block per channel would leave most SMs idle, so each
// channel is split over S blocks (partial sums in double) and a second kernel adds the parts.
template <class T>
__global__ void conv_bias_partial(const T* dy, G g, double* part) {
  const int64_t L = g.OH * g.OW, k = blockIdx.y, S = gridDim.x, s = blockIdx.x, n = g.N * L;
  const int64_t q0 = s * n / S, q1 = (s + 1) * n / S;
  Acc acc = 0;
  for (int64_t q = q0 + threadIdx.x; q < q1; q += blockDim.x) acc += Acc(dy[((q / L) * g.K + k) * L + q % L]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) part[k * S + s] = acc;
}
template <class T>
__global__ void conv_bias_finalize(const double* part, int64_t S, int64_t K, T* db) {
  TINYCNN_GRID_STRIDE(k, K) {
    double a = 0;
    for (int64_t s = 0; s < S; ++s) a += part[k * S + s];
    db[k] += T(a);
  }
}
template <class T>
void bias_grad(const T* dy, const Conv2DGeom& g, T* db) {
  const int64_t n = g.N * g.OH * g.OW;
  const int64_t S = std::max<int64_t>(
      1, std::min<int64_t>({(4 * int64_t(multiprocessor_count()) + g.K - 1) / std::max<int64_t>(g.K, 1),
                            (n + 8191) / 8192, 65535}));
  if (S == 1) {
    launch(kname("conv_bias_grad", tname<T>()).c_str(), &conv_bias_grad<T>, dim3(unsigned(g.K)), dim3(kThreads), dy,
           dev_geom(g), db);
    return;
  }
  double* part = static_cast<double*>(device_alloc(static_cast<size_t>(g.K * S) * sizeof(double)));
  try {
    launch(kname("conv_bias_partial", tname<T>()).c_str(), &conv_bias_partial<T>, dim3(unsigned(S), unsigned(g.K)),
           dim3(kThreads), dy, dev_geom(g), part);
    launch(kname("conv_bias_finalize", tname<T>()).c_str(), &conv_bias_finalize<T>, dim3(blocks_for(g.K)),
           dim3(kThreads), static_cast<const double*>(part), S, g.K, db);
  } catch (...) {
    device_free(part);
    throw;
  }
  device_free(part);
}

// ---- variants 1..5: im2col + GEMM ----------------------------------------------------------------
std::atomic<int>& conv_default() {
  static std::atomic<int> v{[] {  // TINYCNN_CUDA_CONV_VARIANT=0..6 fixes it (benchmarks); else follow GEMM
    const char* e = std::getenv("TINYCNN_CUDA_CONV_VARIANT");
    const int n = e && *e ? std::atoi(e) : -1;
    return n >= 0 && n <= kConvVariants ? n : -1;
  }()};
  return v;
}
std::atomic<size_t>& workspace_limit() {
  static std::atomic<size_t> v{[] {
    const char* e = std::getenv("TINYCNN_CUDA_WORKSPACE_MB");
    const long long mb = e ? std::atoll(e) : 0;
    return mb > 0 ? static_cast<size_t>(mb) << 20 : size_t(512) << 20;
  }()};
  return v;
}

void check_conv_variant(int v, const char* fn) {
  if (v < 0 || v > kConvVariants)
    throw ValueError(std::string("tinycnn::cuda::") + fn + ": convolution variant " + std::to_string(v) +
                     " does not exist (0 = direct, 1.." + std::to_string(kGemmVariants) +
                     " = im2col + GEMM variant, " + std::to_string(kConvVariants) + " = implicit GEMM)");
}

bool pointwise(const Conv2DGeom& g) {
  return g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.OH == g.H && g.OW == g.W;
}

// Samples per chunk so that `per_sample` elements of workspace per sample fit the limit.
template <class T>
int64_t chunk_samples(const Conv2DGeom& g, int64_t per_sample) {
  const int64_t cap = static_cast<int64_t>(workspace_limit().load() / sizeof(T));
  return std::max<int64_t>(1, std::min<int64_t>(g.N, per_sample > 0 ? cap / per_sample : g.N));
}

// RAII workspace from the caching allocator (freed in stream order).
template <class T>
struct Workspace {
  T* p = nullptr;
  explicit Workspace(int64_t n) { p = n > 0 ? static_cast<T*>(device_alloc(static_cast<size_t>(n) * sizeof(T))) : nullptr; }
  ~Workspace() { device_free(p); }
};

template <class T>
void im2col(const T* x, const G& dg, int64_t n0, int64_t nb, int64_t CRS, int64_t L, T* col) {
  launch(kname("im2col", tname<T>()).c_str(), &im2col_kernel<T>, dim3(blocks_for(nb * CRS * L)), dim3(kThreads), x,
         dg, n0, nb, col);
}

template <class T>
void forward_gemm(int v, const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  const G dg = dev_geom(g);
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W;
  GemmEpilogue<T> ep;
  ep.bias = b;
  if (pointwise(g)) {  // the image [C, HW] is already the column matrix
    gemm_variant<T>(v, false, false, g.K, L, CRS, T(1), w, CRS, x, L, T(0), y, L, ep, {g.N, 0, g.C * HW, g.K * L, false});
    return;
  }
  const int64_t nb_max = chunk_samples<T>(g, CRS * L);
  Workspace<T> col(nb_max * CRS * L);
  for (int64_t n0 = 0; n0 < g.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, g.N - n0);
    im2col(x, dg, n0, nb, CRS, L, col.p);
    // y[n] [K, L] = W [K, CRS] * col[n] [CRS, L] (+ bias per row), for the nb samples at once
    gemm_variant<T>(v, false, false, g.K, L, CRS, T(1), w, CRS, col.p, L, T(0), y + n0 * g.K * L, L, ep,
                    {nb, 0, CRS * L, g.K * L, false});
  }
}

template <class T>
void backward_data_gemm(int v, const T* dy, const T* w, const Conv2DGeom& g, T* dx) {
  const G dg = dev_geom(g);
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W;
  if (pointwise(g)) {  // dx[n] [C, HW] += W^T [C, K] * dy[n] [K, HW]
    gemm_variant<T>(v, true, false, g.C, L, g.K, T(1), w, CRS, dy, L, T(1), dx, L, {}, {g.N, 0, g.K * L, g.C * HW, false});
    return;
  }
  const int64_t nb_max = chunk_samples<T>(g, CRS * L);
  Workspace<T> dcol(nb_max * CRS * L);
  for (int64_t n0 = 0; n0 < g.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, g.N - n0);
    // dcol[n] [CRS, L] = W^T [CRS, K] * dy[n] [K, L]
    gemm_variant<T>(v, true, false, CRS, L, g.K, T(1), w, CRS, dy + n0 * g.K * L, L, T(0), dcol.p, L, {},
                    {nb, 0, g.K * L, CRS * L, false});
    launch(kname("col2im_add", tname<T>()).c_str(), &col2im_add_kernel<T>, dim3(blocks_for(nb * g.C * HW)),
           dim3(kThreads), static_cast<const T*>(dcol.p), dg, n0, nb, dx);
  }
}

template <class T>
void backward_filter_gemm(int v, const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  const G dg = dev_geom(g);
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W;
  if (db) bias_grad(dy, g, db);
  if (!dw) return;
  // dw [K, CRS] += sum_n dy[n] [K, L] * col[n]^T [L, CRS]: a GEMM reduction over the chunk's samples
  if (pointwise(g)) {
    gemm_variant<T>(v, false, true, g.K, CRS, L, T(1), dy, L, x, L, T(1), dw, CRS, {}, {g.N, g.K * L, g.C * HW, 0, true});
    return;
  }
  const int64_t nb_max = chunk_samples<T>(g, CRS * L);
  Workspace<T> col(nb_max * CRS * L);
  for (int64_t n0 = 0; n0 < g.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, g.N - n0);
    im2col(x, dg, n0, nb, CRS, L, col.p);
    gemm_variant<T>(v, false, true, g.K, CRS, L, T(1), dy + n0 * g.K * L, L, col.p, L, T(1), dw, CRS, {},
                    {nb, g.K * L, CRS * L, 0, true});
  }
}

int resolve(int variant, bool is_double) {
  // Tensor-core variants are float only; a double convolution falls back to the fp32-exact GEMM.
  return is_double && variant > 3 ? 3 : variant;
}

}  // namespace

int default_conv_variant() {
  const int v = conv_default().load();
  return v >= 0 ? v : default_gemm_variant();
}
void set_default_conv_variant(int variant) {
  if (variant != -1) check_conv_variant(variant, "set_default_conv_variant");
  conv_default().store(variant);
}
void set_conv_workspace_limit(size_t bytes) { workspace_limit().store(bytes); }

template <class T>
void conv2d_forward_variant(int variant, const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  check_conv_variant(variant, "conv2d_forward");
  check_geom("conv2d_forward", g);
  if (g.N == 0 || g.K == 0 || g.OH * g.OW == 0) return;
  variant = resolve(variant, sizeof(T) == 8);
  if (variant == 0) {
    launch(kname("conv_direct_forward", tname<T>()).c_str(), &conv_direct_forward<T>,
           dim3(blocks_for(g.N * g.K * g.OH * g.OW)), dim3(kThreads), x, w, b, dev_geom(g), y);
    return;
  }
  if (variant == kConvVariants)
    forward_implicit<T>(x, w, b, g, y);
  else
    forward_gemm<T>(variant, x, w, b, g, y);
}

template <class T>
void conv2d_backward_data_variant(int variant, const T* dy, const T* w, const Conv2DGeom& g, T* dx) {
  check_conv_variant(variant, "conv2d_backward_data");
  check_geom("conv2d_backward_data", g);
  if (g.N == 0 || g.C == 0 || g.H * g.W == 0) return;
  variant = resolve(variant, sizeof(T) == 8);
  if (variant == 0) {
    launch(kname("conv_direct_backward_data", tname<T>()).c_str(), &conv_direct_backward_data<T>,
           dim3(blocks_for(g.N * g.C * g.H * g.W)), dim3(kThreads), dy, w, dev_geom(g), dx);
    return;
  }
  if (g.K == 0 || g.OH * g.OW == 0) return;
  backward_data_gemm<T>(variant == kConvVariants ? 3 : variant, dy, w, g, dx);  // implicit: no dgrad kernel yet
}

template <class T>
void conv2d_backward_filter_variant(int variant, const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  check_conv_variant(variant, "conv2d_backward_filter");
  check_geom("conv2d_backward_filter", g);
  if (g.K == 0 || (!dw && !db)) return;
  if (g.N == 0 || g.OH * g.OW == 0) return;
  variant = resolve(variant, sizeof(T) == 8);
  if (variant == 0) {
    const int64_t blocks = (dw ? g.K * g.C * g.R * g.S : 0) + (db ? g.K : 0);
    if (!dw) {  // bias only
      launch(kname("conv_bias_grad", tname<T>()).c_str(), &conv_bias_grad<T>, dim3(unsigned(g.K)), dim3(kThreads), dy,
             dev_geom(g), db);
      return;
    }
    launch(kname("conv_direct_backward_filter", tname<T>()).c_str(), &conv_direct_backward_filter<T>,
           dim3(unsigned(blocks)), dim3(kThreads), x, dy, dev_geom(g), dw, db);
    return;
  }
  if (variant != kConvVariants) {
    backward_filter_gemm<T>(variant, x, dy, g, dw, db);
    return;
  }
  if (db) bias_grad(dy, g, db);
  if (dw) backward_filter_implicit<T>(x, dy, g, dw);
}

template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  conv2d_forward_variant<T>(default_conv_variant(), x, w, b, g, y);
}
template <class T>
void conv2d_forward_relu(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, T relu_max) {
  conv2d_forward<T>(x, w, b, g, y);
  // In place: the element-wise kernel reads and writes each element in one thread. Qualified: the
  // CPU twin in kernels::cpu would be found by argument-dependent lookup (ActParams lives there).
  ::tinycnn::cuda::activation_forward<T>(ActParams<T>{Act::ReLU, T(0), relu_max}, y, y, g.N * g.K * g.OH * g.OW);
}
template <class T>
void conv2d_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx) {
  conv2d_backward_data_variant<T>(default_conv_variant(), dy, w, g, dx);
}
template <class T>
void conv2d_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  conv2d_backward_filter_variant<T>(default_conv_variant(), x, dy, g, dw, db);
}

// ---- depthwise (direct) -----------------------------------------------------------------------
namespace {

template <class T>
__global__ void dw_forward(const T* x, const T* w, const T* b, G g, T* y) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW, total = g.N * g.K * L;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, k = (e / L) % g.K, n = e / (g.K * L), c = k / M;
    const T* xc = x + (n * g.C + c) * g.H * g.W;
    const T* wk = w + k * g.R * g.S;
    T acc = b ? b[k] : T(0);
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t ih = oh * g.sh - g.pt + r;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t s = 0; s < g.S; ++s) {
        const int64_t iw = ow * g.sw - g.pl + s;
        if (iw >= 0 && iw < g.W) acc += wk[r * g.S + s] * xc[ih * g.W + iw];
      }
    }
    y[e] = acc;
  }
}

template <class T>
__global__ void dw_backward_data(const T* dy, const T* w, G g, T* dx) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW, HW = g.H * g.W, total = g.N * g.C * HW;
  TINYCNN_GRID_STRIDE(e, total) {
    const int64_t iw = e % g.W, ih = (e / g.W) % g.H, c = (e / HW) % g.C, n = e / (g.C * HW);
    T acc = T(0);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t k = c * M + m;
      for (int64_t r = 0; r < g.R; ++r) {
        const int64_t th = ih + g.pt - r;
        if (th < 0 || th % g.sh || th / g.sh >= g.OH) continue;
        for (int64_t s = 0; s < g.S; ++s) {
          const int64_t tw = iw + g.pl - s;
          if (tw < 0 || tw % g.sw || tw / g.sw >= g.OW) continue;
          acc += dy[(n * g.K + k) * L + (th / g.sh) * g.OW + tw / g.sw] * w[(k * g.R + r) * g.S + s];
        }
      }
    }
    dx[e] += acc;
  }
}

// One block per (k, r, s) weight and, after those, one per bias entry.
template <class T>
__global__ void dw_backward_filter(const T* x, const T* dy, G g, T* dw, T* db, int64_t nw) {
  const int64_t M = g.K / g.C, L = g.OH * g.OW, e = blockIdx.x;
  Acc acc = 0;
  if (e < nw) {
    const int64_t s = e % g.S, r = (e / g.S) % g.R, k = e / (g.R * g.S), c = k / M;
    for (int64_t q = threadIdx.x; q < g.N * L; q += blockDim.x) {
      const int64_t n = q / L, l = q % L;
      const int64_t ih = (l / g.OW) * g.sh - g.pt + r, iw = (l % g.OW) * g.sw - g.pl + s;
      if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
        acc += Acc(dy[(n * g.K + k) * L + l]) * Acc(x[((n * g.C + c) * g.H + ih) * g.W + iw]);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) dw[e] += T(acc);
  } else {
    const int64_t k = e - nw;
    for (int64_t q = threadIdx.x; q < g.N * L; q += blockDim.x) acc += Acc(dy[((q / L) * g.K + k) * L + q % L]);
    acc = block_sum(acc);
    if (threadIdx.x == 0) db[k] += T(acc);
  }
}

void check_depthwise(const char* kernel, const Conv2DGeom& g) {
  check_geom(kernel, g);
  if (g.C == 0 || g.K % g.C)
    throw ValueError(std::string("tinycnn::cuda::") + kernel + ": K = " + std::to_string(g.K) +
                     " must be a multiple of C = " + std::to_string(g.C) + " (depth multiplier)");
}

}  // namespace

template <class T>
void depthwise_conv2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, bool relu,
                              T relu_max) {
  check_depthwise("depthwise_conv2d_forward", g);
  const int64_t n = g.N * g.K * g.OH * g.OW;
  if (n == 0) return;
  launch(kname("depthwise_forward", tname<T>()).c_str(), &dw_forward<T>, dim3(blocks_for(n)), dim3(kThreads), x, w,
         b, dev_geom(g), y);
  if (relu) ::tinycnn::cuda::activation_forward<T>(ActParams<T>{Act::ReLU, T(0), relu_max}, y, y, n);  // in place
}
template <class T>
void depthwise_conv2d_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx) {
  check_depthwise("depthwise_conv2d_backward_data", g);
  const int64_t n = g.N * g.C * g.H * g.W;
  if (n == 0) return;
  launch(kname("depthwise_backward_data", tname<T>()).c_str(), &dw_backward_data<T>, dim3(blocks_for(n)),
         dim3(kThreads), dy, w, dev_geom(g), dx);
}
template <class T>
void depthwise_conv2d_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  check_depthwise("depthwise_conv2d_backward_filter", g);
  const int64_t nw = dw ? g.K * g.R * g.S : 0, blocks = nw + (db ? g.K : 0);
  if (blocks == 0) return;
  launch(kname("depthwise_backward_filter", tname<T>()).c_str(), &dw_backward_filter<T>, dim3(unsigned(blocks)),
         dim3(kThreads), x, dy, dev_geom(g), dw, db, nw);
}

#define TINYCNN_INSTANTIATE(T)                                                                                    \
  template void conv2d_forward<T>(const T*, const T*, const T*, const Conv2DGeom&, T*);                           \
  template void conv2d_forward_relu<T>(const T*, const T*, const T*, const Conv2DGeom&, T*, T);                   \
  template void conv2d_backward_data<T>(const T*, const T*, const Conv2DGeom&, T*);                               \
  template void conv2d_backward_filter<T>(const T*, const T*, const Conv2DGeom&, T*, T*);                         \
  template void conv2d_forward_variant<T>(int, const T*, const T*, const T*, const Conv2DGeom&, T*);              \
  template void conv2d_backward_data_variant<T>(int, const T*, const T*, const Conv2DGeom&, T*);                  \
  template void conv2d_backward_filter_variant<T>(int, const T*, const T*, const Conv2DGeom&, T*, T*);            \
  template void depthwise_conv2d_forward<T>(const T*, const T*, const T*, const Conv2DGeom&, T*, bool, T);       \
  template void depthwise_conv2d_backward_data<T>(const T*, const T*, const Conv2DGeom&, T*);                     \
  template void depthwise_conv2d_backward_filter<T>(const T*, const T*, const Conv2DGeom&, T*, T*);
TINYCNN_INSTANTIATE(float)
TINYCNN_INSTANTIATE(double)
#undef TINYCNN_INSTANTIATE

}  // namespace tinycnn::cuda
