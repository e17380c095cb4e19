#pragma once
// Direct convolution for layers with few input channels (a network's first layer: 3 colour channels,
// C*R*S = 27 for a 3x3 window), strides 1 or 2, float, AVX2 + FMA: the forward and weight-gradient passes.
// Why: im2col + GEMM moves a column matrix 9x the image (27 rows x OH*OW per sample) for a reduction
// of only 27, so the GEMM's packing and the copies cost as much as the multiply-adds: conv1 of the
// scene models (3 -> 32 channels at 150x150) ran at ~59 GFLOP/s in both passes where the 3x3 layers
// after it run at 150-190 (docs/performance.md, nineteenth session). Here a few rows of the image are
// copied once, zero-padded, into a per-thread buffer that stays in L1/L2, and
//   - forward: each output row is computed in register blocks of 4 output channels x 24 columns
//     (12 ymm accumulators; per tap 3 loads of the image row, 4 broadcast weights, 12 FMAs);
//   - weight gradient: for 3 output channels and one image row (c, r), the 3 horizontal taps are
//     accumulated over a band of output rows in 9 ymm accumulators (per 8 columns 3 dY loads, 3
//     image loads, 9 FMAs) and added per lane into a per-thread [K, C*R*S, 8] sum.
// On AVX-512 CPUs the blocks of conv_fewc_avx512.hpp take 16-float vectors and 24 accumulators
// (fewc_width). The column matrix is never formed. Results equal the reference (conv_direct.hpp)
// within rounding: FMA and a different summation order. conv2d.hpp chooses these passes
// (ConvOptions::Algo).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "../../core/parallel.hpp"
#include "conv_fewc_avx512.hpp"
#include "conv_geometry.hpp"
#include "conv_sink.hpp"
#include "cpu_features.hpp"
#include "im2col.hpp"

#if defined(TINYCNN_HAVE_X86_TARGETS)
#include <immintrin.h>
#define TINYCNN_HAVE_FEWC 1
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinycnn::kernels::cpu {

// Largest C*R*S the direct passes take (beyond it the image rows of a band stop fitting in L1 and
// im2col's GEMM has a real reduction).
constexpr int64_t kFewChannelMaxTaps = 64;

// Whether the direct few-channel passes can compute g (any padding and window; strides 1 or 2).
inline bool conv_fewc_applies(const Conv2DGeom& g) {
  return (g.stride_h == 1 || g.stride_h == 2) && (g.stride_w == 1 || g.stride_w == 2) &&
         g.C * g.R * g.S <= kFewChannelMaxTaps && g.OH > 0 && g.OW > 0;
}

// Whether this CPU runs them (AVX2 + FMA).
inline bool conv_fewc_available() {
#ifdef TINYCNN_HAVE_FEWC
  return cpu_features().avx2_fma;
#else
  return false;
#endif
}

// The vector width (floats) the passes use for `width` (0: the widest this CPU runs, 16 with AVX-512
// else 8; 8 or 16: that one, for benchmarks and tests), or 0 where this CPU cannot run it.
inline int fewc_width(int width = 0) {
#ifdef TINYCNN_HAVE_FEWC
  const auto& f = cpu_features();
  if (width == 0) return f.avx512 ? 16 : f.avx2_fma ? 8 : 0;
  if (width == 16) return f.avx512 ? 16 : 0;
  if (width == 8) return f.avx2_fma ? 8 : 0;
#else
  (void)width;
#endif
  return 0;
}

#ifdef TINYCNN_HAVE_FEWC
namespace fewc_detail {

constexpr int VW = 8;             // floats per ymm
constexpr int KB = 4, U = 3;      // forward register block: 4 output channels x 3 vectors
constexpr int COLS = U * VW;      // output columns per forward block
constexpr int KF = 3, SF = 3;     // weight-gradient block: 3 output channels x 3 horizontal taps
constexpr int64_t kBandRows = 16;  // output rows per work item

// The padded copy of an image row is stride_w phase rows of wp columns each: phase p holds the padded
// columns p, p + sw, p + 2 sw, ..., so that tap s of output columns ow, ow + 1, ... reads phase s % sw
// from column ow + s / sw on, contiguously (for stride 2 the even and odd columns are split once here
// instead of being gathered by every tap). wp: every block's loads stay inside a phase row (forward
// blocks of cols columns (COLS or COLS16), gradient vectors within them, shifted by up to (S - 1) / sw).
inline int64_t padded_width(const Conv2DGeom& g, int64_t cols) {
  return (g.OW + cols - 1) / cols * cols + (g.S - 1) / g.stride_w;
}

// off[t]: the offset of tap t = (c*R + r)*S + s in a band's xp (row c*nrows + r, phase s % sw, column
// s / sw).
inline void tap_offsets(const Conv2DGeom& g, int64_t nrows, int64_t wp, int64_t* off) {
  const int64_t sw = g.stride_w;
  for (int64_t c = 0, t = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) off[t++] = ((c * nrows + r) * sw + s % sw) * wp + s / sw;
}

// xp[c, j, p, q] = padded row ih0 + j of channel c at column q * sw + p, where the padded row holds
// xn[c, ih, iw] at column pad_left + iw and zeros elsewhere (also for rows outside the image).
//   xn: [C, H, W] (one sample), xp: [C, nrows, sw, wp] (written)
inline void pad_rows(const float* xn, const Conv2DGeom& g, int64_t ih0, int64_t nrows, int64_t wp, float* xp) {
  const int64_t sw = g.stride_w;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t j = 0; j < nrows; ++j) {
      float* d = xp + (c * nrows + j) * sw * wp;
      const int64_t ih = ih0 + j;
      if (ih < 0 || ih >= g.H) {
        std::fill(d, d + sw * wp, 0.0f);
        continue;
      }
      const float* src = xn + (c * g.H + ih) * g.W;
      if (sw == 1) {
        std::fill(d, d + g.pad_left, 0.0f);
        std::memcpy(d + g.pad_left, src, static_cast<size_t>(g.W) * sizeof(float));
        std::fill(d + g.pad_left + g.W, d + wp, 0.0f);
        continue;
      }
      for (int64_t p = 0; p < 2; ++p) {  // sw == 2: phase p takes image columns iw = 2 q + p - pad_left
        float* dp = d + p * wp;
        const int64_t q0 = std::min(wp, std::max<int64_t>(0, (g.pad_left - p + 1) / 2));  // first iw >= 0
        const int64_t q1 = std::max(q0, std::min(wp, (g.W + g.pad_left - p + 1) / 2));   // first iw >= W
        std::fill(dp, dp + q0, 0.0f);
        const float* s2 = src + p - g.pad_left;
        for (int64_t q = q0; q < q1; ++q) dp[q] = s2[2 * q];  // a constant stride: vectorised
        std::fill(dp + q1, dp + wp, 0.0f);
      }
    }
}

// wk[b, t, kk] = w[b*kb + kk, t] (t = (c*R + r)*S + s), zero for channels past K: one block's kb (KB
// or KB16) weights of a tap side by side.
//   w: [K, C*R*S], wk: [ceil(K / kb), C*R*S, kb] (written)
inline void pack_weights(const float* w, int64_t K, int64_t CRS, int64_t kb, float* wk) {
  const int64_t nkb = (K + kb - 1) / kb;
  for (int64_t bi = 0; bi < nkb; ++bi)
    for (int64_t t = 0; t < CRS; ++t)
      for (int64_t kk = 0; kk < kb; ++kk) {
        const int64_t k = bi * kb + kk;
        wk[(bi * CRS + t) * kb + kk] = k < K ? w[k * CRS + t] : 0.0f;
      }
}

// One register block of the forward: output channels [k0, k0 + kn) (kn <= KB) of output row oh,
// columns [ow0, ow0 + NU*8) computed and the first ncols of them stored. NU = 3 for the row's body, 1 or
// 2 for its last columns (a 150-column row is 6 blocks of 24 and one of 8, not 7 of 24).
//   base: xp at (row oh - oh0, column ow0); off: the taps' offsets in xp; wt: the block's packed weights
template <int NU>
TINYCNN_TARGET_AVX2 void forward_block(const float* base, const int64_t* off, int64_t CRS, const float* wt,
                                       const float* b, int64_t k0, int64_t kn, int64_t plane, int64_t ncols,
                                       float* out, bool relu, float relu_max) {
  const __m256 zero = _mm256_setzero_ps();
  __m256 acc[KB][NU];
#pragma GCC unroll 4
  for (int kk = 0; kk < KB; ++kk)
#pragma GCC unroll 4
    for (int u = 0; u < NU; ++u) acc[kk][u] = zero;
  // One flat loop over the taps (offsets precomputed): with the c, r, s loops nested GCC kept the
  // accumulators on the stack.
  for (int64_t t = 0; t < CRS; ++t, wt += KB) {
    const float* p = base + off[t];
    __m256 xv[NU];
#pragma GCC unroll 4
    for (int u = 0; u < NU; ++u) xv[u] = _mm256_loadu_ps(p + u * VW);
#pragma GCC unroll 4
    for (int kk = 0; kk < KB; ++kk) {
      const __m256 wv = _mm256_broadcast_ss(wt + kk);
#pragma GCC unroll 4
      for (int u = 0; u < NU; ++u) acc[kk][u] = _mm256_fmadd_ps(wv, xv[u], acc[kk][u]);
    }
  }
  const __m256 cap = _mm256_set1_ps(relu_max);
#pragma GCC unroll 4
  for (int kk = 0; kk < KB; ++kk) {  // constant bounds: acc stays in registers (no runtime index)
    if (kk >= kn) break;
    const __m256 bv = _mm256_set1_ps(b ? b[k0 + kk] : 0.0f);
    float* o = out + kk * plane;
    alignas(32) float tmp[NU * VW];
#pragma GCC unroll 4
    for (int u = 0; u < NU; ++u) {
      __m256 v = _mm256_add_ps(acc[kk][u], bv);
      if (relu) {
        v = _mm256_max_ps(v, zero);
        if (relu_max > 0.0f) v = _mm256_min_ps(v, cap);
      }
      if (ncols == NU * VW)
        _mm256_storeu_ps(o + u * VW, v);
      else
        _mm256_store_ps(tmp + u * VW, v);
    }
    if (ncols < NU * VW) std::memcpy(o, tmp, static_cast<size_t>(ncols) * sizeof(float));
  }
}

// Output rows [oh0, oh1) of one sample, all channels, in blocks of 4 channels x 8-float vectors
// (forward_block) or, wide, 8 channels x 16-float vectors (forward_block16).
//   xp: [C, nrows, sw, wp] (pad_rows from ih0 = oh0 * stride_h - pad_top, wp = padded_width with the
//   block's columns), wk: pack_weights with the block's channels, b: [K] or nullptr,
//   yn: [K, OH, OW] (rows written)
template <bool wide>
void forward_band(const float* xp, int64_t nrows, int64_t wp, const float* wk, const float* b, const Conv2DGeom& g,
                  int64_t oh0, int64_t oh1, float* yn, bool relu, float relu_max) {
  constexpr int kb = wide ? KB16 : KB, vw = wide ? VW16 : VW, cols = wide ? COLS16 : COLS;
  const int64_t CRS = g.C * g.R * g.S, nkb = (g.K + kb - 1) / kb, plane = g.OH * g.OW;
  int64_t off[kFewChannelMaxTaps];
  tap_offsets(g, nrows, wp, off);
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t bi = 0; bi < nkb; ++bi) {
      const int64_t k0 = bi * kb, kn = std::min<int64_t>(kb, g.K - k0);
      const float* wt = wk + bi * CRS * kb;
      const float* base = xp + (oh - oh0) * g.stride_h * g.stride_w * wp;
      float* out = yn + k0 * plane + oh * g.OW;
      for (int64_t ow0 = 0; ow0 < g.OW;) {
        const int64_t left = g.OW - ow0, nu = left > 2 * vw ? 3 : left > vw ? 2 : 1;
        const int64_t n = std::min<int64_t>(left, nu * vw);
        if constexpr (wide) {
          if (nu == 3) forward_block16<3>(base + ow0, off, CRS, wt, b, k0, kn, plane, n, out + ow0, relu, relu_max);
          else if (nu == 2) forward_block16<2>(base + ow0, off, CRS, wt, b, k0, kn, plane, n, out + ow0, relu, relu_max);
          else forward_block16<1>(base + ow0, off, CRS, wt, b, k0, kn, plane, n, out + ow0, relu, relu_max);
        } else {
          if (nu == 3) forward_block<3>(base + ow0, off, CRS, wt, b, k0, kn, plane, n, out + ow0, relu, relu_max);
          else if (nu == 2) forward_block<2>(base + ow0, off, CRS, wt, b, k0, kn, plane, n, out + ow0, relu, relu_max);
          else forward_block<1>(base + ow0, off, CRS, wt, b, k0, kn, plane, n, out + ow0, relu, relu_max);
        }
        ow0 += nu * vw;
      }
    }
  static_assert(cols == 3 * vw, "forward blocks are 3 vectors");
}

// acc[k, t, lane] += partial sums of dW[k, t] over output rows [oh0, oh1) of one sample (t = (c*R +
// r)*S + s; lane l sums the columns ow = l mod 8).
//   xp: [C, nrows, sw, wp] (pad_rows from ih0 = oh0 * stride_h - pad_top), dyn: [K, OH, OW] (one sample),
//   acc: [K, C*R*S, 8] (+=)
TINYCNN_TARGET_AVX2 inline void filter_band(const float* xp, int64_t nrows, int64_t wp, const float* dyn,
                                            const Conv2DGeom& g, int64_t oh0, int64_t oh1, float* acc) {
  const int64_t CRS = g.C * g.R * g.S, nv = (g.OW + VW - 1) / VW, tail = g.OW - (nv - 1) * VW, sw = g.stride_w;
  alignas(32) int32_t lanes[VW];
  for (int l = 0; l < VW; ++l) lanes[l] = l < tail ? -1 : 0;
  const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t k0 = 0; k0 < g.K; k0 += KF) {
    const int64_t kn = std::min<int64_t>(KF, g.K - k0);
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s0 = 0; s0 < g.S; s0 += SF) {
          __m256 a[KF][SF];
#pragma GCC unroll 4
          for (int kk = 0; kk < KF; ++kk)
#pragma GCC unroll 4
            for (int s = 0; s < SF; ++s) a[kk][s] = zero;
          int64_t soff[SF];  // tap s0 + s: phase (s0 + s) % sw from column (s0 + s) / sw (0: past S, unused)
#pragma GCC unroll 4
          for (int s = 0; s < SF; ++s) soff[s] = s0 + s < g.S ? ((s0 + s) % sw) * wp + (s0 + s) / sw : 0;
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            const float* xr = xp + (c * nrows + (oh - oh0) * g.stride_h + r) * sw * wp;
            const float* dr[KF];
#pragma GCC unroll 4
            for (int kk = 0; kk < KF; ++kk) dr[kk] = dyn + ((k0 + std::min<int64_t>(kk, kn - 1)) * g.OH + oh) * g.OW;
            // Full vectors, then the last one masked (dY and the image both, so that columns past OW
            // add nothing even where the image holds an infinity).
            for (int64_t v = 0; v < nv; ++v) {
              const bool last = v == nv - 1;
              __m256 d[KF];
#pragma GCC unroll 4
              for (int kk = 0; kk < KF; ++kk)
                d[kk] = last ? _mm256_maskload_ps(dr[kk] + v * VW, mask) : _mm256_loadu_ps(dr[kk] + v * VW);
#pragma GCC unroll 4
              for (int s = 0; s < SF; ++s) {
                const float* xs = xr + soff[s] + v * VW;
                const __m256 xv = last ? _mm256_maskload_ps(xs, mask) : _mm256_loadu_ps(xs);
#pragma GCC unroll 4
                for (int kk = 0; kk < KF; ++kk) a[kk][s] = _mm256_fmadd_ps(d[kk], xv, a[kk][s]);
              }
            }
          }
#pragma GCC unroll 4
          for (int kk = 0; kk < KF; ++kk)
#pragma GCC unroll 4
            for (int s = 0; s < SF; ++s) {
              if (kk >= kn || s0 + s >= g.S) continue;
              float* p = acc + ((k0 + kk) * CRS + (c * g.R + r) * g.S + s0 + s) * VW;
              _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), a[kk][s]));
            }
        }
  }
}

// The callers' contract, checked: the kernels' tap tables hold kFewChannelMaxTaps entries. Returns the
// vector width (fewc_width(width)).
inline int check_call(const Conv2DGeom& g, const char* fn, int width) {
  if (!conv_fewc_applies(g))
    throw ValueError(std::string(fn) + ": needs strides of 1 or 2 and C*R*S <= " + std::to_string(kFewChannelMaxTaps) +
                     ", got C*R*S = " + std::to_string(g.C * g.R * g.S) + ", strides " + std::to_string(g.stride_h) +
                     "x" + std::to_string(g.stride_w));
  if (width != 0 && width != 8 && width != 16)
    throw ValueError(std::string(fn) + ": width must be 0, 8 or 16, got " + std::to_string(width));
  const int vw = fewc_width(width);
  if (vw == 0)
    throw ValueError(std::string(fn) + (width == 16 ? ": width 16 needs a CPU with AVX-512" : ": needs a CPU with AVX2 and FMA"));
  return vw;
}

inline int64_t band_count(const Conv2DGeom& g, int64_t rows = kBandRows) { return (g.OH + rows - 1) / rows; }

inline bool fewc_parallel(const Conv2DGeom& g, int64_t rows = kBandRows) {
  const double flops = 2.0 * double(g.N) * double(g.K) * double(g.C * g.R * g.S) * double(g.OH * g.OW);
#ifdef _OPENMP
  return !omp_in_parallel() && omp_get_max_threads() > 1 && flops >= double(kParallelMinWork) &&
         g.N * band_count(g, rows) > 1;
#else
  (void)flops;
  return false;
#endif
}

}  // namespace fewc_detail

// y = relu?(correlation of x with w + b), the ReLU capped at relu_max when that is > 0 (ReLU6).
// Requires conv_fewc_applies(g) and conv_fewc_available(); width: fewc_width's.
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
// sink: each band of a sample's rows goes to sink->fn(n, 1, out, oh0, oh1, false) instead of y (y
// unused), out a per-thread [K, OH, OW] buffer holding those rows; bands start at multiples of
// sink->row_align rows (0: whole samples).
inline void conv2d_fewc_forward(const float* x, const float* w, const float* b, const Conv2DGeom& g, float* y,
                                bool relu = false, float relu_max = 0.0f, int width = 0,
                                const ConvGroupSink<float>* sink = nullptr) {
  using namespace fewc_detail;
  const bool wide = check_call(g, "conv2d_fewc_forward", width) == VW16;
  const int64_t kb = wide ? KB16 : KB, CRS = g.C * g.R * g.S, nkb = (g.K + kb - 1) / kb, L = g.OH * g.OW;
  const int64_t rows = !sink ? kBandRows
                       : sink->row_align > 0 ? std::max<int64_t>(1, kBandRows / sink->row_align) * sink->row_align
                                             : g.OH;
  const int64_t wp = padded_width(g, wide ? COLS16 : COLS), nb = band_count(g, rows);
  float* wk = detail::conv_scratch<float, 2>(nkb * CRS * kb);  // the caller's buffer, read by every thread
  pack_weights(w, g.K, CRS, kb, wk);
  // Static: each thread a contiguous run of bands (whole samples when they divide evenly). With
  // dynamic bands of one, a sample's neighbouring bands went to different threads, and their pooled
  // rows (a sink's writes, 1000 bytes per plane for the scene models) shared cache lines at every
  // band edge: on a Zen 5 VM the pooling took as long on two threads as on one (docs/performance.md,
  // thirty-second session).
#pragma omp parallel for schedule(static) if (fewc_parallel(g, rows))
  for (int64_t it = 0; it < g.N * nb; ++it) {
    const int64_t n = it / nb, oh0 = (it % nb) * rows, oh1 = std::min(g.OH, oh0 + rows);
    const int64_t nrows = (oh1 - oh0 - 1) * g.stride_h + g.R;
    float* xp = detail::conv_scratch<float, 0>(g.C * nrows * g.stride_w * wp);
    pad_rows(x + n * g.C * g.H * g.W, g, oh0 * g.stride_h - g.pad_top, nrows, wp, xp);
    // with a sink, a sample's planes in this thread's buffer, of which the band's rows are written
    // (and read back by the sink while they are in L2)
    float* yn = sink ? detail::conv_scratch<float, 4>(g.K * L) : y + n * g.K * L;
    if (wide)
      forward_band<true>(xp, nrows, wp, wk, b, g, oh0, oh1, yn, relu, relu_max);
    else
      forward_band<false>(xp, nrows, wp, wk, b, g, oh0, oh1, yn, relu, relu_max);
    if (sink) sink->fn(n, 1, yn, oh0, oh1, false);
  }
}

// dw += the weight gradient for output gradient dy (the bias gradient is conv2d_backward_bias's).
// Requires conv_fewc_applies(g) and conv_fewc_available(); width: fewc_width's.
//   x: [N, C, H, W], dy: [N, K, OH, OW], dw: [K, C, R, S] (+=)
inline void conv2d_fewc_backward_filter(const float* x, const float* dy, const Conv2DGeom& g, float* dw,
                                        int width = 0) {
  using namespace fewc_detail;
  const int vw = check_call(g, "conv2d_fewc_backward_filter", width);
  const int64_t CRS = g.C * g.R * g.S, wp = padded_width(g, vw == VW16 ? COLS16 : COLS), nb = band_count(g);
  const int64_t sums = g.K * CRS * vw;
  // Every thread sums its bands into its own [K, CRS, vw] lanes; the lanes and parts are added at the end.
  constexpr int kMaxThreads = 256;
  float* parts[kMaxThreads] = {};
  int nt = 1, used = 1;
#ifdef _OPENMP
  if (fewc_parallel(g)) nt = std::min(omp_get_max_threads(), kMaxThreads);
#endif
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#pragma omp single
    used = omp_get_num_threads();
#endif
    float* acc = detail::conv_scratch<float, 2>(sums);  // this thread's lane sums
    std::fill(acc, acc + sums, 0.0f);
    parts[tid] = acc;
    // Static, like the forward: a thread's bands are whole samples when the threads divide the
    // samples, the same samples max_pool2d_backward's static plane split gave it when it wrote dy
    // (ops::conv2d_max_pool2d's chunks), so dy is read from this core's cache. With dynamic bands
    // half of it came from the other core's, and the next chunk's writes took the lines back: the
    // scene models' first-layer backward took 15.5 instead of 9.5 ms on two threads of a Zen 5 VM.
#pragma omp for schedule(static)
    for (int64_t it = 0; it < g.N * nb; ++it) {
      const int64_t n = it / nb, oh0 = (it % nb) * kBandRows, oh1 = std::min(g.OH, oh0 + kBandRows);
      const int64_t nrows = (oh1 - oh0 - 1) * g.stride_h + g.R;
      float* xp = detail::conv_scratch<float, 0>(g.C * nrows * g.stride_w * wp);
      pad_rows(x + n * g.C * g.H * g.W, g, oh0 * g.stride_h - g.pad_top, nrows, wp, xp);
      const float* dyn = dy + n * g.K * g.OH * g.OW;
      if (vw == VW16) {
        int64_t off[kFewChannelMaxTaps];
        tap_offsets(g, nrows, wp, off);
        filter_band16(xp, g.stride_h * g.stride_w * wp, off, dyn, g, oh0, oh1, acc);
      } else {
        filter_band(xp, nrows, wp, dyn, g, oh0, oh1, acc);
      }
    }
    // (the implicit barrier of the loop: every part is complete)
#pragma omp for schedule(static)
    for (int64_t i = 0; i < g.K * CRS; ++i) {
      float s = 0.0f;
      for (int t = 0; t < used; ++t)
        for (int l = 0; l < vw; ++l) s += parts[t][i * vw + l];
      dw[i] += s;
    }
  }
}
#endif

}  // namespace tinycnn::kernels::cpu
