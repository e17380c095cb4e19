#pragma once
// Per-channel batch normalisation of x viewed as [N, C, HW] (a [N, C] input is HW = 1):
//   y = gamma * (x - mean) * inv_std + beta,  inv_std = 1 / sqrt(var + eps).
// Training uses the batch mean and biased variance over the n = N*HW values of each channel and
// updates the running statistics as Keras does:
//   running_mean = momentum * running_mean + (1 - momentum) * mean
//   running_var  = momentum * running_var  + (1 - momentum) * var * n / (n - 1)   (unbiased, as TF's
//   fused batch norm and PyTorch; the factor is 1 when n == 1).
// Inference uses the running statistics. Both forwards save mean and inv_std per channel for the
// backward pass, which ADDS into dx, dgamma, dbeta. The per-channel sums accumulate in double in
// vectorised (omp simd) order.
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"
#include "cpu_features.hpp"

namespace tinycnn::kernels::cpu {

namespace detail {

#if defined(__GNUC__) || defined(__clang__)
#define TINYCNN_BN_INLINE __attribute__((always_inline)) inline
#else
#define TINYCNN_BN_INLINE inline
#endif

// Channel c of batchnorm_forward_train (its arguments). One body, compiled for the baseline ISA and,
// below, for AVX2 and AVX-512: the double sums were most of the pass's time in the baseline's
// two-wide SSE2 (model004's four batch norms alone: 3.8-4.5 ms forward against 2.9-3.4 with these
// copies, docs/performance.md, forty-second session). The sums' order, and with FMA the rounding
// of y, differ between the copies by rounding only.
template <class T>
TINYCNN_BN_INLINE void batchnorm_train_channel_body(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C,
                                                    int64_t HW, int64_t c, T eps, T momentum, T* y, T* save_mean,
                                                    T* save_inv_std, T* running_mean, T* running_var) {
  const int64_t n = N * HW;
  double s = 0;
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + (i * C + c) * HW;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < HW; ++j) s += static_cast<double>(xi[j]);
  }
  const double mean = n ? s / static_cast<double>(n) : 0.0;
  double ss = 0;
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + (i * C + c) * HW;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < HW; ++j) {
      const double d = static_cast<double>(xi[j]) - mean;
      ss += d * d;
    }
  }
  const double var = n ? ss / static_cast<double>(n) : 0.0;
  const double inv_std = 1.0 / std::sqrt(var + static_cast<double>(eps));
  save_mean[c] = static_cast<T>(mean);
  save_inv_std[c] = static_cast<T>(inv_std);
  const T scale = gamma[c] * static_cast<T>(inv_std), shift = beta[c] - static_cast<T>(mean) * scale;
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + (i * C + c) * HW;
    T* yi = y + (i * C + c) * HW;
#pragma omp simd
    for (int64_t j = 0; j < HW; ++j) yi[j] = xi[j] * scale + shift;
  }
  if (running_mean && running_var) {
    const double unbiased = n > 1 ? var * static_cast<double>(n) / static_cast<double>(n - 1) : var;
    const double m = static_cast<double>(momentum);
    running_mean[c] = static_cast<T>(m * static_cast<double>(running_mean[c]) + (1 - m) * mean);
    running_var[c] = static_cast<T>(m * static_cast<double>(running_var[c]) + (1 - m) * unbiased);
  }
}

template <class T>
void batchnorm_train_channel(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, int64_t c,
                             T eps, T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean, T* running_var) {
  batchnorm_train_channel_body(x, gamma, beta, N, C, HW, c, eps, momentum, y, save_mean, save_inv_std, running_mean,
                               running_var);
}
#ifdef TINYCNN_HAVE_X86_TARGETS
template <class T>
TINYCNN_TARGET_AVX2 void batchnorm_train_channel_avx2(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C,
                                                      int64_t HW, int64_t c, T eps, T momentum, T* y, T* save_mean,
                                                      T* save_inv_std, T* running_mean, T* running_var) {
  batchnorm_train_channel_body(x, gamma, beta, N, C, HW, c, eps, momentum, y, save_mean, save_inv_std, running_mean,
                               running_var);
}
template <class T>
TINYCNN_TARGET_AVX512 void batchnorm_train_channel_avx512(const T* x, const T* gamma, const T* beta, int64_t N,
                                                          int64_t C, int64_t HW, int64_t c, T eps, T momentum, T* y,
                                                          T* save_mean, T* save_inv_std, T* running_mean,
                                                          T* running_var) {
  batchnorm_train_channel_body(x, gamma, beta, N, C, HW, c, eps, momentum, y, save_mean, save_inv_std, running_mean,
                               running_var);
}
#endif

template <class T>
using BatchnormTrainChannelFn = void (*)(const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, T, T, T*, T*,
                                         T*, T*, T*);
// The copy for this CPU.
template <class T>
BatchnormTrainChannelFn<T> batchnorm_train_channel_for_cpu() {
#ifdef TINYCNN_HAVE_X86_TARGETS
  if (cpu_features().avx512) return &batchnorm_train_channel_avx512<T>;
  if (cpu_features().avx2_fma) return &batchnorm_train_channel_avx2<T>;
#endif
  return &batchnorm_train_channel<T>;
}

}  // namespace detail

//   x: [N, C, HW], gamma, beta: [C], y: [N, C, HW] (written), save_mean, save_inv_std: [C] (written),
//   running_mean, running_var: [C] (updated in place; both nullptr = no update)
template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, T eps,
                             T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean, T* running_var) {
  const auto channel = detail::batchnorm_train_channel_for_cpu<T>();
  const bool par = N * C * HW > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t c = 0; c < C; ++c)
    channel(x, gamma, beta, N, C, HW, c, eps, momentum, y, save_mean, save_inv_std, running_mean, running_var);
}

// Inference batch norm as the per-channel affine y = x * scale + shift it is (one formula for the
// eval forward and for folding into a preceding convolution, so both round alike):
//   gamma, beta, running_mean, running_var, scale, shift: [C] (scale, shift written)
template <class T>
void batchnorm_inference_affine(const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                                int64_t C, T eps, T* scale, T* shift) {
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = gamma[c] * (T(1) / std::sqrt(running_var[c] + eps));
    shift[c] = beta[c] - running_mean[c] * scale[c];
  }
}

// Folds a per-output-channel affine into a layer y[k] = w[k, :] . patch + b[k] (a convolution's
// kernel rows; a depthwise kernel [C, M, R, S] is K = C*M rows of P = R*S):
//   wf[k, :] = w[k, :] * scale[k],  bf[k] = b[k] * scale[k] + shift[k]   (b nullptr: 0)
//   w, wf: [K, P] (wf written), b: [K] or nullptr, scale, shift, bf: [K] (bf written)
template <class T>
void fold_channel_affine(const T* w, const T* b, const T* scale, const T* shift, int64_t K, int64_t P, T* wf,
                         T* bf) {
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t j = 0; j < P; ++j) wf[k * P + j] = w[k * P + j] * scale[k];
    bf[k] = (b ? b[k] * scale[k] : T(0)) + shift[k];
  }
}

// Folds a per-input-channel affine (x[c] * scale[c] + shift[c]: a batch norm before the layer) into a
// layer y[k] = sum_{c, p} w(k, c, p) x(c, p) + b[k] whose input is not padded (a 'valid' convolution, a
// dense layer), so every term of every output sees the affine:
//   wf(k, c, p) = w(k, c, p) * scale[c],  bf[k] = b[k] + sum_{c, p} w(k, c, p) * shift[c]   (b nullptr: 0)
// The weights are [O, C, P] with the output k the outer index (K = O: a convolution's kernel [F, C, R,
// S], P = R*S) or the inner one (K = P: a dense kernel [in, units], O = 1, C = in). bf sums in double:
// a dense layer's sum runs over thousands of inputs.
//   w, wf: [O, C, P] (wf written), b: [K] or nullptr, scale, shift: [C], bf: [K] (written)
template <class T>
void fold_input_channel_affine(const T* w, const T* b, const T* scale, const T* shift, int64_t O, int64_t C,
                               int64_t P, bool out_inner, T* wf, T* bf) {
  const int64_t K = out_inner ? P : O;
  std::vector<double> acc(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) acc[static_cast<size_t>(k)] = b ? static_cast<double>(b[k]) : 0.0;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const T* wr = w + (o * C + c) * P;
      T* fr = wf + (o * C + c) * P;
      double row = 0;  // the outer output's share of this channel (out_inner: unused)
      for (int64_t p = 0; p < P; ++p) {
        fr[p] = wr[p] * scale[c];
        if (out_inner)
          acc[static_cast<size_t>(p)] += static_cast<double>(wr[p]) * static_cast<double>(shift[c]);
        else
          row += static_cast<double>(wr[p]);
      }
      if (!out_inner) acc[static_cast<size_t>(o)] += row * static_cast<double>(shift[c]);
    }
  for (int64_t k = 0; k < K; ++k) bf[k] = static_cast<T>(acc[static_cast<size_t>(k)]);
}

//   x: [N, C, HW], gamma, beta, running_mean, running_var: [C], y: [N, C, HW] (written),
//   save_mean, save_inv_std: [C] (written; nullptr = not needed)
template <class T>
void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                            int64_t N, int64_t C, int64_t HW, T eps, T* y, T* save_mean, T* save_inv_std) {
  const bool par = N * C * HW > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t c = 0; c < C; ++c) {
    const T inv_std = T(1) / std::sqrt(running_var[c] + eps);
    if (save_mean) save_mean[c] = running_mean[c];
    if (save_inv_std) save_inv_std[c] = inv_std;
    T scale, shift;
    batchnorm_inference_affine(gamma + c, beta + c, running_mean + c, running_var + c, 1, eps, &scale, &shift);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < HW; ++j) y[(i * C + c) * HW + j] = x[(i * C + c) * HW + j] * scale + shift;
  }
}

// With xhat = (x - mean) * inv_std, per channel:
//   dbeta += sum dy;  dgamma += sum dy * xhat;
//   batch_stats (training): dx += gamma * inv_std / n * (n * dy - sum dy - xhat * sum(dy * xhat))
//   otherwise (statistics are constants): dx += gamma * inv_std * dy
//   x, dy: [N, C, HW], gamma, mean, inv_std: [C] (as saved by the forward), dx: [N, C, HW] (+=),
//   dgamma, dbeta: [C] (+=); any of dx, dgamma, dbeta may be nullptr. assign_dx: dx holds no gradient
//   yet and is written (=) without being read (a fresh buffer spares its zero fill).
namespace detail {

// Channel c of batchnorm_backward (its arguments), in copies per ISA as the forward's channel.
template <class T>
TINYCNN_BN_INLINE void batchnorm_backward_channel_body(const T* x, const T* dy, const T* gamma, const T* mean,
                                                       const T* inv_std, int64_t N, int64_t C, int64_t HW, int64_t c,
                                                       bool batch_stats, T* dx, T* dgamma, T* dbeta, bool assign_dx) {
  const int64_t n = N * HW;
  double sdy = 0, sdyx = 0;
  const double mc = static_cast<double>(mean[c]), ic = static_cast<double>(inv_std[c]);
  // the sums feed dgamma, dbeta and the batch-statistics dx only (not a frozen layer's dx)
  const bool sums = dgamma || dbeta || (dx && batch_stats);
  for (int64_t i = 0; sums && i < N; ++i) {
    const int64_t o0 = (i * C + c) * HW;
#pragma omp simd reduction(+ : sdy, sdyx)
    for (int64_t j = 0; j < HW; ++j) {
      const double d = static_cast<double>(dy[o0 + j]);
      sdy += d;
      sdyx += d * (static_cast<double>(x[o0 + j]) - mc) * ic;
    }
  }
  if (dbeta) dbeta[c] += static_cast<T>(sdy);
  if (dgamma) dgamma[c] += static_cast<T>(sdyx);
  if (!dx) return;
  const T k = gamma[c] * inv_std[c], mean_c = mean[c], inv_std_c = inv_std[c];
  if (!batch_stats) {
    for (int64_t i = 0; i < N; ++i) {
      T* d = dx + (i * C + c) * HW;
      const T* g = dy + (i * C + c) * HW;
      if (assign_dx) {
#pragma omp simd
        for (int64_t j = 0; j < HW; ++j) d[j] = k * g[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < HW; ++j) d[j] += k * g[j];
      }
    }
    return;
  }
  const T mdy = static_cast<T>(sdy / static_cast<double>(n)), mdyx = static_cast<T>(sdyx / static_cast<double>(n));
  for (int64_t i = 0; i < N; ++i) {
    const int64_t o = (i * C + c) * HW;
    T* d = dx + o;
    const T *g = dy + o, *xi = x + o;
    if (assign_dx) {
#pragma omp simd
      for (int64_t j = 0; j < HW; ++j) d[j] = k * (g[j] - mdy - (xi[j] - mean_c) * inv_std_c * mdyx);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < HW; ++j) d[j] += k * (g[j] - mdy - (xi[j] - mean_c) * inv_std_c * mdyx);
    }
  }
}

#undef TINYCNN_BN_INLINE

template <class T>
void batchnorm_backward_channel(const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std, int64_t N,
                                int64_t C, int64_t HW, int64_t c, bool batch_stats, T* dx, T* dgamma, T* dbeta,
                                bool assign_dx) {
  batchnorm_backward_channel_body(x, dy, gamma, mean, inv_std, N, C, HW, c, batch_stats, dx, dgamma, dbeta, assign_dx);
}
#ifdef TINYCNN_HAVE_X86_TARGETS
template <class T>
TINYCNN_TARGET_AVX2 void batchnorm_backward_channel_avx2(const T* x, const T* dy, const T* gamma, const T* mean,
                                                         const T* inv_std, int64_t N, int64_t C, int64_t HW, int64_t c,
                                                         bool batch_stats, T* dx, T* dgamma, T* dbeta, bool assign_dx) {
  batchnorm_backward_channel_body(x, dy, gamma, mean, inv_std, N, C, HW, c, batch_stats, dx, dgamma, dbeta, assign_dx);
}
template <class T>
TINYCNN_TARGET_AVX512 void batchnorm_backward_channel_avx512(const T* x, const T* dy, const T* gamma, const T* mean,
                                                             const T* inv_std, int64_t N, int64_t C, int64_t HW,
                                                             int64_t c, bool batch_stats, T* dx, T* dgamma, T* dbeta,
                                                             bool assign_dx) {
  batchnorm_backward_channel_body(x, dy, gamma, mean, inv_std, N, C, HW, c, batch_stats, dx, dgamma, dbeta, assign_dx);
}
#endif

template <class T>
using BatchnormBackwardChannelFn = void (*)(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,
                                            int64_t, bool, T*, T*, T*, bool);
// The copy for this CPU.
template <class T>
BatchnormBackwardChannelFn<T> batchnorm_backward_channel_for_cpu() {
#ifdef TINYCNN_HAVE_X86_TARGETS
  if (cpu_features().avx512) return &batchnorm_backward_channel_avx512<T>;
  if (cpu_features().avx2_fma) return &batchnorm_backward_channel_avx2<T>;
#endif
  return &batchnorm_backward_channel<T>;
}

}  // namespace detail

template <class T>
void batchnorm_backward(const T* x, const T* dy, const T* gamma, const T* mean, const T* inv_std, int64_t N,
                        int64_t C, int64_t HW, bool batch_stats, T* dx, T* dgamma, T* dbeta, bool assign_dx = false) {
  const auto channel = detail::batchnorm_backward_channel_for_cpu<T>();
  const bool par = N * C * HW > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t c = 0; c < C; ++c)
    channel(x, dy, gamma, mean, inv_std, N, C, HW, c, batch_stats, dx, dgamma, dbeta, assign_dx);
}

}  // namespace tinycnn::kernels::cpu
