#pragma once
// The contract between the packed GEMM driver (gemm_packed.hpp) and its micro-kernels: the fused
// epilogue a caller asks for (GemmEpilogue), the micro-tile a kernel computes (Tile), where a tile's k
// loop finds A (the cursors), and what a kernel plugs into the driver (PackedKernel: register block,
// blocking, tile and packing functions, and which operands it can read in place).
#include <cstdint>

#include "gemm_prefetch.hpp"

namespace tinycnn::kernels::cpu {

// Fused epilogue of gemm_ex: applied once to the final C (after alpha and beta):
//   C[i][j] = relu?( alpha * op(A)op(B)[i][j] + beta * C[i][j] + bias )
template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;
  bool bias_per_column = false;  // false: bias[i] added to row i (length M); true: bias[j] to column j (length N)
  bool relu = false;
  T relu_max = T(0);  // with relu: the cap (0 = none; 6 = ReLU6, folded MobileNet blocks)
};

// The epilogue's ReLU on one value: max(0, v), then min(relu_max, .) when relu_max > 0.
template <class T>
inline T epilogue_relu(T v, T relu_max) {
  v = v < T(0) ? T(0) : v;
  return relu_max > T(0) && v > relu_max ? relu_max : v;
}

namespace gemm_detail {

// One micro-tile: C[0:mr, 0:nr] = alpha * A_sliver * B_sliver + beta * C, then the epilogue.
template <class T>
struct Tile {
  int64_t kc;
  const T* a;  // packed A sliver: kc groups of MR values
  const T* b;  // packed B sliver: kc groups of NR values
  T* c;
  int64_t ldc;
  int mr, nr;  // valid rows / columns (<= MR / NR)
  T alpha, beta;
  const T* bias_row;  // mr values added per row, or null
  const T* bias_col;  // nr values added per column, or null
  bool relu;
  T relu_max;  // with relu: the cap (0 = none)
  const GemmPrefetch* pf = nullptr;  // lines to prefetch meanwhile (vector kernels), or null
  // B's row stride where the kernel reads op(B) in place (run_packed, kDirectBMaxSlivers); 0: b is a
  // packed sliver, rows NR apart
  int64_t bs = 0;
  // A's row stride where the kernel reads op(A) = A^T in place (run_packed, PackedKernel::direct_a);
  // 0: a is a packed sliver, MR values per k
  int64_t as = 0;
  // A's row stride where the kernel reads op(A) = A in place (run_packed, PackedKernel::direct_a_rows):
  // the sliver's rows ars apart, each contiguous in k (a partial sliver reads only its t.mr rows); 0: not
  int64_t ars = 0;
  // C's full vectors may be written with non-temporal stores (run_packed, kStreamCBytes; the AVX-512
  // tiles only)
  bool stream = false;
};

// Where a vector tile's k loop finds its A values: a(r) is row r's value at the current k, next()
// moves on to the next k.
// A packed sliver (step MR) or A^T read in place (step Tile::as): each k's values side by side.
template <class T>
struct ASliverCursor {
  const T* a;
  int64_t step;
  TINYCNN_GEMM_INLINE T operator()(int r) const { return a[r]; }
  TINYCNN_GEMM_INLINE void next() { a += step; }
};
// A read in place (Tile::ars): the sliver's rows, stride apart, each contiguous in k.
template <class T>
struct ARowsCursor {
  const T* a;  // row 0 at the current k
  int64_t stride;
  TINYCNN_GEMM_INLINE T operator()(int r) const { return a[r * stride]; }
  TINYCNN_GEMM_INLINE void next() { ++a; }
};

// Packs slivers [s0, s1) of a panel. pack_a: rows [i0, i0+m) of op(A), columns [k0, k0+kc);
// pack_b: rows [k0, k0+kc) of op(B), columns [j0, j0+n). Partial slivers are zero-padded.
template <class T>
using PackFn = void (*)(bool trans, const T* src, int64_t ld, int64_t i0, int64_t m, int64_t k0, int64_t kc, T* dst,
                        int64_t s0, int64_t s1);

template <class T>
struct PackedKernel {
  int mr, nr;          // register block (micro-tile) size
  int64_t kc;          // K-block
  int64_t mc;          // rows of the A panel (L3)
  int64_t b_bytes;     // target size of one packed B block (L2)
  int64_t nc_min;      // columns of a B block at least
  void (*tile)(const Tile<T>&);
  PackFn<T> pack_a;
  PackFn<T> pack_b;
  // Threads work on disjoint column (or row) ranges of C, each with its own packed panels and no
  // barrier (run_split), where the product is wide (or tall) enough; false: they share the packed
  // panels of each block, two barriers per block. See docs/performance.md, thirteenth session.
  bool split_independent = false;
  // run_packed reads B's full slivers in place (Tile::bs) for a one-thread product whose panels have at
  // most this many A slivers and whose N is at least direct_b_min_n; 0: never (kDirectBMaxSlivers: the
  // 8x48 tile 4, the AVX2 tile 3 with N >= 256).
  int direct_b_slivers = 0;
  // The tile reads op(A) = A^T in place when Tile::as is set, rows of A (k) as apart, the sliver's
  // values contiguous within a row (the AVX-512 kernels; a partial sliver reads only its t.mr values).
  bool direct_a = false;
  // run_ksplit computes a wide-B NT product transposed whatever its N and C (the AVX-512 kernels where
  // AVX-512 runs on 256-bit units, CpuFeatures::avx512_half_width; with the AVX2 kernel, and on a
  // Zen 5, it lost: gemm_split.hpp).
  bool flip_wide_nt = false;
  // The tile reads op(A) = A in place when Tile::ars is set, the sliver's rows ars apart, each
  // contiguous in k (all three vector kernels; a partial sliver reads only its t.mr rows).
  bool direct_a_rows = false;
  int64_t direct_b_min_n = 0;  // see direct_b_slivers
  // run_packed prefetches a streamed A's next panel only where A^T is read in place past few B
  // slivers (prefetch_stream_a in gemm_packed.hpp), and elsewhere where A^T is read in place the
  // sliver after next instead, in the kernel's K blocks (OneThreadPlan::prefetch_a_sliver): the
  // AVX-512 kernels where AVX-512 runs full width (!CpuFeatures::avx512_half_width); false: the next
  // panel wherever A streams, and direct_at_wide_kc's shorter K blocks.
  bool lean_stream_prefetch = false;
};

}  // namespace gemm_detail

}  // namespace tinycnn::kernels::cpu
