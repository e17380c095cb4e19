#pragma once
// Fused, numerically stable loss kernels (log-sum-exp; softplus for BCE). Backward ADDS into dlogits.
#include <cmath>
#include <cstdint>

namespace tinycnn::kernels::cpu {

// Softmax cross-entropy from logits.
//   logits: [N, K]; exactly one of labels [N] (class indices, already validated) or targets [N, K]
//   (one-hot or soft, rows summing to 1) is non-null; smoothing in [0, 1) mixes the target with uniform.
//   probs: [N, K] out (softmax, kept for backward); losses: [N] out (per-sample loss).
template <class T>
void softmax_cross_entropy_forward(const T* logits, const int32_t* labels, const T* targets, T smoothing, T* probs,
                                   T* losses, int64_t N, int64_t K) {
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * K;
    T* p = probs + n * K;
    T m = x[0];
    for (int64_t k = 1; k < K; ++k) m = x[k] > m ? x[k] : m;
    T s = 0;
    for (int64_t k = 0; k < K; ++k) s += (p[k] = std::exp(x[k] - m));
    const T lse = m + std::log(s);
    const T inv = T(1) / s;
    for (int64_t k = 0; k < K; ++k) p[k] *= inv;
    T loss = 0;
    for (int64_t k = 0; k < K; ++k) {
      T t = labels ? (k == labels[n] ? T(1) : T(0)) : targets[n * K + k];
      t = (T(1) - smoothing) * t + smoothing / static_cast<T>(K);
      if (t != T(0)) loss += t * (lse - x[k]);  // -t * log_softmax, never log(0)
    }
    losses[n] = loss;
  }
}

// dlogits[n, k] += scale[n] * (probs[n, k] - target[n, k]);  scale: [N] (dLoss/dloss_n)
template <class T>
void softmax_cross_entropy_backward(const T* probs, const int32_t* labels, const T* targets, T smoothing,
                                    const T* scale, T* dlogits, int64_t N, int64_t K) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      T t = labels ? (k == labels[n] ? T(1) : T(0)) : targets[n * K + k];
      t = (T(1) - smoothing) * t + smoothing / static_cast<T>(K);
      dlogits[n * K + k] += scale[n] * (probs[n * K + k] - t);
    }
}

// Binary cross-entropy from logits, element-wise: loss = max(x, 0) - x t + log(1 + exp(-|x|)).
//   logits, targets, losses: [n]
template <class T>
void bce_logits_forward(const T* logits, const T* targets, T* losses, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T x = logits[i];
    losses[i] = (x > 0 ? x : T(0)) - x * targets[i] + std::log1p(std::exp(-std::fabs(x)));
  }
}

// dlogits[i] += scale * (sigmoid(x_i) - t_i);  logits, targets, dlogits: [n]
template <class T>
void bce_logits_backward(const T* logits, const T* targets, T scale, T* dlogits, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T x = logits[i];
    const T s = x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
    dlogits[i] += scale * (s - targets[i]);
  }
}

}  // namespace tinycnn::kernels::cpu
