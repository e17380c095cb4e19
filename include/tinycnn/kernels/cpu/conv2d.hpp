#pragma once
// 2-D convolution (cross-correlation, as in Keras) over NCHW tensors by im2col + GEMM.
// Forward writes y; backward ADDS into dx / dw / db. Weight layout [K, C, R, S] (viewed as
// [K, C*R*S] in the GEMMs).
//
// Structure (see docs/performance.md, "Convolution"): the batch is cut into groups of consecutive
// samples; a group's columns sit side by side in one [C*R*S, nb*OH*OW] matrix in a per-thread buffer,
// so layers with a small OH*OW still get wide GEMMs (N = nb*OH*OW) while the buffers stay bounded.
//   - parallel plan (batch >= threads): the threads take whole groups (dynamically, at least 4 per
//     thread); every GEMM runs on one thread, so there are no barriers inside a convolution (the
//     threads meet once at the end) and a thread slowed by other processes just takes fewer groups.
//   - serial plan (batch < threads, or a large dW): groups one after another; the GEMM and the
//     im2col / col2im / gather loops are parallel inside.
// Forward: y = W * col (+ bias, ReLU in the GEMM's epilogue); a group of one sample writes y directly.
// Backward data: dcol = W^T * dY (the group's dY gathered side by side), then col2im adds into dx.
// Backward filter (conv2d_backward_filter.hpp): dW += dY * col^T per group, same plans.
// 3x3 stride-1 windows with at least 16 channels on each side go through Winograd's F(m x m, 3x3)
// instead (conv_winograd.hpp; all three passes, 2.25-3.24x fewer multiply-adds; ConvOptions::algo).
// Layers with few input channels (C*R*S <= 64, strides 1 or 2: a network's first layer) run the direct
// forward and weight-gradient passes of conv_fewc.hpp instead, where they measured faster (fewc_preferred).
// A 1x1, stride-1, unpadded convolution of a single-sample group skips im2col (the image [C, H*W] is
// already the column matrix). Buffers are thread_local and only grow: nothing is allocated once warm.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../core/parallel.hpp"
#include "conv_fewc.hpp"
#include "conv_geometry.hpp"
#include "conv_sink.hpp"
#include "conv_winograd.hpp"
#include "gemm.hpp"
#include "im2col.hpp"
#include "winograd_filter_cache.hpp"

namespace tinycnn::kernels::cpu {

// A GEMM with gemm_ex's contract (ep may be null = plain GEMM). Benchmarks plug in each variant.
template <class T>
using ConvGemmFn = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                            int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                            const GemmEpilogue<T>* ep);

struct ConvOptions {
  enum Mode { Auto, Parallel, Serial, PerSample };  // PerSample: the old structure (one GEMM per sample, in sequence)
  Mode mode = Auto;
  int64_t cols_target = 1024;          // parallel plan: GEMMs get at least this many columns when possible
  int64_t scratch_elems = int64_t(2) << 20;  // column + gather buffers of one thread, in elements (8 MiB float)
  int64_t private_dw_max = int64_t(1) << 23;  // parallel dW only while K*C*R*S <= this (one copy per extra thread)
  // How the backward filter is computed as GEMMs (all validated against the direct convolution):
  //   DyCol: dW += dY * col^T       (M = K output channels, N = C*R*S; the column matrix is op(B) = B^T)
  //   ColDy: dW^T += col * dY^T     (M = C*R*S, N = K; per-thread dW^T accumulators added transposed)
  //   Rows:  dW^T += rows^T * dY^T  (im2row columns, dY transposed while gathered)
  //   Auto:  ColDy where its M x N fills the default GEMM's register tiles at least 1.2x better than
  //          DyCol's, else DyCol. With AVX-512's 14x32 tile that is conv1 of the scene models (27 x 32
  //          fills 96% of the FMAs, 32 x 27 only 64%; measured 1.38x faster); from conv2 on both forms
  //          fill 91-98% and DyCol measured equal or faster (docs/performance.md, fourth session).
  //          Rows measured 0.68-0.87x of DyCol on every model3 layer and is never chosen.
  enum class FilterForm { Auto, DyCol, ColDy, Rows };
  FilterForm filter_form = FilterForm::Auto;
  // How the three passes are computed (validated against the direct convolution):
  //   Im2col:   im2col + GEMM, the structure described above (mode, filter_form and the GEMM variant apply)
  //   Winograd: F(m x m, 3x3) (conv_winograd.hpp) for 3x3 stride-1 windows, im2col for every other window;
  //             the backward filter only while filter_form is Auto (a named form means that im2col form)
  //   FewChannels: the direct passes of conv_fewc.hpp (forward, weight gradient) where they apply
  //             (float, strides 1 or 2, C*R*S <= 64, a CPU with AVX2 + FMA), im2col elsewhere
  //   Auto:     Winograd where detail::winograd_preferred says it measured faster, FewChannels where
  //             detail::fewc_preferred does, else Im2col
  enum class Algo { Auto, Im2col, Winograd, FewChannels };
  Algo algo = Algo::Auto;
  // The direct few-channel passes' vector width: 0 = the widest this CPU runs (16 floats with
  // AVX-512, conv_fewc_avx512.hpp; else 8), or 8 / 16 to force one (benchmarks, tests; fewc_width).
  int fewc_width = 0;
  // Winograd's output tile m x m: 0 = the measured choice per pass (winograd_tile_for: 3 on planes
  // from 6x6 up for the forward and backward-data passes, else 2; winograd_filter_tile_for: 3 for the
  // weight gradient from 8x8 up and wherever m = 3's tiles hold fewer points, as on 6x6), or 2, 3, 4
  // to force one (tests, benchmarks).
  int64_t winograd_tile = 0;
  // How Winograd's passes are run (forward and backward data: with the library's own GEMM only):
  //   Grouped: per sample group, each transform and the GEMMs over all of the group's tiles
  //            (winograd_conv3x3, winograd_conv3x3_backward_filter)
  //   Fused:   per block of tiles, the transforms and GEMMs one after the other, the transformed
  //            tiles in the caches (winograd_conv3x3_fused, winograd_conv3x3_backward_filter_fused;
  //            winograd_block_elems bounds a block's transformed input + output, except that a
  //            sample needing up to twice that is not cut into bands: winograd_fused_blocks)
  //   Auto:    detail::winograd_fused_preferred
  enum class WinogradPlan { Auto, Grouped, Fused };
  WinogradPlan winograd_plan = WinogradPlan::Auto;
  int64_t winograd_block_elems = kWinogradBlockElems;
};

namespace detail {

inline bool conv_is_pointwise(const Conv2DGeom& g) {
  return g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.OH == g.H && g.OW == g.W;
}

template <class T>
void conv_gemm_default(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                       const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue<T>* ep) {
  gemm_ex<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep ? *ep : GemmEpilogue<T>{});
}

inline int conv_team(double flops) {
#ifdef _OPENMP
  if (omp_in_parallel() || flops < static_cast<double>(kParallelMinWork)) return 1;
  return std::max(1, omp_get_max_threads());
#else
  (void)flops;
  return 1;
#endif
}

inline int conv_thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int conv_num_threads() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

struct ConvPlan {
  int nt = 1;             // threads available
  bool parallel = false;  // groups split between threads, one-thread GEMMs
  int64_t groups = 1;     // group i = samples [N*i/groups, N*(i+1)/groups)
  bool inner_par() const { return !parallel && nt > 1; }  // loops inside a group may use the team
};

// ConvOptions::algo resolved for one pass of g (input channels ci, output channels co of that pass).
// Auto: see docs/performance.md ("Winograd"): F(m x m, 3x3) wins once both channel counts are large
// enough that its GEMMs have a real reduction and the transforms are small against them.
inline bool winograd_preferred(const Conv2DGeom& g, int64_t ci, int64_t co, const ConvOptions& o) {
  if (!winograd_applies(g)) return false;
  if (o.algo == ConvOptions::Algo::Winograd) return true;
  if (o.algo != ConvOptions::Algo::Auto || o.mode != ConvOptions::Auto) return false;
  return ci >= 16 && co >= 16;
}

// The three passes of a convolution, for rules that differ between them.
enum class ConvPass { Forward, BackwardData, BackwardFilter };

// Whether the Winograd pass q runs fused (ConvOptions::WinogradPlan).
// Auto: fused where a block of winograd_block_elems holds at least 144 tiles forward and for the
// backward data (m = 3, the default budget: up to 64 -> 128 channels, 163 tiles; 32 -> 64 has 327),
// at least 60 for the weight gradient (also 128 -> 256, 81 tiles); else grouped (256 -> 512 has 40).
// (The thresholds were 96 and 40 tiles of a 2^19-element budget: the same layers.)
// Why, on the Zen 5 (2 vCPUs, L2 1 MiB per core; docs/performance.md, thirty-second session):
// in the grouped plan both threads' transforms write V and Gy (or M) that both threads' GEMMs then
// read, so every store of the next group's transform takes cache lines back from the other core;
// the fused plan keeps each block's buffers (and the weight gradient's dU) in one thread. There the
// fused plan took, of the grouped plan's time (tinycnn_bench conv2d/winograd_{grouped,fused}):
// 64 -> 128 0.60-0.69 for the weight gradient, 0.77-0.93 backward data, forward 0.86 (model3) and
// 1.23 (model004's 'valid' layer, but then its max pooling runs fused too: model004 inference 0.96x);
// 128 -> 256 weight gradient 0.73-0.75, forward 1.08-1.50, backward data 0.96-0.99; 256 -> 512 and
// 512 -> 1024 1.25-3.9x. Whole models, one process alternating the rules step by step: model3 training
// 0.960, model004 0.938 of the old rule's step time (fused only from 128 tiles, from the Intel Xeon
// of the twenty-fourth session, where the 64 -> 128 layers fused took 0.84-1.14x and the 128 -> 256
// weight gradient 1.12-1.18x: a few percent slower there, measured with that session's code).
inline bool winograd_fused_preferred(const WinogradGeom& q, const ConvOptions& o, ConvPass pass) {
  if (o.winograd_plan != ConvOptions::WinogradPlan::Auto) return o.winograd_plan == ConvOptions::WinogradPlan::Fused;
  return winograd_fused_fit(q, o.winograd_block_elems) >= (pass == ConvPass::BackwardFilter ? 60 : 144);
}

// Whether the direct few-channel pass (conv_fewc.hpp) computes g: forward, or else the weight gradient.
// Auto: measured against im2col on an AVX2 host, -O3, batch 32 (docs/performance.md, nineteenth
// session): stride 1, the weight gradient 0.64-0.94x of im2col's time for every C*R*S <= 64 tried, the
// forward 0.60-0.93x from 3 input channels up but 1.05-1.44x on one channel (3x3 and 5x5: too little
// work per register block), which stays with im2col; stride 2 (3 channels) 0.49-1.02x. Windows of 9
// or more taps only: a 1x1 convolution (MobileNet's and the resnets' pointwise layers, C*R*S = C) is a
// plain GEMM without im2col, and the direct passes took 1.22-1.37x its time forward, 1.65-3.42x for
// the gradient (mobilenet_transfer's inference 734 -> 708 images/s while they were taken).
// On AVX-512 CPUs the 8-float passes gained nothing over im2col with the AVX-512 GEMM (a Zen 5,
// twenty-second session: 1.08x forward, 0.97x weight gradient on model3's conv1); the 16-float passes
// (conv_fewc_avx512.hpp) took 0.48-0.95x of its time in both passes on every geometry tried, one
// channel included (an Intel Xeon, twenty-eighth session), so there they are taken for any window of
// 9 or more taps.
template <class T>
bool fewc_preferred(const Conv2DGeom& g, const ConvOptions& o, bool forward) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (!conv_fewc_applies(g) || fewc_width(o.fewc_width) == 0) return false;
    if (o.algo == ConvOptions::Algo::FewChannels) return true;
    if (o.algo != ConvOptions::Algo::Auto || o.mode != ConvOptions::Auto) return false;
    if (g.R * g.S < 9) return false;
    return fewc_width(o.fewc_width) == 16 || !forward || g.C >= 3;
  }
}

// rows: buffer elements per column (C*R*S for the columns plus K for a gathered dY / an output tile).
inline ConvPlan conv_plan(const Conv2DGeom& g, int64_t rows, double flops, const ConvOptions& o, bool allow_parallel) {
  ConvPlan p;
  p.nt = conv_team(flops);
  const int64_t L = g.OH * g.OW, total = g.N * L;
  const int64_t g_mem = std::max<int64_t>(1, (total * rows + o.scratch_elems - 1) / o.scratch_elems);
  if (o.mode == ConvOptions::PerSample) {
    p.groups = g.N;
    return p;
  }
  const bool par = allow_parallel && p.nt > 1 && g.N >= p.nt && o.mode != ConvOptions::Serial;
  if (par) {
    p.parallel = true;
    int64_t G = std::max<int64_t>(g_mem, std::max<int64_t>(1, total / std::max<int64_t>(1, o.cols_target)));
    // At least 4 groups per thread, taken dynamically: a thread slowed by other processes on a shared
    // machine takes fewer groups instead of holding the others at the end.
    G = std::max<int64_t>(G, 4 * p.nt);
    p.groups = std::min<int64_t>(G, g.N);
  } else {
    p.groups = std::min<int64_t>(g_mem, g.N);
  }
  return p;
}

// dst[k, j*L + l] = src[(n0 + j)*K + k, l] for j < nb: the dY (or y) planes of nb samples side by side.
template <class T>
void gather_planes(const T* src, int64_t n0, int64_t nb, int64_t K, int64_t L, T* dst, bool par) {
#pragma omp parallel for collapse(2) if (par)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t k = 0; k < K; ++k) {
      const T* s = src + ((n0 + j) * K + k) * L;
      T* d = dst + k * nb * L + j * L;
      for (int64_t l = 0; l < L; ++l) d[l] = s[l];
    }
}

// The inverse: dst[(n0 + j)*K + k, l] = src[k, j*L + l].
template <class T>
void scatter_planes(const T* src, int64_t n0, int64_t nb, int64_t K, int64_t L, T* dst, bool par) {
#pragma omp parallel for collapse(2) if (par)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t k = 0; k < K; ++k) {
      const T* s = src + k * nb * L + j * L;
      T* d = dst + ((n0 + j) * K + k) * L;
      for (int64_t l = 0; l < L; ++l) d[l] = s[l];
    }
}

// Columns of samples [n0, n0 + nb) side by side: col [C*R*S, nb*L].
template <class T>
void im2col_group(const T* x, const Conv2DGeom& g, int64_t n0, int64_t nb, T* col, bool par) {
  const int64_t L = g.OH * g.OW, CHW = g.C * g.H * g.W;
#pragma omp parallel for if (par)
  for (int64_t j = 0; j < nb; ++j) im2col_ld(x + (n0 + j) * CHW, g, col + j * L, nb * L);
}

// The transformed filter of Winograd pass q of g (rotate: backward data), in a thread_local buffer.
// packed (the GEMM is gemm_ex's own): in its kernel's packed-A layout, mr set to the sliver height, so
// the point GEMMs skip packing it (with V packed likewise, winograd_conv3x3's prepack_b); else plain,
// mr = 0.
// With a cache (forward passes only): U from the cache when it holds this filter's, else transformed
// into a new entry that replaces the cached one; `hold` keeps the entry alive while U is in use.
template <class T>
const T* winograd_filter_for(const T* w, const Conv2DGeom& g, const WinogradGeom& q, bool rotate, bool packed,
                             int64_t& mr, WinogradFilterCache<T>* cache = nullptr,
                             std::shared_ptr<const typename WinogradFilterCache<T>::Entry>* hold = nullptr) {
  mr = packed ? gemm_prepacked_a_mr<T>(q.Ci) : 0;
  const int64_t elems = q.points() * winograd_u_plane(q.Co, q.Ci, mr);
  const bool par = g.K * g.C >= 4096;
  if (cache && !rotate) {
    if ((*hold = cache->find(w, g.K, g.C, q.m, mr))) return (*hold)->u;
    auto e = WinogradFilterCache<T>::make(w, g.K, g.C, q.m, mr, elems);
    winograd_filter_transform(w, g.K, g.C, false, q.m, e->u, par, mr);
    cache->store(e);
    // The per-call buffer below is not needed while layers keep their transforms (inference after
    // training: it held model3's largest U, 52 MB, beside the cached ones); training grows it again.
    conv_scratch_buffer<T, 3>().release();
    *hold = std::move(e);
    return (*hold)->u;
  }
  T* U = conv_scratch<T, 3>(elems);
  winograd_filter_transform(w, g.K, g.C, rotate, q.m, U, par, mr);
  return U;
}

// Runs fn(group) for every group: split between the threads in the parallel plan, in order otherwise.
template <class F>
void conv_for_groups(const ConvPlan& p, const F& fn) {
  if (p.parallel) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(p.nt)
    for (int64_t gi = 0; gi < p.groups; ++gi) fn(gi);
  } else {
    for (int64_t gi = 0; gi < p.groups; ++gi) fn(gi);
  }
}

}  // namespace detail

// Whether conv2d_forward_ex computes g as im2col (or pointwise) GEMMs over groups of samples (which
// hand their output to a ConvGroupSink a group or band at a time, whatever its row_align).
template <class T>
bool conv_forward_in_groups(const Conv2DGeom& g, const ConvOptions& o = {}) {
  return !detail::winograd_preferred(g, g.C, g.K, o) && !detail::fewc_preferred<T>(g, o, true);
}

// Whether conv2d_forward_ex can hand g's output to a ConvGroupSink with this row_align: the im2col
// passes, the direct few-channel pass (bands of rows, or whole samples for row_align 0), and the
// fused Winograd pass where its blocks are whole samples or row_align > 0 (the grouped Winograd pass
// writes y whole).
template <class T>
bool conv_forward_sinks(const Conv2DGeom& g, int64_t row_align, const ConvOptions& o = {}) {
  if (conv_forward_in_groups<T>(g, o)) return true;
  if (!detail::winograd_preferred(g, g.C, g.K, o)) return detail::fewc_preferred<T>(g, o, true);
  const WinogradGeom q = winograd_geom_forward(g, o.winograd_tile);
  return detail::winograd_fused_preferred(q, o, detail::ConvPass::Forward) &&
         (row_align > 0 || detail::winograd_fused_blocks(q, o.winograd_block_elems).whole());
}

// y[n] = relu?(W * im2col(x[n]) + b), the ReLU capped at relu_max when that is > 0 (ReLU6)
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
// cache: where the pass runs Winograd, its transformed filter is taken from / kept in *cache
// (winograd_filter_cache.hpp); null: transformed for this call only.
// sink (only where conv_forward_sinks): each group's or block's output goes to *sink instead of y (y
// unused, may be null), so a consumer (a max pooling: conv_pool.hpp) reads it from cache, and the
// full-size output is never written to memory.
template <class T>
void conv2d_forward_ex(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, bool relu,
                       ConvGemmFn<T> gemm_fn = &detail::conv_gemm_default<T>, const ConvOptions& o = {},
                       T relu_max = T(0), WinogradFilterCache<T>* cache = nullptr,
                       const ConvGroupSink<T>* sink = nullptr) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W, K = g.K;
  if (g.N <= 0 || K <= 0 || L <= 0) return;
  if (sink && (!conv_forward_sinks<T>(g, sink->row_align, o) ||
               (!conv_forward_in_groups<T>(g, o) && gemm_fn != &detail::conv_gemm_default<T>)))
    throw Error("conv2d_forward_ex: an output sink needs the im2col, few-channel or fused Winograd pass (conv_forward_sinks)");
  if (detail::winograd_preferred(g, g.C, g.K, o)) {
    const WinogradGeom q = winograd_geom_forward(g, o.winograd_tile);
    const bool own = gemm_fn == &detail::conv_gemm_default<T>;
    int64_t mr = 0;
    std::shared_ptr<const typename WinogradFilterCache<T>::Entry> hold;
    const T* U = detail::winograd_filter_for(w, g, q, false, own, mr, cache, &hold);
    if (own && detail::winograd_fused_preferred(q, o, detail::ConvPass::Forward))
      return winograd_conv3x3_fused(x, U, q, b, relu, false, y, mr, relu_max, o.winograd_block_elems, sink);
    return winograd_conv3x3(x, U, q, b, relu, false, y, gemm_fn, o.scratch_elems * 2, 512, own, mr, relu_max);
  }
#ifdef TINYCNN_HAVE_FEWC
  if constexpr (std::is_same_v<T, float>)
    if (gemm_fn == &detail::conv_gemm_default<T> && detail::fewc_preferred<T>(g, o, true))
      return conv2d_fewc_forward(x, w, b, g, y, relu, relu_max, o.fewc_width, sink);
#endif
  const bool pw = detail::conv_is_pointwise(g);
  const detail::ConvPlan p = detail::conv_plan(g, CRS + K, 2.0 * double(g.N) * double(K * CRS) * double(L), o, true);
  GemmEpilogue<T> ep;
  ep.bias = b;
  ep.relu = relu;
  ep.relu_max = relu_max;
  detail::conv_for_groups(p, [&](int64_t gi) {
    const int64_t n0 = g.N * gi / p.groups, nb = g.N * (gi + 1) / p.groups - n0, cols = nb * L;
    if (nb == 1) {
      const T* xn = x + n0 * g.C * HW;
      const T* col = xn;
      if (!pw) {
        T* c = detail::conv_scratch<T, 0>(CRS * L);
        im2col(xn, g, c);
        col = c;
      }
      if (!sink) {
        gemm_fn(false, false, K, L, CRS, T(1), w, CRS, col, L, T(0), y + n0 * K * L, L, &ep);
        return;
      }
      T* out = detail::conv_scratch<T, 1>(K * L);
      const int64_t rows = sink->band_rows > 0 ? sink->band_rows : g.OH;
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += rows) {  // columns [oh0*OW, oh1*OW) of the product
        const int64_t oh1 = std::min(g.OH, oh0 + rows), c0 = oh0 * g.OW;
        gemm_fn(false, false, K, (oh1 - oh0) * g.OW, CRS, T(1), w, CRS, col + c0, L, T(0), out + c0, L, &ep);
        sink->fn(n0, 1, out, oh0, oh1, p.inner_par());
      }
      return;
    }
    T* col = detail::conv_scratch<T, 0>(CRS * cols);
    T* out = detail::conv_scratch<T, 1>(K * cols);
    detail::im2col_group(x, g, n0, nb, col, p.inner_par());
    gemm_fn(false, false, K, cols, CRS, T(1), w, CRS, col, cols, T(0), out, cols, &ep);
    if (sink)
      sink->fn(n0, nb, out, 0, g.OH, p.inner_par());
    else
      detail::scatter_planes(out, n0, nb, K, L, y, p.inner_par());
  });
}

// y[n] = W * im2col(x[n]) + b
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y) {
  conv2d_forward_ex(x, w, b, g, y, false);
}

// y[n] = max(0, W * im2col(x[n]) + b), min(relu_max, .) when relu_max > 0 (ReLU6): in the GEMM's
// store, no second pass over y.
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
template <class T>
void conv2d_forward_relu(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, T relu_max = T(0)) {
  conv2d_forward_ex(x, w, b, g, y, true, &detail::conv_gemm_default<T>, {}, relu_max);
}

// conv2d_forward (relu false) or conv2d_forward_relu with the Winograd filter kept in *cache between
// calls (winograd_filter_cache.hpp; layers pass theirs where the weights take no gradient).
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, y: [N, K, OH, OW] (written)
template <class T>
void conv2d_forward_cached(const T* x, const T* w, const T* b, const Conv2DGeom& g, T* y, bool relu, T relu_max,
                           WinogradFilterCache<T>* cache) {
  conv2d_forward_ex(x, w, b, g, y, relu, &detail::conv_gemm_default<T>, {}, relu_max, cache);
}

// dx[n] += col2im(W^T * dy[n]); assign: dx is a fresh buffer, written (Winograd, pointwise GEMM) or
// zeroed a sample at a time just before its col2im, never read as a gradient
//   dy: [N, K, OH, OW], w: [K, C, R, S], dx: [N, C, H, W] (+=)
template <class T>
void conv2d_backward_data_ex(const T* dy, const T* w, const Conv2DGeom& g, T* dx,
                             ConvGemmFn<T> gemm_fn = &detail::conv_gemm_default<T>, const ConvOptions& o = {},
                             bool assign = false) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, HW = g.H * g.W, K = g.K;
  if (g.N <= 0 || K <= 0 || L <= 0) return;
  if (detail::winograd_preferred(g, g.K, g.C, o)) {
    const WinogradGeom q = winograd_geom_backward_data(g, o.winograd_tile);
    const bool own = gemm_fn == &detail::conv_gemm_default<T>;
    int64_t mr = 0;
    const T* U = detail::winograd_filter_for(w, g, q, true, own, mr);
    if (own && detail::winograd_fused_preferred(q, o, detail::ConvPass::BackwardData))
      return winograd_conv3x3_fused(dy, U, q, static_cast<const T*>(nullptr), false, !assign, dx, mr, T(0),
                                    o.winograd_block_elems);
    return winograd_conv3x3(dy, U, q, static_cast<const T*>(nullptr), false, !assign, dx, gemm_fn,
                            o.scratch_elems * 2, 512, own, mr);
  }
  const bool pw = detail::conv_is_pointwise(g);
  const detail::ConvPlan p = detail::conv_plan(g, CRS + K, 2.0 * double(g.N) * double(K * CRS) * double(L), o, true);
  detail::conv_for_groups(p, [&](int64_t gi) {
    const int64_t n0 = g.N * gi / p.groups, nb = g.N * (gi + 1) / p.groups - n0, cols = nb * L;
    if (nb == 1) {
      const T* dyn = dy + n0 * K * L;
      T* dxn = dx + n0 * g.C * HW;
      if (pw) {  // dx[n] [C, HW] (+)= W^T [C, K] * dy[n] [K, HW]
        gemm_fn(true, false, g.C, L, K, T(1), w, CRS, dyn, L, assign ? T(0) : T(1), dxn, L, nullptr);
      } else {
        T* dcol = detail::conv_scratch<T, 0>(CRS * L);
        gemm_fn(true, false, CRS, L, K, T(1), w, CRS, dyn, L, T(0), dcol, L, nullptr);
        if (assign) std::fill(dxn, dxn + g.C * HW, T(0));
        col2im_add(dcol, g, dxn);
      }
      return;
    }
    T* dcol = detail::conv_scratch<T, 0>(CRS * cols);
    T* dyg = detail::conv_scratch<T, 1>(K * cols);
    detail::gather_planes(dy, n0, nb, K, L, dyg, p.inner_par());
    gemm_fn(true, false, CRS, cols, K, T(1), w, CRS, dyg, cols, T(0), dcol, cols, nullptr);
    const int64_t CHW = g.C * HW;
#pragma omp parallel for if (p.inner_par())
    for (int64_t j = 0; j < nb; ++j) {
      T* dxj = dx + (n0 + j) * CHW;
      if (assign) std::fill(dxj, dxj + CHW, T(0));
      col2im_add_ld(dcol + j * L, g, dxj, cols);
    }
  });
}

//   dy: [N, K, OH, OW], w: [K, C, R, S], dx: [N, C, H, W] (+=; = when assign, see conv2d_backward_data_ex)
template <class T>
void conv2d_backward_data(const T* dy, const T* w, const Conv2DGeom& g, T* dx, bool assign = false) {
  conv2d_backward_data_ex(dy, w, g, dx, &detail::conv_gemm_default<T>, ConvOptions{}, assign);
}

// db[k] += sum over n, oh, ow of dy[n, k]
//   dy: [N, K, OH, OW], db: [K] (+=)
template <class T>
void conv2d_backward_bias(const T* dy, const Conv2DGeom& g, T* db) {
  const int64_t L = g.OH * g.OW, K = g.K;
  const bool par = g.N * K * L > kParallelMinWork && detail::conv_team(double(g.N * K * L)) > 1;
#pragma omp parallel for if (par)
  for (int64_t k = 0; k < K; ++k) {
    double acc = 0;
    for (int64_t n = 0; n < g.N; ++n) {
      const T* row = dy + (n * K + k) * L;
      T s = T(0);
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < L; ++i) s += row[i];
      acc += static_cast<double>(s);
    }
    db[k] += static_cast<T>(acc);
  }
}

// The backward of a ReLU fused into the convolution's output (conv2d's relu, capped at relu_max when
// that is > 0) and of the bias in one pass over dY: masked = dy * (0 < y < cap) (written), and
// db[k] += sum over n, oh, ow of masked[n, k] (skipped when db is null), summed as conv2d_backward_bias
// sums. Two passes over the layer's largest gradient before (the masking, then the bias sum reading
// its result again); y > 0 exactly where the pre-activation is.
//   y, dy, masked: [N, K, OH, OW], db: [K] (+=)
template <class T>
void conv2d_relu_backward_bias(const T* y, const T* dy, T relu_max, const Conv2DGeom& g, T* masked, T* db) {
  const int64_t L = g.OH * g.OW, K = g.K;
  const bool par = g.N * K * L > kParallelMinWork && detail::conv_team(double(g.N * K * L)) > 1;
  auto planes = [&](auto capped) {
    const T cap = relu_max;  // a local: the simd loops below read it
#pragma omp parallel for if (par)
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0;
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t o = (n * K + k) * L;
        const T *yr = y + o, *dr = dy + o;
        T* mr = masked + o;
        T s = T(0);
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < L; ++i) {
          const T yi = yr[i], d = dr[i];
          const T v = (yi > T(0) && (!decltype(capped)::value || yi < cap)) ? d : T(0);
          mr[i] = v;
          s += v;
        }
        acc += static_cast<double>(s);
      }
      if (db) db[k] += static_cast<T>(acc);
    }
  };
  if (relu_max > T(0))
    planes(std::true_type{});
  else
    planes(std::false_type{});
}

}  // namespace tinycnn::kernels::cpu
