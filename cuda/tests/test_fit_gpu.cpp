// End-to-end through the library's user-facing API on the GPU: an nn::Sequential CNN (Conv2D + ReLU,
// MaxPool, BatchNormalization, Dropout, Dense) with optim::Adam, moved with train::to_device and trained
// by train::fit from a host data source, against the same model trained on the CPU: the same losses
// epoch by epoch (within fp32 tolerance), the same accuracy, and a model file saved from the GPU
// model that predicts on the CPU what the GPU model predicts.
#include <cstdio>
#include <string>
#include <vector>

#include <tinycnn/io/model_file.hpp>
#include <tinycnn/nn/batch_normalization.hpp>
#include <tinycnn/nn/conv2d.hpp>
#include <tinycnn/nn/dense.hpp>
#include <tinycnn/nn/dropout.hpp>
#include <tinycnn/nn/flatten.hpp>
#include <tinycnn/nn/max_pool2d.hpp>
#include <tinycnn/nn/sequential.hpp>
#include <tinycnn/optim/adam.hpp>
#include <tinycnn/train/dataset.hpp>
#include <tinycnn/train/trainer.hpp>

#include "parity_util.hpp"

using namespace tinycnn;

namespace {

// Three classes of 12x12 RGB images: a bright square in one of three places, plus noise.
struct Data {
  Tensor<float> x;
  std::vector<int32_t> y;
};
Data make_data(int64_t n, uint64_t seed) {
  Rng r(seed);
  Data d{Tensor<float>({n, 3, 12, 12}), {}};
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = static_cast<int32_t>(i % 3);
    d.y.push_back(c);
    for (int64_t k = 0; k < 3 * 12 * 12; ++k) d.x[i * 432 + k] = static_cast<float>(0.3 * r.uniform(0.0, 1.0));
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < 4; ++w) d.x[i * 432 + ch * 144 + (h + 1 + 3 * c) * 12 + (w + 1 + 3 * c)] += 0.7f;
  }
  return d;
}

void build(nn::Sequential<float>& m) {
  m.add<nn::Conv2D>(8, 3, 1, "same", "relu");
  m.add<nn::MaxPool2D>(2);
  m.add<nn::BatchNormalization>();
  m.add<nn::Dropout>(0.2);
  m.add<nn::Flatten>();
  m.add<nn::Dense>(16, "relu");
  m.add<nn::Dense>(3);
  m.build({3, 12, 12});
}

}  // namespace

TEST_CASE("cuda runtime: Model::to(Device::CUDA) without a GPU throws and leaves the model on the CPU") {
  if (cuda::available()) return;  // the GPU case is the parity test below
  nn::Sequential<float> m(3);
  build(m);
  CHECK_THROWS_AS(m.to(Device::CUDA), Error);
  CHECK(m.device() == Device::CPU);
  for (auto& p : m.parameters()) CHECK(p.second.value().device() == Device::CPU);
}

TEST_CASE("cuda parity: nn::Sequential + Adam trained by fit() on the GPU matches the CPU run") {
  CT_REQUIRE_GPU();
  const Data tr = make_data(96, 1), va = make_data(48, 2);
  nn::Sequential<float> cpu(5), gpu(5);
  build(cpu);
  build(gpu);
  optim::Adam<float> ocpu(cpu.parameters(true), 3e-3), ogpu(gpu.parameters(true), 3e-3);
  train::to_device(gpu, ogpu, Device::CUDA);
  REQUIRE(gpu.device() == Device::CUDA);
  CHECK(gpu.stream().handle() != nullptr);  // its own stream (fit queues its work there)
  for (auto& b : gpu.buffers()) CHECK(b.second.value().device() == Device::CUDA);

  train::History h[2];
  for (int i = 0; i < 2; ++i) {
    train::TensorDataset ds(tr.x, tr.y, 16, true, 7), val(va.x, va.y, 16, false);
    train::FitOptions<float> o;
    o.epochs = 8;
    o.verbose = 0;
    o.validation = &val;
    o.clip_grad_norm = 5.0;  // exercises the device reduction path
    h[i] = i == 0 ? train::fit(cpu, ocpu, ds, o) : train::fit(gpu, ogpu, ds, o);
  }
  // Dropout masks are the same bits on both devices (counter-based generator); the rest differs only
  // by summation order, which Adam's normalised steps amplify slowly: compare loosely, per epoch.
  for (size_t e = 0; e < 8; ++e) {
    INFO("epoch " << e);
    CHECK(h[1]["loss"][e] == doctest::Approx(h[0]["loss"][e]).epsilon(0.05));
    CHECK(h[1]["val_loss"][e] == doctest::Approx(h[0]["val_loss"][e]).epsilon(0.05));
  }
  CHECK(h[0]["val_accuracy"].back() > 0.9);
  CHECK(h[1]["val_accuracy"].back() == doctest::Approx(h[0]["val_accuracy"].back()).epsilon(0.05));

  // Predictions of the GPU model, and of its saved file loaded on the CPU, agree.
  const Tensor<float> pg = train::predict(gpu, va.x, 16);
  CHECK(pg.device() == Device::CPU);
  const std::string path = "/tmp/tinycnn_fit_gpu_model.safetensors";
  io::ModelInfo info;
  info.class_names = {"a", "b", "c"};
  io::save_model(path, gpu, info);
  io::LoadedModel lm = io::load_model(path);
  std::remove(path.c_str());
  const Tensor<float> pc = train::predict(*lm.model, va.x, 16);
  REQUIRE(pc.shape() == pg.shape());
  for (int64_t i = 0; i < pc.numel(); ++i) CHECK(pg[i] == doctest::Approx(pc[i]).epsilon(1e-3));
}

TEST_CASE("cuda parity: a device model refuses host inputs with a message naming the op") {
  CT_REQUIRE_GPU();
  nn::Sequential<float> m(1);
  build(m);
  m.to(Device::CUDA);
  const Data d = make_data(2, 3);
  try {
    (void)m.forward(Var<float>(d.x));
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("different devices") != std::string::npos);
  }
}
