#pragma once
// The register blocks of the direct few-channel passes (conv_fewc.hpp) with 16-float AVX-512 vectors
// (variant 2; conv_fewc.hpp's AVX2 blocks are variant 1, and both are checked against the direct
// convolution in tests/test_conv.cpp). Why a second width, not just wider vectors: with 8-float
// vectors the AVX2 blocks (12 and 9 accumulators) lost to im2col + the AVX-512 GEMM on AVX-512 CPUs
// (docs/performance.md, twenty-second session), and with 32 zmm registers the blocks can hold 24
// accumulators, so each loaded vector feeds more multiply-adds:
//   - forward: 8 output channels x 3 vectors (48 columns) of one output row; per tap 3 image loads
//     and 8 broadcast weights for 24 FMAs;
//   - weight gradient: 4 output channels x up to 6 taps (any taps of the C*R*S list, so a 3x3 window
//     of 3 channels is 4 blocks of 6 and one of 3); per 16 columns 4 dY loads and 6 image loads for
//     24 FMAs, summed over a band of rows and added per lane into a [K, C*R*S, 16] sum.
// A row's last vector is masked (the forward's stores; the gradient's dY and image loads, so that
// columns past the output add nothing even where the image holds an infinity).
// Layouts are conv_fewc.hpp's: xp is pad_rows' padded copy of a band's image rows, off[t] the offset
// of tap t = (c*R + r)*S + s in it.
#include <algorithm>
#include <cstdint>

#include "conv_geometry.hpp"
#include "cpu_features.hpp"

#if defined(TINYCNN_HAVE_X86_TARGETS)
#include <immintrin.h>

namespace tinycnn::kernels::cpu::fewc_detail {

constexpr int VW16 = 16;           // floats per zmm
constexpr int KB16 = 8, U16 = 3;   // forward block: 8 output channels x 3 vectors
constexpr int COLS16 = U16 * VW16;  // output columns per forward block
constexpr int KF16 = 4, TF16 = 6;  // weight-gradient block: 4 output channels x 6 taps

// Lanes [0, n) set (n in 0..16).
TINYCNN_TARGET_AVX512 inline __mmask16 lanes16(int64_t n) {
  return n >= VW16 ? __mmask16(0xFFFF) : __mmask16((1u << std::max<int64_t>(n, 0)) - 1u);
}

// One forward block: output channels [k0, k0 + kn) (kn <= 8) of one output row, columns [ow0, ow0 +
// NU*16) computed and the first ncols of them stored.
//   base: xp at (the row's first image row, column ow0); off: [CRS] tap offsets in xp;
//   wt: [CRS, 8] the block's weights (pack_weights with kb = 8); b: [K] or nullptr;
//   out: y at (channel k0, the row, column ow0), channels plane elements apart
template <int NU>
TINYCNN_TARGET_AVX512 void forward_block16(const float* base, const int64_t* off, int64_t CRS, const float* wt,
                                           const float* b, int64_t k0, int64_t kn, int64_t plane, int64_t ncols,
                                           float* out, bool relu, float relu_max) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 acc[KB16][NU];
#pragma GCC unroll 8
  for (int kk = 0; kk < KB16; ++kk)
#pragma GCC unroll 4
    for (int u = 0; u < NU; ++u) acc[kk][u] = zero;
  for (int64_t t = 0; t < CRS; ++t, wt += KB16) {
    const float* p = base + off[t];
    __m512 xv[NU];
#pragma GCC unroll 4
    for (int u = 0; u < NU; ++u) xv[u] = _mm512_loadu_ps(p + u * VW16);
#pragma GCC unroll 8
    for (int kk = 0; kk < KB16; ++kk) {
      const __m512 wv = _mm512_set1_ps(wt[kk]);
#pragma GCC unroll 4
      for (int u = 0; u < NU; ++u) acc[kk][u] = _mm512_fmadd_ps(wv, xv[u], acc[kk][u]);
    }
  }
  const __m512 cap = _mm512_set1_ps(relu_max);
#pragma GCC unroll 8
  for (int kk = 0; kk < KB16; ++kk) {  // constant bounds: acc stays in registers
    if (kk >= kn) break;
    const __m512 bv = _mm512_set1_ps(b ? b[k0 + kk] : 0.0f);
    float* o = out + kk * plane;
#pragma GCC unroll 4
    for (int u = 0; u < NU; ++u) {
      __m512 v = _mm512_add_ps(acc[kk][u], bv);
      if (relu) {
        v = _mm512_max_ps(v, zero);
        if (relu_max > 0.0f) v = _mm512_min_ps(v, cap);
      }
      _mm512_mask_storeu_ps(o + u * VW16, lanes16(ncols - u * VW16), v);
    }
  }
}

// One weight-gradient block: acc[kk, j, lane] += sum over output rows oh in [oh0, oh1) and columns
// ow = 16 v + lane of dY[k0 + kk, oh, ow] * (image at tap j of the block, row oh, column ow).
//   xr0: xp at output row oh0's first image row; row_step: xp elements from one output row to the next;
//   off: [NT] the block's tap offsets; dyn: [K, OH, OW] (one sample); kn <= 4 channels (the rest
//   repeat the last one, unused); acc: [kn, CRS, 16] at the block's first tap (+=)
template <int NT>
TINYCNN_TARGET_AVX512 void filter_block16(const float* xr0, int64_t row_step, const int64_t* off, const float* dyn,
                                          const Conv2DGeom& g, int64_t k0, int64_t kn, int64_t oh0, int64_t oh1,
                                          int64_t CRS, float* acc) {
  const int64_t nv = (g.OW + VW16 - 1) / VW16;
  const __mmask16 last = lanes16(g.OW - (nv - 1) * VW16);
  const __m512 zero = _mm512_setzero_ps();
  __m512 a[KF16][NT];
#pragma GCC unroll 4
  for (int kk = 0; kk < KF16; ++kk)
#pragma GCC unroll 6
    for (int j = 0; j < NT; ++j) a[kk][j] = zero;
  int64_t o[NT];
#pragma GCC unroll 6
  for (int j = 0; j < NT; ++j) o[j] = off[j];
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const float* xr = xr0 + (oh - oh0) * row_step;
    const float* dr[KF16];
#pragma GCC unroll 4
    for (int kk = 0; kk < KF16; ++kk) dr[kk] = dyn + ((k0 + std::min<int64_t>(kk, kn - 1)) * g.OH + oh) * g.OW;
    // 16 columns at a time, the last vector masked (a masked load costs what a plain one does; no
    // lambda: it would not inherit this function's target)
    for (int64_t v = 0; v < nv; ++v) {
      const __mmask16 m = v + 1 < nv ? __mmask16(0xFFFF) : last;
      const int64_t c = v * VW16;
      __m512 d[KF16];
#pragma GCC unroll 4
      for (int kk = 0; kk < KF16; ++kk) d[kk] = _mm512_maskz_loadu_ps(m, dr[kk] + c);
#pragma GCC unroll 6
      for (int j = 0; j < NT; ++j) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, xr + o[j] + c);
#pragma GCC unroll 4
        for (int kk = 0; kk < KF16; ++kk) a[kk][j] = _mm512_fmadd_ps(d[kk], xv, a[kk][j]);
      }
    }
  }
#pragma GCC unroll 4
  for (int kk = 0; kk < KF16; ++kk) {
    if (kk >= kn) break;
#pragma GCC unroll 6
    for (int j = 0; j < NT; ++j) {
      float* p = acc + (kk * CRS + j) * VW16;
      _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), a[kk][j]));
    }
  }
}

// All of a band's gradient blocks: acc[k, t, lane] += the band's partial sums for every channel k and
// tap t (acc: [K, CRS, 16]); off: [CRS] tap offsets (xr0, row_step as filter_block16's).
inline void filter_band16(const float* xr0, int64_t row_step, const int64_t* off, const float* dyn,
                          const Conv2DGeom& g, int64_t oh0, int64_t oh1, float* acc) {
  const int64_t CRS = g.C * g.R * g.S;
  for (int64_t k0 = 0; k0 < g.K; k0 += KF16) {
    const int64_t kn = std::min<int64_t>(KF16, g.K - k0);
    for (int64_t t0 = 0; t0 < CRS; t0 += TF16) {
      float* at = acc + (k0 * CRS + t0) * VW16;
      switch (std::min<int64_t>(TF16, CRS - t0)) {
        case 6: filter_block16<6>(xr0, row_step, off + t0, dyn, g, k0, kn, oh0, oh1, CRS, at); break;
        case 5: filter_block16<5>(xr0, row_step, off + t0, dyn, g, k0, kn, oh0, oh1, CRS, at); break;
        case 4: filter_block16<4>(xr0, row_step, off + t0, dyn, g, k0, kn, oh0, oh1, CRS, at); break;
        case 3: filter_block16<3>(xr0, row_step, off + t0, dyn, g, k0, kn, oh0, oh1, CRS, at); break;
        case 2: filter_block16<2>(xr0, row_step, off + t0, dyn, g, k0, kn, oh0, oh1, CRS, at); break;
        default: filter_block16<1>(xr0, row_step, off + t0, dyn, g, k0, kn, oh0, oh1, CRS, at); break;
      }
    }
  }
}

}  // namespace tinycnn::kernels::cpu::fewc_detail
#endif
