#pragma once
// intel_scenes bench: training and inference throughput on synthetic input (no files read).
#include <algorithm>
#include <chrono>
#include <vector>
#include <string>

#include "common.hpp"
#include "models.hpp"

namespace intel_scenes {

struct BenchArgs {
  std::string model = "model2";
  int batch = 32;
  int steps = 5;
  int threads = 0;
  int input_size = 0;  // resnet only; 0: the model's own
  std::string device = "cpu";
  int scaling = 0;  // > 0: that many pairs of training steps on 1 and on all threads, alternated
};

struct BenchResult {
  double train_images_per_second = 0, infer_images_per_second = 0;
  double scaling = 0;  // --scaling: median over the pairs of (1-thread step time / T-thread step time)
};

namespace detail {
inline double median_of(std::vector<double> v, double q = 0.5) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}
}  // namespace detail

inline BenchResult run_bench(const BenchArgs& a, std::ostream& os) {
  if (!is_model_name(a.model)) throw UsageError("--model: unknown model '" + a.model + "' (known: " + model_names_list() + ")");
  if (a.batch < 1) throw UsageError("--batch: must be >= 1");
  if (a.steps < 1) throw UsageError("--steps: must be >= 1");
  if (a.scaling < 0) throw UsageError("--scaling: must be >= 1 (pairs of steps)");
  if (a.threads > 0) set_num_threads(a.threads);
  const DeviceChoice dc = parse_device(a.device);
  const int team = get_num_threads();
  if (a.scaling > 0 && dc.device != Device::CPU) throw UsageError("--scaling: compares CPU thread counts (--device cpu)");
  if (a.scaling > 0 && team < 2)
    throw UsageError("--scaling: needs 2 or more threads (--threads T, or a machine with more than one core)");
  const int size = a.input_size > 0 ? a.input_size : model_input_size(a.model);
  if (!builds_at_any_size(a.model) && size != model_input_size(a.model))
    throw UsageError("--input-size: only resnet and resnet14 take another input size (" + a.model + " is built for " +
                     std::to_string(model_input_size(a.model)) + ")");
  auto model = make_model(a.model, 6, 0, size);
  Rng rng(1);
  Tensor<float> x = Tensor<float>::empty({a.batch, 3, size, size});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.uniform(0.0, 1.0));
  model->to(dc.device);  // before the optimizer, so its state is created there too
  x = x.to(dc.device);
  std::vector<int32_t> y(static_cast<size_t>(a.batch));
  for (int i = 0; i < a.batch; ++i) y[static_cast<size_t>(i)] = i % 6;
  optim::Adam<float> opt(model->parameters(true), 1e-3);
  using Clock = std::chrono::steady_clock;
  auto train_step = [&] {
    Var<float> loss = ops::softmax_cross_entropy(model->forward(Var<float>(x)), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  auto infer_step = [&] {
    NoGradGuard ng;
    (void)model->forward(Var<float>(x));
  };
  os << "model " << a.model << " (" << train::thousands(train::count_params(*model).total) << " parameters), input "
     << size << "x" << size << ", batch " << a.batch << ", " << a.steps << " steps, threads "
     << (a.threads > 0 ? std::to_string(a.threads) : std::string("default")) << ", device " << dc.description << "\n";
  BenchResult r;
  nn::DeviceScope<float> on_device(*model);  // the model's own stream (GPU)
  model->train();
  train_step();  // warm-up (allocations, packing buffers)
  sync_device(dc.device);
  auto t0 = Clock::now();
  for (int s = 0; s < a.steps; ++s) train_step();
  sync_device(dc.device);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  r.train_images_per_second = double(a.batch) * a.steps / secs;
  if (a.scaling > 0) {
    // Steps on 1 and on `team` threads alternated in this one process (which goes first alternates
    // too), so a slow phase of a shared machine hits both sides of a pair: separate runs differed by
    // up to 10% from one minute to the next on the 2-vCPU development VM.
    auto timed_step = [&](int threads) {
      set_num_threads(threads);
      const auto s0 = Clock::now();
      train_step();
      return std::chrono::duration<double>(Clock::now() - s0).count();
    };
    timed_step(1);  // warm-up of the one-thread path
    std::vector<double> one, all, ratio;
    for (int i = 0; i < a.scaling; ++i) {
      double t1 = 0, tt = 0;
      if (i % 2) {
        t1 = timed_step(1);
        tt = timed_step(team);
      } else {
        tt = timed_step(team);
        t1 = timed_step(1);
      }
      one.push_back(t1), all.push_back(tt), ratio.push_back(t1 / tt);
    }
    set_num_threads(team);
    r.scaling = detail::median_of(ratio);
    os << std::fixed << std::setprecision(3) << "scaling: " << a.scaling << " pairs of training steps, 1 thread "
       << detail::median_of(one) << " s, " << team << " threads " << detail::median_of(all)
       << " s (medians); speed-up median " << std::setprecision(2) << r.scaling << "x, quartiles "
       << detail::median_of(ratio, 0.25) << "-" << detail::median_of(ratio, 0.75) << "\n"
       << std::defaultfloat;
  }
  model->eval();
  infer_step();
  sync_device(dc.device);
  t0 = Clock::now();
  for (int s = 0; s < a.steps; ++s) infer_step();
  sync_device(dc.device);
  secs = std::chrono::duration<double>(Clock::now() - t0).count();
  r.infer_images_per_second = double(a.batch) * a.steps / secs;
  os << "train images/s: " << std::fixed << std::setprecision(1) << r.train_images_per_second << "\n";
  os << "infer images/s: " << r.infer_images_per_second << "\n" << std::defaultfloat;
  return r;
}

}  // namespace intel_scenes
