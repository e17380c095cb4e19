#pragma once
// Variant 6, gemm_avx512_dot: C = A B^T for few rows of A and a long reduction, as dot products.
//
//   C[M, N] = relu?(alpha * A[M, K] * B[N, K]^T + beta * C + bias)     (the NT form; the others run
//                                                                        gemm_avx512)
//
// Each C value is the dot product of a row of A and a row of B, both contiguous in k, so the big
// operand B (a dense layer's weights in its backward data pass: dX[32, 36864] += dY[32, 1024] W^T,
// W [36864, 1024]) is read straight from memory, once, with no packing: a block of 4 rows of B stays
// in L1 while it meets all M rows of A (packed beforehand in groups of 4 rows, 16 k of each per step).
// A 4 x 4 tile keeps 16 accumulators of 16 k-lanes; each 16 k cost 8 loads and 16 FMAs, and a
// tile's 16 sums are reduced in registers into one vector (hsum16), which is the 4 x 4 block of C.
// The packed GEMM instead packed B's 151 MB transposed for only 32 rows of FMAs (or, swapped, as
// C^T = B A^T, packed it as 14-row slivers and transposed C back): docs/performance.md, thirty-fourth
// session. Call only when cpu_features().avx512 is true.
#include <algorithm>
#include <cstdint>

#include "../../core/parallel.hpp"
#include "cpu_features.hpp"
#include "gemm_avx512.hpp"
#include "gemm_packed.hpp"

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

// A [M, K] (lda) packed for the tiles: group by group of 4 rows, and within a group step by step of
// 16 k, 4 x 16 values (row-major); zero-padded past M and past K. Element (i, k) at
//   dst[((i / 4) * steps + k / 16) * 64 + (i % 4) * 16 + k % 16],  steps = ceil(K / 16)
// so a tile reads its group as one contiguous stream (the k-major order, every group's step side by
// side, took 13-16% longer).
inline void pack_a(const float* A, int64_t lda, int64_t M, int64_t K, float* dst) {
  const int64_t groups = (M + kRows - 1) / kRows, steps = (K + 15) / 16;
  for (int64_t s = 0; s < steps; ++s)
    for (int64_t i = 0; i < groups * kRows; ++i) {
      float* d = dst + ((i / kRows) * steps + s) * 64 + (i % kRows) * 16;
      for (int64_t l = 0; l < 16; ++l) {
        const int64_t k = s * 16 + l;
        d[l] = i < M && k < K ? A[i * lda + k] : 0.0f;
      }
    }
}

// One 4 x 4 block of C: rows i0.. of A (ap: their packed group), rows j0.. of B. b[w] points at B's row
// j0 + w (repeated rows stand in past N; their sums are not stored). Lane 4 d + w of the result is
// dot(A row i0 + d, B row j0 + w). pf: this tile's share of the next block of B to prefetch, or null.
TINYCNN_TARGET_AVX512 inline __attribute__((always_inline)) __m512 tile(const float* ap, const float* const b[kRows],
                                                                        int64_t K,
                                                                        const gemm_detail::GemmPrefetch* pf) {
  gemm_detail::PrefetchCursor next(pf, K / 16);
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
    next.step<2>();  // into L2: in L1 the next 4 rows of B crowded the A group and the current rows
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
TINYCNN_TARGET_AVX512 inline __attribute__((always_inline)) void store(__m512 r, int md, int nw, float alpha, float beta, float* C, int64_t ldc,
                                        int64_t i0, int64_t j0, const GemmEpilogue<float>* ep) {
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
  for (int d = 0; d < md; ++d) {
    float* c = C + (i0 + d) * ldc + j0;
    for (int w = 0; w < nw; ++w) {
      float x = v[d * kRows + w];
      if (beta != 0.0f) x += beta * c[w];
      if (ep) {
        if (ep->bias) x += ep->bias_per_column ? ep->bias[j0 + w] : ep->bias[i0 + d];
        if (ep->relu) x = epilogue_relu(x, ep->relu_max);
      }
      c[w] = x;
    }
  }
}

// Blocks [b0, b1) of 4 rows of B, each against every row group of the packed A. While a block meets
// the groups, its tiles prefetch the next block's rows (a share each), which the first tile of the
// next block otherwise waited for from memory. Alternated in one process, Zen 4, 2 threads
// (docs/performance.md, thirty-eighth session): 32 x 36864 x 1024 (a dense layer's backward data)
// 0.83-0.87x the time, 32 x 4608 x 2048 0.92x, 8 x 20000 x 512 0.65x, 64 x 9216 x 2048 0.96x.
// The lines go to L2 only (prefetcht1): a block's 4 rows (16 KiB at K = 1024) and the A group a tile
// reads fill half of L1 each, and the next block's rows there evicted them. Against the all-levels
// prefetch, old and new builds alternated (7 pairs, huge-page buffers; docs/performance.md,
// forty-third session): 32 x 36864 x 1024 0.97x the time, 32 x 4608 x 2048 0.97x, 8 x 20000 x 512
// 0.73x, 64 x 9216 x 2048 1.00x. The packed tiles keep prefetcht0: 128 x 576 x 20,000 NT took 1.07x
// with prefetcht1.
TINYCNN_TARGET_AVX512 inline void run_blocks(int64_t b0, int64_t b1, int64_t M, int64_t N, int64_t K, float alpha,
                                             const float* ap, const float* B, int64_t ldb, float beta, float* C,
                                             int64_t ldc, const GemmEpilogue<float>* ep) {
  const int64_t groups = (M + kRows - 1) / kRows, group_floats = 64 * ((K + 15) / 16);
  for (int64_t bi = b0; bi < b1; ++bi) {
    const int64_t j0 = bi * kRows;
    const int nw = static_cast<int>(std::min<int64_t>(kRows, N - j0));
    const float* b[kRows];
    for (int w = 0; w < kRows; ++w) b[w] = B + (j0 + std::min(w, nw - 1)) * ldb;
    gemm_detail::GemmPrefetch pf;
    const bool fetch = bi + 1 < b1 && K >= 16;  // a next block (rows j0 + 4 .. of B) in this range
    if (fetch) {
      pf.base = reinterpret_cast<const char*>(B + (j0 + kRows) * ldb);
      pf.stride = ldb * static_cast<int64_t>(sizeof(float));
      pf.lines = (K * static_cast<int64_t>(sizeof(float)) + 63) / 64;
    }
    const int64_t nb_rows = std::min<int64_t>(kRows, N - j0 - kRows), pf_lines = fetch ? nb_rows * pf.lines : 0;
    for (int64_t g = 0; g < groups; ++g) {
      const int md = static_cast<int>(std::min<int64_t>(kRows, M - g * kRows));
      pf.l0 = pf_lines * g / groups, pf.l1 = pf_lines * (g + 1) / groups;
      const __m512 r = tile(ap + g * group_floats, b, K, fetch ? &pf : nullptr);
      store(r, md, nw, alpha, beta, C, ldc, g * kRows, j0, ep);
    }
  }
}

}  // namespace gemm_dot_detail

// Same contract as gemm_ref; requires cpu_features().avx512. The NT form runs as dot products (above);
// the other forms, which have no contiguous rows of op(B) in k, run gemm_avx512.
inline void gemm_avx512_dot(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                            const GemmEpilogue<float>* ep = nullptr) {
  namespace d = gemm_dot_detail;
  if (trans_a || !trans_b) return gemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  if (M <= 0 || N <= 0) return;
  if (ep && !ep->bias && !ep->relu) ep = nullptr;
  if (K <= 0 || alpha == 0.0f) {
    gemm_detail::scale_only(M, N, beta, C, ldc, ep);
    return;
  }
  const int64_t groups = (M + d::kRows - 1) / d::kRows, steps = (K + 15) / 16;
  // The packed GEMM's per-thread A buffer: not in use here (the other forms returned above).
  float* ap = gemm_detail::a_buffer<float>().get(static_cast<size_t>(steps * groups * 64));
  d::pack_a(A, lda, M, K, ap);
  const int64_t blocks = (N + d::kRows - 1) / d::kRows;  // of 4 rows of B
  // Each thread takes a contiguous range of B's rows (and so of C's columns): B is read once in all,
  // and no barrier is needed.
#ifdef _OPENMP
  const bool par = 2.0 * double(M) * double(N) * double(K) >= double(kParallelMinWork) && !omp_in_parallel() &&
                   blocks >= 2 * omp_get_max_threads();
#pragma omp parallel if (par)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    d::run_blocks(blocks * t / nt, blocks * (t + 1) / nt, M, N, K, alpha, ap, B, ldb, beta, C, ldc, ep);
  }
#else
  d::run_blocks(0, blocks, M, N, K, alpha, ap, B, ldb, beta, C, ldc, ep);
#endif
}

#else  // not x86-64 GCC/Clang: no AVX-512 kernel; the packed portable GEMM instead.

inline void gemm_avx512_dot(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                            const GemmEpilogue<float>* ep = nullptr) {
  gemm_packed<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

#endif  // TINYCNN_HAVE_X86_GEMM

}  // namespace tinycnn::kernels::cpu
