// End-to-end benchmarks at batch 32, 3x150x150 input, 6 classes:
//   models/<model>/train   one training step: forward, softmax cross-entropy, backward, Adam
//   models/<model>/infer   one inference batch (NoGradGuard, eval mode)
// for model3 and model004 as examples/intel_scenes/models.hpp builds them (docs/performance.md), also
// as <train|infer>_unfused with the layer fusions off (each Conv2D and its MaxPool2D as two ops), and
//   models/shipped/infer, models/shipped/infer_unfused   the shipped ensemble
//                          (examples/intel_scenes/pretrained/scenes.safetensors, 150x150 input in
//                          0-255) with and without inference fusion (nn/inference_fusion.hpp)
// Counters: images/s, and peak_rss_MiB (getrusage
// ru_maxrss of the whole process so far: run one model per process to read a model's peak).
// Also a STREAM-like memory benchmark, stream/copy and stream/triad over 256 MiB arrays (bytes/s
// counter, both read and written bytes counted), for the roofline ceilings in docs/performance.md.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tinycnn/tinycnn.hpp>

#include "../examples/intel_scenes/models.hpp"

namespace {

using namespace tinycnn;

// The models exactly as the intel_scenes example defines them (one definition for both); "shipped":
// the example's shipped model file.
std::unique_ptr<nn::Model<float>> make_bench_model(const std::string& name) {
  if (name == "shipped") return io::load_model(TINYCNN_BENCH_SHIPPED_MODEL).model;
  return intel_scenes::make_model(name, 6, 0);
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

constexpr int64_t kBatch = 32;

void run_model(benchmark::State& state, std::string name, bool train, bool fuse) {
  auto model = make_bench_model(name);
  model->set_inference_fusion(fuse);
  model->set_pool_fusion(fuse);
  Rng rng(1);
  Tensor<float> x = Tensor<float>::empty({kBatch, 3, 150, 150});
  const double scale = name == "shipped" ? 255.0 : 1.0;  // the shipped model takes raw pixels
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.uniform(0.0, scale));
  std::vector<int32_t> y(static_cast<size_t>(kBatch));
  for (int64_t i = 0; i < kBatch; ++i) y[static_cast<size_t>(i)] = static_cast<int32_t>(i % 6);
  optim::Adam<float> opt(model->parameters(true), 1e-3);
  auto step = [&] {
    if (train) {
      Var<float> loss = ops::softmax_cross_entropy(model->forward(Var<float>(x)), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      benchmark::DoNotOptimize(loss.value().data());
    } else {
      NoGradGuard ng;
      Var<float> out = model->forward(Var<float>(x));
      benchmark::DoNotOptimize(out.value().data());
    }
  };
  if (train)
    model->train();
  else
    model->eval();
  step();  // warm-up: buffers, packing, allocator cache
  for (auto _ : state) step();
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(kBatch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}

// a[i] = b[i] (copy) or a[i] = b[i] + s*c[i] (triad), parallel over the OpenMP team.
void run_stream(benchmark::State& state, bool triad) {
  const int64_t n = int64_t(64) << 20;  // 64 Mi floats = 256 MiB per array
  std::vector<float> a(static_cast<size_t>(n), 1.0f), b(static_cast<size_t>(n), 2.0f), c(static_cast<size_t>(n), 3.0f);
  float* pa = a.data();
  const float *pb = b.data(), *pc = c.data();
  for (auto _ : state) {
    if (triad) {
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + 0.5f * pc[i];
    } else {
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; ++i) pa[i] = pb[i];
    }
    benchmark::DoNotOptimize(pa);
    benchmark::ClobberMemory();
  }
  const double bytes = static_cast<double>(n) * sizeof(float) * (triad ? 3.0 : 2.0);
  state.counters["bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1024);
}

int register_model_benchmarks() {
  for (const char* m : {"model3", "model004"})
    for (bool train : {true, false})
      for (bool fuse : {true, false})
        benchmark::RegisterBenchmark(
            (std::string("models/") + m + (train ? "/train" : "/infer") + (fuse ? "" : "_unfused")).c_str(), run_model,
            std::string(m), train, fuse)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
  for (bool fuse : {true, false})
    benchmark::RegisterBenchmark(fuse ? "models/shipped/infer" : "models/shipped/infer_unfused", run_model,
                                 std::string("shipped"), false, fuse)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("stream/copy", run_stream, false)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("stream/triad", run_stream, true)->UseRealTime()->Unit(benchmark::kMillisecond);
  return 0;
}

const int registered = register_model_benchmarks();

}  // namespace
