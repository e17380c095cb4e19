#pragma once
// Optimizer update kernels, PyTorch semantics (documented in optim/).
// Element-wise and memory-bound: large tensors are split between the OpenMP team (chunks of
// kOptimChunk elements, below that one thread); float Adam without weight decay runs an AVX-512 or
// AVX2 loop chosen at run time (same operations in the same order as the scalar loop: no FMA
// contraction, exact sqrt and division, so the result is bitwise identical).
#include <cmath>
#include <cstdint>
#include <type_traits>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define TINYCNN_OPTIM_X86 1
#endif

#include "../../core/parallel.hpp"
#include "cpu_features.hpp"

namespace tinycnn::kernels::cpu {

namespace optim_detail {

constexpr int64_t kOptimChunk = int64_t(1) << 16;

// f(i0, i1) over [0, n) in chunks, in parallel when n is large.
template <class F>
void for_chunks(int64_t n, const F& f) {
  const int64_t chunks = (n + kOptimChunk - 1) / kOptimChunk;
  if (chunks <= 1) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel for schedule(static) if (n * 8 > kParallelMinWork)
  for (int64_t c = 0; c < chunks; ++c) f(c * kOptimChunk, c + 1 == chunks ? n : (c + 1) * kOptimChunk);
}

template <class T>
inline void adam_scalar(T* w, const T* g, T* m, T* v, int64_t i0, int64_t i1, T lr, T beta1, T beta2, T eps,
                        T step_size, T inv_sqrt_bc2, T weight_decay, bool decoupled) {
  for (int64_t i = i0; i < i1; ++i) {
    T gi = g[i];
    if (weight_decay != T(0)) {
      if (decoupled)
        w[i] *= T(1) - lr * weight_decay;
      else
        gi += weight_decay * w[i];
    }
    m[i] = beta1 * m[i] + (T(1) - beta1) * gi;
    v[i] = beta2 * v[i] + (T(1) - beta2) * gi * gi;
    w[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
  }
}

#ifdef TINYCNN_OPTIM_X86
__attribute__((target("avx512f"))) inline int64_t adam_avx512(float* w, const float* g, float* m, float* v,
                                                              int64_t i0, int64_t i1, float beta1, float beta2,
                                                              float eps, float step_size, float inv_sqrt_bc2) {
  const __m512 b1 = _mm512_set1_ps(beta1), c1 = _mm512_set1_ps(1.0f - beta1), b2 = _mm512_set1_ps(beta2),
               c2 = _mm512_set1_ps(1.0f - beta2), ss = _mm512_set1_ps(step_size),
               ib = _mm512_set1_ps(inv_sqrt_bc2), ep = _mm512_set1_ps(eps);
  int64_t i = i0;
  for (; i + 16 <= i1; i += 16) {
    const __m512 gi = _mm512_loadu_ps(g + i);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(c1, gi));
    const __m512 vi =
        _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    const __m512 den = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), ib), ep);
    _mm512_storeu_ps(w + i, _mm512_sub_ps(_mm512_loadu_ps(w + i), _mm512_div_ps(_mm512_mul_ps(ss, mi), den)));
  }
  return i;
}

__attribute__((target("avx2"))) inline int64_t adam_avx2(float* w, const float* g, float* m, float* v, int64_t i0,
                                                         int64_t i1, float beta1, float beta2, float eps,
                                                         float step_size, float inv_sqrt_bc2) {
  const __m256 b1 = _mm256_set1_ps(beta1), c1 = _mm256_set1_ps(1.0f - beta1), b2 = _mm256_set1_ps(beta2),
               c2 = _mm256_set1_ps(1.0f - beta2), ss = _mm256_set1_ps(step_size),
               ib = _mm256_set1_ps(inv_sqrt_bc2), ep = _mm256_set1_ps(eps);
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, gi));
    const __m256 vi =
        _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(c2, gi), gi));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), ib), ep);
    _mm256_storeu_ps(w + i, _mm256_sub_ps(_mm256_loadu_ps(w + i), _mm256_div_ps(_mm256_mul_ps(ss, mi), den)));
  }
  return i;
}
#endif

}  // namespace optim_detail

// SGD with optional momentum/nesterov and L2 weight decay added to the gradient.
//   w, g, velocity: [n] (velocity may be null when momentum == 0)
template <class T>
void sgd_update(T* w, const T* g, T* velocity, int64_t n, T lr, T momentum, bool nesterov, T weight_decay) {
  optim_detail::for_chunks(n, [&](int64_t i0, int64_t i1) {
    if (momentum == T(0)) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) w[i] -= lr * (g[i] + weight_decay * w[i]);
      return;
    }
    for (int64_t i = i0; i < i1; ++i) {
      T d = g[i] + weight_decay * w[i];
      velocity[i] = momentum * velocity[i] + d;
      d = nesterov ? d + momentum * velocity[i] : velocity[i];
      w[i] -= lr * d;
    }
  });
}

// Adam / AdamW with bias correction; step >= 1. decoupled = AdamW (w *= 1 - lr*wd) instead of L2.
//   w, g, m, v: [n]
template <class T>
void adam_update(T* w, const T* g, T* m, T* v, int64_t n, T lr, T beta1, T beta2, T eps, int64_t step,
                 T weight_decay, bool decoupled) {
  const T bc1 = T(1) - std::pow(beta1, static_cast<T>(step));
  const T bc2 = T(1) - std::pow(beta2, static_cast<T>(step));
  const T step_size = lr / bc1;
  const T inv_sqrt_bc2 = T(1) / std::sqrt(bc2);
  optim_detail::for_chunks(n, [&](int64_t i0, int64_t i1) {
    int64_t i = i0;
#ifdef TINYCNN_OPTIM_X86
    if constexpr (std::is_same<T, float>::value) {
      if (weight_decay == T(0)) {
        const CpuFeatures& f = cpu_features();
        if (f.avx512)
          i = optim_detail::adam_avx512(w, g, m, v, i0, i1, beta1, beta2, eps, step_size, inv_sqrt_bc2);
        else if (f.avx2_fma)
          i = optim_detail::adam_avx2(w, g, m, v, i0, i1, beta1, beta2, eps, step_size, inv_sqrt_bc2);
      }
    }
#endif
    optim_detail::adam_scalar(w, g, m, v, i, i1, lr, beta1, beta2, eps, step_size, inv_sqrt_bc2, weight_decay,
                              decoupled);
  });
}

}  // namespace tinycnn::kernels::cpu
