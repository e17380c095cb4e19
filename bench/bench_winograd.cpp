// Winograd transforms alone (conv_winograd.hpp): winograd_transform/<transform>/<layer>/m<m> on one
// sample group of model3's 3x3 layers at batch 32, cut as conv2d_forward cuts it (winograd_groups with
// its V + M bound of 4 M elements), tile m = 2 and 3, all threads:
//   input        V = B^T d B of the group's input, V in the GEMM kernel's packed layout (forward)
//   output       y = relu(A^T M A + bias) into the group's output planes (forward)
//   grad_output  G = A dy A^T of the group's output gradient (weight gradient)
//   filter       U = G w G^T of the layer's weights, U in the GEMM kernel's packed layout (forward)
// GB/s counter: bytes read plus bytes written (input and V, M and y, dy and G, w and U) per second. The
// transforms are data movement with a few adds each: this is the figure to hold against the
// machine's copy bandwidth (`stream/copy` in bench_models.cpp).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include <tinycnn/core/host_alloc.hpp>
#include <tinycnn/core/random.hpp>
#include <tinycnn/kernels/cpu/conv2d.hpp>

namespace {

using namespace tinycnn::kernels::cpu;
using Buffer = std::vector<float, tinycnn::HostAllocator<float>>;

enum class Transform { Input, Output, GradOutput, Filter };

void run_transform(benchmark::State& state, int64_t cin, int64_t cout, int64_t hw, int64_t m, Transform which) {
  const Conv2DGeom g = make_conv_geom(32, cin, hw, hw, cout, 3, 3, 1, 1, Padding::Same);
  const WinogradGeom q = winograd_geom_forward(g, m);
  int64_t nb = 0, groups = 0;
  detail::winograd_groups(q, int64_t(4) << 20, 512, nb, groups);
  const int64_t P = nb * q.tiles(), nr = gemm_prepacked_b_nr<float>(q.Ci);
  const int64_t n_in = nb * q.Ci * q.H * q.W, n_out = nb * q.Co * q.OH * q.OW;
  const int64_t n_v = q.points() * detail::winograd_v_plane(q.Ci, P, nr), n_m = q.points() * q.Co * P;
  Buffer in(static_cast<size_t>(which == Transform::GradOutput ? n_out : n_in)), V(static_cast<size_t>(n_v)),
      M(static_cast<size_t>(n_m)), out(static_cast<size_t>(n_out)), bias(static_cast<size_t>(q.Co));
  tinycnn::Rng rng(5);
  for (auto* v : {&in, &M, &bias})
    for (auto& e : *v) e = static_cast<float>(rng.uniform(-1.0, 1.0));
  if (which == Transform::Filter) {  // as conv2d_forward_ex runs it (its own parallel loop)
    const int64_t mr = gemm_prepacked_a_mr<float>(q.Ci), n_u = q.points() * detail::winograd_u_plane(q.Co, q.Ci, mr);
    Buffer w(static_cast<size_t>(q.Co * q.Ci * 9)), U(static_cast<size_t>(n_u));
    for (auto& e : w) e = static_cast<float>(rng.uniform(-1.0, 1.0));
    for (auto _ : state) {
      winograd_filter_transform(w.data(), q.Co, q.Ci, false, m, U.data(), q.Co * q.Ci >= 4096, mr);
      benchmark::ClobberMemory();
    }
    state.counters["GB/s"] = benchmark::Counter(double(w.size() + U.size()) * sizeof(float),
                                                benchmark::Counter::kIsIterationInvariantRate);
    return;
  }
  for (auto _ : state) {
#pragma omp parallel
    {
      if (which == Transform::Input)
        detail::winograd_input_transform(in.data(), q, 0, nb, V.data(), nr);
      else if (which == Transform::Output)
        detail::winograd_output_transform(M.data(), q, 0, nb, bias.data(), true, false, out.data());
      else
        detail::winograd_grad_output_transform(in.data(), q, 0, nb, M.data());
    }
    benchmark::ClobberMemory();
  }
  const double bytes = double(which == Transform::Input ? n_in + n_v : n_m + n_out) * sizeof(float);
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::to_string(nb) + " samples, " + std::to_string(P) + " tiles");
}

int register_winograd_benchmarks() {
  struct Layer {
    const char* name;
    int64_t cin, cout, hw;
  };
  for (const Layer& l : {Layer{"conv2_32x64@50", 32, 64, 50}, Layer{"conv3_64x128@25", 64, 128, 25},
                         Layer{"conv4_128x256@12", 128, 256, 12}, Layer{"conv5_256x512@6", 256, 512, 6},
                         Layer{"conv6_512x1024@6", 512, 1024, 6}})
    for (const auto& [name, t] : {std::pair<const char*, Transform>{"input", Transform::Input},
                                  {"output", Transform::Output},
                                  {"grad_output", Transform::GradOutput},
                                  {"filter", Transform::Filter}})
      for (int64_t m : {2, 3})
        benchmark::RegisterBenchmark(
            (std::string("winograd_transform/") + name + "/" + l.name + "/m" + std::to_string(m)).c_str(),
            run_transform, l.cin, l.cout, l.hw, m, t)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
  return 0;
}

const int registered = register_winograd_benchmarks();

}  // namespace
