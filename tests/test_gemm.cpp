// Every GEMM variant against gemm_ref: odd shapes, empty dimensions, all transpose combinations,
// alpha/beta, leading dimensions larger than minimal, beta == 0 over NaN, and gemm_ex's epilogues.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <tinycnn/core/host_alloc.hpp>
#include <tinycnn/core/parallel.hpp>
#include <tinycnn/core/random.hpp>
#include <tinycnn/kernels/cpu/gemm.hpp>

using namespace tinycnn;
using namespace tinycnn::kernels::cpu;

namespace {

struct GemmCase {
  int64_t M, N, K;
};

// Shapes around every variant's register and cache blocks (MR 6/14, NR 4/8/16/32, KC 256/384).
const std::vector<GemmCase> kShapes = {
    {1, 1, 1},    {7, 5, 3},    {17, 33, 65},  {129, 31, 257}, {0, 5, 3},    {5, 0, 3},    {5, 3, 0},
    {0, 0, 0},    {14, 32, 1},  {15, 33, 2},   {13, 31, 385},  {28, 64, 384}, {1, 100, 7},  {100, 1, 7},
    {3, 40, 400}, {45, 97, 33}, {200, 70, 19}, {33, 600, 9},   {64, 64, 800},
    {5, 300, 600}};  // NT: dot products on AVX-512 (gemm_detail::prefer_dot_nt)

template <class T>
using GemmFn = std::function<void(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T,
                                  T*, int64_t)>;

template <class T>
std::vector<T> random_vec(size_t n, Rng& rng) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform(-1.0, 1.0));
  return v;
}

template <class T>
T tolerance(int64_t K) {
  return std::is_same<T, float>::value ? T(1e-4) * static_cast<T>(std::max<int64_t>(1, K) + 1) / T(8) + T(1e-5)
                                       : T(1e-10) * static_cast<T>(std::max<int64_t>(1, K));
}

// Runs fn and gemm_ref on the same inputs; returns the number of mismatching elements of C (and of
// the padding columns between N and ldc, which must stay untouched).
template <class T>
int64_t compare_one(const GemmFn<T>& fn, bool ta, bool tb, GemmCase s, T alpha, T beta, int64_t pad, Rng& rng,
                    const GemmEpilogue<T>* ep = nullptr) {
  const int64_t M = s.M, N = s.N, K = s.K;
  const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const int64_t arows = ta ? K : M, brows = tb ? N : K;
  const auto A = random_vec<T>(static_cast<size_t>(std::max<int64_t>(1, arows * lda)), rng);
  const auto B = random_vec<T>(static_cast<size_t>(std::max<int64_t>(1, brows * ldb)), rng);
  auto C0 = random_vec<T>(static_cast<size_t>(std::max<int64_t>(1, M * ldc)), rng);
  if (beta == T(0))
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C0[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> want = C0, got = C0;
  gemm_ref<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
  if (ep) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        T& w = want[i * ldc + j];
        if (ep->bias) w += ep->bias_per_column ? ep->bias[j] : ep->bias[i];
        if (ep->relu && w < T(0)) w = T(0);
        if (ep->relu && ep->relu_max > T(0) && w > ep->relu_max) w = ep->relu_max;  // capped (ReLU6's kind)
      }
    gemm_ex<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc, *ep);
  } else {
    fn(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
  }
  const T tol = tolerance<T>(K);
  int64_t bad = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const T w = want[i * ldc + j], g = got[i * ldc + j];
      if (j >= N) {
        if (!(g == C0[i * ldc + j])) ++bad;  // padding untouched
      } else if (std::isnan(g) || std::fabs(g - w) > tol * (T(1) + std::fabs(w))) {
        ++bad;
      }
    }
  return bad;
}

template <class T>
void check_variant(const std::string& name, const GemmFn<T>& fn) {
  Rng rng(42);
  const T alphas[] = {T(1), T(-0.5)};
  const T betas[] = {T(0), T(1), T(0.75)};
  for (const GemmCase& s : kShapes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      for (T alpha : alphas)
        for (T beta : betas) {
          const int64_t pad = (s.M + s.N + s.K + t) % 3 == 0 ? 0 : 5;
          CAPTURE(name);
          CAPTURE(s.M);
          CAPTURE(s.N);
          CAPTURE(s.K);
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(alpha);
          CAPTURE(beta);
          CHECK(compare_one<T>(fn, ta, tb, s, alpha, beta, pad, rng) == 0);
        }
    }
  // alpha == 0: C = beta * C, A and B are not needed.
  CHECK(compare_one<T>(fn, false, false, {9, 11, 13}, T(0), T(0.5), 2, rng) == 0);
  CHECK(compare_one<T>(fn, true, true, {9, 11, 13}, T(0), T(0), 0, rng) == 0);
}

// The speeds the splits weigh their ranges by (gemm_detail::SplitSpeeds): odd CPUs 1.5, even ones 0.65
// (skew), or unknown, that is equal ranges.
void set_speeds(bool skew) {
  gemm_detail::SplitSpeedTable& table = gemm_detail::split_speed_table();
  for (int c = 0; c < gemm_detail::SplitSpeeds::kCpus; ++c) table.base().set(c, skew ? (c % 2 ? 1.5f : 0.65f) : 0.0f);
  table.forget_products();
}

// A product's operands for the split tests: strides one, two and three past the minimum, and C's
// M x N part NaN where beta is 0 (it must not be read).
struct SplitOperands {
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C0;
};
SplitOperands split_operands(const GemmCase& s, bool ta, bool tb, float beta, Rng& rng) {
  SplitOperands o;
  o.lda = (ta ? s.M : s.K) + 1, o.ldb = (tb ? s.K : s.N) + 2, o.ldc = s.N + 3;
  o.A = random_vec<float>(static_cast<size_t>((ta ? s.K : s.M) * o.lda), rng);
  o.B = random_vec<float>(static_cast<size_t>((tb ? s.N : s.K) * o.ldb), rng);
  o.C0 = random_vec<float>(static_cast<size_t>(s.M * o.ldc), rng);
  if (beta == 0.0f)
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j)
        o.C0[static_cast<size_t>(i * o.ldc + j)] = std::numeric_limits<float>::quiet_NaN();
  return o;
}
// {elements of got that differ bitwise from same, padding columns included; elements off the
// reference want plus the epilogue ep, or padding changed}.
std::pair<int64_t, int64_t> split_mismatches(const GemmCase& s, const SplitOperands& o, const std::vector<float>& same,
                                             const std::vector<float>& got, const std::vector<float>& want,
                                             const GemmEpilogue<float>* ep) {
  int64_t differ = 0, bad = 0;
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < o.ldc; ++j) {
      const size_t x = static_cast<size_t>(i * o.ldc + j);
      differ += !(same[x] == got[x]);
      if (j >= s.N) {
        bad += !(got[x] == o.C0[x]);
        continue;
      }
      float w = want[x] + (ep && ep->bias ? ep->bias[ep->bias_per_column ? j : i] : 0.0f);
      if (ep && ep->relu && w < 0.0f) w = 0.0f;
      bad += !(std::fabs(got[x] - w) <= tolerance<float>(s.K) * (1.0f + std::fabs(w)));
    }
  return {differ, bad};
}

template <class T>
GemmFn<T> wrap(void (*f)(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,
                         int64_t, const GemmEpilogue<T>*)) {
  return [f](bool ta, bool tb, int64_t M, int64_t N, int64_t K, T al, const T* A, int64_t lda, const T* B,
             int64_t ldb, T be, T* C, int64_t ldc) { f(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc, nullptr); };
}

}  // namespace

TEST_CASE("gemm: blocked variant equals the reference") {
  check_variant<float>("blocked<float>", &gemm_blocked<float>);
  check_variant<double>("blocked<double>", &gemm_blocked<double>);
}

TEST_CASE("gemm: packed portable variant equals the reference") {
  check_variant<float>("packed<float>", wrap<float>(&gemm_packed<float>));
  check_variant<double>("packed<double>", wrap<double>(&gemm_packed<double>));
}

TEST_CASE("gemm: AVX2 and AVX-512 variants equal the reference (when the CPU has them)") {
  if (gemm_avx2_available())
    check_variant<float>("avx2", wrap<float>(&gemm_avx2)),
        check_variant<float>("avx2_dot", wrap<float>(&gemm_avx2_dot));
  else
    MESSAGE("AVX2+FMA not available: gemm_avx2 not tested");
  if (gemm_avx512_available()) {
    check_variant<float>("avx512", wrap<float>(&gemm_avx512));
    check_variant<float>("avx512_8x48", wrap<float>(&gemm_avx512_8x48));
    check_variant<float>("avx512_dot", wrap<float>(&gemm_avx512_dot));
  }
  else
    MESSAGE("AVX-512 not available: gemm_avx512 not tested");
}

TEST_CASE("cpu features: TINYCNN_MAX_ISA caps the instruction set the kernels dispatch to") {
  const CpuFeatures all{true, true}, avx2{true, false}, none{};
  auto same = [](CpuFeatures a, CpuFeatures b) { return a.avx2_fma == b.avx2_fma && a.avx512 == b.avx512; };
  CHECK(same(cap_cpu_features(all, nullptr), all));
  CHECK(same(cap_cpu_features(all, ""), all));
  CHECK(same(cap_cpu_features(all, "avx512"), all));
  CHECK(same(cap_cpu_features(all, "AVX2"), avx2));
  CHECK(same(cap_cpu_features(all, "baseline"), none));
  CHECK(same(cap_cpu_features(avx2, "avx512"), avx2));  // a cap never adds an instruction set
  CHECK(same(cap_cpu_features(none, "avx2"), none));
  bool valid = true;
  CHECK(same(cap_cpu_features(all, "sse9", &valid), all));  // cpu_features() reports it on stderr, uncapped
  CHECK(!valid);
  CHECK(same(cap_cpu_features(all, "Baseline", &valid), none));
  CHECK(valid);
  // The process's own cap (tests/CMakeLists.txt runs this binary again under "avx2" and "baseline"):
  // the detected features and the dispatch follow it.
  const std::string cap = std::getenv("TINYCNN_MAX_ISA") ? std::getenv("TINYCNN_MAX_ISA") : "";
  INFO("TINYCNN_MAX_ISA=" << cap << ", running " << cpu_isa_name());
  if (cap == "avx2") {
    CHECK(!cpu_features().avx512);
#ifdef TINYCNN_HAVE_X86_GEMM
    if (detect_cpu_features().avx2_fma)
      CHECK(gemm_tile_shape<float>(false, false, 512).mr == gemm_avx2_detail::kernel().mr);
#endif
  }
  if (cap == "baseline") {
    CHECK(std::string(cpu_isa_name()) == "baseline");
    CHECK(gemm_tile_shape<float>(false, false, 512).mr == gemm_detail::portable_kernel<float>().mr);
  }
}

TEST_CASE("gemm: a narrower last B sliver (every width) computes only its vectors and equals the reference") {
  if (!gemm_avx512_available()) {
    MESSAGE("AVX-512 not available: the narrow AVX-512 tiles not tested");
    return;
  }
  // N = two full slivers + w columns, w = 1..48: the 8x48 tile's last sliver takes 1, 2 or 3 vectors
  // and the 14x32 tile's 1 or 2; M = 16 and 28 hold full-height tiles of both (8 and 14 rows) and
  // a partial one. Beta 0 (C pre-filled with NaN, never read) and 0.75; the padding past N untouched.
  Rng rng(11);
  for (int64_t w = 1; w <= 48; ++w)
    for (int64_t M : {16, 28})
      for (float beta : {0.0f, 0.75f}) {
        const GemmCase s{M, 96 + w, 37};
        CAPTURE(w);
        CAPTURE(M);
        CAPTURE(beta);
        CHECK(compare_one<float>(wrap<float>(&gemm_avx512_8x48), false, false, s, 1.0f, beta, 3, rng) == 0);
        CHECK(compare_one<float>(wrap<float>(&gemm_avx512), false, false, s, -0.5f, beta, 3, rng) == 0);
      }
}

TEST_CASE("gemm: dispatcher equals the reference") {
  check_variant<float>("gemm<float>", &gemm<float>);
  check_variant<double>("gemm<double>", &gemm<double>);
}

TEST_CASE("gemm: the AVX-512 tile and orientation are chosen by the form of the product") {
  CHECK(gemm_detail::prefer_8x48(false, false, 64));
  CHECK_FALSE(gemm_detail::prefer_8x48(false, false, 27));
  CHECK_FALSE(gemm_detail::prefer_8x48(false, true, 4096));
  CHECK_FALSE(gemm_detail::prefer_8x48(true, false, 4096));
  CHECK(gemm_detail::prefer_swapped_nt(false, true, 32, 36864, 1024));  // model3's dense backward data
  CHECK_FALSE(gemm_detail::prefer_swapped_nt(false, true, 32, 67500, 128));  // baseline's: K too short
  CHECK_FALSE(gemm_detail::prefer_swapped_nt(false, false, 32, 36864, 1024));
  CHECK_FALSE(gemm_detail::prefer_swapped_nt(false, true, 128, 36864, 1024));
  CHECK(gemm_detail::prefer_swapped_streamed_nt(false, true, 256, 1152, 4608));  // model3 conv4's backward filter
  CHECK(gemm_detail::prefer_swapped_streamed_nt(false, true, 1, 2, 1024));
  CHECK_FALSE(gemm_detail::prefer_swapped_streamed_nt(false, true, 257, 1152, 4608));  // A^T past 8 slivers
  CHECK_FALSE(gemm_detail::prefer_swapped_streamed_nt(false, true, 256, 256, 4608));   // not wider than tall
  CHECK_FALSE(gemm_detail::prefer_swapped_streamed_nt(false, true, 256, 1152, 1023));  // K too short
  CHECK_FALSE(gemm_detail::prefer_swapped_streamed_nt(true, false, 256, 1152, 4608));
  CHECK_FALSE(gemm_detail::prefer_swapped_streamed_nt(false, false, 256, 1152, 4608));
  CHECK(gemm_detail::prefer_dot_nt(false, true, 32, 36864, 1024));       // model3's dense backward data
  CHECK_FALSE(gemm_detail::prefer_dot_nt(false, true, 32, 67500, 128));  // K too short
  CHECK_FALSE(gemm_detail::prefer_dot_nt(false, true, 16, 128, 4096));   // B too narrow
  CHECK_FALSE(gemm_detail::prefer_dot_nt(false, true, 128, 36864, 1024));
  CHECK_FALSE(gemm_detail::prefer_dot_nt(false, true, 64, 36864, 4096));  // the packed A past 512 KiB
  CHECK_FALSE(gemm_detail::prefer_dot_nt(true, true, 32, 36864, 1024));
  CHECK(gemm_detail::prefer_dot_nt_avx2(false, true, 32, 36864, 1024));
  CHECK(gemm_detail::prefer_dot_nt_avx2(false, true, 8, 16384, 2048));
  CHECK_FALSE(gemm_detail::prefer_dot_nt_avx2(false, true, 32, 4608, 2048));  // the packed A past 128 KiB
  CHECK_FALSE(gemm_detail::prefer_dot_nt_avx2(false, true, 32, 67500, 128));  // not a dot product at all
  if (!gemm_avx512_available()) return;
  CHECK(gemm_tile_shape<float>(false, false, 512).mr == 8);
  CHECK(gemm_tile_shape<float>(false, false, 512).nr == 48);
  CHECK(gemm_tile_shape<float>(false, true, 512).mr == 14);
  CHECK(gemm_tile_shape<float>(false, false, 27).nr == 32);
}

TEST_CASE("gemm: single thread and several threads give the same results") {
  const int saved = get_num_threads();
  set_num_threads(1);
  check_variant<float>("gemm<float> 1 thread", &gemm<float>);
  set_num_threads(saved);
  Rng rng(3);
  // A shape large enough to run in parallel and to need several K, M and N blocks.
  CHECK(compare_one<float>(&gemm<float>, false, true, {300, 290, 800}, 1.0f, 0.0f, 3, rng) == 0);
  CHECK(compare_one<double>(&gemm<double>, true, false, {150, 130, 520}, 0.5, 1.0, 0, rng) == 0);
  // Few micro-tiles and a long K take the K-split path (per-thread partial products summed at the
  // end, computed transposed where that fills the register tiles better: {20, 40} and {32, 64} with
  // AVX-512's 14x32 tiles, {7, 30} with the portable 6x4; NT and TN also where N > M for streaming):
  // every transpose combination, beta 0 over NaN and beta != 0, and the fused epilogues.
  const int threads = std::max(2, saved);
  set_num_threads(threads);
  const auto bias = random_vec<float>(64, rng);
  const auto bias_d = random_vec<double>(64, rng);
  for (int t = 0; t < 4; ++t)
    for (int e = 0; e < 4; ++e) {
      GemmEpilogue<float> ef;
      ef.bias = e ? bias.data() : nullptr;
      ef.bias_per_column = e == 2;
      ef.relu = e == 1 || e == 3;
      ef.relu_max = e == 3 ? 1.0f : 0.0f;
      GemmEpilogue<double> ed;
      ed.bias = e ? bias_d.data() : nullptr;
      ed.bias_per_column = e == 2;
      ed.relu = ef.relu;
      ed.relu_max = ef.relu_max;
      CAPTURE(t);
      CAPTURE(e);
      CHECK(compare_one<float>({}, t & 1, t & 2, {20, 40, 3100}, 1.0f, 0.0f, 1, rng, &ef) == 0);
      CHECK(compare_one<float>({}, t & 1, t & 2, {9, 33, 1700}, -0.5f, 0.75f, 0, rng, &ef) == 0);
      CHECK(compare_one<double>({}, t & 1, t & 2, {7, 30, 2100}, 0.5, 1.0, 2, rng, &ed) == 0);
      // A dense layer's forward at batch 32: the partials are computed transposed (tile fill).
      CHECK(compare_one<float>({}, t & 1, t & 2, {32, 64, 3100}, 1.0f, 0.5f, 0, rng, &ef) == 0);
      // A backward filter's NT / TN form with a wide B: transposed so that B streams as the A of each
      // thread's product (prefetched; as TN read in place, a partial last sliver of 6 rows).
      if (e < 2) CHECK(compare_one<float>({}, t & 1, t & 2, {64, 300, 4100}, 1.0f, 0.0f, 1, rng, &ef) == 0);
    }
  // A long K whose per-thread partial would pass kKSplitMaxPartialBytes (520 x 260 floats) splits
  // the rows instead: the backward-filter forms TN and NT.
  CHECK(compare_one<float>(&gemm<float>, true, false, {520, 260, 2100}, 1.0f, 0.0f, 1, rng) == 0);
  CHECK(compare_one<float>(&gemm<float>, false, true, {520, 260, 2100}, 1.0f, 1.0f, 0, rng) == 0);
  // Past that size with few rows (250 x 530 floats: M within 8 slivers of the AVX-512 tile), an NT
  // product is still computed transposed by the AVX-512 kernels where AVX-512 runs on 256-bit units
  // (PackedKernel::flip_wide_nt; elsewhere its K-split is not flipped), its partials summed back by 16 x 16
  // blocks (each thread's 125 rows and the 530 columns end in partial blocks); beta 0 over NaN, and
  // beta != 0 with a per-column bias and a ReLU. The flipped K-split also runs directly, with
  // flip_wide_nt set, so that it is covered on every AVX-512 host (beta 0 over NaN and beta != 0).
  GemmEpilogue<float> ec;
  const auto bias_c = random_vec<float>(530, rng);
  ec.bias = bias_c.data();
  ec.bias_per_column = true;
  ec.relu = true;
  CHECK(compare_one<float>(&gemm<float>, false, true, {250, 530, 2200}, 1.0f, 0.0f, 1, rng) == 0);
  CHECK(compare_one<float>({}, false, true, {250, 530, 2200}, -0.5f, 0.75f, 3, rng, &ec) == 0);
#ifdef TINYCNN_HAVE_X86_GEMM
  CHECK(gemm_avx512_detail::kernel().flip_wide_nt == cpu_features().avx512_half_width);
  if (gemm_avx512_available()) {
    gemm_detail::PackedKernel<float> flipping = gemm_avx512_detail::kernel();
    flipping.flip_wide_nt = true;
    const GemmFn<float> ksplit = [&](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float al, const float* A,
                                     int64_t lda, const float* B, int64_t ldb, float be, float* C, int64_t ldc) {
      gemm_detail::run_ksplit<float>(flipping, threads, ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc, nullptr);
    };
    CHECK(compare_one<float>(ksplit, false, true, {250, 530, 2200}, 1.0f, 0.0f, 1, rng) == 0);
    CHECK(compare_one<float>(ksplit, false, true, {250, 530, 2200}, -0.5f, 0.75f, 3, rng) == 0);
  }
#endif
  set_num_threads(saved);
}

TEST_CASE("gemm: the prefetched source of the next block covers every element it packs, one extra line per row at most") {
  // run_packed's one-thread loop order (ic by mc, pc by kc, jc by nc); each block's successor must
  // be prefetched whole: its B block, or its A panel.
  const int64_t M = 100, N = 90, K = 50, mc = 28, kc = 20, nc = 32;
  struct Blk {
    int64_t ic, pc, jc;
  };
  std::vector<Blk> order;
  for (int64_t ic = 0; ic < M; ic += mc)
    for (int64_t pc = 0; pc < K; pc += kc)
      for (int64_t jc = 0; jc < N; jc += nc) order.push_back({ic, pc, jc});
  std::vector<float> X(200 * 200 + 64);
  for (int b = 0; b < 2; ++b)
    for (int tr = 0; tr < 2; ++tr)
      for (int64_t ld : {int64_t(112), int64_t(123)})  // rows 64-byte multiples apart, or not
        for (int64_t shift : {int64_t(0), int64_t(5)}) {
          const float* x = X.data() + shift;
          for (size_t n = 0; n < order.size(); ++n) {
            const Blk& c = order[n];
            const gemm_detail::GemmPrefetch p = gemm_detail::next_block<float>(
                b == 1, tr == 1, x, ld, M, N, K, mc, kc, nc, c.ic, c.pc, c.jc);
            CAPTURE(b);
            CAPTURE(tr);
            CAPTURE(ld);
            CAPTURE(shift);
            CAPTURE(n);
            if (n + 1 == order.size()) {
              CHECK(p.l1 == 0);
              continue;
            }
            std::vector<uintptr_t> lines;  // what the cursor walks: row r, line l
            for (int64_t i = 0; i < p.l1; ++i)
              lines.push_back((reinterpret_cast<uintptr_t>(p.base) + (i / p.lines) * p.stride + 64 * (i % p.lines)) / 64);
            std::sort(lines.begin(), lines.end());
            // The elements the next block packs: op(B)[pc.., jc..] or op(A)[ic.., pc..].
            const Blk& nx = order[n + 1];
            const int64_t r0 = b ? nx.pc : nx.ic, r1 = b ? std::min(K, nx.pc + kc) : std::min(M, nx.ic + mc);
            const int64_t c0 = b ? nx.jc : nx.pc, c1 = b ? std::min(N, nx.jc + nc) : std::min(K, nx.pc + kc);
            std::vector<uintptr_t> need;
            int64_t missing = 0;
            for (int64_t r = r0; r < r1; ++r)
              for (int64_t col = c0; col < c1; ++col) {
                // op(X)[r, col] is X[r * ld + col], or X[col * ld + r] when stored transposed
                const float* e = tr ? x + col * ld + r : x + r * ld + col;
                const uintptr_t l = reinterpret_cast<uintptr_t>(e) / 64;
                need.push_back(l);
                if (!std::binary_search(lines.begin(), lines.end(), l)) ++missing;
              }
            std::sort(need.begin(), need.end());
            need.erase(std::unique(need.begin(), need.end()), need.end());
            CHECK(missing == 0);
            const int64_t rows = p.l1 / p.lines;
            CHECK(static_cast<int64_t>(lines.size()) <= static_cast<int64_t>(need.size()) + rows);
          }
        }
}

TEST_CASE("gemm: the prefetched A^T sliver ahead covers every element its tiles read, one extra line per row at most") {
  // run_packed's one-thread loops over a panel (pc by kc, then its slivers): the tiles of each sliver
  // prefetch the one `ahead` after it (a_sliver_ahead), across K blocks, and nothing past the last.
  const int mr = 6;
  const int64_t K = 50, kc = 20, ic = 28, i_end = 73;  // 45 rows: 8 slivers, the last of 3 rows
  const int64_t sa0 = 0, sa1 = 8;
  struct Pos {
    int64_t pc, sa;
  };
  std::vector<Pos> order;
  for (int64_t pc = 0; pc < K; pc += kc)
    for (int64_t sa = sa0; sa < sa1; ++sa) order.push_back({pc, sa});
  std::vector<float> X(64 * 200 + 64);
  for (const int64_t ahead : {int64_t(1), int64_t(2), int64_t(3), int64_t(9)})
    for (const int64_t ld : {int64_t(112), int64_t(123)})  // rows 64-byte multiples apart, or not
      for (const int64_t shift : {int64_t(0), int64_t(5)}) {
        const float* x = X.data() + shift;
        for (size_t n = 0; n < order.size(); ++n) {
          const Pos& c = order[n];
          const int64_t kcur = std::min(kc, K - c.pc);
          const gemm_detail::GemmPrefetch p =
              gemm_detail::a_sliver_ahead(x, ld, K, kc, mr, ic, i_end, c.pc, kcur, sa0, sa1, c.sa, ahead);
          CAPTURE(ahead);
          CAPTURE(ld);
          CAPTURE(shift);
          CAPTURE(n);
          if (n + static_cast<size_t>(ahead) >= order.size()) {
            CHECK(p.l1 == 0);
            continue;
          }
          std::vector<uintptr_t> lines;
          for (int64_t l = 0; l < p.l1; ++l)
            lines.push_back((reinterpret_cast<uintptr_t>(p.base) + (l / p.lines) * p.stride + 64 * (l % p.lines)) / 64);
          std::sort(lines.begin(), lines.end());
          const Pos& nx = order[n + static_cast<size_t>(ahead)];
          const int64_t i0 = ic + nx.sa * mr, i1 = std::min<int64_t>(i0 + mr, i_end);
          std::vector<uintptr_t> need;
          int64_t missing = 0;
          for (int64_t k = nx.pc; k < std::min(K, nx.pc + kc); ++k)
            for (int64_t i = i0; i < i1; ++i) {  // op(A)[i, k] = A[k * ld + i]
              const uintptr_t l = reinterpret_cast<uintptr_t>(x + k * ld + i) / 64;
              need.push_back(l);
              if (!std::binary_search(lines.begin(), lines.end(), l)) ++missing;
            }
          std::sort(need.begin(), need.end());
          need.erase(std::unique(need.begin(), need.end()), need.end());
          CHECK(missing == 0);
          CHECK(static_cast<int64_t>(lines.size()) <= static_cast<int64_t>(need.size()) + p.l1 / p.lines);
        }
      }
}

TEST_CASE("gemm: the prefetch cursors of a block's tiles walk its first region, then its second, every line once") {
  // run_packed prefetches the next A panel and after it the next B block as one walk of
  // GemmPrefetch's two regions, cut into consecutive shares, one per tile.
  std::vector<char> mem(1 << 16);
  gemm_detail::GemmPrefetch p;
  p.base = mem.data(), p.stride = 640, p.lines = 3;   // region 1: 7 rows of 3 lines
  p.base2 = mem.data() + 8192, p.stride2 = 256, p.lines2 = 2;  // region 2: 5 rows of 2 lines
  p.n1 = 7 * 3;
  const int64_t total = p.n1 + 5 * 2;
  std::vector<const char*> want;
  for (int64_t r = 0; r < 7; ++r)
    for (int64_t l = 0; l < 3; ++l) want.push_back(p.base + r * p.stride + 64 * l);
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t l = 0; l < 2; ++l) want.push_back(p.base2 + r * p.stride2 + 64 * l);
  for (int64_t shares : {int64_t(1), int64_t(4), int64_t(9), total}) {
    CAPTURE(shares);
    std::vector<const char*> got;
    for (int64_t s = 0; s < shares; ++s) {
      gemm_detail::GemmPrefetch q = p;
      q.l0 = total * s / shares, q.l1 = total * (s + 1) / shares;
      gemm_detail::PrefetchCursor c(&q, 5);
      CHECK(c.left() == q.l1 - q.l0);
      while (c.left() > 0) got.push_back(c.next());
    }
    CHECK(got == want);
  }
  // One region (base2 null): the walk never leaves it.
  gemm_detail::GemmPrefetch one = p;
  one.base2 = nullptr, one.n1 = INT64_MAX, one.l0 = 4, one.l1 = 21;
  gemm_detail::PrefetchCursor c(&one, 3);
  std::vector<const char*> got;
  while (c.left() > 0) got.push_back(c.next());
  CHECK(got == std::vector<const char*>(want.begin() + 4, want.begin() + 21));
}

TEST_CASE("gemm: where a streamed A's next panel is prefetched") {
  // The plan's choice (prefetch_stream_a): everywhere A streams on a kernel without
  // lean_stream_prefetch; with it, only A^T read in place in one panel past one B sliver, or two
  // with the next A block within kLeanPrefetchMaxBytes.
  gemm_detail::PackedKernel<float> pk = gemm_detail::portable_kernel<float>();
  pk.nr = 32;
  pk.mc = 2016;
  using gemm_detail::prefetch_stream_a;
  for (const bool ta : {false, true}) {
    CHECK(prefetch_stream_a(pk, true, true, ta, 1152, 256, 224, 384));
    CHECK_FALSE(prefetch_stream_a(pk, false, false, ta, 1152, 256, 224, 384));
  }
  pk.lean_stream_prefetch = true;
  CHECK_FALSE(prefetch_stream_a(pk, true, true, false, 288, 64, 294, 384));   // A read by rows
  CHECK_FALSE(prefetch_stream_a(pk, true, false, true, 288, 64, 294, 384));   // A^T packed
  CHECK(prefetch_stream_a(pk, true, true, true, 288, 64, 294, 384));          // 2 slivers, 441 KiB
  CHECK_FALSE(prefetch_stream_a(pk, true, true, true, 1000, 64, 1008, 384));  // 2 slivers, 1.5 MiB
  CHECK(prefetch_stream_a(pk, true, true, true, 2000, 32, 2002, 192));        // 1 sliver
  CHECK_FALSE(prefetch_stream_a(pk, true, true, true, 2048, 32, 224, 192));   // panels of 224 rows
  CHECK_FALSE(prefetch_stream_a(pk, true, true, true, 576, 96, 588, 256));    // 3 slivers
  CHECK_FALSE(prefetch_stream_a(pk, false, true, true, 288, 64, 294, 384));   // A does not stream
  // Where A^T is read in place and no panel is prefetched, a kernel with lean_stream_prefetch
  // prefetches the sliver after next instead (OneThreadPlan::prefetch_a_sliver) and keeps its K
  // blocks, where others take those of direct_at_wide_kc.
  pk.mr = 14, pk.kc = 384, pk.b_bytes = 512 * 1024, pk.direct_a = pk.direct_a_rows = true;
  std::vector<float> a(16);
  for (const bool lean : {false, true}) {
    CAPTURE(lean);
    pk.lean_stream_prefetch = lean;
    const auto tn = gemm_detail::one_thread_plan(pk, true, false, 1152, 256, 4608, a.data(), 1152);
    CHECK(tn.direct_a);
    CHECK(tn.prefetch_a == !lean);
    CHECK(tn.prefetch_a_sliver == lean);
    CHECK(tn.bl.kc == (lean ? 384 : gemm_detail::kDirectATWideKc));
    const auto nt = gemm_detail::one_thread_plan(pk, false, true, 1152, 256, 4608, a.data(), 4608 + 16);
    CHECK(nt.direct_a);  // A read in place by rows
    CHECK_FALSE(nt.prefetch_a_sliver);
    const auto two = gemm_detail::one_thread_plan(pk, true, false, 288, 64, 80000, a.data(), 288);
    CHECK(two.prefetch_a);  // 2 slivers, one panel within kLeanPrefetchMaxBytes: the panel's prefetch
    CHECK_FALSE(two.prefetch_a_sliver);
    const auto packed = gemm_detail::one_thread_plan(pk, true, false, 1152, 512, 4608, a.data(), 1152);
    CHECK_FALSE(packed.direct_a);  // 16 slivers: A packed
    CHECK_FALSE(packed.prefetch_a_sliver);
  }
  if (gemm_avx512_available()) {
    const bool full = !cpu_features().avx512_half_width;
    CHECK(gemm_avx512_detail::kernel().lean_stream_prefetch == full);
    CHECK(gemm_avx512_detail::kernel_8x48().lean_stream_prefetch == full);
  }
}

TEST_CASE("gemm: products that stream one operand past few slivers of the other (prefetching) equal the reference") {
  // {9, 700, 900}: few A slivers, several B blocks and K blocks (the next B block prefetched);
  // {600, 20, 1000}: one narrow B block and an A bigger than the cache (the next A panel and B block
  // prefetched; A^T read in place by the AVX-512 tiles, A by those and the AVX2 one, a partial last
  // sliver of 12 rows), also per thread when two threads split the rows; {2100, 20, 400}: such an A
  // with more rows than one panel, so the panels shrink to kPrefetchPanelSlivers slivers;
  // {600, 20, 1024}: A's rows 4 KiB apart (+ 4 bytes with gemm_avx512's padding of 1), packed for
  // the 14-row tile and read in place by the 8- and 6-row ones (rows_per_l1_set), and 12 bytes off a
  // multiple of 4 KiB (padding 3); {600, 20, 1100}: A^T with one B sliver and K >= kDirectATMinK,
  // in K blocks of kDirectATKc (direct_at_kc), read in place or (the rows split between two threads,
  // too small to stream) packed. In the NT form, K of 1000 and 400 runs as one block (tall_rows_kc).
  // {560, 150, 960}: A^T read in place past 5 B slivers (the last partial) in K blocks of 240
  // (direct_at_wide_kc), or on a kernel with lean_stream_prefetch in the kernel's K blocks with the
  // sliver after next prefetched (a_sliver_ahead).
  CHECK(gemm_detail::rows_per_l1_set(0, 4096, 14) == 14);
  CHECK(gemm_detail::rows_per_l1_set(0, 4100, 14) == 14);
  CHECK(gemm_detail::rows_per_l1_set(0, 4096 + 64, 14) == 1);
  CHECK(gemm_detail::rows_per_l1_set(0, 4096 * 4 + 2048, 14) == 7);
  CHECK(gemm_detail::rows_per_l1_set(32, 4108, 14) == 6);
  if (gemm_avx512_available()) {
    auto pk = gemm_avx512_detail::kernel();
    pk.lean_stream_prefetch = false;  // a lean kernel never shortens them (tested with the plan)
    CHECK(gemm_detail::direct_at_kc(pk, true, 20, 1100) == gemm_detail::kDirectATKc);
    CHECK(gemm_detail::direct_at_kc(pk, true, 20, 1000) == 0);
    CHECK(gemm_detail::direct_at_kc(pk, true, 33, 1100) == 0);
    CHECK(gemm_detail::direct_at_kc(pk, false, 20, 1100) == 0);
    CHECK(gemm_detail::direct_at_wide_kc(pk, true, true, 150, 384) == gemm_detail::kDirectATWideKc);
    CHECK(gemm_detail::direct_at_wide_kc(pk, true, true, 128, 384) == 0);  // 4 slivers
    CHECK(gemm_detail::direct_at_wide_kc(pk, false, true, 150, 384) == 0);  // A packed
    CHECK(gemm_detail::direct_at_wide_kc(pk, true, false, 150, 384) == 0);  // A read in place by rows
    CHECK(gemm_detail::direct_at_wide_kc(pk, true, true, 150, 200) == 0);  // K within the block
  }
#ifdef TINYCNN_HAVE_X86_GEMM
  {  // NT, A streamed past at most 2 B slivers, K in (kc, kTallRowsKc]: one K block (tall_rows_kc)
    const auto& pk = gemm_avx2_detail::kernel();
    CHECK(gemm_detail::tall_rows_kc(pk, false, true, 600, 20, 1000) == 1000);
    CHECK(gemm_detail::tall_rows_kc(pk, false, false, 600, 20, 1000) == 0);  // NN
    CHECK(gemm_detail::tall_rows_kc(pk, true, true, 600, 20, 1000) == 0);   // A^T
    CHECK(gemm_detail::tall_rows_kc(pk, false, true, 600, 33, 1000) == 0);  // 3 slivers
    CHECK(gemm_detail::tall_rows_kc(pk, false, true, 600, 20, 200) == 0);   // K within kc
    CHECK(gemm_detail::tall_rows_kc(pk, false, true, 600, 20, 1100) == 0);  // K past kTallRowsKc
    CHECK(gemm_detail::tall_rows_kc(pk, false, true, 100, 20, 1000) == 0);  // A of 400 KB
    CHECK(gemm_detail::tall_rows_kc(gemm_avx512_detail::kernel(), false, true, 600, 64, 1000) == 1000);
  }
#endif
  const int saved = get_num_threads();
  Rng rng(11);
  for (int threads : {1, std::max(2, saved)}) {
    set_num_threads(threads);
    for (int t = 0; t < 4; ++t)
      for (GemmCase s : {GemmCase{9, 700, 900}, GemmCase{600, 20, 1000}, GemmCase{2100, 20, 400},
                         GemmCase{600, 20, 1024}, GemmCase{600, 20, 1100}, GemmCase{560, 150, 960}}) {
        CAPTURE(threads);
        CAPTURE(t);
        CAPTURE(s.M);
        CHECK(compare_one<float>(&gemm<float>, t & 1, t & 2, s, 1.0f, 0.75f, 3, rng) == 0);
        if (gemm_avx2_available())
          CHECK(compare_one<float>(wrap<float>(&gemm_avx2), t & 1, t & 2, s, -0.5f, 0.0f, 0, rng) == 0);
        if (gemm_avx512_available()) {
          CHECK(compare_one<float>(wrap<float>(&gemm_avx512), t & 1, t & 2, s, 1.0f, 0.0f, 1, rng) == 0);
          CHECK(compare_one<float>(wrap<float>(&gemm_avx512_8x48), t & 1, t & 2, s, 1.0f, 1.0f, 0, rng) == 0);
        }
      }
  }
  set_num_threads(saved);
}

TEST_CASE("gemm: the AVX-512 tiles read A's rows in place with the bits of the packed sliver, every row count") {
  // Tile::ars (PackedKernel::direct_a_rows): the tile reads each row of its sliver from A itself, the
  // rows lda apart. Every row count of both tiles, rows closer than a cache line, a page apart (+4
  // bytes) and farther, against the same tile on the packed sliver; the rows past the count untouched.
  // K blocks within the 14 x 32 tile's C fetch lead (c_fetch_lead_rows: C fetched before the loop)
  // and past it (the loop in two parts, C fetched between them).
  if (!gemm_avx512_available()) {
    MESSAGE("AVX-512 not available: the in-place A tiles not tested");
    return;
  }
  static_assert(gemm_avx512_detail::c_fetch_lead_rows<14, 2>() == 48);
  Rng rng(15);
  for (const int64_t kc : {int64_t(37), int64_t(49), int64_t(100)})
    for (const auto* pk : {&gemm_avx512_detail::kernel(), &gemm_avx512_detail::kernel_8x48()})
      for (const int64_t lda : {int64_t(kc), int64_t(1025), int64_t(5000)}) {
        const int MR = pk->mr, NR = pk->nr;
        const auto A = random_vec<float>(static_cast<size_t>(lda * MR), rng);
        const auto B = random_vec<float>(static_cast<size_t>(kc * NR), rng);
        std::vector<float> ap(static_cast<size_t>(MR * kc)), bp(static_cast<size_t>(NR * kc));
        pk->pack_b(false, B.data(), NR, 0, NR, 0, kc, bp.data(), 0, 1);
        for (int m = 1; m <= MR; ++m) {
          pk->pack_a(false, A.data(), lda, 0, m, 0, kc, ap.data(), 0, 1);
          std::vector<float> packed(static_cast<size_t>(MR * NR), -3.0f), in_place = packed;
          gemm_detail::Tile<float> t;
          t.kc = kc;
          t.b = bp.data();
          t.ldc = NR;
          t.mr = m, t.nr = NR;
          t.alpha = 1.0f, t.beta = 0.5f;
          t.bias_row = t.bias_col = nullptr;
          t.relu = false, t.relu_max = 0.0f;
          t.a = ap.data(), t.c = packed.data();
          pk->tile(t);
          t.a = A.data(), t.ars = lda, t.c = in_place.data();
          pk->tile(t);
          CAPTURE(kc);
          CAPTURE(pk->mr);
          CAPTURE(lda);
          CAPTURE(m);
          CHECK(std::memcmp(packed.data(), in_place.data(), packed.size() * sizeof(float)) == 0);
          CHECK(packed[static_cast<size_t>(m * NR - 1)] != -3.0f);  // row m - 1 written
          if (m < MR) CHECK(packed[static_cast<size_t>(m * NR)] == -3.0f);  // row m not
        }
      }
}

TEST_CASE("gemm: a large C written once is streamed with the same bits as plain stores") {
  // C = X^T dY as a dense layer's weight gradient (TN, K = 32 within one K block, beta 0) with C of
  // 37.7 MB >= kStreamCBytes, 64-byte aligned: its full vectors go out as non-temporal stores. The
  // same product in 4 bands of rows (9.4 MB each: plain stores) gives the same bits; a few rows are
  // checked against the reference.
  static_assert(gemm_detail::kStreamCBytes == int64_t(32) << 20);
  const int64_t M = 9216, N = 1024, K = 32, band = M / 4;
  Rng rng(14);
  const auto X = random_vec<float>(static_cast<size_t>(K * M), rng), dY = random_vec<float>(static_cast<size_t>(K * N), rng);
  HostBuffer<float> whole_buf, bands_buf;
  float* whole = whole_buf.get(static_cast<size_t>(M * N));
  float* bands = bands_buf.get(static_cast<size_t>(M * N));
  REQUIRE(reinterpret_cast<uintptr_t>(whole) % 64 == 0);
  REQUIRE(M * N * int64_t(sizeof(float)) >= gemm_detail::kStreamCBytes);
  REQUIRE(band * N * int64_t(sizeof(float)) < gemm_detail::kStreamCBytes);
  std::fill(whole, whole + M * N, std::numeric_limits<float>::quiet_NaN());
  std::fill(bands, bands + M * N, std::numeric_limits<float>::quiet_NaN());
  gemm<float>(true, false, M, N, K, 1.0f, X.data(), M, dY.data(), N, 0.0f, whole, N);
  for (int64_t r = 0; r < M; r += band)
    gemm<float>(true, false, band, N, K, 1.0f, X.data() + r, M, dY.data(), N, 0.0f, bands + r * N, N);
  CHECK(std::memcmp(whole, bands, static_cast<size_t>(M * N) * sizeof(float)) == 0);
  for (int64_t r : {int64_t(0), int64_t(13), M / 2 + 5, M - 1}) {
    std::vector<float> want(static_cast<size_t>(N));
    gemm_ref<float>(true, false, 1, N, K, 1.0f, X.data() + r, M, dY.data(), N, 0.0f, want.data(), N);
    int64_t bad = 0;
    for (int64_t j = 0; j < N; ++j) bad += !(std::fabs(whole[r * N + j] - want[j]) <= tolerance<float>(K) * (1.0f + std::fabs(want[j])));
    CAPTURE(r);
    CHECK(bad == 0);
  }
}

TEST_CASE("gemm: NT products as dot products (variants 6, 6b) and the swapped form equal the reference") {
  // gemm_avx512_dot's and gemm_avx2_dot's own paths: row groups of 4 with 1-3 rows left over (M 1..9),
  // blocks of 4 (AVX2: 3) rows of B with 1-3 left (N), K not a multiple of 16 (8) and shorter, leading
  // dimensions padded, beta 0 over NaN and beta 0.75, one thread and two (B's blocks split between
  // them); the dispatcher's epilogue through it (under TINYCNN_MAX_ISA=avx2 the AVX2 tile's); and the
  // swapped form (C^T = B A^T) it replaced where both apply. The AVX-512 tile's blocks prefetch their
  // next for 9 x 301 x 517 (3 groups x K), not for 32 x 260 x 1024 unless AVX-512 runs on 256-bit units.
#ifdef TINYCNN_HAVE_X86_GEMM
  CHECK(gemm_dot_detail::Avx512Dot::prefetch(3, 517));
  CHECK(gemm_dot_detail::Avx512Dot::prefetch(8, 1024) == cpu_features().avx512_half_width);
#endif
  const int saved = get_num_threads();
  Rng rng(13);
  for (int threads : {1, std::max(2, saved)}) {
    set_num_threads(threads);
    for (GemmCase s : {GemmCase{1, 5, 1}, GemmCase{3, 9, 15}, GemmCase{4, 8, 16}, GemmCase{9, 301, 517},
                       GemmCase{32, 260, 1024}, GemmCase{6, 1030, 40}})
      for (float beta : {0.0f, 0.75f}) {
        CAPTURE(threads);
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(s.K);
        CAPTURE(beta);
        if (gemm_avx512_available())
          CHECK(compare_one<float>(wrap<float>(&gemm_avx512_dot), false, true, s, -0.5f, beta, 3, rng) == 0);
        if (gemm_avx2_available())
          CHECK(compare_one<float>(wrap<float>(&gemm_avx2_dot), false, true, s, -0.5f, beta, 3, rng) == 0);
        const GemmFn<float> swapped = [](bool, bool, int64_t M, int64_t N, int64_t K, float al, const float* A,
                                         int64_t lda, const float* B, int64_t ldb, float be, float* C, int64_t ldc) {
          gemm_detail::gemm_swapped_nt(M, N, K, al, A, lda, B, ldb, be, C, ldc, GemmEpilogue<float>{},
                                       [](auto... a) { gemm_packed<float>(a..., nullptr); });
        };
        CHECK(compare_one<float>(swapped, false, true, s, 1.0f, beta, 1, rng) == 0);
      }
    std::vector<float> bias(300);
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i % 37) - 0.2f;
    const GemmCase s{7, 290, 600};
    REQUIRE(gemm_detail::prefer_dot_nt(false, true, s.M, s.N, s.K));
    REQUIRE(gemm_detail::prefer_dot_nt_avx2(false, true, s.M, s.N, s.K));
    const GemmEpilogue<float> per_col{bias.data(), true, true, 0.5f};
    const GemmEpilogue<float> per_row{bias.data(), false, true};
    CHECK(compare_one<float>(nullptr, false, true, s, 1.0f, 0.0f, 2, rng, &per_col) == 0);
    CHECK(compare_one<float>(nullptr, false, true, s, 1.0f, 0.5f, 0, rng, &per_row) == 0);
  }
  set_num_threads(saved);
}

TEST_CASE("gemm: the swapped NT products' transposing store and the products of its second rule") {
  // store_transposed (AVX-512, 16 x 16 blocks with masked edges) against store_transposed_ref: C^T's
  // rows 1-40 floats long (a block and a part of one), column ranges starting and ending off the
  // 16-column blocks, beta 0 over NaN and 0.75, no epilogue, a bias per row, per column with ReLU, and
  // ReLU capped; columns outside the range stay untouched. Then products that
  // prefer_swapped_streamed_nt sends through the swapped form (on full-width AVX-512) against the
  // reference, one thread and two, with the epilogue too.
  Rng rng(29);
#ifdef TINYCNN_HAVE_X86_GEMM
  if (gemm_avx512_available()) {
    std::vector<float> bias(80);
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.05f * static_cast<float>(i % 23) - 0.5f;
    const GemmEpilogue<float> eps[] = {
        {}, {bias.data(), false, false}, {bias.data(), true, true}, {nullptr, false, true, 0.3f}};
    for (int64_t M : {1, 15, 16, 17, 40})
      for (int64_t N : {1, 16, 33, 70})
        for (float beta : {0.0f, 0.75f})
          for (const GemmEpilogue<float>& ep : eps) {
            const int64_t ldc = N + 3, j0 = N > 20 ? 3 : 0, j1 = N > 40 ? N - 5 : N;
            const auto ct = random_vec<float>(static_cast<size_t>(M * N), rng);
            auto c0 = random_vec<float>(static_cast<size_t>(M * ldc), rng);
            if (beta == 0.0f)
              for (int64_t i = 0; i < M; ++i)
                for (int64_t j = j0; j < j1; ++j) c0[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
            std::vector<float> want = c0, got = c0;
            gemm_detail::store_transposed_ref(ct.data(), M, beta, want.data(), ldc, ep, j0, j1);
            gemm_avx512_detail::store_transposed(ct.data(), M, beta, got.data(), ldc, ep, j0, j1);
            int64_t bad = 0;
            for (int64_t i = 0; i < M; ++i)
              for (int64_t j = 0; j < ldc; ++j) {
                const float w = want[i * ldc + j], g = got[i * ldc + j];
                if (j < j0 || j >= j1 ? !(g == c0[i * ldc + j]) : !(std::fabs(g - w) <= 1e-6f * (1 + std::fabs(w))))
                  ++bad;
              }
            CAPTURE(M);
            CAPTURE(N);
            CAPTURE(beta);
            CAPTURE(ep.relu);
            CHECK(bad == 0);
          }
  }
#endif
  const int saved = get_num_threads();
  std::vector<float> bias(400);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i % 41) - 0.2f;
  const GemmEpilogue<float> per_col{bias.data(), true, true, 0.5f};
  const GemmEpilogue<float> per_row{bias.data(), false, true};
  for (int threads : {1, std::max(2, saved)}) {
    set_num_threads(threads);
    for (GemmCase s : {GemmCase{70, 300, 1100}, GemmCase{200, 263, 1030}, GemmCase{256, 290, 1024}})
      for (float beta : {0.0f, 0.75f}) {
        REQUIRE(gemm_detail::prefer_swapped_streamed_nt(false, true, s.M, s.N, s.K));
        CAPTURE(threads);
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(beta);
        CHECK(compare_one<float>(&gemm<float>, false, true, s, -0.5f, beta, 3, rng) == 0);
        CHECK(compare_one<float>(nullptr, false, true, s, 1.0f, beta, 2, rng, &per_col) == 0);
        CHECK(compare_one<float>(nullptr, false, true, s, 1.0f, beta, 0, rng, &per_row) == 0);
      }
  }
  set_num_threads(saved);
}

TEST_CASE("gemm: products with few A slivers read B in place (8x48 and AVX2 tiles) and equal the reference") {
  // run_packed reads op(B) = B in place when a panel has at most PackedKernel::direct_b_slivers A
  // slivers (the 8x48 tile 4, the AVX2 6x16 tile 3 where N >= 256; one thread, or per thread under the
  // independent split): full slivers from B with its row stride, a partial last sliver packed. Shapes:
  // exact slivers (8 x 96 x 64), a partial sliver and several K blocks (20 x 100 x 900; 3 full AVX2
  // slivers: 18 x 300 x 900), 4 slivers (32 x 200 x 500), 5 slivers (40 x 200 x 500: packed), a column split
  // between two threads (32 x 1100 x 300), and a wide B whose K blocks shrink to kDirectBMinKc rows
  // (24 x 1040 x 1000: 16 blocks of 63; kDirectBBlockBytes; 13 x 1040 x 1000: 3 AVX2 slivers, the last of
  // one row); leading dimensions padded so rows start unaligned; beta 0 over NaN, beta 0.75; the epilogue.
  static_assert(gemm_detail::kDirectBMaxSlivers == 4 && gemm_detail::kDirectBMaxSliversAvx2 == 3);
#ifdef TINYCNN_HAVE_X86_GEMM
  const auto& avx2 = gemm_avx2_detail::kernel();
  CHECK(gemm_detail::direct_b_for(avx2, 3, 256));
  CHECK(!gemm_detail::direct_b_for(avx2, 4, 256));
  CHECK(!gemm_detail::direct_b_for(avx2, 3, 255));
  CHECK(gemm_detail::direct_b_for(gemm_avx512_detail::kernel_8x48(), 4, 1));
  CHECK(!gemm_detail::direct_b_for(gemm_avx512_detail::kernel(), 1, 1000));
#endif
  const int saved = get_num_threads();
  Rng rng(12);
  for (int threads : {1, std::max(2, saved)}) {
    set_num_threads(threads);
    for (GemmCase s : {GemmCase{8, 96, 64}, GemmCase{20, 100, 900}, GemmCase{18, 300, 900}, GemmCase{32, 200, 500},
                       GemmCase{40, 200, 500}, GemmCase{32, 1100, 300}, GemmCase{24, 1040, 1000},
                       GemmCase{13, 1040, 1000}})
      for (int t = 0; t < 4; ++t) {
        CAPTURE(threads);
        CAPTURE(t);
        CAPTURE(s.M);
        CAPTURE(s.N);
        if (gemm_avx512_available()) {
          CHECK(compare_one<float>(wrap<float>(&gemm_avx512_8x48), t & 1, t & 2, s, 1.0f, 0.0f, 3, rng) == 0);
          CHECK(compare_one<float>(wrap<float>(&gemm_avx512_8x48), t & 1, t & 2, s, -0.5f, 0.75f, 0, rng) == 0);
        }
        if (gemm_avx2_available()) {
          CHECK(compare_one<float>(wrap<float>(&gemm_avx2), t & 1, t & 2, s, 1.0f, 0.0f, 3, rng) == 0);
          CHECK(compare_one<float>(wrap<float>(&gemm_avx2), t & 1, t & 2, s, -0.5f, 0.75f, 0, rng) == 0);
        }
        CHECK(compare_one<float>(&gemm<float>, t & 1, t & 2, s, 1.0f, 0.0f, 1, rng) == 0);
      }
    std::vector<float> bias(1100);
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i % 37) - 0.2f;
    const GemmEpilogue<float> per_col{bias.data(), true, true};
    const GemmEpilogue<float> per_row{bias.data(), false, true};
    for (GemmCase s : {GemmCase{20, 100, 900}, GemmCase{32, 1100, 300}}) {
      CHECK(compare_one<float>(nullptr, false, false, s, 1.0f, 0.0f, 2, rng, &per_col) == 0);
      CHECK(compare_one<float>(nullptr, false, false, s, 1.0f, 0.5f, 0, rng, &per_row) == 0);
    }
  }
  set_num_threads(saved);
}

TEST_CASE("gemm: B packing puts every element of op(B) where the sliver layout says, zeros past n") {
  // The definition: sliver s, row k, lane c holds op(B)[k0 + k][j0 + s * NR + c], or 0 past column n.
  // Sliver ranges that start past 0 and end before the last sliver are packed too (threads split them).
  constexpr int NR = 16;
  Rng rng(6);
  const int64_t ld = 131;
  const auto src = random_vec<float>(static_cast<size_t>(ld * 140), rng);
  const int64_t cases[][5] = {{40, 0, 9, 0, 3}, {40, 3, 17, 1, 3}, {48, 2, 5, 1, 2}, {7, 1, 4, 0, 1}, {100, 5, 33, 2, 7}};
  for (const auto& c : cases)
    for (int trans = 0; trans < 2; ++trans) {
      const int64_t n = c[0], k0 = c[1], kc = c[2], s0 = c[3], s1 = c[4], j0 = 3;
      std::vector<float> d(static_cast<size_t>(s1 * NR * kc), -7.0f);
      gemm_detail::pack_b_impl<float, NR>(trans, src.data(), ld, j0, n, k0, kc, d.data(), s0, s1);
      int bad = 0;
      for (int64_t s = 0; s < s1; ++s)
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t l = 0; l < NR; ++l) {
            const int64_t col = s * NR + l, r = k0 + k, j = j0 + col;
            const float want = s < s0 ? -7.0f : col >= n ? 0.0f : trans ? src[j * ld + r] : src[r * ld + j];
            bad += d[(s * kc + k) * NR + l] != want;
          }
      CAPTURE(n);
      CAPTURE(trans);
      CAPTURE(s0);
      CHECK(bad == 0);
    }
}

TEST_CASE("gemm: the AVX2 kernel's vector packing equals the scalar packing bitwise") {
  if (!gemm_avx2_available()) {
    MESSAGE("AVX2+FMA not available: the AVX2 packing not tested");
    return;
  }
  constexpr int MR = gemm_avx2_detail::MR, NR = gemm_avx2_detail::NR;
  Rng rng(5);
  // Leading dimensions of the source (room for every (row, k) below): rows closer than a 4 KiB page,
  // and farther (a non-transposed B then takes the row-group order).
  for (const int64_t ld : {int64_t(101), int64_t(1031)}) {
    const auto src = random_vec<float>(static_cast<size_t>(ld * 120), rng);
    // {rows or columns of the panel, k0, kc}: full and partial slivers, kc below, at and past 8, k tails.
    const int64_t cases[][3] = {{6, 0, 8}, {13, 3, 17}, {32, 5, 64}, {35, 1, 7}, {16, 0, 1}, {48, 9, 90}};
    for (const auto& c : cases)
      for (int trans = 0; trans < 2; ++trans) {
        const int64_t n = c[0], k0 = c[1], kc = c[2];
        const int64_t sa = (n + MR - 1) / MR, sb = (n + NR - 1) / NR;
        std::vector<float> a_vec(static_cast<size_t>(sa * MR * kc), -7.0f), a_ref = a_vec;
        std::vector<float> b_vec(static_cast<size_t>(sb * NR * kc), -7.0f), b_ref = b_vec;
        // A: rows [2, 2 + n) of op(A); B: columns [2, 2 + n) of op(B). Slivers packed from 1 on, then 0.
        gemm_avx2_detail::pack_a(trans, src.data(), ld, 2, n, k0, kc, a_vec.data(), 1, sa);
        gemm_avx2_detail::pack_a(trans, src.data(), ld, 2, n, k0, kc, a_vec.data(), 0, 1);
        gemm_detail::pack_a_impl<float, MR>(trans, src.data(), ld, 2, n, k0, kc, a_ref.data(), 0, sa);
        gemm_avx2_detail::pack_b(trans, src.data(), ld, 2, n, k0, kc, b_vec.data(), 1, sb);
        gemm_avx2_detail::pack_b(trans, src.data(), ld, 2, n, k0, kc, b_vec.data(), 0, 1);
        gemm_detail::pack_b_impl<float, NR>(trans, src.data(), ld, 2, n, k0, kc, b_ref.data(), 0, sb);
        CAPTURE(n);
        CAPTURE(k0);
        CAPTURE(kc);
        CAPTURE(trans);
        CAPTURE(ld);
        CHECK(std::equal(a_vec.begin(), a_vec.end(), a_ref.begin()));
        CHECK(std::equal(b_vec.begin(), b_vec.end(), b_ref.begin()));
      }
  }
}

TEST_CASE("gemm: the independent split (disjoint column or row ranges per thread) gives the one-thread result") {
  using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t, const GemmEpilogue<float>*);
  struct Variant {
    const char* name;
    const gemm_detail::PackedKernel<float>* pk;
    GemmFn fn;
  };
  std::vector<Variant> variants;
#ifdef TINYCNN_HAVE_X86_GEMM
  if (gemm_avx2_available()) variants.push_back({"avx2", &gemm_avx2_detail::kernel(), &gemm_avx2});
  if (gemm_avx512_available()) {
    variants.push_back({"avx512", &gemm_avx512_detail::kernel(), &gemm_avx512});
    variants.push_back({"avx512_8x48", &gemm_avx512_detail::kernel_8x48(), &gemm_avx512_8x48});
  }
#endif
  if (variants.empty()) MESSAGE("neither AVX2+FMA nor AVX-512 available: the independent split not tested");
  const int saved = get_num_threads();
  Rng rng(11);
  for (const Variant& v : variants) {
    CAPTURE(v.name);
    const auto& pk = *v.pk;
    REQUIRE(pk.split_independent);
    // Wide products split by columns, narrow and tall ones by rows, small ones not at all; a wide C
    // less than 3 times as wide as tall by rows unless op(B) = B^T.
    for (bool tb : {false, true}) {
      CHECK(gemm_detail::split_axis(pk, 2, tb, 128, 20000) == 1);
      CHECK(gemm_detail::split_axis(pk, 2, tb, 1152, 256) == 2);
      CHECK(gemm_detail::split_axis(pk, 2, tb, 100, 300) == 0);
      CHECK(gemm_detail::split_axis(pk, 1, tb, 1024, 1024) == 0);
      CHECK(gemm_detail::split_axis(pk, 2, tb, 1024, 1024) == (tb ? 1 : 2));
      CHECK(gemm_detail::split_axis(pk, 2, tb, 1024, 3071) == (tb ? 1 : 2));
      CHECK(gemm_detail::split_axis(pk, 2, tb, 1024, 3072) == 1);
      CHECK(gemm_detail::split_axis(pk, 2, tb, 36864, 1024) == (tb ? 1 : 2));
    }
    // {M, N, K}: by columns with a ragged last range, by rows with a ragged last range, a C wider than
    // the column threshold but taller than wide, and one wider than tall by less than 3 times (rows,
    // or columns for B^T).
    // Each twice: with the CPUs' speeds unknown (equal ranges) and set unequal (SplitSpeeds: ranges in
    // proportion), bitwise the one-thread result either way.
    const std::vector<GemmCase> shapes = {{37, 600, 300}, {400, 100, 300}, {600, 520, 16}, {300, 830, 40}};
    for (int skew = 0; skew < 2; ++skew) {
      for (const GemmCase& s : shapes) {
        CHECK(gemm_detail::split_axis(pk, 2, false, s.M, s.N) != 0);
        const auto bias = random_vec<float>(static_cast<size_t>(std::max(s.M, s.N)), rng);
        for (int t = 0; t < 4; ++t)
          for (int e = 0; e < 4; ++e)
            for (float beta : {0.0f, 0.75f}) {
              const bool ta = t & 1, tb = t & 2;
              const SplitOperands o = split_operands(s, ta, tb, beta, rng);
              GemmEpilogue<float> ep;
              ep.bias = e ? bias.data() : nullptr;
              ep.bias_per_column = e == 2;
              ep.relu = e == 3;
              std::vector<float> one = o.C0, two = o.C0, want = o.C0;
              set_num_threads(1);
              v.fn(ta, tb, s.M, s.N, s.K, 1.25f, o.A.data(), o.lda, o.B.data(), o.ldb, beta, one.data(), o.ldc, &ep);
              set_num_threads(2);
              set_speeds(skew);
              v.fn(ta, tb, s.M, s.N, s.K, 1.25f, o.A.data(), o.lda, o.B.data(), o.ldb, beta, two.data(), o.ldc, &ep);
              gemm_ref<float>(ta, tb, s.M, s.N, s.K, 1.25f, o.A.data(), o.lda, o.B.data(), o.ldb, beta, want.data(),
                              o.ldc);
              const auto [differ, bad] = split_mismatches(s, o, one, two, want, &ep);
              CAPTURE(s.M);
              CAPTURE(s.N);
              CAPTURE(t);
              CAPTURE(e);
              CAPTURE(beta);
              CAPTURE(skew);
              CHECK(differ == 0);
              CHECK(bad == 0);
            }
      }
    }
    set_speeds(false);
    // A range blocks K as the whole product does: M x 30 x 520 NT takes one K block of 520 on one
    // thread (tall_rows_kc: A more than 4 B blocks), where a range of half the rows alone would take two.
    const int64_t N = 30, K = 520, M = 4 * pk.b_bytes / (K * 4) * 3 / 2;
    const auto A = random_vec<float>(static_cast<size_t>(M * K), rng);
    const auto B = random_vec<float>(static_cast<size_t>(N * K), rng);
    if (N <= 2 * pk.nr) {
      CHECK(gemm_detail::one_thread_plan(pk, false, true, M, N, K, A.data(), K).bl.kc == K);
      CHECK(gemm_detail::one_thread_plan(pk, false, true, M / 2, N, K, A.data(), K).bl.kc < K);
    }
    CHECK(gemm_detail::split_axis(pk, 2, true, M, N) == 2);
    std::vector<float> one(static_cast<size_t>(M * N)), two(one.size());
    set_num_threads(1);
    v.fn(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, one.data(), N, nullptr);
    set_num_threads(2);
    for (int skew = 0; skew < 2; ++skew) {
      set_speeds(skew);
      v.fn(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, two.data(), N, nullptr);
      CAPTURE(skew);
      CHECK(one == two);
    }
    set_speeds(false);
  }
  set_num_threads(saved);
}

TEST_CASE("gemm split: per-CPU speeds weigh the ranges") {
  using gemm_detail::SplitSpeeds;
  SplitSpeeds s;
  CHECK(s.weight(0) == 1.0f);  // unknown
  CHECK(s.weight(-1) == 1.0f);
  CHECK(s.weight(SplitSpeeds::kCpus) == 1.0f);
  // thread 0 on CPU 2 did 100 units in 1 s, thread 1 on CPU 5 100 in 4 s: relative speeds 1.6 and
  // 0.4, each averaged with the previous value (1 where unknown)
  const int cpu[2] = {2, 5};
  const double work[2] = {100, 100}, secs[2] = {1, 4};
  s.update(2, cpu, work, secs);
  CHECK(s.weight(2) == doctest::Approx(0.8 + 0.2 * 1.6).epsilon(1e-6));
  CHECK(s.weight(5) == doctest::Approx(0.8 + 0.2 * 0.4).epsilon(1e-6));
  s.set(2, 1.02f);  // within the dead band
  CHECK(s.weight(2) == 1.0f);
  s.set(2, 0.98f);
  CHECK(s.weight(2) == 1.0f);
  s.set(2, 1.05f);  // 5% counts
  CHECK(s.weight(2) == doctest::Approx(1.05f));
  s.set(2, 0.95f);
  CHECK(s.weight(2) == doctest::Approx(0.95f));
  s.set(2, 3.0f);
  CHECK(s.weight(2) == SplitSpeeds::kMax);
  s.set(2, 0.1f);
  CHECK(s.weight(2) == SplitSpeeds::kMin);
  // nothing learnt from two threads on one CPU, or from a thread without time
  const int same[2] = {7, 7};
  s.update(2, same, work, secs);
  CHECK(s.weight(7) == 1.0f);
  const double none[2] = {1, 0};
  s.update(2, cpu, work, none);
  CHECK(s.weight(5) == doctest::Approx(0.8 + 0.2 * 0.4).epsilon(1e-6));

  // Per product: a product first seen starts from the average over all products; its splits move
  // its own speeds and the average, not another product's.
  static gemm_detail::SplitSpeedTable table;  // static: 64 KiB
  const uint64_t p = gemm_detail::split_key(576, 128, 20000, false, true, 14, 32);
  const uint64_t q = gemm_detail::split_key(576, 128, 20000, true, false, 14, 32);
  CHECK(p != q);
  CHECK(p != 0);
  using Table = gemm_detail::SplitSpeedTable;
  CHECK(Table::slot(p) != Table::slot(q));  // no collision
  // The keys of different shapes spread over the slots (all of them odd, so the slot skips bit 0:
  // by key % kSlots only the odd half would be used). 256 shapes, a fixed hash: 63 of the 64 slots.
  std::vector<int> used(Table::kSlots);
  for (int64_t m = 1; m <= 4 * Table::kSlots; ++m)
    used[Table::slot(gemm_detail::split_key(m, 128, 4608, false, true, 14, 32))] = 1;
  CHECK(std::count(used.begin(), used.end(), 1) > Table::kSlots * 7 / 8);
  table.base().set(2, 1.3f);
  CHECK(table.at(p).weight(2) == doctest::Approx(1.3f));
  table.update(table.at(p), 2, cpu, work, secs);
  CHECK(table.at(p).weight(2) == doctest::Approx(0.8 * 1.3 + 0.2 * 1.6).epsilon(1e-6));
  CHECK(table.base().weight(2) == doctest::Approx(0.8 * 1.3 + 0.2 * 1.6).epsilon(1e-6));
  table.base().set(2, 0.7f);
  CHECK(table.at(q).weight(2) == doctest::Approx(0.7f));  // new product: from the average
  CHECK(table.at(p).weight(2) == doctest::Approx(0.8 * 1.3 + 0.2 * 1.6).epsilon(1e-6));  // its own
  // A slot taken over by another product restarts from the average.
  uint64_t r = p + 1;
  while (Table::slot(r) != Table::slot(p)) ++r;
  CHECK(table.at(r).weight(2) == doctest::Approx(0.7f));
  CHECK(table.at(p).weight(2) == doctest::Approx(0.7f));
  table.forget_products();
  table.base().set(2, 1.2f);
  CHECK(table.at(q).weight(2) == doctest::Approx(1.2f));
}

TEST_CASE("gemm split: ranges are cut at the tile multiple nearest to each thread's share") {
  using gemm_detail::weighted_cut;
  // 1152 rows, 14-row tiles (82 full and one of 4): equal weights cut at 574 (41 tiles; 576 / 14 =
  // 41.1), not at 42 of the 83 tiles (588 rows), which gave the first thread 24 rows more.
  const double even[2] = {1.0, 1.0};
  CHECK(weighted_cut(even, 2, 0, 1152, 14) == 0);
  CHECK(weighted_cut(even, 2, 1, 1152, 14) == 574);
  CHECK(weighted_cut(even, 2, 2, 1152, 14) == 1152);
  CHECK(weighted_cut(even, 2, 1, 1024, 8) == 512);
  // weighted: 1152 * 1.1 / 2 = 633.6 rows, 45.3 tiles -> 630
  const double skew[2] = {1.1, 0.9};
  CHECK(weighted_cut(skew, 2, 1, 1152, 14) == 630);
  // Any weights and thread counts: the cuts rise, start at tile multiples (so every tile but the
  // extent's last is full) and tile the extent exactly; units of 1 (run_ksplit's pieces) too.
  Rng rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int nth = 2 + trial % 7;
    double weight[8];
    for (int t = 0; t < nth; ++t) weight[t] = rng.uniform(0.6, 1.6);
    const int64_t unit = trial % 3 == 0 ? 1 : trial % 3 == 1 ? 14 : 32;
    const int64_t extent = 1 + static_cast<int64_t>(rng.below(5000));
    CAPTURE(trial);
    CHECK(weighted_cut(weight, nth, nth, extent, unit) == extent);
    int64_t prev = 0;
    for (int t = 1; t < nth; ++t) {
      const int64_t c = weighted_cut(weight, nth, t, extent, unit);
      CHECK(c >= prev);
      CHECK(c <= extent);
      CHECK((c % unit == 0 || c == extent));
      prev = c;
    }
  }
}

TEST_CASE("gemm K-split: ranges weighed by the CPUs' speeds give the same bits as equal ones") {
  std::vector<std::pair<const char*, gemm_detail::PackedKernel<float>>> kernels = {
      {"portable", gemm_detail::portable_kernel<float>()}};
#ifdef TINYCNN_HAVE_X86_GEMM
  if (gemm_avx2_available()) kernels.push_back({"avx2", gemm_avx2_detail::kernel()});
  if (gemm_avx512_available()) {
    kernels.push_back({"avx512", gemm_avx512_detail::kernel()});
    kernels.back().second.flip_wide_nt = false;
    kernels.push_back({"avx512 flip_wide_nt", gemm_detail::PackedKernel<float>(gemm_avx512_detail::kernel())});
    kernels.back().second.flip_wide_nt = true;
  }
#endif
  Rng rng(19);
  // {M, N, K}: each K range's product cut by rows (M the longer side), by columns, computed transposed
  // (tile fill: {20, 40} on 14 x 32 tiles), and a wide NT C (transposed with flip_wide_nt).
  const std::vector<GemmCase> shapes = {{200, 40, 2100}, {40, 300, 2100}, {20, 40, 3100}, {250, 530, 2200}};
  const auto bias = random_vec<float>(530, rng);
  GemmEpilogue<float> ep;
  ep.bias = bias.data();
  ep.bias_per_column = true;
  ep.relu = true;
  for (const auto& kernel : kernels)  // not a structured binding: CAPTURE's lambda (clang, C++17)
    for (int threads : {2, 3})
      for (const GemmCase& s : shapes)
        for (int t = 0; t < 4; ++t)
          for (float beta : {0.0f, 0.75f}) {
            const bool ta = t & 1, tb = t & 2;
            const SplitOperands o = split_operands(s, ta, tb, beta, rng);
            const GemmEpilogue<float>* e = beta == 0.0f ? nullptr : &ep;
            std::vector<float> even = o.C0, skewed = o.C0, want = o.C0;
            for (int skew = 0; skew < 2; ++skew) {
              set_speeds(skew);
              gemm_detail::run_ksplit<float>(kernel.second, threads, ta, tb, s.M, s.N, s.K, 0.5f, o.A.data(), o.lda,
                                             o.B.data(), o.ldb, beta, (skew ? skewed : even).data(), o.ldc, e);
            }
            gemm_ref<float>(ta, tb, s.M, s.N, s.K, 0.5f, o.A.data(), o.lda, o.B.data(), o.ldb, beta, want.data(),
                            o.ldc);
            const auto [differ, bad] = split_mismatches(s, o, even, skewed, want, e);
            CAPTURE(std::string(kernel.first));
            CAPTURE(threads);
            CAPTURE(s.M);
            CAPTURE(s.N);
            CAPTURE(t);
            CAPTURE(beta);
            CHECK(differ == 0);
            CHECK(bad == 0);
          }
  set_speeds(false);
}

TEST_CASE("gemm_ex: fused bias (per row, per column) and ReLU") {
  Rng rng(7);
  const std::vector<GemmCase> shapes = {{1, 1, 1},   {7, 5, 3},      {17, 33, 65}, {129, 31, 257},
                                        {5, 3, 0},   {30, 70, 400},  {6, 400, 520}};  // the last: swapped NT
  for (const GemmCase& s : shapes) {
    const auto bias_f = random_vec<float>(static_cast<size_t>(std::max(s.M, s.N) + 1), rng);
    const auto bias_d = random_vec<double>(static_cast<size_t>(std::max(s.M, s.N) + 1), rng);
    for (int e = 0; e < 6; ++e) {
      GemmEpilogue<float> ef;
      GemmEpilogue<double> ed;
      ef.bias = e == 0 || e == 2 || e == 4 || e == 5 ? bias_f.data() : nullptr;
      ed.bias = ef.bias ? bias_d.data() : nullptr;
      ef.bias_per_column = ed.bias_per_column = e == 2 || e == 4;
      ef.relu = ed.relu = e >= 3;
      ef.relu_max = e == 5 ? 0.5f : 0.0f;  // capped ReLU (ReLU6's kind)
      ed.relu_max = e == 5 ? 0.5 : 0.0;
      for (int t = 0; t < 4; ++t)
        for (float beta : {0.0f, 0.5f}) {
          CAPTURE(s.M);
          CAPTURE(s.N);
          CAPTURE(s.K);
          CAPTURE(e);
          CAPTURE(t);
          CAPTURE(beta);
          CHECK(compare_one<float>({}, t & 1, t & 2, s, 1.5f, beta, 2, rng, &ef) == 0);
          CHECK(compare_one<double>({}, t & 1, t & 2, s, 1.5, beta, 0, rng, &ed) == 0);
        }
    }
  }
  // Every float variant's own epilogue path (the dispatcher picks only one of them).
  using ExFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                        float, float*, int64_t, const GemmEpilogue<float>*);
  std::vector<ExFn> fns = {&gemm_packed<float>};
  if (gemm_avx2_available()) fns.push_back(&gemm_avx2);
  if (gemm_avx512_available()) {
    fns.push_back(&gemm_avx512);
    fns.push_back(&gemm_avx512_8x48);
  }
  const int64_t M = 45, N = 77, K = 300, ldc = N + 3;
  const auto A = random_vec<float>(M * K, rng), B = random_vec<float>(K * N, rng);
  const auto bias = random_vec<float>(N, rng);
  std::vector<float> prod(M * ldc, 0.0f);
  gemm_ref<float>(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, prod.data(), ldc);
  for (float cap : {0.0f, 2.0f})  // plain ReLU, and capped (ReLU6's kind: the products reach past 2)
    for (ExFn f : fns) {
      std::vector<float> got(M * ldc, 0.0f);
      GemmEpilogue<float> ep;
      ep.bias = bias.data();
      ep.bias_per_column = true;
      ep.relu = true;
      ep.relu_max = cap;
      f(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, got.data(), ldc, &ep);
      int64_t bad = 0, capped = 0;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          float w = std::max(0.0f, prod[i * ldc + j] + bias[j]);
          if (cap > 0.0f && w >= cap) {
            w = cap;
            ++capped;
          }
          if (!(std::fabs(got[i * ldc + j] - w) <= 1e-3f)) ++bad;
        }
      CAPTURE(cap);
      CHECK(bad == 0);
      CHECK((cap == 0.0f) == (capped == 0));
    }
}

namespace {
// Packs B [K, N] (row-major, ldb) into gemm_nn_prepacked_b's layout for nr-column slivers.
template <class T>
std::vector<T> pack_b_for_test(const std::vector<T>& B, int64_t K, int64_t N, int64_t ldb, int64_t nr) {
  const int64_t slivers = (N + nr - 1) / nr;
  std::vector<T> p(static_cast<size_t>(std::max<int64_t>(1, slivers * K * nr)), std::numeric_limits<T>::quiet_NaN());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) p[static_cast<size_t>((j / nr) * K * nr + k * nr + j % nr)] = B[k * ldb + j];
  return p;  // columns past N stay NaN: they must never reach C
}

template <class T>
void check_prepacked_b(int64_t M, int64_t N, int64_t K, T beta, Rng& rng) {
  const int64_t lda = K + 1, ldb = N + 2, ldc = N + 3;
  const auto A = random_vec<T>(static_cast<size_t>(std::max<int64_t>(1, M * lda)), rng);
  const auto B = random_vec<T>(static_cast<size_t>(std::max<int64_t>(1, K * ldb)), rng);
  auto C = random_vec<T>(static_cast<size_t>(std::max<int64_t>(1, M * ldc)), rng);
  auto C_ref = C;
  const int64_t nr = gemm_prepacked_b_nr<T>(K);
  const auto Bp = pack_b_for_test(B, K, N, ldb, nr);
  auto C_ab = C;
  gemm_nn_prepacked_b<T>(M, N, K, T(0.75), A.data(), lda, Bp.data(), beta, C.data(), ldc);
  // A packed too: row slivers of mr, the rows past M NaN (they must never reach C either)
  const int64_t mr = gemm_prepacked_a_mr<T>(K);
  std::vector<T> Ap(static_cast<size_t>(std::max<int64_t>(1, (M + mr - 1) / mr * K * mr)),
                    std::numeric_limits<T>::quiet_NaN());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) Ap[static_cast<size_t>((i / mr) * K * mr + k * mr + i % mr)] = A[i * lda + k];
  gemm_nn_prepacked_ab<T>(M, N, K, T(0.75), Ap.data(), Bp.data(), beta, C_ab.data(), ldc);
  gemm_ex<T>(false, false, M, N, K, T(0.75), A.data(), lda, B.data(), ldb, beta, C_ref.data(), ldc, GemmEpilogue<T>{});
  int64_t differ = 0, differ_ab = 0;
  for (size_t i = 0; i < C.size(); ++i) differ += !(C[i] == C_ref[i]);  // bitwise the same values
  for (size_t i = 0; i < C.size(); ++i) differ_ab += !(C_ab[i] == C_ref[i]);
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  CAPTURE(nr);
  CAPTURE(mr);
  CHECK(differ == 0);
  CHECK(differ_ab == 0);
}
}  // namespace

TEST_CASE("gemm_nn_prepacked_b/_ab: B (and A) in the kernel's packed layouts give gemm_ex's result bitwise (one thread)") {
  // One thread so that gemm_ex takes the same blocking (no K-split, no thread split). Shapes across
  // the kernels' slivers and blocks: K below and above the 8x48 tile's K >= 64 rule, K past one
  // K-block (384), N past one sliver and one N block, M past one A panel of the 14x32 tile (14 * 144).
  const int saved = get_num_threads();
  set_num_threads(1);
  Rng rng(5);
  for (GemmCase s : {GemmCase{13, 101, 70}, {13, 101, 20}, {8, 48, 64}, {1, 1, 1}, {30, 700, 800}, {2100, 50, 100},
                     {0, 5, 5}, {5, 0, 5}, {5, 5, 0}})
    for (float beta : {0.0f, 1.0f}) check_prepacked_b<float>(s.M, s.N, s.K, beta, rng);
  for (GemmCase s : {GemmCase{13, 101, 70}, {30, 90, 500}}) check_prepacked_b<double>(s.M, s.N, s.K, 0.5, rng);
  set_num_threads(saved);
}

TEST_CASE("gemm: random shapes, forms, strides, scalars, epilogues and thread counts equal a float64 reference") {
  // The fixed-shape cases above aim at one path each; the dispatcher combines them (K-split, flipped
  // partials, row and column splits, streamed and in-place operands, dot products, the swapped NT
  // form), so random products drawn around each path's thresholds check the combinations, through
  // gemm_ex and through each variant. Error bound: float rounding over the sum of |a b| terms.
  const int saved = get_num_threads();
  Rng rng(2026);
  const auto pick = [&](int64_t lo, int64_t hi) {  // log-uniform in [lo, hi]
    return std::min<int64_t>(hi, static_cast<int64_t>(std::exp(rng.uniform(std::log(double(lo)), std::log(hi + 1.0)))));
  };
  int64_t failed = 0;
  for (int it = 0; it < 160; ++it) {
    const bool ta = rng.uniform() < 0.5, tb = rng.uniform() < 0.5;
    int64_t M, N, K;
    switch (it % 6) {
      case 0: M = pick(1, 300), N = pick(1, 300), K = pick(1, 500); break;
      case 1: M = pick(1, 80), N = pick(1, 300), K = pick(1500, 9000); break;     // K-split, flipped or not
      case 2: M = pick(100, 900), N = pick(1, 260), K = pick(400, 2500); break;  // A streamed past B's slivers
      case 3: M = pick(1, 40), N = pick(100, 1200), K = pick(300, 4000); break;  // B in place, dot products
      case 4: M = pick(1, 70), N = pick(1, 3000), K = pick(400, 1500); break;    // dot products, swapped NT
      default: M = pick(150, 900), N = pick(150, 900), K = pick(1, 70); break;   // row / column splits
    }
    while (M * N * K > 16000000) {  // bounds the reference's time; a long K is what most paths need
      if (K >= 8 * std::max(M, N))
        K /= 2;
      else if (M >= N)
        M = (M + 1) / 2;
      else
        N = (N + 1) / 2;
    }
    const int64_t pad = rng.uniform() < 0.6 ? 0 : 1 + static_cast<int64_t>(rng.uniform() * 17);
    const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + (rng.uniform() < 0.5 ? 0 : 3);
    const float alpha = rng.uniform() < 0.5 ? 1.0f : -0.75f, beta = rng.uniform() < 0.4 ? 0.0f : 0.5f;
    const int threads = rng.uniform() < 0.5 ? 1 : std::max(2, saved);
    const int variant = static_cast<int>(rng.uniform() * 4);  // gemm_ex, gemm_avx512(_8x48), gemm_avx2
    const int epi = variant == 0 ? static_cast<int>(rng.uniform() * 4) : 0;
    const auto A = random_vec<float>(static_cast<size_t>(std::max<int64_t>(1, (ta ? K : M) * lda)), rng);
    const auto B = random_vec<float>(static_cast<size_t>(std::max<int64_t>(1, (tb ? N : K) * ldb)), rng);
    const auto bias = random_vec<float>(static_cast<size_t>(std::max(M, N)), rng);
    auto C0 = random_vec<float>(static_cast<size_t>(std::max<int64_t>(1, M * ldc)), rng);
    if (beta == 0.0f)  // not read: NaN must not come through
      for (int64_t i = 0; i < M; ++i) std::fill_n(C0.begin() + i * ldc, N, std::numeric_limits<float>::quiet_NaN());
    auto C = C0;
    GemmEpilogue<float> ep;
    ep.bias = epi == 1 || epi == 2 ? bias.data() : nullptr;
    ep.bias_per_column = epi == 2;
    ep.relu = epi >= 2;
    ep.relu_max = epi == 3 ? 0.5f : 0.0f;
    set_num_threads(threads);
    if (variant == 0)
      gemm_ex<float>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, ep);
    else if (variant == 1 && gemm_avx512_available())
      gemm_avx512(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    else if (variant == 2 && gemm_avx512_available())
      gemm_avx512_8x48(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    else if (gemm_avx2_available())
      gemm_avx2(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    else
      gemm_ex<float>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, ep);
    int64_t bad = 0;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const float got = C[i * ldc + j];
        if (j >= N) {  // padding untouched
          bad += !(got == C0[i * ldc + j]);
          continue;
        }
        double s = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double p = double(ta ? A[k * lda + i] : A[i * lda + k]) * double(tb ? B[j * ldb + k] : B[k * ldb + j]);
          s += p, mag += std::fabs(p);
        }
        double want = alpha * s + (beta == 0.0f ? 0.0 : beta * double(C0[i * ldc + j]));
        want += ep.bias ? (ep.bias_per_column ? bias[j] : bias[i]) : 0.0f;
        if (ep.relu) want = std::max(want, 0.0);
        if (ep.relu_max > 0.0f) want = std::min(want, double(ep.relu_max));
        bad += !(std::fabs(got - want) <= 1e-5 * (std::fabs(alpha) * mag + 2.0));
      }
    if (bad) {
      ++failed;
      CAPTURE(it);
      CAPTURE(M);
      CAPTURE(N);
      CAPTURE(K);
      CAPTURE(ta);
      CAPTURE(tb);
      CAPTURE(pad);
      CAPTURE(ldc);
      CAPTURE(beta);
      CAPTURE(threads);
      CAPTURE(variant);
      CAPTURE(epi);
      CHECK(bad == 0);
    }
  }
  CHECK(failed == 0);
  set_num_threads(saved);
}
