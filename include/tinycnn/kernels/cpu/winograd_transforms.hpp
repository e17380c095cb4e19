#pragma once
// The transforms of Winograd's F(m x m, 3x3) (conv_winograd.hpp has the algorithm and the routines
// that use them): the filter transform U = G f G^T, the input transform V = B^T d B, the output
// transform y = A^T m A, and the weight gradient's adjoints (A e A^T of the output gradient, G^T dU G),
// over the WinogradGeom of one pass.
//
// They are written once for any m, as loops over the constant matrices; the compiler unrolls them and
// folds the zero and unit coefficients. The input, output and output-gradient transforms work per
// channel over all samples of a group (the input transform into a large prepacked V: per sliver of
// columns, then per channel), and their vector axis is a block of 16 consecutive tile
// columns p (kWinogradLanes), whatever the plane size: each lane gathers its tile from a zero-padded
// copy of its plane, and each point's 16 results are one contiguous store.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_features.hpp"
#include "im2col.hpp"
#include "winograd_lanes.hpp"
#include "winograd_matrices.hpp"

namespace tinycnn::kernels::cpu {

// One stride-1 3x3 correlation as the Winograd routine computes it:
//   out[n, o, oh, ow] (=, or +=) sum over i, r, s of in[n, i, oh - pad_top + r, ow - pad_left + s] * f[o, i, r, s],
// with in = 0 outside [0, H) x [0, W). Output tiles are m x m; the last row / column of tiles may hang
// over the output's edge (those values are computed and dropped).
struct WinogradGeom {
  int64_t N = 0, Ci = 0, H = 0, W = 0;  // input [N, Ci, H, W]
  int64_t Co = 0, OH = 0, OW = 0;       // output [N, Co, OH, OW]
  int64_t pad_top = 0, pad_left = 0;
  int64_t m = 2;  // output tile m x m: 2, 3 or 4
  // Elements from one channel's plane to the next (0: H * W, OH * OW). Larger for a band of rows of
  // bigger planes: the fused pass (winograd_conv3x3_fused) runs the transforms on such bands.
  int64_t in_plane = 0, out_plane = 0;
  int64_t in_stride() const { return in_plane > 0 ? in_plane : H * W; }
  int64_t out_stride() const { return out_plane > 0 ? out_plane : OH * OW; }
  int64_t alpha() const { return m + 2; }
  int64_t points() const { return alpha() * alpha(); }  // GEMMs per group
  int64_t tiles_h() const { return (OH + m - 1) / m; }
  int64_t tiles_w() const { return (OW + m - 1) / m; }
  int64_t tiles() const { return tiles_h() * tiles_w(); }  // per sample
};

namespace detail {

// The transforms are compiled for float for the baseline ISA (SSE2 on x86-64) and inside AVX-512
// target attributes (the *_avx512 entries below), chosen at run time; with the 16-lane blocks each
// vector loop is one zmm register wide. The entries are flattened (every call in them inlined, the
// compile-time loops' lambdas included), so that no part of a transform runs as a baseline call. The
// filter, input and output transforms also have AVX2 + FMA copies (*_avx2, the baseline code compiled
// for AVX2, its 4-lane gathers included): under TINYCNN_MAX_ISA=avx2 on a Zen 4, alternated in one
// process (docs/performance.md, forty-sixth session), model3's conv2 passes took 0.91-0.94x the time,
// conv3's 0.94-0.98x, conv4-conv6's 0.96-1.01x. An 8-lane AVX2 gather with 32-byte stores (as the
// AVX-512 copies' 16-lane one) made them slower (conv2 1.08-1.23x), and AVX2 copies of the two
// weight-gradient transforms did not gain (0.94-1.03x). Since the forty-eighth session the AVX2 copies
// pad rows of up to 16 values by vectors (winograd_pad_plane_avx2), and the output-gradient transform
// has an AVX2 copy taken where that pad applies.
#if defined(TINYCNN_HAVE_X86_TARGETS)
#define TINYCNN_WINOGRAD_AVX512 TINYCNN_TARGET_AVX512 __attribute__((flatten))
#define TINYCNN_WINOGRAD_AVX2 TINYCNN_TARGET_AVX2 __attribute__((flatten))
#endif

// Elements of one point's plane of V ([Ci, P]): Ci * P, or in gemm_nn_prepacked_b's layout (nr > 0)
// ceil(P / nr) slivers of Ci * nr.
inline int64_t winograd_v_plane(int64_t Ci, int64_t P, int64_t nr) {
  return nr > 0 ? (P + nr - 1) / nr * nr * Ci : Ci * P;
}
// Elements of one point's plane of U ([Co, Ci]): Co * Ci, or in gemm_nn_prepacked_ab's layout (mr > 0)
// ceil(Co / mr) slivers of mr * Ci.
inline int64_t winograd_u_plane(int64_t Co, int64_t Ci, int64_t mr) {
  return mr > 0 ? (Co + mr - 1) / mr * mr * Ci : Co * Ci;
}

// Sliver sl of the filter transform (winograd_filter_transform_m below).
template <int m, class T>
void winograd_filter_sliver(const T* w, int64_t K, int64_t C, bool rotate, T* U, int64_t mr, int64_t sl,
                            bool stream = false) {
  constexpr int a = m + 2;
  // Each sliver of mr rows of U (mr = 1: one row, the plain layout) is one run of inner * mr elements
  // in every plane, position p = column * mr + row (gemm_nn_prepacked_ab's layout). The loop runs
  // along that run in blocks of 16 positions, the 16 filters of a block as the vector axis, so every
  // plane receives one contiguous 64-byte store per block (for model3's conv6, m = 2: 3.9 ms instead
  // of 11.4 ms when each filter's values went straight into the planes, and the filter-at-a-time
  // arithmetic was scalar: conv6, m = 2, 4.7 -> 3.7 ms forward and 4.8 -> 4.1 ms rotated; m = 3 7.6 ->
  // 6.1 and 8.6 -> 6.1 ms; medians of 3 rounds of best-of-7, 2 threads, a standalone program). The
  // packed layout's first version went row by row with stores mr apart and took 1.5-1.8x as long.
  constexpr int64_t kB = 16, kFilterAhead = 4;
  const int64_t outer = rotate ? C : K, inner = rotate ? K : C, plane = winograd_u_plane(outer, inner, mr);
  const int64_t run = inner * mr;
  T* dst = U + sl * run;
  for (int64_t p0 = 0; p0 < run; p0 += kB) {
    const int64_t n = std::min(kB, run - p0);
    // Rotated, a block reads its columns' mr filters as one run of mr * 9 values per column, and the
    // columns lie C * 9 values apart (18 KB for conv6): a stride the hardware prefetchers do not
    // follow. Fetching the block kFilterAhead blocks on took conv6's rotated transform (52 MB of U)
    // from 11.9 to 8.9 ms and conv5's from 4.4 to 2.7 ms (medians of 6 alternated runs, 2 threads;
    // docs/performance.md, thirtieth session). Not rotated, each row is read in order and prefetching
    // did not help.
    if (rotate && p0 + kFilterAhead * kB < run) {
      const int64_t e = (p0 + kFilterAhead * kB) / mr;  // the first column of that block
      for (int64_t c = e; c <= std::min(e + kB / mr, inner - 1); ++c) {
        const char* f = reinterpret_cast<const char*>(w + (c * C + sl * mr) * 9);
        for (int64_t b = 0; b < mr * 9 * int64_t(sizeof(T)) + 63; b += 64) __builtin_prefetch(f + b, 0, 3);
      }
    }
    T g[9][kB];  // the block's filters, cell r * 3 + s first (rotated 180 degrees for backward data)
    for (int64_t l = 0, e = p0 / mr, r = p0 % mr; l < kB; ++l) {  // position p0 + l: column e, row r
      const int64_t o = sl * mr + r;
      const T* f = w + (rotate ? e * C + o : o * C + e) * 9;
      // zero past the run and for the padding rows of the last sliver
      for (int rs = 0; rs < 9; ++rs) g[rs][l] = l < n && o < outer ? f[rotate ? 8 - rs : rs] : T(0);
      if (++r == mr) r = 0, ++e;
    }
    T t[a][3][kB];  // G g
    winograd_for<a>([&](auto i) {
      winograd_for<3>([&](auto s) {
#pragma omp simd
        for (int64_t l = 0; l < kB; ++l) {
          const auto& gg = g;  // local to the loop for clang (see kWinogradLanes)
          t[i][s][l] = winograd_dot<T, WinogradGRow<m, i>, 3>([&](int r) { return gg[r * 3 + s][l]; });
        }
      });
    });
    T tmp[a * a][kB];  // (G g) G^T
    winograd_for<a>([&](auto i) {
      winograd_for<a>([&](auto j) {
#pragma omp simd
        for (int64_t l = 0; l < kB; ++l) {
          const auto& tt = t;
          tmp[a * i + j][l] = winograd_dot<T, WinogradGRow<m, j>, 3>([&](int s) { return tt[i][s][l]; });
        }
      });
    });
    if (n == kB) {  // a fixed length: with n, GCC calls memmove for each 64-byte run
      for (int xi = 0; xi < a * a; ++xi)  // streamed where U is large (kWinogradFilterStreamBytes)
        winograd_put(kB, dst + xi * plane + p0, [&](int64_t l) { return tmp[xi][l]; }, stream);
    } else {
      for (int xi = 0; xi < a * a; ++xi)
        for (int64_t l = 0; l < n; ++l) dst[xi * plane + p0 + l] = tmp[xi][l];
    }
  }
  winograd_stream_fence(stream);  // before the caller's barrier hands U on
}

#if defined(TINYCNN_HAVE_X86_TARGETS)
template <int m, class T>
TINYCNN_WINOGRAD_AVX2 void winograd_filter_sliver_avx2(const T* w, int64_t K, int64_t C, bool rotate, T* U, int64_t mr,
                                                     int64_t sl, bool stream = false) {
  winograd_filter_sliver<m>(w, K, C, rotate, U, mr, sl, stream);
}
template <int m, class T>
TINYCNN_WINOGRAD_AVX512 void winograd_filter_sliver_avx512(const T* w, int64_t K, int64_t C, bool rotate, T* U,
                                                         int64_t mr, int64_t sl, bool stream = false) {
  winograd_filter_sliver<m>(w, K, C, rotate, U, mr, sl, stream);
}
#endif
// Which transforms have AVX-512 (and AVX2) copies: float, m = 2 and 3 (m = 4 is taken only when
// forced). They run on CPUs with AVX-512 (AVX2 + FMA).
template <int m, class T>
constexpr bool winograd_has_isa_copies =
#if defined(TINYCNN_HAVE_X86_TARGETS)
    std::is_same_v<T, float> && m != 4;
#else
    false;
#endif

// From this size of U on (all a^2 planes), the filter transform writes it with non-temporal stores.
// Each 64-byte block goes to another of the a^2 planes (25 for m = 3), and with ordinary stores every
// line is first read for ownership and then pushes older lines out of the caches; U is only read
// again by the point GEMMs after the whole transform. Streamed, model3's forward and backward-data
// passes took (alternated in one process, 2 threads, Zen 5): conv6 (U 52 MB) 0.87-0.95x the time,
// conv5 (13 MB) 0.80-0.83x, conv4 (3.3 MB) 0.92-0.94x, conv3 (0.8 MB) 0.97-0.98x; conv2 (0.2 MB) the
// same time either way (docs/performance.md, thirty-third session).
constexpr int64_t kWinogradFilterStreamBytes = int64_t(512) << 10;

template <int m, class T>
void winograd_filter_transform_m(const T* w, int64_t K, int64_t C, bool rotate, T* U, bool par, int64_t mr) {
  const int64_t outer = rotate ? C : K;
  auto sliver = &winograd_filter_sliver<m, T>;
#if defined(TINYCNN_HAVE_X86_TARGETS)
  if constexpr (winograd_has_isa_copies<m, T>) {
    if (cpu_features().avx512)
      sliver = &winograd_filter_sliver_avx512<m, T>;
    else if (cpu_features().avx2_fma)
      sliver = &winograd_filter_sliver_avx2<m, T>;
  }
#endif
  // Every streamed block is aligned where U is and a sliver's run (inner * mr elements) keeps it so.
  const int64_t inner = rotate ? K : C;
  const int64_t bytes = (m + 2) * (m + 2) * winograd_u_plane(outer, inner, mr) * int64_t(sizeof(T));
  const bool stream = bytes >= kWinogradFilterStreamBytes && winograd_can_stream(U, inner * mr);
#pragma omp parallel for if (par)
  for (int64_t sl = 0; sl < (outer + mr - 1) / mr; ++sl) sliver(w, K, C, rotate, U, mr, sl, stream);
}

// The vector loops below (#pragma omp simd) read their operands through a reference declared inside
// the loop: clang 14 with -fopenmp rejects a lambda nested in the loop that names a variable of the
// enclosing lambda's scope ("reference to local variable declared in enclosing context").

// isa: the gather and pad helpers of the copy (winograd_lanes.hpp).
// shared: the channel loop is work-shared (called by every thread of a parallel region; ends with a
// barrier), else one thread runs all channels.
template <int m, class T, WinogradIsa isa = WinogradIsa::Baseline>
void winograd_input_transform_m(const T* in, const WinogradGeom& q, int64_t n0, int64_t nb, T* V, int64_t nr,
                                bool shared) {
  constexpr int a = m + 2;
  constexpr bool wide = isa == WinogradIsa::Avx512;
  constexpr int64_t kL = kWinogradLanes;
  const int64_t TW = q.tiles_w(), NT = q.tiles(), P = nb * NT;
  const int64_t xs = winograd_v_plane(q.Ci, P, nr);  // elements from one point's plane to the next
  // One channel's zero-padded input planes, all nb samples: tile (ty, tx) reads rows m ty .. m ty + a - 1
  // and columns m tx .. m tx + a - 1 of its sample's plane.
  const int64_t rows = m * q.tiles_h() + 2, cols = m * TW + 2, psz = rows * cols;
  T* planes = conv_scratch<T, 2>(nb * psz + 4);  // + 4: the wide gather's over-read past the last tile
  const int64_t* off = winograd_tile_offsets<0>(P, NT, TW, psz, m * cols, m);
  const int64_t run = nr > 0 ? nr : P;  // columns of one sliver of V's packed layout (contiguous per point)
  const int64_t ls = q.in_stride();
  int64_t c0, c1;
  winograd_share(q.Ci, shared, c0, c1);
  // The columns go in chunks [p_lo, p_hi) of whole slivers, all of the thread's channels per chunk:
  // one chunk (all columns) unless V is prepacked and large, then one sliver per chunk, so that each
  // point's stores run on through the sliver's rows (channel after channel) instead of writing 64
  // bytes into each of the ~P / nr slivers per channel, whose lines then leave the caches half
  // written: the transform alone at batch 32, conv3 (V 16.6 MB) 0.47-0.52x the time, conv4 0.65-0.67x,
  // conv6 0.77-0.78x (docs/performance.md, thirty-first session). Each chunk pads only the rows its
  // tiles read (2 rows more per sliver boundary; whole planes per sliver took conv2's transform at 10
  // samples from 0.73 to 1.22 ms, its rows 0.60). The threshold keeps the old order where V stays in
  // the caches: there the reordering saved nothing (conv3 at 2-4 samples, V of 1-2 MB, whole planes
  // padded per sliver: 1.15-1.7x the time).
  const bool by_sliver = nr > 0 && q.points() * xs * int64_t(sizeof(T)) > kWinogradSliverMajorBytes;
  // The grouped plan (shared) writes a prepacked V with non-temporal stores: both threads write it and
  // both threads' point GEMMs read it, so with ordinary stores each line first moved to the writer's
  // cache and then to the other core's. Streamed, model3's grouped forward and backward-data passes
  // took (alternated in one process, 2 threads, Zen 5): conv4 0.86-0.92x the time, conv5 0.92-0.94x,
  // conv6 0.93-0.99x; a 128 -> 256 layer on 17x17 (as model004's) 0.85-0.91x
  // (docs/performance.md, thirty-third session); the plain V of the grouped weight gradient likewise
  // (see the output-gradient transform).
  // The fused plan's blocks stay in their thread's L2 cache and are not streamed (streamed, conv2 and
  // conv3 took 1.00-1.14x). Runs of kL columns start at multiples of nr (packed) or P (plain).
  const bool stream = shared && winograd_can_stream(V, nr > 0 ? nr : P);
  const int64_t slivers = (P + run - 1) / run, per = by_sliver ? 1 : slivers;
  for (int64_t h = 0; h < slivers; h += per) {
    const int64_t p_lo = h * run, p_hi = std::min(P, (h + per) * run);
    const int64_t j_lo = p_lo / NT, j_hi = (p_hi - 1) / NT + 1;  // the samples of its tiles
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t j = j_lo; j < j_hi; ++j) {
        // the padded rows that the chunk's tiles of sample j read
        const int64_t t0 = std::max<int64_t>(p_lo - j * NT, 0), t1 = std::min<int64_t>(p_hi - j * NT, NT);
        const int64_t r0 = m * (t0 / TW), r1 = m * ((t1 - 1) / TW + 1) + 2;
        const T* src = in + ((n0 + j) * q.Ci + c) * ls;
#if defined(TINYCNN_HAVE_X86_TARGETS)
        if constexpr (isa != WinogradIsa::Baseline) {
          if (cols <= (wide ? kWinogradPadVectorCols : kWinogradPadVectorColsAvx2)) {
            const int64_t end = (nb - j) * psz + 4;
            if constexpr (wide)
              winograd_pad_plane_avx512(src, q.H, q.W, q.pad_top, q.pad_left, cols, planes + j * psz, r0, r1, end);
            else
              winograd_pad_plane_avx2(src, q.H, q.W, q.pad_top, q.pad_left, cols, planes + j * psz, r0, r1, end);
            continue;
          }
        }
#endif
        winograd_pad_plane(src, q.H, q.W, q.pad_top, q.pad_left, rows, cols, planes + j * psz, r0, r1);
      }
      // Blocks of kL columns inside one sliver: gather each lane's a x a input, then B^T d B with the
      // lanes as the vector axis, stored as one contiguous run of cnt values per point.
      for (int64_t p0 = p_lo, s0 = p_lo; p0 < p_hi;) {  // s0: the first column of p0's sliver
        const int64_t cnt = std::min({kL, p_hi - p0, s0 + run - p0});
        alignas(64) T d[a * a][kL];
        winograd_gather<a, a, false, wide>(planes, off + p0, cnt, cols, d);
        T t[a * a][kL];  // B^T d: rows
        winograd_for<a>([&](auto i) {
          winograd_for<a>([&](auto x) {
#pragma omp simd
            for (int64_t l = 0; l < kL; ++l) {
              const auto& dd = d;
              t[i * a + x][l] = winograd_dot<T, WinogradBTRow<m, i>, a>([&](int k) { return dd[k * a + x][l]; });
            }
          });
        });
        T* dst = nr > 0 ? V + s0 * q.Ci + c * nr + (p0 - s0) : V + c * P + p0;
        winograd_for<a>([&](auto i) {  // (B^T d) B: columns
          winograd_for<a>([&](auto jj) {
            winograd_put(
                cnt, dst + (i * a + jj) * xs,
                [&](int64_t l) {
                  return winograd_dot<T, WinogradBTRow<m, jj>, a>([&](int k) { return t[i * a + k][l]; });
                },
                stream);
          });
        });
        p0 += cnt;
        if (p0 == s0 + run) s0 = p0;
      }
    }
  }
  winograd_stream_fence(stream);
  if (shared) {
#pragma omp barrier
  }
}

// shared: as for the input transform, over output channels.
template <int m, class T>
void winograd_output_transform_m(const T* M, const WinogradGeom& q, int64_t n0, int64_t nb, const T* bias, bool relu,
                                 bool accumulate, T* out, T relu_max, bool shared) {
  constexpr int a = m + 2;
  constexpr int64_t kL = kWinogradLanes;
  const int64_t TW = q.tiles_w(), NT = q.tiles(), P = nb * NT, KP = q.Co * P, plane = q.out_stride();
  // Per output channel k: blocks of kL tile columns, A^T m A with the lanes as the vector axis, each
  // lane's m x m outputs into a per-thread copy of the channel's nb output planes, whose rows then go
  // out with the epilogue. The copy's layout depends on the plane size:
  //  - phased (NT >= 2 kL: most blocks lie inside one sample): phase-major, ph[j S + (i m + jj) NT + t]
  //    = row m ty + i, column m tx + jj of sample j's tile t = ty TW + tx, so a block is one
  //    contiguous run per phase, and each output row is interleaved from its m phases;
  //  - else (blocks span samples): zero-padded m TH x m TW planes, each lane's tile stored whole.
  // Measured (docs/performance.md, sixteenth session): storing the lanes' tiles one by one took 1.5x
  // as long as the phased runs on 50x50 planes, the phased rows 1.6x as long as the tiles on 6x6.
  const bool phased = NT >= 2 * kL;
  const int64_t S = m * m * NT, cols = m * TW, psz = m * q.tiles_h() * cols;
  T* buf = conv_scratch<T, 2>(phased ? nb * S + cols : nb * psz);
  T* row = buf + nb * S;  // phased: one output row, the m phases interleaved
  // each lane's tile: sample j's tile t at buf + j S + t (phased; element (i, jj) m NT i + NT jj further)
  // or at buf + j psz + m (ty cols + tx) (element (i, jj) cols i + jj further)
  const int64_t* off = winograd_tile_offsets<1>(P, NT, TW, phased ? S : psz, phased ? TW : m * cols, phased ? 1 : m);
  const int64_t ri = phased ? m * NT : cols, rj = phased ? NT : 1;
  int64_t k0, k1;
  winograd_share(q.Co, shared, k0, k1);
  for (int64_t k = k0; k < k1; ++k) {
    for (int64_t p0 = 0, j0 = 0, t0 = 0; p0 < P; p0 += kL) {  // p0 = j0 NT + t0
      const int64_t cnt = std::min(kL, P - p0);
      // the block's a^2 values per lane: read in place, or a zero-padded copy for a short block
      const T* vb = M + k * P + p0;
      int64_t vs = KP;
      T v[a * a][kL];
      if (cnt < kL) {
        for (int xi = 0; xi < a * a; ++xi)
          for (int64_t l = 0; l < kL; ++l) v[xi][l] = l < cnt ? vb[xi * KP + l] : T(0);
        vb = v[0], vs = kL;
      }
      T s[m][a][kL];  // A^T m: rows
      winograd_for<m>([&](auto i) {
        winograd_for<a>([&](auto x) {
#pragma omp simd
          for (int64_t l = 0; l < kL; ++l) {
            const T* const v0 = vb;
            const int64_t v1 = vs;
            s[i][x][l] = winograd_dot<T, WinogradATRow<m, i>, a>([&](int kk) { return v0[(kk * a + x) * v1 + l]; });
          }
        });
      });
      T y[m][m][kL];  // (A^T m) A: columns
      winograd_for<m>([&](auto i) {
        winograd_for<m>([&](auto jj) {
#pragma omp simd
          for (int64_t l = 0; l < kL; ++l) {
            const auto& ss = s;
            y[i][jj][l] = winograd_dot<T, WinogradATRow<m, jj>, a>([&](int x) { return ss[i][x][l]; });
          }
        });
      });
      if (phased && cnt == kL && t0 + kL <= NT) {  // one sample: a contiguous run per phase
        winograd_for<m>([&](auto i) {
          winograd_for<m>([&](auto jj) {
            T* d = buf + j0 * S + (i * m + jj) * NT + t0;
#pragma omp simd
            for (int64_t l = 0; l < kL; ++l) d[l] = y[i][jj][l];
          });
        });
      } else {
        for (int64_t l = 0; l < cnt; ++l) {
          T* d = buf + off[p0 + l];  // element (i, jj) of the lane's tile at d[i * ri + jj * rj]
          winograd_for<m>([&](auto i) { winograd_for<m>([&](auto jj) { d[i * ri + jj * rj] = y[i][jj][l]; }); });
        }
      }
      for (t0 += kL; t0 >= NT; t0 -= NT) ++j0;
    }
    const T b = bias ? bias[k] : T(0);
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t oh = 0; oh < q.OH; ++oh) {
        const T* r = buf + j * psz + oh * cols;
        if (phased) {
          winograd_interleave_row<m>(buf + j * S + (oh % m) * m * NT + (oh / m) * TW, NT, TW, row);
          r = row;
        }
        T* d = out + ((n0 + j) * q.Co + k) * plane + oh * q.OW;
        if (accumulate) {
#pragma omp simd
          for (int64_t ow = 0; ow < q.OW; ++ow) d[ow] += r[ow];
        } else if (relu && relu_max > T(0)) {
#pragma omp simd
          for (int64_t ow = 0; ow < q.OW; ++ow) d[ow] = std::min(std::max(r[ow] + b, T(0)), relu_max);
        } else if (relu) {
#pragma omp simd
          for (int64_t ow = 0; ow < q.OW; ++ow) d[ow] = std::max(r[ow] + b, T(0));
        } else {
#pragma omp simd
          for (int64_t ow = 0; ow < q.OW; ++ow) d[ow] = r[ow] + b;
        }
      }
  }
  if (shared) {
#pragma omp barrier
  }
}

// shared: as for the input transform, over output channels; isa: as there.
template <int m, class T, WinogradIsa isa = WinogradIsa::Baseline>
void winograd_grad_output_transform_m(const T* dy, const WinogradGeom& q, int64_t n0, int64_t nb, T* G, bool shared) {
  constexpr int a = m + 2;
  constexpr bool wide = isa == WinogradIsa::Avx512;
  constexpr int64_t kL = kWinogradLanes;
  const int64_t TW = q.tiles_w(), NT = q.tiles(), P = nb * NT, KP = q.Co * P, plane = q.out_stride();
  // Per output channel k: its dy planes of the nb samples copied into zero-padded m TH x m TW planes
  // (so that every tile is whole), then blocks of kL tile columns: each lane's m x m tile e, A e A^T
  // with the lanes as the vector axis, stored as one run per point.
  const int64_t rows = m * q.tiles_h(), cols = m * TW, psz = rows * cols;
  T* planes = conv_scratch<T, 2>(nb * psz + 4);  // + 4: the gather's over-read past the last tile
  const int64_t* off = winograd_tile_offsets<2>(P, NT, TW, psz, m * cols, m);
  // Streamed in the grouped weight gradient (shared), as the input transform's V there and for the same
  // reason: conv6's weight gradient took 0.92-0.93x the time with both streamed, conv5's 0.83-0.85x.
  const bool stream = shared && winograd_can_stream(G, P);
  int64_t k0, k1;
  winograd_share(q.Co, shared, k0, k1);
  for (int64_t k = k0; k < k1; ++k) {
    for (int64_t j = 0; j < nb; ++j) {
      const T* src = dy + ((n0 + j) * q.Co + k) * plane;
#if defined(TINYCNN_HAVE_X86_TARGETS)
      // Short rows padded by whole vectors, as the input transform does (winograd_pad_plane_avx512):
      // model3's weight gradients alternated in one process, 2 threads (docs/performance.md,
      // forty-third session), conv5 0.95-0.97x the time, conv6 0.97-0.98x, conv4 0.99x.
      if constexpr (isa != WinogradIsa::Baseline) {
        if (cols <= (wide ? kWinogradPadVectorCols : kWinogradPadVectorColsAvx2)) {
          const int64_t end = (nb - j) * psz + 4;
          if constexpr (wide)
            winograd_pad_plane_avx512(src, q.OH, q.OW, 0, 0, cols, planes + j * psz, 0, rows, end);
          else
            winograd_pad_plane_avx2(src, q.OH, q.OW, 0, 0, cols, planes + j * psz, 0, rows, end);
          continue;
        }
      }
#endif
      winograd_pad_plane(src, q.OH, q.OW, 0, 0, rows, cols, planes + j * psz);
    }
    for (int64_t p0 = 0; p0 < P; p0 += kL) {
      const int64_t cnt = std::min(kL, P - p0);
      alignas(64) T e[m][m][kL];
      winograd_gather<m, m, true, wide>(planes, off + p0, cnt, cols, &e[0][0]);
      T u[a][m][kL];  // A e: u[x][jj] = sum_i AT[i][x] e[i][jj]
      winograd_for<a>([&](auto x) {
        winograd_for<m>([&](auto jj) {
#pragma omp simd
          for (int64_t l = 0; l < kL; ++l) {
            const auto& ee = e;
            u[x][jj][l] = winograd_dot<T, WinogradATCol<m, x>, m>([&](int i) { return ee[i][jj][l]; });
          }
        });
      });
      T* dst = G + k * P + p0;
      winograd_for<a>([&](auto x) {  // (A e) A^T
        winograd_for<a>([&](auto yy) {
          winograd_put(
              cnt, dst + (x * a + yy) * KP,
              [&](int64_t l) { return winograd_dot<T, WinogradATCol<m, yy>, m>([&](int jj) { return u[x][jj][l]; }); },
              stream);
        });
      });
    }
  }
  winograd_stream_fence(stream);
  if (shared) {
#pragma omp barrier
  }
}

template <int m, class T>
void winograd_filter_grad_transform_m(const T* dU, int64_t K, int64_t C, T* dw) {
  constexpr int a = m + 2;
  constexpr int64_t kL = kWinogradLanes;
  const int64_t KC = K * C;
  // Blocks of kL consecutive input channels c of one filter row k as the vector axis: each point's
  // kL values are one contiguous load, and the block's 9 kL results are added into dw's kL * 9
  // contiguous values. Filter at a time (scalar, 16 loads from planes 2 MB apart for model3's conv6)
  // it took 13% of conv6's weight-gradient pass (docs/performance.md, twentieth session).
#pragma omp for schedule(static)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c0 = 0; c0 < C; c0 += kL) {
      const int64_t n = std::min(kL, C - c0);
      const T* ub = dU + k * C + c0;
      int64_t us = KC;
      T u[a * a][kL];
      if (n < kL) {  // a zero-padded copy: the last block of the last row would read past dU
        for (int xy = 0; xy < a * a; ++xy)
          for (int64_t l = 0; l < kL; ++l) u[xy][l] = l < n ? ub[xy * KC + l] : T(0);
        ub = u[0], us = kL;
      }
      T t[3][a][kL];  // G^T u
      winograd_for<3>([&](auto r) {
        winograd_for<a>([&](auto y) {
#pragma omp simd
          for (int64_t l = 0; l < kL; ++l) {
            const T* const u0 = ub;
            const int64_t u1 = us;
            t[r][y][l] = winograd_dot<T, WinogradGCol<m, r>, a>([&](int x) { return u0[(x * a + y) * u1 + l]; });
          }
        });
      });
      T o[9][kL];  // (G^T u) G
      winograd_for<3>([&](auto r) {
        winograd_for<3>([&](auto s) {
#pragma omp simd
          for (int64_t l = 0; l < kL; ++l) {
            const auto& tt = t;
            o[r * 3 + s][l] = winograd_dot<T, WinogradGCol<m, s>, a>([&](int y) { return tt[r][y][l]; });
          }
        });
      });
      T* d = dw + (k * C + c0) * 9;
      for (int64_t l = 0; l < n; ++l)
        for (int rs = 0; rs < 9; ++rs) d[l * 9 + rs] += o[rs][l];
    }
}

#if defined(TINYCNN_HAVE_X86_TARGETS)
// The AVX-512 copies (see TINYCNN_WINOGRAD_AVX512).
template <int m, class T>
TINYCNN_WINOGRAD_AVX512 void winograd_input_transform_avx512(const T* in, const WinogradGeom& q, int64_t n0, int64_t nb,
                                                           T* V, int64_t nr, bool shared) {
  winograd_input_transform_m<m, T, WinogradIsa::Avx512>(in, q, n0, nb, V, nr, shared);
}
template <int m, class T>
TINYCNN_WINOGRAD_AVX512 void winograd_output_transform_avx512(const T* M, const WinogradGeom& q, int64_t n0, int64_t nb,
                                                            const T* bias, bool relu, bool accumulate, T* out,
                                                            T relu_max, bool shared) {
  winograd_output_transform_m<m>(M, q, n0, nb, bias, relu, accumulate, out, relu_max, shared);
}
template <int m, class T>
TINYCNN_WINOGRAD_AVX512 void winograd_grad_output_transform_avx512(const T* dy, const WinogradGeom& q, int64_t n0,
                                                                 int64_t nb, T* G, bool shared) {
  winograd_grad_output_transform_m<m, T, WinogradIsa::Avx512>(dy, q, n0, nb, G, shared);
}
template <int m, class T>
TINYCNN_WINOGRAD_AVX512 void winograd_filter_grad_transform_avx512(const T* dU, int64_t K, int64_t C, T* dw) {
  winograd_filter_grad_transform_m<m>(dU, K, C, dw);
}
template <int m, class T>
TINYCNN_WINOGRAD_AVX2 void winograd_input_transform_avx2(const T* in, const WinogradGeom& q, int64_t n0, int64_t nb,
                                                       T* V, int64_t nr, bool shared) {
  winograd_input_transform_m<m, T, WinogradIsa::Avx2>(in, q, n0, nb, V, nr, shared);
}
template <int m, class T>
TINYCNN_WINOGRAD_AVX2 void winograd_grad_output_transform_avx2(const T* dy, const WinogradGeom& q, int64_t n0,
                                                               int64_t nb, T* G, bool shared) {
  winograd_grad_output_transform_m<m, T, WinogradIsa::Avx2>(dy, q, n0, nb, G, shared);
}
template <int m, class T>
TINYCNN_WINOGRAD_AVX2 void winograd_output_transform_avx2(const T* M, const WinogradGeom& q, int64_t n0, int64_t nb,
                                                        const T* bias, bool relu, bool accumulate, T* out,
                                                        T relu_max, bool shared) {
  winograd_output_transform_m<m>(M, q, n0, nb, bias, relu, accumulate, out, relu_max, shared);
}
#endif

}  // namespace detail

// Filter transform for tile size m.
//   w: [K, C, 3, 3]
//   U: [(m+2)^2, K, C] (rotate = false: the forward filter f = w) or
//      [(m+2)^2, C, K] (rotate = true: the backward-data filter f[c, k] = w[k, c] rotated 180 degrees);
//   mr > 0: each point's plane in gemm_nn_prepacked_ab's layout with slivers of mr rows (planes
//   winograd_u_plane(rows, columns, mr) elements apart, padding rows zero), so the GEMMs skip packing it
template <class T>
void winograd_filter_transform(const T* w, int64_t K, int64_t C, bool rotate, int64_t m, T* U, bool par,
                               int64_t mr = 0) {
  detail::winograd_dispatch(m, [&](auto mc) {
    detail::winograd_filter_transform_m<decltype(mc)::value>(w, K, C, rotate, U, par, mr > 0 ? mr : 1);
  });
}

namespace detail {

// Input transform of samples [n0, n0 + nb) (shared: a work-shared loop, call inside a parallel region;
// else all of it on the calling thread).
//   in: [N, Ci, H, W] (channel planes q.in_stride() apart), V: [a^2, Ci, P] with P = nb * tiles,
//   column p = j * tiles + ty * tiles_w + tx;
//   nr > 0: each point's [Ci, P] plane in gemm_nn_prepacked_b's layout with slivers of nr columns
//   (planes winograd_v_plane(Ci, P, nr) elements apart), so its GEMM skips packing it
template <class T>
void winograd_input_transform(const T* in, const WinogradGeom& q, int64_t n0, int64_t nb, T* V, int64_t nr = 0,
                              bool shared = true) {
  winograd_dispatch(q.m, [&](auto mc) {
    constexpr int m = decltype(mc)::value;
#if defined(TINYCNN_HAVE_X86_TARGETS)
    if constexpr (winograd_has_isa_copies<m, T>) {
      if (cpu_features().avx512) return winograd_input_transform_avx512<m>(in, q, n0, nb, V, nr, shared);
      if (cpu_features().avx2_fma) return winograd_input_transform_avx2<m>(in, q, n0, nb, V, nr, shared);
    }
#endif
    winograd_input_transform_m<m>(in, q, n0, nb, V, nr, shared);
  });
}

// Output transform of samples [n0, n0 + nb) (shared as for the input transform).
//   M: [a^2, Co, P], bias: [Co] or nullptr, out: [N, Co, OH, OW] (channel planes q.out_stride() apart;
//   written, or += when accumulate); relu: max(0, .) on the written values, capped at relu_max when > 0
template <class T>
void winograd_output_transform(const T* M, const WinogradGeom& q, int64_t n0, int64_t nb, const T* bias, bool relu,
                               bool accumulate, T* out, T relu_max = T(0), bool shared = true) {
  winograd_dispatch(q.m, [&](auto mc) {
    constexpr int m = decltype(mc)::value;
#if defined(TINYCNN_HAVE_X86_TARGETS)
    if constexpr (winograd_has_isa_copies<m, T>) {
      if (cpu_features().avx512)
        return winograd_output_transform_avx512<m>(M, q, n0, nb, bias, relu, accumulate, out, relu_max, shared);
      if (cpu_features().avx2_fma)
        return winograd_output_transform_avx2<m>(M, q, n0, nb, bias, relu, accumulate, out, relu_max, shared);
    }
#endif
    winograd_output_transform_m<m>(M, q, n0, nb, bias, relu, accumulate, out, relu_max, shared);
  });
}

// Transform of the output gradient of samples [n0, n0 + nb) for the weight gradient (shared as for
// the input transform): every m x m tile e of dy (zero where a tile hangs over the output's edge)
// becomes A e A^T, A = (A^T)^T: the adjoint of the output transform.
//   dy: [N, Co, OH, OW] (channel planes q.out_stride() apart), G: [a^2, Co, P] with P = nb * tiles
//   (the layout of M in the forward pass)
template <class T>
void winograd_grad_output_transform(const T* dy, const WinogradGeom& q, int64_t n0, int64_t nb, T* G,
                                    bool shared = true) {
  // The AVX-512 copy: on a Zen 4 (docs/performance.md, forty-first session) whole weight gradients of
  // model3's layers took 0.95-0.97x the time on conv2-conv4 and 0.97-1.00x on conv5 and conv6. Its
  // first version lost on a Zen 5 (twenty-second session: 1.19-1.29x on conv3-conv6, 0.74x on conv2),
  // before the lanes' tile offsets came from a table (no divisions per block) and before the fused
  // plan; it has not been measured there since.
  winograd_dispatch(q.m, [&](auto mc) {
    constexpr int m = decltype(mc)::value;
#if defined(TINYCNN_HAVE_X86_TARGETS)
    if constexpr (winograd_has_isa_copies<m, T>) {
      if (cpu_features().avx512) return winograd_grad_output_transform_avx512<m>(dy, q, n0, nb, G, shared);
      // The AVX2 copy where it pads short rows by vectors (model3's conv5 and conv6 0.83-0.85x the
      // time, conv4 0.96x: forty-eighth session); on longer rows it measured as the baseline copy.
      if (cpu_features().avx2_fma && m * q.tiles_w() <= kWinogradPadVectorColsAvx2)
        return winograd_grad_output_transform_avx2<m>(dy, q, n0, nb, G, shared);
    }
#endif
    winograd_grad_output_transform_m<m>(dy, q, n0, nb, G, shared);
  });
}

// dw[k, c] += G^T dU[k, c] G for every filter (a work-shared loop: call inside a parallel region): the
// adjoint of the filter transform.
//   dU: [a^2, K, C], dw: [K, C, 3, 3] (+=)
template <class T>
void winograd_filter_grad_transform(const T* dU, int64_t m, int64_t K, int64_t C, T* dw) {
  winograd_dispatch(m, [&](auto mc) {
    constexpr int mm = decltype(mc)::value;
#if defined(TINYCNN_HAVE_X86_TARGETS)
    if constexpr (winograd_has_isa_copies<mm, T>)
      if (cpu_features().avx512) return winograd_filter_grad_transform_avx512<mm>(dU, K, C, dw);
#endif
    winograd_filter_grad_transform_m<mm>(dU, K, C, dw);
  });
}

}  // namespace detail

}  // namespace tinycnn::kernels::cpu
