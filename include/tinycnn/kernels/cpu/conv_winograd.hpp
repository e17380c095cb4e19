#pragma once
// 3x3 stride-1 convolution by Winograd's minimal filtering F(m x m, 3x3), m = 2, 3 or 4 (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016), over NCHW tensors.
//
// Why: im2col + GEMM spends 9 multiply-adds per input channel on each output pixel; F(m x m, 3x3)
// computes an m x m output tile from an a x a input tile (a = m + 2) with a^2 multiplies instead of
// 9 m^2: 2.25x fewer for m = 2, 3.24x for m = 3, 4x for m = 4. The multiplies become a^2 independent
// GEMMs (one per point xi of the transformed tile), each [Co, Ci] x [Ci, P] over the P tiles of a
// group of samples, so they run on the same packed micro-kernels as everything else:
//   U[xi] = (G f G^T)[xi]   filter transform, [a^2, Co, Ci]
//   V[xi] = (B^T d B)[xi]   input transform of every a x a input tile d (stride m, overlapping), [a^2, Ci, P]
//   M[xi] = U[xi] * V[xi]   a^2 GEMMs, [a^2, Co, P]
//   y     = A^T m A         output transform of every tile's a^2 values, m x m outputs
// The matrices (WinogradMatrices in winograd_transforms.hpp) are Toom-Cook's for the points 0, 1, -1
// (m = 2), 0, 1, -1, 2 (m = 3), 0, 1, -1, 2, -2 (m = 4), and infinity; larger points make larger
// coefficients and larger float32 rounding, so the tile size is chosen per layer by measurement
// (winograd_tile_for).
// In float64 every m matches the direct loops to rounding; in float32 the error stays within a few
// times im2col + GEMM's (tests/test_conv.cpp measures both).
//
// The same routine serves the backward-data pass: dx = dy correlated with the filter rotated by 180
// degrees and its channel axes swapped, padded by 2 - pad (winograd_geom_backward_data). The weight
// gradient is the adjoint (winograd_conv3x3_backward_filter, at the end of this file).
//
// Plan: the batch is cut into groups of samples (enough tiles per group that the GEMMs are wide, few
// enough that V and M stay bounded); within a group the threads split the input transform over
// channels, the a^2 GEMMs (one thread each, or a part of one, so no barriers inside them), and the
// output transform over output channels. Buffers are thread_local and only grow.
// The fused plan (winograd_conv3x3_fused, chosen by conv2d.hpp's winograd_fused_preferred) instead
// gives each thread whole blocks of tiles (bands of tile rows, or a few samples) and runs all three
// steps on a block before the next, so V and M stay in its L2 cache and no thread writes what the
// other reads. Its GEMMs are narrower (one block's tiles), so it only pays where many tiles fit a
// block: Auto takes it on layers with up to 64 -> 128 channels, and 128 -> 256 for the weight
// gradient (conv2d.hpp's winograd_fused_preferred has the measurements).
//
// The geometry (WinogradGeom), the matrices and the four transforms are in winograd_transforms.hpp (their
// lanes' gathers and stores in winograd_lanes.hpp);
// this file holds the tile choice, the sample groups and blocks, and the routines that run the GEMMs
// (forward / backward data and weight gradient, each grouped and fused).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"
#include "conv_geometry.hpp"
#include "conv_sink.hpp"
#include "gemm.hpp"
#include "im2col.hpp"
#include "winograd_transforms.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinycnn::kernels::cpu {

// Whether the Winograd routine can compute convolution g at all (3x3 window, stride 1).
inline bool winograd_applies(const Conv2DGeom& g) {
  return g.R == 3 && g.S == 3 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top <= 2 && g.pad_left <= 2;
}

// The tile size Auto takes for an OH x OW output: forward and backward data 3 from 6x6 up, else 2
// (winograd_tile_for); the weight gradient 3 from 8x8 up and wherever else m = 3's tiles hold fewer
// points than m = 2's (6x6: 4 tiles x 25 points against 9 x 16; not 4x4: 4 x 25 against 4 x 16)
// (winograd_filter_tile_for). Measured on model3's layers (docs/performance.md, ninth, sixteenth and
// twentieth sessions): m = 3 took 10-17% off conv3 (25x25) and conv4 (12x12) and tied on conv2
// (50x50). On the 6x6 layers it does 30% fewer multiplies (4 tiles x 25 points per sample against
// m = 2's 9 x 16); with the 16-tile blocks it takes 16-22% off their forward and backward-data
// passes, and since the weight gradient's last transform (dU -> dw) runs 16 filters per vector it
// takes 23-28% off that pass too (it was 4-9% slower while that transform, scalar, read 25 planes
// of dU instead of 16). On 4x4 m = 3 (4 tiles of 25 points) took 1.5x m = 2's time (4 tiles of 16).
// m = 4 saves more multiplies but lost or tied everywhere (its transforms cost more than the GEMM
// time it saves) and rounds ~2-4x worse than m = 3 in float32, so it is only taken when forced
// (ConvOptions::winograd_tile).
inline int64_t winograd_tile_for(int64_t OH, int64_t OW) { return std::min(OH, OW) >= 6 ? 3 : 2; }
inline int64_t winograd_filter_tile_for(int64_t OH, int64_t OW) {
  const int64_t points3 = 25 * ((OH + 2) / 3) * ((OW + 2) / 3), points2 = 16 * ((OH + 1) / 2) * ((OW + 1) / 2);
  return std::min(OH, OW) >= 8 || points3 < points2 ? 3 : 2;
}

// The forward pass of g: in = x [N, C, H, W], out = y [N, K, OH, OW]; m = 0 chooses by winograd_tile_for.
inline WinogradGeom winograd_geom_forward(const Conv2DGeom& g, int64_t m = 0) {
  WinogradGeom q;
  q.N = g.N, q.Ci = g.C, q.H = g.H, q.W = g.W, q.Co = g.K, q.OH = g.OH, q.OW = g.OW;
  q.pad_top = g.pad_top, q.pad_left = g.pad_left;
  q.m = m > 0 ? m : winograd_tile_for(q.OH, q.OW);
  return q;
}

// The backward-data pass of g: in = dy [N, K, OH, OW], out = dx [N, C, H, W];
//   dx[h] = sum_r dy[h + pad_top - r] w[r] = sum_r' dy[h - (2 - pad_top) + r'] w[2 - r'].
inline WinogradGeom winograd_geom_backward_data(const Conv2DGeom& g, int64_t m = 0) {
  WinogradGeom q;
  q.N = g.N, q.Ci = g.K, q.H = g.OH, q.W = g.OW, q.Co = g.C, q.OH = g.H, q.OW = g.W;
  q.pad_top = 2 - g.pad_top, q.pad_left = 2 - g.pad_left;
  q.m = m > 0 ? m : winograd_tile_for(q.OH, q.OW);
  return q;
}

namespace detail {

// Groups of whole samples: nb samples per group (the largest once the batch is split evenly) so that
// V + M hold at most scratch_elems elements, but at least min_cols tile columns (or the whole batch)
// so the GEMMs stay wide on deep layers with few tiles per sample.
inline void winograd_groups(const WinogradGeom& q, int64_t scratch_elems, int64_t min_cols, int64_t& nb,
                            int64_t& groups) {
  const int64_t NT = q.tiles(), per_sample = q.points() * (q.Ci + q.Co) * NT;
  nb = std::max<int64_t>(scratch_elems / per_sample, (min_cols + NT - 1) / NT);
  nb = std::min<int64_t>(std::max<int64_t>(nb, 1), q.N);
  groups = (q.N + nb - 1) / nb;
  nb = (q.N + groups - 1) / groups;
}

// Threads for a pass: the team, unless already inside a parallel region or the work is small.
inline int winograd_team(const WinogradGeom& q) {
  const double flops = 2.0 * double(q.points()) * double(q.N * q.tiles()) * double(q.Ci) * double(q.Co);
#ifdef _OPENMP
  if (!omp_in_parallel() && flops >= static_cast<double>(kParallelMinWork)) return std::max(1, omp_get_max_threads());
#else
  (void)flops;
#endif
  return 1;
}

// The a^2 per-point GEMMs of a group as work items for nt threads: the points whole, except the last
// npts % nt, which are cut into nt parts each (ranges of C's columns or rows), so every thread gets
// the same share: m = 3's 25 points on 2 threads are 12.5 GEMMs each instead of 13 and 12, where the
// second thread waited out one GEMM in 13. A part is a plain sub-product computed by the same kernel
// on one thread, so the result is bitwise the same whatever the cut.
struct WinogradPointItems {
  int64_t npts, nt;
  int64_t whole() const { return npts - npts % nt; }
  int64_t count() const { return whole() + (npts - whole()) * nt; }
  // Item it: point xi and the range [lo, hi) of the n columns (rows) it covers, cut at multiples of align.
  void range(int64_t it, int64_t n, int64_t align, int64_t& xi, int64_t& lo, int64_t& hi) const {
    if (it < whole()) {
      xi = it, lo = 0, hi = n;
      return;
    }
    const int64_t part = (it - whole()) % nt;
    xi = whole() + (it - whole()) / nt;
    auto cut = [&](int64_t p) { return p == nt ? n : n * p / nt / align * align; };
    lo = cut(part), hi = cut(part + 1);
  }
};

}  // namespace detail

// out (=, or += when accumulate) relu?(correlation of `in` with the filter whose transform is U, + bias)
//   in: [N, Ci, H, W], U: [a^2, Co, Ci] (winograd_filter_transform with q.m), bias: [Co] or nullptr
//   (ignored when accumulating), out: [N, Co, OH, OW]; gemm_fn: a GEMM with gemm_ex's contract
//   (benchmarks plug variants in).
// scratch_elems bounds V + M per group, except that a group always gets at least min_cols tile columns
// (or the whole batch) so the GEMMs stay wide on deep layers with few tiles per sample.
// prepack_b: the input transform writes V in the packed layout of gemm_ex's own kernel and the GEMMs
// run gemm_nn_prepacked_b instead of gemm_fn (bitwise the same result, no B packing pass; callers set
// it when gemm_fn is gemm_ex, i.e. not a benchmark's plugged-in variant).
// u_mr > 0 (with prepack_b only): U is in gemm_nn_prepacked_ab's layout, written so by
// winograd_filter_transform with mr = u_mr = gemm_prepacked_a_mr<T>(q.Ci), and the GEMMs skip packing
// it as well (each point's U was packed again for every sample group and every part of a point).
// relu_max > 0 caps the ReLU (ReLU6).
template <class T, class GemmFn>
void winograd_conv3x3(const T* in, const T* U, const WinogradGeom& q, const T* bias, bool relu, bool accumulate,
                      T* out, GemmFn gemm_fn, int64_t scratch_elems = int64_t(4) << 20, int64_t min_cols = 512,
                      bool prepack_b = false, int64_t u_mr = 0, T relu_max = T(0)) {
  const int64_t NT = q.tiles(), npts = q.points();
  if (q.N <= 0 || q.Co <= 0 || NT <= 0) return;
  int64_t nb, groups;
  detail::winograd_groups(q, scratch_elems, min_cols, nb, groups);
  const int64_t nr = prepack_b ? gemm_prepacked_b_nr<T>(q.Ci) : 0;
  if (u_mr > 0 && nr == 0) throw ValueError("winograd_conv3x3: a prepacked U (u_mr > 0) needs prepack_b");
  const int64_t us = detail::winograd_u_plane(q.Co, q.Ci, u_mr);  // elements per point of U
  T* V = detail::conv_scratch<T, 0>(npts * detail::winograd_v_plane(q.Ci, nb * NT, nr));
  T* M = detail::conv_scratch<T, 1>(npts * q.Co * nb * NT);
  const int nt = detail::winograd_team(q);
  const detail::WinogradPointItems items{npts, nt};
#pragma omp parallel num_threads(nt) if (nt > 1)
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t n0 = q.N * gi / groups, nbg = q.N * (gi + 1) / groups - n0, P = nbg * NT;
    const int64_t xs = detail::winograd_v_plane(q.Ci, P, nr);
    detail::winograd_input_transform(in, q, n0, nbg, V, nr);  // ends with a barrier
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items.count(); ++it) {
      int64_t xi, c0, c1;  // point, columns [c0, c1) of M[xi] (slivers of V when prepacked)
      items.range(it, P, nr > 0 ? nr : 1, xi, c0, c1);
      if (c1 <= c0) continue;
      if (u_mr > 0)
        gemm_nn_prepacked_ab<T>(q.Co, c1 - c0, q.Ci, T(1), U + xi * us, V + xi * xs + c0 * q.Ci, T(0),
                                M + xi * q.Co * P + c0, P);
      else if (nr > 0)
        gemm_nn_prepacked_b<T>(q.Co, c1 - c0, q.Ci, T(1), U + xi * us, q.Ci, V + xi * xs + c0 * q.Ci, T(0),
                               M + xi * q.Co * P + c0, P);
      else
        gemm_fn(false, false, q.Co, c1 - c0, q.Ci, T(1), U + xi * q.Co * q.Ci, q.Ci, V + xi * xs + c0, P, T(0),
                M + xi * q.Co * P + c0, P, nullptr);
    }
    detail::winograd_output_transform(M, q, n0, nbg, bias, relu, accumulate, out, relu_max);
  }
}

// The fused pass's default block budget (ConvOptions::winograd_block_elems): a block's transformed
// input and output, V + M, about 3 MiB of float. It was 2^19 elements until the forty-first session;
// with the larger blocks (and kWinogradWholeSampleSlack), alternated in one process on a Zen 4
// (2 threads, batch 32; docs/performance.md), forward / backward data / weight gradient: model3's conv3
// (64 -> 128 @25: two samples per block instead of one) 0.96 / 0.99 / 0.94x the time, conv4's weight
// gradient (five samples instead of three) 0.98x, model004's 32 -> 64 @74 'valid' (one sample
// instead of three bands) 0.90 / 0.93 / 0.92x and its 128 -> 256 weight gradient (three samples
// instead of two) 0.92x, model2's 64 -> 128 @23 'valid' (three samples instead of two) 1.02 / 0.99 /
// 1.00x; whole training steps model004 0.957x, model3 and model2 0.996-0.997x. Larger budgets lost:
// 2^22 took 1.03-1.40x the time of 2^20 on model3's conv2 and conv3, and 2^21 on conv3 0.98-1.08x
// that of 2^19.
constexpr int64_t kWinogradBlockElems = int64_t(3) << 18;

namespace detail {

// Tiles of the fused pass's blocks whose V + M fit budget_elems elements.
inline int64_t winograd_fused_fit(const WinogradGeom& q, int64_t budget_elems) {
  return std::max<int64_t>(budget_elems / (q.points() * (q.Ci + q.Co)), 1);
}

// The blocks of the fused pass: bands of tile rows of one sample (`bands` per sample, rows split
// evenly in units of `align` tile rows, so that every band starts at a multiple of align), or, where
// a whole sample's tiles fit the budget, groups of `samples` whole samples (the batch split evenly).
// A sample that needs more than the budget but at most kWinogradWholeSampleSlack times it is one
// block, not bands: the bands' point GEMMs are narrower (half a sample's tiles) and each band pads
// and transforms the two rows it shares with the next. Against two bands, with the budget then 2^19
// elements, alternated in one process on a Zen 4 (2 threads, batch 32; docs/performance.md,
// forty-first session), forward / backward data / weight gradient: model3's conv2 (32 -> 64 @50,
// 289 tiles where 218 fit) 0.94 / 0.96 / 0.89x the time, model004's 64 -> 128 @36 'valid' (144
// tiles, 109 fit) 0.82 / 0.87 / 0.90x, model2's 32 -> 64 @49 'valid' (256, 218) 0.98 / 0.96 /
// 0.99x; whole training steps model3 0.986-0.991x, model004 0.963-0.972x, model2 0.981x.
constexpr int64_t kWinogradWholeSampleSlack = 2;
struct WinogradFusedBlocks {
  int64_t samples = 0, bands = 1, count = 0, align = 1;
  bool whole() const { return samples > 0; }
  int64_t units(const WinogradGeom& q) const { return (q.tiles_h() + align - 1) / align; }
  // the most tiles in one block
  int64_t max_tiles(const WinogradGeom& q) const {
    return whole() ? samples * q.tiles()
                   : std::min(q.tiles_h(), (units(q) + bands - 1) / bands * align) * q.tiles_w();
  }
};
inline WinogradFusedBlocks winograd_fused_blocks(const WinogradGeom& q, int64_t budget_elems, int64_t align = 1) {
  const int64_t NT = q.tiles(), TW = q.tiles_w();
  int64_t fit = winograd_fused_fit(q, budget_elems);
  if (fit < NT && NT <= kWinogradWholeSampleSlack * fit) fit = NT;  // one whole sample, not bands
  WinogradFusedBlocks b;
  if (fit >= NT) {
    const int64_t per = std::min(fit / NT, q.N);
    b.count = (q.N + per - 1) / per;
    b.samples = (q.N + b.count - 1) / b.count;
  } else {
    b.align = std::max<int64_t>(align, 1);
    const int64_t units = std::max<int64_t>(fit / TW / b.align, 1), U = b.units(q);
    b.bands = (U + units - 1) / units;
    b.count = q.N * b.bands;
  }
  return b;
}

// Tile rows the fused pass's bands must start at a multiple of for a consumer that takes bands
// starting at multiples of row_align output rows (ConvGroupSink::row_align): lcm(m, row_align) / m;
// 0 where row_align is 0 (whole samples only).
inline int64_t winograd_band_align(int64_t m, int64_t row_align) {
  if (row_align <= 0) return 0;
  int64_t a = m, b = row_align;
  while (b) a %= b, std::swap(a, b);
  return row_align / a;
}

// Block b of bl: its geometry s (q cut to the band's rows: s.N = 1, plane strides kept), the samples
// [n0, n0 + nb) of s it covers, and where s's input and output start in q's input and output; the
// sample of q it starts at, and (a band) the first of q's output rows it computes.
struct WinogradFusedBlock {
  WinogradGeom s;
  int64_t n0 = 0, nb = 1, in_off = 0, out_off = 0, sample = 0, oh0 = 0;
};
inline WinogradFusedBlock winograd_fused_block(const WinogradGeom& q, const WinogradFusedBlocks& bl, int64_t b) {
  WinogradFusedBlock r;
  r.s = q;
  if (bl.whole()) {
    r.n0 = r.sample = b * bl.samples, r.nb = std::min(bl.samples, q.N - r.n0);
    return r;
  }
  // tile rows [ty0, ty1) of sample j: output rows m ty0 .., input rows from m ty0 - pad_top on (those
  // above row 0 and below row H - 1 are the band's zero padding)
  const int64_t TH = q.tiles_h(), U = bl.units(q), j = b / bl.bands, band = b % bl.bands;
  const int64_t ty0 = std::min(TH, bl.align * (U * band / bl.bands));
  const int64_t ty1 = std::min(TH, bl.align * (U * (band + 1) / bl.bands)), top = q.m * ty0 - q.pad_top;
  const int64_t h0 = std::max<int64_t>(top, 0), h1 = std::min(q.H, q.m * ty1 - q.pad_top + 2);
  r.s.N = 1, r.s.H = std::max<int64_t>(h1 - h0, 0), r.s.pad_top = h0 - top;
  r.s.OH = std::min(q.OH, q.m * ty1) - q.m * ty0;
  r.s.in_plane = q.H * q.W, r.s.out_plane = q.OH * q.OW;
  r.in_off = (j * q.Ci * q.H + h0) * q.W;
  r.out_off = (j * q.Co * q.OH + q.m * ty0) * q.OW;
  r.sample = j, r.oh0 = q.m * ty0;
  return r;
}

}  // namespace detail

// The same convolution as winograd_conv3x3 with its own GEMM (prepack_b, U prepacked with u_mr > 0),
// fused: each thread takes blocks of tiles (bands of tile rows of a sample, or a few whole samples)
// and runs the input transform, the a^2 GEMMs and the output transform on one block before the
// next, so V and M (budget_elems per block) stay in the thread's L2 cache. The grouped routine
// writes V and M for thousands of tiles and reads them back (on model004's conv2, Ci = 32 and 72x72,
// M is 118 MB per pass, and its GEMMs are short in K). Bitwise the same result: every tile and every
// GEMM column goes through the same arithmetic.
// sink (forward only, accumulate false): each block's output goes to *sink (conv_sink.hpp) instead of
// out (unused, may be null), from a per-thread buffer of one sample's planes (a band: its rows at their
// place in the planes) or of the block's samples, handed over one sample at a time; the bands then
// start at multiples of sink->row_align output rows, which must be > 0 unless the blocks are whole
// samples.
template <class T>
void winograd_conv3x3_fused(const T* in, const T* U, const WinogradGeom& q, const T* bias, bool relu, bool accumulate,
                            T* out, int64_t u_mr, T relu_max = T(0), int64_t budget_elems = kWinogradBlockElems,
                            const ConvGroupSink<T>* sink = nullptr) {
  const int64_t NT = q.tiles(), npts = q.points(), L = q.OH * q.OW;
  if (q.N <= 0 || q.Co <= 0 || NT <= 0) return;
  const int64_t nr = gemm_prepacked_b_nr<T>(q.Ci), us = detail::winograd_u_plane(q.Co, q.Ci, u_mr);
  if (u_mr <= 0) throw ValueError("winograd_conv3x3_fused: U must be prepacked (u_mr > 0)");
  const int64_t align = sink ? detail::winograd_band_align(q.m, sink->row_align) : 1;
  const detail::WinogradFusedBlocks bl = detail::winograd_fused_blocks(q, budget_elems, align);
  if (sink && (accumulate || (!bl.whole() && align <= 0)))
    throw ValueError("winograd_conv3x3_fused: an output sink needs accumulate false and, where samples are cut "
                     "into bands, row_align > 0");
  const int nt = static_cast<int>(std::min<int64_t>(detail::winograd_team(q), bl.count));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int64_t pmax = bl.max_tiles(q);
    T* V = detail::conv_scratch<T, 0>(npts * detail::winograd_v_plane(q.Ci, pmax, nr));
    T* M = detail::conv_scratch<T, 1>(npts * q.Co * pmax);
    // slot 4: slot 3 may hold U (conv2d.hpp's winograd_filter_for) on the calling thread
    T* ob = sink ? detail::conv_scratch<T, 4>((bl.whole() ? bl.samples : 1) * q.Co * L) : nullptr;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < bl.count; ++b) {
      const detail::WinogradFusedBlock k = detail::winograd_fused_block(q, bl, b);
      const WinogradGeom& s = k.s;
      const int64_t n0 = k.n0, nb = k.nb;
      const int64_t P = nb * s.tiles(), xs = detail::winograd_v_plane(q.Ci, P, nr);
      detail::winograd_input_transform(in + k.in_off, s, n0, nb, V, nr, false);
      for (int64_t xi = 0; xi < npts; ++xi)
        gemm_nn_prepacked_ab<T>(q.Co, P, q.Ci, T(1), U + xi * us, V + xi * xs, T(0), M + xi * q.Co * P, P);
      if (!sink) {
        detail::winograd_output_transform(M, s, n0, nb, bias, relu, accumulate, out + k.out_off, relu_max, false);
      } else if (bl.whole()) {
        detail::winograd_output_transform(M, s, 0, nb, bias, relu, false, ob, relu_max, false);
        for (int64_t j = 0; j < nb; ++j) sink->fn(k.sample + j, 1, ob + j * q.Co * L, 0, q.OH, false);
      } else {
        detail::winograd_output_transform(M, s, 0, 1, bias, relu, false, ob + k.oh0 * q.OW, relu_max, false);
        sink->fn(k.sample, 1, ob, k.oh0, k.oh0 + s.OH, false);
      }
    }
  }
}

// dw += the weight gradient of the forward correlation q (x -> y) for output gradient dy, by the
// adjoint of F(m x m, 3x3): per group, V = input transform of x, Gy = A dy A^T per tile, then per
// point xi one GEMM dU[xi] (+)= Gy[xi] [Co, P] * V[xi]^T [P, Ci] (the reduction runs over the tiles),
// and finally dw += G^T dU G per filter.
//   x: [N, Ci, H, W], dy: [N, Co, OH, OW], dw: [Co, Ci, 3, 3] (+=); gemm_fn, scratch_elems, min_cols as above.
template <class T, class GemmFn>
void winograd_conv3x3_backward_filter(const T* x, const T* dy, const WinogradGeom& q, T* dw, GemmFn gemm_fn,
                                      int64_t scratch_elems = int64_t(4) << 20, int64_t min_cols = 512) {
  const int64_t NT = q.tiles(), npts = q.points();
  if (q.N <= 0 || q.Co <= 0 || q.Ci <= 0 || NT <= 0) return;
  int64_t nb, groups;
  detail::winograd_groups(q, scratch_elems, min_cols, nb, groups);
  T* V = detail::conv_scratch<T, 0>(npts * q.Ci * nb * NT);
  T* Gy = detail::conv_scratch<T, 1>(npts * q.Co * nb * NT);
  T* dU = detail::conv_scratch<T, 3>(npts * q.Co * q.Ci);
  const int nt = detail::winograd_team(q);
  const detail::WinogradPointItems items{npts, nt};
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t n0 = q.N * gi / groups, nbg = q.N * (gi + 1) / groups - n0, P = nbg * NT;
      detail::winograd_input_transform(x, q, n0, nbg, V);         // ends with a barrier
      detail::winograd_grad_output_transform(dy, q, n0, nbg, Gy);  // ends with a barrier
      const int64_t mr = gemm_tile_shape<T>(false, true, P).mr;   // parts cut at whole register tiles
#pragma omp for schedule(dynamic, 1)
      for (int64_t it = 0; it < items.count(); ++it) {
        int64_t xi, r0, r1;  // point, rows [r0, r1) of dU[xi] (output channels)
        items.range(it, q.Co, mr, xi, r0, r1);
        if (r1 > r0)
          gemm_fn(false, true, r1 - r0, q.Ci, P, T(1), Gy + xi * q.Co * P + r0 * P, P, V + xi * q.Ci * P, P,
                  gi == 0 ? T(0) : T(1), dU + xi * q.Co * q.Ci + r0 * q.Ci, q.Ci, nullptr);
      }
    }
    detail::winograd_filter_grad_transform(dU, q.m, q.Co, q.Ci, dw);
  }
}

// The weight gradient of winograd_conv3x3_backward_filter, fused as winograd_conv3x3_fused: each
// thread takes blocks of tiles, transforms the block's x and dy (V, Gy: budget_elems together, in its
// L2 cache) and adds the block's a^2 products into its own dU; then the threads' dU are summed and
// transformed into dw. The grouped routine writes V and Gy for whole sample groups to memory and
// reads them back in its GEMMs. The sums over tiles run in another order (per block, per thread), so
// the result differs from the grouped one by rounding.
//   x: [N, Ci, H, W], dy: [N, Co, OH, OW], dw: [Co, Ci, 3, 3] (+=); gemm_fn: as for the grouped routine
template <class T, class GemmFn>
void winograd_conv3x3_backward_filter_fused(const T* x, const T* dy, const WinogradGeom& q, T* dw, GemmFn gemm_fn,
                                            int64_t budget_elems = kWinogradBlockElems) {
  const int64_t NT = q.tiles(), npts = q.points(), du = npts * q.Co * q.Ci;
  if (q.N <= 0 || q.Co <= 0 || q.Ci <= 0 || NT <= 0) return;
  const detail::WinogradFusedBlocks bl = detail::winograd_fused_blocks(q, budget_elems);
  const int nt = static_cast<int>(std::min<int64_t>(detail::winograd_team(q), bl.count));
  // each thread's dU [a^2, Co, Ci] (the list in a buffer that only grows: no allocation per step)
  static thread_local std::vector<T*> part_list;
  if (part_list.size() < static_cast<size_t>(nt)) part_list.resize(static_cast<size_t>(nt));
  T** const parts = part_list.data();
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
#ifdef _OPENMP
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
    const int64_t pmax = bl.max_tiles(q);
    T* V = detail::conv_scratch<T, 0>(npts * q.Ci * pmax);
    T* Gy = detail::conv_scratch<T, 1>(npts * q.Co * pmax);
    T* dU = parts[tid] = detail::conv_scratch<T, 3>(du);
    bool first = true;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < bl.count; ++b) {
      const detail::WinogradFusedBlock k = detail::winograd_fused_block(q, bl, b);
      const int64_t P = k.nb * k.s.tiles();
      detail::winograd_input_transform(x + k.in_off, k.s, k.n0, k.nb, V, 0, false);
      detail::winograd_grad_output_transform(dy + k.out_off, k.s, k.n0, k.nb, Gy, false);
      for (int64_t xi = 0; xi < npts; ++xi)
        gemm_fn(false, true, q.Co, q.Ci, P, T(1), Gy + xi * q.Co * P, P, V + xi * q.Ci * P, P, first ? T(0) : T(1),
                dU + xi * q.Co * q.Ci, q.Ci, nullptr);
      first = false;
    }
    if (first) std::fill(dU, dU + du, T(0));  // a thread without blocks
#pragma omp barrier
    // dU of thread 0 += the others' (in blocks of 4096 elements), then dw += G^T dU G
#pragma omp for schedule(static)
    for (int64_t e0 = 0; e0 < du; e0 += 4096) {
      T* d = parts[0] + e0;
      const int64_t n = std::min<int64_t>(4096, du - e0);
      for (int t = 1; t < nt; ++t) {
        const T* src = parts[t] + e0;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) d[i] += src[i];
      }
    }
    detail::winograd_filter_grad_transform(parts[0], q.m, q.Co, q.Ci, dw);
  }
}

}  // namespace tinycnn::kernels::cpu
