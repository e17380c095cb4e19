#pragma once
// The 2x2 / 2 max pooling of the scene models, forward and backward over one plane, written with
// intrinsics for AVX-512 and AVX2 (pool.hpp has the generic routines, compiled per ISA, and says on
// which planes these run). The generic routines' compiled loops run short rows scalar (7 windows,
// model004's conv4: every window in the remainder of a 16-lane loop; the backward about 2,400 cycles
// a 15 x 15 plane), and their AVX-512 copies took up to 2.2x the time of their AVX2 ones there; here
// a row's last vector is masked (AVX-512 masked loads and stores) or, with AVX2, whole where that
// is safe (vmaskmov elsewhere), no scalar remainder (docs/performance.md, forty-eighth session).
// Results are bitwise the generic routines' (the backward's plane sum, a float sum, is added in
// another order).
#include <cstdint>

#include "conv_geometry.hpp"
#include "cpu_features.hpp"

#ifdef TINYCNN_HAVE_X86_TARGETS
#include <immintrin.h>

namespace tinycnn::kernels::cpu::detail {

// Lanes [0, n) of 16 set (n clamped to 0 .. 16): the AVX-512 routines' masks for a row's last vector.
TINYCNN_TARGET_AVX512 inline __mmask16 pool_lanes16(int64_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
}

// Output rows [oh_begin, oh_end) of the max pooling of one plane by 2x2 windows at stride 2, no padding,
// every window inside the plane; the generic routine's contract (pool.hpp, max_pool_plane_body): y the
// window's maximum, argmax its first maximum in row-major order (offset in the plane), a NaN kept once
// it is the maximum (std::max(best, v) = max_ps(v, best), which returns its second operand on a NaN).
// A vector of windows reads 2 vectors of each input row and splits them into the windows' even and odd
// columns by permutes.
// A false: argmax null, the offsets neither computed nor stored (inference; the public routines below
// take the argmax they are given, null or not).
//   xc: [H, W], y, argmax: [OH, OW] (rows [oh_begin, oh_end) written)
template <bool A>
TINYCNN_TARGET_AVX512 inline void max_pool2x2_plane_avx512_a(const float* xc, const Conv2DGeom& g, float* y,
                                                             int32_t* argmax, int64_t oh_begin, int64_t oh_end) {
  const int64_t OW = g.OW, W = g.W;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1), w0 = _mm512_set1_epi32(static_cast<int32_t>(W));
  const __m512i w1 = _mm512_add_epi32(w0, one);
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const float* r0 = xc + 2 * oh * W;
    const float* r1 = r0 + W;
    for (int64_t ow = 0; ow < OW; ow += 16) {
      const int64_t k = OW - ow < 16 ? OW - ow : 16;
      // Whole vectors where they stay inside the plane and the range of rows, as the AVX2 copy below:
      // masked loads and stores of every vector took 1.3-2.4x the AVX2 copy's time on a Zen 5.
      const bool whole_in = k == 16 || (2 * oh + 1) * W + 2 * ow + 32 <= g.H * W;
      const bool whole_out = k == 16 || oh * OW + ow + 16 <= oh_end * OW;
      __m512 a0, a1, b0, b1;
      if (whole_in) {
        a0 = _mm512_loadu_ps(r0 + 2 * ow), a1 = _mm512_loadu_ps(r0 + 2 * ow + 16);
        b0 = _mm512_loadu_ps(r1 + 2 * ow), b1 = _mm512_loadu_ps(r1 + 2 * ow + 16);
      } else {
        const __mmask16 m0 = pool_lanes16(2 * k), m1 = pool_lanes16(2 * k - 16);
        a0 = _mm512_maskz_loadu_ps(m0, r0 + 2 * ow), a1 = _mm512_maskz_loadu_ps(m1, r0 + 2 * ow + 16);
        b0 = _mm512_maskz_loadu_ps(m0, r1 + 2 * ow), b1 = _mm512_maskz_loadu_ps(m1, r1 + 2 * ow + 16);
      }
      __m512 best = _mm512_permutex2var_ps(a0, even, a1);
      __m512i at = _mm512_setzero_si512();
      const __m512 cells[3] = {_mm512_permutex2var_ps(a0, odd, a1), _mm512_permutex2var_ps(b0, even, b1),
                               _mm512_permutex2var_ps(b0, odd, b1)};
      const __m512i offsets[3] = {one, w0, w1};
      for (int c = 0; c < 3; ++c) {  // (0, 1), (1, 0), (1, 1): strict, so the first maximum stays
        at = _mm512_mask_mov_epi32(at, _mm512_cmp_ps_mask(cells[c], best, _CMP_GT_OQ), offsets[c]);
        best = _mm512_max_ps(cells[c], best);
      }
      const __m512i first = _mm512_set1_epi32(static_cast<int32_t>(2 * oh * W + 2 * ow));
      const __m512i index = _mm512_add_epi32(_mm512_add_epi32(first, even), at);
      if (whole_out) {
        _mm512_storeu_ps(y + oh * OW + ow, best);
        if constexpr (A) _mm512_storeu_si512(argmax + oh * OW + ow, index);
      } else {
        const __mmask16 m = pool_lanes16(k);
        _mm512_mask_storeu_ps(y + oh * OW + ow, m, best);
        if constexpr (A) _mm512_mask_storeu_epi32(argmax + oh * OW + ow, m, index);
      }
    }
  }
}
TINYCNN_TARGET_AVX512 inline void max_pool2x2_plane_avx512(const float* xc, const Conv2DGeom& g, float* y,
                                                           int32_t* argmax, int64_t oh_begin, int64_t oh_end) {
  if (argmax)
    max_pool2x2_plane_avx512_a<true>(xc, g, y, argmax, oh_begin, oh_end);
  else
    max_pool2x2_plane_avx512_a<false>(xc, g, y, argmax, oh_begin, oh_end);
}

// Columns 0, 2, .., 14 (odd: 1, 3, .., 15) of the 16-value run u, v, as windows 0, 1, 4, 5, 2, 3, 6, 7
// (one in-lane shuffle; the results are put in order once, by pool_windows_in_order_avx2).
template <bool odd>
TINYCNN_TARGET_AVX2 inline __m256 pool_split_columns_avx2(__m256 u, __m256 v) {
  return _mm256_shuffle_ps(u, v, odd ? _MM_SHUFFLE(3, 1, 3, 1) : _MM_SHUFFLE(2, 0, 2, 0));
}
TINYCNN_TARGET_AVX2 inline __m256i pool_windows_in_order_avx2(__m256i v) {
  return _mm256_permute4x64_epi64(v, _MM_SHUFFLE(3, 1, 2, 0));
}

// The same with 8 windows a vector: each input row's 16 values split by in-lane shuffles, the windows'
// maxima and offsets put in order by one 64-bit permute each; a row's last vector as below.
template <bool A>
TINYCNN_TARGET_AVX2 inline void max_pool2x2_plane_avx2_a(const float* xc, const Conv2DGeom& g, float* y,
                                                         int32_t* argmax, int64_t oh_begin, int64_t oh_end) {
  const int64_t OW = g.OW, W = g.W;
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i twice = _mm256_add_epi32(lanes, lanes);
  const __m256i one = _mm256_set1_epi32(1), w0 = _mm256_set1_epi32(static_cast<int32_t>(W));
  const __m256i w1 = _mm256_add_epi32(w0, one);
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const float* r0 = xc + 2 * oh * W;
    const float* r1 = r0 + W;
    for (int64_t ow = 0; ow < OW; ow += 8) {
      const int32_t k = static_cast<int32_t>(OW - ow < 8 ? OW - ow : 8);
      // A row's last vector reads and writes whole vectors where they stay inside the plane and the
      // range of rows (lanes from k on then hold the next rows' windows, which those rows overwrite):
      // masked loads and stores (vmaskmov) cost the short rows of 7 windows a fifth of their time.
      const bool whole_in = k == 8 || (2 * oh + 1) * W + 2 * ow + 16 <= g.H * W;
      const bool whole_out = k == 8 || oh * OW + ow + 8 <= oh_end * OW;
      __m256 a0, a1, b0, b1;
      if (whole_in) {
        a0 = _mm256_loadu_ps(r0 + 2 * ow), a1 = _mm256_loadu_ps(r0 + 2 * ow + 8);
        b0 = _mm256_loadu_ps(r1 + 2 * ow), b1 = _mm256_loadu_ps(r1 + 2 * ow + 8);
      } else {
        const __m256i n = _mm256_set1_epi32(2 * k);
        const __m256i m0 = _mm256_cmpgt_epi32(n, lanes),
                      m1 = _mm256_cmpgt_epi32(_mm256_sub_epi32(n, _mm256_set1_epi32(8)), lanes);
        a0 = _mm256_maskload_ps(r0 + 2 * ow, m0), a1 = _mm256_maskload_ps(r0 + 2 * ow + 8, m1);
        b0 = _mm256_maskload_ps(r1 + 2 * ow, m0), b1 = _mm256_maskload_ps(r1 + 2 * ow + 8, m1);
      }
      __m256 best = pool_split_columns_avx2<false>(a0, a1);
      __m256i at = _mm256_setzero_si256();
      const __m256 cells[3] = {pool_split_columns_avx2<true>(a0, a1), pool_split_columns_avx2<false>(b0, b1),
                               pool_split_columns_avx2<true>(b0, b1)};
      const __m256i offsets[3] = {one, w0, w1};
      for (int c = 0; c < 3; ++c) {
        const __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(cells[c], best, _CMP_GT_OQ));
        at = _mm256_blendv_epi8(at, offsets[c], gt);
        best = _mm256_max_ps(cells[c], best);
      }
      const __m256i first = _mm256_set1_epi32(static_cast<int32_t>(2 * oh * W + 2 * ow));
      const __m256i index = _mm256_add_epi32(_mm256_add_epi32(first, twice), pool_windows_in_order_avx2(at));
      best = _mm256_castsi256_ps(pool_windows_in_order_avx2(_mm256_castps_si256(best)));
      if (whole_out) {
        _mm256_storeu_ps(y + oh * OW + ow, best);
        if constexpr (A) _mm256_storeu_si256(reinterpret_cast<__m256i*>(argmax + oh * OW + ow), index);
      } else {
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(k), lanes);
        _mm256_maskstore_ps(y + oh * OW + ow, m, best);
        if constexpr (A) _mm256_maskstore_epi32(argmax + oh * OW + ow, m, index);
      }
    }
  }
}
TINYCNN_TARGET_AVX2 inline void max_pool2x2_plane_avx2(const float* xc, const Conv2DGeom& g, float* y, int32_t* argmax,
                                                       int64_t oh_begin, int64_t oh_end) {
  if (argmax)
    max_pool2x2_plane_avx2_a<true>(xc, g, y, argmax, oh_begin, oh_end);
  else
    max_pool2x2_plane_avx2_a<false>(xc, g, y, argmax, oh_begin, oh_end);
}

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
      const __mmask16 m = pool_lanes16(k);
      // Whole loads where they stay inside the plane's windows (lanes from k on zeroed below) and
      // whole stores as the AVX2 copy's: every vector masked took 1.3-1.9x the AVX2 writer's time on
      // 72^2 and 148^2 planes on a Zen 5 (docs/performance.md, forty-ninth session).
      const bool whole_in = k == 16 || o + ow + 16 <= g.OH * OW;
      __m512 v = whole_in ? _mm512_loadu_ps(dy + o + ow) : _mm512_maskz_loadu_ps(m, dy + o + ow);
      if (relu_y) {
        const __m512 y = whole_in ? _mm512_loadu_ps(relu_y + o + ow) : _mm512_maskz_loadu_ps(m, relu_y + o + ow);
        __mmask16 on = _mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ);
        if (relu_cap > 0.0f) on &= _mm512_cmp_ps_mask(y, cap, _CMP_LT_OQ);
        v = _mm512_maskz_mov_ps(on, v);
      }
      if (k < 16) v = _mm512_maskz_mov_ps(m, v);
      total = _mm512_add_ps(total, v);
      // the winner's offset in its window: 0, 1 (top row), W, W + 1 (bottom row); -1 (none) matches none
      const __m512i first = _mm512_set1_epi32(static_cast<int32_t>(2 * oh * W + 2 * ow));
      const __m512i raw =
          whole_in ? _mm512_loadu_si512(argmax + o + ow) : _mm512_maskz_loadu_epi32(m, argmax + o + ow);
      const __m512i at = _mm512_sub_epi32(raw, _mm512_add_epi32(first, twice));
      const __m512i targets[2][2] = {{_mm512_setzero_si512(), one}, {w0, w1}};
      for (int r = 0; r < 2; ++r) {
        const __m512 a = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, targets[r][0]), v);
        const __m512 b = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, targets[r][1]), v);
        float* d = row + r * W + 2 * ow;
        // 2k values per row: two stores of 16 lanes, whole where they stay inside the plane and run
        // only into cells written after them (zeros past 2k, v being 0 there: the AVX2 copy's rule),
        // else masked on the row's last vector
        if (k == 16 || ((r == 1 || ow == 0) && (2 * oh + r) * W + 2 * ow + 32 <= g.H * W)) {
          _mm512_storeu_ps(d, _mm512_permutex2var_ps(a, lo, b));
          _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(a, hi, b));
        } else {
          _mm512_mask_storeu_ps(d, pool_lanes16(2 * k), _mm512_permutex2var_ps(a, lo, b));
          _mm512_mask_storeu_ps(d + 16, pool_lanes16(2 * k - 16), _mm512_permutex2var_ps(a, hi, b));
        }
      }
    }
    for (int64_t c = 2 * OW; c < W; ++c) row[c] = row[W + c] = 0.0f;  // the column no window covers
  }
  for (int64_t i = 2 * g.OH * W; i < g.H * W; ++i) dx[i] = 0.0f;  // the row no window covers
  if (sum) *sum = _mm512_reduce_add_ps(total);
}

// The same with 8 windows a vector; a row's last vector is loaded and stored whole where that stays
// inside the plane and writes only cells written after it, else under lane masks (vmaskmov, slow on
// AMD: the writer took 1.4x the time on 15 x 15 planes when every row ended that way).
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
      // whole-vector loads where they stay inside the plane's windows (lanes from k on zeroed below)
      const bool whole_in = o + ow + 8 <= g.OH * OW;
      __m256 v = whole_in ? _mm256_loadu_ps(dy + o + ow) : _mm256_maskload_ps(dy + o + ow, m);
      if (relu_y) {
        const __m256 y = whole_in ? _mm256_loadu_ps(relu_y + o + ow) : _mm256_maskload_ps(relu_y + o + ow, m);
        __m256 on = _mm256_cmp_ps(y, zero, _CMP_GT_OQ);
        if (relu_cap > 0.0f) on = _mm256_and_ps(on, _mm256_cmp_ps(y, cap, _CMP_LT_OQ));
        v = _mm256_and_ps(on, v);
      }
      if (k < 8) v = _mm256_and_ps(_mm256_castsi256_ps(m), v);
      total = _mm256_add_ps(total, v);
      const __m256i first = _mm256_set1_epi32(static_cast<int32_t>(2 * oh * W + 2 * ow));
      const __m256i raw = whole_in ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(argmax + o + ow))
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
        // whole vectors where they stay inside the plane and run only into cells written after them
        // (they write zeros past 2k, v being 0 there): the bottom row's, or the top row's when it is
        // one vector (else its spill would reach the bottom row's vectors already written)
        if (k == 8 || ((r == 1 || ow == 0) && (2 * oh + r) * W + 2 * ow + 16 <= g.H * W)) {
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
