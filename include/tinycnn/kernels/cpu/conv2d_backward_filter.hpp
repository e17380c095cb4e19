#pragma once
// The weight gradient of conv2d.hpp's convolution: dw += sum_n dy[n] * im2col(x[n])^T, as GEMMs over
// groups of samples (the plans of conv2d.hpp). In the parallel plan thread 0 accumulates into dw and
// the others into one private buffer each, summed at the end; where C*R*S x K fills the GEMM's register
// tiles clearly better (conv1: 27 x 32), dW^T += col * dY^T into private [C*R*S, K] buffers instead
// (ConvOptions::FilterForm). Winograd and few-channel layers go to their own passes, as in the forward.
// Kept apart from conv2d.hpp (forward, data gradient, bias) only so that each file stays readable.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "conv2d.hpp"

namespace tinycnn::kernels::cpu {

namespace detail {

// dst[j*L + l, k] = src[(n0 + j)*K + k, l] for j < nb: the dY planes of nb samples, transposed to
// one row per pixel ([nb*L, K]), in 32 x 32 tiles so reads and writes both stay in cache lines.
template <class T>
void transpose_planes(const T* src, int64_t n0, int64_t nb, int64_t K, int64_t L, T* dst, bool par) {
  constexpr int64_t B = 32;
  const int64_t lt = (L + B - 1) / B;
#pragma omp parallel for collapse(2) if (par)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t t = 0; t < lt; ++t) {
      const int64_t l0 = t * B, l1 = std::min(L, l0 + B);
      const T* s = src + (n0 + j) * K * L;
      T* d = dst + j * L * K;
      for (int64_t k0 = 0; k0 < K; k0 += B) {
        const int64_t k1 = std::min(K, k0 + B);
        for (int64_t l = l0; l < l1; ++l)
          for (int64_t k = k0; k < k1; ++k) d[l * K + k] = s[k * L + l];
      }
    }
}

// dw[k, i] += sum over t < nparts of parts[t][i, k]: per-thread dW^T sums added into dW ([K, CRS]).
template <class T>
void add_transposed_parts(T* const* parts, int nparts, int64_t CRS, int64_t K, T* dw) {
  constexpr int64_t B = 32;
  const int64_t kt = (K + B - 1) / B, it = (CRS + B - 1) / B;
#pragma omp for collapse(2) schedule(static)
  for (int64_t a = 0; a < kt; ++a)
    for (int64_t b = 0; b < it; ++b) {
      const int64_t k0 = a * B, k1 = std::min(K, k0 + B), i0 = b * B, i1 = std::min(CRS, i0 + B);
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t i = i0; i < i1; ++i) {
          T s = T(0);
          for (int t = 0; t < nparts; ++t) s += parts[t][i * K + k];
          dw[k * CRS + i] += s;
        }
    }
}

inline double tile_fill(int64_t m, int64_t n, GemmTileShape t) { return gemm_detail::tile_fill(m, n, t.mr, t.nr); }

// ConvOptions::filter_form with Auto resolved (see there).
template <class T>
ConvOptions::FilterForm filter_form(const Conv2DGeom& g, const ConvOptions& o) {
  if (o.filter_form != ConvOptions::FilterForm::Auto) return o.filter_form;
  const int64_t CRS = g.C * g.R * g.S;
  const GemmTileShape t = gemm_tile_shape<T>(false, true, g.OH * g.OW);  // both forms are NT products
  return tile_fill(CRS, g.K, t) > 1.2 * tile_fill(g.K, CRS, t) ? ConvOptions::FilterForm::ColDy
                                                                : ConvOptions::FilterForm::DyCol;
}

// The GEMM operands of backward-filter group gi: its column matrix col [CRS, cols] and its dY planes
// side by side dy [K, cols] (a one-sample group uses dY in place, and a pointwise one the image too).
template <class T>
struct FilterOperands {
  const T* col;
  const T* dy;
  int64_t cols;
};
template <class T>
FilterOperands<T> filter_operands(const T* x, const T* dy, const Conv2DGeom& g, const ConvPlan& p, int64_t gi) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, K = g.K, CHW = g.C * g.H * g.W;
  const int64_t n0 = g.N * gi / p.groups, nb = g.N * (gi + 1) / p.groups - n0, cols = nb * L;
  if (nb == 1) {
    const T* col = x + n0 * CHW;
    if (!conv_is_pointwise(g)) {
      T* c = conv_scratch<T, 0>(CRS * L);
      im2col(col, g, c);
      col = c;
    }
    return {col, dy + n0 * K * L, cols};
  }
  T* c = conv_scratch<T, 0>(CRS * cols);
  T* d = conv_scratch<T, 1>(K * cols);
  im2col_group(x, g, n0, nb, c, p.inner_par());
  gather_planes(dy, n0, nb, K, L, d, p.inner_par());
  return {c, d, cols};
}

// Backward filter into per-thread dW^T accumulators (ConvOptions::FilterForm ColDy and Rows): per group,
//   ColDy: accT [CRS, K] += col_group [CRS, cols] * dY_group^T [cols, K]
//   Rows:  accT [CRS, K] += rows_group^T [CRS, cols] * dYT_group [cols, K]
// then the accumulators are added transposed into dw. Same plans as conv2d_backward_filter_ex.
template <class T>
void conv2d_backward_filter_t(const T* x, const T* dy, const Conv2DGeom& g, T* dw, ConvGemmFn<T> gemm_fn,
                              const ConvOptions& o, ConvOptions::FilterForm form) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, K = g.K, CHW = g.C * g.H * g.W;
  const bool small_dw = K * CRS <= o.private_dw_max || o.mode == ConvOptions::Parallel;
  const ConvPlan p = conv_plan(g, CRS + K, 2.0 * double(g.N) * double(K * CRS) * double(L), o, small_dw);
  auto group_col = [&](int64_t gi, T* accT) {
    const FilterOperands<T> op = filter_operands(x, dy, g, p, gi);
    gemm_fn(false, true, CRS, K, op.cols, T(1), op.col, op.cols, op.dy, op.cols, T(1), accT, K, nullptr);
  };
  auto group_rows = [&](int64_t gi, T* accT) {
    const int64_t n0 = g.N * gi / p.groups, nb = g.N * (gi + 1) / p.groups - n0, cols = nb * L;
    T* rows = conv_scratch<T, 0>(cols * CRS);
    T* dyt = conv_scratch<T, 1>(cols * K);
#pragma omp parallel for if (p.inner_par())
    for (int64_t j = 0; j < nb; ++j) im2row(x + (n0 + j) * CHW, g, rows + j * L * CRS);
    transpose_planes(dy, n0, nb, K, L, dyt, p.inner_par());
    gemm_fn(true, false, CRS, K, cols, T(1), rows, CRS, dyt, K, T(1), accT, K, nullptr);
  };
  constexpr int kMaxThreads = 256;
  T* parts[kMaxThreads] = {};
  const int nt = p.parallel ? std::min(p.nt, kMaxThreads) : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int nth = conv_num_threads();
    T* accT = conv_scratch<T, 2>(K * CRS);
    std::fill(accT, accT + K * CRS, T(0));
    parts[conv_thread_id()] = accT;
    auto group = [&](int64_t gi) {
      if (form == ConvOptions::FilterForm::Rows)
        group_rows(gi, accT);
      else
        group_col(gi, accT);
    };
    if (p.parallel) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t gi = 0; gi < p.groups; ++gi) group(gi);  // implicit barrier
    } else {
      for (int64_t gi = 0; gi < p.groups; ++gi) group(gi);
    }
    add_transposed_parts(parts, nth, CRS, K, dw);
  }
}

}  // namespace detail

// dw += sum_n dy[n] * im2col(x[n])^T;  db += sum over n, oh, ow of dy (when db is not null)
//   x: [N, C, H, W], dy: [N, K, OH, OW], dw: [K, C, R, S] (+=) or nullptr, db: [K] (+=) or nullptr
template <class T>
void conv2d_backward_filter_ex(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db,
                               ConvGemmFn<T> gemm_fn = &detail::conv_gemm_default<T>, const ConvOptions& o = {}) {
  const int64_t CRS = g.C * g.R * g.S, L = g.OH * g.OW, K = g.K;
  if (g.N <= 0 || K <= 0 || L <= 0) return;
  if (db) conv2d_backward_bias(dy, g, db);
  if (!dw) return;
#ifdef TINYCNN_HAVE_FEWC
  if constexpr (std::is_same_v<T, float>)
    if (o.filter_form == ConvOptions::FilterForm::Auto && gemm_fn == &detail::conv_gemm_default<T> &&
        detail::fewc_preferred<T>(g, o, false))
      return conv2d_fewc_backward_filter(x, dy, g, dw, o.fewc_width);
#endif
  if (o.filter_form == ConvOptions::FilterForm::Auto && detail::winograd_preferred(g, g.C, g.K, o)) {
    const WinogradGeom q =
        winograd_geom_forward(g, o.winograd_tile > 0 ? o.winograd_tile : winograd_filter_tile_for(g.OH, g.OW));
    if (detail::winograd_fused_preferred(q, o, detail::ConvPass::BackwardFilter))
      return winograd_conv3x3_backward_filter_fused(x, dy, q, dw, gemm_fn, o.winograd_block_elems);
    return winograd_conv3x3_backward_filter(x, dy, q, dw, gemm_fn, o.scratch_elems * 2);
  }
  const ConvOptions::FilterForm form = detail::filter_form<T>(g, o);
  if (form != ConvOptions::FilterForm::DyCol && o.mode != ConvOptions::PerSample)
    return detail::conv2d_backward_filter_t(x, dy, g, dw, gemm_fn, o, form);
  const bool small_dw = K * CRS <= o.private_dw_max || o.mode == ConvOptions::Parallel;
  const detail::ConvPlan p =
      detail::conv_plan(g, CRS + K, 2.0 * double(g.N) * double(K * CRS) * double(L), o, small_dw);
  // acc += dY_group [K, cols] * col_group^T [cols, CRS]
  auto group = [&](int64_t gi, T* acc) {
    const detail::FilterOperands<T> op = detail::filter_operands(x, dy, g, p, gi);
    gemm_fn(false, true, K, CRS, op.cols, T(1), op.dy, op.cols, op.col, op.cols, T(1), acc, CRS, nullptr);
  };
  if (!p.parallel) {
    for (int64_t gi = 0; gi < p.groups; ++gi) group(gi, dw);
    return;
  }
  constexpr int kMaxThreads = 256;
  T* parts[kMaxThreads] = {};
  const int nt = std::min(p.nt, kMaxThreads);
#pragma omp parallel num_threads(nt)
  {
    const int tid = detail::conv_thread_id(), nth = detail::conv_num_threads();
    T* acc = dw;
    if (tid > 0) {
      acc = detail::conv_scratch<T, 2>(K * CRS);
      std::fill(acc, acc + K * CRS, T(0));
    }
    parts[tid] = acc;
#pragma omp for schedule(dynamic, 1)
    for (int64_t gi = 0; gi < p.groups; ++gi) group(gi, acc);  // implicit barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < K * CRS; ++i) {
      T s = T(0);
      for (int t = 1; t < nth; ++t) s += parts[t][i];
      dw[i] += s;
    }
  }
}

//   x: [N, C, H, W], dy: [N, K, OH, OW], dw: [K, C, R, S] (+=) or nullptr, db: [K] (+=) or nullptr
template <class T>
void conv2d_backward_filter(const T* x, const T* dy, const Conv2DGeom& g, T* dw, T* db) {
  conv2d_backward_filter_ex(x, dy, g, dw, db);
}

}  // namespace tinycnn::kernels::cpu
