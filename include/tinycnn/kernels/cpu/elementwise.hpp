#pragma once
// Element-wise kernels on raw pointers. Outputs marked "+=" accumulate (backward convention).
#include <cstdint>

#include "../../core/parallel.hpp"

namespace tinycnn::kernels::cpu {

// y[i] += alpha * x[i];  x, y: [n]
template <class T>
void add_scaled(const T* x, T alpha, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// out[0] += sum_i x[i], accumulated in double in index order (the reference; deterministic);
// x: [n], out: [1]
template <class T>
void sum_add(const T* x, int64_t n, T* out) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]);
  out[0] += static_cast<T>(s);
}

// y[i] = a[i] * b[i];  a, b, y: [n]
template <class T>
void mul_forward(const T* a, const T* b, T* y, int64_t n) {
  const bool par = n >= kParallelMinWork;
#pragma omp parallel for simd if (par)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

// da += dy * b, db += dy * a (either may be null);  a, b, dy, da, db: [n]
template <class T>
void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  const bool par = n >= kParallelMinWork;  // element-wise: the same result on any number of threads
  if (da) {
#pragma omp parallel for simd if (par)
    for (int64_t i = 0; i < n; ++i) da[i] += dy[i] * b[i];
  }
  if (db) {
#pragma omp parallel for simd if (par)
    for (int64_t i = 0; i < n; ++i) db[i] += dy[i] * a[i];
  }
}

// y[r, c] += b[c];  y: [rows, cols], b: [cols]
template <class T>
void add_bias_rows(T* y, const T* b, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += b[c];
}

// db[c] += sum_r dy[r, c];  dy: [rows, cols], db: [cols]
template <class T>
void sum_rows_add(const T* dy, T* db, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) db[c] += dy[r * cols + c];
}

// y[n, c, i] = x[n, c, i] * scale[c] + offset[c] (per-channel constants, e.g. pixel rescaling);
//   x, y: [N, C, L], scale, offset: [C]
template <class T>
void channel_affine_forward(const T* x, const T* scale, const T* offset, int64_t N, int64_t C, int64_t L, T* y) {
  const bool par = N * C * L >= kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const T s = scale[nc % C], b = offset[nc % C];
    const T* xp = x + nc * L;
    T* yp = y + nc * L;
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) yp[i] = xp[i] * s + b;
  }
}

// dx[n, c, i] += dy[n, c, i] * scale[c];  dy, dx: [N, C, L], scale: [C]
template <class T>
void channel_affine_backward(const T* dy, const T* scale, int64_t N, int64_t C, int64_t L, T* dx) {
  const bool par = N * C * L >= kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const T s = scale[nc % C];
    const T* g = dy + nc * L;
    T* d = dx + nc * L;
#pragma omp simd
    for (int64_t i = 0; i < L; ++i) d[i] += g[i] * s;
  }
}

}  // namespace tinycnn::kernels::cpu
