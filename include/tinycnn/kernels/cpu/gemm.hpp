#pragma once
// The GEMM entry point used by every op: picks the fastest validated variant for the element type
// and the machine. Benchmarks (bench/bench_gemm.cpp) decide which variant wins; see
// docs/performance.md. Variants (all with gemm_ref's contract, all checked against it in
// tests/test_gemm.cpp):
//   0 gemm_ref      triple loop, ground truth
//   1 gemm_blocked  portable cache-blocked loops
//   2 gemm_packed   GotoBLAS/BLIS packing + portable register-blocked micro-kernel (float, double)
//   3 gemm_avx2     packed + AVX2/FMA 6x16 micro-kernel (float; run-time dispatch)
//   4 gemm_avx512   packed + AVX-512 14x32 micro-kernel (float; run-time dispatch)
//   5 gemm_avx512_8x48  the same with an 8x48 tile (float; dispatched to for NN products with
//                   K >= 64: see gemm_detail::prefer_8x48)
//   6 gemm_avx512_dot   NT products as dot products of rows, B read in place (float; dispatched to
//                   for few rows, a long reduction and a wide B: see gemm_detail::prefer_dot_nt)
//   6b gemm_avx2_dot    the same with an AVX2 4x3 tile (float; on CPUs without AVX-512, for the
//                   products of gemm_detail::prefer_dot_nt_avx2)
// gemm_ex also computes few-row NT products with a long reduction as C^T = B A^T
// (gemm_detail::prefer_swapped_nt, prefer_swapped_streamed_nt) where variant 6 does not apply.
#include <algorithm>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu_features.hpp"
#include "gemm_avx2.hpp"
#include "gemm_avx512.hpp"
#include "gemm_blocked.hpp"
#include "gemm_dot_avx2.hpp"
#include "gemm_dot_avx512.hpp"
#include "gemm_packed.hpp"
#include "gemm_ref.hpp"

namespace tinycnn::kernels::cpu {

namespace gemm_detail {
// Which AVX-512 tile runs a product (docs/performance.md, "Variant 5"): measured side by side, the
// 8x48 tile beat 14x32 on every non-transposed product with a real reduction (dense forward at batch
// 32 1.39x, conv forward GEMMs 1.13-1.16x, 1024^3 0.99x) — 8-row slivers fill M = 32/64/128 exactly —
// and lost on the transposed forms of the backward passes (0.79-0.80x) and on K = 27 (0.63x: with
// so short a reduction the wider C tile's loads and stores dominate). So: 8x48 for NN with K >= 64.
inline bool prefer_8x48(bool trans_a, bool trans_b, int64_t K) { return !trans_a && !trans_b && K >= 64; }

// C = A B^T with few rows (M <= 64), a long reduction (K >= 512) and a wide B (N >= 32 M): every element
// of the big operand B is packed transposed for only M rows of FMAs, so the packing costs about as
// much as the arithmetic. Computed as C^T = B A^T instead (B packed as the A operand: contiguous rows)
// and transposed into C: model3's dense backward data (32 x 36864 x 1024) 1.47-1.56x faster (AVX-512;
// 1.38x with the AVX2 kernel on Zen 3); neutral
// at 32 x 4096 x 512; slower with K = 128-256 (docs/performance.md, eighth session), hence the K bound.
inline bool prefer_swapped_nt(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  return !trans_a && trans_b && M <= 64 && K >= 512 && N >= 32 * M;
}

// C = A B^T with at most 256 rows, more columns (N > M) and a long reduction (K >= 1024), on full-width
// AVX-512 (not Zen 4's 256-bit units, where run_ksplit flips such products: flip_wide_nt): computed as
// C^T = B A^T too, whose A is then B, at least as tall as wide, read in place by the 14 x 32 tile's
// rows while at most 8 slivers of A^T are packed (run_packed's stream_a; the row split), instead of
// packing B's rows transposed; the transposing store (store_transposed) costs about 1% of such a
// product. Alternated in one process call by call, Zen 5, 2 threads (docs/performance.md,
// fifty-eighth session): 256 x 1152 x 4608 NT (model3 conv4's DyCol backward filter) 0.94-0.96x the time,
// 128 x 1152 x 4608 0.87x, 64 x 1152 x 4608 0.85x, 256 x 512 x 4608 0.87x, 256 x 2304 x 4608
// 0.91-0.92x, 128 x 2304 x 9216 0.92-0.93x, 48 x 1024 x 20,000 0.86-0.87x, 256 x 1152 x 1024 0.93-
// 0.94x, 128 x 576 x 20,000 0.97-0.98x, 256 x 4608 x 20,000 0.99x; ties at 64 x 288 x 80,000, 200 x
// 1000 x 3000, 128 x 2048 x 1024 and 200 x 800 x 1024 (0.98-1.007x). With more rows it lost (384 x
// 1152 x 4608 0.99-1.006x, 512 x 1152 x 4608 1.01x, 512 x 2048 x 2048 1.16x, 1024 x 2048 x 1024
// 1.11x: the swapped product's A^T no longer fits 8 slivers and is packed with B's rows).
inline bool prefer_swapped_streamed_nt(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  constexpr int64_t kNr = 32;  // the 14 x 32 tile's columns: A^T, M columns of the swapped product, in 8 slivers
  return !trans_a && trans_b && N > M && M <= kNr * kPrefetchMaxSlivers && K >= 1024;
}

// C = A B^T with few rows (M <= 64), a long reduction (K >= 512), a wide B (N >= 256 and N >= 8 M) and
// a packed A that stays in L2 (M K <= 128 Ki floats): dot products of rows (variant 6), B read once
// in place. Against the swapped form (2 threads, Zen 5; docs/performance.md, thirty-fourth session):
// model3's dense backward data 32 x 36864 x 1024 0.73-0.78x the time, 8 x 36864 x 1024 0.43x,
// 32 x 256 x 1024 0.57x, 64 x 1024 x 1024 0.86x; it lost with K = 128 (1.22x), N = 128 (1.15x) and
// M = 128 (1.07x), hence the bounds.
inline bool prefer_dot_nt(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  return !trans_a && trans_b && M <= 64 && K >= 512 && N >= 256 && N >= 8 * M && M * K <= (int64_t(1) << 17);
}

// The AVX2 dot-product tile (variant 6b) on the same products with a smaller packed A (M K <= 32 Ki
// floats, 128 KiB): its 4 x 3 tile streams A from L2 at 128 bytes per 12 FMAs of 8 lanes, twice the
// AVX-512 tile's rate per FMA. Against the swapped form, TINYCNN_MAX_ISA=avx2 on a Zen 4, 2 threads,
// in one process with the order alternated (docs/performance.md, forty-seventh session): 32 x 36864 x
// 1024 (model3's dense backward data) 0.87x the time, 16 x 36864 x 1024 0.84x, 8 x 36864 x 1024 0.54x,
// 8 x 20000 x 512 0.53x, 8 x 16384 x 2048 0.54x, 32 x 4096 x 768 0.92x, 64 x 4096 x 512 0.91x; 32 x
// 1024 x 1024 1.00-1.17x. With M K above the bound it lost: 32 x 4608 x 2048 1.07x, 64 x 2048 x 2048
// 1.05x, 64 x 9216 x 2048 1.05x, 32 x 2048 x 1536 1.04x, 32 x 8192 x 1280 1.005x.
inline bool prefer_dot_nt_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  return prefer_dot_nt(trans_a, trans_b, M, N, K) && M * K <= (int64_t(1) << 15);
}

// C[i, j] = beta C[i, j] + ct[j, i], then the epilogue, for the columns [j0, j1) of C, element by
// element (ct: [N, M], rows M apart; C: [M, N] (ldc); beta == 0: C is not read, may hold NaN). The
// reference of store_transposed (gemm_avx512.hpp).
template <class T>
void store_transposed_ref(const T* ct, int64_t M, T beta, T* C, int64_t ldc, const GemmEpilogue<T>& ep, int64_t j0,
                          int64_t j1) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    const T bi = ep.bias && !ep.bias_per_column ? ep.bias[i] : T(0);
    for (int64_t j = j0; j < j1; ++j) {
      T v = ct[j * M + i] + (beta == T(0) ? T(0) : beta * c[j]);
      v += ep.bias ? (ep.bias_per_column ? ep.bias[j] : bi) : T(0);
      c[j] = ep.relu ? epilogue_relu(v, ep.relu_max) : v;
    }
  }
}

// C = alpha A B^T + beta C computed as C^T = alpha B A^T by gemm (into a per-thread buffer), then
// stored transposed by store(ct, M, beta, C, ldc, ep, j0, j1) over blocks of C's columns.
template <class T, class Gemm, class Store>
void gemm_swapped_nt(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb,
                     T beta, T* C, int64_t ldc, const GemmEpilogue<T>& ep, Gemm gemm, Store store) {
  static thread_local HostBuffer<T> buf;
  T* ct = buf.get(static_cast<size_t>(M * N));  // C^T [N, M]
  gemm(false, true, N, M, K, alpha, B, ldb, A, lda, T(0), ct, M);
  constexpr int64_t kB = 64;
#ifdef _OPENMP
  const bool par = M * N >= kParallelMinWork && !omp_in_parallel();
#else
  const bool par = false;
#endif
#pragma omp parallel for if (par)
  for (int64_t j0 = 0; j0 < N; j0 += kB) store(ct, M, beta, C, ldc, ep, j0, std::min(N, j0 + kB));
}
template <class T, class Gemm>
void gemm_swapped_nt(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb,
                     T beta, T* C, int64_t ldc, const GemmEpilogue<T>& ep, Gemm gemm) {
  gemm_swapped_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, gemm, &store_transposed_ref<T>);
}
}  // namespace gemm_detail

// C = relu?(alpha * op(A) * op(B) + beta * C + bias), with the epilogue fused into the last store of
// the micro-kernel. Argument contract in gemm_ref.hpp; bias semantics in GemmEpilogue.
template <class T>
void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
             const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue<T>& ep) {
  if constexpr (std::is_same<T, float>::value) {
    const CpuFeatures& f = cpu_features();
    if (f.avx512 && gemm_detail::prefer_dot_nt(trans_a, trans_b, M, N, K))
      return gemm_avx512_dot(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep);
#ifdef TINYCNN_HAVE_X86_GEMM
    if (f.avx512 && (gemm_detail::prefer_swapped_nt(trans_a, trans_b, M, N, K) ||
                     (!f.avx512_half_width && gemm_detail::prefer_swapped_streamed_nt(trans_a, trans_b, M, N, K))))
      return gemm_detail::gemm_swapped_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep,
                                          [](auto... a) { gemm_avx512(a..., nullptr); },
                                          &gemm_avx512_detail::store_transposed);
#endif
    if (f.avx512) {
      if (gemm_detail::prefer_8x48(trans_a, trans_b, K))
        return gemm_avx512_8x48(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep);
      return gemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep);
    }
    if (f.avx2_fma && gemm_detail::prefer_dot_nt_avx2(trans_a, trans_b, M, N, K))
      return gemm_avx2_dot(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep);
    // The same swap on AVX2 (Zen 3 host, thirteenth session): 32 x 36864 x 1024 65 -> 89 GFLOP/s.
    if (f.avx2_fma && gemm_detail::prefer_swapped_nt(trans_a, trans_b, M, N, K))
      return gemm_detail::gemm_swapped_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep,
                                          [](auto... a) { gemm_avx2(a..., nullptr); });
    if (f.avx2_fma) return gemm_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep);
  }
  gemm_packed<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ep);
}

// Register tile of the variant gemm_ex runs for T on this machine and this form of product: C is
// computed in mr x nr blocks, so a product whose M or N is not a multiple wastes part of every edge
// tile. Callers that can choose between C and C^T (conv2d's backward filter) use it to pick the
// fuller orientation.
struct GemmTileShape {
  int mr, nr;
};
namespace gemm_detail {
// The packed kernel gemm_ex runs on one thread for a product of this form (op(A) and op(B) as the flags
// say, reduction K), where it runs a packed kernel at all (not for the few-row NT products of
// prefer_swapped_nt and prefer_dot_nt, which callers of this never pass).
template <class T>
const PackedKernel<T>& kernel_for(bool trans_a, bool trans_b, int64_t K) {
#ifdef TINYCNN_HAVE_X86_GEMM
  if constexpr (std::is_same<T, float>::value) {
    const CpuFeatures& f = cpu_features();
    if (f.avx512 && prefer_8x48(trans_a, trans_b, K)) return gemm_avx512_detail::kernel_8x48();
    if (f.avx512) return gemm_avx512_detail::kernel();
    if (f.avx2_fma) return gemm_avx2_detail::kernel();
  }
#else
  (void)trans_a, (void)trans_b, (void)K;
#endif
  return portable_kernel<T>();
}
}  // namespace gemm_detail
template <class T>
GemmTileShape gemm_tile_shape(bool trans_a, bool trans_b, int64_t K) {
  const gemm_detail::PackedKernel<T>& k = gemm_detail::kernel_for<T>(trans_a, trans_b, K);
  return {k.mr, k.nr};
}

// C = alpha * A * B + beta * C on one thread, with B [K, N] supplied already in the packed layout of
// the kernel gemm_ex would use, so a producer that writes B anyway (the Winograd input transform)
// saves the GEMM's packing pass over it. The layout: column slivers of nr = gemm_prepacked_b_nr<T>(K)
// columns, sliver s (columns s nr .. s nr + nr - 1) at Bp + s * K * nr, holding all K rows, row k's
// nr values contiguous: element (k, j) at Bp[(j / nr) * K * nr + k * nr + j % nr] (columns past N in
// the last sliver are never read into C). Bitwise the same result as gemm_ex run on one thread (inside
// a parallel region) on the unpacked B.
//   A: [M, K] (lda), Bp: ceil(N / nr) * K * nr elements, C: [M, N] (ldc)
template <class T>
int gemm_prepacked_b_nr(int64_t K) {
  return gemm_detail::kernel_for<T>(false, false, K).nr;
}
template <class T>
void gemm_nn_prepacked_b(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* Bp, T beta, T* C,
                         int64_t ldc) {
  gemm_detail::run_packed_b(gemm_detail::kernel_for<T>(false, false, K), M, N, K, alpha, A, lda, Bp, beta, C, ldc);
}

// As gemm_nn_prepacked_b, with A [M, K] also supplied packed, for a producer that writes A anyway
// (the Winograd filter transform writes U this way). The layout: row slivers of mr =
// gemm_prepacked_a_mr<T>(K) rows, sliver s (rows s mr .. s mr + mr - 1) at Ap + s * K * mr, holding all
// K columns, column k's mr values contiguous: element (i, k) at Ap[(i / mr) * K * mr + k * mr + i % mr]
// (rows past M in the last sliver are computed into registers but never stored into C). Bitwise the
// same result as gemm_ex on one thread on the unpacked A and B.
//   Ap: ceil(M / mr) * K * mr elements, Bp: ceil(N / nr) * K * nr elements, C: [M, N] (ldc)
template <class T>
int gemm_prepacked_a_mr(int64_t K) {
  return gemm_detail::kernel_for<T>(false, false, K).mr;
}
template <class T>
void gemm_nn_prepacked_ab(int64_t M, int64_t N, int64_t K, T alpha, const T* Ap, const T* Bp, T beta, T* C,
                          int64_t ldc) {
  gemm_detail::run_packed_b(gemm_detail::kernel_for<T>(false, false, K), M, N, K, alpha, Ap, 0, Bp, beta, C, ldc,
                            true);
}

// C = alpha * op(A) * op(B) + beta * C; argument contract in gemm_ref.hpp.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_ex<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, GemmEpilogue<T>{});
}

}  // namespace tinycnn::kernels::cpu
