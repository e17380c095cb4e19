// End-to-end on the GPU: a small CNN (bench/gpu/plain_cnn.hpp: conv/ReLU/pool blocks, dense head,
// softmax cross-entropy, Adam, all through the dispatch facade and device tensors) trained on the
// GPU follows the CPU step by step and reaches the CPU's training accuracy.
#include <plain_cnn.hpp>
#include <string>
#include <vector>

#include "parity_util.hpp"

using namespace tinycnn;
using gpu_bench::CnnSpec;
using gpu_bench::PlainCnn;

namespace {

CnnSpec small_spec() { return {3, 12, 10, {{4, true, 2}, {6, false, 1}, {5, true, 2}}, {8}, 3}; }

struct Batch {
  Tensor<float> x;
  std::vector<int32_t> labels;
};
Batch make_batch(int64_t N, const CnnSpec& s) {
  Batch b;
  b.x = Tensor<float>::empty({N, s.C, s.H, s.W});
  Rng rng(77);
  b.x.fill_uniform(0.f, 1.f, rng);
  for (int64_t n = 0; n < N; ++n) b.labels.push_back(static_cast<int32_t>(n % s.classes));
  return b;
}

}  // namespace

TEST_CASE("cuda runtime: the plain CNN trains on the CPU (its GPU twin is compared with this)") {
  const CnnSpec s = small_spec();
  const Batch b = make_batch(9, s);
  PlainCnn<float> cpu(s, 9, Device::CPU, 5, 1e-2f);
  cpu.set_labels(b.labels);
  cpu.train_step(b.x);
  const double first = cpu.mean_loss();
  for (int i = 0; i < 60; ++i) cpu.train_step(b.x);
  CHECK(cpu.mean_loss() < 0.3 * first);
  CHECK(cpu.accuracy(b.labels) == 1.0);
}

TEST_CASE("cuda parity: training a small CNN on the GPU follows the CPU and reaches its accuracy") {
  CT_REQUIRE_GPU();
  const CnnSpec s = small_spec();
  const int64_t N = 9;
  const Batch b = make_batch(N, s);
  const Tensor<float> xd = b.x.to(Device::CUDA);
  {  // step by step, small learning rate (Adam's first steps move every weight by about lr: sign flips of
     // near-zero gradients must stay below the tolerance)
    PlainCnn<float> cpu(s, N, Device::CPU, 5, 1e-4f), gpu(s, N, Device::CUDA, 5, 1e-4f);
    cpu.set_labels(b.labels);
    gpu.set_labels(b.labels);
    const auto w0c = cpu.weights(), w0g = gpu.weights();
    for (size_t i = 0; i < w0c.size(); ++i) CHECK(w0c[i] == w0g[i]);  // the same initial weights
    for (int step = 0; step < 3; ++step) {
      cpu.train_step(b.x);
      gpu.train_step(xd);
      CHECK_MESSAGE(
          std::fabs(gpu.mean_loss() - cpu.mean_loss()) <= 1e-4 + 1e-3 * std::fabs(cpu.mean_loss()),
          "step " << step << ": loss " << gpu.mean_loss() << " on the GPU, " << cpu.mean_loss() << " on the CPU");
    }
    const auto wc = cpu.weights(), wg = gpu.weights();
    for (size_t i = 0; i < wc.size(); ++i)
      ct::expect_close(wg[i], wc[i], {}, "weights of parameter " + std::to_string(i));
  }
  {  // training to convergence on the batch: both devices memorise it
    PlainCnn<float> cpu(s, N, Device::CPU, 5, 1e-2f), gpu(s, N, Device::CUDA, 5, 1e-2f);
    cpu.set_labels(b.labels);
    gpu.set_labels(b.labels);
    gpu.train_step(xd);
    const double first = gpu.mean_loss();
    for (int i = 0; i < 60; ++i) {
      cpu.train_step(b.x);
      gpu.train_step(xd);
    }
    CHECK(gpu.mean_loss() < 0.3 * first);
    CHECK(gpu.accuracy(b.labels) == cpu.accuracy(b.labels));
    CHECK(gpu.accuracy(b.labels) == 1.0);
  }
}

TEST_CASE("cuda parity: a training step captured in a CUDA graph equals the same step run eagerly") {
  CT_REQUIRE_GPU();
  const CnnSpec s = small_spec();
  const int64_t N = 9;
  const Batch b = make_batch(N, s);
  cuda::Stream st = cuda::Stream::create();
  cuda::StreamGuard guard(st);
  const Tensor<float> xd = b.x.to(Device::CUDA);
  PlainCnn<float> eager(s, N, Device::CUDA, 5, 1e-3f), graphed(s, N, Device::CUDA, 5, 1e-3f);
  eager.set_labels(b.labels);
  graphed.set_labels(b.labels);
  eager.train_step(xd);  // step 1 eagerly on both (warms the allocator)
  graphed.train_step(xd);
  eager.train_step(xd);  // step 2: eagerly here, from a graph there
  cuda::Graph g;
  g.begin_capture();
  graphed.train_step(xd);  // recorded with step number 2, not run
  g.end_capture();
  g.replay();
  const auto we = eager.weights(), wg = graphed.weights();
  for (size_t i = 0; i < we.size(); ++i)
    CHECK_MESSAGE(we[i] == wg[i], "parameter " << i << " differs");  // same kernels, same order
  CHECK(eager.mean_loss() == graphed.mean_loss());
}

namespace {
// Float64 gradient check of the whole PlainCnn (mean loss w.r.t. every parameter; up to 12 elements
// of each, spread over the tensor): train_step with learning rate 0 leaves the weights and keeps the
// gradients; central differences of forward().
void check_plain_cnn_gradients(Device dev) {
  const CnnSpec s{3, 8, 8, {{4, true, 2}, {3, false, 1}}, {5}, 3};
  const int64_t N = 3;
  Tensor<double> x = Tensor<double>::empty({N, s.C, s.H, s.W});
  Rng rng(8);
  x.fill_uniform(-1.0, 1.0, rng);
  const Tensor<double> xd = x.to(dev);
  PlainCnn<double> m(s, N, dev, 13, 0.0);
  m.set_labels({0, 2, 1});
  m.train_step(xd);
  const auto grads = m.gradients();
  auto w = m.weights();
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t n = w[i].size(), step = std::max<size_t>(1, n / 12);
    for (size_t e = 0; e < n; e += step) {
      const double keep = w[i][e], h = 1e-6;
      w[i][e] = keep + h;
      m.set_weight(i, w[i]);
      m.forward(xd);
      const double lp = m.mean_loss();
      w[i][e] = keep - h;
      m.set_weight(i, w[i]);
      m.forward(xd);
      const double lm = m.mean_loss();
      w[i][e] = keep;
      m.set_weight(i, w[i]);
      const double num = (lp - lm) / (2 * h);
      CHECK_MESSAGE(std::fabs(grads[i][e] - num) <= 1e-5 + 1e-3 * std::fabs(num),
                    device_name(dev) << " parameter " << i << "[" << e << "]: " << grads[i][e] << " vs " << num);
    }
  }
}
}  // namespace

TEST_CASE("cuda runtime: float64 gradient check of the plain CNN on the CPU") {
  check_plain_cnn_gradients(Device::CPU);
}

TEST_CASE("cuda gradcheck (float64): the whole plain CNN on the GPU") {
  CT_REQUIRE_GPU();
  check_plain_cnn_gradients(Device::CUDA);
}
