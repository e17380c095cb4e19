#pragma once
// Inverted dropout, y = x * m: kept units are scaled by m = 1/(1-rate) at training time so inference
// needs no rescaling, dropped ones get m = 0. One 64-bit seed is drawn from the layer's generator per
// forward; element i's m is then decided by the counter-based counter_uniform(seed, i)
// (core/counter_rng.hpp), which any thread can compute on its own: the mask is the same for every
// thread count and equal to the CUDA kernel's. The backward recomputes m from the same seed
// (dx = dy * m) instead of keeping a mask: a stored float mask cost a write in the forward and a
// read in the backward, and y = x * m a third pass (docs/performance.md, forty-second session).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../core/counter_rng.hpp"
#include "../../core/parallel.hpp"
#include "cpu_features.hpp"

#ifdef TINYCNN_HAVE_X86_TARGETS
#include <immintrin.h>  // the AVX-512 and AVX2 copies (target attributes)
#endif

namespace tinycnn::kernels::cpu {

// Reference: y[i] = x[i] * m_i, m_i = 0 if counter_uniform(seed, i) < rate else 1/(1-rate). One
// rounding (a product only, nothing a compiler could fuse into an FMA), so every copy and the CUDA
// kernel agree bit for bit; a backward that must add into a gradient adds the result separately.
//   x, y: [n] (x == y allowed)
template <class T>
void dropout_apply_ref(uint64_t seed, T rate, const T* x, T* y, int64_t n) {
  const T keep = T(1) / (T(1) - rate);
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] * (counter_uniform(seed, static_cast<uint64_t>(i)) < static_cast<double>(rate) ? T(0) : keep);
}

namespace detail {

// Elements [i0, i1) of dropout_apply: m_i = 0 where (hash >> 11) < threshold, else keep.
//   x, y: [n], y written in [i0, i1)
template <class T>
void dropout_apply_range(uint64_t seed, uint64_t threshold, T keep, const T* x, T* y, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i)
    y[i] = x[i] * ((counter_hash(seed, static_cast<uint64_t>(i)) >> 11) < threshold ? T(0) : keep);
}

#ifdef TINYCNN_HAVE_X86_TARGETS
// The same hash 8 elements at a time: AVX-512 DQ has the 64-bit multiply (vpmullq) that the baseline
// ISA lacks, so the baseline copy above stays scalar (as a stored mask it took 5% of a model004
// training step; this copy made model004's first mask 1.28 ms against 11.6, docs/performance.md).
// z = seed + (i+1) * golden advances by 8 * golden per vector (the same wrapped sums), then
// SplitMix64's finaliser as in counter_hash. m is formed and multiplied (not a zeroing mask on x) so
// that a NaN or infinity in a dropped x still gives NaN, as x * 0 does in the reference.
template <class T>
TINYCNN_TARGET_AVX512 void dropout_apply_range_avx512(uint64_t seed, uint64_t threshold, T keep, const T* x, T* y,
                                                      int64_t i0, int64_t i1) {
  constexpr uint64_t golden = 0x9E3779B97F4A7C15ull;
  const __m512i c1 = _mm512_set1_epi64(static_cast<long long>(0xBF58476D1CE4E5B9ull));
  const __m512i c2 = _mm512_set1_epi64(static_cast<long long>(0x94D049BB133111EBull));
  const __m512i thr = _mm512_set1_epi64(static_cast<long long>(threshold));
  const __m512i step = _mm512_set1_epi64(static_cast<long long>(8 * golden));
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  __m512i z0 = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(seed)),
                                _mm512_mullo_epi64(_mm512_add_epi64(_mm512_set1_epi64(i0 + 1), lane),
                                                   _mm512_set1_epi64(static_cast<long long>(golden))));
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8, z0 = _mm512_add_epi64(z0, step)) {
    __m512i z = _mm512_mullo_epi64(_mm512_xor_si512(z0, _mm512_srli_epi64(z0, 30)), c1);
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), c2);
    z = _mm512_srli_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 31)), 11);
    const __mmask8 kept = _mm512_cmpge_epu64_mask(z, thr);
    if constexpr (sizeof(T) == 4)
      _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_maskz_mov_ps(kept, _mm256_set1_ps(keep))));
    else
      _mm512_storeu_pd(y + i, _mm512_mul_pd(_mm512_loadu_pd(x + i), _mm512_maskz_mov_pd(kept, _mm512_set1_pd(keep))));
  }
  dropout_apply_range(seed, threshold, keep, x, y, i, i1);
}

// AVX2 has no 64-bit multiply either: each product a * c keeps its low 64 bits from three 32 x 32 -> 64
// multiplies, lo(a) lo(c) + ((hi(a) lo(c) + lo(a) hi(c)) << 32), 4 lanes per ymm. (hash >> 11) < 2^53
// and threshold <= 2^53 compare correctly as signed (vpcmpgtq has no unsigned form).
TINYCNN_TARGET_AVX2 inline __m256i dropout_mullo64_avx2(__m256i a, __m256i c_lo, __m256i c_hi) {
  const __m256i lo = _mm256_mul_epu32(a, c_lo);
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), c_lo), _mm256_mul_epu32(a, c_hi));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}
template <class T>
TINYCNN_TARGET_AVX2 void dropout_apply_range_avx2(uint64_t seed, uint64_t threshold, T keep, const T* x, T* y,
                                                  int64_t i0, int64_t i1) {
  constexpr uint64_t golden = 0x9E3779B97F4A7C15ull, k1 = 0xBF58476D1CE4E5B9ull, k2 = 0x94D049BB133111EBull;
  const __m256i k1_lo = _mm256_set1_epi64x(static_cast<long long>(k1 & 0xFFFFFFFFull));
  const __m256i k1_hi = _mm256_set1_epi64x(static_cast<long long>(k1 >> 32));
  const __m256i k2_lo = _mm256_set1_epi64x(static_cast<long long>(k2 & 0xFFFFFFFFull));
  const __m256i k2_hi = _mm256_set1_epi64x(static_cast<long long>(k2 >> 32));
  const __m256i thr = _mm256_set1_epi64x(static_cast<long long>(threshold));
  const __m256i step = _mm256_set1_epi64x(static_cast<long long>(4 * golden));
  // z = seed + (i + 1) * golden for lanes i0 .. i0 + 3, from the scalar counter (the same wrapped sums)
  __m256i z0 = _mm256_setr_epi64x(static_cast<long long>(seed + static_cast<uint64_t>(i0 + 1) * golden),
                                  static_cast<long long>(seed + static_cast<uint64_t>(i0 + 2) * golden),
                                  static_cast<long long>(seed + static_cast<uint64_t>(i0 + 3) * golden),
                                  static_cast<long long>(seed + static_cast<uint64_t>(i0 + 4) * golden));
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);  // the low halves of the 4 lanes
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4, z0 = _mm256_add_epi64(z0, step)) {
    __m256i z = dropout_mullo64_avx2(_mm256_xor_si256(z0, _mm256_srli_epi64(z0, 30)), k1_lo, k1_hi);
    z = dropout_mullo64_avx2(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), k2_lo, k2_hi);
    z = _mm256_srli_epi64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 31)), 11);
    const __m256i dropped = _mm256_cmpgt_epi64(thr, z);  // all ones where (hash >> 11) < threshold
    if constexpr (sizeof(T) == 4) {
      const __m128i d32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(dropped, even));
      _mm_storeu_ps(y + i, _mm_mul_ps(_mm_loadu_ps(x + i), _mm_andnot_ps(_mm_castsi128_ps(d32), _mm_set1_ps(keep))));
    } else {
      const __m256d m = _mm256_andnot_pd(_mm256_castsi256_pd(dropped), _mm256_set1_pd(keep));
      _mm256_storeu_pd(y + i, _mm256_mul_pd(_mm256_loadu_pd(x + i), m));
    }
  }
  dropout_apply_range(seed, threshold, keep, x, y, i, i1);
}
#endif

}  // namespace detail

// The integer threshold of dropout_apply's ranges: counter_uniform(s, i) < rate  <=>
// (hash >> 11) < rate * 2^53  <=>  (hash >> 11) < ceil(rate * 2^53), all exact in double
// (rate * 2^53 <= 2^53), so no element differs from the reference.
template <class T>
uint64_t dropout_threshold(T rate) {
  return static_cast<uint64_t>(std::ceil(static_cast<double>(rate) * 9007199254740992.0));
}

// Variant 1 (the default): the reference's result, compared in integers and spread over the threads,
// with AVX-512 and AVX2 copies chosen at run time.  x, y: [n] (x == y allowed)
template <class T>
void dropout_apply(uint64_t seed, T rate, const T* x, T* y, int64_t n) {
  const T keep = T(1) / (T(1) - rate);
  const uint64_t threshold = dropout_threshold(rate);
  auto range = &detail::dropout_apply_range<T>;
#ifdef TINYCNN_HAVE_X86_TARGETS
  if (cpu_features().avx512)
    range = &detail::dropout_apply_range_avx512<T>;
  else if (cpu_features().avx2_fma)
    range = &detail::dropout_apply_range_avx2<T>;
#endif
  constexpr int64_t chunk = 1 << 14;  // elements per task (a multiple of 8: whole vectors)
  const int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (int64_t c = 0; c < chunks; ++c)
    range(seed, threshold, keep, x, y, c * chunk, std::min(n, (c + 1) * chunk));
}

}  // namespace tinycnn::kernels::cpu
