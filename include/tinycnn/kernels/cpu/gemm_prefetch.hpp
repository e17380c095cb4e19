#pragma once
// The packed GEMM's software prefetch of the next block's source (gemm_packed.hpp's run_packed): where
// one operand streams from memory through few slivers of the other, each micro-tile fetches a share
// of the block packed next while its FMAs run (twenty-ninth session, docs/performance.md).
#include <algorithm>
#include <cstdint>

#if defined(__GNUC__) || defined(__clang__)
#define TINYCNN_GEMM_INLINE inline __attribute__((always_inline))
#else
#define TINYCNN_GEMM_INLINE inline
#endif

namespace tinycnn::kernels::cpu::gemm_detail {

// Memory a micro-tile prefetches while its FMAs run: a share of a strided region (rows of `lines`
// 64-byte lines, `stride` bytes apart), lines [l0, l1) counted row by row. The driver points it at
// the source of the block it packs next, so that a product whose big operand is streamed from memory
// through few slivers of the other (a dense layer at batch 32: each weight is used for 32 rows) reads
// that stream while computing instead of between computations (run_packed, kPrefetchMaxSlivers).
struct GemmPrefetch {
  const char* base = nullptr;  // row 0 of the region
  int64_t stride = 0;          // bytes from one row to the next
  int64_t lines = 0;           // lines per row
  int64_t l0 = 0, l1 = 0;      // this tile's share
  // A second region (rows of lines2 lines, stride2 bytes apart) walked after the first one's n1
  // lines: lines n1.. of [l0, l1) are its lines 0..; base2 null: none
  const char* base2 = nullptr;
  int64_t stride2 = 0, lines2 = 1, n1 = INT64_MAX;
};

// Walks a tile's share of a GemmPrefetch: step() once per k issues the next ceil(share / kc) lines,
// into every cache level (Locality 3, the packed tiles' use) or into L2 and below (Locality 2: the
// dot-product tiles, gemm_dot_avx512.hpp).
class PrefetchCursor {
 public:
  PrefetchCursor(const GemmPrefetch* p, int64_t kc) {
    if (!p || p->l1 <= p->l0 || kc <= 0) return;
    lines_ = p->lines;
    stride_ = p->stride;
    int64_t l = p->l0;
    if (l >= p->n1) {
      l -= p->n1;
      lines_ = p->lines2, stride_ = p->stride2;
      row_ = p->base2 + l / lines_ * stride_;
    } else {
      row_ = p->base + l / lines_ * stride_;
      switch_ = p->n1 - l;
      p2_ = p;
    }
    col_ = l % lines_;
    left_ = p->l1 - p->l0;
    per_ = (left_ + kc - 1) / kc;
  }
  // OneRegion: the GemmPrefetch has no second region (base2 null), so the walk never switches and the
  // switch's state need not stay in registers through the tile's loop (the dot-product tiles: a
  // register less to spill in their k loop).
  template <int Locality = 3, bool OneRegion = false>
  TINYCNN_GEMM_INLINE void step() {
    for (int64_t i = 0; i < per_ && left_ > 0; ++i) {
      const char* line = next<OneRegion>();
#if defined(__GNUC__) || defined(__clang__)
      __builtin_prefetch(line, 0, Locality);
#else
      (void)line;
#endif
    }
  }
  // The share's next line (call only while left() > 0).
  template <bool OneRegion = false>
  TINYCNN_GEMM_INLINE const char* next() {
    const char* line = row_ + 64 * col_;
    --left_;
    if (++col_ == lines_) col_ = 0, row_ += stride_;
    if (!OneRegion && --switch_ == 0) lines_ = p2_->lines2, stride_ = p2_->stride2, row_ = p2_->base2, col_ = 0;
    return line;
  }
  int64_t left() const { return left_; }

 private:
  const char* row_ = nullptr;
  int64_t col_ = 0, lines_ = 1, stride_ = 0, left_ = 0, per_ = 0, switch_ = -1;
  const GemmPrefetch* p2_ = nullptr;
};

// run_packed prefetches the next block's source (GemmPrefetch) on one thread where one operand is
// streamed through few slivers of the other, so each packed value feeds few FMAs and the packing's
// memory traffic would otherwise alternate with the arithmetic:
// - B, when a panel has at most this many A slivers (a dense layer at batch 32: 3-4 slivers; a
//   convolution's forward GEMM with 32-64 output channels: 3-8). With more, each packed B value feeds
//   enough FMAs to hide its traffic, and the next block's source would only crowd the cache.
// - A, when B is one block of at most this many slivers and A is bigger than a core's cache (a dense
//   layer's backward data computed as C^T = W dY^T: 36864 x 32 x 1024). Such an A panel is used with
//   that one B block only, so where M needs several panels anyway they shrink to
//   kPrefetchPanelSlivers slivers (the A panel of the next block must fit in L2 beside the current
//   one); an M that fits one panel keeps it (run_packed). The next B block follows the A panel in
//   the same walk (GemmPrefetch's second region) where op(B) = B^T: a backward filter's long-K
//   product packed a B^T whose rows (64 of them, 80,000 floats apart) were more streams than the
//   hardware follows, and waited for them; alternated in one process, Zen 4, 2 threads
//   (docs/performance.md, forty-third session), 288 x 64 x 80,000 NT 0.95x the time, 576 x 128 x
//   20,000 NT 0.97x (the AVX2 kernel tied). A plain B's block is contiguous rows, which the hardware
//   follows: prefetched too, 288 x 64 x 80,000 TN took 1.02-1.05x the time with the AVX2 kernel, so
//   it is only where A is read in place (PackedKernel::direct_a, direct_a_rows), where it took
//   0.96-0.97x (A^T, TN) and 0.93-1.01x (A, NN: 4096 x 16 x 2300, 36864 x 32 x 1000, 576 x 128 x
//   20,000; forty-fifth session).
constexpr int64_t kPrefetchMaxSlivers = 8, kPrefetchPanelSlivers = 16;

// A region of `rows` rows of `len` bytes each, `stride` bytes apart from `first`, as whole lines.
inline GemmPrefetch line_region(const char* first, int64_t rows, int64_t len, int64_t stride) {
  GemmPrefetch p;
  p.stride = stride;
  const int64_t off = static_cast<int64_t>(reinterpret_cast<uintptr_t>(first) % 64);
  if (stride % 64 == 0) {  // every row starts at the same offset into its first line
    p.base = first - off;
    p.lines = (off + len + 63) / 64;
  } else {  // rows start at varying offsets: one more line covers the longest
    p.base = first;
    p.lines = (len + 63) / 64 + 1;
  }
  p.l1 = rows * p.lines;
  return p;
}

// The source region of the B block (b) or A panel (!b) that run_packed's one-thread loops (ic by mc,
// pc by kc, jc by nc) reach after block (ic, pc, jc); empty after the last block. X is B (ld = ldb)
// or A (lda); op(B)[k, j] = B[k * ldb + j] (B[j * ldb + k] when trans), op(A)[i, k] = A[i * lda + k]
// (A[k * lda + i]).
template <class T>
GemmPrefetch next_block(bool b, bool trans, const T* X, int64_t ld, int64_t M, int64_t N, int64_t K, int64_t mc,
                        int64_t kc, int64_t nc, int64_t ic, int64_t pc, int64_t jc) {
  GemmPrefetch p;
  if (jc + nc < N)
    jc += nc;
  else if (pc + kc < K)
    pc += kc, jc = 0;
  else if (ic + mc < M)
    ic += mc, pc = 0, jc = 0;
  else
    return p;
  const int64_t kcur = std::min(kc, K - pc), other = b ? std::min(nc, N - jc) : std::min(mc, M - ic);
  const int64_t i = b ? jc : ic;  // the block's first column of op(B) or row of op(A)
  const bool k_rows = b != trans;  // the region's rows run along k: op(B) as stored, op(A) transposed
  const T* first = k_rows ? X + pc * ld + i : X + i * ld + pc;
  const int64_t rows = k_rows ? kcur : other, len = (k_rows ? other : kcur) * static_cast<int64_t>(sizeof(T));
  return line_region(reinterpret_cast<const char*>(first), rows, len, ld * static_cast<int64_t>(sizeof(T)));
}

// Where A^T is read in place and nothing else prefetches (run_packed's OneThreadPlan::prefetch_a_sliver),
// the tiles of each A sliver fetch, into L1, the sliver kASliverAhead after it in their loop order:
// each k of such a sliver is a line or two of its own (A^T's rows are lda apart, a page or more in
// the products that stream A), which the hardware does not follow, so every sliver's first tile
// waited on its lines. Alternated in one process, Zen 5, 2 threads, against no prefetch (and the
// K blocks of direct_at_wide_kc, which it replaces) (docs/performance.md, fifty-fifth session):
// 1152 x 256 x 4608 TN (model3 conv4's backward filter) 0.945-0.962x the time, TT 0.95x, 576 x 128 x
// 20,000 TN 0.94x, 2048 x 32 x 20,000 TN 0.61-0.68x, 1000 x 64 x 20,000 TN 0.84x, 4096 x 128 x
// 2048 TN 0.94x, 8192 x 30 x 1040 TT 0.84x; one thread 576 x 256 x 4608 TN 0.94x. One sliver ahead
// gained less (1152 x 256 x 4608 TN 0.961x), three or four as much as two, L2 (prefetcht1) less; A
// read in place by rows (NT, NN) lost (288 x 64 x 80,000 NT 1.06x, 36864 x 32 x 1024 NN 1.045x).
constexpr int64_t kASliverAhead = 2;

// The A^T sliver (mr rows of op(A), op(A)[i, k] = A[k * lda + i]) that the tiles reach `ahead`
// slivers after sliver sa of K block [pc, pc + kcur) in run_packed's one-thread loops over the
// panel's slivers [sa0, sa1) (rows from ic, the panel ending at row i_end): later slivers of the
// same K block, then those of the next; empty past the panel's last K block.
template <class T>
GemmPrefetch a_sliver_ahead(const T* A, int64_t lda, int64_t K, int64_t kc, int mr, int64_t ic, int64_t i_end,
                            int64_t pc, int64_t kcur, int64_t sa0, int64_t sa1, int64_t sa, int64_t ahead) {
  int64_t s = sa + ahead, k0 = pc, klen = kcur;
  while (s >= sa1) {  // into the next K block
    s -= sa1 - sa0;
    k0 += klen;
    if (k0 >= K) return {};
    klen = std::min(kc, K - k0);
  }
  const int64_t i = ic + s * mr, rows = std::min<int64_t>(mr, i_end - i);
  return line_region(reinterpret_cast<const char*>(A + k0 * lda + i), klen, rows * static_cast<int64_t>(sizeof(T)),
                     lda * static_cast<int64_t>(sizeof(T)));
}

}  // namespace tinycnn::kernels::cpu::gemm_detail
