// Float64 gradient checks through the GPU kernels: for L = sum(r * forward(inputs)) with a random
// cotangent r, the GPU backward kernels' gradients must match central differences of the GPU forward
// kernels (tolerance 1e-5 + 1e-3 |numeric|, as autograd/gradcheck.hpp). Gradients start at zero.
#include <functional>
#include <string>
#include <tinycnn/kernels/cpu/conv_geometry.hpp>
#include <vector>

#include "parity_util.hpp"

using namespace tinycnn;
using kernels::cpu::Conv2DGeom;
using kernels::cpu::make_conv_geom;
using kernels::cpu::Padding;
using tinycnn::cuda::DeviceBuffer;

namespace {

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of loss() with respect to every element of p (loss reads p from the host vector).
std::vector<double> numeric(std::vector<double>& p, const std::function<double()>& loss) {
  const double h = 1e-6;
  std::vector<double> g(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double lp = loss();
    p[i] = keep - h;
    const double lm = loss();
    p[i] = keep;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

void expect_grad(const std::vector<double>& analytic, const std::vector<double>& num, const std::string& what) {
  REQUIRE(analytic.size() == num.size());
  int bad = 0;
  std::string first;
  for (size_t i = 0; i < num.size(); ++i)
    if (!(std::fabs(analytic[i] - num[i]) <= 1e-5 + 1e-3 * std::fabs(num[i]))) {
      if (bad++ < 3)
        first += " [" + std::to_string(i) + "] " + std::to_string(analytic[i]) + " vs " + std::to_string(num[i]);
    }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " gradients differ from central differences:" << first);
}

}  // namespace

TEST_CASE("cuda gradcheck (float64): conv2d, variants 0-3 and 6 (implicit GEMM)") {
  CT_REQUIRE_GPU();
  const Conv2DGeom g = make_conv_geom(2, 2, 5, 4, 3, 3, 3, 2, 1, Padding::Same);
  const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.C * g.R * g.S, ny = g.N * g.K * g.OH * g.OW;
  auto x = ct::random_vec<double>(nx, 1), w = ct::random_vec<double>(nw, 2), b = ct::random_vec<double>(g.K, 3);
  const auto r = ct::random_vec<double>(ny, 4);
  for (int v : {0, 1, 2, 3, cuda::kConvVariants}) {
    auto loss = [&] {
      DeviceBuffer<double> dx(x), dw(w), db(b), y(ny);
      cuda::conv2d_forward_variant<double>(v, dx.get(), dw.get(), db.get(), g, y.get());
      return dot(y.download(), r);
    };
    DeviceBuffer<double> dX(x), dW(w), dR(r), gx(std::vector<double>(nx, 0.0)), gw(std::vector<double>(nw, 0.0)),
        gb(std::vector<double>(g.K, 0.0));
    cuda::conv2d_backward_data_variant<double>(v, dR.get(), dW.get(), g, gx.get());
    cuda::conv2d_backward_filter_variant<double>(v, dX.get(), dR.get(), g, gw.get(), gb.get());
    const std::string name = "conv2d v" + std::to_string(v);
    expect_grad(gx.download(), numeric(x, loss), name + " dx");
    expect_grad(gw.download(), numeric(w, loss), name + " dw");
    expect_grad(gb.download(), numeric(b, loss), name + " db");
  }
}

TEST_CASE("cuda gradcheck (float64): depthwise conv2d, pooling") {
  CT_REQUIRE_GPU();
  const Conv2DGeom g = make_conv_geom(2, 2, 5, 6, 4, 3, 3, 2, 2, Padding::Same);
  const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.R * g.S, ny = g.N * g.K * g.OH * g.OW;
  auto x = ct::random_vec<double>(nx, 5), w = ct::random_vec<double>(nw, 6), b = ct::random_vec<double>(g.K, 7);
  const auto r = ct::random_vec<double>(ny, 8);
  auto loss = [&] {
    DeviceBuffer<double> dx(x), dw(w), db(b), y(ny);
    cuda::depthwise_conv2d_forward<double>(dx.get(), dw.get(), db.get(), g, y.get());
    return dot(y.download(), r);
  };
  DeviceBuffer<double> dX(x), dW(w), dR(r), gx(std::vector<double>(nx, 0.0)), gw(std::vector<double>(nw, 0.0)),
      gb(std::vector<double>(g.K, 0.0));
  cuda::depthwise_conv2d_backward_data<double>(dR.get(), dW.get(), g, gx.get());
  cuda::depthwise_conv2d_backward_filter<double>(dX.get(), dR.get(), g, gw.get(), gb.get());
  expect_grad(gx.download(), numeric(x, loss), "depthwise dx");
  expect_grad(gw.download(), numeric(w, loss), "depthwise dw");
  expect_grad(gb.download(), numeric(b, loss), "depthwise db");

  const Conv2DGeom p = make_conv_geom(2, 3, 7, 6, 3, 3, 3, 2, 2, Padding::Same);
  const int64_t px = p.N * p.C * p.H * p.W, py = p.N * p.C * p.OH * p.OW;
  auto xp = ct::random_vec<double>(px, 9);
  const auto rp = ct::random_vec<double>(py, 10);
  for (int is_max = 0; is_max < 2; ++is_max) {
    auto ploss = [&] {
      DeviceBuffer<double> dx(xp), y(py);
      DeviceBuffer<int32_t> arg(py);
      if (is_max)
        cuda::max_pool2d_forward<double>(dx.get(), p, y.get(), arg.get());
      else
        cuda::avg_pool2d_forward<double>(dx.get(), p, y.get());
      return dot(y.download(), rp);
    };
    DeviceBuffer<double> dx(xp), y(py), dr(rp), gxp(std::vector<double>(px, 0.0));
    DeviceBuffer<int32_t> arg(py);
    if (is_max) {
      cuda::max_pool2d_forward<double>(dx.get(), p, y.get(), arg.get());
      cuda::max_pool2d_backward<double>(dr.get(), arg.get(), p, gxp.get());
    } else {
      cuda::avg_pool2d_backward<double>(dr.get(), p, gxp.get());
    }
    expect_grad(gxp.download(), numeric(xp, ploss), is_max ? "max pool dx" : "avg pool dx");
  }
}

TEST_CASE("cuda gradcheck (float64): batch norm (training statistics, variants 1 and 2), softmax cross-entropy, GEMM") {
  CT_REQUIRE_GPU();
  const int64_t N = 3, C = 2, HW = 4, n = N * C * HW;
  for (int v = 1; v <= 2; ++v) {
    auto x = ct::random_vec<double>(n, 11), gamma = ct::random_vec<double>(C, 12, 0.5, 1.5),
         beta = ct::random_vec<double>(C, 13);
    const auto r = ct::random_vec<double>(n, 14);
    auto loss = [&] {
      DeviceBuffer<double> dx(x), dg(gamma), db(beta), y(n), m(C), is(C);
      cuda::batchnorm_forward_train_variant<double>(v, dx.get(), dg.get(), db.get(), N, C, HW, 1e-3, 0.99, y.get(),
                                                    m.get(), is.get(), nullptr, nullptr);
      return dot(y.download(), r);
    };
    DeviceBuffer<double> dX(x), dG(gamma), dB(beta), y(n), m(C), is(C), dR(r);
    cuda::batchnorm_forward_train_variant<double>(v, dX.get(), dG.get(), dB.get(), N, C, HW, 1e-3, 0.99, y.get(),
                                                  m.get(), is.get(), nullptr, nullptr);
    DeviceBuffer<double> gx(std::vector<double>(n, 0.0)), gg(std::vector<double>(C, 0.0)),
        gb(std::vector<double>(C, 0.0));
    cuda::batchnorm_backward_variant<double>(v, dX.get(), dR.get(), dG.get(), m.get(), is.get(), N, C, HW, true,
                                             gx.get(), gg.get(), gb.get());
    const std::string bn = "batchnorm v" + std::to_string(v);
    expect_grad(gx.download(), numeric(x, loss), bn + " dx");
    expect_grad(gg.download(), numeric(gamma, loss), bn + " dgamma");
    expect_grad(gb.download(), numeric(beta, loss), bn + " dbeta");
  }

  const int64_t B = 4, K = 5;
  auto logits = ct::random_vec<double>(B * K, 15, -3.0, 3.0);
  const auto scale = ct::random_vec<double>(B, 16, 0.1, 1.0);
  const std::vector<int32_t> labels = {0, 4, 2, 2};
  DeviceBuffer<int32_t> dL(labels);
  auto ce = [&] {
    DeviceBuffer<double> dl(logits), probs(B * K), losses(B);
    cuda::softmax_cross_entropy_forward<double>(dl.get(), dL.get(), nullptr, 0.1, probs.get(), losses.get(), B, K);
    return dot(losses.download(), scale);
  };
  DeviceBuffer<double> dl(logits), probs(B * K), losses(B), dS(scale), gl(std::vector<double>(B * K, 0.0));
  cuda::softmax_cross_entropy_forward<double>(dl.get(), dL.get(), nullptr, 0.1, probs.get(), losses.get(), B, K);
  cuda::softmax_cross_entropy_backward<double>(probs.get(), dL.get(), nullptr, 0.1, dS.get(), gl.get(), B, K);
  expect_grad(gl.download(), numeric(logits, ce), "softmax cross-entropy dlogits");

  // GEMM: d/dA of sum(R * A B) = R B^T, computed by the GPU GEMM itself (variant 3, transposed B).
  const int64_t M = 4, Nn = 5, Kk = 3;
  auto A = ct::random_vec<double>(M * Kk, 17);
  const auto Bm = ct::random_vec<double>(Kk * Nn, 18), R = ct::random_vec<double>(M * Nn, 19);
  auto gl2 = [&] {
    DeviceBuffer<double> dA(A), dBm(Bm), Cc(M * Nn);
    cuda::gemm_variant<double>(3, false, false, M, Nn, Kk, 1.0, dA.get(), Kk, dBm.get(), Nn, 0.0, Cc.get(), Nn);
    return dot(Cc.download(), R);
  };
  DeviceBuffer<double> dR2(R), dBm(Bm), gA(M * Kk);
  cuda::gemm_variant<double>(3, false, true, M, Kk, Nn, 1.0, dR2.get(), Nn, dBm.get(), Nn, 0.0, gA.get(), Kk);
  expect_grad(gA.download(), numeric(A, gl2), "gemm dA");
}

TEST_CASE("cuda gradcheck (float64): resize2d (with and without antialias), channel_affine") {
  CT_REQUIRE_GPU();
  const int64_t P = 3, H = 5, W = 7;
  auto x = ct::random_vec<double>(P * H * W, 61);
  const std::pair<int64_t, int64_t> outs[] = {{3, 4}, {8, 11}};
  for (const auto& [OH, OW] : outs)
    for (bool aa : {false, true}) {
      const auto r = ct::random_vec<double>(P * OH * OW, 62);
      auto loss = [&] {
        DeviceBuffer<double> dx(x), y(P * OH * OW);
        cuda::resize2d_forward<double>(dx.get(), P, H, W, OH, OW, aa, y.get());
        return dot(y.download(), r);
      };
      DeviceBuffer<double> dR(r), gx(std::vector<double>(x.size(), 0.0));
      cuda::resize2d_backward<double>(dR.get(), P, H, W, OH, OW, aa, gx.get());
      expect_grad(gx.download(), numeric(x, loss),
                  "resize2d " + std::to_string(OH) + "x" + std::to_string(OW) + (aa ? " antialias" : ""));
    }
  const int64_t N = 2, C = 3, L = 4;
  auto xa = ct::random_vec<double>(N * C * L, 63);
  const auto s = ct::random_vec<double>(C, 64), b = ct::random_vec<double>(C, 65), r = ct::random_vec<double>(N * C * L, 66);
  DeviceBuffer<double> dS(s), dB(b), dR(r), gx(std::vector<double>(xa.size(), 0.0));
  auto loss = [&] {
    DeviceBuffer<double> dx(xa), y(N * C * L);
    cuda::channel_affine_forward<double>(dx.get(), dS.get(), dB.get(), N, C, L, y.get());
    return dot(y.download(), r);
  };
  cuda::channel_affine_backward<double>(dR.get(), dS.get(), N, C, L, gx.get());
  expect_grad(gx.download(), numeric(xa, loss), "channel_affine");
}
