// Element-wise passes over model004's and model3's largest activations (batch 32, after conv1):
//   dropout/apply/<variant>/<n>     dropout's y = x * mask over n elements (rate 0.2): reference (one
//                                   counter_uniform per element, one thread), baseline and avx2 (those
//                                   range copies over the threads; avx2 only where the CPU has it),
//                                   default (dropout_apply: the AVX-512 copy, else AVX2, else baseline)
//   relu_grad_bias/<variant>/<layer>  a fused ReLU's backward and the bias gradient: two_pass
//                                   (activation_backward, then conv2d_backward_bias over its result, as
//                                   before the twenty-third session), fused (conv2d_relu_backward_bias)
// Each variant is checked against the reference (dropout bitwise; masked gradient bitwise, bias to 1e-5)
// before it is timed. GB/s counter: bytes read and written per second.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <tinycnn/tinycnn.hpp>

namespace {

using namespace tinycnn::kernels::cpu;

void run_dropout(benchmark::State& state, int64_t n, int variant) {
  std::vector<float> x(static_cast<size_t>(n)), y(x.size()), ref(x.size());
  tinycnn::Rng r(5);
  for (float& v : x) v = static_cast<float>(r.uniform() - 0.5);
  const float rate = 0.2f;
  const uint64_t seed = tinycnn::Rng(7).next_u64();
  auto fn = [&] {
    if (variant == 0) return dropout_apply_ref<float>(seed, rate, x.data(), y.data(), n);
    if (variant == 2) return dropout_apply<float>(seed, rate, x.data(), y.data(), n);
    auto range = &detail::dropout_apply_range<float>;
#ifdef TINYCNN_HAVE_X86_TARGETS
    if (variant == 3) range = &detail::dropout_apply_range_avx2<float>;
#endif
    constexpr int64_t chunk = 1 << 14;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < (n + chunk - 1) / chunk; ++c)
      range(seed, dropout_threshold(rate), 1.0f / (1.0f - rate), x.data(), y.data(), c * chunk,
            std::min(n, (c + 1) * chunk));
  };
  dropout_apply_ref<float>(seed, rate, x.data(), ref.data(), n);
  fn();
  if (y != ref) {
    state.SkipWithError("differs from the reference");
    return;
  }
  for (auto _ : state) {
    fn();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] =  // x read, y written
      benchmark::Counter(double(2 * n * sizeof(float)), benchmark::Counter::kIsIterationInvariantRate);
}

void run_relu_bias(benchmark::State& state, int64_t K, int64_t hw, bool fused) {
  const Conv2DGeom g = make_conv_geom(32, 1, hw, hw, K, 1, 1, 1, 1, Padding::Valid);
  const int64_t n = g.N * K * hw * hw;
  std::vector<float> y(static_cast<size_t>(n)), dy(y.size()), masked(y.size()), ref(y.size());
  tinycnn::Rng rng(9);
  for (int64_t i = 0; i < n; ++i) {
    y[size_t(i)] = std::max(0.0f, static_cast<float>(rng.uniform() - 0.4));  // after a ReLU: zeros occur
    dy[size_t(i)] = static_cast<float>(rng.uniform() - 0.5);
  }
  std::vector<float> db(static_cast<size_t>(K), 0.0f), db_ref = db;
  auto fn = [&](float* out, float* bias) {
    if (fused) return conv2d_relu_backward_bias<float>(y.data(), dy.data(), 0.0f, g, out, bias);
    activation_backward<float>({Act::ReLU, 0.0f, 0.0f}, y.data(), y.data(), dy.data(), out, n, true);
    conv2d_backward_bias<float>(out, g, bias);
  };
  fn(masked.data(), db.data());
  activation_backward<float>({Act::ReLU, 0.0f, 0.0f}, y.data(), y.data(), dy.data(), ref.data(), n, true);
  conv2d_backward_bias<float>(ref.data(), g, db_ref.data());
  bool same = masked == ref;
  for (int64_t k = 0; k < K; ++k)
    same = same && std::fabs(db[size_t(k)] - db_ref[size_t(k)]) <= 1e-5f * (1.0f + std::fabs(db_ref[size_t(k)]));
  if (!same) {
    state.SkipWithError("differs from activation_backward + conv2d_backward_bias");
    return;
  }
  for (auto _ : state) {
    fn(masked.data(), db.data());
    benchmark::DoNotOptimize(masked.data());
    benchmark::ClobberMemory();
  }
  // fused: y and dy read, masked written; two_pass reads masked once more
  state.counters["GB/s"] = benchmark::Counter(double(n * sizeof(float) * (fused ? 3 : 4)),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

int register_mask_benchmarks() {
  const char* names[] = {"reference", "baseline", "default", "avx2"};
  for (int v = 0; v < 4; ++v) {
#ifdef TINYCNN_HAVE_X86_TARGETS
    if (v == 3 && !cpu_features().avx2_fma) continue;
#else
    if (v == 3) continue;
#endif
    benchmark::RegisterBenchmark((std::string("dropout/apply/") + names[v] + "/5607424").c_str(), run_dropout,
                                 int64_t(32) * 32 * 74 * 74, v)  // model004's first dropout
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  struct Layer {
    const char* name;
    int64_t K, hw;
  };
  for (const Layer& l : {Layer{"model3_conv1_32x150", 32, 150}, Layer{"model004_conv1_32x148", 32, 148},
                         Layer{"model004_conv2_64x72", 64, 72}})
    for (bool fused : {false, true})
      benchmark::RegisterBenchmark(
          (std::string("relu_grad_bias/") + (fused ? "fused/" : "two_pass/") + l.name).c_str(), run_relu_bias, l.K,
          l.hw, fused)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  return 0;
}

const int registered = register_mask_benchmarks();

}  // namespace
