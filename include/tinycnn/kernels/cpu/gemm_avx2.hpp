#pragma once
// AVX2 + FMA single-precision GEMM (variant 3): the packed driver of gemm_packed.hpp with a 6x16
// register-blocked micro-kernel (12 ymm accumulators, two B vectors, one broadcast A value).
// Function-level target attributes keep the library compiled for the baseline ISA; call gemm_avx2
// only when cpu_features().avx2_fma is true.
#include <algorithm>
#include <cstdint>

#include "cpu_features.hpp"
#include "gemm_packed.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define TINYCNN_HAVE_X86_GEMM 1
#include <immintrin.h>
#endif

namespace tinycnn::kernels::cpu {

#ifdef TINYCNN_HAVE_X86_GEMM

namespace gemm_avx2_detail {

constexpr int MR = 6, NR = 16;

template <int M>
TINYCNN_TARGET_AVX2 void tile_kernel(const gemm_detail::Tile<float>& t) {
  __m256 c0[M], c1[M];
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  const float* a = t.a;
  const float* b = t.b;
  const int64_t kc = t.kc;
  const int64_t bstep = t.bs > 0 ? t.bs : NR;  // B in place (rows bs apart) or a packed sliver
  gemm_detail::PrefetchCursor pf(t.pf, kc);
  // Two copies of the k loop, not gemm_avx512.hpp's one loop over an A cursor: with the cursors
  // (gemm_kernel.hpp) GCC 12 kept this tile's row offsets on the stack, 4 more loads per k, and
  // 36864 x 32 x 1000 NT took 1.10x the time (docs/performance.md, forty-fifth session).
  if (t.ars > 0) {  // op(A) = A in place: each k reads one value of each of the sliver's rows
    const float* ar[M];
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) ar[r] = a + r * t.ars;
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
      pf.step();
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
      for (int r = 0; r < M; ++r) {
        const __m256 av = _mm256_broadcast_ss(ar[r] + k);
        c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
      }
      b += bstep;
    }
  } else {
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
      pf.step();
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
      for (int r = 0; r < M; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + r);
        c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
      }
      a += MR;
      b += bstep;
    }
  }
  if (t.nr == NR) {
    const __m256 valpha = _mm256_set1_ps(t.alpha), vbeta = _mm256_set1_ps(t.beta), zero = _mm256_setzero_ps();
    const bool use_beta = t.beta != 0.0f, cap = t.relu_max > 0.0f;
    const __m256 vcap = _mm256_set1_ps(t.relu_max);
    __m256 bc0 = zero, bc1 = zero;
    if (t.bias_col) {
      bc0 = _mm256_loadu_ps(t.bias_col);
      bc1 = _mm256_loadu_ps(t.bias_col + 8);
    }
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) {
      float* c = t.c + r * t.ldc;
      __m256 v0 = _mm256_mul_ps(c0[r], valpha), v1 = _mm256_mul_ps(c1[r], valpha);
      if (use_beta) {
        v0 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c), v0);
        v1 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c + 8), v1);
      }
      if (t.bias_row) {
        const __m256 br = _mm256_set1_ps(t.bias_row[r]);
        v0 = _mm256_add_ps(v0, br);
        v1 = _mm256_add_ps(v1, br);
      }
      v0 = _mm256_add_ps(v0, bc0);
      v1 = _mm256_add_ps(v1, bc1);
      if (t.relu) {
        v0 = _mm256_max_ps(v0, zero);
        v1 = _mm256_max_ps(v1, zero);
        if (cap) {
          v0 = _mm256_min_ps(v0, vcap);
          v1 = _mm256_min_ps(v1, vcap);
        }
      }
      _mm256_storeu_ps(c, v0);
      _mm256_storeu_ps(c + 8, v1);
    }
  } else {
    alignas(32) float acc[M * NR];
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) {
      _mm256_store_ps(acc + r * NR, c0[r]);
      _mm256_store_ps(acc + r * NR + 8, c1[r]);
    }
    gemm_detail::store_tile_generic(t, acc, NR);
  }
}

template <int M>
TINYCNN_TARGET_AVX2 void tile_dispatch_rest(const gemm_detail::Tile<float>& t) {
  if constexpr (M >= 1) {
    if (t.mr == M)
      tile_kernel<M>(t);
    else
      tile_dispatch_rest<M - 1>(t);
  }
}

TINYCNN_TARGET_AVX2 inline void tile(const gemm_detail::Tile<float>& t) {
  if (t.mr == MR)
    tile_kernel<MR>(t);
  else
    tile_dispatch_rest<MR - 1>(t);
}

// In-register transpose of 8 rows of 8 floats.
TINYCNN_TARGET_AVX2 inline void transpose8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// op(A) = A (rows contiguous in k): the scalar form scatters single floats MR apart; here 8 k of the
// MR rows (two zero rows added) are transposed in registers and each k's MR values stored with one
// full-width store. The same values as pack_a_impl (pure data movement; test_gemm.cpp checks bitwise).
TINYCNN_TARGET_AVX2 inline void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                       int64_t kc, float* dst, int64_t s0, int64_t s1) {
  if (trans) {
    gemm_detail::pack_a_impl<float, MR>(trans, A, lda, i0, m, k0, kc, dst, s0, s1);
    return;
  }
  static_assert(MR == 6, "the stores below write 6 + 2 floats per k");
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t r0 = s * MR;
    const int rows = static_cast<int>(std::min<int64_t>(MR, m - r0));
    float* d = dst + s * MR * kc;
    const float* src = A + (i0 + r0) * lda + k0;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(src + i * lda + k) : _mm256_setzero_ps();
      transpose8(r);
      // Full-width stores in k order: each writes two floats past its k's MR, which the next k's
      // store overwrites; the eighth writes only its MR (the next group may lie in another thread's
      // sliver). Masked stores (vmaskmovps) were slower on Zen 3 than the scalar scatter.
#pragma GCC unroll 7
      for (int i = 0; i < 7; ++i) _mm256_storeu_ps(d + (k + i) * MR, r[i]);
      _mm_storeu_ps(d + (k + 7) * MR, _mm256_castps256_ps128(r[7]));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + (k + 7) * MR + 4), _mm256_extractf128_ps(r[7], 1));
    }
    for (; k < kc; ++k)
      for (int i = 0; i < MR; ++i) d[k * MR + i] = i < rows ? src[i * lda + k] : 0.0f;
  }
}

// op(B) = B: sliver by sliver, or in groups of 8 rows when B's rows are a page or more apart (below).
// op(B) = B^T: each sliver is NR rows of B (contiguous in k) written k-major; two 8x8 blocks per 8 k
// are transposed in registers instead of scattering single floats. Partial slivers (the last, fewer
// than NR columns) take the scalar path, which zero-fills.
TINYCNN_TARGET_AVX2 inline void pack_b(bool trans, const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0,
                                       int64_t kc, float* dst, int64_t s0, int64_t s1) {
  if (!trans && ldb < 1024) {  // rows of B closer than a 4 KiB page: sliver by sliver (see below)
    gemm_detail::pack_b_impl<float, NR>(trans, B, ldb, j0, n, k0, kc, dst, s0, s1);
    return;
  }
  if (!trans) {
    // op(B) = B with rows a page or more apart: 8 rows of B at a time, each read along its whole
    // stretch of the block (every sliver's 16 floats), so the reads form 8 sequential streams. Sliver
    // by sliver (KC rows of 64 bytes, each in another page) no prefetcher follows them: packing a
    // 36,864 x 1,024 B in 256 x 256 blocks took 20.1 ms sliver by sliver, 20.0 row by row, 14.1 with
    // groups of 4 rows, 12.4-12.9 with 8, 15.0 with 16 (one thread, Zen 3). With rows 512 bytes apart
    // (the baseline model's 67,500 x 128 weights) the groups made its inference ~10% slower, so
    // narrower B keeps the sliver order (docs/performance.md, fifteenth session).
    const int64_t full = std::min(s1, n / NR);  // slivers [s0, full) have all NR columns
    constexpr int64_t G = 8;
    for (int64_t k = 0; k < kc; k += G) {
      const int64_t g = std::min(G, kc - k);
      for (int64_t s = s0; s < full; ++s) {
        const float* src = B + (k0 + k) * ldb + j0 + s * NR;
        float* d = dst + (s * kc + k) * NR;
        for (int64_t i = 0; i < g; ++i) {
          _mm256_storeu_ps(d + i * NR, _mm256_loadu_ps(src + i * ldb));
          _mm256_storeu_ps(d + i * NR + 8, _mm256_loadu_ps(src + i * ldb + 8));
        }
      }
    }
    if (std::max(s0, full) < s1)
      gemm_detail::pack_b_impl<float, NR>(trans, B, ldb, j0, n, k0, kc, dst, std::max(s0, full), s1);
    return;
  }
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t c0 = s * NR;
    if (n - c0 < NR) {
      gemm_detail::pack_b_impl<float, NR>(trans, B, ldb, j0, n, k0, kc, dst, s, s + 1);
      continue;
    }
    float* d = dst + s * NR * kc;
    const float* src = B + (j0 + c0) * ldb + k0;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8)
      for (int h = 0; h < NR / 8; ++h) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (8 * h + i) * ldb + k);
        transpose8(r);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(d + (k + i) * NR + 8 * h, r[i]);
      }
    for (; k < kc; ++k)
      for (int c = 0; c < NR; ++c) d[k * NR + c] = src[c * ldb + k];
  }
}

inline const gemm_detail::PackedKernel<float>& kernel() {
  // split_independent: measured on a Zen 3 host (AVX2, no AVX-512), docs/performance.md thirteenth session;
  // direct_a_rows (A read in place): on a Zen 4 host, forty-fifth session; B read in place for up to 3
  // slivers and N >= 256 (kDirectBMaxSliversAvx2): forty-sixth session (gemm_packed.hpp, run_packed).
  static const gemm_detail::PackedKernel<float> k{MR, NR, 256, MR * 128, 256 * 1024, 4 * NR,
                                                  &tile, &pack_a, &pack_b, true, gemm_detail::kDirectBMaxSliversAvx2,
                                                  false, false, true, gemm_detail::kDirectBMinNAvx2};
  return k;
}

}  // namespace gemm_avx2_detail

inline bool gemm_avx2_available() { return cpu_features().avx2_fma; }

// Same contract as gemm_ref; requires gemm_avx2_available().
inline void gemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                      const GemmEpilogue<float>* ep = nullptr) {
  gemm_detail::run_packed(gemm_avx2_detail::kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                          ldc, ep);
}

#else

inline bool gemm_avx2_available() { return false; }
inline void gemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                      const GemmEpilogue<float>* ep = nullptr) {
  gemm_packed<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

#endif

}  // namespace tinycnn::kernels::cpu
