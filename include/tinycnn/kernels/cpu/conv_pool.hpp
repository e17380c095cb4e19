#pragma once
// A convolution followed by max pooling, forward in one pass: each group of samples' convolution output
// (im2col + GEMM, or a block of the fused Winograd pass; handed over through conv2d_forward_ex's
// ConvGroupSink) is pooled while it is still in this thread's cache, and the full-size output is never
// written to memory. Why: the scene models' first layer (3 -> 32 channels at 150x150, im2col on AVX-512
// CPUs) writes a 90 MB output per batch that only its max pooling reads, and that pooling was 6.6% of
// model004's training step on an Intel Xeon (docs/performance.md, twenty-sixth session), bound by
// reading it back from memory.
// The backward needs no full-size output: a fused ReLU's mask comes from the pooled values
// (max_pool2d_backward's relu_y), and the bias gradient is summed in the pooling's backward pass.
#include "conv2d.hpp"
#include "pool.hpp"

namespace tinycnn::kernels::cpu {

// Bytes of one band of a sample's output pooled at a time: half of the smallest L2 of the hosts
// measured (1 MiB per core on the Zen 5), leaving room for the GEMM's packed panels.
constexpr int64_t kConvPoolBandBytes = int64_t(512) << 10;

namespace detail {
// Windows stacked without overlap from the first row (stride = pool height, no top padding, none
// hanging over the bottom): a sample's output can be pooled in bands of whole window rows.
inline bool pool_rows_tiled(const Conv2DGeom& g, const Conv2DGeom& pg) {
  return pg.stride_h == pg.R && pg.pad_top == 0 && pg.OH * pg.R <= g.OH;
}
}  // namespace detail

// Whether conv2d_max_pool2d_forward computes the convolution g with its pooling pg (else the caller
// runs the convolution into a full-size buffer and max_pool2d_forward over it): the im2col passes,
// and the fused Winograd pass where its blocks are whole samples or the pooling's rows are tiled.
template <class T>
bool conv2d_max_pool_fuses(const Conv2DGeom& g, const Conv2DGeom& pg, const ConvOptions& o = {}) {
  return conv_forward_sinks<T>(g, detail::pool_rows_tiled(g, pg) ? pg.R : 0, o);
}

// yp, argmax = max_pool2d_forward over relu?(conv(x, w) + b) (ReLU capped at relu_max when > 0),
// equal bit for bit to the two passes. Requires conv2d_max_pool_fuses(g, pg, o).
//   x: [N, C, H, W], w: [K, C, R, S], b: [K] or nullptr, g: the convolution,
//   pg: the pooling of its output (pg.N = N, pg.C = K, pg.H = OH, pg.W = OW),
//   yp, argmax: [N, K, pg.OH, pg.OW] (written; argmax may be null: not written)
// band_bytes: the size of the bands a one-sample im2col group is pooled in (tests pass small ones).
// cache: where the pass runs Winograd, its transformed filter (as for conv2d_forward_ex).
template <class T>
void conv2d_max_pool2d_forward(const T* x, const T* w, const T* b, const Conv2DGeom& g, const Conv2DGeom& pg, T* yp,
                               int32_t* argmax, bool relu, T relu_max = T(0), const ConvOptions& o = {},
                               int64_t band_bytes = kConvPoolBandBytes, WinogradFilterCache<T>* cache = nullptr) {
  check_pools_conv_output("conv2d_max_pool2d_forward", g, pg);
  const int64_t L = g.OH * g.OW, PL = pg.OH * pg.OW, K = g.K;
  auto plane = detail::max_pool_plane_fn<T>(pg);
  ConvGroupSink<T> sink;
  // Tiled window rows: a sample's output can be pooled in bands of whole window rows, each about
  // band_bytes on the im2col pass, so the GEMM's stores and the pooling's reads stay in L2 (one
  // sample of the scene models' first layer is 2.8 MB); the fused Winograd pass's bands start at
  // multiples of the window rows.
  if (detail::pool_rows_tiled(g, pg)) {
    sink.band_rows = std::max<int64_t>(1, band_bytes / int64_t(sizeof(T)) / (K * g.OW) / pg.R) * pg.R;
    sink.row_align = pg.R;
  }
  sink.fn = [&](int64_t n0, int64_t nb, const T* out, int64_t oh0, int64_t oh1, bool par) {
    // pooled rows [ph0, ph1) from output rows [oh0, oh1) (all of them when the group is not banded)
    const int64_t ph0 = oh0 > 0 ? oh0 / pg.R : 0, ph1 = oh1 < g.OH ? std::min(pg.OH, oh1 / pg.R) : pg.OH;
    if (ph1 <= ph0) return;  // rows below the last window
    par = par && nb * K * (oh1 - oh0) * g.OW * pg.S > kParallelMinWork;
#pragma omp parallel for collapse(2) if (par)
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t k = 0; k < K; ++k) {
        const int64_t dst = ((n0 + j) * K + k) * PL;
        plane(out + k * nb * L + j * L, pg, yp + dst, argmax ? argmax + dst : nullptr, ph0, ph1);
      }
  };
  conv2d_forward_ex<T>(x, w, b, g, nullptr, relu, &detail::conv_gemm_default<T>, o, relu_max, cache, &sink);
}

// Samples per chunk of the backward of a convolution + max pooling: the op (ops::conv2d_max_pool2d)
// rebuilds the convolution's output gradient a chunk at a time into one buffer that stays in the
// last-level cache and runs the convolution's backward passes on it, instead of writing the whole batch's
// (90 MB for the scene models' first layer at batch 32) to memory and reading it back. A multiple of
// the threads, so the weight gradient's sample groups still split between them; about
// kConvPoolChunkBytes of gradient; the whole batch where the passes run Winograd (their per-call
// work, such as the filter transform, would repeat per chunk). The direct few-channel pass's per-call
// work is small (its weights packed, a [K, C*R*S, 16] sum per thread), so its layers are chunked.
constexpr int64_t kConvPoolChunkBytes = int64_t(8) << 20;
template <class T>
int64_t conv2d_max_pool_backward_chunk(const Conv2DGeom& g, int64_t chunk_bytes = kConvPoolChunkBytes) {
  if (detail::winograd_preferred(g, g.C, g.K, ConvOptions{})) return g.N;
  const int64_t nt = std::max<int64_t>(1, get_num_threads()), per = g.K * g.OH * g.OW * int64_t(sizeof(T));
  const int64_t n = std::max<int64_t>(1, chunk_bytes / std::max<int64_t>(1, per * nt)) * nt;
  return std::min(g.N, n);
}

}  // namespace tinycnn::kernels::cpu
