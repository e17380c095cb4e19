// Element-wise, activation, softmax, loss, dropout and optimizer kernels (ops.hpp). One kernel per op:
// they are memory-bound, and each is validated against its CPU twin by cuda/tests.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include <tinycnn/cuda/counter_rng.hpp>
#include <tinycnn/cuda/ops.hpp>

#include "launch.cuh"

namespace tinycnn::cuda {
namespace {
using namespace detail;

template <class T>
__global__ void fill_k(T* p, T v, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) p[i] = v;
}
template <class T>
__global__ void add_scaled_k(const T* x, T alpha, T* y, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}
template <class T>
__global__ void mul_forward_k(const T* a, const T* b, T* y, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}
template <class T>
__global__ void mul_backward_k(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) {
    if (da) da[i] += dy[i] * b[i];
    if (db) db[i] += dy[i] * a[i];
  }
}
template <class T>
__global__ void add_bias_rows_k(T* y, const T* b, int64_t rows, int64_t cols) {
  TINYCNN_GRID_STRIDE(i, rows * cols) y[i] += b[i % cols];
}
template <class T>
__global__ void channel_affine_fwd_k(const T* x, const T* scale, const T* offset, int64_t C, int64_t L, int64_t n, T* y) {
  TINYCNN_GRID_STRIDE(i, n) {
    const int64_t c = (i / L) % C;
    y[i] = x[i] * scale[c] + offset[c];
  }
}
template <class T>
__global__ void channel_affine_bwd_k(const T* dy, const T* scale, int64_t C, int64_t L, int64_t n, T* dx) {
  TINYCNN_GRID_STRIDE(i, n) dx[i] += dy[i] * scale[(i / L) % C];
}
// sum_add: each block sums its grid-stride share into a double partial (the grid size depends only
// on n, so the order is fixed), then one block adds the partials in order: deterministic.
template <class T>
__global__ void sum_partial_k(const T* x, int64_t n, double* part) {
  double s = 0;
  TINYCNN_GRID_STRIDE(i, n) s += static_cast<double>(x[i]);
  s = block_sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}
template <class T>
__global__ void sum_finalize_k(const double* part, int64_t parts, T* out) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < parts; i += blockDim.x) s += part[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] += static_cast<T>(s);
}

// One thread per column walks the rows: consecutive threads read consecutive addresses.
template <class T>
__global__ void sum_rows_add_k(const T* dy, T* db, int64_t rows, int64_t cols) {
  TINYCNN_GRID_STRIDE(c, cols) {
    T s = T(0);
    for (int64_t r = 0; r < rows; ++r) s += dy[r * cols + c];
    db[c] += s;
  }
}

template <class T>
__device__ inline T act_f(const ActParams<T>& p, T x) {
  switch (p.kind) {
    case Act::ReLU:
      if (p.max_value > T(0)) return x > T(0) ? (x < p.max_value ? x : p.max_value) : T(0);
      return x > T(0) ? x : T(0);
    case Act::LeakyReLU: return x > T(0) ? x : p.alpha * x;
    case Act::Sigmoid:
      if (x >= T(0)) return T(1) / (T(1) + dexp(-x));
      {
        const T e = dexp(x);
        return e / (T(1) + e);
      }
    case Act::Tanh: return dtanh(x);
    default: return x;
  }
}
template <class T>
__global__ void act_forward_k(ActParams<T> p, const T* x, T* y, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) y[i] = act_f(p, x[i]);
}
template <class T>
__global__ void act_backward_k(ActParams<T> p, const T* x, const T* y, const T* dy, T* dx, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) {
    const T d = dy[i];
    T g;
    switch (p.kind) {
      case Act::ReLU:
        g = (x[i] > T(0) && (p.max_value <= T(0) || x[i] < p.max_value)) ? d : T(0);
        break;
      case Act::LeakyReLU: g = x[i] > T(0) ? d : p.alpha * d; break;
      case Act::Sigmoid: g = d * y[i] * (T(1) - y[i]); break;
      case Act::Tanh: g = d * (T(1) - y[i] * y[i]); break;
      default: g = d;
    }
    dx[i] += g;
  }
}

// Row kernels: one warp per row (rows are class scores: short), warp-shuffle reductions.
constexpr int kRowsPerBlock = kThreads / 32;

template <class T>
__global__ void softmax_forward_k(const T* x, T* y, int64_t rows, int64_t cols) {
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const T* xr = x + r * cols;
  T* yr = y + r * cols;
  T m = xr[0];
  for (int64_t c = lane; c < cols; c += 32) m = xr[c] > m ? xr[c] : m;
  m = warp_max(m);
  T s = T(0);
  for (int64_t c = lane; c < cols; c += 32) s += dexp(xr[c] - m);
  s = warp_sum(s);
  const T inv = T(1) / s;
  for (int64_t c = lane; c < cols; c += 32) yr[c] = dexp(xr[c] - m) * inv;
}
template <class T>
__global__ void softmax_backward_k(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const T* yr = y + r * cols;
  const T* gr = dy + r * cols;
  T dot = T(0);
  for (int64_t c = lane; c < cols; c += 32) dot += yr[c] * gr[c];
  dot = warp_sum(dot);
  for (int64_t c = lane; c < cols; c += 32) dx[r * cols + c] += yr[c] * (gr[c] - dot);
}

template <class T>
__device__ inline T ce_target(const int32_t* labels, const T* targets, T smoothing, int64_t n, int64_t k, int64_t K) {
  const T t = labels ? (k == labels[n] ? T(1) : T(0)) : targets[n * K + k];
  return (T(1) - smoothing) * t + smoothing / static_cast<T>(K);
}
template <class T>
__global__ void sce_forward_k(const T* logits, const int32_t* labels, const T* targets, T smoothing, T* probs,
                              T* losses, int64_t N, int64_t K) {
  const int64_t n = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (n >= N) return;
  const T* x = logits + n * K;
  T* p = probs + n * K;
  T m = x[0];
  for (int64_t k = lane; k < K; k += 32) m = x[k] > m ? x[k] : m;
  m = warp_max(m);
  T s = T(0);
  for (int64_t k = lane; k < K; k += 32) s += dexp(x[k] - m);
  s = warp_sum(s);
  const T lse = m + dlog(s), inv = T(1) / s;
  T loss = T(0);
  for (int64_t k = lane; k < K; k += 32) {
    p[k] = dexp(x[k] - m) * inv;
    const T t = ce_target(labels, targets, smoothing, n, k, K);
    if (t != T(0)) loss += t * (lse - x[k]);  // never log(0)
  }
  loss = warp_sum(loss);
  if (lane == 0) losses[n] = loss;
}
template <class T>
__global__ void sce_backward_k(const T* probs, const int32_t* labels, const T* targets, T smoothing, const T* scale,
                               T* dlogits, int64_t N, int64_t K) {
  TINYCNN_GRID_STRIDE(e, N * K) {
    const int64_t n = e / K, k = e % K;
    dlogits[e] += scale[n] * (probs[e] - ce_target(labels, targets, smoothing, n, k, K));
  }
}
template <class T>
__global__ void bce_forward_k(const T* logits, const T* targets, T* losses, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) {
    const T x = logits[i];
    losses[i] = (x > T(0) ? x : T(0)) - x * targets[i] + dlog1p(dexp(-dabs(x)));
  }
}
template <class T>
__global__ void bce_backward_k(const T* logits, const T* targets, T scale, T* dlogits, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) {
    const T x = logits[i];
    const T s = x >= T(0) ? T(1) / (T(1) + dexp(-x)) : dexp(x) / (T(1) + dexp(x));
    dlogits[i] += scale * (s - targets[i]);
  }
}

template <class T>
__global__ void dropout_k(uint64_t seed, double rate, T keep, const T* x, T* y, int64_t n) {
  TINYCNN_GRID_STRIDE(i, n) y[i] = x[i] * (counter_uniform(seed, static_cast<uint64_t>(i)) < rate ? T(0) : keep);
}

template <class T>
__global__ void sgd_k(T* w, const T* g, T* velocity, int64_t n, T lr, T momentum, bool nesterov, T weight_decay) {
  TINYCNN_GRID_STRIDE(i, n) {
    if (momentum == T(0)) {
      w[i] -= lr * (g[i] + weight_decay * w[i]);
    } else {
      T d = g[i] + weight_decay * w[i];
      const T v = momentum * velocity[i] + d;
      velocity[i] = v;
      d = nesterov ? d + momentum * v : v;
      w[i] -= lr * d;
    }
  }
}
// Same operation order as the CPU kernel (optim_detail::adam_scalar).
template <class T>
__global__ void adam_k(T* w, const T* g, T* m, T* v, int64_t n, T lr, T beta1, T beta2, T eps, T step_size,
                       T inv_sqrt_bc2, T weight_decay, bool decoupled) {
  TINYCNN_GRID_STRIDE(i, n) {
    T gi = g[i], wi = w[i];
    if (weight_decay != T(0)) {
      if (decoupled)
        wi *= T(1) - lr * weight_decay;
      else
        gi += weight_decay * wi;
    }
    const T mi = beta1 * m[i] + (T(1) - beta1) * gi;
    const T vi = beta2 * v[i] + (T(1) - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi - step_size * mi / (dsqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

template <class... KArgs, class... Args>
void elementwise(const char* base, const char* t, int64_t n, void (*k)(KArgs...), Args&&... args) {
  require_nonneg(base, "n", n);
  if (n == 0) return;
  launch(kname(base, t).c_str(), k, dim3(blocks_for(n)), dim3(kThreads), std::forward<Args>(args)...);
}

template <class... KArgs, class... Args>
void rowwise(const char* base, const char* t, int64_t rows, int64_t cols, void (*k)(KArgs...), Args&&... args) {
  require_nonneg(base, "rows", rows);
  require_nonneg(base, "cols", cols);
  if (rows == 0 || cols == 0) return;
  launch(kname(base, t).c_str(), k, dim3(unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock)), dim3(kThreads),
         std::forward<Args>(args)...);
}

}  // namespace

template <class T>
void fill(T* p, T v, int64_t n) {
  elementwise("fill", tname<T>(), n, &fill_k<T>, p, v, n);
}
template <class T>
void add_scaled(const T* x, T alpha, T* y, int64_t n) {
  elementwise("add_scaled", tname<T>(), n, &add_scaled_k<T>, x, alpha, y, n);
}
template <class T>
void sum_add(const T* x, int64_t n, T* out) {
  require_nonneg("sum_add", "n", n);
  const unsigned parts = std::min(blocks_for(n), 1024u);
  double* part = static_cast<double*>(device_alloc(parts * sizeof(double)));
  try {
    launch(kname("sum_partial", tname<T>()).c_str(), &sum_partial_k<T>, dim3(parts), dim3(kThreads), x, n, part);
    launch(kname("sum_finalize", tname<T>()).c_str(), &sum_finalize_k<T>, dim3(1), dim3(kThreads),
           static_cast<const double*>(part), static_cast<int64_t>(parts), out);
  } catch (...) {
    device_free(part);
    throw;
  }
  device_free(part);
}
template <class T>
void mul_forward(const T* a, const T* b, T* y, int64_t n) {
  elementwise("mul_forward", tname<T>(), n, &mul_forward_k<T>, a, b, y, n);
}
template <class T>
void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  if (!da && !db) return;
  elementwise("mul_backward", tname<T>(), n, &mul_backward_k<T>, a, b, dy, da, db, n);
}
template <class T>
void add_bias_rows(T* y, const T* b, int64_t rows, int64_t cols) {
  require_nonneg("add_bias_rows", "rows", rows);
  require_nonneg("add_bias_rows", "cols", cols);
  elementwise("add_bias_rows", tname<T>(), rows * cols, &add_bias_rows_k<T>, y, b, rows, cols);
}
template <class T>
void sum_rows_add(const T* dy, T* db, int64_t rows, int64_t cols) {
  require_nonneg("sum_rows_add", "rows", rows);
  elementwise("sum_rows_add", tname<T>(), cols, &sum_rows_add_k<T>, dy, db, rows, cols);
}
template <class T>
void channel_affine_forward(const T* x, const T* scale, const T* offset, int64_t N, int64_t C, int64_t L, T* y) {
  require_nonneg("channel_affine_forward", "N", N);
  require_nonneg("channel_affine_forward", "C", C);
  require_nonneg("channel_affine_forward", "L", L);
  if (L == 0 || C == 0) return;
  elementwise("channel_affine_forward", tname<T>(), N * C * L, &channel_affine_fwd_k<T>, x, scale, offset, C, L, N * C * L, y);
}
template <class T>
void channel_affine_backward(const T* dy, const T* scale, int64_t N, int64_t C, int64_t L, T* dx) {
  require_nonneg("channel_affine_backward", "N", N);
  require_nonneg("channel_affine_backward", "C", C);
  require_nonneg("channel_affine_backward", "L", L);
  if (L == 0 || C == 0) return;
  elementwise("channel_affine_backward", tname<T>(), N * C * L, &channel_affine_bwd_k<T>, dy, scale, C, L, N * C * L, dx);
}
template <class T>
void activation_forward(const ActParams<T>& p, const T* x, T* y, int64_t n) {
  elementwise("activation_forward", tname<T>(), n, &act_forward_k<T>, p, x, y, n);
}
template <class T>
void activation_backward(const ActParams<T>& p, const T* x, const T* y, const T* dy, T* dx, int64_t n) {
  elementwise("activation_backward", tname<T>(), n, &act_backward_k<T>, p, x, y, dy, dx, n);
}
template <class T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols) {
  rowwise("softmax_forward", tname<T>(), rows, cols, &softmax_forward_k<T>, x, y, rows, cols);
}
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  rowwise("softmax_backward", tname<T>(), rows, cols, &softmax_backward_k<T>, y, dy, dx, rows, cols);
}
template <class T>
void softmax_cross_entropy_forward(const T* logits, const int32_t* labels, const T* targets, T smoothing, T* probs,
                                   T* losses, int64_t N, int64_t K) {
  if ((labels == nullptr) == (targets == nullptr))
    throw ValueError("tinycnn::cuda::softmax_cross_entropy_forward: exactly one of labels and targets must be given");
  rowwise("softmax_cross_entropy_forward", tname<T>(), N, K, &sce_forward_k<T>, logits, labels, targets, smoothing,
          probs, losses, N, K);
}
template <class T>
void softmax_cross_entropy_backward(const T* probs, const int32_t* labels, const T* targets, T smoothing,
                                    const T* scale, T* dlogits, int64_t N, int64_t K) {
  if ((labels == nullptr) == (targets == nullptr))
    throw ValueError("tinycnn::cuda::softmax_cross_entropy_backward: exactly one of labels and targets must be given");
  require_nonneg("softmax_cross_entropy_backward", "N", N);
  require_nonneg("softmax_cross_entropy_backward", "K", K);
  elementwise("softmax_cross_entropy_backward", tname<T>(), N * K, &sce_backward_k<T>, probs, labels, targets,
              smoothing, scale, dlogits, N, K);
}
template <class T>
void bce_logits_forward(const T* logits, const T* targets, T* losses, int64_t n) {
  elementwise("bce_logits_forward", tname<T>(), n, &bce_forward_k<T>, logits, targets, losses, n);
}
template <class T>
void bce_logits_backward(const T* logits, const T* targets, T scale, T* dlogits, int64_t n) {
  elementwise("bce_logits_backward", tname<T>(), n, &bce_backward_k<T>, logits, targets, scale, dlogits, n);
}
template <class T>
void dropout_apply(uint64_t seed, T rate, const T* x, T* y, int64_t n) {
  if (!(rate >= T(0) && rate < T(1)))
    throw ValueError("tinycnn::cuda::dropout_apply: rate " + std::to_string(double(rate)) + " is not in [0, 1)");
  elementwise("dropout_apply", tname<T>(), n, &dropout_k<T>, seed, static_cast<double>(rate), T(1) / (T(1) - rate),
              x, y, n);
}
template <class T>
void sgd_update(T* w, const T* g, T* velocity, int64_t n, T lr, T momentum, bool nesterov, T weight_decay) {
  if (momentum != T(0) && !velocity)
    throw ValueError("tinycnn::cuda::sgd_update: momentum " + std::to_string(double(momentum)) +
                     " needs a velocity buffer");
  elementwise("sgd_update", tname<T>(), n, &sgd_k<T>, w, g, velocity, n, lr, momentum, nesterov, weight_decay);
}
template <class T>
void adam_update(T* w, const T* g, T* m, T* v, int64_t n, T lr, T beta1, T beta2, T eps, int64_t step,
                 T weight_decay, bool decoupled) {
  if (step < 1) throw ValueError("tinycnn::cuda::adam_update: step " + std::to_string(step) + " must be >= 1");
  // The scalars exactly as the CPU kernel computes them.
  const T bc1 = T(1) - std::pow(beta1, static_cast<T>(step));
  const T bc2 = T(1) - std::pow(beta2, static_cast<T>(step));
  const T step_size = lr / bc1;
  const T inv_sqrt_bc2 = T(1) / std::sqrt(bc2);
  elementwise("adam_update", tname<T>(), n, &adam_k<T>, w, g, m, v, n, lr, beta1, beta2, eps, step_size, inv_sqrt_bc2,
              weight_decay, decoupled);
}

#define TINYCNN_INSTANTIATE(T)                                                                                      \
  template void fill<T>(T*, T, int64_t);                                                                            \
  template void add_scaled<T>(const T*, T, T*, int64_t);                                                            \
  template void sum_add<T>(const T*, int64_t, T*);                                                                  \
  template void mul_forward<T>(const T*, const T*, T*, int64_t);                                                    \
  template void mul_backward<T>(const T*, const T*, const T*, T*, T*, int64_t);                                     \
  template void add_bias_rows<T>(T*, const T*, int64_t, int64_t);                                                   \
  template void sum_rows_add<T>(const T*, T*, int64_t, int64_t);                                                    \
  template void channel_affine_forward<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, T*);            \
  template void channel_affine_backward<T>(const T*, const T*, int64_t, int64_t, int64_t, T*);                     \
  template void activation_forward<T>(const ActParams<T>&, const T*, T*, int64_t);                                  \
  template void activation_backward<T>(const ActParams<T>&, const T*, const T*, const T*, T*, int64_t);             \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t);                                                 \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t);                                      \
  template void softmax_cross_entropy_forward<T>(const T*, const int32_t*, const T*, T, T*, T*, int64_t, int64_t);  \
  template void softmax_cross_entropy_backward<T>(const T*, const int32_t*, const T*, T, const T*, T*, int64_t,     \
                                                  int64_t);                                                         \
  template void bce_logits_forward<T>(const T*, const T*, T*, int64_t);                                             \
  template void bce_logits_backward<T>(const T*, const T*, T, T*, int64_t);                                         \
  template void dropout_apply<T>(uint64_t, T, const T*, T*, int64_t);                                               \
  template void sgd_update<T>(T*, const T*, T*, int64_t, T, T, bool, T);                                            \
  template void adam_update<T>(T*, const T*, T*, T*, int64_t, T, T, T, T, int64_t, T, bool);
TINYCNN_INSTANTIATE(float)
TINYCNN_INSTANTIATE(double)
#undef TINYCNN_INSTANTIATE

}  // namespace tinycnn::cuda
