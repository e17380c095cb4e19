#pragma once
// The dense plane writer of max_pool2d_backward (pool.hpp, max_pool_backward_plane_dense) for 2x2
// windows at stride 2 and float, written with intrinsics for AVX-512 and AVX2: one vector of windows
// gives both output rows, each as the windows' gradients put into the cell the winner's offset names
// (compare, select, interleave the two columns). The generic writer's compiled loop runs short rows
// scalar (7 windows, model004's conv4: every window in the remainder of a 16-lane loop; about 2,400
// cycles a 15 x 15 plane), and its AVX-512 copy took 1.1-2.2x the time of its AVX2 one on the scene
// models' planes; these writers took 0.16-0.77x (AVX-512) and 0.5-1.06x (AVX2) of the compiled copies'
// time there (docs/performance.md, forty-eighth session; pool.hpp says on which planes they run).
// Rows are masked (AVX-512) or finished by a masked load and store (AVX2), no scalar remainder.
// Bitwise the generic writer's dx; the plane's sum is added in another order (a float sum).
#include <cstdint>

#include "conv_geometry.hpp"
#include "cpu_features.hpp"

#ifdef TINYCNN_HAVE_X86_TARGETS
#include <immintrin.h>

namespace tinycnn::kernels::cpu::detail {

// The generic writer's contract (pool.hpp): dx's fresh plane written whole, window (oh, ow)'s
// gradient (0 where relu_y's mask is off) at its winner argmax, 0 elsewhere; sum (optional) = the sum
// of the plane's window gradients.
//   dy, argmax, relu_y: [OH, OW] (relu_y optional), dx: [H, W] (written), g: 2x2 windows, stride 2
TINYCNN_TARGET_AVX512 inline void max_pool2x2_backward_plane_avx512(const float* dy, const int32_t* argmax,
                                                                    const Conv2DGeom& g, const float* relu_y,
                                                                    float relu_cap, float* dx, float* sum) {
  const int64_t OW = g.OW, W = g.W;
  const __m512i twice = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  // interleave a (even columns) and b (odd columns): lanes 0-7 of each, then lanes 8-15
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 cap = _mm512_set1_ps(relu_cap), zero = _mm512_setzero_ps();
  const __m512i w0 = _mm512_set1_epi32(static_cast<int32_t>(W));
  const __m512i one = _mm512_set1_epi32(1), w1 = _mm512_add_epi32(w0, one);
  __m512 total = zero;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t o = oh * OW;
    float* row = dx + 2 * oh * W;
    for (int64_t ow = 0; ow < OW; ow += 16) {
      const int64_t k = OW - ow < 16 ? OW - ow : 16;
      const __mmask16 m = static_cast<__mmask16>(k == 16 ? 0xFFFFu : (1u << k) - 1u);
      __m512 v = _mm512_maskz_loadu_ps(m, dy + o + ow);
      if (relu_y) {
        const __m512 y = _mm512_maskz_loadu_ps(m, relu_y + o + ow);
        __mmask16 on = _mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ);
        if (relu_cap > 0.0f) on &= _mm512_cmp_ps_mask(y, cap, _CMP_LT_OQ);
        v = _mm512_maskz_mov_ps(on, v);
      }
      total = _mm512_add_ps(total, v);
      // the winner's offset in its window: 0, 1 (top row), W, W + 1 (bottom row); -1 (none) matches none
      const __m512i first = _mm512_set1_epi32(static_cast<int32_t>(2 * oh * W + 2 * ow));
      const __m512i at = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, argmax + o + ow), _mm512_add_epi32(first, twice));
      // 2k values per row: two stores of 16 lanes, masked on the last vector of the row
      const __mmask16 m0 = static_cast<__mmask16>(k >= 8 ? 0xFFFFu : (1u << (2 * k)) - 1u);
      const __mmask16 m1 = static_cast<__mmask16>(k == 16 ? 0xFFFFu : k > 8 ? (1u << (2 * (k - 8))) - 1u : 0u);
      const __m512i targets[2][2] = {{_mm512_setzero_si512(), one}, {w0, w1}};
      for (int r = 0; r < 2; ++r) {
        const __m512 a = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, targets[r][0]), v);
        const __m512 b = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, targets[r][1]), v);
        float* d = row + r * W + 2 * ow;
        _mm512_mask_storeu_ps(d, m0, _mm512_permutex2var_ps(a, lo, b));
        _mm512_mask_storeu_ps(d + 16, m1, _mm512_permutex2var_ps(a, hi, b));
      }
    }
    for (int64_t c = 2 * OW; c < W; ++c) row[c] = row[W + c] = 0.0f;  // the column no window covers
  }
  for (int64_t i = 2 * g.OH * W; i < g.H * W; ++i) dx[i] = 0.0f;  // the row no window covers
  if (sum) *sum = _mm512_reduce_add_ps(total);
}

// The same with 8 windows a vector; a row's last vector is loaded under a lane mask and its 2k
// values stored under one (no scalar remainder).
TINYCNN_TARGET_AVX2 inline void max_pool2x2_backward_plane_avx2(const float* dy, const int32_t* argmax,
                                                                const Conv2DGeom& g, const float* relu_y,
                                                                float relu_cap, float* dx, float* sum) {
  const int64_t OW = g.OW, W = g.W;
  const __m256i twice = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 cap = _mm256_set1_ps(relu_cap), zero = _mm256_setzero_ps();
  const __m256i w0 = _mm256_set1_epi32(static_cast<int32_t>(W));
  const __m256i one = _mm256_set1_epi32(1), w1 = _mm256_add_epi32(w0, one);
  __m256 total = zero;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t o = oh * OW;
    float* row = dx + 2 * oh * W;
    for (int64_t ow = 0; ow < OW; ow += 8) {
      const int32_t k = static_cast<int32_t>(OW - ow < 8 ? OW - ow : 8);
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(k), lanes);  // lanes < k
      __m256 v = k == 8 ? _mm256_loadu_ps(dy + o + ow) : _mm256_maskload_ps(dy + o + ow, m);
      if (relu_y) {
        const __m256 y = k == 8 ? _mm256_loadu_ps(relu_y + o + ow) : _mm256_maskload_ps(relu_y + o + ow, m);
        __m256 on = _mm256_cmp_ps(y, zero, _CMP_GT_OQ);
        if (relu_cap > 0.0f) on = _mm256_and_ps(on, _mm256_cmp_ps(y, cap, _CMP_LT_OQ));
        v = _mm256_and_ps(on, v);
      }
      total = _mm256_add_ps(total, v);  // lanes >= k are 0 (masked loads)
      const __m256i first = _mm256_set1_epi32(static_cast<int32_t>(2 * oh * W + 2 * ow));
      const __m256i raw = k == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(argmax + o + ow))
                                 : _mm256_maskload_epi32(argmax + o + ow, m);
      const __m256i at = _mm256_sub_epi32(raw, _mm256_add_epi32(first, twice));
      const __m256i targets[2][2] = {{_mm256_setzero_si256(), one}, {w0, w1}};
      for (int r = 0; r < 2; ++r) {
        const __m256 a = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(at, targets[r][0])), v);
        const __m256 b = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(at, targets[r][1])), v);
        const __m256 ab_lo = _mm256_unpacklo_ps(a, b), ab_hi = _mm256_unpackhi_ps(a, b);  // lanes 0,1,4,5 / 2,3,6,7
        const __m256 out0 = _mm256_permute2f128_ps(ab_lo, ab_hi, 0x20),
                     out1 = _mm256_permute2f128_ps(ab_lo, ab_hi, 0x31);
        float* d = row + r * W + 2 * ow;
        if (k == 8) {
          _mm256_storeu_ps(d, out0);
          _mm256_storeu_ps(d + 8, out1);
        } else {
          const __m256i n = _mm256_set1_epi32(2 * k);
          _mm256_maskstore_ps(d, _mm256_cmpgt_epi32(n, lanes), out0);
          _mm256_maskstore_ps(d + 8, _mm256_cmpgt_epi32(_mm256_sub_epi32(n, _mm256_set1_epi32(8)), lanes), out1);
        }
      }
    }
    for (int64_t c = 2 * OW; c < W; ++c) row[c] = row[W + c] = 0.0f;
  }
  for (int64_t i = 2 * g.OH * W; i < g.H * W; ++i) dx[i] = 0.0f;
  if (sum) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    *sum = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
}

}  // namespace tinycnn::kernels::cpu::detail
#endif
