#pragma once
// Horizontal mirroring of NCHW planes (test-time flip averaging inside a model: nn::Flip).
// Forward writes y; backward ADDS into dx (a mirror is its own transpose).
#include <cstdint>

#include "../../core/parallel.hpp"

namespace tinycnn::kernels::cpu {

// y[p, h, w] = x[p, h, W - 1 - w];  x, y: [P, H, W] (P = N * C), y written
template <class T>
void flip_w_forward(const T* x, int64_t P, int64_t H, int64_t W, T* y) {
  const bool par = P * H * W >= kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t r = 0; r < P * H; ++r)
    for (int64_t w = 0; w < W; ++w) y[r * W + w] = x[r * W + W - 1 - w];
}

// dx[p, h, w] += dy[p, h, W - 1 - w];  dy, dx: [P, H, W]
template <class T>
void flip_w_backward(const T* dy, int64_t P, int64_t H, int64_t W, T* dx) {
  const bool par = P * H * W >= kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t r = 0; r < P * H; ++r)
    for (int64_t w = 0; w < W; ++w) dx[r * W + w] += dy[r * W + W - 1 - w];
}

}  // namespace tinycnn::kernels::cpu
