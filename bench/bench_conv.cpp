// Convolution benchmarks: conv2d/<variant>/<layer>/<pass> on model3's six 3x3 'same' convolutions at
// batch 32 (150x150x3 input; 150 -> pool 3 -> 50 -> pool 2 -> 25 -> 12 -> 6, and conv5 and conv6 both
// run at 6x6 since no pooling separates them) and model004's 'valid' conv2-conv4 (m004conv*: 74 -> 72,
// 36 -> 34, 17 -> 15), pass = fwd | bwd_data | bwd_filter. GFLOP/s counter = 2*N*K*C*R*S*OH*OW
// per iteration (the same count for all three passes).
// Variants:
//   direct       naive direct loops (conv_direct.hpp, the test reference), only on conv1 and conv5
//   persample    im2col + gemm<float>, one GEMM per sample in sequence (the structure before the rewrite)
//   blocked, packed, avx2, avx512, avx512_8x48
//                conv2d.hpp's default structure (sample groups, see its header) with that GEMM variant
//   serial       default structure forced to the serial plan (groups in sequence, GEMM parallel inside)
//   parallel     default structure forced to the parallel plan (groups split between threads)
//   im2col       im2col + gemm_ex, the sample-group structure (ConvOptions::Algo::Im2col)
//   winograd     F(m x m, 3x3) (conv_winograd.hpp, ConvOptions::Algo::Winograd) with Auto's tile per
//                layer and pass (3 from 6x6 up, from 8x8 up for the weight gradient, else 2)
//   winograd_f2, winograd_f3, winograd_f4
//                the same with the tile forced to 2x2, 3x3, 4x4 (ConvOptions::winograd_tile)
//   winograd_grouped, winograd_fused
//                the same with the plan of all three passes forced (ConvOptions::winograd_plan):
//                transforms and GEMMs per sample group, or per block of tiles kept in L2
//   fewc, fewc16 the direct few-channel passes (conv_fewc.hpp, ConvOptions::Algo::FewChannels), forward
//                and weight gradient, on the layers they apply to (conv1), with 8-float (AVX2) or
//                16-float (AVX-512, conv_fewc_avx512.hpp) register blocks (ConvOptions::fewc_width);
//                also on other few-channel layers (fc_*, with im2col beside them)
//   default      conv2d_forward / conv2d_backward_data / conv2d_backward_filter as the ops call them
//   cached       the forward with the transformed kernel kept between calls (conv2d_forward_cached,
//                winograd_filter_cache.hpp), as inference runs a Conv2D: against default/<layer>/fwd
// The GEMM-variant and plan entries above run im2col (ConvOptions::Algo::Im2col), whatever Auto picks.
// GFLOP/s of winograd are "effective": the direct convolution's count over its time.
// Every variant is checked against the direct reference before it is timed (SkipWithError on a mismatch):
// forward and backward-data on the first and last sample, backward-filter on three output channels.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <tinycnn/core/random.hpp>
#include <tinycnn/kernels/cpu/conv2d.hpp>
#include <tinycnn/kernels/cpu/conv2d_backward_filter.hpp>
#include <tinycnn/kernels/cpu/conv_direct.hpp>
#include <tinycnn/kernels/cpu/conv_pool.hpp>
#include <tinycnn/kernels/cpu/conv_pool_filter.hpp>
#include <tinycnn/kernels/cpu/depthwise.hpp>
#include <tinycnn/kernels/cpu/pool.hpp>

namespace {

using namespace tinycnn::kernels::cpu;

struct Layer {
  std::string name;
  int64_t cin, cout, hw;
  Padding pad = Padding::Same;
  int64_t r = 3, stride = 1;  // an r x r window
};

const std::vector<Layer>& layers() {
  static const std::vector<Layer> l = {{"conv1_3x32@150", 3, 32, 150},     {"conv2_32x64@50", 32, 64, 50},
                                       {"conv3_64x128@25", 64, 128, 25},   {"conv4_128x256@12", 128, 256, 12},
                                       {"conv5_256x512@6", 256, 512, 6},   {"conv6_512x1024@6", 512, 1024, 6},
                                       // model004's 3x3 'valid' layers (150 -> 148, 74 -> 72, 36 -> 34, 17 -> 15)
                                       {"m004conv1_3x32@150v", 3, 32, 150, Padding::Valid},
                                       {"m004conv2_32x64@74v", 32, 64, 74, Padding::Valid},
                                       {"m004conv3_64x128@36v", 64, 128, 36, Padding::Valid},
                                       {"m004conv4_128x256@17v", 128, 256, 17, Padding::Valid}};
  return l;
}

constexpr int64_t kBatch = 32;

enum class Pass { Fwd, BwdData, BwdFilter };
const char* pass_name(Pass p) { return p == Pass::Fwd ? "fwd" : p == Pass::BwdData ? "bwd_data" : "bwd_filter"; }

struct Data {
  Conv2DGeom g;
  std::vector<float> x, w, b, dy, y, dx, dw, db;
};

Data& data(const Layer& l) {
  static std::map<std::string, std::unique_ptr<Data>> cache;
  auto& d = cache[l.name];
  if (!d) {
    cache.clear();  // keep one layer's operands at a time
    auto nd = std::make_unique<Data>();
    nd->g = make_conv_geom(kBatch, l.cin, l.hw, l.hw, l.cout, l.r, l.r, l.stride, l.stride, l.pad);
    const Conv2DGeom& g = nd->g;
    tinycnn::Rng rng(42);
    auto fill = [&](std::vector<float>& v, int64_t n, double a) {
      v.resize(static_cast<size_t>(n));
      for (auto& e : v) e = static_cast<float>(rng.uniform(-a, a));
    };
    const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.C * g.R * g.S, ny = g.N * g.K * g.OH * g.OW;
    fill(nd->x, nx, 1.0);
    fill(nd->w, nw, 1.0 / std::sqrt(double(g.C * g.R * g.S)));
    fill(nd->b, g.K, 0.1);
    fill(nd->dy, ny, 1.0);
    nd->y.resize(static_cast<size_t>(ny));
    nd->dx.resize(static_cast<size_t>(nx));
    nd->dw.resize(static_cast<size_t>(nw));
    nd->db.resize(static_cast<size_t>(g.K));
    cache[l.name] = std::move(nd);
    return *cache[l.name];
  }
  return *d;
}

using Fn = std::function<void(Data&, Pass)>;

// Empty when the variant's result matches the direct reference, else what is wrong.
std::string validate(const Fn& fn, Data& d, Pass pass) {
  const Conv2DGeom& g = d.g;
  const int64_t L = g.OH * g.OW, CHW = g.C * g.H * g.W, CRS = g.C * g.R * g.S;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto close = [](double got, double want, double scale) { return std::fabs(got - want) <= 1e-4 * scale + 1e-6; };
  if (pass == Pass::Fwd || pass == Pass::BwdData) {
    if (pass == Pass::Fwd) std::fill(d.y.begin(), d.y.end(), nan);
    if (pass == Pass::BwdData) std::fill(d.dx.begin(), d.dx.end(), 0.5f);  // backward adds
    fn(d, pass);
    Conv2DGeom g1 = g;
    g1.N = 1;
    for (int64_t n : {int64_t(0), g.N - 1}) {
      std::vector<float> want(static_cast<size_t>(pass == Pass::Fwd ? g.K * L : CHW), 0.5f);
      const float* got;
      if (pass == Pass::Fwd) {
        conv2d_direct_forward(d.x.data() + n * CHW, d.w.data(), d.b.data(), g1, want.data());
        got = d.y.data() + n * g.K * L;
      } else {
        conv2d_direct_backward_data(d.dy.data() + n * g.K * L, d.w.data(), g1, want.data());
        got = d.dx.data() + n * CHW;
      }
      double scale = 0;
      for (float v : want) scale = std::max(scale, std::fabs(double(v)));
      for (size_t i = 0; i < want.size(); ++i)
        if (!close(got[i], want[i], scale))
          return "sample " + std::to_string(n) + " element " + std::to_string(i) + ": " + std::to_string(got[i]) +
                 ", reference " + std::to_string(want[i]);
    }
    const auto& out = pass == Pass::Fwd ? d.y : d.dx;
    for (float v : out)
      if (std::isnan(v)) return "NaN in the output";
    return "";
  }
  std::fill(d.dw.begin(), d.dw.end(), 0.5f);
  std::fill(d.db.begin(), d.db.end(), 0.5f);
  fn(d, pass);
  for (int64_t k : {int64_t(0), g.K / 2, g.K - 1}) {
    std::vector<double> want(static_cast<size_t>(CRS), 0.0);
    double dbw = 0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const double e = d.dy[static_cast<size_t>(((n * g.K + k) * g.OH + oh) * g.OW + ow)];
          dbw += e;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t r = 0; r < g.R; ++r)
              for (int64_t s = 0; s < g.S; ++s) {
                const int64_t ih = oh * g.stride_h - g.pad_top + r, iw = ow * g.stride_w - g.pad_left + s;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                want[static_cast<size_t>((c * g.R + r) * g.S + s)] +=
                    e * d.x[static_cast<size_t>(((n * g.C + c) * g.H + ih) * g.W + iw)];
              }
        }
    double scale = 1;
    for (double v : want) scale = std::max(scale, std::fabs(v));
    for (int64_t i = 0; i < CRS; ++i)
      if (!close(d.dw[static_cast<size_t>(k * CRS + i)], want[static_cast<size_t>(i)] + 0.5, scale))
        return "dw[" + std::to_string(k) + "][" + std::to_string(i) + "] = " + std::to_string(d.dw[k * CRS + i]) +
               ", reference " + std::to_string(want[static_cast<size_t>(i)] + 0.5);
    if (!close(d.db[static_cast<size_t>(k)], dbw + 0.5, std::max(1.0, std::fabs(dbw))))
      return "db[" + std::to_string(k) + "] = " + std::to_string(d.db[k]) + ", reference " + std::to_string(dbw + 0.5);
  }
  return "";
}

void run_conv(benchmark::State& state, Layer l, Pass pass, Fn fn) {
  Data& d = data(l);
  const std::string err = validate(fn, d, pass);
  if (!err.empty()) {
    state.SkipWithError(("differs from the direct reference: " + err).c_str());
    return;
  }
  for (auto _ : state) {
    fn(d, pass);
    benchmark::DoNotOptimize(d.y.data());
    benchmark::DoNotOptimize(d.dx.data());
    benchmark::DoNotOptimize(d.dw.data());
    benchmark::ClobberMemory();
  }
  const Conv2DGeom& g = d.g;
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * double(g.N) * double(g.K) * double(g.C * g.R * g.S) * double(g.OH * g.OW),
      benchmark::Counter::kIsIterationInvariantRate);
}

// A conv2d.hpp structure with a given GEMM and options.
Fn structured(ConvGemmFn<float> gemm_fn, ConvOptions o) {
  return [gemm_fn, o](Data& d, Pass p) {
    if (p == Pass::Fwd)
      conv2d_forward_ex(d.x.data(), d.w.data(), d.b.data(), d.g, d.y.data(), false, gemm_fn, o);
    else if (p == Pass::BwdData)
      conv2d_backward_data_ex(d.dy.data(), d.w.data(), d.g, d.dx.data(), gemm_fn, o);
    else
      conv2d_backward_filter_ex(d.x.data(), d.dy.data(), d.g, d.dw.data(), d.db.data(), gemm_fn, o);
  };
}

// gemm_blocked has no epilogue: apply bias / ReLU after it.
void blocked_ex(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue<float>* ep) {
  gemm_blocked<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (!ep || (!ep->bias && !ep->relu)) return;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float& c = C[i * ldc + j];
      if (ep->bias) c += ep->bias_per_column ? ep->bias[j] : ep->bias[i];
      if (ep->relu) c = c > 0.0f ? c : 0.0f;
    }
}
void packed_ex(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue<float>* ep) {
  gemm_packed<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
void avx2_ex(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue<float>* ep) {
  gemm_avx2(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
void avx512_8x48_ex(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue<float>* ep) {
  gemm_avx512_8x48(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
void avx512_ex(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue<float>* ep) {
  gemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

// The direct few-channel passes where they apply (C*R*S <= 64), forward and weight gradient, with
// 8-float (fewc: AVX2) and 16-float (fewc16: AVX-512, conv_fewc_avx512.hpp) register blocks where the
// CPU has them; with_im2col: also im2col (for layers outside layers(), which register it themselves).
void register_fewc(const Layer& l, bool with_im2col) {
  ConvOptions im2col;
  im2col.algo = ConvOptions::Algo::Im2col;
  for (const auto& [name, width] : {std::pair<std::string, int>{"im2col", 0}, {"fewc", 8}, {"fewc16", 16}}) {
    ConvOptions o = im2col;
    if (width > 0) {
      o.algo = ConvOptions::Algo::FewChannels;
      o.fewc_width = width;
    }
    if (width == 0 ? !with_im2col : (l.cin * l.r * l.r > kFewChannelMaxTaps || fewc_width(width) == 0)) continue;
    for (Pass p : {Pass::Fwd, Pass::BwdFilter})
      benchmark::RegisterBenchmark(("conv2d/" + name + "/" + l.name + "/" + pass_name(p)).c_str(), run_conv, l, p,
                                   structured(&detail::conv_gemm_default<float>, o))
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
}

int register_conv_benchmarks() {
  ConvOptions dflt;
  dflt.algo = ConvOptions::Algo::Im2col;
  ConvOptions persample = dflt, serial = dflt, parallel = dflt, winograd;
  winograd.algo = ConvOptions::Algo::Winograd;
  ConvOptions winograd_f2 = winograd, winograd_f3 = winograd, winograd_f4 = winograd;
  winograd_f2.winograd_tile = 2;
  winograd_f3.winograd_tile = 3;
  winograd_f4.winograd_tile = 4;
  ConvOptions winograd_grouped = winograd, winograd_fused = winograd;
  winograd_grouped.winograd_plan = ConvOptions::WinogradPlan::Grouped;
  winograd_fused.winograd_plan = ConvOptions::WinogradPlan::Fused;
  persample.mode = ConvOptions::PerSample;
  serial.mode = ConvOptions::Serial;
  parallel.mode = ConvOptions::Parallel;
  ConvOptions rows_filter = dflt, coldy_filter = dflt, dycol_filter = dflt;
  rows_filter.filter_form = ConvOptions::FilterForm::Rows;
  coldy_filter.filter_form = ConvOptions::FilterForm::ColDy;
  dycol_filter.filter_form = ConvOptions::FilterForm::DyCol;
  for (size_t li = 0; li < layers().size(); ++li) {
    const Layer& l = layers()[li];
    std::vector<std::pair<std::string, Fn>> variants;
    if (li == 0 || li == 4)  // the fewest FLOPs (conv1) and the smallest 3 GFLOP layer (conv5)
      variants.emplace_back("direct", [](Data& d, Pass p) {
        if (p == Pass::Fwd)
          conv2d_direct_forward(d.x.data(), d.w.data(), d.b.data(), d.g, d.y.data());
        else if (p == Pass::BwdData)
          conv2d_direct_backward_data(d.dy.data(), d.w.data(), d.g, d.dx.data());
        else
          conv2d_direct_backward_filter(d.x.data(), d.dy.data(), d.g, d.dw.data(), d.db.data());
      });
    variants.emplace_back("persample", structured(&detail::conv_gemm_default<float>, persample));
    variants.emplace_back("blocked", structured(&blocked_ex, dflt));
    variants.emplace_back("packed", structured(&packed_ex, dflt));
    if (gemm_avx2_available()) variants.emplace_back("avx2", structured(&avx2_ex, dflt));
    if (gemm_avx512_available()) {
      variants.emplace_back("avx512", structured(&avx512_ex, dflt));
      variants.emplace_back("avx512_8x48", structured(&avx512_8x48_ex, dflt));
    }
    variants.emplace_back("serial", structured(&detail::conv_gemm_default<float>, serial));
    variants.emplace_back("parallel", structured(&detail::conv_gemm_default<float>, parallel));
    variants.emplace_back("default", [](Data& d, Pass p) {
      if (p == Pass::Fwd)
        conv2d_forward(d.x.data(), d.w.data(), d.b.data(), d.g, d.y.data());
      else if (p == Pass::BwdData)
        conv2d_backward_data(d.dy.data(), d.w.data(), d.g, d.dx.data());
      else
        conv2d_backward_filter(d.x.data(), d.dy.data(), d.g, d.dw.data(), d.db.data());
    });
    for (Pass p : {Pass::Fwd, Pass::BwdData, Pass::BwdFilter})
      for (auto& [name, fn] : variants)
        benchmark::RegisterBenchmark(("conv2d/" + name + "/" + l.name + "/" + pass_name(p)).c_str(), run_conv, l, p,
                                     fn)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    {
      auto cache = std::make_shared<WinogradFilterCache<float>>();
      benchmark::RegisterBenchmark(("conv2d/cached/" + l.name + "/fwd").c_str(), run_conv, l, Pass::Fwd,
                                   Fn([cache](Data& d, Pass) {
                                     conv2d_forward_cached(d.x.data(), d.w.data(), d.b.data(), d.g, d.y.data(), false,
                                                           0.0f, cache.get());
                                   }))
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    // The two algorithms and Winograd's tile sizes, side by side on all three passes.
    for (const auto& [name, o] : {std::pair<std::string, ConvOptions>{"im2col", dflt},
                                  {"winograd", winograd},
                                  {"winograd_f2", winograd_f2},
                                  {"winograd_f3", winograd_f3},
                                  {"winograd_f4", winograd_f4},
                                  {"winograd_grouped", winograd_grouped},
                                  {"winograd_fused", winograd_fused}})
      for (Pass p : {Pass::Fwd, Pass::BwdData, Pass::BwdFilter})
        benchmark::RegisterBenchmark(("conv2d/" + name + "/" + l.name + "/" + pass_name(p)).c_str(), run_conv, l, p,
                                     structured(&detail::conv_gemm_default<float>, o))
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    // The direct few-channel passes (conv_fewc.hpp) where they apply (conv1): forward and weight gradient.
    register_fewc(l, false);
    // Each GEMM form of the backward filter (ConvOptions::FilterForm; the default picks one by tile
    // fill): dycol (dW += dY * col^T), coldy (dW^T += col * dY^T), im2row (dW^T += rows^T * dY^T).
    for (const auto& [name, o] : {std::pair<std::string, ConvOptions>{"dycol", dycol_filter},
                                  {"coldy", coldy_filter},
                                  {"im2row", rows_filter}})
      benchmark::RegisterBenchmark(("conv2d/" + name + "/" + l.name + "/bwd_filter").c_str(), run_conv, l,
                                   Pass::BwdFilter, structured(&detail::conv_gemm_default<float>, o))
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
  // Other few-channel layers at batch 32, for the choice between the direct passes and im2col
  // (fewc_preferred): one channel, four, seven (63 taps), 5x5, stride 2 (MobileNet's first layer),
  // small planes, more filters.
  for (const Layer& l : {Layer{"fc_1x32_5x5@64", 1, 32, 64, Padding::Same, 5},
                         Layer{"fc_1x32@28", 1, 32, 28},
                         Layer{"fc_4x32@64", 4, 32, 64},
                         Layer{"fc_7x16@32", 7, 16, 32},
                         Layer{"fc_3x64@32", 3, 64, 32},
                         Layer{"fc_3x32_s2@224", 3, 32, 224, Padding::Same, 3, 2}})
    register_fewc(l, true);
  return 0;
}

const int registered = register_conv_benchmarks();

// Max pooling on model3's first two pools at batch 32 (after conv1: 3x3 / stride 3 over 32 x 150x150;
// after conv2: 2x2 / stride 2 over 64 x 50x50), inputs from {0, .., 7} so ties occur as after a ReLU:
//   pool/max/reference/<shape>  one window at a time with data-dependent branches (the scan the
//                               kernel ran before its select-based fast path; the test reference)
//   pool/max/default/<shape>    max_pool2d_forward
// The default is checked against the reference (values and argmax) before it is timed. GB/s counter:
// bytes of x read per second.
void max_pool_reference(const float* x, const Conv2DGeom& g, float* y, int32_t* argmax) {
  const int64_t HW = g.H * g.W, L = g.OH * g.OW;
#pragma omp parallel for
  for (int64_t nc = 0; nc < g.N * g.C; ++nc)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float best = 0;
        int32_t at = -1;
        for (int64_t r = 0; r < g.R; ++r)
          for (int64_t s = 0; s < g.S; ++s) {
            const int64_t ih = oh * g.stride_h - g.pad_top + r, iw = ow * g.stride_w - g.pad_left + s;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
            const float v = x[nc * HW + ih * g.W + iw];
            if (at < 0 || v > best) best = v, at = static_cast<int32_t>(ih * g.W + iw);
          }
        y[nc * L + oh * g.OW + ow] = best;
        argmax[nc * L + oh * g.OW + ow] = at;
      }
}

void run_pool(benchmark::State& state, int64_t C, int64_t hw, int64_t k, bool reference) {
  const Conv2DGeom g = make_conv_geom(kBatch, C, hw, hw, C, k, k, k, k, Padding::Valid);
  std::vector<float> x(static_cast<size_t>(g.N * C * hw * hw)), y(static_cast<size_t>(g.N * C * g.OH * g.OW)), yr = y;
  std::vector<int32_t> am(y.size()), amr(y.size());
  tinycnn::Rng rng(7);
  for (auto& v : x) v = static_cast<float>(rng.below(8));
  auto fn = [&] {
    if (reference)
      max_pool_reference(x.data(), g, y.data(), am.data());
    else
      max_pool2d_forward(x.data(), g, y.data(), am.data());
  };
  fn();
  max_pool_reference(x.data(), g, yr.data(), amr.data());
  if (y != yr || am != amr) {
    state.SkipWithError("differs from the reference scan");
    return;
  }
  for (auto _ : state) {
    fn();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(double(x.size() * sizeof(float)),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

int register_pool_benchmarks() {
  for (bool ref : {true, false}) {
    const std::string v = ref ? "reference" : "default";
    benchmark::RegisterBenchmark(("pool/max/" + v + "/3x3s3_32x150").c_str(), run_pool, 32, 150, 3, ref)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("pool/max/" + v + "/2x2s2_64x50").c_str(), run_pool, 64, 50, 2, ref)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("pool/max/" + v + "/2x2s2_256x15").c_str(), run_pool, 256, 15, 2, ref)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}

const int registered_pool = register_pool_benchmarks();

// The backward of 2x2 / 2 max pooling into a fresh gradient with a ReLU's mask and the bias sums, as
// conv2d_max_pool2d's backward runs it (max_pool2d_backward, dense plane writers), on model004's
// conv2 and conv4 outputs, model3's conv3 output and a 148 x 148 first-layer size:
// pool/max_backward/<variant>/2x2s2_<C>x<hw>, variant = default (max_pool2d_backward), compiled (the
// generic writer compiled for this CPU's widest ISA), avx2 and avx512 (pool_2x2.hpp's
// intrinsics copies, all planes). Each checked bitwise against the portable writer before it is timed.
void run_pool_backward(benchmark::State& state, int64_t C, int64_t hw, int variant) {
  const Conv2DGeom g = make_conv_geom(kBatch, C, hw, hw, C, 2, 2, 2, 2, Padding::Valid);
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
  std::vector<float> x(static_cast<size_t>(g.N * C * HW)), y(static_cast<size_t>(g.N * C * L));
  std::vector<int32_t> am(y.size());
  tinycnn::Rng rng(7);
  for (auto& v : x) v = static_cast<float>(static_cast<int64_t>(rng.below(8)) - 3);  // ReLU mask off on some
  max_pool2d_forward(x.data(), g, y.data(), am.data());
  std::vector<float> dy(y.size());
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  std::vector<float> dx(x.size()), want(x.size()), db(static_cast<size_t>(C)), sums(static_cast<size_t>(g.N * C));
  using Plane = void (*)(const float*, const int32_t*, const Conv2DGeom&, const float*, float, float*, float*);
  Plane plane = nullptr;
#ifdef TINYCNN_HAVE_X86_POOL
  if (variant == 1)
    plane = cpu_features().avx512 ? &detail::max_pool_backward_plane_dense_avx512<float, 2, 2>
                                  : &detail::max_pool_backward_plane_dense_avx2<float, 2, 2>;
  if (variant == 2) plane = &detail::max_pool2x2_backward_plane_avx2;
  if (variant == 3) plane = &detail::max_pool2x2_backward_plane_avx512;
#endif
  auto fn = [&] {
    if (variant == 0) return max_pool2d_backward(dy.data(), am.data(), g, dx.data(), true, y.data(), 0.0f, db.data());
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < g.N * C; ++nc)
      plane(dy.data() + nc * L, am.data() + nc * L, g, y.data() + nc * L, 0.0f, dx.data() + nc * HW, &sums[nc]);
  };
  fn();
  for (int64_t nc = 0; nc < g.N * C; ++nc)
    detail::max_pool_backward_plane_dense<float, 2, 2>(dy.data() + nc * L, am.data() + nc * L, g, y.data() + nc * L,
                                                       0.0f, want.data() + nc * HW, nullptr);
  if (dx != want) {
    state.SkipWithError("differs from the portable plane writer");
    return;
  }
  for (auto _ : state) {
    fn();
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(double((dx.size() + 3 * dy.size()) * sizeof(float)),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

int register_pool_backward_benchmarks() {
  const char* names[] = {"default", "compiled", "avx2", "avx512"};
  for (int v = 0; v < 4; ++v) {
#ifdef TINYCNN_HAVE_X86_POOL
    if ((v == 1 || v == 2) && !cpu_features().avx2_fma) continue;
    if (v == 3 && !cpu_features().avx512) continue;
#else
    if (v > 0) continue;
#endif
    for (auto [C, hw] : {std::pair<int64_t, int64_t>{256, 15}, {128, 25}, {64, 72}, {32, 148}})
      benchmark::RegisterBenchmark(
          ("pool/max_backward/" + std::string(names[v]) + "/2x2s2_" + std::to_string(C) + "x" + std::to_string(hw))
              .c_str(),
          run_pool_backward, C, hw, v)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
  return 0;
}

const int registered_pool_backward = register_pool_backward_benchmarks();

// A convolution with a fused ReLU and the max pooling after it, forward, on the scene models' first
// layers at batch 32 (model3: 3 -> 32 'same' at 150x150, 3x3 / 3 pooling; model004: 'valid' -> 148x148,
// 2x2 / 2) on the direct few-channel pass Auto picks (and on im2col: <layer>_im2col), and their second
// (32 -> 64, model3 'same' at 50x50, model004 'valid' 74 -> 72x72, 2x2 / 2 pooling), on the fused
// Winograd pass Auto picks:
//   conv_pool/separate/<layer>  conv2d_forward_ex into the full-size output (allocated once, outside
//                               the timing, which favours it: the op allocates it every step), then
//                               max_pool2d_forward over it
//   conv_pool/fused/<layer>     conv2d_max_pool2d_forward (conv_pool.hpp): each band of rows
//                               (few-channel pass, im2col) or Winograd block pooled while in L2, the
//                               full-size output never written
// fused is checked against separate (values and argmax, bit for bit) before it is timed. GFLOP/s: the
// convolution's.
std::vector<float> uniform_vec(int64_t n, uint64_t seed) {
  tinycnn::Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = static_cast<float>(rng.uniform(-1.0, 1.0));
  return v;
}

// A layer (batch kBatch, 3x3, stride 1, ReLU) and its max pooling (pool x pool, stride pool), with
// Auto's pass or im2col.
void run_conv_pool(benchmark::State& state, int64_t C, int64_t HW, int64_t K, bool same, int64_t pool, bool im2col,
                   bool fused) {
  const Conv2DGeom g = make_conv_geom(kBatch, C, HW, HW, K, 3, 3, 1, 1, same ? Padding::Same : Padding::Valid);
  const Conv2DGeom pg = make_conv_geom(g.N, g.K, g.OH, g.OW, g.K, pool, pool, pool, pool, Padding::Valid);
  ConvOptions o;
  if (im2col) o.algo = ConvOptions::Algo::Im2col;
  const auto x = uniform_vec(g.N * g.C * g.H * g.W, 11), w = uniform_vec(g.K * g.C * 9, 12), b = uniform_vec(g.K, 13);
  std::vector<float> y(static_cast<size_t>(g.N * g.K * g.OH * g.OW));
  std::vector<float> yp(static_cast<size_t>(g.N * g.K * pg.OH * pg.OW)), yr = yp;
  std::vector<int32_t> am(yp.size()), amr(yp.size());
  auto fn = [&](float* out, int32_t* a, bool f) {
    if (f) return conv2d_max_pool2d_forward(x.data(), w.data(), b.data(), g, pg, out, a, true, 0.0f, o);
    conv2d_forward_ex(x.data(), w.data(), b.data(), g, y.data(), true, &detail::conv_gemm_default<float>, o);
    max_pool2d_forward(y.data(), pg, out, a);
  };
  fn(yr.data(), amr.data(), false);
  fn(yp.data(), am.data(), fused);
  if (yp != yr || am != amr) {
    state.SkipWithError("fused differs from separate");
    return;
  }
  for (auto _ : state) {
    fn(yp.data(), am.data(), fused);
    benchmark::DoNotOptimize(yp.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(g.N * g.K * g.C * 9 * g.OH * g.OW) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

int register_conv_pool_benchmarks() {
  struct Layer {
    const char* name;
    int64_t C, HW, K;
    bool same;
    int64_t pool;
    bool im2col;
  };
  const Layer layers[] = {{"m3conv1_pool3", 3, 150, 32, true, 3, false},
                          {"m3conv1_im2col_pool3", 3, 150, 32, true, 3, true},
                          {"m004conv1_pool2", 3, 150, 32, false, 2, false},
                          {"m004conv1_im2col_pool2", 3, 150, 32, false, 2, true},
                          {"m3conv2_pool2", 32, 50, 64, true, 2, false},
                          {"m004conv2_pool2", 32, 74, 64, false, 2, false}};
  for (bool fused : {false, true})
    for (const Layer& l : layers)
      benchmark::RegisterBenchmark(("conv_pool/" + std::string(fused ? "fused/" : "separate/") + l.name).c_str(),
                                   run_conv_pool, l.C, l.HW, l.K, l.same, l.pool, l.im2col, fused)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  return 0;
}

const int registered_conv_pool = register_conv_pool_benchmarks();

// The weight and bias gradients of the same first layers (model3's and model004's conv1 under their
// pooling, batch 32, ReLU), from the pooled gradient, as the op runs them where the input needs no
// gradient:
//   conv_pool_filter/dense/<layer>   the full-size output gradient in chunks of samples
//                                    (max_pool2d_backward, with the ReLU's mask and the bias sum),
//                                    then the convolution's weight gradient over it: the route of a
//                                    layer whose input needs its gradient
//   conv_pool_filter/plain|avx2|avx512/<layer>  conv2d_max_pool_backward_filter variants 1-3
//                                    (conv_pool_filter.hpp): the winners only
// Each variant is checked against dense (to 1e-2: see below) before it is timed. GFLOP/s: the dense
// weight gradient's, so the counters compare as times.
void run_conv_pool_filter(benchmark::State& state, bool same, int64_t pool, int variant) {
  const Conv2DGeom g = make_conv_geom(kBatch, 3, 150, 150, 32, 3, 3, 1, 1, same ? Padding::Same : Padding::Valid);
  const Conv2DGeom pg = make_conv_geom(g.N, g.K, g.OH, g.OW, g.K, pool, pool, pool, pool, Padding::Valid);
  const auto x = uniform_vec(g.N * g.C * g.H * g.W, 21), w = uniform_vec(g.K * g.C * 9, 22), b = uniform_vec(g.K, 23);
  const int64_t np = pg.N * pg.C * pg.OH * pg.OW, in_n = g.C * g.H * g.W, pool_n = g.K * pg.OH * pg.OW;
  std::vector<float> yp(static_cast<size_t>(np));
  std::vector<int32_t> am(yp.size());
  conv2d_max_pool2d_forward(x.data(), w.data(), b.data(), g, pg, yp.data(), am.data(), true);
  const auto dyp = uniform_vec(np, 24);
  const int64_t chunk = conv2d_max_pool_backward_chunk<float>(g);
  std::vector<float> dy(static_cast<size_t>(chunk * g.K * g.OH * g.OW));
  auto fn = [&](int v, std::vector<float>& dw, std::vector<float>& db) {
    std::fill(dw.begin(), dw.end(), 0.0f);
    std::fill(db.begin(), db.end(), 0.0f);
    if (v > 0)
      return conv2d_max_pool_backward_filter(x.data(), dyp.data(), am.data(), yp.data(), 0.0f, g, pg, dw.data(),
                                             db.data(), v);
    for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
      Conv2DGeom gc = g, pc = pg;
      gc.N = pc.N = std::min(chunk, g.N - n0);
      max_pool2d_backward(dyp.data() + n0 * pool_n, am.data() + n0 * pool_n, pc, dy.data(), true,
                          yp.data() + n0 * pool_n, 0.0f, db.data());
      conv2d_backward_filter<float>(x.data() + n0 * in_n, dy.data(), gc, dw.data(), nullptr);
    }
  };
  std::vector<float> dw(static_cast<size_t>(g.K * g.C * 9)), db(static_cast<size_t>(g.K)), dwr = dw, dbr = db;
  fn(0, dwr, dbr);
  fn(variant, dw, db);
  // sums of ~10^6 terms of random sign in two orders: rounding reaches 1e-4, one lost winner ~0.3
  for (size_t i = 0; i < dw.size(); ++i)
    if (std::abs(dw[i] - dwr[i]) > 1e-2f) {
      state.SkipWithError("differs from dense");
      return;
    }
  for (auto _ : state) {
    fn(variant, dw, db);
    benchmark::DoNotOptimize(dw.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(g.N * g.K * g.C * 9 * g.OH * g.OW) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

int register_conv_pool_filter_benchmarks() {
  const std::pair<const char*, int> variants[] = {{"dense", 0}, {"plain", 1}, {"avx2", 2}, {"avx512", 3}};
  for (const auto& [name, v] : variants)
    for (const auto& [layer, same, pool] :
         {std::tuple<const char*, bool, int64_t>{"m3conv1_pool3", true, 3}, {"m004conv1_pool2", false, 2}}) {
      if ((v == 2 && !cpu_features().avx2_fma) || (v == 3 && !cpu_features().avx512)) continue;
      benchmark::RegisterBenchmark(("conv_pool_filter/" + std::string(name) + "/" + layer).c_str(),
                                   run_conv_pool_filter, same, pool, v)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  return 0;
}

const int registered_conv_pool_filter = register_conv_pool_filter_benchmarks();

// depthwise/<variant>/<C>x<H>_s<stride>: the forward of MobileNet v1 0.25's depthwise 3x3 layers at
// 224x224 (the shipped ensemble's members), batch 32; stride-2 layers on their zero-padded (H + 1)
// planes with 'valid' windows, as Keras builds them. Variants: reference (one output at a time),
// rows (variant 1, tap by tap over a row), 3x3 (variant 2, taps in registers; the default), each
// checked against the reference first.
void run_depthwise(benchmark::State& state, int64_t C, int64_t hw, int64_t stride, int variant) {
  const Conv2DGeom g = make_conv_geom(kBatch, C, hw, hw, C, 3, 3, stride, stride,
                                      stride == 1 ? Padding::Same : Padding::Valid);
  std::vector<float> x(static_cast<size_t>(g.N * C * hw * hw)), w(static_cast<size_t>(C * 9)),
      b(static_cast<size_t>(C)), y(static_cast<size_t>(g.N * C * g.OH * g.OW)), yr = y;
  tinycnn::Rng rng(9);
  for (auto* v : {&x, &w, &b})
    for (auto& e : *v) e = static_cast<float>(rng.uniform(-1.0, 1.0));
  auto fn = [&] {
    if (variant == 0) depthwise_conv2d_forward_ref(x.data(), w.data(), b.data(), g, y.data());
    else if (variant == 1) depthwise_conv2d_forward_rows(x.data(), w.data(), b.data(), g, y.data());
    else depthwise_conv2d_forward_3x3(x.data(), w.data(), b.data(), g, y.data());
  };
  fn();
  depthwise_conv2d_forward_ref(x.data(), w.data(), b.data(), g, yr.data());
  for (size_t i = 0; i < y.size(); ++i)
    if (!(std::fabs(y[i] - yr[i]) <= 1e-5f)) {
      state.SkipWithError("differs from the reference");
      return;
    }
  for (auto _ : state) {
    fn();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * 9 * double(y.size()), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["GB/s"] = benchmark::Counter(double((x.size() + y.size()) * sizeof(float)),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

int register_depthwise_benchmarks() {
  struct L { int64_t C, hw, stride; };
  for (int v = 0; v < 3; ++v)
    for (const L& l : {L{8, 112, 1}, L{16, 113, 2}, L{32, 56, 1}, L{32, 57, 2}, L{128, 14, 1}}) {
      const std::string name = std::string("depthwise/") + (v == 0 ? "reference" : v == 1 ? "rows" : "3x3") + "/" +
                               std::to_string(l.C) + "x" + std::to_string(l.hw) + "_s" + std::to_string(l.stride);
      benchmark::RegisterBenchmark(name.c_str(), run_depthwise, l.C, l.hw, l.stride, v)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  return 0;
}

const int registered_depthwise = register_depthwise_benchmarks();

}  // namespace
