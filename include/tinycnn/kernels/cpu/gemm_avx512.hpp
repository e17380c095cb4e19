#pragma once
// AVX-512 single-precision GEMM: the packed driver of gemm_packed.hpp with register-blocked
// micro-kernels of MR rows x NV vectors of 16 columns (MR * NV zmm accumulators, NV B vectors, one
// broadcast A value):
//   variant 4, gemm_avx512:      14 x 32 (28 accumulators; the fewest loads per FMA)
//   variant 5, gemm_avx512_8x48:  8 x 48 (24 accumulators; fills M = 8k exactly: the 32/64 output
//                                channels of conv1/conv2 and the 32 rows of a dense layer at batch 32,
//                                where 14-row tiles are 76%/91% full)
// Every function that uses AVX-512 carries a function-level target attribute, so the library is
// still compiled for the baseline ISA; call gemm_avx512 only when cpu_features().avx512 is true.
#include <cstdint>

#include "cpu_features.hpp"
#include "gemm_packed.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define TINYCNN_HAVE_X86_GEMM 1
#include <immintrin.h>
#endif

namespace tinycnn::kernels::cpu {

#ifdef TINYCNN_HAVE_X86_GEMM

namespace gemm_avx512_detail {

// Full mask for the masked intrinsic forms used below: the unmasked forms of max/unpack/shuffle trip
// GCC 12's -Wuninitialized through _mm512_undefined_ps.
constexpr __mmask16 kAll = 0xFFFF;

// Valid lanes of vector v of a tile row with nr valid columns.
inline __mmask16 lane_mask(int nr, int v) {
  const int n = nr - 16 * v;
  return n >= 16 ? __mmask16(0xFFFF) : n > 0 ? __mmask16((1u << n) - 1u) : __mmask16(0);
}

// The tile's k loop: c[r][v] += A(r, k) * B(k, 16 v ..) for the next kc values of k, A's values
// from cursor a (gemm_kernel.hpp), B's rows bstep apart from b; a and b are left at the k after them.
template <int M, int NC, class ACursor>
TINYCNN_TARGET_AVX512 TINYCNN_GEMM_INLINE void tile_k_loop(__m512 (&c)[M][NC], ACursor& a, const float*& b,
                                                         int64_t bstep, int64_t kc, gemm_detail::PrefetchCursor& pf) {
  for (int64_t k = 0; k < kc; ++k) {
    pf.step();
    __m512 bv[NC];
#pragma GCC unroll 4
    for (int v = 0; v < NC; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r) {
      const __m512 av = _mm512_set1_ps(a(r));
#pragma GCC unroll 4
      for (int v = 0; v < NC; ++v) c[r][v] = _mm512_fmadd_ps(av, bv[v], c[r][v]);
    }
    a.next();
    b += bstep;
  }
}

// How many k before the end of its loop a tile that reads A in place by rows fetches its C lines (0:
// before the loop). The 14 x 32 tile's B sliver (48 KiB at KC 384) and the A rows' lines pass through
// the 48 KiB L1 during the loop and can evict lines fetched before it, so that the final read of C
// goes to L2 again. Fetched 48 k before the end instead, the same binary alternating the two call by
// call, 2 threads (docs/performance.md, fifty-seventh session): 1152 x 256 x 4608 NT 0.986-0.999x
// the time, 576 x 128 x 20,000 NT 0.988-1.000x, 64 x 288 x 80,000 NT 0.980-0.999x, 288 x 64 x
// 80,000 NT 0.990-0.997x. Where A^T is read in place or packed (TN: 288 x 64 x 80,000 1.011-1.019x,
// 576 x 128 x 20,000 1.000-1.020x), and for the 8 x 48 tile (32 x 1024 x 36,864 NN 1.01-1.02x), it
// lost, so those keep the early fetch.
template <int MR, int NV>
constexpr int64_t c_fetch_lead_rows() {
  return MR == 14 && NV == 2 ? 48 : 0;
}

// One M x (16 NC) micro-tile of an MR x 16 NV sliver pair: M <= MR rows and the first NC <= NV
// vectors of columns (t.nr <= 16 NC); NC < NV only for the last, narrower B sliver of a product.
template <int MR, int NV, int M, int NC = NV>
TINYCNN_TARGET_AVX512 void tile_kernel(const gemm_detail::Tile<float>& t) {
  static_assert(NC >= 1 && NC <= NV, "computed vectors within the sliver");
  constexpr int NR = 16 * NV;
  __m512 c[M][NC];
#pragma GCC unroll 16
  for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NC; ++v) c[r][v] = _mm512_setzero_ps();
  // C rows are ldc apart (often a multiple of 4 KiB): fetch the tile's lines ahead of its final
  // read so that they arrive while the FMAs run (unless C is streamed: then it is not read).
  auto fetch_c = [&] {
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NC; ++v) _mm_prefetch(reinterpret_cast<const char*>(t.c + r * t.ldc + 16 * v), _MM_HINT_T0);
  };
  constexpr int64_t kLead = c_fetch_lead_rows<MR, NV>();
  const int64_t lead = t.ars > 0 && !t.stream && t.kc > kLead ? kLead : 0;
  if (!t.stream && lead == 0) fetch_c();
  gemm_detail::PrefetchCursor pf(t.pf, t.kc);
  const int64_t bstep = t.bs > 0 ? t.bs : NR;  // B in place (rows bs apart) or a packed sliver
  const float* b = t.b;
  if (t.ars > 0) {  // A in place
    gemm_detail::ARowsCursor<float> a{t.a, t.ars};
    tile_k_loop<M, NC>(c, a, b, bstep, t.kc - lead, pf);
    if (lead > 0) fetch_c(), tile_k_loop<M, NC>(c, a, b, bstep, lead, pf);
  } else {  // a packed sliver or A^T in place (lead 0)
    gemm_detail::ASliverCursor<float> a{t.a, t.as > 0 ? t.as : MR};
    tile_k_loop<M, NC>(c, a, b, bstep, t.kc, pf);
  }
  __mmask16 m[NC];
  __m512 bc[NC];
  const __m512 valpha = _mm512_set1_ps(t.alpha), vbeta = _mm512_set1_ps(t.beta), zero = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int v = 0; v < NC; ++v) {
    m[v] = lane_mask(t.nr, v);
    bc[v] = t.bias_col ? _mm512_maskz_loadu_ps(m[v], t.bias_col + 16 * v) : zero;
  }
  const bool use_beta = t.beta != 0.0f, cap = t.relu_max > 0.0f;
  const __m512 vcap = _mm512_set1_ps(t.relu_max);
#pragma GCC unroll 16
  for (int r = 0; r < M; ++r) {
    float* cr = t.c + r * t.ldc;
    const __m512 br = t.bias_row ? _mm512_set1_ps(t.bias_row[r]) : zero;
#pragma GCC unroll 4
    for (int v = 0; v < NC; ++v) {
      __m512 x = _mm512_mul_ps(c[r][v], valpha);
      if (use_beta) x = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m[v], cr + 16 * v), x);
      x = _mm512_add_ps(_mm512_add_ps(x, br), bc[v]);
      if (t.relu) {
        x = _mm512_mask_max_ps(x, kAll, x, zero);
        if (cap) x = _mm512_min_ps(x, vcap);
      }
      if (t.stream && t.nr == NR)  // a full 64-byte line (run_packed checked the alignment)
        _mm512_stream_ps(cr + 16 * v, x);
      else
        _mm512_mask_storeu_ps(cr + 16 * v, m[v], x);
    }
  }
}

template <int MR, int NV, int M>
TINYCNN_TARGET_AVX512 void tile_dispatch_rest(const gemm_detail::Tile<float>& t) {
  if constexpr (M >= 1) {
    if (t.mr == M)
      tile_kernel<MR, NV, M>(t);
    else
      tile_dispatch_rest<MR, NV, M - 1>(t);
  }
}

// A full-height tile of a narrower last B sliver computes only the vectors that hold columns: the
// Winograd point GEMMs of model3's 6x6 layers have 128 tile columns, two 48-column slivers and one
// of 32, where the 8x48 tile spent 11% of its FMAs on padding (docs/performance.md, thirty-fifth
// session).
template <int MR, int NV, int NC>
TINYCNN_TARGET_AVX512 void tile_narrow(const gemm_detail::Tile<float>& t) {
  if constexpr (NC >= NV) {
    tile_kernel<MR, NV, MR>(t);
  } else {
    if (t.nr <= 16 * NC)
      tile_kernel<MR, NV, MR, NC>(t);
    else
      tile_narrow<MR, NV, NC + 1>(t);
  }
}

template <int MR, int NV>
TINYCNN_TARGET_AVX512 void tile(const gemm_detail::Tile<float>& t) {
  if (t.mr == MR)
    tile_narrow<MR, NV, 1>(t);
  else
    tile_dispatch_rest<MR, NV, MR - 1>(t);
}

// In-register transpose of 16 rows of 16 floats.
TINYCNN_TARGET_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_mask_unpacklo_ps(r[i], kAll, r[i], r[i + 1]);
    t[i + 1] = _mm512_mask_unpackhi_ps(r[i], kAll, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_mask_shuffle_ps(t[i], kAll, t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_mask_shuffle_ps(t[i], kAll, t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_mask_shuffle_ps(t[i + 1], kAll, t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_mask_shuffle_ps(t[i + 1], kAll, t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_mask_shuffle_f32x4(r[h + i], kAll, r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_mask_shuffle_f32x4(r[h + i], kAll, r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_mask_shuffle_f32x4(t[i], kAll, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_mask_shuffle_f32x4(t[i], kAll, t[i], t[i + 8], 0xdd);
  }
}

// C[i, j] = beta C[i, j] + ct[j, i], then the epilogue (bias, ReLU), for the columns [j0, j1) of C:
//   ct: [N, M] (C^T, rows M apart), C: [M, N] (ldc)
// the store of a product computed transposed (gemm_swapped_nt, gemm.hpp; the reference is
// gemm_detail::store_transposed_ref). 16 x 16 blocks are transposed in registers, the edges masked.
// Element by element (a line of C^T per element along each row of C) the store took 3-4% of the
// swapped 256 x 1152 x 4608 NT, this one about 1% (docs/performance.md, fifty-eighth session).
TINYCNN_TARGET_AVX512 inline void store_transposed(const float* ct, int64_t M, float beta, float* C, int64_t ldc,
                                                   const GemmEpilogue<float>& ep, int64_t j0, int64_t j1) {
  const __m512 vbeta = _mm512_set1_ps(beta), zero = _mm512_setzero_ps(), vcap = _mm512_set1_ps(ep.relu_max);
  const bool cap = ep.relu_max > 0.0f;
  for (int64_t jb = j0; jb < j1; jb += 16) {
    const int nj = static_cast<int>(std::min<int64_t>(16, j1 - jb));
    const __mmask16 mj = lane_mask(nj, 0);
    const __m512 bcol = ep.bias && ep.bias_per_column ? _mm512_maskz_loadu_ps(mj, ep.bias + jb) : zero;
    for (int64_t ib = 0; ib < M; ib += 16) {
      const int ni = static_cast<int>(std::min<int64_t>(16, M - ib));
      const __mmask16 mi = lane_mask(ni, 0);
      __m512 r[16];
      for (int q = 0; q < 16; ++q) r[q] = q < nj ? _mm512_maskz_loadu_ps(mi, ct + (jb + q) * M + ib) : zero;
      transpose16(r);  // r[q]: row ib + q of C, columns jb ..
      for (int q = 0; q < ni; ++q) {
        float* c = C + (ib + q) * ldc + jb;
        __m512 v = r[q];
        if (beta != 0.0f) v = _mm512_add_ps(v, _mm512_mul_ps(vbeta, _mm512_maskz_loadu_ps(mj, c)));
        if (ep.bias) v = _mm512_add_ps(v, ep.bias_per_column ? bcol : _mm512_set1_ps(ep.bias[ib + q]));
        if (ep.relu) {
          v = _mm512_mask_max_ps(v, kAll, zero, v);  // operands in this order keep a NaN, as epilogue_relu does
          if (cap) v = _mm512_mask_min_ps(v, kAll, vcap, v);
        }
        _mm512_mask_storeu_ps(c, mj, v);
      }
    }
  }
}

// op(A) = A (rows contiguous in k): a sliver is MR rows written k-major. The scalar form scatters
// single floats MR apart; here 16 k of the MR rows (zero rows added up to 16) are transposed in
// registers and each k's MR values stored with one masked store. Matters where A is the large operand: the
// column matrix of a backward filter computed as dW^T = col * dY^T (conv2d.hpp, FilterForm::ColDy).
template <int MR>
TINYCNN_TARGET_AVX512 void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                  int64_t kc, float* dst, int64_t s0, int64_t s1) {
  static_assert(MR <= 16, "one 16x16 transpose per 16 k");
  constexpr __mmask16 kRow = (1u << MR) - 1u;
  if (trans) {
    // op(A) = A^T (rows of A run along k): each k's MR values are contiguous in A, one masked load
    // and one masked store (the masked-off lanes of a partial sliver load nothing and store zeros).
    // The portable element copy it replaced cost the long-K backward-filter products (a K-block of
    // 288 x 64 x 80,000 TN packs 442 KB of A^T per thread): alternated in one process, 2 threads
    // (docs/performance.md, thirty-seventh session), 288 x 64 x 80,000 TN 0.90x the time,
    // 576 x 128 x 20,000 TN 0.96-0.98x, other TN shapes 0.99-1.01x.
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t r0 = s * MR;
      const int rows = static_cast<int>(std::min<int64_t>(MR, m - r0));
      const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1u);
      float* d = dst + s * MR * kc;
      const float* src = A + k0 * lda + i0 + r0;
      for (int64_t k = 0; k < kc; ++k)
        _mm512_mask_storeu_ps(d + k * MR, kRow, _mm512_maskz_loadu_ps(valid, src + k * lda));
    }
    return;
  }
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t r0 = s * MR;
    const int rows = static_cast<int>(std::min<int64_t>(MR, m - r0));
    float* d = dst + s * MR * kc;
    const float* src = A + (i0 + r0) * lda + k0;
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_loadu_ps(src + i * lda + k) : _mm512_setzero_ps();
      transpose16(r);
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) _mm512_mask_storeu_ps(d + (k + i) * MR, kRow, r[i]);
    }
    for (; k < kc; ++k)
      for (int i = 0; i < MR; ++i) d[k * MR + i] = i < rows ? src[i * lda + k] : 0.0f;
  }
}

// op(B) = B^T packing reads 16 * NV rows of B side by side, one line of each per 16 k: more
// concurrent streams than the hardware prefetchers follow, so where B comes from memory (a backward
// filter's B = col, 576 x 20,000) the transposes waited on every line. Each row's line this many
// floats ahead is prefetched: model3 conv3's backward-filter products (128 x 576 x 20,000 and
// 576 x 128 x 20,000, NT) 0.84-0.92x the time, others 0.95-1.0x (docs/performance.md,
// thirty-sixth session).
constexpr int64_t kPackBtAhead = 64;

template <int NV>
TINYCNN_TARGET_AVX512 void pack_b(bool trans, const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0,
                                  int64_t kc, float* dst, int64_t s0, int64_t s1) {
  constexpr int NR = 16 * NV;
  if (!trans) {
    gemm_detail::pack_b_impl<float, NR>(trans, B, ldb, j0, n, k0, kc, dst, s0, s1);
    return;
  }
  // op(B) = B^T: each sliver is NR rows of B (contiguous in k) written k-major; transpose 16x16
  // blocks in registers instead of scattering single floats.
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t c0 = s * NR;
    if (n - c0 < NR) {
      gemm_detail::pack_b_impl<float, NR>(trans, B, ldb, j0, n, k0, kc, dst, s, s + 1);
      continue;
    }
    float* d = dst + s * NR * kc;
    const float* src = B + (j0 + c0) * ldb + k0;
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16)
      for (int h = 0; h < NV; ++h) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + (16 * h + i) * ldb + k);
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i)  // integer address: past the block's (or B's) end is only a hint
          __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(src + (16 * h + i) * ldb + k) +
                                                           kPackBtAhead * sizeof(float)),
                             0, 3);
        transpose16(r);
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) _mm512_storeu_ps(d + (k + i) * NR + 16 * h, r[i]);
      }
    for (; k < kc; ++k)
      for (int c = 0; c < NR; ++c) d[k * NR + c] = src[c * ldb + k];
  }
}

// KC 384: the A sliver (14 x 384 floats, 21 KiB) stays in L1 while B slivers stream from L2.
// split_independent (both tiles): on a Zen 5 host (2 vCPUs, AVX-512) disjoint column or row ranges
// per thread beat the shared panels by up to 1.8x on wide products (model3 conv2's forward GEMM
// 64 x 165,888 x 288: 146 -> 265 GFLOP/s) and a dense layer's weight gradient, and tie elsewhere
// (docs/performance.md, twenty-second session).
inline const gemm_detail::PackedKernel<float>& kernel() {
  static const gemm_detail::PackedKernel<float> k{14, 32, 384, 14 * 144, 512 * 1024, 4 * 32, &tile<14, 2>,
                                                  &pack_a<14>, &pack_b<2>, true, 0, true,
                                                  cpu_features().avx512_half_width, true, 0,
                                                  !cpu_features().avx512_half_width};
  return k;
}
// 8 x 48: same KC and panel sizes (A sliver 12 KiB, B sliver 72 KiB in L2).
inline const gemm_detail::PackedKernel<float>& kernel_8x48() {
  static const gemm_detail::PackedKernel<float> k{8, 48, 384, 8 * 252, 512 * 1024, 4 * 48, &tile<8, 3>,
                                                  &pack_a<8>, &pack_b<3>, true, gemm_detail::kDirectBMaxSlivers, true,
                                                  cpu_features().avx512_half_width, true, 0,
                                                  !cpu_features().avx512_half_width};
  return k;
}

}  // namespace gemm_avx512_detail

inline bool gemm_avx512_available() { return cpu_features().avx512; }

// Same contract as gemm_ref; requires gemm_avx512_available().
inline void gemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                        const GemmEpilogue<float>* ep = nullptr) {
  gemm_detail::run_packed(gemm_avx512_detail::kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                          ldc, ep);
}
inline void gemm_avx512_8x48(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                             const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                             int64_t ldc, const GemmEpilogue<float>* ep = nullptr) {
  gemm_detail::run_packed(gemm_avx512_detail::kernel_8x48(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta,
                          C, ldc, ep);
}

#else  // not x86-64 GCC/Clang: no AVX-512 kernel; the entry point falls back to the portable one.

inline bool gemm_avx512_available() { return false; }
inline void gemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                        const GemmEpilogue<float>* ep = nullptr) {
  gemm_packed<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
inline void gemm_avx512_8x48(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                             const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                             int64_t ldc, const GemmEpilogue<float>* ep = nullptr) {
  gemm_packed<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

#endif

}  // namespace tinycnn::kernels::cpu
