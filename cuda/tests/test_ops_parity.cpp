// Element-wise, activation, softmax, loss, optimizer and dropout parity with the CPU kernels.
#include <string>
#include <tinycnn/kernels/cpu/all.hpp>
#include <vector>

#include "parity_util.hpp"

using namespace tinycnn;
using tinycnn::cuda::DeviceBuffer;

TEST_CASE("cuda parity: element-wise kernels and row reductions") {
  CT_REQUIRE_GPU();
  const int64_t rows = 37, cols = 29, n = rows * cols;
  const auto a = ct::random_vec<float>(n, 1), b = ct::random_vec<float>(n, 2), dy = ct::random_vec<float>(n, 3);
  const auto y0 = ct::random_vec<float>(n, 4), bias = ct::random_vec<float>(cols, 5),
             db0 = ct::random_vec<float>(cols, 6);
  DeviceBuffer<float> dA(a), dB(b), dDY(dy), dBias(bias);

  std::vector<float> y = y0;
  kernels::cpu::add_scaled(a.data(), -0.3f, y.data(), n);
  DeviceBuffer<float> gy(y0);
  cuda::add_scaled<float>(dA.get(), -0.3f, gy.get(), n);
  ct::expect_close(gy, y, {}, "add_scaled");

  std::vector<float> m(n);
  kernels::cpu::mul_forward(a.data(), b.data(), m.data(), n);
  auto gm = ct::poisoned<float>(n);
  cuda::mul_forward<float>(dA.get(), dB.get(), gm.get(), n);
  ct::expect_close(gm, m, {}, "mul_forward");

  std::vector<float> da = y0, dbb = a;
  kernels::cpu::mul_backward(a.data(), b.data(), dy.data(), da.data(), dbb.data(), n);
  DeviceBuffer<float> gda(y0), gdb(a);
  cuda::mul_backward<float>(dA.get(), dB.get(), dDY.get(), gda.get(), gdb.get(), n);
  ct::expect_close(gda, da, {}, "mul_backward da");
  ct::expect_close(gdb, dbb, {}, "mul_backward db");
  std::vector<float> da_only = y0;
  kernels::cpu::mul_backward(a.data(), b.data(), dy.data(), da_only.data(), static_cast<float*>(nullptr), n);
  DeviceBuffer<float> gda_only(y0);
  cuda::mul_backward<float>(dA.get(), dB.get(), dDY.get(), gda_only.get(), nullptr, n);
  ct::expect_close(gda_only, da_only, {}, "mul_backward da only");

  std::vector<float> yb = y0;
  kernels::cpu::add_bias_rows(yb.data(), bias.data(), rows, cols);
  DeviceBuffer<float> gyb(y0);
  cuda::add_bias_rows<float>(gyb.get(), dBias.get(), rows, cols);
  ct::expect_close(gyb, yb, {}, "add_bias_rows");

  std::vector<float> dbias = db0;
  kernels::cpu::sum_rows_add(dy.data(), dbias.data(), rows, cols);
  DeviceBuffer<float> gdbias(db0);
  cuda::sum_rows_add<float>(dDY.get(), gdbias.get(), rows, cols);
  ct::expect_close(gdbias, dbias, {}, "sum_rows_add");

  // sum_add over more elements than one block's share (several partials), accumulating into 1.5.
  for (const int64_t m : {int64_t(1), int64_t(1000), int64_t(300001)}) {
    const auto x = ct::random_vec<float>(m, 21, -1.0, 1.0);
    std::vector<float> out{1.5f};
    kernels::cpu::sum_add(x.data(), m, out.data());
    DeviceBuffer<float> dX(x), gout(std::vector<float>{1.5f});
    cuda::sum_add<float>(dX.get(), m, gout.get());
    ct::expect_close(gout, out, {}, "sum_add");
  }
}

TEST_CASE("cuda parity: activations forward and backward") {
  CT_REQUIRE_GPU();
  using kernels::cpu::Act;
  const int64_t n = 1001;
  const auto x = ct::random_vec<float>(n, 7, -8.0, 8.0), dy = ct::random_vec<float>(n, 8),
             dx0 = ct::random_vec<float>(n, 9);
  DeviceBuffer<float> dX(x), dDY(dy);
  struct A {
    const char* name;
    Act kind;
    float alpha, max_value;
  };
  const A acts[] = {{"identity", Act::Identity, 0.3f, 0.f}, {"relu", Act::ReLU, 0.3f, 0.f},
                    {"relu6", Act::ReLU, 0.3f, 6.f},        {"leaky_relu", Act::LeakyReLU, 0.2f, 0.f},
                    {"sigmoid", Act::Sigmoid, 0.3f, 0.f},   {"tanh", Act::Tanh, 0.3f, 0.f}};
  for (const A& a : acts) {
    kernels::cpu::ActParams<float> p;
    p.kind = a.kind;
    p.alpha = a.alpha;
    p.max_value = a.max_value;
    std::vector<float> y(n), dx = dx0;
    kernels::cpu::activation_forward(p, x.data(), y.data(), n);
    kernels::cpu::activation_backward(p, x.data(), y.data(), dy.data(), dx.data(), n);
    auto gy = ct::poisoned<float>(n);
    cuda::activation_forward<float>(p, dX.get(), gy.get(), n);
    ct::expect_close(gy, y, {}, std::string("activation forward ") + a.name);
    DeviceBuffer<float> dY(y), gdx(dx0);
    cuda::activation_backward<float>(p, dX.get(), dY.get(), dDY.get(), gdx.get(), n);
    ct::expect_close(gdx, dx, {}, std::string("activation backward ") + a.name);
  }
}

TEST_CASE("cuda parity: softmax, softmax cross-entropy (labels, targets, smoothing), BCE with logits") {
  CT_REQUIRE_GPU();
  for (int64_t K : {1, 6, 45}) {  // one class, model-sized, more classes than a warp
    const int64_t N = 19;
    const auto x = ct::random_vec<float>(N * K, 10, -5.0, 5.0), dy = ct::random_vec<float>(N * K, 11);
    const auto dx0 = ct::random_vec<float>(N * K, 12), scale = ct::random_vec<float>(N, 13, 0.0, 1.0);
    std::vector<float> y(N * K), dx = dx0;
    kernels::cpu::softmax_forward(x.data(), y.data(), N, K);
    kernels::cpu::softmax_backward(y.data(), dy.data(), dx.data(), N, K);
    DeviceBuffer<float> dX(x), dY(y), dDY(dy), gdx(dx0), dScale(scale);
    auto gy = ct::poisoned<float>(N * K);
    cuda::softmax_forward<float>(dX.get(), gy.get(), N, K);
    cuda::softmax_backward<float>(dY.get(), dDY.get(), gdx.get(), N, K);
    ct::expect_close(gy, y, {}, "softmax forward K=" + std::to_string(K));
    ct::expect_close(gdx, dx, {}, "softmax backward K=" + std::to_string(K));

    std::vector<int32_t> labels(N);
    for (int64_t i = 0; i < N; ++i) labels[i] = static_cast<int32_t>((i * 7) % K);
    auto targets = ct::random_vec<float>(N * K, 14, 0.0, 1.0);
    for (int64_t i = 0; i < N; ++i) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += targets[i * K + k];
      for (int64_t k = 0; k < K; ++k) targets[i * K + k] /= s;
    }
    DeviceBuffer<int32_t> dL(labels);
    DeviceBuffer<float> dT(targets);
    for (int use_labels = 0; use_labels < 2; ++use_labels)
      for (float smoothing : {0.0f, 0.1f}) {
        const int32_t* lab = use_labels ? labels.data() : nullptr;
        const float* tar = use_labels ? nullptr : targets.data();
        std::vector<float> probs(N * K), losses(N), dl = dx0;
        kernels::cpu::softmax_cross_entropy_forward(x.data(), lab, tar, smoothing, probs.data(), losses.data(), N, K);
        kernels::cpu::softmax_cross_entropy_backward(probs.data(), lab, tar, smoothing, scale.data(), dl.data(), N, K);
        auto gp = ct::poisoned<float>(N * K), gl = ct::poisoned<float>(N);
        DeviceBuffer<float> gdl(dx0);
        const int32_t* glab = use_labels ? dL.get() : nullptr;
        const float* gtar = use_labels ? nullptr : dT.get();
        cuda::softmax_cross_entropy_forward<float>(dX.get(), glab, gtar, smoothing, gp.get(), gl.get(), N, K);
        cuda::softmax_cross_entropy_backward<float>(gp.get(), glab, gtar, smoothing, dScale.get(), gdl.get(), N, K);
        const std::string what = std::string(use_labels ? "labels" : "targets") + " smoothing " +
                                 std::to_string(smoothing) + " K=" + std::to_string(K);
        ct::expect_close(gp, probs, {}, "softmax CE probs " + what);
        ct::expect_close(gl, losses, {}, "softmax CE losses " + what);
        ct::expect_close(gdl, dl, {}, "softmax CE backward " + what);
      }
  }
  const int64_t n = 777;
  const auto logits = ct::random_vec<float>(n, 15, -20.0, 20.0), t = ct::random_vec<float>(n, 16, 0.0, 1.0);
  const auto d0 = ct::random_vec<float>(n, 17);
  std::vector<float> losses(n), d = d0;
  kernels::cpu::bce_logits_forward(logits.data(), t.data(), losses.data(), n);
  kernels::cpu::bce_logits_backward(logits.data(), t.data(), 0.25f, d.data(), n);
  DeviceBuffer<float> dLg(logits), dT(t), gd(d0);
  auto gl = ct::poisoned<float>(n);
  cuda::bce_logits_forward<float>(dLg.get(), dT.get(), gl.get(), n);
  cuda::bce_logits_backward<float>(dLg.get(), dT.get(), 0.25f, gd.get(), n);
  ct::expect_close(gl, losses, {}, "bce forward");
  ct::expect_close(gd, d, {}, "bce backward");
}

TEST_CASE("cuda parity: SGD and Adam updates over several steps") {
  CT_REQUIRE_GPU();
  const int64_t n = 100003;  // more than one CPU chunk, odd
  const auto w0 = ct::random_vec<float>(n, 20), g = ct::random_vec<float>(n, 21);
  struct S {
    float momentum;
    bool nesterov;
    float wd;
  };
  for (const S& s : {S{0.f, false, 0.f}, S{0.f, false, 1e-2f}, S{0.9f, false, 0.f}, S{0.9f, true, 1e-2f}}) {
    std::vector<float> w = w0, vel(n, 0.f);
    DeviceBuffer<float> gw(w0), gvel(std::vector<float>(n, 0.f)), dG(g);
    for (int step = 0; step < 3; ++step) {
      kernels::cpu::sgd_update(w.data(), g.data(), s.momentum != 0 ? vel.data() : nullptr, n, 0.1f, s.momentum,
                               s.nesterov, s.wd);
      cuda::sgd_update<float>(gw.get(), dG.get(), s.momentum != 0 ? gvel.get() : nullptr, n, 0.1f, s.momentum,
                              s.nesterov, s.wd);
    }
    ct::expect_close(gw, w, {}, "sgd momentum " + std::to_string(s.momentum) + (s.nesterov ? " nesterov" : ""));
    if (s.momentum != 0) ct::expect_close(gvel, vel, {}, "sgd velocity");
  }
  for (int decoupled = 0; decoupled < 2; ++decoupled)
    for (float wd : {0.f, 1e-2f}) {
      std::vector<float> w = w0, m(n, 0.f), v(n, 0.f);
      DeviceBuffer<float> gw(w0), gm(m), gv(v), dG(g);
      for (int64_t step = 1; step <= 3; ++step) {
        kernels::cpu::adam_update(w.data(), g.data(), m.data(), v.data(), n, 1e-3f, 0.9f, 0.999f, 1e-7f, step, wd,
                                  decoupled != 0);
        cuda::adam_update<float>(gw.get(), dG.get(), gm.get(), gv.get(), n, 1e-3f, 0.9f, 0.999f, 1e-7f, step, wd,
                                 decoupled != 0);
      }
      const std::string what = std::string(decoupled ? "adamw" : "adam") + " wd " + std::to_string(wd);
      ct::expect_close(gw, w, {}, what + " w");
      ct::expect_close(gm, m, {}, what + " m");
      ct::expect_close(gv, v, {}, what + " v");
    }
}

TEST_CASE("cuda parity: dropout (counter-based; bitwise equal to the CPU kernel, rate respected)") {
  CT_REQUIRE_GPU();
  // Both kernels decide element i by counter_uniform(seed, i) and round one product, so the GPU result
  // must equal the CPU kernel's bit for bit.
  const int64_t n = 1 << 20;
  const auto x = ct::random_vec<float>(n, 11);
  DeviceBuffer<float> dX(x);
  const uint64_t seed = Rng(99).next_u64();
  for (float rate : {0.0f, 0.2f, 0.5f}) {
    auto gy = ct::poisoned<float>(n);
    cuda::dropout_apply<float>(seed, rate, dX.get(), gy.get(), n);
    std::vector<float> want(static_cast<size_t>(n));
    kernels::cpu::dropout_apply<float>(seed, rate, x.data(), want.data(), n);
    const std::vector<float> got = gy.download();
    int64_t bad = 0, zeros = 0;
    for (int64_t i = 0; i < n; ++i) {
      bad += got[i] != want[static_cast<size_t>(i)];
      zeros += got[i] == 0.f;
    }
    CHECK_MESSAGE(bad == 0, "dropout rate " << rate << ": " << bad << " elements differ from the CPU kernel");
    const double p = rate, sigma = std::sqrt(p * (1 - p) / n);
    CHECK(std::fabs(static_cast<double>(zeros) / n - p) <= 5 * sigma + 1e-12);
  }
}
