#pragma once
// How run_packed (gemm_packed.hpp) shares one product between the threads without packed panels in
// common: disjoint ranges of C (run_split) or of K (run_ksplit), each thread running a one-thread
// run_packed of its own. Included at the end of gemm_packed.hpp, which declares both.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __linux__
#include <sched.h>
#endif

#include "gemm_packed.hpp"

namespace tinycnn::kernels::cpu::gemm_detail {

// The speed of each CPU relative to the others in the recent splits (run_split, run_ksplit): on the
// Zen 5 host the two vCPUs ran at different speeds for minutes at a time (one thread's 576 x 256 x
// 4608 NT at 141-165 GFLOP/s on one and 187-195 on the other, then the other way round; the FMA peak
// the same on both: docs/performance.md, fifty-first session), and equal ranges waited on the slower
// one. Per CPU, an exponential average (kKeep of the old value) of each split's work per second
// against the mean over its threads; 0: not measured yet.
class SplitSpeeds {
 public:
  static constexpr int kCpus = 256;
  // kDeadBand: a CPU within 3% of the mean speed gets weight 1. Not 0, which lets timing noise move
  // finely cut ranges (4096 x 96 x 2048 NN, 8-row tiles: 1.003-1.031x the time of the earlier split
  // in four of six processes, where 3% stayed within 0.92-1.01x). With 8% two CPUs up to 16% apart
  // (each 8% from their mean) got equal ranges. Alternated call by call in one process with one vCPU
  // 5-14% slower, 2% took 0.94-1.01x the time of 8% on run_split's 1152 x 256 x 4608 NT and TN
  // (fifty-fourth session); run_ksplit kept 8% longer (a moved piece there repacks an operand), but
  // with one vCPU 10-14% slower 3% took 0.94-0.955x the time of 8% on 256 x 1152 x 4608 NT and
  // 0.95-0.97x on 576 x 128 x 20,000, 128 x 576 x 20,000 and 64 x 288 x 80,000 NT, and tied with the
  // vCPUs even (fifty-fifth and fifty-sixth sessions, docs/performance.md).
  static constexpr float kKeep = 0.8f, kMin = 0.6f, kMax = 1.6f, kDeadBand = 0.03f;
  // The weight of a range on this CPU: its relative speed within [kMin, kMax], 1 where unknown or
  // within kDeadBand of 1 (timing noise should not move the ranges).
  float weight(int cpu) const {
    const float r = cpu >= 0 && cpu < kCpus ? rel_[cpu].load(std::memory_order_relaxed) : 0.0f;
    if (r <= 0.0f || (r > 1.0f - kDeadBand && r < 1.0f + kDeadBand)) return 1.0f;
    return std::clamp(r, kMin, kMax);
  }
  // One split's threads: cpu[t] ran work[t] units in secs[t] seconds.
  void update(int n, const int* cpu, const double* work, const double* secs) {
    double mean = 0;
    for (int t = 0; t < n; ++t) {
      if (cpu[t] < 0 || cpu[t] >= kCpus || work[t] <= 0 || secs[t] <= 0) return;
      for (int u = 0; u < t; ++u)
        if (cpu[u] == cpu[t]) return;  // two threads on one CPU (or one moved): nothing to compare
      mean += work[t] / secs[t] / n;
    }
    for (int t = 0; t < n; ++t) {
      const float old = rel_[cpu[t]].load(std::memory_order_relaxed);
      const double r = work[t] / secs[t] / mean;
      rel_[cpu[t]].store(static_cast<float>(kKeep * (old > 0.0f ? old : 1.0f) + (1.0 - kKeep) * r),
                         std::memory_order_relaxed);
    }
  }
  void copy_from(const SplitSpeeds& o) {
    for (int c = 0; c < kCpus; ++c) rel_[c].store(o.rel_[c].load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  // Tests: set (or with 0, forget) a CPU's relative speed.
  void set(int cpu, float rel) {
    if (cpu >= 0 && cpu < kCpus) rel_[cpu].store(rel, std::memory_order_relaxed);
  }

 private:
  std::atomic<float> rel_[kCpus] = {};
};

// The speeds per product: products differ in how much the slower vCPU slows them (in one minute where
// it was slow, 576 x 128 x 20,000 NT's K halves settled at weights 0.90 and 1.10 while TN's stayed
// within 8% of equal; fifty-second session), so each product (split_key: shape, forms, tile)
// keeps its own SplitSpeeds in a slot of a small table, started from the average over every product
// (base) where the slot last held another product. The speeds are hints: a race between two
// application threads on one slot costs balance, never a result (each split reads its weights once).
class SplitSpeedTable {
 public:
  static constexpr int kSlots = 64;
  static int slot(uint64_t key) { return static_cast<int>((key >> 1) % kSlots); }  // bit 0 is always set
  SplitSpeeds& at(uint64_t key) {
    Slot& s = slots_[slot(key)];
    if (s.key.exchange(key, std::memory_order_relaxed) != key) s.speeds.copy_from(base_);
    return s.speeds;
  }
  // One split of the product whose speeds are `product` (from at()).
  void update(SplitSpeeds& product, int n, const int* cpu, const double* work, const double* secs) {
    product.update(n, cpu, work, secs);
    base_.update(n, cpu, work, secs);
  }
  SplitSpeeds& base() { return base_; }
  // Tests: every product starts from base() again.
  void forget_products() {
    for (Slot& s : slots_) s.key.store(0, std::memory_order_relaxed);
  }

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};  // 0: empty
    SplitSpeeds speeds;
  };
  SplitSpeeds base_;
  Slot slots_[kSlots];
};
inline SplitSpeedTable& split_speed_table() {
  static SplitSpeedTable t;
  return t;
}
// A product's key in SplitSpeedTable (never 0).
inline uint64_t split_key(int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b, int mr, int nr) {
  const uint64_t form = uint64_t(trans_a) | uint64_t(trans_b) << 1 | uint64_t(mr) << 2 | uint64_t(nr) << 12;
  uint64_t h = 0xcbf29ce484222325ull;
  for (const uint64_t v : {uint64_t(M), uint64_t(N), uint64_t(K), form}) h = (h ^ v) * 0x100000001b3ull;
  return (h ^ h >> 29) | 1;
}
inline int current_cpu() {
#ifdef __linux__
  return sched_getcpu();
#else
  return -1;
#endif
}

// Where thread t's part of an extent of `extent` rows or columns starts when nth threads share it in
// proportion to weight[0, nth): at the multiple of `unit` (the register tile) nearest to the
// proportional point, computed the same way by every thread (one summation order), so that the parts
// tile the extent exactly. Cut at the point in whole units of a ragged extent instead, equal weights
// gave the first of two threads the odd unit: 1152 rows are 82 tiles of 14 rows and one of 4, and
// the first thread took 42 tiles (588 rows) against 41 and the partial one (564 rows); at the nearest
// multiple of 14 to 576 they take 574 and 578.
inline int64_t weighted_cut(const double* weight, int nth, int t, int64_t extent, int64_t unit) {
  if (t <= 0) return 0;
  if (t >= nth) return extent;
  double before = 0, total = 0;
  for (int u = 0; u < nth; ++u) {
    if (u < t) before += weight[u];
    total += weight[u];
  }
  const double point = static_cast<double>(extent) * before / total;
  return std::min(extent, static_cast<int64_t>(std::llround(point / static_cast<double>(unit))) * unit);
}

// Independent split: thread t computes the columns [j_t, j_t+1) of C (rows [i_t, i_t+1) when C is too
// narrow and tall enough) as a one-thread run_packed of its own, with its own thread-local packing
// buffers: no barrier and no packed panel shared between cores. On a 2-vCPU Zen 3 VM the shared
// scheme's two barriers per block stalled whenever one vCPU was preempted, and each core waited on
// panels packed by the other (docs/performance.md, thirteenth session); on a Zen 5 with AVX-512 it
// was up to 1.8x faster on wide products too (twenty-second session). Ranges start at multiples
// of the register tile, so every tile but the last is full, and are in proportion to the speeds
// their CPUs showed in the previous splits (SplitSpeeds; one barrier while each thread learns the
// others' CPUs). Alternated in one process with equal ranges, 2 threads, while one vCPU was slow
// (fifty-first session): 1152 x 256 x 4608 NT 0.87-0.97x the time, TN 0.92-0.99x, 36864 x 1024 x 32
// TN 0.86-0.89x; 0-3% more with the vCPUs even. The cuts at the nearest tile multiple (weighted_cut)
// with a dead band of 3% instead of the cuts in whole tiles with 8%, the same binary alternating
// the two call by call in shuffled order, three processes (fifty-fourth session): 1152 x 256 x 4608
// NT 0.93-1.00x the time, TN 0.95-0.99x, 1152 x 192 x 4608 NT 0.955-1.005x, 1024^3 NN 0.94-0.98x,
// 2048^3 NN 0.945-1.001x, 36864 x 1024 x 32 TN 0.98-1.01x, 4096 x 96 x 2048 NN 0.92-1.00x (37 x 600
// x 3000 NN, 0.4 ms: 0.96-1.03x). Every range blocks K as the
// whole product does on one thread, so each element of C gets its terms in the one-thread order:
// bitwise the one-thread result whatever the ranges. Returns false (nothing done) when neither range
// would be long enough (split_axis).
template <class T>
bool run_split(const PackedKernel<T>& pk, int nt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
               T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
               const GemmEpilogue<T>* ep) {
#ifdef _OPENMP
  const int axis = split_axis(pk, nt, trans_b, M, N);
  if (axis == 0) return false;
  const bool by_cols = axis == 1;
  const int64_t unit = by_cols ? pk.nr : pk.mr, extent = by_cols ? N : M;
  const int64_t kc = one_thread_plan(pk, trans_a, trans_b, M, N, K, A, lda).bl.kc;
  constexpr int kMaxThreads = 64;
  nt = std::min(nt, kMaxThreads);
  int cpu[kMaxThreads], team = 0;
  double weight[kMaxThreads], work[kMaxThreads], secs[kMaxThreads];
  SplitSpeedTable& table = split_speed_table();
  SplitSpeeds& speeds = table.at(split_key(M, N, K, trans_a, trans_b, pk.mr, pk.nr));
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    // Each weight read once, by its own thread: another split (from another application thread) may
    // update the speeds meanwhile, and every thread must cut the same ranges.
    cpu[tid] = current_cpu();
    weight[tid] = speeds.weight(cpu[tid]);
    if (tid == 0) team = nth;
#pragma omp barrier
    const int64_t lo = weighted_cut(weight, nth, tid, extent, unit);
    const int64_t hi = weighted_cut(weight, nth, tid + 1, extent, unit);
    const double start = omp_get_wtime();
    if (hi > lo) {
      GemmEpilogue<T> e = ep ? *ep : GemmEpilogue<T>{};
      // Nested calls run on one thread each (omp_in_parallel) with their own thread-local buffers.
      if (by_cols) {
        if (e.bias && e.bias_per_column) e.bias += lo;
        run_packed(pk, trans_a, trans_b, M, hi - lo, K, alpha, A, lda, trans_b ? B + lo * ldb : B + lo, ldb, beta,
                   C + lo, ldc, ep ? &e : nullptr, kc);
      } else {
        if (e.bias && !e.bias_per_column) e.bias += lo;
        run_packed(pk, trans_a, trans_b, hi - lo, N, K, alpha, trans_a ? A + lo : A + lo * lda, lda, B, ldb, beta,
                   C + lo * ldc, ldc, ep ? &e : nullptr, kc);
      }
    }
    work[tid] = static_cast<double>(hi - lo);
    secs[tid] = omp_get_wtime() - start;
  }
  table.update(speeds, team, cpu, work, secs);
  return true;
#else
  (void)pk, (void)nt, (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
  (void)B, (void)ldb, (void)beta, (void)C, (void)ldc, (void)ep;
  return false;
#endif
}

// C[i, j] = beta C[i, j] + sum_t part[t][j, i] for the rows [r0, r1) of C (beta == 0: C is not read),
//   part: nparts partials [N, M], C: [M, N] (ldc)
// in blocks of kT x kT, read down the partials' rows (contiguous in i) and written along C's. Read
// element by element instead (M apart along each row of C, a line per element), the flipped
// 256 x 4608 x 20,000 NT took 1.04x the time (2 threads, Zen 4; docs/performance.md, forty-fourth
// session); where C is small it ties.
template <class T>
void sum_transposed(const T* part, int nparts, int64_t M, int64_t N, int64_t r0, int64_t r1, T beta, T* C,
                    int64_t ldc) {
  constexpr int64_t kT = 16;
  T tile[kT][kT];
  for (int64_t i0 = r0; i0 < r1; i0 += kT) {
    const int64_t ni = std::min(kT, r1 - i0);
    for (int64_t j0 = 0; j0 < N; j0 += kT) {
      const int64_t nj = std::min(kT, N - j0);
      for (int64_t jj = 0; jj < nj; ++jj) {
        const T* p = part + (j0 + jj) * M + i0;
        for (int64_t ii = 0; ii < ni; ++ii) {
          T v = p[ii];
          for (int t = 1; t < nparts; ++t) v += p[t * M * N + ii];
          tile[ii][jj] = v;
        }
      }
      for (int64_t ii = 0; ii < ni; ++ii) {
        T* c = C + (i0 + ii) * ldc + j0;
        for (int64_t jj = 0; jj < nj; ++jj) c[jj] = (beta == T(0) ? T(0) : beta * c[jj]) + tile[ii][jj];
      }
    }
  }
}

// K-split for products with few micro-tiles and a long K (a dense layer's forward at small batch:
// M = 32, N = 128, K = 67,500 has 12 AVX-512 tiles, too few to share). Thread t computes
//   P_t = alpha * op(A)[:, K_t] * op(B)[K_t, :]      (t = 0 straight into C with beta, others into
// per-thread M x N partials), then after one barrier the threads sum the partials into disjoint
// row ranges of C and apply the epilogue there. Summation order differs from the one-thread result
// only by the grouping of K (float rounding, checked against the reference in tests/test_gemm.cpp).
// The K ranges are fixed by the product, not who computes them: the threads share the ranges' work,
// laid end to end and cut in register tiles along the longer side of each range's product, in
// proportion to their CPUs' speeds (SplitSpeeds, as run_split), so that the faster thread also
// computes the first rows (or columns) of the next range, blocked over K as that whole range: the
// result is bitwise the same whatever the speeds. A moved piece repacks its range's other operand.
// Alternated in one process with equal halves, 2 threads, Zen 5, in minutes where one vCPU was slow
// (docs/performance.md, fifty-second session), with one set of speeds for all products: 128 x 576 x
// 20,000 NT 0.91-1.02x the time, 64 x 288 x 80,000 NT 0.91-1.01x, 576 x 128 x 20,000 NT 0.92-1.02x,
// but 288 x 64 x 80,000 TN 1.00-1.04x; with speeds per product (SplitSpeedTable) 0.96-1.02x, 0.94-1.02x,
// 0.96-1.02x and 0.99-1.01x in the five such minutes measured. With the vCPUs even 0.97-1.03x.
// When N x M fills the register tiles clearly better than M x N (M = 32 rows are 2.3 tiles of 14,
// 76% full, while N = 1024 as rows are 99% full), every thread computes P_t^T = op(B)^T op(A)^T
// into an N x M partial instead, and the sum transposes them back. So does an NT or TN product (the
// flipped one has the same form) with N > M, few rows (at most kPrefetchMaxSlivers B slivers as the
// flipped N), a small C and N within one A panel of the kernel (the flipped M): its wide B streams
// through the flipped product as A, whose next panel run_packed prefetches (stream_a), and as TN it
// is not even packed (direct_a), while as B it was packed without a prefetch. Alternated in one
// process, Zen 4, 2 threads (docs/performance.md, forty-third session): 128 x 576 x 20,000 NT 0.88x
// the time, TN 0.88x; 64 x 288 x 80,000 NT 0.96x, TN 0.84x; 64 x 576 x 20,000 NT 0.97x. With a
// wider N the flipped product's panels shrink (kPrefetchPanelSlivers), and flipped TN products then
// took 1.3-1.6x the time (AVX-512: 16 x 4096, 24 x 4096 and 48 x 2048 x 20,000; AVX2, 768-row
// panels: 64 x 1152 x 8000 1.1-1.2x); in one panel of more than kFlipPanelBytes they took 1.07-1.09x
// (48 x 1024 x 20,000 and 96 x 1024 x 9216 TN, panels of 1.5 MB, where 64 x 768 x 20,000 TN, 1.2 MB,
// took 0.86x: the prefetched next panel no longer fits L2 beside the current one, forty-fourth
// session). So only an NT product on the AVX-512 kernels (PackedKernel::flip_wide_nt) is flipped
// whatever N and C: 32 x 2304 and 16 x 4096 x 20,000 NT tie, and past kKSplitMaxPartialBytes of C
// (1.2-4.7 MB), process-alternated (forty-fourth session),
// 128 x 2304 x 9216 NT took 0.86-0.87x the time, 128 x 4608 x 20,000 NT 0.87x, 256 x 4608 x 20,000
// NT 0.93x, 256 x 1152 x 4608 NT 0.93-0.97x (three runs). There, flipped too, TN tied on
// 256 x 1152 x 4608, and with the AVX2 kernel 128 x 1152 x 4608 NT and 128 x 2304 x 9216 NT took
// 1.15-1.18x (its tiles ran at half speed there). On a Zen 5, whose 512-bit FMA units are full
// width, the flip past kKSplitMaxPartialBytes took 1.07-1.11x the time on 256 x 1152 x 4608 and
// 256 x 4608 x 20,000 NT and tied on 128 x 2304 x 9216, 128 x 4608 x 20,000, 32 x 2304 x 20,000 and
// 16 x 4096 x 20,000 NT (alternated in one process, forty-ninth session), so the kernels set
// flip_wide_nt only where AVX-512 runs on 256-bit units (CpuFeatures::avx512_half_width: Zen 4).
constexpr int64_t kFlipPanelBytes = int64_t(5) << 18;  // 1.25 MiB (run_ksplit)

template <class T>
void run_ksplit(const PackedKernel<T>& pk, int nt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                const GemmEpilogue<T>* ep) {
#ifdef _OPENMP
  const bool small_c = M * N * static_cast<int64_t>(sizeof(T)) <= kKSplitMaxPartialBytes;
  const bool stream_flipped = trans_a != trans_b && N > M && M <= pk.nr * kPrefetchMaxSlivers &&
                              ((trans_b && pk.flip_wide_nt) ||
                               (small_c && N <= pk.mc && N * pk.kc * static_cast<int64_t>(sizeof(T)) <=
                                                             kFlipPanelBytes));
  const bool flip = stream_flipped || tile_fill(N, M, pk.mr, pk.nr) > 1.2 * tile_fill(M, N, pk.mr, pk.nr);
  constexpr int kMaxThreads = 64;
  nt = std::min(nt, kMaxThreads);
  const int nparts = flip ? nt : nt - 1;  // thread 0 writes C directly unless flipped
  T* part = c_buffer<T>().get(static_cast<size_t>(nparts * M * N));  // [nparts][M][N] or [nparts][N][M]
  // Each K range's product is rows x cols (N x M flipped); the ranges' work is cut along the longer
  // of the two, in register tiles ("units"), a piece of the other operand repacked per cut.
  const int64_t rows = flip ? N : M, cols = flip ? M : N;
  const bool by_cols = cols > rows;
  const int64_t unit = by_cols ? pk.nr : pk.mr, extent = by_cols ? cols : rows, units = ceil_div(extent, unit);
  int cpu[kMaxThreads], team = 0;
  double weight[kMaxThreads], work[kMaxThreads], secs[kMaxThreads];
  SplitSpeedTable& table = split_speed_table();
  SplitSpeeds& speeds = table.at(split_key(M, N, K, trans_a, trans_b, pk.mr, pk.nr));
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    cpu[tid] = current_cpu();
    weight[tid] = speeds.weight(cpu[tid]);
    if (tid == 0) team = nth;
#pragma omp barrier
    // K range r = [K r / nth, K (r + 1) / nth) is fixed by the product; thread t takes the units
    // [u0, u1) of the ranges laid end to end (nth x units), in proportion to its CPU's speed: with
    // equal speeds exactly range t, else the faster thread also takes the first units of the next.
    const int64_t u0 = weighted_cut(weight, nth, tid, nth * units, 1);
    const int64_t u1 = weighted_cut(weight, nth, tid + 1, nth * units, 1);
    const double start = omp_get_wtime();
    double done = 0;
    for (int r = static_cast<int>(u0 / units); r < nth && r * units < u1; ++r) {
      const int64_t lo = std::min(std::max(u0 - r * units, int64_t(0)) * unit, extent);
      const int64_t hi = std::min(std::min(u1 - r * units, units) * unit, extent);
      if (hi <= lo) continue;
      const int64_t k0 = K * r / nth, k1 = K * (r + 1) / nth;
      const T* a = trans_a ? A + k0 * lda : A + k0;  // op(A)[:, k0:k1]
      const T* b = trans_b ? B + k0 : B + k0 * ldb;  // op(B)[k0:k1, :]
      // Range r's product X = op(P) op(Q) into D: flipped, op(B)^T [N, k] is the same storage as op(B)
      // with the other transpose flag; else range 0 goes straight into C with beta.
      const bool tp = flip ? !trans_b : trans_a, tq = flip ? !trans_a : trans_b;
      const T *P = flip ? b : a, *Q = flip ? a : b;
      const int64_t ldp = flip ? ldb : lda, ldq = flip ? lda : ldb;
      T* D = flip ? part + r * M * N : r == 0 ? C : part + (r - 1) * M * N;
      const int64_t ldd = flip ? M : r == 0 ? ldc : N;
      const T bd = !flip && r == 0 ? beta : T(0);
      // Every piece of range r blocks K as the whole range does on one thread, so each element gets
      // its terms in one order whoever computes it: the result does not depend on the speeds.
      const int64_t kc = one_thread_plan(pk, tp, tq, rows, cols, k1 - k0, P, ldp).bl.kc;
      // Nested calls run on one thread each (omp_in_parallel) with their own thread-local buffers.
      if (by_cols)
        run_packed(pk, tp, tq, rows, hi - lo, k1 - k0, alpha, P, ldp, tq ? Q + lo * ldq : Q + lo, ldq, bd, D + lo,
                   ldd, static_cast<const GemmEpilogue<T>*>(nullptr), kc);
      else
        run_packed(pk, tp, tq, hi - lo, cols, k1 - k0, alpha, tp ? P + lo : P + lo * ldp, ldp, Q, ldq, bd,
                   D + lo * ldd, ldd, static_cast<const GemmEpilogue<T>*>(nullptr), kc);
      done += static_cast<double>(hi - lo);
    }
    work[tid] = done;
    secs[tid] = omp_get_wtime() - start;
#pragma omp barrier
    const int64_t r0 = M * tid / nth, r1 = M * (tid + 1) / nth;
    if (flip) sum_transposed(part, nth, M, N, r0, r1, beta, C, ldc);
    for (int64_t i = r0; i < r1; ++i) {
      T* c = C + i * ldc;
      if (!flip) {
        for (int t = 1; t < nth; ++t) {
          const T* p = part + (t - 1) * M * N + i * N;
          for (int64_t j = 0; j < N; ++j) c[j] += p[j];
        }
      }
      if (ep) {
        if (ep->bias && ep->bias_per_column)
          for (int64_t j = 0; j < N; ++j) c[j] += ep->bias[j];
        else if (ep->bias)
          for (int64_t j = 0; j < N; ++j) c[j] += ep->bias[i];
        if (ep->relu)
          for (int64_t j = 0; j < N; ++j) c[j] = epilogue_relu(c[j], ep->relu_max);
      }
    }
  }
  table.update(speeds, team, cpu, work, secs);
#else
  (void)nt;
  run_packed(pk, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
#endif
}

}  // namespace tinycnn::kernels::cpu::gemm_detail
