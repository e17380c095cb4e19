#pragma once
// Pooling over NCHW tensors. The window geometry is a Conv2DGeom with K = C and R x S = pool size.
// Padded cells never take part: max pooling ignores them and average pooling divides by the number
// of real cells in the window (Keras/TF 'same' semantics). Forward writes y; backward ADDS into dx.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../../core/parallel.hpp"
#include "conv_geometry.hpp"
#include "cpu_features.hpp"
#include "pool_2x2.hpp"

namespace tinycnn::kernels::cpu {

namespace detail {
// Max and first argmax (offset r*W + s) of an R x S window at p, all cells inside the plane.
template <class T, int R, int S>
inline void window_max(const T* p, int64_t W, int64_t rr, int64_t ss, T& best, int64_t& at) {
  const int64_t nr = R > 0 ? R : rr, ns = S > 0 ? S : ss;
  best = p[0];
  at = 0;
  for (int64_t r = 0; r < nr; ++r)
    for (int64_t s = 0; s < ns; ++s) {
      const T v = p[r * W + s];
      if (v > best) best = v, at = r * W + s;
    }
}

// One [H, W] plane of max pooling. Always inlined into the wrappers below, so the same loops are
// compiled for the baseline ISA and, inside target-attributed copies, for AVX2 and AVX-512 (chosen at
// run time): the fixed-window loop reads S-element groups at stride S, which the baseline's 16-byte
// vectors handle poorly (3x3/3 after conv1: 16.2 ms baseline, 5.8 ms built for the host, standalone).
// A (false: argmax null, not written: inference, where no backward reads it).
template <class T, int R, int S, bool A = true>
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
inline void max_pool_plane_body(const T* xc, const Conv2DGeom& g, T* y, int32_t* argmax, int64_t oh_begin,
                                int64_t oh_end) {
  // Output columns [ow_lo, ow_hi) whose windows lie inside the plane horizontally.
  const int64_t ow_lo = std::min(g.OW, (g.pad_left + g.stride_w - 1) / g.stride_w);
  const int64_t span = g.W - g.S + g.pad_left;
  const int64_t ow_hi = span < 0 ? ow_lo : std::max(ow_lo, std::min(g.OW, span / g.stride_w + 1));
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t ih0 = oh * g.stride_h - g.pad_top;
    const bool rows_in = ih0 >= 0 && ih0 + g.R <= g.H;
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const int64_t iw0 = ow * g.stride_w - g.pad_left;
      const int64_t o = oh * g.OW + ow;
      if (R > 0 && rows_in && ow == ow_lo && ow_hi > ow_lo) {
        // A fixed window (2x2, 3x3) whose rows are inside, over the run of windows that are inside
        // horizontally too, select-based (no data-dependent branches, which mispredict on real
        // activations). Windows side by side take one pass (below); other strides two: the maxima of
        // each input column over the R rows (contiguous, so the compiler vectorises it), then of S
        // neighbouring column maxima per window. Ties resolve as in window_max's row-major scan: the
        // smallest row, then the smallest column.
        const int32_t pl = static_cast<int32_t>(g.pad_left), sw = static_cast<int32_t>(g.stride_w);
        const int32_t x0 = static_cast<int32_t>(ow_lo) * sw - pl, x1 = static_cast<int32_t>(ow_hi - 1) * sw - pl + S;
        const T* r0 = xc + ih0 * g.W;
        const int32_t Wi = static_cast<int32_t>(g.W), base = static_cast<int32_t>(ih0 * g.W);
        if (sw == S) {
          // Windows side by side (stride = width: the scene models' 3x3/3 and 2x2/2): one pass, the
          // window's cells read as S-element groups per row and scanned in row-major order with
          // selects; vectorised over the windows. The two passes below left the second one scalar
          // (neighbouring column maxima at stride S): pool/max/default 3x3 after conv1 16.8 ms before.
          T* yo = y + oh * g.OW + ow_lo;
          int32_t* ao = A ? argmax + oh * g.OW + ow_lo : nullptr;
          const T* c0 = r0 + x0;
          const int32_t nq = static_cast<int32_t>(ow_hi - ow_lo), first = base + x0;
#pragma omp simd
          for (int32_t q = 0; q < nq; ++q) {
            const T* p = c0 + q * S;
            T best = p[0];
            int32_t at = 0;
            for (int r = 0; r < R; ++r)
              for (int c = 0; c < S; ++c) {
                if (r == 0 && c == 0) continue;
                const T v = p[r * Wi + c];
                const int32_t gt = v > best;  // strict: the first maximum in row-major order stays
                at += gt * (r * Wi + c - at);
                best = std::max(best, v);
              }
            yo[q] = best;
            if constexpr (A) ao[q] = first + q * S + at;
          }
          ow = ow_hi - 1;
          continue;
        }
        static thread_local std::vector<T> col_max;
        static thread_local std::vector<int32_t> col_row;
        if (static_cast<int32_t>(col_max.size()) < x1) col_max.resize(static_cast<size_t>(x1)), col_row.resize(static_cast<size_t>(x1));
        T* cm = col_max.data();
        int32_t* cr = col_row.data();
#pragma omp simd
        for (int32_t x = x0; x < x1; ++x) {
          T best = r0[x];
          int32_t row = 0;
          for (int r = 1; r < R; ++r) {  // arithmetic on the comparison: GCC vectorises this form
            const T v = r0[r * Wi + x];
            const int32_t gt = v > best;
            row += gt * (r - row);
            best = std::max(best, v);
          }
          cm[x] = best;
          cr[x] = row;
        }
        T* yo = y + oh * g.OW;
        int32_t* ao = A ? argmax + oh * g.OW : nullptr;
        for (int64_t q = ow_lo; q < ow_hi; ++q) {
          const int32_t c = static_cast<int32_t>(q) * sw - pl;
          T best = cm[c];
          int32_t row = cr[c], col = 0;
          for (int s = 1; s < S; ++s) {
            const T v = cm[c + s];
            const int32_t take = (v > best) | ((v == best) & (cr[c + s] < row));
            row += take * (cr[c + s] - row);
            col += take * (s - col);
            best = std::max(best, v);
          }
          yo[q] = best;
          if constexpr (A) ao[q] = base + row * Wi + c + col;
        }
        ow = ow_hi - 1;
        continue;
      }
      if (rows_in && iw0 >= 0 && iw0 + g.S <= g.W) {  // the whole window is inside: no bounds checks
        T best;
        int64_t at;
        window_max<T, R, S>(xc + ih0 * g.W + iw0, g.W, g.R, g.S, best, at);
        y[o] = best;
        if constexpr (A) argmax[o] = static_cast<int32_t>(ih0 * g.W + iw0 + at);
        continue;
      }
      int64_t best = -1;
      for (int64_t r = 0; r < g.R; ++r) {
        const int64_t ih = ih0 + r;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t s = 0; s < g.S; ++s) {
          const int64_t iw = iw0 + s;
          if (iw < 0 || iw >= g.W) continue;
          const int64_t i = ih * g.W + iw;
          if (best < 0 || xc[i] > xc[best]) best = i;
        }
      }
      y[o] = best >= 0 ? xc[best] : T(0);
      if constexpr (A) argmax[o] = static_cast<int32_t>(best);
    }
  }
}
// The body with or without the winners' offsets, as argmax is given (inlined into each ISA's copy).
template <class T, int R, int S>
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
inline void max_pool_plane_any(const T* xc, const Conv2DGeom& g, T* y, int32_t* argmax, int64_t oh_begin,
                               int64_t oh_end) {
  if (argmax)
    max_pool_plane_body<T, R, S>(xc, g, y, argmax, oh_begin, oh_end);
  else
    max_pool_plane_body<T, R, S, false>(xc, g, y, argmax, oh_begin, oh_end);
}
template <class T, int R, int S>
void max_pool_plane(const T* xc, const Conv2DGeom& g, T* y, int32_t* argmax, int64_t oh_begin, int64_t oh_end) {
  max_pool_plane_any<T, R, S>(xc, g, y, argmax, oh_begin, oh_end);
}

#ifdef TINYCNN_HAVE_X86_TARGETS
#define TINYCNN_HAVE_X86_POOL 1
template <class T, int R, int S>
TINYCNN_TARGET_AVX2 void max_pool_plane_avx2(const T* xc, const Conv2DGeom& g, T* y, int32_t* argmax,
                                             int64_t oh_begin, int64_t oh_end) {
  max_pool_plane_any<T, R, S>(xc, g, y, argmax, oh_begin, oh_end);
}
template <class T, int R, int S>
TINYCNN_TARGET_AVX512 void max_pool_plane_avx512(const T* xc, const Conv2DGeom& g, T* y, int32_t* argmax,
                                                 int64_t oh_begin, int64_t oh_end) {
  max_pool_plane_any<T, R, S>(xc, g, y, argmax, oh_begin, oh_end);
}
#endif

// The plane routine for an R x S window (0, 0: any size) on this CPU.
template <class T, int R, int S>
auto max_pool_plane_for_cpu() -> void (*)(const T*, const Conv2DGeom&, T*, int32_t*, int64_t, int64_t) {
#ifdef TINYCNN_HAVE_X86_POOL
  if (cpu_features().avx512) return &max_pool_plane_avx512<T, R, S>;
  if (cpu_features().avx2_fma) return &max_pool_plane_avx2<T, R, S>;
#endif
  return &max_pool_plane<T, R, S>;
}

// 2x2 windows side by side with none hanging over the plane (the scene models' pools) take pool_2x2.hpp's
// routines with intrinsics for float: the AVX-512 one on any plane, the AVX2 one on planes of up to
// 64 KiB. Alternated in one process with the compiled copies, batch 32 (docs/performance.md, forty-eighth
// session): AVX-512 0.19-0.76x the time on planes of 12^2 to 148^2; AVX2 0.30-0.88x on 12^2 to 110^2,
// but 1.13-1.14x on 32 x 148^2 planes read from memory (90 MB; a first layer's output pooled apart
// from its convolution).
constexpr int64_t kPool2x2Avx2PlaneBytes = int64_t(64) << 10;

// The plane routine for g's window on this CPU (unrolled for 2x2 and 3x3; pool_2x2.hpp's as above): one
// plane of x [H, W] -> y, argmax [OH, OW], output rows [oh_begin, oh_end) (a band of them:
// kernels/cpu/conv_pool.hpp); argmax may be null (not written).
template <class T>
auto max_pool_plane_fn(const Conv2DGeom& g) -> void (*)(const T*, const Conv2DGeom&, T*, int32_t*, int64_t, int64_t) {
#ifdef TINYCNN_HAVE_X86_POOL
  if constexpr (std::is_same_v<T, float>) {
    if (g.R == 2 && g.S == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_top == 0 && g.pad_left == 0 &&
        2 * g.OH <= g.H && 2 * g.OW <= g.W) {
      if (cpu_features().avx512) return &max_pool2x2_plane_avx512;
      if (cpu_features().avx2_fma && g.H * g.W * int64_t(sizeof(float)) <= kPool2x2Avx2PlaneBytes)
        return &max_pool2x2_plane_avx2;
    }
  }
#endif
  return g.R == 2 && g.S == 2   ? max_pool_plane_for_cpu<T, 2, 2>()
         : g.R == 3 && g.S == 3 ? max_pool_plane_for_cpu<T, 3, 3>()
                                : &max_pool_plane<T, 0, 0>;
}
}  // namespace detail

// y = max over each window; argmax = index ih*W + iw of the (first) maximum in its [H, W] plane,
// or -1 for a window without real cells (y = 0 there; impossible for 'valid' and 'same' windows).
// Windows fully inside the plane take a branch-free path (unrolled for 2x2 and 3x3). argmax null: not
// computed (inference: the ops pass null where no backward will read it; the pass is bound by its
// stores, and the winners' indices are as many bytes as y).
//   x: [N, C, H, W], y: [N, C, OH, OW] (written), argmax: [N, C, OH, OW] (written) or null
template <class T>
void max_pool2d_forward(const T* x, const Conv2DGeom& g, T* y, int32_t* argmax) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
  const bool par = g.N * g.C * L * g.R * g.S > kParallelMinWork;
  auto plane = detail::max_pool_plane_fn<T>(g);
#pragma omp parallel for if (par)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc)
    plane(x + nc * HW, g, y + nc * L, argmax ? argmax + nc * L : nullptr, 0, g.OH);
}

namespace detail {
// The window's gradient dy, or 0 where the ReLU mask of relu_y (max_pool2d_backward) is off.
template <class T>
inline T pool_masked_grad(T dy, const T* relu_y, int64_t i, T relu_cap) {
  if (!relu_y) return dy;
  const T y = relu_y[i];
  return y > T(0) && (relu_cap <= T(0) || y < relu_cap) ? dy : T(0);
}

// One fresh plane of dx for windows that tile the plane without overlap or padding (stride = pool
// size, no padding; R, S: the pool size, 0 = g's): every cell written once, its window's gradient
// where it is the window's winner, else 0 (the bottom rows and right columns no window covers: 0).
// A zero fill followed by a scatter wrote the plane twice with a data-dependent branch per window.
// sum (optional): set to the sum of the plane's (masked) window gradients, i.e. of dx over the plane.
template <class T, int R, int S>
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
inline void max_pool_backward_plane_dense_body(const T* dy, const int32_t* argmax, const Conv2DGeom& g,
                                               const T* relu_y, T relu_cap, T* dx, T* sum) {
  const int64_t r_n = R > 0 ? R : g.R, s_n = S > 0 ? S : g.S, OW = g.OW, W = g.W;
  T total = T(0);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t o = oh * OW;
    if (sum) {  // the row's window gradients, summed in a loop of their own (in the writing loop below,
                // the reduction stopped GCC vectorising it: the pass took 1.6x as long)
      T t = T(0);
      if (relu_y) {
#pragma omp simd reduction(+ : t)
        for (int64_t ow = 0; ow < OW; ++ow) t += pool_masked_grad(dy[o + ow], relu_y, o + ow, relu_cap);
      } else {
#pragma omp simd reduction(+ : t)
        for (int64_t ow = 0; ow < OW; ++ow) t += dy[o + ow];
      }
      total += t;
    }
    for (int64_t r = 0; r < r_n; ++r) {
      const int64_t h = oh * r_n + r;
      T* row = dx + h * W;
      const int32_t base = static_cast<int32_t>(h * W);
#pragma omp simd
      for (int64_t ow = 0; ow < OW; ++ow) {
        const T v = pool_masked_grad(dy[o + ow], relu_y, o + ow, relu_cap);
        const int32_t a = argmax[o + ow] - base - static_cast<int32_t>(ow * s_n);  // column in the window
        for (int64_t c = 0; c < s_n; ++c) row[ow * s_n + c] = a == c ? v : T(0);
      }
      std::fill(row + OW * s_n, row + W, T(0));
    }
  }
  std::fill(dx + g.OH * r_n * W, dx + g.H * W, T(0));
  if (sum) *sum = total;
}
template <class T, int R, int S>
void max_pool_backward_plane_dense(const T* dy, const int32_t* argmax, const Conv2DGeom& g, const T* relu_y,
                                   T relu_cap, T* dx, T* sum) {
  max_pool_backward_plane_dense_body<T, R, S>(dy, argmax, g, relu_y, relu_cap, dx, sum);
}
#ifdef TINYCNN_HAVE_X86_POOL
template <class T, int R, int S>
TINYCNN_TARGET_AVX2 void max_pool_backward_plane_dense_avx2(const T* dy, const int32_t* argmax, const Conv2DGeom& g,
                                                            const T* relu_y, T relu_cap, T* dx, T* sum) {
  max_pool_backward_plane_dense_body<T, R, S>(dy, argmax, g, relu_y, relu_cap, dx, sum);
}
template <class T, int R, int S>
TINYCNN_TARGET_AVX512 void max_pool_backward_plane_dense_avx512(const T* dy, const int32_t* argmax,
                                                                const Conv2DGeom& g, const T* relu_y, T relu_cap,
                                                                T* dx, T* sum) {
  max_pool_backward_plane_dense_body<T, R, S>(dy, argmax, g, relu_y, relu_cap, dx, sum);
}
#endif

// Where the 2x2 writers with intrinsics (pool_2x2.hpp) take a plane: planes of up to 32 KiB. On
// larger planes, where the pass runs at the memory's speed, writing the two rows side by side took
// 1.1-1.4x the time of the compiled loop's one row after the other; on the scene models' planes (12^2
// to 72^2) 0.16-0.8x (AVX-512) and 0.3-0.96x (AVX2), alternated in one process on a Zen 4
// (docs/performance.md, forty-eighth session). Where AVX-512 runs on full-width units (not
// CpuFeatures::avx512_half_width) the AVX-512 writer takes every plane: on the Zen 5, 32 x 148^2
// planes (model004's conv1) took 2.15 ms with it against 4.51 ms with the compiled loop
// (tinycnn_bench pool/max_backward, fiftieth session).
constexpr int64_t kPool2x2VectorPlaneBytes = int64_t(32) << 10;

// The dense plane writer for an R x S window (0, 0: any size) and g's planes on this CPU.
template <class T, int R, int S>
auto max_pool_backward_plane_dense_for_cpu(const Conv2DGeom& g)
    -> void (*)(const T*, const int32_t*, const Conv2DGeom&, const T*, T, T*, T*) {
#ifdef TINYCNN_HAVE_X86_POOL
  if constexpr (std::is_same_v<T, float> && R == 2 && S == 2) {
    const CpuFeatures& f = cpu_features();
    if (f.avx512 && !f.avx512_half_width) return &max_pool2x2_backward_plane_avx512;
    if (g.H * g.W * int64_t(sizeof(float)) <= kPool2x2VectorPlaneBytes) {
      if (f.avx512) return &max_pool2x2_backward_plane_avx512;
      if (f.avx2_fma) return &max_pool2x2_backward_plane_avx2;
    }
  }
  if (cpu_features().avx512) return &max_pool_backward_plane_dense_avx512<T, R, S>;
  if (cpu_features().avx2_fma) return &max_pool_backward_plane_dense_avx2<T, R, S>;
#else
  (void)g;
#endif
  return &max_pool_backward_plane_dense<T, R, S>;
}
}  // namespace detail

// dx[argmax] += dy (assign: dx is a fresh buffer, written whole here).
// relu_y (optional): the forward's pooled values y of an input that is a ReLU's output (capped at
// relu_cap when that is > 0): a window passes its gradient only where 0 < y (< relu_cap), which is
// that ReLU's backward at the window's winner (the winner's value is y), so the ReLU's own pass over
// the full-size input and its gradient can be skipped.
// db (optional): db[c] += the sum of dx's part added here over channel c's planes (the masked window
// gradients: each goes to one cell), in the same pass; a convolution before the pooling takes it as
// its bias gradient (ops::conv2d_max_pool2d) instead of summing its full-size output gradient.
//   dy: [N, C, OH, OW], argmax: [N, C, OH, OW] (from max_pool2d_forward), dx: [N, C, H, W] (+=),
//   relu_y: [N, C, OH, OW], db: [C] (+=)
template <class T>
void max_pool2d_backward(const T* dy, const int32_t* argmax, const Conv2DGeom& g, T* dx, bool assign = false,
                         const T* relu_y = nullptr, T relu_cap = T(0), T* db = nullptr) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
  const bool par = g.N * g.C * L > kParallelMinWork;
  std::vector<T> sums(db ? static_cast<size_t>(g.N * g.C) : 0);  // per plane, added in a fixed order below
  // Windows side by side inside the plane (the scene models' 2x2/2 and 3x3/3, 'valid'; 'same' pads
  // bottom/right only, then the last windows may hang over): a fresh plane is written in one pass
  const bool tiled = assign && g.stride_h == g.R && g.stride_w == g.S && g.pad_top == 0 && g.pad_left == 0 &&
                     g.OH * g.R <= g.H && g.OW * g.S <= g.W;
  auto dense = g.R == 2 && g.S == 2   ? detail::max_pool_backward_plane_dense_for_cpu<T, 2, 2>(g)
               : g.R == 3 && g.S == 3 ? detail::max_pool_backward_plane_dense_for_cpu<T, 3, 3>(g)
                                      : &detail::max_pool_backward_plane_dense<T, 0, 0>;
  // static: thread t writes a contiguous run of samples, the run the few-channel weight-gradient pass
  // (conv_fewc.hpp) gives it when it reads dx back (conv2d_max_pool2d's backward chunks)
#pragma omp parallel for schedule(static) if (par)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {  // each (n, c) plane is written by one thread
    T* dxc = dx + nc * HW;
    const int32_t* a = argmax + nc * L;
    const T* d = dy + nc * L;
    const T* y = relu_y ? relu_y + nc * L : nullptr;
    T* sum = db ? &sums[static_cast<size_t>(nc)] : nullptr;
    if (tiled) {
      dense(d, a, g, y, relu_cap, dxc, sum);
      continue;
    }
    if (assign) std::fill(dxc, dxc + HW, T(0));  // a fresh buffer, zeroed a plane at a time (stays in cache)
    T total = T(0);
    for (int64_t i = 0; i < L; ++i)
      if (a[i] >= 0) {
        const T v = detail::pool_masked_grad(d[i], y, i, relu_cap);
        dxc[a[i]] += v;
        total += v;
      }
    if (sum) *sum = total;
  }
  if (db)
    for (int64_t c = 0; c < g.C; ++c) {
      T s = T(0);
      for (int64_t n = 0; n < g.N; ++n) s += sums[static_cast<size_t>(n * g.C + c)];
      db[c] += s;
    }
}

namespace detail {
// Clipped window [h0, h1) x [w0, w1) of output (oh, ow).
inline void pool_window(const Conv2DGeom& g, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1, int64_t& w0,
                        int64_t& w1) {
  h0 = oh * g.stride_h - g.pad_top;
  w0 = ow * g.stride_w - g.pad_left;
  h1 = h0 + g.R < g.H ? h0 + g.R : g.H;
  w1 = w0 + g.S < g.W ? w0 + g.S : g.W;
  if (h0 < 0) h0 = 0;
  if (w0 < 0) w0 = 0;
}
}  // namespace detail

// y = mean of the real (unpadded) cells of each window (0 for a window without any).
//   x: [N, C, H, W], y: [N, C, OH, OW] (written)
template <class T>
void avg_pool2d_forward(const T* x, const Conv2DGeom& g, T* y) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
  const bool par = g.N * g.C * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const T* xc = x + nc * HW;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t h0, h1, w0, w1;
        detail::pool_window(g, oh, ow, h0, h1, w0, w1);
        T s = T(0);
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += xc[ih * g.W + iw];
        const int64_t cnt = (h1 > h0 && w1 > w0) ? (h1 - h0) * (w1 - w0) : 0;
        y[nc * L + oh * g.OW + ow] = cnt ? s / static_cast<T>(cnt) : T(0);
      }
  }
}

//   dy: [N, C, OH, OW], dx: [N, C, H, W] (+=)
template <class T>
void avg_pool2d_backward(const T* dy, const Conv2DGeom& g, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
  const bool par = g.N * g.C * L * g.R * g.S > kParallelMinWork;
#pragma omp parallel for if (par)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    T* dxc = dx + nc * HW;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t h0, h1, w0, w1;
        detail::pool_window(g, oh, ow, h0, h1, w0, w1);
        if (h1 <= h0 || w1 <= w0) continue;
        const T d = dy[nc * L + oh * g.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dxc[ih * g.W + iw] += d;
      }
  }
}

// y[n, c] = mean over the [HW] plane
//   x: [N, C, HW], y: [N, C] (written)
template <class T>
void global_avg_pool2d_forward(const T* x, int64_t N, int64_t C, int64_t HW, T* y) {
  for (int64_t nc = 0; nc < N * C; ++nc) {
    T s = T(0);
    for (int64_t i = 0; i < HW; ++i) s += x[nc * HW + i];
    y[nc] = HW ? s / static_cast<T>(HW) : T(0);
  }
}

//   dy: [N, C], dx: [N, C, HW] (+=)
template <class T>
void global_avg_pool2d_backward(const T* dy, int64_t N, int64_t C, int64_t HW, T* dx) {
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const T d = HW ? dy[nc] / static_cast<T>(HW) : T(0);
    for (int64_t i = 0; i < HW; ++i) dx[nc * HW + i] += d;
  }
}

}  // namespace tinycnn::kernels::cpu
