#pragma once
// intel_scenes bench: training and inference throughput on synthetic input (no files read).
#include <chrono>
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
};

struct BenchResult {
  double train_images_per_second = 0, infer_images_per_second = 0;
};

inline BenchResult run_bench(const BenchArgs& a, std::ostream& os) {
  if (!is_model_name(a.model)) throw UsageError("--model: unknown model '" + a.model + "' (known: " + model_names_list() + ")");
  if (a.batch < 1) throw UsageError("--batch: must be >= 1");
  if (a.steps < 1) throw UsageError("--steps: must be >= 1");
  if (a.threads > 0) set_num_threads(a.threads);
  const DeviceChoice dc = parse_device(a.device);
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
