// SGEMM benchmarks: gemm/<variant>/<M>x<N>x<K>, GFLOP/s counter (2*M*N*K per iteration).
// Variants: reference (small shapes only), blocked, packed (portable micro-kernel), avx2, avx512 (14x32),
// avx512_8x48, avx512_dot (NT shapes only: the other forms run avx512)
// (when the CPU has them), dispatch (gemm<float>), eigen and openblas (when found at configure time; bench binary only).
// Before timing, each variant's result (beta = 0 over a NaN-filled C) is checked against gemm_ref:
// the whole C on small shapes, whole rows (first, middle, last and a few others) on large ones.
// Threads: OMP_NUM_THREADS (ours, Eigen) and OPENBLAS_NUM_THREADS (OpenBLAS). See docs/performance.md.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <tinycnn/core/random.hpp>
#include <tinycnn/kernels/cpu/gemm.hpp>

#ifdef TINYCNN_BENCH_HAS_EIGEN
// bench/eigen_sgemm.cpp (compiled for this machine): C = op(A) op(B), minimal leading dimensions.
void tinycnn_bench_eigen_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* a, const float* b,
                               float* c);
#endif
#ifdef TINYCNN_BENCH_HAS_OPENBLAS
#include <cblas.h>
#endif

namespace {

using namespace tinycnn::kernels::cpu;

struct GemmShape {
  int64_t M, N, K;
  bool ta, tb;
  std::string label;
};

std::vector<GemmShape> shapes() {
  std::vector<GemmShape> s = {
      {64, 64, 64, false, false, "small"},
      {256, 256, 256, false, false, "small"},
      {1024, 1024, 1024, false, false, "square NN"},
      {2048, 2048, 2048, false, false, "square NN"},
  };
  // model3 at batch 32: 150x150x3 input, 3x3 'same' convolutions. im2col GEMMs of the three largest
  // layers (by FLOPs): forward W[Cout, Cin*9] x col; backward-data W^T x dY; backward-filter dY x col^T
  // (FilterForm::DyCol), rows^T x dY^T (Rows) and col x dY^T (ColDy).
  struct Conv {
    const char* name;
    int64_t cin, cout, ohw;
  };
  const Conv model3[] = {{"model3 conv2 (32->64 @50x50)", 32, 64, 50},
                         {"model3 conv3 (64->128 @25x25)", 64, 128, 25},
                         {"model3 conv4 (128->256 @12x12)", 128, 256, 12}};
  for (const Conv& c : model3) {
    const int64_t n = 32 * c.ohw * c.ohw, k = c.cin * 9;
    s.push_back({c.cout, n, k, false, false, std::string(c.name) + " forward"});
    s.push_back({k, n, c.cout, true, false, std::string(c.name) + " backward-data"});
    s.push_back({c.cout, k, n, false, true, std::string(c.name) + " backward-filter"});
    // The backward filter's other forms (ConvOptions::FilterForm): im2row, dW^T = rows^T x dY^T, and
    // coldy, dW^T = col x dY^T.
    s.push_back({k, c.cout, n, true, false, std::string(c.name) + " backward-filter im2row"});
    s.push_back({k, c.cout, n, false, true, std::string(c.name) + " backward-filter coldy"});
  }
  // model004: valid 3x3 convolutions, forward.
  const Conv model004[] = {{"model004 conv1 (3->32 @148x148)", 3, 32, 148},
                           {"model004 conv2 (32->64 @72x72)", 32, 64, 72},
                           {"model004 conv3 (64->128 @34x34)", 64, 128, 34},
                           {"model004 conv4 (128->256 @15x15)", 128, 256, 15}};
  for (const Conv& c : model004)
    s.push_back({c.cout, 32 * c.ohw * c.ohw, c.cin * 9, false, false, std::string(c.name) + " forward"});
  // Dense forward at batch 32, x [32, in] x kernel [in, out]: few micro-tiles, long K (the K-split path).
  s.push_back({32, 128, 67500, false, false, "baseline dense 67500->128 forward"});
  s.push_back({32, 1024, 36864, false, false, "model3 dense 36864->1024 forward"});
  // Its backward: dX = dY W^T (NT, M = 32 rows again) and dW = X^T dY (TN, K = 32).
  s.push_back({32, 36864, 1024, false, true, "model3 dense backward-data"});
  s.push_back({36864, 1024, 32, true, false, "model3 dense backward-weight"});
  return s;
}

// Operands of the shape being benchmarked; kept while consecutive benchmarks use the same shape.
struct Operands {
  GemmShape shape;
  int64_t lda, ldb, ldc;
  // Allocated like tensor storage (huge pages where large), so the kernels see the same TLB behaviour.
  std::vector<float, tinycnn::HostAllocator<float>> A, B, C;
};

Operands& operands(const GemmShape& s) {
  static std::unique_ptr<Operands> cur;
  if (!cur || cur->shape.M != s.M || cur->shape.N != s.N || cur->shape.K != s.K || cur->shape.ta != s.ta ||
      cur->shape.tb != s.tb) {
    cur.reset();
    auto o = std::make_unique<Operands>();
    o->shape = s;
    o->lda = s.ta ? s.M : s.K;
    o->ldb = s.tb ? s.K : s.N;
    o->ldc = s.N;
    tinycnn::Rng rng(123);
    o->A.resize(static_cast<size_t>(s.M * s.K));
    o->B.resize(static_cast<size_t>(s.K * s.N));
    o->C.resize(static_cast<size_t>(s.M * s.N));
    for (auto& x : o->A) x = static_cast<float>(rng.uniform(-1.0, 1.0));
    for (auto& x : o->B) x = static_cast<float>(rng.uniform(-1.0, 1.0));
    cur = std::move(o);
  }
  return *cur;
}

using Fn = std::function<void(Operands&)>;

// Empty string when the variant's C matches gemm_ref, else what is wrong.
std::string validate(const Fn& fn, Operands& o) {
  const GemmShape& s = o.shape;
  std::fill(o.C.begin(), o.C.end(), std::numeric_limits<float>::quiet_NaN());
  fn(o);
  std::vector<int64_t> rows;
  const bool full = s.M * s.N * s.K <= (int64_t(1) << 24);
  if (full) {
    for (int64_t i = 0; i < s.M; ++i) rows.push_back(i);
  } else {
    rows = {0, s.M / 3, s.M / 2, s.M - 1};
    tinycnn::Rng rng(7);
    for (int r = 0; r < 4; ++r) rows.push_back(static_cast<int64_t>(rng.below(static_cast<uint64_t>(s.M))));
  }
  std::vector<float> want(static_cast<size_t>(s.N));
  const float tol = 1e-4f * static_cast<float>(s.K + 1) / 8.0f + 1e-5f;
  for (int64_t i : rows) {
    const float* a = s.ta ? o.A.data() + i : o.A.data() + i * o.lda;
    gemm_ref<float>(s.ta, s.tb, 1, s.N, s.K, 1.0f, a, o.lda, o.B.data(), o.ldb, 0.0f, want.data(), o.ldc);
    for (int64_t j = 0; j < s.N; ++j) {
      const float g = o.C[static_cast<size_t>(i * o.ldc + j)], w = want[static_cast<size_t>(j)];
      if (!(std::fabs(g - w) <= tol * (1.0f + std::fabs(w))))
        return "C[" + std::to_string(i) + "][" + std::to_string(j) + "] = " + std::to_string(g) + ", reference " +
               std::to_string(w);
    }
  }
  for (float v : o.C)
    if (std::isnan(v)) return "NaN in C";
  return "";
}

void run_gemm(benchmark::State& state, GemmShape s, Fn fn) {
  Operands& o = operands(s);
  const std::string err = validate(fn, o);
  if (!err.empty()) {
    state.SkipWithError(("differs from gemm_ref: " + err).c_str());
    return;
  }
  for (auto _ : state) {
    fn(o);
    benchmark::DoNotOptimize(o.C.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(s.M) * static_cast<double>(s.N) * static_cast<double>(s.K),
                         benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(s.label + (s.ta ? " A^T" : "") + (s.tb ? " B^T" : ""));
}

#ifdef TINYCNN_BENCH_HAS_EIGEN
void eigen_gemm(Operands& o) {
  const GemmShape& s = o.shape;
  tinycnn_bench_eigen_sgemm(s.ta, s.tb, s.M, s.N, s.K, o.A.data(), o.B.data(), o.C.data());
}
#endif

template <class F>
Fn ours(F f) {
  return [f](Operands& o) {
    const GemmShape& s = o.shape;
    f(s.ta, s.tb, s.M, s.N, s.K, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.0f, o.C.data(), o.ldc);
  };
}

int register_gemm_benchmarks() {
  for (const GemmShape& s : shapes()) {
    // MxNxK/<op(A)><op(B)>: N = as stored, T = transposed (two forms of a product can share dims).
    const std::string dims = std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K) + "/" +
                             (s.ta ? "T" : "N") + (s.tb ? "T" : "N");
    const bool small = s.M * s.N * s.K <= (int64_t(1) << 24);
    std::vector<std::pair<std::string, Fn>> variants;
#ifdef TINYCNN_BENCH_HAS_OPENBLAS
    variants.emplace_back("openblas", [](Operands& o) {
      const GemmShape& g = o.shape;
      cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans,
                  static_cast<int>(g.M), static_cast<int>(g.N), static_cast<int>(g.K), 1.0f, o.A.data(),
                  static_cast<int>(o.lda), o.B.data(), static_cast<int>(o.ldb), 0.0f, o.C.data(),
                  static_cast<int>(o.ldc));
    });
#endif
#ifdef TINYCNN_BENCH_HAS_EIGEN
    variants.emplace_back("eigen", &eigen_gemm);
#endif
    if (small) variants.emplace_back("reference", ours(&gemm_ref<float>));
    variants.emplace_back("blocked", ours(&gemm_blocked<float>));
    variants.emplace_back("packed", ours([](auto... a) { gemm_packed<float>(a...); }));
    if (gemm_avx2_available()) variants.emplace_back("avx2", ours([](auto... a) { gemm_avx2(a...); }));
    if (gemm_avx2_available() && !s.ta && s.tb)
      variants.emplace_back("avx2_dot", ours([](auto... a) { gemm_avx2_dot(a...); }));
    if (gemm_avx512_available()) {
      variants.emplace_back("avx512", ours([](auto... a) { gemm_avx512(a...); }));
      variants.emplace_back("avx512_8x48", ours([](auto... a) { gemm_avx512_8x48(a...); }));
      if (!s.ta && s.tb) variants.emplace_back("avx512_dot", ours([](auto... a) { gemm_avx512_dot(a...); }));
    }
    variants.emplace_back("dispatch", ours(&gemm<float>));
    for (auto& [name, fn] : variants)
      benchmark::RegisterBenchmark(("gemm/" + name + "/" + dims).c_str(), run_gemm, s, fn)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
  return 0;
}

const int registered = register_gemm_benchmarks();

#ifdef TINYCNN_HAVE_X86_GEMM
// Parts of the AVX2 GEMM alone (docs/performance.md, fifteenth session):
//   gemm_pack_b/<order>/<K>x<N>: packing a row-major B [K, N] (ldb = N) block by block (KC 256, B
//     blocks of 256 KiB, as the driver does), sliver by sliver (gemm_detail::pack_b_impl, the
//     reference order) or as the AVX2 kernel does (groups of 8 rows when rows are a page or more
//     apart); bytes/s counter over B. The AVX2 result is checked bitwise against the reference first.
//   gemm_microkernel/avx2/kc<KC>: the 6x16 micro-kernel alone, one A sliver against 16 B slivers
//     (L1 / L2 resident), C stores included; GFLOP/s counter.
//   fma_peak/avx2: 12 independent chains of 8-wide FMAs, the core's FMA peak; GFLOP/s counter
//   (fma_peak/avx512 below: the same with 16-wide FMAs, one thread and all threads).
// The reference order compiled for AVX2 as the AVX2 kernel's own copy is (pack_b_impl is always inlined),
// so the two variants differ only in their order.
TINYCNN_TARGET_AVX2 void pack_b_sliver_avx2(const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0,
                                            int64_t kc, float* dst, int64_t s0, int64_t s1) {
  gemm_detail::pack_b_impl<float, gemm_avx2_detail::NR>(false, B, ldb, j0, n, k0, kc, dst, s0, s1);
}

void run_pack_b(benchmark::State& state, int64_t K, int64_t N, bool avx2) {
  const auto& pk = gemm_avx2_detail::kernel();
  const gemm_detail::Blocks bl = gemm_detail::blocks_for(pk, 32, N, K);  // the driver's blocks (M: a batch)
  const int64_t kc = bl.kc, nc = bl.nc;
  tinycnn::Rng rng(3);
  std::vector<float> B(static_cast<size_t>(K * N));
  for (float& v : B) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  const int64_t sl = (nc + pk.nr - 1) / pk.nr;
  std::vector<float> buf(static_cast<size_t>(sl * pk.nr * kc)), ref(buf.size());
  gemm_detail::pack_b_impl<float, gemm_avx2_detail::NR>(false, B.data(), N, 0, nc, 0, kc, ref.data(), 0, sl);
  gemm_avx2_detail::pack_b(false, B.data(), N, 0, nc, 0, kc, buf.data(), 0, sl);
  if (buf != ref) {
    state.SkipWithError("AVX2 B packing differs from pack_b_impl");
    return;
  }
  for (auto _ : state) {
    for (int64_t j0 = 0; j0 < N; j0 += nc)
      for (int64_t k0 = 0; k0 < K; k0 += kc) {
        const int64_t n = std::min(nc, N - j0), kk = std::min(kc, K - k0), s1 = (n + pk.nr - 1) / pk.nr;
        if (avx2)
          gemm_avx2_detail::pack_b(false, B.data(), N, j0, n, k0, kk, buf.data(), 0, s1);
        else
          pack_b_sliver_avx2(B.data(), N, j0, n, k0, kk, buf.data(), 0, s1);
      }
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  state.counters["bytes/s"] =
      benchmark::Counter(4.0 * static_cast<double>(K * N), benchmark::Counter::kIsIterationInvariantRate);
}

void run_microkernel(benchmark::State& state, int64_t kc) {
  constexpr int MR = gemm_avx2_detail::MR, NR = gemm_avx2_detail::NR;
  constexpr int64_t slivers = 16;
  std::vector<float> A(static_cast<size_t>(MR * kc), 0.5f), B(static_cast<size_t>(NR * kc * slivers), 0.25f);
  std::vector<float> C(static_cast<size_t>(MR * NR * slivers));
  gemm_detail::Tile<float> t{};
  t.kc = kc, t.a = A.data(), t.ldc = NR * slivers, t.mr = MR, t.nr = NR, t.alpha = 1.0f, t.beta = 0.0f;
  for (auto _ : state) {
    for (int64_t j = 0; j < slivers; ++j) {
      t.b = B.data() + j * NR * kc, t.c = C.data() + j * NR;
      gemm_avx2_detail::tile(t);
    }
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  if (C[0] != 0.125f * static_cast<float>(kc)) state.SkipWithError("wrong micro-kernel result");
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * MR * NR * static_cast<double>(kc * slivers),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

TINYCNN_TARGET_AVX2 __attribute__((noinline)) float fma_chains(int64_t n) {
  __m256 c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
  for (int64_t k = 0; k < n; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) c[i] = _mm256_fmadd_ps(a, c[i], b);
  }
  __m256 s = c[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, c[i]);
  return _mm256_cvtss_f32(s);
}

// fma_peak/<isa>[/threads:<n>]: `chains(n)` runs n rounds of independent FMA chains (flops_per_round
// FLOPs) on each of `threads` OpenMP threads; GFLOP/s counter summed over the threads.
void run_fma_peak(benchmark::State& state, float (*chains)(int64_t), double flops_per_round, int threads) {
  int64_t n = 1 << 19;
  float sink = 0.0f;
  for (auto _ : state) {
    benchmark::DoNotOptimize(n);  // an opaque length: the pure call is not hoisted out of the loop
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += chains(n);
  }
  benchmark::DoNotOptimize(sink);
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_round * static_cast<double>(n) * threads,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// 24 independent chains of 16-wide FMAs (fma_peak/avx512/threads:<n>, n = 1 and omp_get_max_threads()):
// the ceiling the GEMM variants are measured against.
TINYCNN_TARGET_AVX512 __attribute__((noinline)) float fma_chains_avx512(int64_t n) {
  __m512 c[24];
  for (int i = 0; i < 24; ++i) c[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
  for (int64_t k = 0; k < n; ++k) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) c[i] = _mm512_fmadd_ps(a, c[i], b);
  }
  __m512 s = c[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, c[i]);
  return _mm512_reduce_add_ps(s);
}

int register_avx2_part_benchmarks() {
  if (!gemm_avx2_available()) return 0;
  // model3's dense weights (rows 4 KiB apart) and the baseline model's (rows 512 bytes apart)
  for (auto [K, N] : {std::pair<int64_t, int64_t>{36864, 1024}, {67500, 128}})
    for (bool avx2 : {false, true})
      benchmark::RegisterBenchmark(("gemm_pack_b/" + std::string(avx2 ? "avx2" : "sliver") + "/" + std::to_string(K) +
                                    "x" + std::to_string(N))
                                       .c_str(),
                                   run_pack_b, K, N, avx2)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  for (int64_t kc : {32, 256})
    benchmark::RegisterBenchmark(("gemm_microkernel/avx2/kc" + std::to_string(kc)).c_str(), run_microkernel, kc)
        ->UseRealTime();
  benchmark::RegisterBenchmark("fma_peak/avx2", run_fma_peak, &fma_chains, 2.0 * 8 * 12, 1)->UseRealTime();
  if (gemm_avx512_available()) {
    std::vector<int> counts{1};
#ifdef _OPENMP
    if (omp_get_max_threads() > 1) counts.push_back(omp_get_max_threads());
#endif
    for (int t : counts)
      benchmark::RegisterBenchmark(("fma_peak/avx512/threads:" + std::to_string(t)).c_str(), run_fma_peak,
                                   &fma_chains_avx512, 2.0 * 16 * 24, t)
          ->UseRealTime();
  }
  return 0;
}

const int registered_parts = register_avx2_part_benchmarks();
#endif

}  // namespace
