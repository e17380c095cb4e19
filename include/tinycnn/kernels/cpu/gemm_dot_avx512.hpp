#pragma once
// Variant 6, gemm_avx512_dot: C = A B^T for few rows of A and a long reduction, as dot products (the
// driver, gemm_dot.hpp, says why). The AVX-512 tile: 4 rows of A by 4 rows of B, 16 accumulators of 16
// k-lanes; each 16 k cost 8 loads and 16 FMAs, and a tile's 16 sums are reduced in registers into one
// vector (hsum16), which is the 4 x 4 block of C. Call only when cpu_features().avx512 is true.
#include <algorithm>
#include <cstdint>

#include "cpu_features.hpp"
#include "gemm_avx512.hpp"
#include "gemm_dot.hpp"

namespace tinycnn::kernels::cpu {

#ifdef TINYCNN_HAVE_X86_GEMM  // gemm_avx512.hpp: GCC/Clang on x86-64, <immintrin.h> included

namespace gemm_dot_detail {

// The full mask of the masked intrinsic forms (see gemm_avx512.hpp).
using gemm_avx512_detail::kAll;

// r[l] = sum of the 16 lanes of x[kHsumOrder[l]]: a transposing reduction tree (16 -> 8 -> 4 -> 2 ->
// 1 vectors, 45 instructions for 16 sums). kHsumOrder is its own inverse.
constexpr int kHsumOrder[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};

TINYCNN_TARGET_AVX512 inline __attribute__((always_inline)) __m512 hsum16(const __m512 x[16]) {
  __m512 y[8], z[4], u[2];
  for (int i = 0; i < 8; ++i)  // halves: x_i's two 256-bit halves added, x_{i+8}'s beside them
    y[i] = _mm512_add_ps(_mm512_mask_shuffle_f32x4(x[i], kAll, x[i], x[i + 8], 0x44),
                         _mm512_mask_shuffle_f32x4(x[i], kAll, x[i], x[i + 8], 0xEE));
  for (int i = 0; i < 4; ++i)  // quarters: x_i, x_{i+8}, x_{i+4}, x_{i+12}, 4 partial sums each
    z[i] = _mm512_add_ps(_mm512_mask_shuffle_f32x4(y[i], kAll, y[i], y[i + 4], 0x88),
                         _mm512_mask_shuffle_f32x4(y[i], kAll, y[i], y[i + 4], 0xDD));
  for (int i = 0; i < 2; ++i)
    u[i] = _mm512_add_ps(_mm512_mask_unpacklo_ps(z[i], kAll, z[i], z[i + 2]),
                         _mm512_mask_unpackhi_ps(z[i], kAll, z[i], z[i + 2]));
  return _mm512_add_ps(_mm512_mask_shuffle_ps(u[0], kAll, u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_mask_shuffle_ps(u[0], kAll, u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
}

// Rows of a tile: 4 of A by 4 of B.
constexpr int kRows = 4;

// One 4 x 4 block of C: rows i0.. of A (ap: their packed group), rows j0.. of B. b[w] points at B's row
// j0 + w (repeated rows stand in past N; their sums are not stored). Lane 4 d + w of the result is
// dot(A row i0 + d, B row j0 + w). pf: this tile's share of the next block of B to prefetch into
// L2 (Locality 2) or every level (3); Locality 0: none, and no prefetch walk in the k loop at all.
template <int Locality>
TINYCNN_TARGET_AVX512 inline __attribute__((always_inline)) __m512 tile(const float* ap, const float* const b[kRows],
                                                                        int64_t K,
                                                                        const gemm_detail::GemmPrefetch* pf) {
  gemm_detail::PrefetchCursor next(Locality > 0 ? pf : nullptr, K / 16);
  __m512 acc[kRows][kRows];
  for (int d = 0; d < kRows; ++d)
    for (int w = 0; w < kRows; ++w) acc[d][w] = _mm512_setzero_ps();
  const int64_t full = K / 16;
  constexpr int64_t astep = 64;
  int64_t s = 0;
  for (; s < full; ++s) {
    __m512 bv[kRows];
#pragma GCC unroll 4
    for (int w = 0; w < kRows; ++w) bv[w] = _mm512_loadu_ps(b[w] + 16 * s);
    const float* a = ap + s * astep;
    if constexpr (Locality > 0) next.step<Locality, true>();
#pragma GCC unroll 4
    for (int d = 0; d < kRows; ++d) {
      const __m512 av = _mm512_loadu_ps(a + 16 * d);
#pragma GCC unroll 4
      for (int w = 0; w < kRows; ++w) acc[d][w] = _mm512_fmadd_ps(av, bv[w], acc[d][w]);
    }
  }
  if (K % 16) {  // the packed A is zero past K, B is masked
    const __mmask16 m = static_cast<__mmask16>((1u << (K % 16)) - 1u);
    __m512 bv[kRows];
    for (int w = 0; w < kRows; ++w) bv[w] = _mm512_maskz_loadu_ps(m, b[w] + 16 * s);
    const float* a = ap + s * astep;
    for (int d = 0; d < kRows; ++d) {
      const __m512 av = _mm512_loadu_ps(a + 16 * d);
      for (int w = 0; w < kRows; ++w) acc[d][w] = _mm512_fmadd_ps(av, bv[w], acc[d][w]);
    }
  }
  __m512 x[16];
  for (int l = 0; l < 16; ++l) x[kHsumOrder[l]] = acc[l / kRows][l % kRows];
  return hsum16(x);
}

// C[i0 + d, j0 + w] for d < md, w < nw from lane 4 d + w of r: alpha, beta (0: C not read), epilogue.
TINYCNN_TARGET_AVX512 inline __attribute__((always_inline)) void store(__m512 r, int md, int nw, float alpha,
                                                                       float beta, float* C, int64_t ldc, int64_t i0,
                                                                       int64_t j0, const GemmEpilogue<float>* ep) {
  r = _mm512_mul_ps(r, _mm512_set1_ps(alpha));
  if (md == kRows && nw == kRows && !ep) {  // the common case: 4 rows of 4 columns, 128 bits each
    const __m128 vb = _mm_set1_ps(beta);
    // The lane index of an extract must be a literal (Clang rejects a loop variable even unrolled).
    const __m128 rows[kRows] = {_mm512_castps512_ps128(r), _mm512_extractf32x4_ps(r, 1), _mm512_extractf32x4_ps(r, 2),
                                _mm512_extractf32x4_ps(r, 3)};
#pragma GCC unroll 4
    for (int d = 0; d < kRows; ++d) {
      float* c = C + (i0 + d) * ldc + j0;
      __m128 x = rows[d];
      if (beta != 0.0f) x = _mm_fmadd_ps(vb, _mm_loadu_ps(c), x);
      _mm_storeu_ps(c, x);
    }
    return;
  }
  alignas(64) float v[16];
  _mm512_store_ps(v, r);
  store_block<kRows>(v, md, nw, beta, C, ldc, i0, j0, ep);
}

// The next block of B is prefetched only where a block meets the A groups for at most
// kDotPrefetchMaxGroupK groups x K, and then into every cache level, except where AVX-512 runs on
// 256-bit units (Zen 4), which prefetches every block into L2 (gemm_dot.hpp says why). On a Zen 5 (L1d
// 48 KiB, full-width FMA units), 2 threads, alternated in one process (forty-ninth session), this
// rule against the Zen 4's: 32 x 36864 x 1024 0.83x the time, 32 x 4608 x 2048 and 64 x 9216 x 2048
// 0.74-0.75x, 12 x 9216 x 2048 0.86-0.90x (no prefetch); 8 x 20000 x 512 0.87-0.88x, 24 x 20000 x 512
// 0.94-0.97x (into every level: the 48 KiB L1 holds the next 4 rows beside the current ones and the A
// group). Against prefetching every block into every level: 24 x 9216 x 1024 (6 x 1024) 0.86x,
// 32 x 36864 x 1024 0.84x; against never: 32 x 20000 x 512 (8 x 512) 0.85x, 8 x 20000 x 2048 0.91x,
// 8 x 20000 x 512 0.52x, 16 x 20000 x 1024 (at the bound) 0.99x. A block met for longer is fetched by
// the hardware in time, and the prefetch walk in the k loop then only cost time.
constexpr int64_t kDotPrefetchMaxGroupK = 4096;

// The tile for gemm_dot.hpp's driver.
struct Avx512Dot {
  static constexpr int kRows = 4, kCols = 4, kLanes = 16;
  static bool prefetch(int64_t groups, int64_t K) {
    return cpu_features().avx512_half_width || groups * K <= kDotPrefetchMaxGroupK;
  }
  template <int Locality>
  TINYCNN_TARGET_AVX512 static void run_groups(const DotColumn& c) {
    // Locals, as the tile's loop had them when it ran inside the driver: read through c, B's row
    // pointers and the prefetch cost stack reloads in the k loop (1.04-1.05x the time).
    const float* b[kRows] = {c.b[0], c.b[1], c.b[2], c.b[3]};
    gemm_detail::GemmPrefetch pf;
    const int64_t groups = c.groups, K = c.K;
    for (int64_t g = 0; g < groups; ++g) {
      const int md = static_cast<int>(std::min<int64_t>(kRows, c.M - g * kRows));
      store(tile<Locality>(c.ap + g * c.group_floats, b, K, c.share(g, pf)), md, c.nw, c.alpha, c.beta, c.C, c.ldc,
            g * kRows, c.j0, c.ep);
    }
  }
  static void column(const DotColumn& c) {
    if (!c.pf)
      run_groups<0>(c);
    else if (cpu_features().avx512_half_width)
      run_groups<2>(c);
    else
      run_groups<3>(c);
  }
};

}  // namespace gemm_dot_detail

// Same contract as gemm_ref; requires cpu_features().avx512. The NT form runs as dot products (above);
// the other forms, which have no contiguous rows of op(B) in k, run gemm_avx512.
inline void gemm_avx512_dot(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                            const GemmEpilogue<float>* ep = nullptr) {
  gemm_dot_detail::gemm_dot<gemm_dot_detail::Avx512Dot>(&gemm_avx512, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                                                        beta, C, ldc, ep);
}

#else  // not x86-64 GCC/Clang: no AVX-512 kernel; the packed portable GEMM instead.

inline void gemm_avx512_dot(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                            const GemmEpilogue<float>* ep = nullptr) {
  gemm_packed<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

#endif  // TINYCNN_HAVE_X86_GEMM

}  // namespace tinycnn::kernels::cpu
