#pragma once
// Zero padding of the two spatial axes of an NCHW tensor. Forward writes y; backward ADDS into dx.
#include <cstdint>

namespace tinycnn::kernels::cpu {

// y[n, c, top + h, left + w] = x[n, c, h, w]; every other element of y is 0.
//   x: [N, C, H, W], y: [N, C, H + top + bottom, W + left + right] (written)
template <class T>
void zero_pad2d_forward(const T* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t top, int64_t bottom,
                        int64_t left, int64_t right, T* y) {
  const int64_t OH = H + top + bottom, OW = W + left + right;
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const T* xc = x + nc * H * W;
    T* yc = y + nc * OH * OW;
    for (int64_t i = 0; i < OH * OW; ++i) yc[i] = T(0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w) yc[(top + h) * OW + left + w] = xc[h * W + w];
  }
}

// dx[n, c, h, w] += dy[n, c, top + h, left + w]
//   dy: [N, C, H + top + bottom, W + left + right], dx: [N, C, H, W] (+=)
template <class T>
void zero_pad2d_backward(const T* dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t top, int64_t bottom,
                         int64_t left, int64_t right, T* dx) {
  const int64_t OH = H + top + bottom, OW = W + left + right;
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const T* dyc = dy + nc * OH * OW;
    T* dxc = dx + nc * H * W;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w) dxc[h * W + w] += dyc[(top + h) * OW + left + w];
  }
}

}  // namespace tinycnn::kernels::cpu
