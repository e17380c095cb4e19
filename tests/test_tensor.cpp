#include <doctest/doctest.h>

#include <cmath>
#include <tinycnn/tinycnn.hpp>

using namespace tinycnn;

TEST_CASE("tensor: shape, zero fill, aligned storage") {
  Tensor<float> t({2, 3, 4, 5});
  CHECK(t.rank() == 4);
  CHECK(t.numel() == 120);
  CHECK(t.dim(-1) == 5);
  CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
  for (int64_t i = 0; i < t.numel(); ++i) CHECK(t[i] == 0.0f);
  CHECK(t.device() == Device::CPU);
}

TEST_CASE("tensor: large fills (split across threads) reach every element, the tail piece too") {
  const int64_t n = (int64_t(1) << 18) + 12345;  // pieces of 2^16 elements: 4 full ones and a partial one
  Tensor<float> t = Tensor<float>::full({n}, 2.5f, Device::CPU);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += t[i] != 2.5f;
  CHECK(bad == 0);
  t.fill(0.0f);  // a recycled block with other values in it
  Tensor<float> z = Tensor<float>::zeros({n}, Device::CPU);
  for (int64_t i = 0; i < n; ++i) bad += (t[i] != 0.0f) + (z[i] != 0.0f);
  CHECK(bad == 0);
}

TEST_CASE("tensor: copies share storage, clone does not") {
  Tensor<double> a = Tensor<double>::full({3}, 2.0);
  Tensor<double> b = a;
  b[0] = 7;
  CHECK(a[0] == 7);
  Tensor<double> c = a.clone();
  c[1] = 9;
  CHECK(a[1] == 2);
  CHECK(a.shares_storage_with(b));
  CHECK_FALSE(a.shares_storage_with(c));
}

TEST_CASE("tensor: reshape view and errors name the op and shapes") {
  Tensor<float> t = Tensor<float>::from({2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor<float> v = t.reshape({3, -1});
  CHECK(v.shape() == Shape{3, 4});
  CHECK(v.at({2, 3}) == 11);
  v.at({0, 0}) = 42;
  CHECK(t[0] == 42);
  try {
    t.reshape({5, 5});
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    std::string m = e.what();
    CHECK(m.find("reshape") != std::string::npos);
    CHECK(m.find("[2, 6]") != std::string::npos);
    CHECK(m.find("[5, 5]") != std::string::npos);
  }
  CHECK_THROWS_AS(t.at({2, 0}), ShapeError);
}

TEST_CASE("tensor: seeded random init is reproducible; slice0 is a view") {
  Rng r1(42), r2(42);
  Tensor<float> a({100}), b({100});
  a.fill_uniform(-1, 1, r1);
  b.fill_uniform(-1, 1, r2);
  CHECK(a.to_vector() == b.to_vector());
  Tensor<float> s = a.slice0(10, 20);
  CHECK(s.numel() == 10);
  CHECK(s[0] == a[10]);
  Tensor<float> m = Tensor<float>::full({4, 2}, 1.0f);
  Tensor<float> m2 = m.slice0(1, 3);
  CHECK(m2.shape() == Shape{2, 2});
  CHECK_THROWS_AS(m.slice0(3, 5), ShapeError);
}

TEST_CASE("tensor: poison mode fills empty() with NaN") {
  debug::poison_allocations() = true;
  Tensor<float> t = Tensor<float>::empty({4});
  debug::poison_allocations() = false;
  CHECK(std::isnan(t[3]));
}

TEST_CASE("tensor: device placement; Device::CUDA without tinycnn::cuda is a clear error") {
  Tensor<float> t = Tensor<float>::full({3}, 2.f, Device::CPU);
  CHECK(t.device() == Device::CPU);
  CHECK(t.to(Device::CPU).shares_storage_with(t));  // no copy to where it already is
  CHECK(Tensor<double>::zeros({2, 2}, Device::CPU)[3] == 0.0);
#ifndef TINYCNN_HAS_CUDA
  CHECK_THROWS_WITH_AS(Tensor<float>::empty({2}, Device::CUDA), doctest::Contains("-DTINYCNN_USE_CUDA=ON"), Error);
  CHECK_THROWS_WITH_AS(t.to(Device::CUDA), doctest::Contains("tinycnn::cuda"), Error);
  // A model that cannot move stays where it was (all copies are made before any is installed).
  nn::Sequential<float> m(1);
  m.add<nn::Dense>(4);
  m.build({3});
  CHECK_THROWS_AS(m.to(Device::CUDA), Error);
  CHECK(m.device() == Device::CPU);
  optim::Adam<float> opt(m.parameters(true));
  CHECK_THROWS_AS(train::to_device(m, opt, Device::CUDA), Error);
#endif
}

TEST_CASE("ops: same_device of host inputs; sum_add reduces in double") {
  const Tensor<float> a = Tensor<float>::full({4}, 1.f);
  CHECK(same_device<float>("op", {&a, nullptr, &a}) == Device::CPU);
  std::vector<float> x(1000, 0.1f);
  float out = 1.f;
  kernels::cpu::sum_add(x.data(), 1000, &out);
  CHECK(out == doctest::Approx(101.f).epsilon(1e-6));
}
