#pragma once
// The driver of the dot-product GEMMs (variants 6 and 6b: gemm_dot_avx512.hpp, gemm_dot_avx2.hpp):
//
//   C[M, N] = relu?(alpha * A[M, K] * B[N, K]^T + beta * C + bias)     (the NT form only)
//
// Each C value is the dot product of a row of A and a row of B, both contiguous in k, so the big
// operand B (a dense layer's weights in its backward data pass: dX[32, 36864] += dY[32, 1024] W^T,
// W [36864, 1024]) is read straight from memory, once, with no packing: a block of Kernel::kCols rows
// of B stays in L1 while it meets all M rows of A, packed beforehand in groups of Kernel::kRows rows,
// Kernel::kLanes k of each per step. The ISA file supplies the register tile (Kernel::column: the
// kRows x kCols blocks of C of one block of B, their sums reduced in registers); this file packs A,
// walks the blocks of B and splits them between threads. The packed GEMM instead packed B's 151 MB
// transposed for only 32 rows of FMAs (or, swapped, as C^T = B A^T, packed it as slivers and
// transposed C back): docs/performance.md, thirty-fourth and forty-seventh sessions.
#include <algorithm>
#include <cstdint>

#include "../../core/parallel.hpp"
#include "gemm_packed.hpp"

namespace tinycnn::kernels::cpu::gemm_dot_detail {

// A [M, K] (lda) packed for the tiles: group by group of R rows, and within a group step by step of L
// k, R x L values (row-major); zero-padded past M and past K. Element (i, k) at
//   dst[((i / R) * steps + k / L) * R * L + (i % R) * L + k % L],  steps = ceil(K / L)
// so a tile reads its group as one contiguous stream (the k-major order, every group's step side by
// side, took 13-16% longer with the AVX-512 tile).
template <int R, int L>
void pack_a(const float* A, int64_t lda, int64_t M, int64_t K, float* dst) {
  const int64_t groups = (M + R - 1) / R, steps = (K + L - 1) / L;
  for (int64_t s = 0; s < steps; ++s)
    for (int64_t i = 0; i < groups * R; ++i) {
      float* d = dst + ((i / R) * steps + s) * R * L + (i % R) * L;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t k = s * L + l;
        d[l] = i < M && k < K ? A[i * lda + k] : 0.0f;
      }
    }
}

// C[i0 + d, j0 + w] for d < md, w < nw from v[d * W + w] (alpha applied): beta (0: C not read) and the
// epilogue, element by element; the tiles' edge blocks and fused epilogues.
template <int W>
void store_block(const float* v, int md, int nw, float beta, float* C, int64_t ldc, int64_t i0, int64_t j0,
                 const GemmEpilogue<float>* ep) {
  for (int d = 0; d < md; ++d) {
    float* c = C + (i0 + d) * ldc + j0;
    for (int w = 0; w < nw; ++w) {
      float x = v[d * W + w];
      if (beta != 0.0f) x += beta * c[w];
      if (ep) {
        if (ep->bias) x += ep->bias_per_column ? ep->bias[j0 + w] : ep->bias[i0 + d];
        if (ep->relu) x = epilogue_relu(x, ep->relu_max);
      }
      c[w] = x;
    }
  }
}

// What Kernel::column receives: one block of kCols rows of B (b), to meet every row group of the
// packed A. The kernel runs the groups itself, so that it decides whether its register tile is
// inlined into that loop: the AVX-512 tile is (called once per tile from the driver, it took
// 1.04-1.07x the time on 32 x 36864 x 1024 in process pairs), the AVX2 tile is not (gemm_dot_avx2.hpp).
struct DotColumn {
  const float* ap;                // the packed A (pack_a)
  int64_t groups, group_floats;   // row groups of A, floats per packed group
  int64_t M;                      // rows of A
  const float* const* b;          // kCols pointers to B's rows (repeated past N)
  int64_t K;                      // reduction length
  const gemm_detail::GemmPrefetch* pf;  // the next B rows to prefetch (one region), or null
  int64_t pf_lines;               // lines of that region
  int nw;                         // valid columns (rows of B)
  float alpha, beta;
  float* C;
  int64_t ldc, j0;
  const GemmEpilogue<float>* ep;  // null: none
  // Group g's share of the prefetch in p, the kernel's local (its fields then stay in registers
  // through the tile's k loop, and the second region's keep their constant defaults): &p, or null.
  const gemm_detail::GemmPrefetch* share(int64_t g, gemm_detail::GemmPrefetch& p) const {
    if (!pf) return nullptr;
    p.base = pf->base, p.stride = pf->stride, p.lines = pf->lines;
    p.l0 = pf_lines * g / groups, p.l1 = pf_lines * (g + 1) / groups;
    return &p;
  }
};

// Blocks [b0, b1) of kCols rows of B, each against every row group of the packed A. While a block
// meets the groups, its tiles prefetch the next block's rows (a share each), which the first tile of
// the next block otherwise waited for from memory, where Kernel::prefetch(groups, K) says so (the
// AVX-512 tile: where a block is met briefly, or on a Zen 4; gemm_dot_avx512.hpp). Alternated in one
// process, Zen 4, 2 threads (docs/performance.md, thirty-eighth session; AVX-512 tile): 32 x 36864 x
// 1024 (a dense layer's backward data) 0.83-0.87x the time, 32 x 4608 x 2048 0.92x, 8 x 20000 x 512
// 0.65x, 64 x 9216 x 2048 0.96x. On the Zen 4 the tiles prefetch into L2 only (prefetcht1): a block's
// 4 rows (16 KiB at K = 1024) and the A group a tile reads fill half of its 32 KiB L1 each, and the
// next block's rows there evicted them. Against the all-levels prefetch, old and new builds
// alternated (7 pairs, huge-page buffers; docs/performance.md, forty-third session): 32 x 36864 x
// 1024 0.97x the time, 32 x 4608 x 2048 0.97x, 8 x 20000 x 512 0.73x, 64 x 9216 x 2048 1.00x.
template <class Kernel>
void run_blocks(int64_t b0, int64_t b1, int64_t M, int64_t N, int64_t K, float alpha, const float* ap, const float* B,
                int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue<float>* ep) {
  constexpr int R = Kernel::kRows, W = Kernel::kCols, L = Kernel::kLanes;
  const int64_t groups = (M + R - 1) / R, group_floats = R * L * ((K + L - 1) / L);
  const bool prefetch = K >= L && Kernel::prefetch(groups, K);  // whether blocks prefetch their next
  for (int64_t bi = b0; bi < b1; ++bi) {
    const int64_t j0 = bi * W;
    const int nw = static_cast<int>(std::min<int64_t>(W, N - j0));
    const float* b[W];
    for (int w = 0; w < W; ++w) b[w] = B + (j0 + std::min(w, nw - 1)) * ldb;
    gemm_detail::GemmPrefetch pf;
    const bool fetch = prefetch && bi + 1 < b1;  // a next block (rows j0 + W .. of B) in this range
    if (fetch) {
      pf.base = reinterpret_cast<const char*>(B + (j0 + W) * ldb);
      pf.stride = ldb * static_cast<int64_t>(sizeof(float));
      pf.lines = (K * static_cast<int64_t>(sizeof(float)) + 63) / 64;
    }
    const int64_t nb_rows = std::min<int64_t>(W, N - j0 - W), pf_lines = fetch ? nb_rows * pf.lines : 0;
    Kernel::column(
        DotColumn{ap, groups, group_floats, M, b, K, fetch ? &pf : nullptr, pf_lines, nw, alpha, beta, C, ldc, j0, ep});
  }
}

// A dot-product variant's entry point (gemm_ref's contract): the NT form on Kernel's tile, the other
// forms, which have no contiguous rows of op(B) in k, on the ISA's packed GEMM (`packed`).
template <class Kernel, class Packed>
void gemm_dot(Packed packed, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
              const GemmEpilogue<float>* ep) {
  if (trans_a || !trans_b) return packed(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  if (M <= 0 || N <= 0) return;
  if (ep && !ep->bias && !ep->relu) ep = nullptr;
  if (K <= 0 || alpha == 0.0f) {
    gemm_detail::scale_only(M, N, beta, C, ldc, ep);
    return;
  }
  constexpr int R = Kernel::kRows, W = Kernel::kCols, L = Kernel::kLanes;
  const int64_t groups = (M + R - 1) / R, steps = (K + L - 1) / L;
  // The packed GEMM's per-thread A buffer: not in use during this product.
  float* ap = gemm_detail::a_buffer<float>().get(static_cast<size_t>(steps * groups * R * L));
  pack_a<R, L>(A, lda, M, K, ap);
  const int64_t blocks = (N + W - 1) / W;  // of W rows of B
  // Each thread takes a contiguous range of B's rows (and so of C's columns): B is read once in all,
  // and no barrier is needed.
#ifdef _OPENMP
  const bool par = 2.0 * double(M) * double(N) * double(K) >= double(kParallelMinWork) && !omp_in_parallel() &&
                   blocks >= 2 * omp_get_max_threads();
#pragma omp parallel if (par)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    run_blocks<Kernel>(blocks * t / nt, blocks * (t + 1) / nt, M, N, K, alpha, ap, B, ldb, beta, C, ldc, ep);
  }
#else
  run_blocks<Kernel>(0, blocks, M, N, K, alpha, ap, B, ldb, beta, C, ldc, ep);
#endif
}

}  // namespace tinycnn::kernels::cpu::gemm_dot_detail
