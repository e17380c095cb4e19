// Device tensors and the dispatch facade in a CUDA build (TINYCNN_HAS_CUDA): explicit to() copies,
// element access refused on device tensors, fills and copies on the device, backend::<kernel> routing
// Device::CUDA to tinycnn::cuda with the CPU's arguments (every entry instantiated below), and layers
// training on the CPU in a CUDA build. Only the headers needed (not tinycnn.hpp, whose data headers
// need stb, which a GPU machine may lack).
#include <string>
#include <tinycnn/autograd/ops/loss.hpp>
#include <tinycnn/backend/dispatch.hpp>
#include <tinycnn/core/tensor.hpp>
#include <tinycnn/nn/batch_normalization.hpp>
#include <tinycnn/nn/conv2d.hpp>
#include <tinycnn/nn/dense.hpp>
#include <tinycnn/nn/dropout.hpp>
#include <tinycnn/nn/flatten.hpp>
#include <tinycnn/nn/max_pool2d.hpp>
#include <tinycnn/nn/sequential.hpp>
#include <tinycnn/optim/adam.hpp>
#include <vector>

#include "parity_util.hpp"

using namespace tinycnn;

namespace {
// Never called: instantiates every TINYCNN_DISPATCH entry with the CPU kernels' argument types, so
// the build fails if a tinycnn::cuda function is missing or its signature drifts from its CPU twin.
template <class T>
[[maybe_unused]] void instantiate_every_dispatch_entry() {
  const Device d = Device::CUDA;
  T *p = nullptr, s = T(0);
  const T* c = nullptr;
  int32_t* arg = nullptr;
  const int32_t* carg = nullptr;
  const int64_t n = 0;
  kernels::cpu::Conv2DGeom g;
  kernels::cpu::ActParams<T> act;
  backend::gemm(d, false, false, n, n, n, s, c, n, c, n, s, p, n);
  backend::add_scaled(d, c, s, p, n);
  backend::sum_add(d, c, n, p);
  backend::mul_forward(d, c, c, p, n);
  backend::mul_backward(d, c, c, c, p, p, n);
  backend::add_bias_rows(d, p, c, n, n);
  backend::sum_rows_add(d, c, p, n, n);
  backend::activation_forward(d, act, c, p, n);
  backend::activation_backward(d, act, c, c, c, p, n);
  backend::softmax_forward(d, c, p, n, n);
  backend::softmax_backward(d, c, c, p, n, n);
  backend::softmax_cross_entropy_forward(d, c, carg, c, s, p, p, n, n);
  backend::softmax_cross_entropy_backward(d, c, carg, c, s, c, p, n, n);
  backend::bce_logits_forward(d, c, c, p, n);
  backend::bce_logits_backward(d, c, c, s, p, n);
  backend::dropout_apply(d, uint64_t(1), s, c, p, n);
  backend::sgd_update(d, p, c, p, n, s, s, false, s);
  backend::adam_update(d, p, c, p, p, n, s, s, s, s, n, s, false);
  backend::conv2d_forward(d, c, c, c, g, p);
  backend::conv2d_backward_data(d, c, c, g, p);
  backend::conv2d_backward_filter(d, c, c, g, p, p);
  backend::depthwise_conv2d_forward(d, c, c, c, g, p);
  backend::depthwise_conv2d_backward_data(d, c, c, g, p);
  backend::depthwise_conv2d_backward_filter(d, c, c, g, p, p);
  backend::max_pool2d_forward(d, c, g, p, arg);
  backend::max_pool2d_backward(d, c, carg, g, p);
  backend::avg_pool2d_forward(d, c, g, p);
  backend::avg_pool2d_backward(d, c, g, p);
  backend::global_avg_pool2d_forward(d, c, n, n, n, p);
  backend::global_avg_pool2d_backward(d, c, n, n, n, p);
  backend::batchnorm_forward_train(d, c, c, c, n, n, n, s, s, p, p, p, p, p);
  backend::batchnorm_forward_eval(d, c, c, c, c, c, n, n, n, s, p, p, p);
  backend::batchnorm_backward(d, c, c, c, c, c, n, n, n, false, p, p, p);
  backend::zero_pad2d_forward(d, c, n, n, n, n, n, n, n, n, p);
  backend::zero_pad2d_backward(d, c, n, n, n, n, n, n, n, n, p);
}
template void instantiate_every_dispatch_entry<float>();
template void instantiate_every_dispatch_entry<double>();

}  // namespace

TEST_CASE("cuda runtime: a CUDA build of the library still trains on the CPU") {
  nn::Sequential<float> model(/*seed=*/3);
  model.add<nn::Conv2D>(4, 3, 1, "same", "relu");
  model.add<nn::MaxPool2D>(2);
  model.add<nn::BatchNormalization>();
  model.add<nn::Flatten>();
  model.add<nn::Dropout>(0.1);
  model.add<nn::Dense>(3);
  model.build({2, 8, 8});
  optim::Adam<float> opt(model.parameters(true), 1e-2);
  Tensor<float> x = Tensor<float>::empty({6, 2, 8, 8});
  Rng rng(5);
  x.fill_uniform(-1.f, 1.f, rng);
  const std::vector<int32_t> labels = {0, 1, 2, 0, 1, 2};
  float first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    Var<float> loss = ops::softmax_cross_entropy(model(Var<float>(x)), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.value()[0];
  }
  CHECK(std::isfinite(last));
  CHECK(last < 0.5f * first);  // six samples are memorised
}

TEST_CASE("cuda runtime: without a GPU a device tensor cannot be made, and the error says why") {
  if (cuda::available()) {
    MESSAGE("a GPU is present: the no-GPU path is not reachable here");
    return;
  }
  const std::string m = ct::error_of([] { Tensor<float>::empty({2, 3}, Device::CUDA); });
  CHECK(m.find("cudaMalloc") != std::string::npos);
  CHECK(Tensor<float>::zeros({2, 3}).to(Device::CPU).device() == Device::CPU);  // no copy, no CUDA call
}

TEST_CASE("cuda parity: device tensors (to, element access, fill, clone, copy_from, random fills)") {
  CT_REQUIRE_GPU();
  Rng rng(1);
  Tensor<float> h = Tensor<float>::empty({3, 5});
  h.fill_uniform(-1.f, 1.f, rng);
  Tensor<float> d = h.to(Device::CUDA);
  CHECK(d.device() == Device::CUDA);
  CHECK(!d.shares_storage_with(h));
  CHECK(d.to(Device::CUDA).shares_storage_with(d));
  CHECK(d.to(Device::CPU).to_vector() == h.to_vector());
  CHECK(d.to_vector() == h.to_vector());
  const std::string m = ct::error_of([&] { (void)d[0]; });
  CHECK(m.find("lives on the cuda device") != std::string::npos);
  CHECK(ct::error_of([&] { (void)d.at({0, 0}); }).find("Tensor::at") != std::string::npos);
  CHECK(ct::error_of([&] { (void)Tensor<double>::cast(d); }).find("Tensor::cast") != std::string::npos);

  Tensor<float> c = d.clone();
  CHECK(c.device() == Device::CUDA);
  CHECK(!c.shares_storage_with(d));
  CHECK(c.to_vector() == h.to_vector());
  c.fill(2.5f);
  CHECK(c.to_vector() == std::vector<float>(15, 2.5f));
  CHECK(d.to_vector() == h.to_vector());  // the clone was a copy
  Tensor<float> back = Tensor<float>::zeros({3, 5});
  back.copy_from(c);  // device -> host
  CHECK(back.to_vector() == std::vector<float>(15, 2.5f));
  c.copy_from(h);  // host -> device
  CHECK(c.to_vector() == h.to_vector());
  Tensor<float> z = Tensor<float>::zeros({3, 5}, Device::CUDA);
  z.copy_from(d);  // device -> device
  CHECK(z.to_vector() == h.to_vector());
  // Random fills on the device give the CPU's values for the same generator state.
  Rng r1(9), r2(9);
  Tensor<float> a = Tensor<float>::empty({100}), b = Tensor<float>::empty({100}, Device::CUDA);
  a.fill_normal(0.f, 1.f, r1);
  b.fill_normal(0.f, 1.f, r2);
  CHECK(b.to_vector() == a.to_vector());
  // Views share device storage.
  const std::vector<float> hv = h.to_vector();
  CHECK(d.slice0(1, 2).to_vector() == std::vector<float>(hv.begin() + 5, hv.begin() + 10));
  // Poisoned device allocations are NaN.
  debug::poison_allocations() = true;
  Tensor<float> p = Tensor<float>::empty({4}, Device::CUDA);
  debug::poison_allocations() = false;
  for (float v : p.to_vector()) CHECK(v != v);
}

TEST_CASE("cuda parity: the dispatch facade routes Device::CUDA to tinycnn::cuda with the CPU's arguments") {
  CT_REQUIRE_GPU();
  Rng rng(2);
  const auto g = kernels::cpu::make_conv_geom(2, 3, 9, 7, 4, 3, 3, 1, 1, kernels::cpu::Padding::Same);
  Tensor<float> x = Tensor<float>::empty({2, 3, 9, 7}), w = Tensor<float>::empty({4, 3, 3, 3}),
                b = Tensor<float>::empty({4});
  x.fill_uniform(-1.f, 1.f, rng);
  w.fill_uniform(-1.f, 1.f, rng);
  b.fill_uniform(-1.f, 1.f, rng);
  Tensor<float> xd = x.to(Device::CUDA), wd = w.to(Device::CUDA), bd = b.to(Device::CUDA);
  Tensor<float> y = Tensor<float>::empty({2, 4, 9, 7}), yd = Tensor<float>::empty({2, 4, 9, 7}, Device::CUDA);
  backend::conv2d_forward(Device::CPU, x.data(), w.data(), b.data(), g, y.data());
  backend::conv2d_forward(Device::CUDA, xd.data(), wd.data(), bd.data(), g, yd.data());
  ct::expect_close(yd.to_vector(), y.to_vector(), {}, "backend::conv2d_forward on cuda");
  kernels::cpu::ActParams<float> relu;
  relu.kind = kernels::cpu::Act::ReLU;
  backend::activation_forward(Device::CPU, relu, y.data(), y.data(), y.numel());
  backend::activation_forward(Device::CUDA, relu, yd.data(), yd.data(), yd.numel());
  ct::expect_close(yd.to_vector(), y.to_vector(), {}, "backend::activation_forward on cuda");
  Tensor<float> c = Tensor<float>::empty({4, 4}), cd = Tensor<float>::empty({4, 4}, Device::CUDA);
  backend::gemm(Device::CPU, false, true, int64_t(4), int64_t(4), int64_t(27), 1.f, w.data(), int64_t(27), w.data(),
                int64_t(27), 0.f, c.data(), int64_t(4));
  backend::gemm(Device::CUDA, false, true, int64_t(4), int64_t(4), int64_t(27), 1.f, wd.data(), int64_t(27), wd.data(),
                int64_t(27), 0.f, cd.data(), int64_t(4));
  ct::expect_close(cd.to_vector(), c.to_vector(), {}, "backend::gemm on cuda");
}
