#pragma once
// The data movement of the Winograd data transforms (winograd_transforms.hpp): their 16-lane blocks of
// tile columns, the lanes' tile offsets, the gathers of the lanes' tiles from zero-padded planes, the
// stores of a block's results, the output rows' interleaving, and the split of a transform's
// channels between the threads.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cpu_features.hpp"
#include "winograd_matrices.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__SSE2__)
#include <xmmintrin.h>  // baseline on x86-64: no run-time dispatch needed
#endif
#if defined(TINYCNN_HAVE_X86_TARGETS)
#include <immintrin.h>  // the AVX-512 copies' gather (target attributes)
#endif

namespace tinycnn::kernels::cpu::detail {

// Lanes of the transforms' vector loops: 16 consecutive tile columns p of V or M (one 64-byte line of
// float), whatever the plane size. Until the sixteenth session the loops ran along the tiles of one
// tile row of one (sample, channel) plane: on model3's deep layers 2-9 tiles, and the input transform
// wrote 1.2-3 GB/s (docs/performance.md).
constexpr int64_t kWinogradLanes = 16;

// The size of a prepacked V above which the input transform writes it sliver by sliver
// (winograd_input_transform_m): about where V stops fitting the caches on the hosts measured.
constexpr int64_t kWinogradSliverMajorBytes = int64_t(4) << 20;

// Whether winograd_put may stream into dst: float on x86-64 (SSE2), dst 64-byte aligned, and every
// run of kWinogradLanes values the caller starts at dst + a multiple of `step` elements.
template <class T>
inline bool winograd_can_stream(const T* dst, int64_t step) {
#if defined(__SSE2__)
  return std::is_same_v<T, float> && reinterpret_cast<uintptr_t>(dst) % 64 == 0 && step * int64_t(sizeof(T)) % 64 == 0;
#else
  (void)dst, (void)step;
  return false;
#endif
}
// Makes a thread's streamed stores visible before a barrier hands the buffer to other threads.
inline void winograd_stream_fence(bool stream) {
#if defined(__SSE2__)
  if (stream) _mm_sfence();
#else
  (void)stream;
#endif
}

// Stores lanes 0 .. cnt - 1 of f(l) to dst: a whole block as fixed-length vector stores (a
// runtime-length std::copy there compiled to a memmove call or a `rep movs` per run).
// stream: a whole float block goes out with non-temporal stores (SSE, so on every x86-64), bypassing
// the caches; dst must then be 64-byte aligned, and the writer must _mm_sfence before another thread
// reads it.
template <class T, class F>
inline void winograd_put(int64_t cnt, T* dst, F&& f, bool stream = false) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>)
    if (stream && cnt == kWinogradLanes) {
      alignas(64) T o[kWinogradLanes];
#pragma omp simd
      for (int64_t l = 0; l < kWinogradLanes; ++l) o[l] = f(l);
      for (int64_t l = 0; l < kWinogradLanes; l += 4) _mm_stream_ps(dst + l, _mm_load_ps(o + l));
      return;
    }
#else
  (void)stream;
#endif
  if (cnt == kWinogradLanes) {
#pragma omp simd
    for (int64_t l = 0; l < kWinogradLanes; ++l) dst[l] = f(l);
  } else {
    T o[kWinogradLanes];
#pragma omp simd
    for (int64_t l = 0; l < kWinogradLanes; ++l) o[l] = f(l);
    for (int64_t l = 0; l < cnt; ++l) dst[l] = o[l];
  }
}

// The offsets j * sj + ty * sy + tx * sx of the tile columns p = j NT + ty TW + tx < P (tile (ty, tx)
// of sample j of the group) in a per-thread table (one per slot: the transforms' tables do not
// overlap), walked once per call without divisions. A block's lanes read their tiles' offsets from it.
// Computed per block instead (two 64-bit divisions and a 16-step loop of data-dependent branches, once
// for every channel and block), the input transform took 1.08-1.18x and the output transform on small
// planes 1.10-1.14x as long on model3's layers (docs/performance.md, twenty-third session).
template <int slot>
inline const int64_t* winograd_tile_offsets(int64_t P, int64_t NT, int64_t TW, int64_t sj, int64_t sy, int64_t sx) {
  static thread_local std::vector<int64_t> table;
  if (static_cast<int64_t>(table.size()) < P) table.resize(static_cast<size_t>(P));
  int64_t* t = table.data();
  for (int64_t p = 0, j = 0, y = 0, x = 0; p < P; ++p) {
    t[p] = j * sj + y * sy + x * sx;
    if (++x == TW) {
      x = 0;
      if (++y * TW == NT) y = 0, ++j;
    }
  }
  return t;
}

// The gather of the data transforms: lanes l0 .. l0 + 3 of d[i * width + x] (i < rows, x < width)
// from the four tiles whose top-left values are s[0 .. 3] (row stride cols), for T = float on
// x86-64 as one 4-float load per tile row and 4 lanes transposed in registers. One scalar load and
// store per value (the portable loop below) was ~half of the input transform's time (perf annotate
// on model3's conv2); the vector form takes 0.70-0.84 of the input transform's previous time and
// 0.85-0.88 of the output-gradient transform's (docs/performance.md, twentieth session).
// overread: rows may be read up to 4 values past width (the caller's buffer has that slack), so a
// width of 2 or 3 also takes vector loads.
template <int rows, int width, bool overread, class T>
inline void winograd_gather4(const T* const* s, int64_t cols, T (*d)[kWinogradLanes], int64_t l0) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    constexpr int vec = overread ? (width + 3) / 4 : width / 4;  // 4-float loads per tile row
    for (int i = 0; i < rows; ++i) {
      const int64_t o = i * cols;
      for (int v = 0; v < vec; ++v) {
        const int x0 = 4 * v;
        __m128 r0 = _mm_loadu_ps(s[0] + o + x0), r1 = _mm_loadu_ps(s[1] + o + x0),
               r2 = _mm_loadu_ps(s[2] + o + x0), r3 = _mm_loadu_ps(s[3] + o + x0);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        const __m128 r[4] = {r0, r1, r2, r3};
        for (int k = 0; k < 4 && x0 + k < width; ++k) _mm_store_ps(&d[i * width + x0 + k][l0], r[k]);
      }
      for (int x = 4 * vec; x < width; ++x)
        _mm_store_ps(&d[i * width + x][l0], _mm_setr_ps(s[0][o + x], s[1][o + x], s[2][o + x], s[3][o + x]));
    }
    return;
  }
#endif
  for (int64_t k = 0; k < 4; ++k)
    for (int i = 0; i < rows; ++i)
      for (int x = 0; x < width; ++x) d[i * width + x][l0 + k] = s[k][i * cols + x];
}

#if defined(TINYCNN_HAVE_X86_TARGETS)
// The AVX-512 copies' gather (rows read in runs of 4 values, up to 3 past width: the caller's buffer
// has the slack): all 16 lanes of a tile column at once, the 4 groups of 4 lanes transposed in the
// 128-bit quarters of zmm registers, one 64-byte store per value of the tile. Four 16-byte stores
// per value (winograd_gather4) cost more than the whole AVX-512 transform saved: the vector loops'
// 64-byte loads cannot be forwarded from them (input transform 1.4-1.65x the baseline copy's time).
template <int rows, int width>
TINYCNN_TARGET_AVX512 inline void winograd_gather16_avx512(const float* const* s, int64_t cols,
                                                           float (*d)[kWinogradLanes]) {
  for (int i = 0; i < rows; ++i) {
    const int64_t o = i * cols;
    for (int x0 = 0; x0 < width; x0 += 4) {
      __m512 z[4];  // z[k]: the 4 values of lanes k, 4 + k, 8 + k, 12 + k in its quarters
      for (int k = 0; k < 4; ++k) {
        __m512 t = _mm512_castps128_ps512(_mm_loadu_ps(s[k] + o + x0));
        t = _mm512_insertf32x4(t, _mm_loadu_ps(s[4 + k] + o + x0), 1);
        t = _mm512_insertf32x4(t, _mm_loadu_ps(s[8 + k] + o + x0), 2);
        z[k] = _mm512_insertf32x4(t, _mm_loadu_ps(s[12 + k] + o + x0), 3);
      }
      const __m512 t0 = _mm512_unpacklo_ps(z[0], z[1]), t1 = _mm512_unpackhi_ps(z[0], z[1]);
      const __m512 t2 = _mm512_unpacklo_ps(z[2], z[3]), t3 = _mm512_unpackhi_ps(z[2], z[3]);
      const __m512 r[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                           _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
      for (int k = 0; k < 4 && x0 + k < width; ++k) _mm512_store_ps(d[i * width + x0 + k], r[k]);
    }
  }
}
#endif

// The lanes' tiles (top-left value of lane l at planes + off[l], off from winograd_tile_offsets) into
// d, four lanes at a time (wide: all 16, for the AVX-512 copies; rows are then over-read as above).
// Lanes from cnt on repeat lane 0 (computed, never stored).
template <int rows, int width, bool overread, bool wide = false, class T>
inline void winograd_gather(const T* planes, const int64_t* off, int64_t cnt, int64_t cols, T (*d)[kWinogradLanes]) {
  const T* s[kWinogradLanes];
  for (int64_t l = 0; l < kWinogradLanes; ++l) s[l] = planes + off[l < cnt ? l : 0];
#if defined(TINYCNN_HAVE_X86_TARGETS)
  if constexpr (wide) {
    static_assert(std::is_same_v<T, float>);
    winograd_gather16_avx512<rows, width>(s, cols, d);
    return;
  }
#endif
  for (int64_t l0 = 0; l0 < kWinogradLanes; l0 += 4) winograd_gather4<rows, width, overread>(s + l0, cols, d, l0);
}

// row[m tx + jj] = pi[jj NT + tx] for tx < TW, jj < m: one output row from its m phase runs (the
// output transform's phase-major copy). For m = 3 and float on x86-64, 4 columns of tiles at a time
// with the 3 phases interleaved by shuffles: 0.90-0.94 of the whole output transform's time on 25x25
// to 72x72 planes (twentieth session; the scalar loop stored one value at a time). GCC already
// vectorises the loop for m = 2 (shuffles measured 1.05) and m = 4 is only taken when forced.
template <int m, class T>
inline void winograd_interleave_row(const T* pi, int64_t NT, int64_t TW, T* row) {
  int64_t tx = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float> && m == 3) {
    for (; tx + 4 <= TW; tx += 4) {
      const __m128 a = _mm_loadu_ps(pi + tx), b = _mm_loadu_ps(pi + NT + tx), c = _mm_loadu_ps(pi + 2 * NT + tx);
      const __m128 t0 = _mm_unpacklo_ps(a, b), t1 = _mm_unpackhi_ps(a, b);  // a0 b0 a1 b1, a2 b2 a3 b3
      const __m128 u = _mm_shuffle_ps(c, t0, _MM_SHUFFLE(2, 2, 0, 0));      // c0 c0 a1 a1
      const __m128 v = _mm_shuffle_ps(t0, c, _MM_SHUFFLE(1, 1, 3, 3));      // b1 b1 c1 c1
      const __m128 w = _mm_shuffle_ps(c, t1, _MM_SHUFFLE(2, 2, 2, 2));      // c2 c2 a3 a3
      const __m128 z = _mm_shuffle_ps(t1, c, _MM_SHUFFLE(3, 3, 3, 3));      // b3 b3 c3 c3
      float* o = row + 3 * tx;
      _mm_storeu_ps(o, _mm_shuffle_ps(t0, u, _MM_SHUFFLE(2, 0, 1, 0)));      // a0 b0 c0 a1
      _mm_storeu_ps(o + 4, _mm_shuffle_ps(v, t1, _MM_SHUFFLE(1, 0, 2, 0)));  // b1 c1 a2 b2
      _mm_storeu_ps(o + 8, _mm_shuffle_ps(w, z, _MM_SHUFFLE(2, 0, 2, 0)));   // c2 a3 b3 c3
    }
  }
#endif
#pragma omp simd
  for (int64_t t = tx; t < TW; ++t) winograd_for<m>([&](auto jj) { row[m * t + jj] = pi[jj * NT + t]; });
}

// Copies the H x W plane src into the zero-padded rows x cols plane dst with src's (0, 0) at
// (pad_top, pad_left), so that every tile a transform reads lies inside dst; only dst's rows
// [r0, r1) (r1 < 0: to the end), those a caller's tiles read.
template <class T>
void winograd_pad_plane(const T* src, int64_t H, int64_t W, int64_t pad_top, int64_t pad_left, int64_t rows,
                        int64_t cols, T* dst, int64_t r0 = 0, int64_t r1 = -1) {
  const int64_t c0 = std::clamp<int64_t>(pad_left, 0, cols), c1 = std::clamp<int64_t>(pad_left + W, c0, cols);
  for (int64_t r = r0; r < (r1 < 0 ? rows : r1); ++r) {
    T* row = dst + r * cols;
    const int64_t ih = r - pad_top;
    if (ih < 0 || ih >= H) {
      std::fill(row, row + cols, T(0));
      continue;
    }
    std::fill(row, row + c0, T(0));
    std::copy(src + ih * W + (c0 - pad_left), src + ih * W + (c1 - pad_left), row + c0);
    std::fill(row + c1, row + cols, T(0));
  }
}

// Which ISA's helpers a compiled copy of a data transform uses: the 16-lane gather and the short-row
// pad (AVX-512), the AVX2 pad, or neither (the baseline copy); see below.
enum class WinogradIsa { Baseline, Avx2, Avx512 };

#if defined(TINYCNN_HAVE_X86_TARGETS)
// winograd_pad_plane for the AVX-512 copies, for rows of at most kWinogradPadVectorCols values:
// each row written 16 values at a time, its source run brought in by a load (an expand load under a
// lane mask at the edges, zeros elsewhere), where the generic copy makes a fill, a memmove call and a
// fill per row. The stores are whole vectors while dst has room (end: the values writable from dst
// on), so a store may run into the next row, which is written after it or not read. The input
// transform alone took 0.6-0.74x the time on model3's conv4-conv6 (rows of 14 and 8 values) and
// 0.8-0.9x on conv3 (29), but 1.03-1.11x on conv2 (53: one call per row moves them as fast, and
// the whole-vector stores straddle lines) (docs/performance.md, thirty-first session).
constexpr int64_t kWinogradPadVectorCols = 32;
TINYCNN_TARGET_AVX512 inline void winograd_pad_plane_avx512(const float* src, int64_t H, int64_t W, int64_t pad_top,
                                                            int64_t pad_left, int64_t cols, float* dst,
                                                            int64_t r0, int64_t r1, int64_t end) {
  const int64_t c0 = std::clamp<int64_t>(pad_left, 0, cols), c1 = std::clamp<int64_t>(pad_left + W, c0, cols);
  const auto lanes = [](int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u); };
  for (int64_t r = r0; r < r1; ++r) {
    float* row = dst + r * cols;
    const int64_t ih = r - pad_top;
    const bool inside = ih >= 0 && ih < H;
    for (int64_t x = 0; x < cols; x += 16) {
      __m512 v = _mm512_setzero_ps();
      const int64_t lo = std::max(x, c0), hi = std::min(x + 16, c1);  // src's columns lo - pad_left ..
      if (inside && hi - lo == 16)
        v = _mm512_loadu_ps(src + ih * W + (lo - pad_left));
      else if (inside && hi > lo)
        v = _mm512_maskz_expandloadu_ps(static_cast<__mmask16>(lanes(hi - lo) << (lo - x)),
                                        src + ih * W + (lo - pad_left));
      if (r * cols + x + 16 <= end)
        _mm512_storeu_ps(row + x, v);
      else
        _mm512_mask_storeu_ps(row + x, lanes(cols - x), v);
    }
  }
}

// The same for the AVX2 copies, 8 values at a time, for rows of at most kWinogradPadVectorColsAvx2
// values: an edge vector's source run is loaded under a lane mask from its first value and moved to
// its lanes by a permute (AVX2 has no expand load), and a row's last store is masked where dst has no
// room. Under TINYCNN_MAX_ISA=avx2 on a Zen 4, alternated in one process (docs/performance.md,
// forty-eighth session), the input transform of model3's conv5 and conv6 (rows of 8) took 0.58-0.64x
// the time, conv4 (14) 0.80-0.87x; rows of 17 (model004's conv4) 1.06x and of 29 (model3's conv3)
// 0.98-1.0x, hence the bound.
constexpr int64_t kWinogradPadVectorColsAvx2 = 16;
// All ones in the lanes l < n of 8 (iota: 0 .. 7).
TINYCNN_TARGET_AVX2 inline __m256i winograd_lanes_below_avx2(int64_t n, __m256i iota) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n)), iota);
}
TINYCNN_TARGET_AVX2 inline void winograd_pad_plane_avx2(const float* src, int64_t H, int64_t W, int64_t pad_top,
                                                        int64_t pad_left, int64_t cols, float* dst, int64_t r0,
                                                        int64_t r1, int64_t end) {
  const int64_t c0 = std::clamp<int64_t>(pad_left, 0, cols), c1 = std::clamp<int64_t>(pad_left + W, c0, cols);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t r = r0; r < r1; ++r) {
    float* row = dst + r * cols;
    const int64_t ih = r - pad_top;
    const bool inside = ih >= 0 && ih < H;
    for (int64_t x = 0; x < cols; x += 8) {
      __m256 v = _mm256_setzero_ps();
      const int64_t lo = std::max(x, c0), hi = std::min(x + 8, c1);  // src's columns lo - pad_left ..
      if (inside && hi - lo == 8) {
        v = _mm256_loadu_ps(src + ih * W + (lo - pad_left));
      } else if (inside && hi > lo) {
        // the run in lanes 0 .. hi - lo - 1, moved to lanes lo - x .. hi - x - 1 of v
        const __m256 run = _mm256_maskload_ps(src + ih * W + (lo - pad_left), winograd_lanes_below_avx2(hi - lo, iota));
        const int64_t shift = lo - x;
        const __m256i keep =
            _mm256_andnot_si256(winograd_lanes_below_avx2(shift, iota), winograd_lanes_below_avx2(hi - x, iota));
        v = _mm256_permutevar8x32_ps(run, _mm256_sub_epi32(iota, _mm256_set1_epi32(static_cast<int32_t>(shift))));
        v = _mm256_and_ps(v, _mm256_castsi256_ps(keep));
      }
      if (r * cols + x + 8 <= end)
        _mm256_storeu_ps(row + x, v);
      else
        _mm256_maskstore_ps(row + x, winograd_lanes_below_avx2(cols - x, iota), v);
    }
  }
}
#endif

// The channels [lo, hi) of n that the calling thread transforms: its contiguous share when shared
// (inside a parallel region, as schedule(static) cuts), else all. Loop bodies stay in the function:
// wrapped in a lambda for an `omp for` and a plain loop, GCC no longer vectorised their simd loops
// (the transforms took 2-2.5x as long).
inline void winograd_share(int64_t n, bool shared, int64_t& lo, int64_t& hi) {
  lo = 0, hi = n;
#ifdef _OPENMP
  if (shared) {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    lo = n * t / nt, hi = n * (t + 1) / nt;
  }
#else
  (void)shared;
#endif
}

}  // namespace tinycnn::kernels::cpu::detail
