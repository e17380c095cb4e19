#pragma once
// Optimizer update kernels, PyTorch semantics (documented in optim/).
#include <cmath>
#include <cstdint>

namespace tinycnn::kernels::cpu {

// SGD with optional momentum/nesterov and L2 weight decay added to the gradient.
//   w, g, velocity: [n] (velocity may be null when momentum == 0)
template <class T>
void sgd_update(T* w, const T* g, T* velocity, int64_t n, T lr, T momentum, bool nesterov, T weight_decay) {
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i] + weight_decay * w[i];
    if (momentum != T(0)) {
      velocity[i] = momentum * velocity[i] + d;
      d = nesterov ? d + momentum * velocity[i] : velocity[i];
    }
    w[i] -= lr * d;
  }
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
  for (int64_t i = 0; i < n; ++i) {
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

}  // namespace tinycnn::kernels::cpu
