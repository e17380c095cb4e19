#pragma once
// Activation kernels. Forward writes y; backward ADDS into dx.
#include <cmath>
#include <cstdint>

#include "../../core/parallel.hpp"

namespace tinycnn::kernels::cpu {

enum class Act { Identity, ReLU, LeakyReLU, Sigmoid, Tanh };

// Parameters: alpha = LeakyReLU's negative slope; max_value > 0 caps ReLU (ReLU6 = 6), <= 0 = no cap.
template <class T>
struct ActParams {
  Act kind = Act::Identity;
  T alpha = T(0.3);  // Keras LeakyReLU default
  T max_value = T(0);
};

// y = f(x);  x, y: [n] (y may alias x)
template <class T>
void activation_forward(const ActParams<T>& p, const T* x, T* y, int64_t n) {
  const bool par = n > kParallelMinWork;
  // The parameters as locals: read through `p` inside the loops they could alias y / dx, so the
  // compiler reloaded them per element and kept ReLU6 scalar (a profile of MobileNet training put
  // 18% of its time in these two functions; docs/performance.md, eleventh session).
  const T alpha = p.alpha, cap = p.max_value;
  switch (p.kind) {
    case Act::Identity:
      if (y != x)
        for (int64_t i = 0; i < n; ++i) y[i] = x[i];
      break;
    case Act::ReLU:
      if (cap > T(0)) {
#pragma omp parallel for simd if (par)
        for (int64_t i = 0; i < n; ++i) {
          const T xi = x[i];
          y[i] = xi > T(0) ? (xi < cap ? xi : cap) : T(0);
        }
      } else {
#pragma omp parallel for simd if (par)
        for (int64_t i = 0; i < n; ++i) {
          const T xi = x[i];
          y[i] = xi > T(0) ? xi : T(0);
        }
      }
      break;
    case Act::LeakyReLU:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : alpha * x[i];
      break;
    case Act::Sigmoid:
#pragma omp parallel for if (par)
      for (int64_t i = 0; i < n; ++i) {
        // Branch on the sign so exp never overflows.
        if (x[i] >= 0) {
          y[i] = T(1) / (T(1) + std::exp(-x[i]));
        } else {
          const T e = std::exp(x[i]);
          y[i] = e / (T(1) + e);
        }
      }
      break;
    case Act::Tanh:
#pragma omp parallel for if (par)
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
  }
}

namespace detail {
// dx[i] = v (assign: dx holds no gradient yet, nothing is read from it) or dx[i] += v
template <bool assign, class T>
inline void act_store(T* dx, int64_t i, T v) {
  if constexpr (assign)
    dx[i] = v;
  else
    dx[i] += v;
}

template <bool A, class T>
void activation_backward_impl(const ActParams<T>& p, const T* x, const T* y, const T* dy, T* dx, int64_t n) {
  const bool par = n > kParallelMinWork;
  const T alpha = p.alpha, cap = p.max_value;  // locals: see activation_forward
  switch (p.kind) {
    case Act::Identity:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; ++i) act_store<A>(dx, i, dy[i]);
      break;
    // Loads first, then a select: branch-free loops the compiler vectorises (a conditional load of
    // dy would keep them scalar).
    case Act::ReLU:
      if (cap > T(0)) {
#pragma omp parallel for simd if (par)
        for (int64_t i = 0; i < n; ++i) {
          const T xi = x[i], d = dy[i];
          act_store<A>(dx, i, (xi > T(0) && xi < cap) ? d : T(0));
        }
      } else {
#pragma omp parallel for simd if (par)
        for (int64_t i = 0; i < n; ++i) {
          const T xi = x[i], d = dy[i];
          act_store<A>(dx, i, xi > T(0) ? d : T(0));
        }
      }
      break;
    case Act::LeakyReLU:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; ++i) {
        const T xi = x[i], d = dy[i];
        act_store<A>(dx, i, xi > T(0) ? d : alpha * d);
      }
      break;
    case Act::Sigmoid:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; ++i) act_store<A>(dx, i, dy[i] * y[i] * (T(1) - y[i]));
      break;
    case Act::Tanh:
#pragma omp parallel for simd if (par)
      for (int64_t i = 0; i < n; ++i) act_store<A>(dx, i, dy[i] * (T(1) - y[i] * y[i]));
      break;
  }
}
}  // namespace detail

// dx += f'(x) * dy (dx = f'(x) * dy when assign: a fresh gradient buffer, not read), using x (ReLU
// family) or y (sigmoid, tanh);  x, y, dy, dx: [n]
template <class T>
void activation_backward(const ActParams<T>& p, const T* x, const T* y, const T* dy, T* dx, int64_t n,
                         bool assign = false) {
  if (assign)
    detail::activation_backward_impl<true>(p, x, y, dy, dx, n);
  else
    detail::activation_backward_impl<false>(p, x, y, dy, dx, n);
}

// Row-wise softmax over the last axis;  x, y: [rows, cols]
template <class T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m = xr[0];
    for (int64_t c = 1; c < cols; ++c) m = xr[c] > m ? xr[c] : m;
    T s = 0;
    for (int64_t c = 0; c < cols; ++c) s += (yr[c] = std::exp(xr[c] - m));
    const T inv = T(1) / s;
    for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

// dx += y * (dy - sum(dy * y)) per row;  y, dy, dx: [rows, cols]
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += yr[c] * gr[c];
    for (int64_t c = 0; c < cols; ++c) dx[r * cols + c] += yr[c] * (gr[c] - dot);
  }
}

}  // namespace tinycnn::kernels::cpu
