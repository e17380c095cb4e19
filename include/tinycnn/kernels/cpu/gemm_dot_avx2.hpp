#pragma once
// Variant 6b, gemm_avx2_dot: C = A B^T for few rows of A and a long reduction, as dot products on AVX2 +
// FMA (the driver, gemm_dot.hpp, says why). The tile: 4 rows of A by 3 rows of B, 12 accumulators of 8
// k-lanes, all 16 ymm registers with the 3 B vectors and one A vector (3 x 4 needs 17: the spills took
// 1.8x the time); each 8 k cost 7 loads and 12 FMAs. A row's 3 sums reduce into one 128-bit vector,
// its 3 columns of C. Call only when cpu_features().avx2_fma is true.
#include <algorithm>
#include <cstdint>

#include "cpu_features.hpp"
#include "gemm_avx2.hpp"
#include "gemm_dot.hpp"

namespace tinycnn::kernels::cpu {

#ifdef TINYCNN_HAVE_X86_GEMM  // gemm_avx2.hpp: GCC/Clang on x86-64, <immintrin.h> included

namespace gemm_dot_avx2_detail {

constexpr int kRows = 4, kCols = 3;  // of A, of B

// {sum of x[0], sum of x[1], sum of x[2], 0}
TINYCNN_TARGET_AVX2 inline __attribute__((always_inline)) __m128 hsum3(const __m256 x[3]) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(x[0], x[1]), _mm256_hadd_ps(x[2], _mm256_setzero_ps()));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// One 4 x 3 block of C: rows i0.. of A (ap: their packed group of 4 rows x 8 k per step), the rows of B
// at c.b (c: gemm_dot.hpp's DotColumn). Row d of the block is dot(A row i0 + d, B rows j0 .. j0 + 2).
// Not inlined into the loop over the groups: with that loop's values live as well, GCC 12 ran out of
// the 16 vector registers and folded the A loads into the FMAs (15 loads per 12 FMAs instead of 7) or
// spilled an accumulator, depending on the translation unit: 1.25-1.7x the time.
TINYCNN_TARGET_AVX2 __attribute__((noinline)) inline void block(const gemm_dot_detail::DotColumn& c, const float* ap,
                                                                int md, int64_t i0,
                                                                const gemm_detail::GemmPrefetch* pf) {
  gemm_detail::PrefetchCursor next(pf, c.K / 8);
  __m256 acc[kRows][kCols];
  for (int d = 0; d < kRows; ++d)
    for (int w = 0; w < kCols; ++w) acc[d][w] = _mm256_setzero_ps();
  const float* const* b = c.b;
  const int64_t full = c.K / 8;
  constexpr int64_t astep = 8 * kRows;
  int64_t s = 0;
  for (; s < full; ++s) {
    __m256 bv[kCols];
#pragma GCC unroll 3
    for (int w = 0; w < kCols; ++w) bv[w] = _mm256_loadu_ps(b[w] + 8 * s);
    const float* a = ap + s * astep;
    next.step<2, true>();  // into L2, as the AVX-512 tile (gemm_dot.hpp)
#pragma GCC unroll 4
    for (int d = 0; d < kRows; ++d) {
      const __m256 av = _mm256_loadu_ps(a + 8 * d);
#pragma GCC unroll 3
      for (int w = 0; w < kCols; ++w) acc[d][w] = _mm256_fmadd_ps(av, bv[w], acc[d][w]);
    }
  }
  if (c.K % 8) {  // the packed A is zero past K, B is masked (a masked load reads no lane it skips)
    alignas(32) int32_t lanes[8];
    for (int l = 0; l < 8; ++l) lanes[l] = l < c.K % 8 ? -1 : 0;
    const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    __m256 bv[kCols];
    for (int w = 0; w < kCols; ++w) bv[w] = _mm256_maskload_ps(b[w] + 8 * s, m);
    const float* a = ap + s * astep;
    for (int d = 0; d < kRows; ++d) {
      const __m256 av = _mm256_loadu_ps(a + 8 * d);
      for (int w = 0; w < kCols; ++w) acc[d][w] = _mm256_fmadd_ps(av, bv[w], acc[d][w]);
    }
  }
  const __m128 valpha = _mm_set1_ps(c.alpha);
  __m128 r[kRows];
  for (int d = 0; d < kRows; ++d) r[d] = _mm_mul_ps(hsum3(acc[d]), valpha);
  if (md == kRows && c.nw == kCols && !c.ep && c.beta == 0.0f) {  // the common case: 4 rows of 3 columns
    for (int d = 0; d < kRows; ++d) {
      float* cr = c.C + (i0 + d) * c.ldc + c.j0;
      _mm_storel_pi(reinterpret_cast<__m64*>(cr), r[d]);
      _mm_store_ss(cr + 2, _mm_movehl_ps(r[d], r[d]));
    }
    return;
  }
  alignas(16) float v[kRows * 4];
  for (int d = 0; d < kRows; ++d) _mm_store_ps(v + d * 4, r[d]);
  gemm_dot_detail::store_block<4>(v, md, c.nw, c.beta, c.C, c.ldc, i0, c.j0, c.ep);
}

// The tile for gemm_dot.hpp's driver.
struct Avx2Dot {
  static constexpr int kRows = gemm_dot_avx2_detail::kRows, kCols = gemm_dot_avx2_detail::kCols, kLanes = 8;
  // Every block prefetches the next (measured on a Zen 4 only; the AVX-512 tile's rule is per host).
  static bool prefetch(int64_t, int64_t) { return true; }
  TINYCNN_TARGET_AVX2 static void column(const gemm_dot_detail::DotColumn& c) {
    gemm_detail::GemmPrefetch pf;
    for (int64_t g = 0; g < c.groups; ++g)
      block(c, c.ap + g * c.group_floats, static_cast<int>(std::min<int64_t>(kRows, c.M - g * kRows)), g * kRows,
            c.share(g, pf));
  }
};

}  // namespace gemm_dot_avx2_detail

// Same contract as gemm_ref; requires cpu_features().avx2_fma. The NT form runs as dot products (above);
// the other forms, which have no contiguous rows of op(B) in k, run gemm_avx2.
inline void gemm_avx2_dot(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                          const GemmEpilogue<float>* ep = nullptr) {
  gemm_dot_detail::gemm_dot<gemm_dot_avx2_detail::Avx2Dot>(&gemm_avx2, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                                                           beta, C, ldc, ep);
}

#else  // not x86-64 GCC/Clang: no AVX2 kernel; the packed portable GEMM instead.

inline void gemm_avx2_dot(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                          const GemmEpilogue<float>* ep = nullptr) {
  gemm_packed<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

#endif  // TINYCNN_HAVE_X86_GEMM

}  // namespace tinycnn::kernels::cpu
