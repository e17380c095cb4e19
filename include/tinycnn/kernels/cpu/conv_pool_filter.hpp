#pragma once
// The weight gradient of a convolution followed by max pooling, from the pooled gradient directly.
//
// Why: the convolution's output gradient is zero except at each window's winner (argmax), so
//   dw[k, c, r, s] = sum over pooled cells (n, k, p) of gm * x[n, c, oh*sh + r - pad_top, ow*sw + s - pad_left]
// where (oh, ow) is p's winner in the convolution's output plane and gm its gradient (masked by the
// fused ReLU: 0 unless 0 < yp (< relu_cap)). The dense route writes the full-size output gradient
// (90 MB for the scene models' first layer at batch 32, 8 of every 9 values zero under a 3x3 pool)
// and runs the whole correlation over it; this one visits the winners only: C*R row segments of S
// values per winner. Where the convolution's input gradient is needed the dense gradient is built
// anyway, so the op (ops::conv2d_max_pool2d) takes this route only where it is not (a first layer).
// Any convolution and pooling geometry: overlapping windows whose winner is the same cell add up.
//
// Bitwise independent of the thread count: each sample's sum is formed whole by one thread, then
// the samples are added in order.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../../core/parallel.hpp"
#include "conv_geometry.hpp"
#include "cpu_features.hpp"
#include "im2col.hpp"
#include "pool.hpp"

#ifdef TINYCNN_HAVE_X86_TARGETS
#include <immintrin.h>
#endif

namespace tinycnn::kernels::cpu {

namespace conv_pool_filter_detail {

// One sample's input, zero-padded so every winner's window reads inside it, with kOver spare zero
// columns so an 8-wide load at a window's first column stays inside its row.
constexpr int64_t kOver = 8;
struct PaddedGeom {
  int64_t rows, cols;  // per channel plane
};
inline PaddedGeom padded_geom(const Conv2DGeom& g) {
  return {(g.OH - 1) * g.stride_h + g.R, (g.OW - 1) * g.stride_w + g.S + kOver};
}
//   x: [C, H, W] (one sample), xp: [C, rows, cols] (written)
template <class T>
void pad_sample(const T* x, const Conv2DGeom& g, const PaddedGeom& pd, T* xp) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < pd.rows; ++i) {
      T* row = xp + (c * pd.rows + i) * pd.cols;
      const int64_t h = i - g.pad_top;
      if (h < 0 || h >= g.H) {
        std::fill(row, row + pd.cols, T(0));
        continue;
      }
      const int64_t w0 = std::max<int64_t>(0, g.pad_left), w1 = std::min(pd.cols, g.W + g.pad_left);
      std::fill(row, row + w0, T(0));
      std::copy(x + (c * g.H + h) * g.W + (w0 - g.pad_left), x + (c * g.H + h) * g.W + (w1 - g.pad_left), row + w0);
      std::fill(row + w1, row + pd.cols, T(0));
    }
}

// Plain version (the reference, and the one for other element types and CPUs): one sample.
//   xp: [C, rows, cols] (pad_sample), dyp, yp, argmax: [K, PL] (this sample's), dws: [K, C, R, S]
//   (written), dbs: [K] (written) or nullptr
template <class T>
void sample_plain(const T* xp, const PaddedGeom& pd, const T* dyp, const T* yp, T relu_cap, const int32_t* argmax,
                  const Conv2DGeom& g, int64_t PL, T* dws, T* dbs) {
  const int64_t CRS = g.C * g.R * g.S;
  for (int64_t k = 0; k < g.K; ++k) {
    T* d = dws + k * CRS;
    std::fill(d, d + CRS, T(0));
    T bsum = T(0);
    for (int64_t p = 0; p < PL; ++p) {
      const int32_t a = argmax[k * PL + p];
      if (a < 0) continue;
      const T gm = detail::pool_masked_grad(dyp[k * PL + p], yp ? yp + k * PL : nullptr, p, relu_cap);
      bsum += gm;
      const T* base = xp + (a / g.OW) * g.stride_h * pd.cols + (a % g.OW) * g.stride_w;
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t r = 0; r < g.R; ++r) {
          const T* src = base + (c * pd.rows + r) * pd.cols;
          T* dst = d + (c * g.R + r) * g.S;
          for (int64_t s = 0; s < g.S; ++s) dst[s] += gm * src[s];
        }
    }
    if (dbs) dbs[k] = bsum;
  }
}

#ifdef TINYCNN_HAVE_X86_TARGETS
// Variant 2 (float, AVX2 + FMA, S <= 8): each of a winner's C*R row segments is one 8-wide load and
// one FMA into a register accumulator (lanes s >= S collect the padding's neighbours and are
// dropped), up to 12 segments per sweep over the winners (more take several sweeps).
template <int NSEG>
TINYCNN_TARGET_AVX2 void segments_avx2(const float* xp, const float* gms, const int32_t* offs, int64_t nw,
                                       const int64_t* seg_off, float* out /* [NSEG, 8] */) {
  __m256 acc[NSEG];
  for (int i = 0; i < NSEG; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t p = 0; p < nw; ++p) {
    const __m256 gv = _mm256_set1_ps(gms[p]);
    const float* base = xp + offs[p];
    for (int i = 0; i < NSEG; ++i) acc[i] = _mm256_fmadd_ps(gv, _mm256_loadu_ps(base + seg_off[i]), acc[i]);
  }
  for (int i = 0; i < NSEG; ++i) _mm256_storeu_ps(out + 8 * i, acc[i]);
}

// Variant 3 (AVX-512, also 8-wide segments): two winners per step into two sets of accumulators
// (variant 2's one set waits on the FMA latency: each of its chains gets one FMA per winner; the
// 32 registers hold both sets), added at the end.
template <int NSEG>
TINYCNN_TARGET_AVX512 void segments_avx512(const float* xp, const float* gms, const int32_t* offs, int64_t nw,
                                           const int64_t* seg_off, float* out /* [NSEG, 8] */) {
  __m256 acc0[NSEG], acc1[NSEG];
  for (int i = 0; i < NSEG; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 2 <= nw; p += 2) {
    const __m256 g0 = _mm256_set1_ps(gms[p]), g1 = _mm256_set1_ps(gms[p + 1]);
    const float *b0 = xp + offs[p], *b1 = xp + offs[p + 1];
    for (int i = 0; i < NSEG; ++i) {
      acc0[i] = _mm256_fmadd_ps(g0, _mm256_loadu_ps(b0 + seg_off[i]), acc0[i]);
      acc1[i] = _mm256_fmadd_ps(g1, _mm256_loadu_ps(b1 + seg_off[i]), acc1[i]);
    }
  }
  if (p < nw) {
    const __m256 g0 = _mm256_set1_ps(gms[p]);
    const float* b0 = xp + offs[p];
    for (int i = 0; i < NSEG; ++i) acc0[i] = _mm256_fmadd_ps(g0, _mm256_loadu_ps(b0 + seg_off[i]), acc0[i]);
  }
  for (int i = 0; i < NSEG; ++i) _mm256_storeu_ps(out + 8 * i, _mm256_add_ps(acc0[i], acc1[i]));
}

// Variant 3 (avx512) or 2 on nseg <= 12 segments.
inline void segments_n(bool avx512, int nseg, const float* xp, const float* gms, const int32_t* offs, int64_t nw,
                       const int64_t* seg_off, float* out) {
  switch (nseg) {
#define TINYCNN_SEG_CASE(n)                                                  \
  case n:                                                                    \
    return avx512 ? segments_avx512<n>(xp, gms, offs, nw, seg_off, out) \
                  : segments_avx2<n>(xp, gms, offs, nw, seg_off, out);
    TINYCNN_SEG_CASE(1) TINYCNN_SEG_CASE(2) TINYCNN_SEG_CASE(3) TINYCNN_SEG_CASE(4) TINYCNN_SEG_CASE(5)
    TINYCNN_SEG_CASE(6) TINYCNN_SEG_CASE(7) TINYCNN_SEG_CASE(8) TINYCNN_SEG_CASE(9) TINYCNN_SEG_CASE(10)
    TINYCNN_SEG_CASE(11) TINYCNN_SEG_CASE(12)
#undef TINYCNN_SEG_CASE
    default: break;
  }
}

// The winners of one output channel's PL cells that pass a gradient, in order: their masked
// gradient gms[i] and the offset offs[i] of their window in xp (woff of the winner's output cell);
// returns their count, bsum = the sum of the masked gradients. a, dk, yk (or null): the channel's
// argmax, pooled gradient and pooled values; cap: the ReLU's cap (infinity when none). gms, offs:
// PL + 16 each.
inline int64_t collect_scalar(const int32_t* a, const float* dk, const float* yk, float cap, const int32_t* woff,
                              int64_t p0, int64_t PL, float* gms, int32_t* offs, int64_t nw, float& bsum) {
  for (int64_t p = p0; p < PL; ++p) {
    // the conditions combined without short-circuits: selects, not branches on the ReLU's mask
    const float y = yk ? yk[p] : 1.0f;
    const int32_t ap = a[p];
    const int pass = int(ap >= 0) & int(y > 0.0f) & int(y < cap);
    const float gm = pass ? dk[p] : 0.0f;
    bsum += gm;
    gms[nw] = gm;
    offs[nw] = woff[ap & ~(ap >> 31)];  // woff[0] where ap < 0
    nw += pass;
  }
  return nw;
}
// 16 cells a time: compare masks, the window offsets computed (the row oh = a / OW from a float
// product, corrected by one where it rounded across a row), the winners compress-stored. Where the
// offsets came from woff by a gather, or from woff in the segments' loop, it took 1.1-1.16x the time.
// ow_step = g.stride_w, oh_step = g.stride_h * pd.cols.
TINYCNN_TARGET_AVX512 inline int64_t collect_avx512(const int32_t* a, const float* dk, const float* yk, float cap,
                                                    int32_t OW, int32_t ow_step, int32_t oh_step,
                                                    const int32_t* woff, int64_t PL, float* gms, int32_t* offs,
                                                    float& bsum) {
  const __m512 zero = _mm512_setzero_ps(), capv = _mm512_set1_ps(cap), inv_ow = _mm512_set1_ps(1.0f / float(OW));
  const __m512i zi = _mm512_setzero_si512(), one = _mm512_set1_epi32(1), owv = _mm512_set1_epi32(OW),
                ohs = _mm512_set1_epi32(oh_step), ows = _mm512_set1_epi32(ow_step);
  __m512 bs = zero;
  int64_t nw = 0, p = 0;
  for (; p + 16 <= PL; p += 16) {
    const __m512i av = _mm512_loadu_si512(a + p);
    __mmask16 m = _mm512_cmpge_epi32_mask(av, _mm512_setzero_si512());
    if (yk) {
      const __m512 y = _mm512_loadu_ps(yk + p);
      m &= _mm512_cmp_ps_mask(y, zero, _CMP_GT_OQ) & _mm512_cmp_ps_mask(y, capv, _CMP_LT_OQ);
    }
    const __m512 gm = _mm512_maskz_loadu_ps(m, dk + p);
    bs = _mm512_add_ps(bs, gm);
    // (the masked forms: GCC 12's plain ones warn of an uninitialised operand)
    __m512i oh = _mm512_maskz_cvttps_epi32(0xFFFF, _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, av), inv_ow));
    __m512i ow = _mm512_sub_epi32(av, _mm512_mullo_epi32(oh, owv));
    const __mmask16 under = _mm512_cmplt_epi32_mask(ow, zi), over = _mm512_cmpge_epi32_mask(ow, owv);
    oh = _mm512_mask_add_epi32(_mm512_mask_sub_epi32(oh, under, oh, one), over, oh, one);
    ow = _mm512_mask_sub_epi32(_mm512_mask_add_epi32(ow, under, ow, owv), over, ow, owv);
    const __m512i off = _mm512_add_epi32(_mm512_mullo_epi32(oh, ohs), _mm512_mullo_epi32(ow, ows));
    _mm512_storeu_ps(gms + nw, _mm512_maskz_compress_ps(m, gm));
    _mm512_storeu_si512(offs + nw, _mm512_maskz_compress_epi32(m, off));
    nw += _mm_popcnt_u32(m);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, bs);
  bsum = 0.0f;
  for (float v : lanes) bsum += v;
  return collect_scalar(a, dk, yk, cap, woff, p, PL, gms, offs, nw, bsum);
}

// AVX2 has no compress store: lane indices of the set bits of an 8-bit mask, packed in order into
// the low bytes of kCompressLanes[mask] (the rest 0), widened and applied by a permute.
struct CompressLanes {
  uint64_t lanes[256];
  constexpr CompressLanes() : lanes() {
    for (int m = 0; m < 256; ++m) {
      int n = 0;
      for (int l = 0; l < 8; ++l)
        if (m >> l & 1) lanes[m] |= uint64_t(l) << (8 * n++);
    }
  }
};
inline constexpr CompressLanes kCompressLanes{};

// collect_avx512 with 8 cells a time (the window offsets the same way, the compress by a permute).
// The scalar collect took 61% of the AVX2 variant's time on model2's first layer (about 10 cycles a
// cell, 4.4x its segments); with this one the variant took 3.4 instead of 10.8 ms there (batch 32,
// 2 threads), 1.05x the AVX-512 variant's time (docs/performance.md, forty-seventh session).
TINYCNN_TARGET_AVX2 inline int64_t collect_avx2(const int32_t* a, const float* dk, const float* yk, float cap,
                                                int32_t OW, int32_t ow_step, int32_t oh_step, const int32_t* woff,
                                                int64_t PL, float* gms, int32_t* offs, float& bsum) {
  const __m256 zero = _mm256_setzero_ps(), capv = _mm256_set1_ps(cap), inv_ow = _mm256_set1_ps(1.0f / float(OW));
  const __m256i minus1 = _mm256_set1_epi32(-1), owv = _mm256_set1_epi32(OW), ohs = _mm256_set1_epi32(oh_step),
                ows = _mm256_set1_epi32(ow_step);
  __m256 bs = zero;
  int64_t nw = 0, p = 0;
  for (; p + 8 <= PL; p += 8) {
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + p));
    __m256 m = _mm256_castsi256_ps(_mm256_cmpgt_epi32(av, minus1));
    if (yk) {
      const __m256 y = _mm256_loadu_ps(yk + p);
      m = _mm256_and_ps(m, _mm256_and_ps(_mm256_cmp_ps(y, zero, _CMP_GT_OQ), _mm256_cmp_ps(y, capv, _CMP_LT_OQ)));
    }
    const __m256 gm = _mm256_and_ps(m, _mm256_loadu_ps(dk + p));
    bs = _mm256_add_ps(bs, gm);
    // oh = a / OW from a float product, then corrected by one where it rounded across a row
    __m256i oh = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(av), inv_ow));
    __m256i ow = _mm256_sub_epi32(av, _mm256_mullo_epi32(oh, owv));
    const __m256i under = _mm256_cmpgt_epi32(_mm256_setzero_si256(), ow);  // -1 where ow < 0
    const __m256i over = _mm256_cmpgt_epi32(ow, _mm256_sub_epi32(owv, _mm256_set1_epi32(1)));  // ow >= OW
    oh = _mm256_sub_epi32(_mm256_add_epi32(oh, under), over);  // -1 / +1
    ow = _mm256_add_epi32(_mm256_sub_epi32(ow, _mm256_and_si256(over, owv)), _mm256_and_si256(under, owv));
    const __m256i off = _mm256_add_epi32(_mm256_mullo_epi32(oh, ohs), _mm256_mullo_epi32(ow, ows));
    const int bits = _mm256_movemask_ps(m);
    const __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(kCompressLanes.lanes[bits])));
    _mm256_storeu_ps(gms + nw, _mm256_permutevar8x32_ps(gm, perm));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(offs + nw), _mm256_permutevar8x32_epi32(off, perm));
    nw += __builtin_popcount(static_cast<unsigned>(bits));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, bs);
  bsum = 0.0f;
  for (float v : lanes) bsum += v;
  return collect_scalar(a, dk, yk, cap, woff, p, PL, gms, offs, nw, bsum);
}

// One sample, as sample_plain (float, S <= 8), with variant 2 (avx512 false) or 3, one output
// channel at a time over the whole sample. (Bands of pooled rows with every channel's winners in one
// band before the next, so the band's input rows stay in L1, took 1.16-1.24x the time on model3's and
// model004's first layers: each band's short sweeps cost more than the L2 reads they save.)
// gms, offs: scratch of PL + 16 each; woff: [OH * OW], the offset in xp of the window at each
// output cell.
inline void sample_fast(bool avx512, const float* xp, const PaddedGeom& pd, const float* dyp, const float* yp,
                        float relu_cap, const int32_t* argmax, const Conv2DGeom& g, int64_t PL, float* dws,
                        float* dbs, float* gms, int32_t* offs, const int32_t* woff) {
  const int64_t CR = g.C * g.R, CRS = CR * g.S;
  alignas(32) float out[12 * 8];
  int64_t seg_off[12];  // of the sweep's segments (c, r) in a window
  const float cap = relu_cap > 0.0f ? relu_cap : std::numeric_limits<float>::infinity();
  for (int64_t k = 0; k < g.K; ++k) {
    const int32_t* a = argmax + k * PL;
    const float* dk = dyp + k * PL;
    const float* yk = yp ? yp + k * PL : nullptr;
    float bsum = 0.0f;
    const int32_t OW = static_cast<int32_t>(g.OW), ow_step = static_cast<int32_t>(g.stride_w),
                  oh_step = static_cast<int32_t>(g.stride_h * pd.cols);
    const int64_t nw = avx512 ? collect_avx512(a, dk, yk, cap, OW, ow_step, oh_step, woff, PL, gms, offs, bsum)
                              : collect_avx2(a, dk, yk, cap, OW, ow_step, oh_step, woff, PL, gms, offs, bsum);
    if (dbs) dbs[k] = bsum;
    float* d = dws + k * CRS;
    for (int64_t i0 = 0; i0 < CR; i0 += 12) {
      const int n = static_cast<int>(std::min<int64_t>(12, CR - i0));
      for (int i = 0; i < n; ++i) seg_off[i] = ((i0 + i) / g.R * pd.rows + (i0 + i) % g.R) * pd.cols;
      segments_n(avx512, n, xp, gms, offs, nw, seg_off, out);
      for (int i = 0; i < n; ++i) std::copy(out + 8 * i, out + 8 * i + g.S, d + (i0 + i) * g.S);
    }
  }
}
#endif

}  // namespace conv_pool_filter_detail

// Whether conv2d_max_pool_backward_filter pays over the dense route for the convolution g pooled by
// pg (where the input's gradient is not needed): each winner's C*R segments in one sweep (at most 12
// registers), S <= 8, and pooling strides that leave at most one winner in 4 cells. Measured on the
// scene models' first layers (3 -> 32 channels, 150x150, batch 32, Zen 4; docs/performance.md,
// fortieth session), time against the dense route's: under a 3x3 pool 0.35x (AVX-512), under a 2x2
// pool 0.82x (AVX-512). The AVX2 variant, with a scalar collect then (1.42x under a 2x2 pool), was
// limited to 3x3 pools until it collected 8 cells a time (collect_avx2; forty-seventh session, under
// TINYCNN_MAX_ISA=avx2): model004's first layer under its 2x2 pool 10.6-10.9 -> 7.9-8.2 ms in the
// model's step, model3's under 3x3 6.7-7.0 -> 4.3 ms. Without AVX2 only the plain version runs
// (2.8-7x the dense route's time here), so never. Measured in float; double (gradient checks) takes
// the same route.
inline bool conv2d_max_pool_filter_pays(const Conv2DGeom& g, const Conv2DGeom& pg) {
  const int64_t area = pg.stride_h * pg.stride_w;
  return cpu_features().avx2_fma && g.C * g.R <= 12 && g.S <= 8 && area >= 4;
}

// dw += the weight gradient, db += the bias gradient of the convolution g whose output, through a
// ReLU (when relu_y is given: capped at relu_cap when that is > 0), was max-pooled by pg.
//   x: [N, C, H, W], dyp: [N, K, pg.OH, pg.OW] (the pooled output's gradient),
//   argmax: [N, K, pg.OH, pg.OW] (index of each window's winner in its OH x OW plane, < 0: none),
//   relu_y: [N, K, pg.OH, pg.OW] (the pooled values) or nullptr, dw: [K, C, R, S] (+=), db: [K] (+=) or
//   nullptr; variant: 0 the fastest this CPU runs, 1 the plain reference, 2 AVX2, 3 AVX-512 (where the
//   CPU lacks one, the next slower; tests and benchmarks compare them).
template <class T>
void conv2d_max_pool_backward_filter(const T* x, const T* dyp, const int32_t* argmax, const T* relu_y, T relu_cap,
                                     const Conv2DGeom& g, const Conv2DGeom& pg, T* dw, T* db, int variant = 0) {
  check_pools_conv_output("conv2d_max_pool_backward_filter", g, pg);
  namespace d = conv_pool_filter_detail;
  const d::PaddedGeom pd = d::padded_geom(g);
  const int64_t PL = pg.OH * pg.OW, CRS = g.C * g.R * g.S, xs = g.C * g.H * g.W, ps = g.K * PL;
  // per sample: dw, then db (the calling thread's scratch; the threads' own below use other slots or
  // types, so the calling thread's share of them does not overlap it)
  T* part = detail::conv_scratch<T, 2>(g.N * (CRS + 1) * g.K);
  bool fast = false, avx512 = false;
#ifdef TINYCNN_HAVE_X86_TARGETS
  if constexpr (std::is_same_v<T, float>) {
    fast = variant != 1 && g.S <= 8 && g.C * pd.rows * pd.cols < (int64_t(1) << 31) && cpu_features().avx2_fma;
    avx512 = fast && variant != 2 && cpu_features().avx512;
  }
#endif
  // each output cell's window offset in the padded sample (a division per winner cost as much as its FMAs)
  int32_t* woff = fast ? detail::conv_scratch<int32_t, 2>(g.OH * g.OW) : nullptr;
  for (int64_t i = 0; fast && i < g.OH * g.OW; ++i)
    woff[i] = static_cast<int32_t>((i / g.OW) * g.stride_h * pd.cols + (i % g.OW) * g.stride_w);
  const bool par = g.N > 1 && g.N * g.K * PL * g.C * g.R > kParallelMinWork;
#pragma omp parallel if (par)
  {
    // per-thread scratch that only grows: nothing is allocated once warm
    T* xp = detail::conv_scratch<T, 0>(g.C * pd.rows * pd.cols);
    T* gms = fast ? detail::conv_scratch<T, 1>(PL + 16) : nullptr;
    int32_t* offs = fast ? detail::conv_scratch<int32_t, 1>(PL + 16) : nullptr;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      d::pad_sample(x + n * xs, g, pd, xp);
      T* dws = part + n * (CRS + 1) * g.K;
      T* dbs = db ? dws + CRS * g.K : nullptr;
      const T* yn = relu_y ? relu_y + n * ps : nullptr;
#ifdef TINYCNN_HAVE_X86_TARGETS
      if constexpr (std::is_same_v<T, float>)
        if (fast) {
          d::sample_fast(avx512, xp, pd, dyp + n * ps, yn, relu_cap, argmax + n * ps, g, PL, dws, dbs, gms, offs,
                         woff);
          continue;
        }
#endif
      d::sample_plain(xp, pd, dyp + n * ps, yn, relu_cap, argmax + n * ps, g, PL, dws, dbs);
    }
  }
  for (int64_t n = 0; n < g.N; ++n) {  // in sample order, whatever the threads
    const T* dws = part + n * (CRS + 1) * g.K;
    for (int64_t i = 0; i < CRS * g.K; ++i) dw[i] += dws[i];
    if (db)
      for (int64_t k = 0; k < g.K; ++k) db[k] += dws[CRS * g.K + k];
  }
}

}  // namespace tinycnn::kernels::cpu
