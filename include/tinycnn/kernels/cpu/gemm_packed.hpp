#pragma once
// Packed GEMM (variant 2, GotoBLAS/BLIS structure) and its portable micro-kernel.
//
//   for ic in M by mc          A panel  [mc x kc] packed into MR-row slivers   (shared, lives in L3)
//     for pc in K by kc
//       pack the A panel (threads pack disjoint slivers)
//       for jc in N by nc      B block  [kc x nc] packed into NR-column slivers (shared, lives in L2)
//         pack the B block (threads pack disjoint slivers); barrier
//         for each A sliver of this thread:   (lives in L1)
//           for each B sliver of this thread: micro-kernel: C[MR x NR] (+)= A_sliver * B_sliver
//         barrier
//
// The threads of one call split the (A sliver x B sliver) grid of each block along M or N, whichever
// balances better, so no packing is duplicated. The first K-block applies beta (beta == 0: C is not
// read), later ones accumulate; the last K-block applies the fused epilogue (bias, ReLU) in the same
// store. Packing buffers are thread_local and grow, so a call allocates nothing once warmed up.
//
// The ISA-specific micro-kernels (gemm_avx2.hpp, gemm_avx512.hpp) plug into the same driver through
// PackedKernel (gemm_kernel.hpp). Same argument contract as gemm_ref (see gemm_ref.hpp).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "../../core/host_alloc.hpp"
#include "../../core/parallel.hpp"
#include "gemm_kernel.hpp"
#include "gemm_prefetch.hpp"

namespace tinycnn::kernels::cpu {

namespace gemm_detail {

template <class T, int MR>
TINYCNN_GEMM_INLINE void pack_a_impl(bool trans, const T* A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                     int64_t kc, T* dst, int64_t s0, int64_t s1) {
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t r0 = s * MR;
    const int rows = static_cast<int>(std::min<int64_t>(MR, m - r0));
    T* d = dst + s * MR * kc;
    if (!trans) {
      const T* src = A + (i0 + r0) * lda + k0;
      for (int r = 0; r < rows; ++r) {
        const T* sr = src + r * lda;
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = sr[k];
      }
      for (int r = rows; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = T(0);
    } else {
      const T* src = A + k0 * lda + i0 + r0;
      if (rows == MR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) d[k * MR + r] = src[k * lda + r];
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) d[k * MR + r] = r < rows ? src[k * lda + r] : T(0);
      }
    }
  }
}

template <class T, int NR>
TINYCNN_GEMM_INLINE void pack_b_impl(bool trans, const T* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0,
                                     int64_t kc, T* dst, int64_t s0, int64_t s1) {
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t c0 = s * NR;
    const int cols = static_cast<int>(std::min<int64_t>(NR, n - c0));
    T* d = dst + s * NR * kc;
    if (!trans) {
      const T* src = B + k0 * ldb + j0 + c0;
      if (cols == NR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int c = 0; c < NR; ++c) d[k * NR + c] = src[k * ldb + c];
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int c = 0; c < NR; ++c) d[k * NR + c] = c < cols ? src[k * ldb + c] : T(0);
      }
    } else {
      const T* src = B + (j0 + c0) * ldb + k0;
      for (int c = 0; c < cols; ++c) {
        const T* sc = src + c * ldb;
        for (int64_t k = 0; k < kc; ++k) d[k * NR + c] = sc[k];
      }
      for (int c = cols; c < NR; ++c)
        for (int64_t k = 0; k < kc; ++k) d[k * NR + c] = T(0);
    }
  }
}

// Scalar store of an accumulator tile (row stride ld): alpha, beta, bias, ReLU. Used by the
// portable kernel and by the vector kernels for partial tiles.
template <class T>
TINYCNN_GEMM_INLINE void store_tile_generic(const Tile<T>& t, const T* acc, int ld) {
  for (int r = 0; r < t.mr; ++r) {
    T* c = t.c + r * t.ldc;
    const T* a = acc + r * ld;
    const T br = t.bias_row ? t.bias_row[r] : T(0);
    for (int j = 0; j < t.nr; ++j) {
      T v = t.alpha * a[j];
      if (t.beta != T(0)) v += t.beta * c[j];
      v += br;
      if (t.bias_col) v += t.bias_col[j];
      c[j] = t.relu ? epilogue_relu(v, t.relu_max) : v;
    }
  }
}

// Portable micro-kernel: plain C++ the compiler vectorises for the baseline ISA.
template <class T, int MR, int NR>
void portable_tile(const Tile<T>& t) {
  T acc[MR * NR];
  for (int i = 0; i < MR * NR; ++i) acc[i] = T(0);
  const T* a = t.a;
  const T* b = t.b;
  for (int64_t k = 0; k < t.kc; ++k) {
    for (int r = 0; r < MR; ++r) {
      const T av = a[r];
      for (int c = 0; c < NR; ++c) acc[r * NR + c] += av * b[c];
    }
    a += MR;
    b += NR;
  }
  store_tile_generic(t, acc, NR);
}

template <class T, int MR>
void portable_pack_a(bool trans, const T* A, int64_t lda, int64_t i0, int64_t m, int64_t k0, int64_t kc, T* dst,
                     int64_t s0, int64_t s1) {
  pack_a_impl<T, MR>(trans, A, lda, i0, m, k0, kc, dst, s0, s1);
}
template <class T, int NR>
void portable_pack_b(bool trans, const T* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0, int64_t kc, T* dst,
                     int64_t s0, int64_t s1) {
  pack_b_impl<T, NR>(trans, B, ldb, j0, n, k0, kc, dst, s0, s1);
}

template <class T>
const PackedKernel<T>& portable_kernel() {
  // float: 6x8, double: 6x4 (12 accumulator registers of 128 bits on the x86-64 baseline).
  constexpr int MR = 6, NR = sizeof(T) == 4 ? 8 : 4;
  static const PackedKernel<T> k{MR, NR, 256, 6 * 64, 256 * 1024, 4 * NR, &portable_tile<T, MR, NR>,
                                 &portable_pack_a<T, MR>, &portable_pack_b<T, NR>};
  return k;
}

// Packing buffers: per thread, grow only (core/host_alloc.hpp).
template <class T>
using PackBuffer = HostBuffer<T>;

template <class T>
PackBuffer<T>& a_buffer() {
  static thread_local PackBuffer<T> b;
  return b;
}
template <class T>
PackBuffer<T>& b_buffer() {
  static thread_local PackBuffer<T> b;
  return b;
}

// C = beta * C, then the epilogue (the K == 0 / alpha == 0 case).
template <class T>
void scale_only(int64_t M, int64_t N, T beta, T* C, int64_t ldc, const GemmEpilogue<T>* ep) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      T v = beta == T(0) ? T(0) : beta * c[j];
      if (ep && ep->bias) v += ep->bias_per_column ? ep->bias[j] : ep->bias[i];
      c[j] = ep && ep->relu ? epilogue_relu(v, ep->relu_max) : v;
    }
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Fraction of the FMAs of an m x n product's mr x nr register tiles that land inside C.
inline double tile_fill(int64_t m, int64_t n, int mr, int nr) {
  return double(m) / double(round_up(m, mr)) * double(n) / double(round_up(n, nr));
}

// The driver shared by every packed variant.
// Partial products of the K-split path (see run_ksplit), one per extra thread.
template <class T>
PackBuffer<T>& c_buffer() {
  static thread_local PackBuffer<T> b;
  return b;
}

// Balanced blocks of a product for kernel pk: K = kb blocks of kc, M = mb panels of mc (multiple of
// MR), N blocks of nc (multiple of NR; a B block about pk.b_bytes).
struct Blocks {
  int64_t kc, mc, nc;
};
template <class T>
Blocks blocks_for(const PackedKernel<T>& pk, int64_t M, int64_t N, int64_t K, int64_t kc_max = 0) {
  const int64_t kc = ceil_div(K, ceil_div(K, kc_max > 0 ? kc_max : pk.kc));
  const int64_t mc = round_up(ceil_div(M, ceil_div(M, pk.mc)), pk.mr);
  int64_t nc_max = std::max<int64_t>(pk.nc_min, pk.b_bytes / (kc * static_cast<int64_t>(sizeof(T))));
  nc_max = std::max<int64_t>(pk.nr, nc_max / pk.nr * pk.nr);
  return {kc, mc, round_up(ceil_div(N, ceil_div(N, nc_max)), pk.nr)};
}

template <class T>
void run_ksplit(const PackedKernel<T>& pk, int nt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                const GemmEpilogue<T>* ep);

// Independent split (PackedKernel::split_independent): at least this many columns (rows) of C per
// thread. Each thread packs the whole other operand for itself, which costs about 1 / (2 * range)
// of its arithmetic: under 0.2% at 256 columns, under 0.6% at 96 rows.
constexpr int64_t kSplitMinCols = 256, kSplitMinRows = 96;

// Which range nt threads split an M x N product into: 1 columns, 2 rows, 0 neither (shared panels).
// Columns where C is wide enough, except that a C less than kSplitRowsWidth times as wide as tall is
// split by rows when op(B) = B: each thread packs all of op(A) (M x K) under a column split and all of
// op(B) (K x N) under a row split, and op(B) = B packs by copying rows where op(A) = A packs by
// transposing, and a thread's A panel (all M rows under a column split) outgrew L2 on square products.
// Alternated in one process on a Zen 4, 2 threads (docs/performance.md, thirty-ninth session), with
// the rule M > N, the rows took: a dense layer's weight gradient 36864 x 1024 x 32 TN 0.97x the time
// (AVX2 kernel 0.93x), 4096 x 1024 x 32 TN 0.88x, 8192 x 1024 x 64 NN 0.93x, 2048 x 1024 x 1024 NN
// 0.96x. Widened to N < 3 M on the Zen 5 (fifty-first session): 1024^3 NN 0.90-0.92x, 2048^3 NN
// 0.94x, 768^3 0.92x, 1024 x 2000 x 1024 0.96x, 1024 x 3000 x 1024 0.98x, 1024^3 TN 0.95x; 512 x 2048 x
// 1024 NN (N = 4 M) tied, and 192 x 8192 x 576 took 1.11x. op(B) = B^T, whose pack transposes, keeps
// the columns: model3's Winograd weight gradients (1024 x 512 x 128 NT and smaller) took 1.01-1.02x
// with rows.
constexpr int64_t kSplitRowsWidth = 3;
template <class T>
int split_axis(const PackedKernel<T>& pk, int nt, bool trans_b, int64_t M, int64_t N) {
  if (!pk.split_independent || nt < 2) return 0;
  const bool rows = M >= kSplitMinRows * nt;
  if (rows && !trans_b && N < kSplitRowsWidth * M) return 2;
  return N >= kSplitMinCols * nt ? 1 : rows ? 2 : 0;
}

template <class T>
bool run_split(const PackedKernel<T>& pk, int nt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
               T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
               const GemmEpilogue<T>* ep);

// A one-thread product whose panels have at most this many A slivers, with op(B) = B (not transposed),
// reads B's full slivers in place instead of packing them (PackedKernel::direct_b_slivers): each B value feeds
// only that many tiles, so the packing pass cost about a quarter of the product (model3's dense
// forward, 32 x 1024 x 36864: pack_b 4,516 samples against the tile's 13,560), and with the next
// block prefetched (above) the tile's loads find B's rows in cache. Measured with the 8x48 tile,
// 2 threads (docs/performance.md, thirtieth session): 32 x 1024 x 36864 24.0 -> 21.3 ms, 32 x 128 x
// 67500 5.13 -> 4.75 ms (best medians); at 8 slivers (64 x 165888 x 288) it took twice as long, and
// the 14x32 tile did not gain (32 x 128 x 67500 6.0 -> 6.3 ms), so it does not read B in place. The
// AVX2 6x16 tile does with up to 3 slivers (kDirectBMaxSliversAvx2): under TINYCNN_MAX_ISA=avx2 on a
// Zen 4, alternated in one process (docs/performance.md, forty-sixth session), 16 x 1024 x 36864 0.81-
// 0.83x the time (2 threads), 8 x 512 x 20000 0.62x, 12 x 256 x 9216 0.80x, 16 x 4096 x 4096 0.93x (one
// thread), 8 x 50000 x 72 0.80-0.86x; with 4 slivers it lost where N is wide (20 x 4096 x 300 1.07-1.17x,
// 20 x 8192 x 2048 1.13x, 24 x 4096 x 8192 1.02x; one thread): it reads one line of B per 12 FMAs, the
// 8x48 tile three per 24 FMAs of twice the width. Nor with N = 128 (B's rows 512 bytes apart) where B
// comes from memory: 8 x 128 x 200,000 took 1.03-1.05x, and model2's inference at batch 8 and 16 (its
// dense layer 8 or 16 x 128 x 56448) 1.025-1.045x (kDirectBMinNAvx2).
constexpr int kDirectBMaxSlivers = 4, kDirectBMaxSliversAvx2 = 3;
constexpr int64_t kDirectBMinNAvx2 = 256;

// Whether a one-thread product of N columns whose panels have ms A slivers reads op(B) = B in place.
template <class T>
bool direct_b_for(const PackedKernel<T>& pk, int64_t ms, int64_t N) {
  return ms <= pk.direct_b_slivers && N >= pk.direct_b_min_n;
}

// Where such a product has a long K (more than the kernel's kc) and a small C (at most pk.b_bytes), its
// K blocks are cut to about kDirectBBlockBytes of B (at least kDirectBMinKc rows, at most the kernel's
// kc). The tiles read the block from B's own rows, ldb apart, once per A sliver while the next block
// is prefetched, and a 384-row block of a wide B did not stay in cache between those passes (a dense
// layer's forward, 32 x 1024 x 36864: rows 4 KiB apart). Alternated in one process, Zen 4, 2 threads
// (docs/performance.md, thirty-eighth session): 32 x 1024 x 36864 0.81-0.85x the time, 32 x 256 x
// 36864 0.87x, 16 x 1024 x 36864 0.79x, 8 x 512 x 20000 0.49-0.56x; 32 x 128 x 67500 tied. A big C is
// left alone: 32 x 160000 x 288 (one K block) took 1.14x the time with three. The block was then 128
// KiB, at least 128 rows, which gave the 1024-column B 512 KiB blocks; 256 KiB and at least 64 rows,
// alternated in one process (forty-third session, two runs of 31 calls): 32 x 1024 x 36864 0.955x
// and 0.957x the time, 16 x 1024 x 36864 0.91-0.92x, 32 x 256 x 36864 0.95-0.98x, 32 x 512 x 36864
// (128 rows either way) and 8 x 512 x 20000 tied, 32 x 128 x 67500 / 28224 / 12544 tied. At 128 KiB
// and 64 rows, 32 x 512 x 36864 took 1.03-1.06x.
constexpr int64_t kDirectBBlockBytes = int64_t(256) << 10, kDirectBMinKc = 64;

// The K block (blocks_for's kc_max; 0: the kernel's kc) of a one-thread product with op(B) = B.
// run_packed_b takes the same blocks for the same shape, so that its result stays bitwise gemm_ex's.
template <class T>
int64_t one_thread_kc(const PackedKernel<T>& pk, int64_t M, int64_t N, int64_t K) {
  if (!direct_b_for(pk, ceil_div(M, static_cast<int64_t>(pk.mr)), N) || K <= pk.kc ||
      M * N * static_cast<int64_t>(sizeof(T)) > pk.b_bytes)
    return 0;
  return std::clamp<int64_t>(kDirectBBlockBytes / (N * static_cast<int64_t>(sizeof(T))), kDirectBMinKc, pk.kc);
}

// A product that writes a C of at least this many bytes once (beta == 0, K within one K block), with
// C and its rows 64-byte aligned, stores C's full vectors non-temporally: such a C (a dense layer's
// weight gradient, 36864 x 1024 x 32 TN: 151 MB) goes to memory anyway, and a plain store first reads
// each line. Measured (2 threads, Zen 5, alternated in one process): that product 8.2 -> 7.7 ms
// (docs/performance.md, thirty-fourth session).
constexpr int64_t kStreamCBytes = int64_t(32) << 20;

// The K-split's per-thread partial of C at most (run_packed). Above it, with rows to split, 2 threads,
// alternated in one process (docs/performance.md, thirty-seventh session): the row split took
// 0.94x the time of the K-split on 1152 x 256 x 4608 NT (model3 conv4's backward filter, 1.2 MB of
// C), 0.96x TN, 0.87x on 2304 x 128 x 9216 TN, 0.98x on 1024 x 256 x 8192 NT, and tied on
// 2304 x 128 x 9216 NT; products with smaller partials (576 x 128 x 20,000: 295 KB) keep the K-split.
constexpr int64_t kKSplitMaxPartialBytes = int64_t(512) << 10;

// The most rows of an A sliver read in place (op(A) = A: rows stride_bytes apart from address
// first; each k the tile reads one value of each) that share an L1 set, a set holding the lines 4 KiB
// apart (kL1WayBytes: 64 sets of 64 bytes on Zen 4 and 5 and on Intel since Sunny Cove). With more
// than the L1's ways (kL1Ways, 8 on Zen 4) such a sliver evicts its own lines before their next k;
// alternated in one process, Zen 4, 2 threads (docs/performance.md, forty-fifth session), the 14
// rows of a sliver 4 KiB or a multiple apart took 1.22x the time of the packed A on 576 x 128 x
// 16,384 NT, 1.23x on 2048 x 128 x 4096 NT, 1.52x on 576 x 128 x 18,432 NT, 1.03x on 4000 x
// 100 x 1025 NT (rows 4 bytes off 4 KiB: all 14 in one or two sets), where 16,896 (7 per set) 0.94x
// and 1026 (8) 0.87x; 8 rows of the 8x48 tile in one set took 0.90-0.95x (36864 x 32 x 1024 NN,
// 576 x 128 x 16,384 NN).
constexpr int64_t kL1WayBytes = 4096;
constexpr int kL1Ways = 8;
inline int rows_per_l1_set(uintptr_t first, int64_t stride_bytes, int rows) {
  int count[kL1WayBytes / 64] = {}, most = 0;
  for (int r = 0; r < rows; ++r) {
    const uintptr_t addr = first + static_cast<uintptr_t>(r) * static_cast<uintptr_t>(stride_bytes);
    most = std::max(most, ++count[(addr % kL1WayBytes) / 64]);
  }
  return most;
}

// A TN or TT product with one B sliver (N <= NR) and a long K, on a kernel that reads A^T in
// place (PackedKernel::direct_a, where run_packed streams A), takes K blocks of kDirectATKc rows
// instead of the kernel's kc. Such a B sliver feeds every A sliver, and at 384 rows (48 KiB with the
// 14x32 tile) it did not stay in L1 beside the A^T sliver read in place (a line or two per k).
// Alternated in one process, Zen 4, 2 threads (docs/performance.md, forty-fifth session):
// 1024 x 32 x 20,000 TN 0.77-0.79x the time,
// 2048 x 32 x 20,000 TN 0.76x and TT 0.82-0.85x, 8192 x 12 x 1179 TN 0.76-0.77x, 8192 x 30 x 1040
// TT 0.89-0.93x, 4096 x 32 x 20,000 TN 0.86x; with two B slivers it gained on some (2048 x 64 x
// 20,000 TN 0.89x) and lost on others (288 x 64 and 64 x 288 x 80,000 TN 1.005-1.014x), and with
// a short K it lost (3072 x 81 x 721 TT 1.04x), hence N and K. The rule depends on the form, N and
// K only, so a row split (run_split) keeps the one-thread blocks.
constexpr int64_t kDirectATKc = 192, kDirectATMinK = 1024;
template <class T>
int64_t direct_at_kc(const PackedKernel<T>& pk, bool trans_a, int64_t N, int64_t K) {
  return trans_a && pk.direct_a && N <= pk.nr && K >= kDirectATMinK ? kDirectATKc : 0;
}

// Where a product reads A^T in place (run_packed's direct_a, trans_a) past more than
// kDirectATWideMinSlivers B slivers, its K blocks are at most kDirectATWideKc rows. Each k of such
// an A sliver is 14 floats from a line of its own (A^T's rows are lda apart), so at the kernel's kc
// of 384 the sliver's lines (24-48 KiB) and the B sliver streamed past it (48 KiB with the 14x32
// tile) overflow L1 between one B sliver and the next. Alternated in one process, Zen 5, 2 threads
// (docs/performance.md, fiftieth session): 1152 x 256 x 4608 TN (model3 conv4's backward filter)
// 0.94-0.96x the time, TT 0.96x, 1024 x 256 x 8192 TN 0.95x, 2048 x 256 x 2048 TN 0.95x, 1152 x 192 x
// 4608 TN 0.965x, 1152 x 160 x 4608 TN 0.99x, 4096 x 256 x 1024 TN 0.98x; with 2 or 4 slivers it tied
// or lost (288 x 64 x 80,000 TN 1.08x, 576 x 128 x 20,000 TN and 1152 x 128 x 4608 TN 1.00-1.01x),
// and 192 rows gained as much as 256. A packed A (more than kPrefetchMaxSlivers B slivers) lost with
// 256 (1152 x 384 x 4608 TN 1.015x), and so did A read in place by rows (NT: 1.02x). Not on a kernel
// with lean_stream_prefetch: there the tiles fetch the sliver after next instead (kASliverAhead,
// gemm_prefetch.hpp), which gained more with the kernel's K blocks.
constexpr int64_t kDirectATWideKc = 256;
constexpr int kDirectATWideMinSlivers = 4;
template <class T>
int64_t direct_at_wide_kc(const PackedKernel<T>& pk, bool direct_a, bool trans_a, int64_t N, int64_t kc) {
  return !pk.lean_stream_prefetch && direct_a && trans_a &&
                 ceil_div(N, static_cast<int64_t>(pk.nr)) > kDirectATWideMinSlivers && kc > kDirectATWideKc
             ? kDirectATWideKc
             : 0;
}

// A one-thread NT product with few B slivers (N <= 2 NR), a reduction a little longer than the
// kernel's kc (K <= kTallRowsKc) and an A that streams (more than 4 B blocks' bytes: run_packed's
// stream_a) runs all of K as one block: each C tile is then written once instead of read and written
// back every K block, and each of A's rows is read in one run. Alternated in one process, Zen 4, 2
// threads (docs/performance.md, forty-sixth session), AVX2 / AVX-512 kernel: 36864 x 32 x 1024 NT
// 0.87-0.88x / 0.85x the time (with the AVX2 kernel the dense layer's backward data 32 x 36864 x 1024,
// computed transposed: 0.88x), 36864 x 16 x 1024 NT 0.75-0.77x / 0.81-0.83x, 9216 x 32 x 1000 NT
// 0.94x / 0.94-0.97x, 2000 x 20 x 1000 NT 0.95x / 0.94x, 4000 x 64 x 800 NT (two AVX-512 slivers)
// 0.97x. Longer K in blocks of 1024 gained less and not everywhere (576 x 32 x 20,000 NT 0.94-1.07x,
// 2000 x 20 x 3000 NT 0.91-1.04x), and NN products keep the kernel's kc (4096 x 32 x 4096 NN did not
// gain; and gemm_nn_prepacked_b's blocks must stay those of gemm_ex).
constexpr int64_t kTallRowsKc = 1024;
template <class T>
int64_t tall_rows_kc(const PackedKernel<T>& pk, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  if (trans_a || !trans_b || N > 2 * pk.nr || K <= pk.kc || K > kTallRowsKc ||
      M * K * static_cast<int64_t>(sizeof(T)) <= 4 * pk.b_bytes)
    return 0;
  return K;
}

// How run_packed blocks a product on one thread: its blocks (bl.kc the K block), the rows of an A
// panel (mc), whether the tiles read A in place (direct_a), whether they prefetch a streamed A's
// next panel meanwhile (prefetch_a) or, A^T read in place, the A sliver kASliverAhead after theirs
// (prefetch_a_sliver).
struct OneThreadPlan {
  Blocks bl;
  int64_t mc;
  bool direct_a, prefetch_a, prefetch_a_sliver;
};

// Whether run_packed prefetches a streamed A's next panel (and the B block after it) while the
// current block is computed (kPrefetchMaxSlivers). On a kernel with lean_stream_prefetch only where
// A^T is read in place in one panel (M within the kernel's mc) past one B sliver, or past two with
// the next A block (mc x kc) within kLeanPrefetchMaxBytes: on the Zen 5 the hardware follows a
// streamed A alone. The same binary alternating call by call with the prefetch everywhere, 2
// threads (docs/performance.md, fifty-fourth session): 1152 x 256 x 4608 NT 0.93-0.99x the time, TN
// 0.955-0.96x, 288 x 64 x 80,000 NT 0.81-0.88x, 576 x 128 x 20,000 NT 0.91-0.93x, 128 x 576 x
// 20,000 NT 0.86-0.94x, 36864 x 32 x 1024 NN 0.90-0.94x, 2048 x 32 x 20,000 TN 0.76-0.78x (rows of
// A^T 8 KiB apart: the prefetched lines evicted the sliver's own); where it is kept, dropping it
// took 1.06-1.08x on 288 x 64 x 80,000 TN, 1.03-1.10x on 64 x 288 x 80,000 TN (flipped: 288 x 64) and
// 1.17x on 2000 x 32 x 20,000 TN. The Zen 4 sessions measured the prefetch everywhere as a gain
// (forty-third and forty-fifth), so other kernels keep it.
constexpr int64_t kLeanPrefetchMaxBytes = int64_t(512) << 10;
template <class T>
bool prefetch_stream_a(const PackedKernel<T>& pk, bool stream_a, bool direct_a, bool trans_a, int64_t M, int64_t N,
                       int64_t mc, int64_t kc) {
  if (!stream_a || !pk.lean_stream_prefetch) return stream_a;
  const int64_t slivers = ceil_div(N, static_cast<int64_t>(pk.nr));
  return trans_a && direct_a && M <= pk.mc &&
         (slivers == 1 || (slivers == 2 && mc * kc * static_cast<int64_t>(sizeof(T)) <= kLeanPrefetchMaxBytes));
}
template <class T>
OneThreadPlan one_thread_plan(const PackedKernel<T>& pk, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                              const T* A, int64_t lda) {
  const int MR = pk.mr, NR = pk.nr;
  // B read in place (run_packed's `direct`): a shorter K block (kDirectBBlockBytes); A streamed past
  // few B^T slivers: one block (kTallRowsKc).
  Blocks bl = blocks_for(pk, M, N, K, direct_at_kc(pk, trans_a, N, K));
  if (const int64_t kc_max = trans_b ? 0 : one_thread_kc(pk, M, N, K))
    bl = blocks_for(pk, M, N, K, kc_max);
  else if (const int64_t kc_rows = tall_rows_kc(pk, trans_a, trans_b, M, N, K))
    bl = blocks_for(pk, M, N, K, kc_rows);
  int64_t mc = bl.mc;
  const bool stream_a = N <= bl.nc && ceil_div(N, NR) <= kPrefetchMaxSlivers &&
                        M * K * static_cast<int64_t>(sizeof(T)) > 4 * pk.b_bytes;
  // Only an A that needs several panels anyway gets the small ones: where all of M fits one panel
  // (M <= pk.mc), each B block is packed once per K-block and feeds every A sliver, and splitting the
  // panel repacked B per panel (model3 conv3's backward filter, 576 x 128 x 20,000 TN: pack_b 11% of
  // the time with three panels). Alternated in one process, 2 threads (docs/performance.md,
  // thirty-seventh session): 576 x 128 x 20,000 TN 0.89-0.92x the time, 288 x 64 x 80,000 TN 0.93x,
  // 1152 x 256 x 4608 TN 0.94-0.95x, 576 x 128 x 20,000 NT 0.97x; a dense layer's 36864 x 32 x 1024
  // still prefers the small panels (one panel of 2016 rows: 1.10x the time).
  if (stream_a && M > pk.mc) mc = std::min<int64_t>(mc, MR * kPrefetchPanelSlivers);
  // Such an A is not packed at all where the kernel can read it in place (PackedKernel::direct_a for
  // A^T, direct_a_rows for A): its next panel is prefetched anyway, and the tiles read it there, so
  // the pack's copy of every element (in and out of L2 once more; for op(A) = A a transpose) goes.
  // Alternated in one process, Zen 4, 2 threads, together with run_packed's B prefetch
  // (docs/performance.md): A^T (forty-third session) 288 x 64 x 80,000 TN 0.89x the time, 576 x 128
  // x 20,000 TN 0.93x, 1152 x 256 x 4608 TN 0.96x; A (forty-fifth) 64 x 288 x 80,000 NT 0.91-0.92x,
  // 288 x 64 x 80,000 NT 0.91-0.93x, 576 x 128 x 20,000 NT 0.94-0.97x, 36864 x 32 x 1000 NT 0.90x,
  // 20 of 36 random NN and NT products 0.82-0.96x and none slower by more than 1%; with the AVX2
  // kernel 576 x 128 x 20,000 NT 0.94-0.97x, 36864 x 32 x 1000 NT 0.88-0.89x, 18 of the 36 random
  // products 0.78-0.96x, none slower by more than 1%. Not where the rows of an A sliver crowd one L1
  // set (rows_per_l1_set). The AVX2 tile did not gain on A^T (0.97-1.07x), so only the AVX-512
  // kernels set direct_a.
  const bool direct_a =
      stream_a && (trans_a ? pk.direct_a
                           : pk.direct_a_rows && rows_per_l1_set(reinterpret_cast<uintptr_t>(A),
                                                                 lda * static_cast<int64_t>(sizeof(T)), MR) <= kL1Ways);
  // (a shorter K block keeps N <= nc: nc only grows)
  if (const int64_t kc_wide = direct_at_wide_kc(pk, direct_a, trans_a, N, bl.kc)) bl = blocks_for(pk, M, N, K, kc_wide);
  const bool prefetch_a = prefetch_stream_a(pk, stream_a, direct_a, trans_a, M, N, mc, bl.kc);
  return {bl, mc, direct_a, prefetch_a, pk.lean_stream_prefetch && direct_a && trans_a && !prefetch_a};
}

template <class T>
void run_packed(const PackedKernel<T>& pk, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                const GemmEpilogue<T>* ep, int64_t kc_override = 0) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_only(M, N, beta, C, ldc, ep);
    return;
  }
  if (ep && !ep->bias && !ep->relu) ep = nullptr;
  const int MR = pk.mr, NR = pk.nr;
  Blocks bl = blocks_for(pk, M, N, K, direct_at_kc(pk, trans_a, N, K));

  int nt = 1;
#ifdef _OPENMP
  if (!omp_in_parallel() && 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) >=
                                static_cast<double>(kParallelMinWork)) {
    nt = omp_get_max_threads();
    // K-split (run_ksplit): for few micro-tiles over a long K, and for any K much longer than M and N
    // (a backward filter's dW = dY * col^T: 64 x 288 x 80,000), where the per-thread partial sums
    // are small next to the work and the split needs no barrier per K-block. Not where each thread's
    // partial (all of C, read and written again every K-block) is bigger than kKSplitMaxPartialBytes
    // and the rows can be split instead (run_split, gemm_split.hpp), which halves every thread's C
    // and panel.
    const bool big_partial = M * N * static_cast<int64_t>(sizeof(T)) > kKSplitMaxPartialBytes &&
                             split_axis(pk, nt, trans_b, M, N) == 2;
    if (nt > 1 && K >= 2 * pk.kc * nt && !big_partial &&
        (ceil_div(M, MR) * ceil_div(N, NR) < 16 * static_cast<int64_t>(nt) || K >= 4 * std::max(M, N)))
      return run_ksplit(pk, nt, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    // No more threads than micro-tiles in a block.
    const int64_t tiles = ceil_div(std::min(M, bl.mc), MR) * ceil_div(std::min(N, bl.nc), NR);
    nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, tiles)));
    // Few tiles over a long K (a dense layer's forward at batch 32: 32 x 128 x 67,500) means two
    // barriers per K-block for little work each; when another process shares the cores, every
    // barrier can cost a scheduler time slice (measured: 1.36 s instead of 10 ms). Such a product is
    // split along K instead (above) when K is long enough: one contiguous K range per thread, one barrier.
    if (ceil_div(M, MR) * ceil_div(N, NR) < 16 * static_cast<int64_t>(nt)) nt = 1;
    if (split_axis(pk, nt, trans_b, M, N) != 0 &&
        run_split(pk, nt, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep))
      return;
  }
#endif
  OneThreadPlan plan{bl, bl.mc, false, false, false};
  if (nt <= 1) plan = one_thread_plan(pk, trans_a, trans_b, M, N, K, A, lda);
  // A share of run_split blocks K as the whole product does (its result is then the one-thread one
  // whatever the share).
  if (kc_override > 0) plan.bl = blocks_for(pk, M, N, K, kc_override);
  const int64_t kc = plan.bl.kc, nc = plan.bl.nc, mc = plan.mc;
  const bool direct_a = plan.direct_a;
  T* abuf = direct_a ? nullptr : a_buffer<T>().get(static_cast<size_t>(mc * kc));
  T* bbuf = b_buffer<T>().get(static_cast<size_t>(nc * kc));
  const bool stream_c = beta == T(0) && K <= kc && M * N * static_cast<int64_t>(sizeof(T)) >= kStreamCBytes &&
                        reinterpret_cast<uintptr_t>(C) % 64 == 0 && ldc * static_cast<int64_t>(sizeof(T)) % 64 == 0;

  auto body = [&](int tid, int nth) {
    for (int64_t ic = 0; ic < M; ic += mc) {
      const int64_t mcur = std::min(mc, M - ic);
      const int64_t ms = ceil_div(mcur, MR);
      for (int64_t pc = 0; pc < K; pc += kc) {
        const int64_t kcur = std::min(kc, K - pc);
        const bool first = pc == 0, last = pc + kcur >= K;
        if (!direct_a) pk.pack_a(trans_a, A, lda, ic, mcur, pc, kcur, abuf, ms * tid / nth, ms * (tid + 1) / nth);
        for (int64_t jc = 0; jc < N; jc += nc) {
          const int64_t ncur = std::min(nc, N - jc);
          const int64_t ns = ceil_div(ncur, NR);
          // Split the ms x ns tile grid: tm x tn threads, whichever keeps the busiest thread lightest.
          int tm = 1;
          int64_t best = -1;
          for (int d = 1; d <= nth; ++d) {
            if (nth % d) continue;
            const int64_t cost = ceil_div(ms, d) * ceil_div(ns, nth / d);
            if (best < 0 || cost < best) best = cost, tm = d;
          }
          const int tn = nth / tm;
          const int my_m = tid / tn, my_n = tid % tn;
          const int64_t sa0 = ms * my_m / tm, sa1 = ms * (my_m + 1) / tm;
          const int64_t sb0 = ns * my_n / tn, sb1 = ns * (my_n + 1) / tn;
          // Pack the B slivers this thread uses when splitting along N; an even share otherwise.
          // B read in place (kDirectBMaxSlivers): only a partial last sliver is packed.
          const bool direct = nth == 1 && !trans_b && direct_b_for(pk, ms, N);
          if (direct) {
            if (ncur % NR) pk.pack_b(trans_b, B, ldb, jc, ncur, pc, kcur, bbuf, ns - 1, ns);
          } else if (tn == nth)
            pk.pack_b(trans_b, B, ldb, jc, ncur, pc, kcur, bbuf, sb0, sb1);
          else
            pk.pack_b(trans_b, B, ldb, jc, ncur, pc, kcur, bbuf, ns * tid / nth, ns * (tid + 1) / nth);
#ifdef _OPENMP
          if (nth > 1) {
#pragma omp barrier
          }
#endif
          // The next block's source, prefetched while this one is computed (kPrefetchMaxSlivers).
          GemmPrefetch pf;
          const int64_t ntiles = (sa1 - sa0) * (sb1 - sb0);
          if (nth == 1 && ms <= kPrefetchMaxSlivers)
            pf = next_block<T>(true, trans_b, B, ldb, M, N, K, mc, kc, nc, ic, pc, jc);
          else if (plan.prefetch_a) {
            pf = next_block<T>(false, trans_a, A, lda, M, N, K, mc, kc, nc, ic, pc, jc);
            // and the next B block after it where B^T is packed, or A^T read in place (kPrefetchMaxSlivers)
            if (trans_b || direct_a) {
              const GemmPrefetch pb = next_block<T>(true, trans_b, B, ldb, M, N, K, mc, kc, nc, ic, pc, jc);
              if (pb.l1 > 0)
                pf.base2 = pb.base, pf.stride2 = pb.stride, pf.lines2 = pb.lines, pf.n1 = pf.l1, pf.l1 += pb.l1;
            }
          }
          const int64_t pf_lines = pf.l1;
          // The A^T sliver kASliverAhead ahead, where no block is prefetched (OneThreadPlan::prefetch_a_sliver)
          const bool sliver_pf = plan.prefetch_a_sliver && pf_lines == 0;
          GemmPrefetch spf;
          int64_t tix = 0;
          Tile<T> t;
          t.pf = pf.l1 > 0 ? &pf : nullptr;
          t.kc = kcur;
          t.ldc = ldc;
          t.alpha = alpha;
          t.beta = first ? beta : T(1);
          t.relu = last && ep && ep->relu;
          t.relu_max = ep ? ep->relu_max : T(0);
          t.stream = stream_c;
          const bool brow = last && ep && ep->bias && !ep->bias_per_column;
          const bool bcol = last && ep && ep->bias && ep->bias_per_column;
          for (int64_t sa = sa0; sa < sa1; ++sa) {
            const int64_t i = ic + sa * MR;
            t.a = abuf + sa * MR * kcur;
            t.mr = static_cast<int>(std::min<int64_t>(MR, M - i));
            t.bias_row = brow ? ep->bias + i : nullptr;
            if (direct_a && trans_a) t.a = A + pc * lda + i, t.as = lda;  // op(A) rows i.., columns pc..
            if (direct_a && !trans_a) t.a = A + i * lda + pc, t.ars = lda;
            if (sliver_pf) {
              spf = a_sliver_ahead(A, lda, K, kc, MR, ic, ic + mcur, pc, kcur, sa0, sa1, sa, kASliverAhead);
              t.pf = spf.l1 > 0 ? &spf : nullptr;
            }
            const int64_t spf_lines = spf.l1;
            for (int64_t sb = sb0; sb < sb1; ++sb) {
              const int64_t j = jc + sb * NR;
              t.b = bbuf + sb * NR * kcur;
              t.nr = static_cast<int>(std::min<int64_t>(NR, N - j));
              t.bs = 0;
              if (direct && t.nr == NR) t.b = B + pc * ldb + j, t.bs = ldb;  // rows pc.., columns j..
              t.c = C + i * ldc + j;
              t.bias_col = bcol ? ep->bias + j : nullptr;
              if (pf_lines > 0) pf.l0 = pf_lines * tix / ntiles, pf.l1 = pf_lines * (tix + 1) / ntiles;
              if (sliver_pf && spf_lines > 0)  // this sliver's tiles share the next one's lines
                spf.l0 = spf_lines * (sb - sb0) / (sb1 - sb0), spf.l1 = spf_lines * (sb - sb0 + 1) / (sb1 - sb0);
              ++tix;
              pk.tile(t);
            }
          }
#ifdef _OPENMP
          if (nth > 1) {
#pragma omp barrier
          }
#endif
        }
      }
    }
#if defined(__SSE2__)
    if (stream_c) __builtin_ia32_sfence();  // the streamed stores are visible before the threads join
#endif
  };
  if (nt <= 1) {
    body(0, 1);
  } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    body(omp_get_thread_num(), omp_get_num_threads());
#endif
  }
}

// C = alpha * A * Bp + beta * C on one thread, with B given already packed for kernel pk (see
// gemm_nn_prepacked_b in gemm.hpp for the layout): the blocking and the micro-tiles are run_packed's
// one-thread ones, so the result is bitwise the same as run_packed on the unpacked B, without the B
// packing pass. A: [M, K] row-major (lda), C: [M, N] (ldc); a_packed: A is already in the packed
// layout too (gemm_nn_prepacked_ab; lda unused), so the A packing pass goes as well.
template <class T>
void run_packed_b(const PackedKernel<T>& pk, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const T* Bp, T beta, T* C, int64_t ldc, bool a_packed = false) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_only<T>(M, N, beta, C, ldc, nullptr);
    return;
  }
  const int MR = pk.mr, NR = pk.nr;
  const Blocks bl = blocks_for(pk, M, N, K, one_thread_kc(pk, M, N, K));  // as run_packed on one thread
  const int64_t kc = bl.kc, mc = bl.mc, nc = bl.nc;
  T* abuf = a_packed ? nullptr : a_buffer<T>().get(static_cast<size_t>(mc * kc));
  for (int64_t ic = 0; ic < M; ic += mc) {
    const int64_t mcur = std::min(mc, M - ic);
    const int64_t ms = ceil_div(mcur, MR);
    for (int64_t pc = 0; pc < K; pc += kc) {
      const int64_t kcur = std::min(kc, K - pc);
      if (!a_packed) pk.pack_a(false, A, lda, ic, mcur, pc, kcur, abuf, 0, ms);
      for (int64_t jc = 0; jc < N; jc += nc) {
        const int64_t ns = ceil_div(std::min(nc, N - jc), NR);
        Tile<T> t;
        t.kc = kcur;
        t.ldc = ldc;
        t.alpha = alpha;
        t.beta = pc == 0 ? beta : T(1);
        t.relu = false;
        t.relu_max = T(0);
        t.bias_row = t.bias_col = nullptr;
        for (int64_t sa = 0; sa < ms; ++sa) {
          const int64_t i = ic + sa * MR;
          // ic is a multiple of MR, so i / MR is the sliver's index in a prepacked A (columns pc ..)
          t.a = a_packed ? A + (i / MR) * K * MR + pc * MR : abuf + sa * MR * kcur;
          t.mr = static_cast<int>(std::min<int64_t>(MR, M - i));
          for (int64_t sb = 0; sb < ns; ++sb) {
            const int64_t j = jc + sb * NR;
            t.b = Bp + (j / NR) * K * NR + pc * NR;  // sliver j / NR, rows pc .. pc + kcur
            t.nr = static_cast<int>(std::min<int64_t>(NR, N - j));
            t.c = C + i * ldc + j;
            pk.tile(t);
          }
        }
      }
    }
  }
}

}  // namespace gemm_detail

// Packed GEMM with the portable micro-kernel (any element type, any CPU).
template <class T>
void gemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue<T>* ep = nullptr) {
  gemm_detail::run_packed(gemm_detail::portable_kernel<T>(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta,
                          C, ldc, ep);
}

}  // namespace tinycnn::kernels::cpu

// The two ways of sharing one product between threads without shared panels (run_split, run_ksplit).
#include "gemm_split.hpp"
