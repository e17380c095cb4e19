// float64 gradient checks of the convolution-family ops and layers (small shapes: the whole file
// runs in a few seconds), and Keras parameter counts.
#include <algorithm>
#include <numeric>
#include <type_traits>

#include "grad_util.hpp"

using namespace tinycnn;
using tt::rand_t;

namespace {
// Distinct values spaced by 0.1 in random order, so max pooling has no ties within eps.
Tensor<double> distinct_t(Shape s, uint64_t seed) {
  Tensor<double> t(std::move(s));
  std::vector<int64_t> idx(static_cast<size_t>(t.numel()));
  std::iota(idx.begin(), idx.end(), 0);
  Rng r(seed);
  for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[r.below(i)]);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = 0.1 * static_cast<double>(idx[i]) - 0.05 * t.numel();
  return t;
}

// check_layer for pooling: inputs without ties.
void check_pool_layer(nn::Layer<double>& layer, const Shape& batch_shape, uint64_t seed) {
  Rng rng(seed);
  layer.build({Shape(batch_shape.begin() + 1, batch_shape.end())}, rng);
  layer.mark_built();
  Var<double> x(distinct_t(batch_shape, seed));
  tt::expect_grad_ok(gradcheck([&] { return layer.forward({x}); }, {x}));
}
}  // namespace

TEST_CASE("gradcheck: conv2d op") {
  Var<double> x(rand_t({2, 2, 5, 5}, 1)), w(rand_t({3, 2, 3, 3}, 2)), b(rand_t({3}, 3));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x, w, b, 2, 2, "same"); }, {x, w, b}));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x, w, Var<double>(), 1, 1, "valid"); }, {x, w}));
  Var<double> w1(rand_t({4, 2, 1, 1}, 4));
  Var<double> b1(rand_t({4}, 5));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x, w1, b1); }, {x, w1, b1}));  // 1x1 fast path
  // Fused ReLU: the same values as conv2d then relu, and its own gradients.
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x, w, b, 1, 1, "same", true); }, {x, w, b}));
  const Tensor<double> fused = ops::conv2d(x, w, b, 2, 2, "same", true).value();
  const Tensor<double> plain = ops::relu(ops::conv2d(x, w, b, 2, 2, "same")).value();
  REQUIRE(fused.shape() == plain.shape());
  int64_t zeros = 0;
  for (int64_t i = 0; i < fused.numel(); ++i) {
    CHECK(fused[i] == doctest::Approx(plain[i]).epsilon(1e-12));
    zeros += fused[i] == 0.0;
  }
  CHECK(zeros > 0);  // the mask is exercised
}

namespace {
// A fused, capped ReLU (ReLU6's kind; a small cap so both clips are hit): the values of the plain op
// then ops::relu(., cap), and its own gradients.
template <class F>
void check_capped_relu(F op, std::vector<Var<double>> wrt, double cap) {
  tt::expect_grad_ok(gradcheck([&] { return op(true, cap); }, wrt));
  const Tensor<double> fused = op(true, cap).value();
  const Tensor<double> plain = ops::relu(op(false, 0.0), cap).value();
  REQUIRE(fused.shape() == plain.shape());
  int64_t zeros = 0, capped = 0;
  for (int64_t i = 0; i < fused.numel(); ++i) {
    CHECK(fused[i] == doctest::Approx(plain[i]).epsilon(1e-12));
    zeros += fused[i] == 0.0;
    capped += fused[i] == cap;
  }
  CHECK(zeros > 0);
  CHECK(capped > 0);
}
}  // namespace

TEST_CASE("gradcheck: conv2d and depthwise_conv2d with a fused, capped ReLU") {
  Var<double> x(rand_t({2, 2, 5, 5}, 11)), w(rand_t({3, 2, 3, 3}, 12)), b(rand_t({3}, 13));
  check_capped_relu([&](bool r, double cap) { return ops::conv2d(x, w, b, 1, 1, "same", r, cap); }, {x, w, b}, 0.4);
  Var<double> w1(rand_t({4, 2, 1, 1}, 14));  // 1x1: the GEMM's epilogue on the input itself
  check_capped_relu([&](bool r, double cap) { return ops::conv2d(x, w1, Var<double>(), 1, 1, "valid", r, cap); },
                    {x, w1}, 0.3);
  Var<double> xw(rand_t({2, 16, 6, 6}, 15)), ww(rand_t({16, 16, 3, 3}, 16)), bw(rand_t({16}, 17));  // Winograd
  check_capped_relu([&](bool r, double cap) { return ops::conv2d(xw, ww, bw, 1, 1, "same", r, cap); }, {xw, ww, bw}, 1.0);
  Var<double> wd(rand_t({2, 2, 3, 3}, 18)), bd(rand_t({4}, 19));  // depthwise 3x3 (variant 2), and 2x3 (variant 1)
  check_capped_relu([&](bool r, double cap) { return ops::depthwise_conv2d(x, wd, bd, 2, 2, "same", r, cap); },
                    {x, wd, bd}, 0.3);
  Var<double> wd2(rand_t({2, 1, 2, 3}, 20));
  check_capped_relu([&](bool r, double cap) { return ops::depthwise_conv2d(x, wd2, Var<double>(), 1, 1, "valid", r, cap); },
                    {x, wd2}, 0.3);
}

// A max pooling after conv2d's fused ReLU applies the ReLU's mask itself (VarNode::relu_cap,
// grad_masked) and the convolution skips its masking pass: the same gradients, to the bit, as an
// unfused ReLU op in between, whether the pooling is the ReLU output's only consumer or another op
// also adds into its gradient, before the pooling's backward or after it.
TEST_CASE("conv2d with a fused ReLU, then max pooling: the pooling applies the mask") {
  Var<double> x(rand_t({2, 3, 7, 8}, 90), true), w(rand_t({4, 3, 3, 3}, 91), true), b(rand_t({4}, 92), true);
  const Tensor<double> c1 = rand_t({2, 4, 3, 4}, 93), c2 = rand_t({2, 4, 7, 8}, 94), w2 = rand_t({2, 4, 3, 3}, 95);
  for (double cap : {0.0, 0.4})
    for (int other : {0, 1, 2, 3}) {  // a second consumer of y: none, backward before, after (3: one that
                                      // writes a fresh gradient: input_grad_fresh)
      CAPTURE(cap);
      CAPTURE(other);
      auto loss = [&](bool fused) {
        const Var<double> y = fused ? ops::conv2d(x, w, b, 1, 1, "same", true, cap)
                                    : ops::relu(ops::conv2d(x, w, b, 1, 1, "same"), cap);
        const Var<double> l = ops::sum(ops::mul(ops::max_pool2d(y, 2, 2), Var<double>(c1)));
        const Var<double> extra = other == 3 ? ops::sum(ops::conv2d(y, Var<double>(w2), Var<double>(), 1, 1, "same"))
                                             : ops::sum(ops::mul(y, Var<double>(c2)));
        // backward runs the reverse of a depth-first post-order from the loss: the last-visited
        // operand's branch first
        return other == 0 ? l : other == 1 ? ops::add(l, extra) : ops::add(extra, l);  // 3: after
      };
      std::vector<Tensor<double>> grads[2];
      for (int fused : {0, 1}) {
        for (Var<double>* v : {&x, &w, &b}) v->zero_grad();
        loss(fused).backward();
        for (Var<double>* v : {&x, &w, &b}) grads[fused].push_back(v->grad().clone());
      }
      for (size_t i = 0; i < 3; ++i)
        for (int64_t e = 0; e < grads[0][i].numel(); ++e) CHECK(grads[1][i][e] == grads[0][i][e]);
      tt::expect_grad_ok(gradcheck([&] { return loss(true); }, {x, w, b}));
    }
}

namespace {
// conv2d_max_pool2d against conv2d then max_pool2d: the same pooled values and x's gradient (bit for
// bit: the same output gradient, masked by the pooled values in both), w's and b's within tol (the
// weight gradient's per-thread parts are added in the order the threads took their samples, and the
// bias is summed over the pooled gradient instead of the full-size one).
// x_grad false: x needs no gradient (a first layer), so the op takes w's and b's gradients from the
// pooled gradient at the winners (kernels/cpu/conv_pool_filter.hpp) where that pays.
template <class T>
void check_conv_pool_op(const Shape& xs, const Shape& ws, int64_t stride, const std::string& pad,
                        const ops::MaxPoolSpec& pool, T tol, uint64_t seed, bool x_grad = true) {
  auto cast = [](const Tensor<double>& d) {
    Tensor<T> t(d.shape());
    for (int64_t i = 0; i < d.numel(); ++i) t[i] = static_cast<T>(d[i]);
    return t;
  };
  Var<T> x(cast(rand_t(xs, seed)), x_grad), w(cast(rand_t(ws, seed + 1)), true), b(cast(rand_t({ws[0]}, seed + 2)), true);
  for (T cap : {T(-1), T(0), T(0.3)}) {  // no ReLU, ReLU, ReLU6-style cap
    CAPTURE(cap);
    const bool relu = cap >= T(0);
    const T rm = relu ? cap : T(0);
    Tensor<T> vals[2], grads[2][3];
    for (int fused : {0, 1}) {
      for (Var<T>* v : {&x, &w, &b}) v->zero_grad();
      const Var<T> y = fused ? ops::conv2d_max_pool2d(x, w, b, stride, stride, pad, relu, rm, pool)
                             : ops::max_pool2d(ops::conv2d(x, w, b, stride, stride, pad, relu, rm), pool.pool_h,
                                               pool.pool_w, pool.stride_h, pool.stride_w, pool.padding);
      vals[fused] = y.value().clone();
      const Var<T> c(cast(rand_t(y.shape(), seed + 3)));
      ops::sum(ops::mul(y, c)).backward();
      for (int i = x_grad ? 0 : 1; i < 3; ++i) grads[fused][i] = (i == 0 ? x : i == 1 ? w : b).grad().clone();
    }
    REQUIRE(vals[1].shape() == vals[0].shape());
    int64_t bad = 0;
    for (int64_t e = 0; e < vals[0].numel(); ++e) bad += !(vals[1][e] == vals[0][e]);
    if (x_grad)
      for (int64_t e = 0; e < grads[0][0].numel(); ++e) bad += !(grads[1][0][e] == grads[0][0][e]);
    CHECK(bad == 0);
    for (int i = 1; i < 3; ++i)
      for (int64_t e = 0; e < grads[0][i].numel(); ++e)
        CHECK(std::abs(grads[1][i][e] - grads[0][i][e]) <= tol * (T(1) + std::abs(grads[0][i][e])));
    if constexpr (std::is_same_v<T, double>) {
      auto op = [&] { return ops::conv2d_max_pool2d(x, w, b, stride, stride, pad, relu, rm, pool); };
      tt::expect_grad_ok(x_grad ? gradcheck(op, {x, w, b}) : gradcheck(op, {w, b}));
    }
  }
}
}  // namespace

TEST_CASE("conv2d_max_pool2d: the values and gradients of conv2d then max_pool2d, one op") {
  // im2col with a few input channels (the fused CPU pass), windows that tile the output or not, a
  // 2x2 convolution with stride 2 under an overlapping 'same' pooling, a 1x1 convolution, 16
  // channels (the fused Winograd pass: each block pooled from its buffer), 128 -> 160 channels (the
  // grouped Winograd pass: the output written whole, pooled and freed), and outputs large enough for
  // the backward to run in chunks of samples; float and double.
  const ops::MaxPoolSpec p2{2, 2}, p3{3, 3}, p3s2{3, 3, 2, 2, "same"};
  check_conv_pool_op<float>({3, 3, 9, 10}, {4, 3, 3, 3}, 1, "valid", p2, 1e-5f, 100);
  check_conv_pool_op<float>({2, 3, 8, 8}, {5, 3, 3, 3}, 1, "same", p3, 1e-5f, 110);
  check_conv_pool_op<float>({3, 2, 8, 7}, {3, 2, 2, 2}, 2, "same", p3s2, 1e-5f, 120);
  check_conv_pool_op<float>({2, 4, 6, 6}, {3, 4, 1, 1}, 1, "valid", p2, 1e-5f, 130);
  const auto wino = kernels::cpu::make_conv_geom(2, 16, 8, 7, 16, 3, 3, 1, 1, kernels::cpu::Padding::Same);
  const auto wino_pool = kernels::cpu::make_conv_geom(2, 16, 8, 7, 16, 2, 2, 2, 2, kernels::cpu::Padding::Valid);
  REQUIRE_FALSE(kernels::cpu::conv_forward_in_groups<float>(wino));
  REQUIRE(kernels::cpu::conv2d_max_pool_fuses<float>(wino, wino_pool));
  check_conv_pool_op<float>({2, 16, 8, 7}, {16, 16, 3, 3}, 1, "same", p2, 1e-5f, 140);
  const auto deep = kernels::cpu::make_conv_geom(2, 128, 6, 6, 160, 3, 3, 1, 1, kernels::cpu::Padding::Same);
  const auto deep_pool = kernels::cpu::make_conv_geom(2, 160, 6, 6, 160, 2, 2, 2, 2, kernels::cpu::Padding::Valid);
  REQUIRE_FALSE(kernels::cpu::conv2d_max_pool_fuses<float>(deep, deep_pool));
  check_conv_pool_op<float>({2, 128, 6, 6}, {160, 128, 3, 3}, 1, "same", p2, 1e-5f, 142);
  // an output of 4 MB per sample: the backward runs in chunks of samples (of 2 on 2 threads, the
  // last one shorter)
  const auto big = kernels::cpu::make_conv_geom(5, 1, 260, 260, 16, 3, 3, 1, 1, kernels::cpu::Padding::Valid);
  REQUIRE(kernels::cpu::conv2d_max_pool_backward_chunk<float>(big) < big.N);
  check_conv_pool_op<float>({5, 1, 260, 260}, {16, 1, 3, 3}, 1, "valid", p2, 1e-4f, 145);
  // x without a gradient: w's and b's from the winners (the scene models' first layers: 3x3 'same'
  // under 3x3 pooling, 'valid' under 2x2; a strided one under overlapping pooling), and where that
  // does not pay (16 channels) the dense route
  check_conv_pool_op<float>({3, 3, 20, 19}, {6, 3, 3, 3}, 1, "same", p3, 1e-5f, 146, false);
  check_conv_pool_op<float>({3, 3, 14, 15}, {4, 3, 3, 3}, 1, "valid", p2, 1e-5f, 147, false);
  check_conv_pool_op<float>({2, 16, 8, 7}, {16, 16, 3, 3}, 1, "same", p2, 1e-5f, 148, false);
  check_conv_pool_op<double>({2, 3, 7, 8}, {4, 3, 3, 3}, 1, "same", p3, 1e-12, 151, false);
  check_conv_pool_op<double>({2, 2, 8, 7}, {3, 2, 2, 2}, 2, "same", p3s2, 1e-12, 161, false);
  check_conv_pool_op<double>({2, 3, 7, 8}, {4, 3, 3, 3}, 1, "same", p2, 1e-12, 150);
  check_conv_pool_op<double>({2, 2, 8, 7}, {3, 2, 2, 2}, 2, "same", p3s2, 1e-12, 160);
  check_conv_pool_op<double>({1, 16, 6, 5}, {16, 16, 3, 3}, 1, "same", p3, 1e-12, 170);
  // the input fed by another op: its gradient buffer starts unfilled (NaN in the checker)
  Var<double> x(rand_t({2, 2, 6, 6}, 180)), w(rand_t({3, 2, 3, 3}, 181)), b(rand_t({3}, 182));
  tt::expect_grad_ok(gradcheck(
      [&] { return ops::conv2d_max_pool2d(ops::scale(x, 1.0), w, b, 1, 1, "same", true, 0.0, p2); }, {x, w, b}));
  // errors name the op
  CHECK_THROWS_WITH_AS(ops::conv2d_max_pool2d(x, w, b, 1, 1, "valid", false, 0.0, ops::MaxPoolSpec{5, 5}),
                       doctest::Contains("conv2d_max_pool2d"), ShapeError);
  Var<double> w4(rand_t({3, 4, 3, 3}, 183));
  CHECK_THROWS_WITH_AS(ops::conv2d_max_pool2d(x, w4, Var<double>(), 1, 1, "valid", false, 0.0, p2),
                       doctest::Contains("conv2d_max_pool2d"), ShapeError);
}

TEST_CASE("gradcheck: conv2d op on the Winograd path (3x3, stride 1, 16 channels)") {
  // 16 in and out channels: the default dispatch computes all three passes by Winograd, F(2x2, 3x3)
  // on this 5x4 plane (winograd_tile_for: 3 from 6x6 up; winograd_filter_tile_for: 2 on 5x4, where
  // m = 3's tiles hold more points), F(3x3, 3x3) on the 8x9 and 6x7 ones below.
  Var<double> x(rand_t({2, 16, 5, 4}, 6)), w(rand_t({16, 16, 3, 3}, 7)), b(rand_t({16}, 8));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x, w, b, 1, 1, "same", true); }, {x, w, b}));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x, w, Var<double>(), 1, 1, "valid"); }, {x, w}));
  Var<double> x8(rand_t({1, 16, 8, 9}, 9));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x8, w, b, 1, 1, "same", true); }, {x8, w, b}));
  Var<double> x6(rand_t({1, 16, 6, 7}, 10));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(x6, w, b, 1, 1, "same", true); }, {x6, w, b}));
}

TEST_CASE("gradcheck: backward passes into a fresh input gradient (the op fed by another op)") {
  // scale(x, 1) makes the conv / pool input an intermediate whose gradient buffer starts unfilled (NaN
  // in the checker's poison mode): each backward must write or zero every element of it itself.
  auto pre = [](const Var<double>& v) { return ops::scale(v, 1.0); };
  Var<double> x(rand_t({2, 2, 5, 5}, 80)), w(rand_t({3, 2, 3, 3}, 81)), b(rand_t({3}, 82));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(pre(x), w, b, 2, 2, "same"); }, {x, w, b}));  // col2im
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(pre(x), w, b, 2, 2, "valid"); }, {x, w, b}));  // uncovered
  Var<double> w1(rand_t({4, 2, 1, 1}, 83));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(pre(x), w1, Var<double>()); }, {x, w1}));  // 1x1 GEMM
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(pre(x), w, b, 1, 1, "same", true); }, {x, w, b}));
  Var<double> x16(rand_t({2, 16, 5, 4}, 84)), w16(rand_t({16, 16, 3, 3}, 85));
  tt::expect_grad_ok(gradcheck([&] { return ops::conv2d(pre(x16), w16, Var<double>(), 1, 1, "same"); }, {x16, w16}));
  Var<double> x6(rand_t({1, 2, 6, 6}, 86)), wd(rand_t({2, 2, 3, 3}, 87));
  tt::expect_grad_ok(gradcheck([&] { return ops::depthwise_conv2d(pre(x6), wd, Var<double>(), 2, 2, "valid"); }, {x6, wd}));
  tt::expect_grad_ok(gradcheck([&] { return ops::max_pool2d(pre(x), 2, 2); }, {x}));  // last row / column unused
}

TEST_CASE("gradcheck: Conv2D layer geometries") {
  SUBCASE("stride 2, same, odd input") {
    nn::Conv2D<double> c(3, 3, 2, "same");
    tt::check_layer(c, {2, 2, 5, 5}, 20);
  }
  SUBCASE("stride 2, same, even input") {
    nn::Conv2D<double> c(3, 3, 2, "same", "tanh");
    tt::check_layer(c, {2, 2, 6, 6}, 21);
  }
  SUBCASE("valid, stride 1") {
    nn::Conv2D<double> c(2, 3, 1, "valid");
    tt::check_layer(c, {2, 3, 5, 4}, 22);
  }
  SUBCASE("non-square kernel and strides, no bias") {
    nn::Conv2D<double> c(2, {3, 2}, {1, 2}, "same", "", false);
    tt::check_layer(c, {2, 2, 5, 6}, 23);
  }
  SUBCASE("1x1") {
    nn::Conv2D<double> c(3, 1);
    tt::check_layer(c, {2, 4, 3, 3}, 24);
  }
  SUBCASE("relu activation (fused into the convolution)") {
    nn::Conv2D<double> c(3, 3, 1, "same", "relu");
    tt::check_layer(c, {2, 2, 5, 5}, 25);
  }
  SUBCASE("relu6 activation (fused into the convolution)") {
    nn::Conv2D<double> c(3, 3, 1, "same", "relu6");
    tt::check_layer(c, {2, 2, 5, 5}, 26);
  }
}

TEST_CASE("gradcheck: DepthwiseConv2D") {
  SUBCASE("multiplier 1, valid") {
    nn::DepthwiseConv2D<double> d(3);
    tt::check_layer(d, {2, 3, 5, 5}, 30);
  }
  SUBCASE("multiplier 2, stride 2, same") {
    nn::DepthwiseConv2D<double> d(3, 2, "same", 2);
    tt::check_layer(d, {2, 2, 6, 5}, 31);
  }
  SUBCASE("relu6 activation (fused into the planes' stores)") {
    nn::DepthwiseConv2D<double> d(3, 1, "same", 1, "relu6");
    tt::check_layer(d, {2, 3, 5, 5}, 34);
  }
  SUBCASE("op without bias") {
    Var<double> x(rand_t({1, 2, 4, 4}, 32)), w(rand_t({2, 2, 2, 3}, 33));
    tt::expect_grad_ok(gradcheck([&] { return ops::depthwise_conv2d(x, w, Var<double>(), 1, 1, "same"); }, {x, w}));
  }
}

TEST_CASE("gradcheck: pooling layers (inputs without ties)") {
  SUBCASE("MaxPool2D valid") {
    nn::MaxPool2D<double> p(2);
    check_pool_layer(p, {2, 2, 4, 5}, 40);
  }
  SUBCASE("MaxPool2D same, stride 2, odd") {
    nn::MaxPool2D<double> p(3, 2, "same");
    check_pool_layer(p, {2, 2, 5, 5}, 41);
  }
  SUBCASE("MaxPool2D overlapping windows, stride 1") {
    nn::MaxPool2D<double> p(2, 1);
    check_pool_layer(p, {1, 2, 4, 4}, 42);
  }
  SUBCASE("AvgPool2D valid") {
    nn::AvgPool2D<double> p(2);
    check_pool_layer(p, {2, 2, 4, 5}, 43);
  }
  SUBCASE("AvgPool2D same, even and odd") {
    nn::AvgPool2D<double> p(3, 2, "same");
    check_pool_layer(p, {2, 2, 6, 5}, 44);
  }
  SUBCASE("GlobalAvgPool2D") {
    nn::GlobalAvgPool2D<double> p;
    check_pool_layer(p, {2, 3, 3, 4}, 45);
  }
}

TEST_CASE("gradcheck: BatchNormalization") {
  SUBCASE("training, 4-D") {
    nn::BatchNormalization<double> bn;
    tt::check_layer(bn, {3, 2, 3, 3}, 50);
  }
  SUBCASE("training, 2-D") {
    nn::BatchNormalization<double> bn;
    tt::check_layer(bn, {5, 4}, 51);
  }
  SUBCASE("eval, 4-D, non-trivial running statistics") {
    nn::BatchNormalization<double> bn;
    bn.set_training(false);
    Rng rng(52);
    bn.build({{2, 3, 3}}, rng);
    bn.moving_mean().value().copy_from(rand_t({2}, 53));
    bn.moving_variance().value().copy_from(rand_t({2}, 54, 0.5, 2));
    bn.gamma().value().copy_from(rand_t({2}, 55));
    bn.beta().value().copy_from(rand_t({2}, 56));
    Var<double> x(rand_t({2, 2, 3, 3}, 57));
    tt::expect_grad_ok(gradcheck([&] { return bn.forward({x}); }, {x, bn.gamma(), bn.beta()}));
  }
  SUBCASE("eval op with explicit running statistics") {
    Var<double> x(rand_t({3, 2, 2, 2}, 56)), g(rand_t({2}, 57)), b(rand_t({2}, 58));
    Tensor<double> rm = rand_t({2}, 59), rv = rand_t({2}, 60, 0.5, 2);
    tt::expect_grad_ok(gradcheck([&] { return ops::batch_norm(x, g, b, rm, rv, false); }, {x, g, b}));
    // fed by another op (a fresh dx buffer, written instead of added into), both modes
    tt::expect_grad_ok(gradcheck([&] { return ops::batch_norm(ops::scale(x, 2.0), g, b, rm, rv, false); }, {x, g, b}));
    Tensor<double> rm2 = rm.clone(), rv2 = rv.clone();
    tt::expect_grad_ok(gradcheck([&] { return ops::batch_norm(ops::scale(x, 2.0), g, b, rm2, rv2, true); }, {x, g, b}));
  }
  SUBCASE("frozen layer uses the moving statistics") {
    nn::BatchNormalization<double> bn;
    Rng rng(61);
    bn.build({{3}}, rng);
    bn.set_trainable(false);
    Var<double> x(rand_t({4, 3}, 62, 2, 3));
    const Var<double> y = bn.forward({x});
    // moving mean 0, variance 1: y = x / sqrt(1 + eps)
    for (int64_t i = 0; i < 12; ++i) CHECK(y.value()[i] == doctest::Approx(x.value()[i] / std::sqrt(1 + 1e-3)));
    CHECK(bn.moving_mean().value()[0] == 0.0);
  }
  SUBCASE("training updates the moving statistics") {
    nn::BatchNormalization<double> bn(0.5);
    Rng rng(63);
    bn.build({{1}}, rng);
    Var<double> x(Tensor<double>::from({4, 1}, {1, 2, 3, 6}));
    bn.forward({x});
    CHECK(bn.moving_mean().value()[0] == doctest::Approx(0.5 * 0 + 0.5 * 3));
    CHECK(bn.moving_variance().value()[0] == doctest::Approx(0.5 * 1 + 0.5 * (14.0 / 3)));  // unbiased: 14/3
    bn.set_momentum(0.0);  // momentum 0: the moving statistics become the last batch's
    bn.forward({x});
    CHECK(bn.moving_mean().value()[0] == doctest::Approx(3));
    CHECK_THROWS_WITH_AS(bn.set_momentum(-0.1), doctest::Contains("momentum"), ValueError);
  }
}

TEST_CASE("gradcheck: ZeroPadding2D") {
  nn::ZeroPadding2D<double> a(1);
  tt::check_layer(a, {2, 2, 3, 3}, 70);
  nn::ZeroPadding2D<double> b(1, 2);
  tt::check_layer(b, {1, 2, 3, 2}, 71);
  nn::ZeroPadding2D<double> c({0, 1}, {2, 0});
  tt::check_layer(c, {2, 1, 3, 3}, 72);
}

TEST_CASE("gradcheck: Cropping2D") {
  nn::Cropping2D<double> a(1);
  tt::check_layer(a, {2, 2, 4, 4}, 73);
  nn::Cropping2D<double> b(1, 0);
  tt::check_layer(b, {1, 2, 4, 3}, 74);
  nn::Cropping2D<double> c({0, 1}, {2, 0});
  tt::check_layer(c, {2, 1, 3, 4}, 75);
  // The window it keeps: rows 0..1, columns 2..3 of a 3x4 plane.
  Tensor<double> x({1, 1, 3, 4});
  for (int64_t i = 0; i < 12; ++i) x[i] = static_cast<double>(i);
  const Tensor<double> y = ops::crop2d(Var<double>(x), 0, 1, 2, 0).value();
  REQUIRE(y.shape() == Shape{1, 1, 2, 2});
  CHECK(y[0] == 2);
  CHECK(y[1] == 3);
  CHECK(y[2] == 6);
  CHECK(y[3] == 7);
  Rng rng(1);
  nn::Cropping2D<float> all(2);
  CHECK_THROWS_WITH_AS(all.build({{3, 4, 8}}, rng), doctest::Contains("leaves no pixels"), ShapeError);
  CHECK_THROWS_WITH_AS(nn::Cropping2D<float>(-1), doctest::Contains("non-negative"), ValueError);
}

TEST_CASE("conv-family layers: parameter counts and shapes match Keras") {
  nn::Sequential<float> m(1);
  auto& c1 = m.add<nn::Conv2D>(32, 3, 1, "same", "relu");
  auto& bn = m.add<nn::BatchNormalization>();
  auto& dw = m.add<nn::DepthwiseConv2D>(3, 2, "same", 2);
  auto& pool = m.add<nn::MaxPool2D>();
  auto& c2 = m.add<nn::Conv2D>(16, nn::Size2{1, 1}, 1, "valid", "", false);
  auto& zp = m.add<nn::ZeroPadding2D>(std::pair<int64_t, int64_t>{1, 0}, std::pair<int64_t, int64_t>{0, 1});
  auto& ap = m.add<nn::AvgPool2D>(2, 1, "same");
  m.add<nn::GlobalAvgPool2D>();
  m.build({3, 28, 28});
  CHECK(c1.count_params() == 896);
  CHECK(bn.count_params() == 128);
  CHECK(bn.parameters().size() == 2);
  CHECK(bn.buffers().size() == 2);
  CHECK(dw.count_params() == 32 * 2 * 9 + 64);  // 640
  CHECK(pool.count_params() == 0);
  CHECK(c2.count_params() == 64 * 16);
  CHECK(zp.count_params() == 0);
  CHECK(ap.count_params() == 0);
  CHECK(c1.type() == "Conv2D");
  CHECK(pool.type() == "MaxPooling2D");
  CHECK(ap.type() == "AveragePooling2D");
  CHECK(bn.type() == "BatchNormalization");
  Var<float> x(Tensor<float>({2, 3, 28, 28}));
  CHECK(m.forward(x).shape() == Shape{2, 16});
  // Keras' Conv2D(64, 3) on 64 channels: 36928; BatchNormalization(64): 256.
  nn::Conv2D<float> c3(64, 3);
  Rng rng(2);
  c3.build({{64, 10, 10}}, rng);
  CHECK(c3.count_params() == 36928);
}

TEST_CASE("gradcheck: Resizing and Rescaling (the layers that carry a model's own preprocessing)") {
  SUBCASE("ops") {
    Var<double> x(rand_t({2, 2, 5, 7}, 80));
    for (bool aa : {false, true}) {
      tt::expect_grad_ok(gradcheck([&] { return ops::resize2d(x, 3, 4, aa); }, {x}));   // shrink
      tt::expect_grad_ok(gradcheck([&] { return ops::resize2d(x, 8, 11, aa); }, {x}));  // enlarge
      tt::expect_grad_ok(gradcheck([&] { return ops::resize2d(x, 2, 7, aa); }, {x}));   // one axis only
    }
    tt::expect_grad_ok(gradcheck([&] { return ops::channel_affine(x, {0.5, -2.0}, {1.0, 0.25}); }, {x}));
    tt::expect_grad_ok(gradcheck([&] { return ops::channel_affine(x, {3.0}, {-1.0}); }, {x}));
  }
  SUBCASE("layers") {
    nn::Resizing<double> up(6, 9, "bilinear", false), down(2, 3, "bilinear", true);
    tt::check_layer(up, {2, 3, 4, 5}, 81);
    tt::check_layer(down, {2, 3, 4, 5}, 82);
    nn::Rescaling<double> r1(1.0 / 127.5, -1.0), r3({2.0, 3.0, 4.0}, {0.0, 1.0, -1.0});
    tt::check_layer(r1, {2, 3, 2, 2}, 83);
    tt::check_layer(r3, {2, 3, 2, 2}, 84);
    nn::Flip<double> flip;
    tt::check_layer(flip, {2, 2, 3, 5}, 85);
  }
  SUBCASE("values") {
    // Enlarging a 1-D ramp by 2 with half-pixel centres: interior outputs interpolate, edges clamp.
    Var<double> x(Tensor<double>::from({1, 1, 1, 3}, {0, 3, 6}));
    const Tensor<double> y = ops::resize2d(x, 1, 6, false).value();
    const double want[] = {0, 0.75, 2.25, 3.75, 5.25, 6};
    for (int i = 0; i < 6; ++i) CHECK(y[i] == doctest::Approx(want[i]));
    // Shrinking a constant plane keeps it constant (the taps sum to 1), with or without antialias.
    Var<double> c(Tensor<double>::full({1, 2, 9, 7}, 5.0));
    for (bool aa : {false, true}) {
      const Tensor<double> z = ops::resize2d(c, 4, 3, aa).value();
      for (int64_t i = 0; i < z.numel(); ++i) CHECK(z[i] == doctest::Approx(5.0));
    }
    // Flip mirrors the W axis.
    Var<double> f(Tensor<double>::from({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6}));
    CHECK(ops::flip_w(f).value().to_vector() == std::vector<double>{3, 2, 1, 6, 5, 4});
    // Rescaling: per channel.
    Var<double> p(Tensor<double>::from({1, 2, 1, 2}, {255, 0, 255, 0}));
    nn::Rescaling<double> r({1.0 / 127.5, 1.0}, {-1.0, 2.0});
    Rng rng(0);
    r.build({{2, 1, 2}}, rng);
    const Tensor<double> q = r.forward({p}).value();
    CHECK(q[0] == doctest::Approx(1.0));
    CHECK(q[1] == doctest::Approx(-1.0));
    CHECK(q[2] == doctest::Approx(257.0));
    CHECK(q[3] == doctest::Approx(2.0));
  }
  SUBCASE("errors") {
    CHECK_THROWS_WITH_AS(nn::Resizing<float>(0, 4), doctest::Contains("positive"), ValueError);
    CHECK_THROWS_WITH_AS(nn::Resizing<float>(4, 4, "nearest"), doctest::Contains("nearest"), ValueError);
    nn::Rescaling<float> r({1.0, 2.0}, {0.0});
    Rng rng(0);
    CHECK_THROWS_WITH_AS(r.build({{3, 4, 4}}, rng), doctest::Contains("one per channel"), ShapeError);
  }
}
