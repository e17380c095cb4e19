// GPU benchmarks of tinycnn::cuda (run by bench/gpu/run.sh on a machine with a GPU).
//   gemm/cuda<variant>/<M>x<N>x<K>   every GEMM variant on bench/bench_gemm.cpp's shapes, GFLOP/s;
//   gemm/cublas{,_tf32,_bf16}/...    cuBLAS on the same shapes when found at configure time;
//   conv/<op>/cuda<variant>/model3-<layer>/b<batch>   conv2d forward, backward-data, backward-filter of
//                                    model3's 3x3 'same' layers at batch 32 and 256, GFLOP/s;
//   model3/<train|infer>/b<batch>/<fp32|tf32|bf16>   a whole model3 training step (forward, backward,
//                                    Adam) or forward pass through the dispatch facade (plain_cnn.hpp),
//                                    images/s from wall-clock time with a device synchronisation per
//                                    step, as bench/gpu/compare_pytorch_gpu.py measures PyTorch.
// Every variant's output is validated before it is timed (GEMM: sampled rows against the CPU gemm_ref;
// convolution: the whole output against the direct GPU kernel, variant 0, itself checked against the
// CPU by cuda_parity); a variant that differs is reported as an error, not timed. Times are CUDA-event
// device times (UseManualTime). Without a GPU the binary says so and exits 0.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <tinycnn/core/random.hpp>
#include <tinycnn/cuda/cuda.hpp>
#include <tinycnn/kernels/cpu/conv_geometry.hpp>
#include <tinycnn/kernels/cpu/gemm_ref.hpp>

#include "plain_cnn.hpp"

#ifdef TINYCNN_BENCH_HAS_CUBLAS
#include <cublas_v2.h>
#include <cuda_bf16.h>
#endif

namespace {

using tinycnn::cuda::DeviceBuffer;
namespace tc = tinycnn::cuda;

std::vector<float> random_vec(int64_t n, uint64_t seed) {
  tinycnn::Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.uniform(-1.0, 1.0));
  return v;
}

// Times fn with CUDA events; the first call (validation) already warmed it up.
void time_loop(benchmark::State& state, const std::function<void()>& fn) {
  tc::EventTimer timer;
  for (auto _ : state) {
    timer.start();
    fn();
    state.SetIterationTime(static_cast<double>(timer.stop_ms()) / 1000.0);
  }
}

// Relative-and-absolute tolerance of a variant over a reduction of length k (cf. cuda/tests).
struct Tol {
  double atol, rtol;
};
Tol tol_for(int variant, int64_t k) {
  const double rk = std::sqrt(static_cast<double>(k > 0 ? k : 1));
  if (variant == 4) return {2e-3 * rk, 1e-2};
  if (variant == 5) return {1.2e-2 * rk, 3e-2};
  return {1e-5 * rk + 1e-4, 1e-3};
}

// ---- GEMM ---------------------------------------------------------------------------------------
struct GemmShape {
  int64_t M, N, K;
  bool ta, tb;
  std::string label;
};

std::vector<GemmShape> gemm_shapes() {  // the shapes of bench/bench_gemm.cpp
  std::vector<GemmShape> s = {{64, 64, 64, false, false, "small"},
                              {256, 256, 256, false, false, "small"},
                              {1024, 1024, 1024, false, false, "square NN"},
                              {2048, 2048, 2048, false, false, "square NN"}};
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
  }
  const Conv model004[] = {{"model004 conv1 (3->32 @148x148)", 3, 32, 148},
                           {"model004 conv2 (32->64 @72x72)", 32, 64, 72},
                           {"model004 conv3 (64->128 @34x34)", 64, 128, 34},
                           {"model004 conv4 (128->256 @15x15)", 128, 256, 15}};
  for (const Conv& c : model004)
    s.push_back({c.cout, 32 * c.ohw * c.ohw, c.cin * 9, false, false, std::string(c.name) + " forward"});
  return s;
}

struct GemmOperands {
  GemmShape s;
  int64_t lda, ldb, ldc;
  std::vector<float> A, B;
  DeviceBuffer<float> dA, dB, dC;
};

GemmOperands& gemm_operands(const GemmShape& s) {
  static std::unique_ptr<GemmOperands> cur;
  if (!cur || cur->s.M != s.M || cur->s.N != s.N || cur->s.K != s.K || cur->s.ta != s.ta || cur->s.tb != s.tb) {
    cur.reset();
    auto o = std::make_unique<GemmOperands>();
    o->s = s;
    o->lda = s.ta ? s.M : s.K;
    o->ldb = s.tb ? s.K : s.N;
    o->ldc = s.N;
    o->A = random_vec(s.M * s.K, 123);
    o->B = random_vec(s.K * s.N, 456);
    o->dA = DeviceBuffer<float>(o->A);
    o->dB = DeviceBuffer<float>(o->B);
    o->dC = DeviceBuffer<float>(s.M * s.N);
    cur = std::move(o);
  }
  return *cur;
}

// "" when C (after fn on a NaN-filled C) matches gemm_ref on sampled rows.
std::string validate_gemm(GemmOperands& o, const std::function<void()>& fn, Tol tol) {
  const GemmShape& s = o.s;
  tc::fill<float>(o.dC.get(), std::numeric_limits<float>::quiet_NaN(), s.M * s.N);
  fn();
  const std::vector<float> C = o.dC.download();
  for (float v : C)
    if (std::isnan(v)) return "NaN in C (an element was not written)";
  std::vector<int64_t> rows = {0, s.M / 3, s.M / 2, s.M - 1};
  tinycnn::Rng rng(7);
  for (int r = 0; r < 4; ++r) rows.push_back(static_cast<int64_t>(rng.below(static_cast<uint64_t>(s.M))));
  std::vector<float> want(static_cast<size_t>(s.N));
  for (int64_t i : rows) {
    const float* a = s.ta ? o.A.data() + i : o.A.data() + i * o.lda;
    tinycnn::kernels::cpu::gemm_ref<float>(s.ta, s.tb, 1, s.N, s.K, 1.0f, a, o.lda, o.B.data(), o.ldb, 0.0f,
                                           want.data(), o.ldc);
    for (int64_t j = 0; j < s.N; ++j) {
      const double g = C[static_cast<size_t>(i * o.ldc + j)], w = want[static_cast<size_t>(j)];
      if (!(std::fabs(g - w) <= tol.atol + tol.rtol * std::fabs(w)))
        return "C[" + std::to_string(i) + "][" + std::to_string(j) + "] = " + std::to_string(g) + ", reference " +
               std::to_string(w);
    }
  }
  return "";
}

void run_gemm(benchmark::State& state, GemmShape s, int tol_variant,
              std::function<void(GemmOperands&)> fn) {
  GemmOperands& o = gemm_operands(s);
  const std::string err = validate_gemm(o, [&] { fn(o); }, tol_for(tol_variant, s.K));
  if (!err.empty()) {
    state.SkipWithError(("differs from gemm_ref: " + err).c_str());
    return;
  }
  time_loop(state, [&] { fn(o); });
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(s.M) * double(s.N) * double(s.K),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(s.label + (s.ta ? " A^T" : "") + (s.tb ? " B^T" : ""));
}

#ifdef TINYCNN_BENCH_HAS_CUBLAS
cublasHandle_t cublas() {
  static cublasHandle_t h = [] {
    cublasHandle_t x = nullptr;
    if (cublasCreate(&x) != CUBLAS_STATUS_SUCCESS) throw tinycnn::Error("cublasCreate failed");
    cublasSetStream(x, static_cast<cudaStream_t>(tc::current_stream().handle()));
    return x;
  }();
  return h;
}
void cublas_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw tinycnn::Error(std::string(what) + " failed: status " + std::to_string(int(st)));
}
// Row-major C = op(A) op(B) through column-major cuBLAS: C^T = op(B)^T op(A)^T.
void cublas_gemm(GemmOperands& o, cublasComputeType_t compute, cudaDataType_t in_type, const void* A, const void* B) {
  const GemmShape& s = o.s;
  const float one = 1.0f, zero = 0.0f;
  cublas_check(cublasGemmEx(cublas(), s.tb ? CUBLAS_OP_T : CUBLAS_OP_N, s.ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(s.N),
                            int(s.M), int(s.K), &one, B, in_type, int(o.ldb), A, in_type, int(o.lda), &zero,
                            o.dC.get(), CUDA_R_32F, int(o.ldc), compute, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}
// bf16 copies of A and B (converted on the host, round to nearest even) for the bf16 comparison.
struct Bf16Operands {
  const GemmOperands* owner = nullptr;
  DeviceBuffer<float> a, b;  // storage reinterpreted as bf16 (2 bytes per element, rounded up)
};
std::vector<float> to_bf16_storage(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    u += 0x7FFF + ((u >> 16) & 1);
    h[i] = static_cast<uint16_t>(u >> 16);
  }
  std::vector<float> packed((h.size() + 1) / 2);
  std::memcpy(packed.data(), h.data(), h.size() * 2);
  return packed;
}
Bf16Operands& bf16_operands(GemmOperands& o) {
  static Bf16Operands b;
  if (b.owner != &o) {
    b.a = DeviceBuffer<float>(to_bf16_storage(o.A));
    b.b = DeviceBuffer<float>(to_bf16_storage(o.B));
    b.owner = &o;
  }
  return b;
}
#endif

void register_gemm() {
  for (const GemmShape& s : gemm_shapes()) {
    const std::string dims = std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K);
    const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
    for (int v = 1; v <= tc::kGemmVariants; ++v) {
      if (v == 1 && flops > 2e10) continue;  // the naive variant takes seconds on the largest shapes
      benchmark::RegisterBenchmark(("gemm/cuda" + std::to_string(v) + "/" + dims).c_str(), run_gemm, s, v,
                                   [v](GemmOperands& o) {
                                     const GemmShape& g = o.s;
                                     tc::gemm_variant<float>(v, g.ta, g.tb, g.M, g.N, g.K, 1.0f, o.dA.get(), o.lda,
                                                             o.dB.get(), o.ldb, 0.0f, o.dC.get(), o.ldc);
                                   })
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
#ifdef TINYCNN_BENCH_HAS_CUBLAS
    benchmark::RegisterBenchmark(("gemm/cublas/" + dims).c_str(), run_gemm, s, 3, [](GemmOperands& o) {
      cublas_gemm(o, CUBLAS_COMPUTE_32F, CUDA_R_32F, o.dA.get(), o.dB.get());
    })->UseManualTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("gemm/cublas_tf32/" + dims).c_str(), run_gemm, s, 4, [](GemmOperands& o) {
      cublas_gemm(o, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, o.dA.get(), o.dB.get());
    })->UseManualTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("gemm/cublas_bf16/" + dims).c_str(), run_gemm, s, 5, [](GemmOperands& o) {
      Bf16Operands& b = bf16_operands(o);
      cublas_gemm(o, CUBLAS_COMPUTE_32F, CUDA_R_16BF, b.a.get(), b.b.get());
    })->UseManualTime()->Unit(benchmark::kMillisecond);
#endif
  }
}

// ---- convolution ----------------------------------------------------------------------------------
struct ConvLayer {
  const char* name;
  int64_t cin, cout, hw;
};
// model3 (bench/compare_pytorch.py): 3x3 'same' convolutions at 150x150x3 input.
const ConvLayer kModel3[] = {{"conv1", 3, 32, 150},   {"conv2", 32, 64, 50},   {"conv3", 64, 128, 25},
                             {"conv4", 128, 256, 12}, {"conv5", 256, 512, 6}, {"conv6", 512, 1024, 6}};

enum class ConvOp { Forward, BackwardData, BackwardFilter };
const char* op_name(ConvOp op) {
  return op == ConvOp::Forward ? "forward" : op == ConvOp::BackwardData ? "backward-data" : "backward-filter";
}

struct ConvOperands {
  const ConvLayer* layer = nullptr;
  int64_t batch = 0;
  tinycnn::kernels::cpu::Conv2DGeom g;
  DeviceBuffer<float> x, w, b, dy, out;
  std::vector<float> ref[3];  // variant-0 results per op (computed on first use)
  bool has_ref[3] = {false, false, false};
};

ConvOperands& conv_operands(const ConvLayer& l, int64_t batch) {
  static std::unique_ptr<ConvOperands> cur;
  if (!cur || cur->layer != &l || cur->batch != batch) {
    cur.reset();
    auto o = std::make_unique<ConvOperands>();
    o->layer = &l;
    o->batch = batch;
    o->g = tinycnn::kernels::cpu::make_conv_geom(batch, l.cin, l.hw, l.hw, l.cout, 3, 3, 1, 1,
                                                 tinycnn::kernels::cpu::Padding::Same);
    const auto& g = o->g;
    o->x = DeviceBuffer<float>(random_vec(g.N * g.C * g.H * g.W, 1));
    o->w = DeviceBuffer<float>(random_vec(g.K * g.C * 9, 2));
    o->b = DeviceBuffer<float>(random_vec(g.K, 3));
    o->dy = DeviceBuffer<float>(random_vec(g.N * g.K * g.OH * g.OW, 4));
    cur = std::move(o);
  }
  return *cur;
}

int64_t out_size(const ConvOperands& o, ConvOp op) {
  const auto& g = o.g;
  return op == ConvOp::Forward ? g.N * g.K * g.OH * g.OW : op == ConvOp::BackwardData ? g.N * g.C * g.H * g.W : g.K * g.C * 9;
}

void conv_call(ConvOperands& o, ConvOp op, int v) {
  const auto& g = o.g;
  switch (op) {
    case ConvOp::Forward: tc::conv2d_forward_variant<float>(v, o.x.get(), o.w.get(), o.b.get(), g, o.out.get()); break;
    case ConvOp::BackwardData: tc::conv2d_backward_data_variant<float>(v, o.dy.get(), o.w.get(), g, o.out.get()); break;
    case ConvOp::BackwardFilter:
      tc::conv2d_backward_filter_variant<float>(v, o.x.get(), o.dy.get(), g, o.out.get(), nullptr);
      break;
  }
}

// Output of one call on a zeroed (accumulating ops) or NaN-filled (forward) buffer.
std::vector<float> conv_result(ConvOperands& o, ConvOp op, int v) {
  const int64_t n = out_size(o, op);
  if (o.out.size() != n) o.out = DeviceBuffer<float>(n);
  tc::fill<float>(o.out.get(), op == ConvOp::Forward ? std::numeric_limits<float>::quiet_NaN() : 0.0f, n);
  conv_call(o, op, v);
  return o.out.download();
}

void run_conv(benchmark::State& state, const ConvLayer* l, int64_t batch, ConvOp op, int v) {
  ConvOperands& o = conv_operands(*l, batch);
  const int k = static_cast<int>(op);
  if (!o.has_ref[k]) {
    o.ref[k] = conv_result(o, op, 0);
    o.has_ref[k] = true;
  }
  if (v != 0) {
    const std::vector<float> got = conv_result(o, op, v);
    const auto& g = o.g;
    const int64_t red = op == ConvOp::Forward ? g.C * 9 : op == ConvOp::BackwardData ? g.K * 9 : g.N * g.OH * g.OW;
    const Tol tol = tol_for(v, red);
    for (size_t i = 0; i < got.size(); ++i) {
      const double gv = got[i], w = o.ref[k][i];
      if (!(std::fabs(gv - w) <= tol.atol + tol.rtol * std::fabs(w))) {
        state.SkipWithError(("differs from the direct kernel at " + std::to_string(i) + ": " + std::to_string(gv) +
                             " vs " + std::to_string(w)).c_str());
        return;
      }
    }
  }
  const auto& g = o.g;
  time_loop(state, [&] { conv_call(o, op, v); });
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(g.N) * double(g.K) * double(g.C * 9) * double(g.OH * g.OW),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["images/s"] = benchmark::Counter(double(g.N), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(l->name) + " " + std::to_string(l->cin) + "->" + std::to_string(l->cout) + " @" +
                 std::to_string(l->hw) + "x" + std::to_string(l->hw));
}

void register_conv() {
  for (int64_t batch : {32, 256})
    for (const ConvLayer& l : kModel3)
      for (ConvOp op : {ConvOp::Forward, ConvOp::BackwardData, ConvOp::BackwardFilter})
        for (int v = 0; v <= tc::kConvVariants; ++v)
          benchmark::RegisterBenchmark((std::string("conv/") + op_name(op) + "/cuda" + std::to_string(v) +
                                        "/model3-" + l.name + "/b" + std::to_string(batch)).c_str(),
                                       run_conv, &l, batch, op, v)
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond);
}

// ---- whole model3 ---------------------------------------------------------------------------------
// GEMM (and so convolution) variant per precision: fp32 = 3, tf32 = 4, bf16 = 5 (inputs rounded, fp32
// accumulate; the rest of the model stays fp32, unlike PyTorch's autocast).
// fp32-implicit: GEMM variant 3 with the implicit-GEMM convolution (conv variant 6).
int precision_variant(const std::string& p) { return p == "tf32" ? 4 : p == "bf16" ? 5 : 3; }

// Mean loss of model3's first forward pass on the CPU for this batch size (the reference, cached).
double cpu_model3_loss(int64_t batch, const tinycnn::Tensor<float>& x, const std::vector<int32_t>& labels) {
  static std::vector<std::pair<int64_t, double>> cache;
  for (const auto& c : cache)
    if (c.first == batch) return c.second;
  tinycnn::gpu_bench::PlainCnn<float> cpu(tinycnn::gpu_bench::model3_spec(), batch, tinycnn::Device::CPU, 11);
  cpu.set_labels(labels);
  cpu.forward(x);
  cache.push_back({batch, cpu.mean_loss()});
  return cache.back().second;
}

// graph: the training step is captured once in a CUDA graph and replayed (one launch per step instead
// of ~100; the Adam step number is frozen at capture, which does not change the work timed).
void run_model3(benchmark::State& state, int64_t batch, std::string precision, bool train, bool graph) {
  using tinycnn::Device;
  using tinycnn::Tensor;
  const tinycnn::gpu_bench::CnnSpec spec = tinycnn::gpu_bench::model3_spec();
  Tensor<float> x = Tensor<float>::empty({batch, spec.C, spec.H, spec.W});
  tinycnn::Rng rng(21);
  x.fill_uniform(0.f, 1.f, rng);
  std::vector<int32_t> labels;
  for (int64_t n = 0; n < batch; ++n) labels.push_back(static_cast<int32_t>(n % spec.classes));
  const int prev = tc::default_gemm_variant(), prev_conv = tc::default_conv_variant();
  tc::set_default_gemm_variant(precision_variant(precision));
  tc::set_default_conv_variant(precision == "fp32-implicit" ? tc::kConvVariants : -1);
  tc::Stream stream = tc::Stream::create();  // one stream per model (graphs cannot use the default stream)
  tc::StreamGuard guard(stream);
  {
    tinycnn::gpu_bench::PlainCnn<float> gpu(spec, batch, Device::CUDA, 11);
    gpu.set_labels(labels);
    const Tensor<float> xd = x.to(Device::CUDA);
    gpu.forward(xd);
    const double want = cpu_model3_loss(batch, x, labels), got = gpu.mean_loss();
    const double tol = precision == "tf32" || precision == "bf16" ? 2e-2 : 1e-3;
    if (!(std::fabs(got - want) <= tol * (1 + std::fabs(want)))) {
      state.SkipWithError(("first-step loss " + std::to_string(got) + " differs from the CPU's " + std::to_string(want))
                              .c_str());
    } else {
      auto step = [&] {
        if (train)
          gpu.train_step(xd);
        else
          gpu.forward(xd);
      };
      step();  // warm-up: the caching allocator fills, workspaces are sized
      tc::Graph g;
      if (graph) {
        g.begin_capture();
        step();
        g.end_capture();
        g.replay();
      }
      tc::synchronize();
      for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        if (graph)
          g.replay();
        else
          step();
        tc::synchronize();
        state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
      state.counters["loss"] = gpu.mean_loss();
    }
  }
  tc::set_default_gemm_variant(prev);
  tc::set_default_conv_variant(prev_conv == prev ? -1 : prev_conv);
}

void register_models() {
  for (int64_t batch : {256, 32})
    for (const char* prec : {"fp32", "fp32-implicit", "tf32", "bf16"})
      for (bool train : {true, false})
        for (bool graph : {false, true}) {
          if (graph && !train) continue;
          if (std::string(prec) == "fp32-implicit" && !train) continue;
          benchmark::RegisterBenchmark((std::string("model3/") + (train ? "train" : "infer") + "/b" +
                                        std::to_string(batch) + "/" + prec + (graph ? "/graph" : ""))
                                           .c_str(),
                                       run_model3, batch, std::string(prec), train, graph)
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond)
              ->MinTime(1.0);
        }
}

}  // namespace

int main(int argc, char** argv) {
  if (!tc::available()) {
    std::cout << "tinycnn_cuda_bench: no usable GPU (" << tc::unavailable_reason() << "): nothing to benchmark\n";
    return 0;
  }
  std::cout << "tinycnn_cuda_bench on " << tc::device_description(0) << ", default GEMM variant "
            << tc::default_gemm_variant() << " (" << tc::gemm_variant_name(tc::default_gemm_variant()) << ")\n";
  register_models();
  register_gemm();
  register_conv();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
