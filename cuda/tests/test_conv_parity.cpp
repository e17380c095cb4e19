// Convolution-family parity: conv2d (every variant) forward / backward-data / backward-filter,
// depthwise, pooling, batch norm and zero padding against the CPU kernels, on odd shapes. Forward
// outputs are NaN-poisoned (every element must be written); gradients start from random values
// (they must be accumulated, not overwritten).
#include <algorithm>
#include <string>
#include <tinycnn/kernels/cpu/all.hpp>
#include <vector>

#include "parity_util.hpp"

using namespace tinycnn;
using kernels::cpu::Conv2DGeom;
using kernels::cpu::make_conv_geom;
using kernels::cpu::Padding;
using tinycnn::cuda::DeviceBuffer;

namespace {

struct Case {
  const char* name;
  int64_t N, C, H, W, K, R, S, sh, sw;
  Padding pad;
};
const Case kConvCases[] = {
    {"3x3 same", 3, 5, 11, 9, 7, 3, 3, 1, 1, Padding::Same},
    {"2x3 stride 2x1 same", 2, 4, 10, 13, 6, 2, 3, 2, 1, Padding::Same},
    {"5x5 stride 3 valid", 4, 3, 12, 12, 5, 5, 5, 3, 3, Padding::Valid},
    {"1x1 pointwise", 3, 6, 7, 5, 4, 1, 1, 1, 1, Padding::Valid},
    {"3x3 stride 2 same (odd pad)", 2, 3, 9, 9, 8, 3, 3, 2, 2, Padding::Same},
    {"large plane (bias gradient split over blocks)", 2, 2, 100, 90, 3, 3, 3, 1, 1, Padding::Same},
};

Conv2DGeom geom(const Case& c, int64_t K) { return make_conv_geom(c.N, c.C, c.H, c.W, K, c.R, c.S, c.sh, c.sw, c.pad); }

std::string label(const char* op, const Case& c, int v) {
  return std::string(op) + " [" + c.name + "] variant " + std::to_string(v);
}

}  // namespace

TEST_CASE("cuda parity: conv2d forward / backward-data / backward-filter, every variant") {
  CT_REQUIRE_GPU();
  for (const Case& c : kConvCases) {
    const Conv2DGeom g = geom(c, c.K);
    const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.C * g.R * g.S, ny = g.N * g.K * g.OH * g.OW;
    const auto x = ct::random_vec<float>(nx, 1), w = ct::random_vec<float>(nw, 2), b = ct::random_vec<float>(g.K, 3);
    const auto dy = ct::random_vec<float>(ny, 4), dx0 = ct::random_vec<float>(nx, 5);
    const auto dw0 = ct::random_vec<float>(nw, 6), db0 = ct::random_vec<float>(g.K, 7);
    std::vector<float> y_b(ny), y_nb(ny), dx = dx0, dw = dw0, db = db0, dw_only = dw0;
    kernels::cpu::conv2d_forward(x.data(), w.data(), b.data(), g, y_b.data());
    kernels::cpu::conv2d_forward(x.data(), w.data(), static_cast<const float*>(nullptr), g, y_nb.data());
    kernels::cpu::conv2d_backward_data(dy.data(), w.data(), g, dx.data());
    kernels::cpu::conv2d_backward_filter(x.data(), dy.data(), g, dw.data(), db.data());
    kernels::cpu::conv2d_backward_filter(x.data(), dy.data(), g, dw_only.data(), static_cast<float*>(nullptr));
    DeviceBuffer<float> dX(x), dW(w), dB(b), dDY(dy);
    for (int v = 0; v <= cuda::kConvVariants; ++v) {
      const int64_t CRS = g.C * g.R * g.S;
      auto yb = ct::poisoned<float>(ny), ynb = ct::poisoned<float>(ny);
      cuda::conv2d_forward_variant<float>(v, dX.get(), dW.get(), dB.get(), g, yb.get());
      cuda::conv2d_forward_variant<float>(v, dX.get(), dW.get(), nullptr, g, ynb.get());
      ct::expect_close(yb, y_b, ct::gemm_tol(v, CRS), label("forward+bias", c, v));
      ct::expect_close(ynb, y_nb, ct::gemm_tol(v, CRS), label("forward", c, v));

      DeviceBuffer<float> gdx(dx0), gdw(dw0), gdb(db0), gdw_only(dw0);
      cuda::conv2d_backward_data_variant<float>(v, dDY.get(), dW.get(), g, gdx.get());
      ct::expect_close(gdx, dx, ct::gemm_tol(v, g.K * g.R * g.S), label("backward-data", c, v));
      cuda::conv2d_backward_filter_variant<float>(v, dX.get(), dDY.get(), g, gdw.get(), gdb.get());
      cuda::conv2d_backward_filter_variant<float>(v, dX.get(), dDY.get(), g, gdw_only.get(), nullptr);
      const ct::Tol tf = ct::gemm_tol(v, g.N * g.OH * g.OW);
      ct::expect_close(gdw, dw, tf, label("backward-filter dw", c, v));
      ct::expect_close(gdb, db, {1e-3, 1e-3}, label("backward-filter db", c, v));
      ct::expect_close(gdw_only, dw_only, tf, label("backward-filter dw (no db)", c, v));
    }
    // The fused conv + ReLU entry (default variant) against the CPU's.
    std::vector<float> y_relu(ny);
    kernels::cpu::conv2d_forward_relu(x.data(), w.data(), b.data(), g, y_relu.data());
    auto gy_relu = ct::poisoned<float>(ny);
    cuda::conv2d_forward_relu<float>(dX.get(), dW.get(), dB.get(), g, gy_relu.get());
    ct::expect_close(gy_relu, y_relu, ct::gemm_tol(cuda::default_conv_variant(), g.C * g.R * g.S),
                     label("forward+bias+relu", c, cuda::default_conv_variant()));
  }
}

TEST_CASE("cuda parity: conv2d in chunks (small workspace) equals one pass") {
  CT_REQUIRE_GPU();
  const Case c = kConvCases[0];
  const Conv2DGeom g = geom(c, c.K);
  const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.C * g.R * g.S, ny = g.N * g.K * g.OH * g.OW;
  const auto x = ct::random_vec<float>(nx, 8), w = ct::random_vec<float>(nw, 9), dy = ct::random_vec<float>(ny, 10);
  std::vector<float> y(ny), dx(nx, 0.f), dw(nw, 0.f);
  kernels::cpu::conv2d_forward(x.data(), w.data(), static_cast<const float*>(nullptr), g, y.data());
  kernels::cpu::conv2d_backward_data(dy.data(), w.data(), g, dx.data());
  kernels::cpu::conv2d_backward_filter(x.data(), dy.data(), g, dw.data(), static_cast<float*>(nullptr));
  // One sample's columns fit, two do not: every chunk is a single sample.
  cuda::set_conv_workspace_limit(static_cast<size_t>(g.C * g.R * g.S * g.OH * g.OW * 3 / 2) * sizeof(float));
  DeviceBuffer<float> dX(x), dW(w), dDY(dy), gy(ny), gdx(std::vector<float>(nx, 0.f)), gdw(std::vector<float>(nw, 0.f));
  cuda::conv2d_forward_variant<float>(3, dX.get(), dW.get(), nullptr, g, gy.get());
  cuda::conv2d_backward_data_variant<float>(3, dDY.get(), dW.get(), g, gdx.get());
  cuda::conv2d_backward_filter_variant<float>(3, dX.get(), dDY.get(), g, gdw.get(), nullptr);
  cuda::set_conv_workspace_limit(size_t(512) << 20);
  ct::expect_close(gy, y, {}, "chunked forward");
  ct::expect_close(gdx, dx, {}, "chunked backward-data");
  ct::expect_close(gdw, dw, {}, "chunked backward-filter");
}

TEST_CASE("cuda parity: depthwise conv2d (depth multiplier 2)") {
  CT_REQUIRE_GPU();
  for (const Case& c : kConvCases) {
    const Conv2DGeom g = geom(c, c.C * 2);
    const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.R * g.S, ny = g.N * g.K * g.OH * g.OW;
    const auto x = ct::random_vec<float>(nx, 11), w = ct::random_vec<float>(nw, 12), b = ct::random_vec<float>(g.K, 13);
    const auto dy = ct::random_vec<float>(ny, 14), dx0 = ct::random_vec<float>(nx, 15);
    const auto dw0 = ct::random_vec<float>(nw, 16), db0 = ct::random_vec<float>(g.K, 17);
    std::vector<float> y(ny), dx = dx0, dw = dw0, db = db0;
    kernels::cpu::depthwise_conv2d_forward(x.data(), w.data(), b.data(), g, y.data());
    kernels::cpu::depthwise_conv2d_backward_data(dy.data(), w.data(), g, dx.data());
    kernels::cpu::depthwise_conv2d_backward_filter(x.data(), dy.data(), g, dw.data(), db.data());
    DeviceBuffer<float> dX(x), dW(w), dB(b), dDY(dy), gdx(dx0), gdw(dw0), gdb(db0);
    auto gy = ct::poisoned<float>(ny);
    cuda::depthwise_conv2d_forward<float>(dX.get(), dW.get(), dB.get(), g, gy.get());
    cuda::depthwise_conv2d_backward_data<float>(dDY.get(), dW.get(), g, gdx.get());
    cuda::depthwise_conv2d_backward_filter<float>(dX.get(), dDY.get(), g, gdw.get(), gdb.get());
    ct::expect_close(gy, y, {}, label("depthwise forward", c, 0));
    ct::expect_close(gdx, dx, {}, label("depthwise backward-data", c, 0));
    ct::expect_close(gdw, dw, {}, label("depthwise backward-filter dw", c, 0));
    ct::expect_close(gdb, db, {}, label("depthwise backward-filter db", c, 0));
  }
}

TEST_CASE("cuda parity: max / average / global-average pooling") {
  CT_REQUIRE_GPU();
  struct P {
    const char* name;
    int64_t R, S, sh, sw;
    Padding pad;
  };
  const P pools[] = {{"3x3/2 same", 3, 3, 2, 2, Padding::Same},
                     {"2x2/2 valid", 2, 2, 2, 2, Padding::Valid},
                     {"3x3/1 same (overlapping)", 3, 3, 1, 1, Padding::Same},
                     {"3x3/3 valid", 3, 3, 3, 3, Padding::Valid},
                     {"2x3/1x2 same", 2, 3, 1, 2, Padding::Same}};
  const int64_t N = 2, C = 3, H = 11, W = 10;
  for (const P& p : pools) {
    const Conv2DGeom g = make_conv_geom(N, C, H, W, C, p.R, p.S, p.sh, p.sw, p.pad);
    const int64_t nx = N * C * H * W, ny = N * C * g.OH * g.OW;
    const auto x = ct::random_vec<float>(nx, 21), dy = ct::random_vec<float>(ny, 22),
               dx0 = ct::random_vec<float>(nx, 23);
    std::vector<float> ymax(ny), yavg(ny), dxmax = dx0, dxavg = dx0;
    std::vector<int32_t> arg(ny);
    kernels::cpu::max_pool2d_forward(x.data(), g, ymax.data(), arg.data());
    kernels::cpu::max_pool2d_backward(dy.data(), arg.data(), g, dxmax.data());
    kernels::cpu::avg_pool2d_forward(x.data(), g, yavg.data());
    kernels::cpu::avg_pool2d_backward(dy.data(), g, dxavg.data());
    DeviceBuffer<float> dX(x), dDY(dy), gdxm(dx0), gdxa(dx0);
    auto gym = ct::poisoned<float>(ny), gya = ct::poisoned<float>(ny);
    DeviceBuffer<int32_t> garg(std::vector<int32_t>(ny, -7));
    cuda::max_pool2d_forward<float>(dX.get(), g, gym.get(), garg.get());
    CHECK_MESSAGE(garg.download() == arg, "max pool argmax " << p.name);
    cuda::max_pool2d_backward<float>(dDY.get(), garg.get(), g, gdxm.get());
    cuda::avg_pool2d_forward<float>(dX.get(), g, gya.get());
    cuda::avg_pool2d_backward<float>(dDY.get(), g, gdxa.get());
    ct::expect_close(gym, ymax, {}, std::string("max pool forward ") + p.name);
    ct::expect_close(gdxm, dxmax, {}, std::string("max pool backward ") + p.name);
    ct::expect_close(gya, yavg, {}, std::string("avg pool forward ") + p.name);
    ct::expect_close(gdxa, dxavg, {}, std::string("avg pool backward ") + p.name);
  }
  const int64_t HW = 37;
  const auto x = ct::random_vec<float>(N * C * HW, 24), dy = ct::random_vec<float>(N * C, 25);
  const auto dx0 = ct::random_vec<float>(N * C * HW, 26);
  std::vector<float> y(N * C), dx = dx0;
  kernels::cpu::global_avg_pool2d_forward(x.data(), N, C, HW, y.data());
  kernels::cpu::global_avg_pool2d_backward(dy.data(), N, C, HW, dx.data());
  DeviceBuffer<float> dX(x), dDY(dy), gdx(dx0);
  auto gy = ct::poisoned<float>(N * C);
  cuda::global_avg_pool2d_forward<float>(dX.get(), N, C, HW, gy.get());
  cuda::global_avg_pool2d_backward<float>(dDY.get(), N, C, HW, gdx.get());
  ct::expect_close(gy, y, {}, "global avg pool forward");
  ct::expect_close(gdx, dx, {}, "global avg pool backward");
}

TEST_CASE("cuda parity: batch norm train / eval / backward, variants 1 and 2, small and large channels") {
  CT_REQUIRE_GPU();
  struct BN {
    int64_t N, C, HW;
  };
  for (const BN& sz : {BN{4, 5, 21}, BN{3, 3, 40000}}) {  // 84 values per channel; 120000 (several slices)
    for (int v = 1; v <= 2; ++v) {
      const int64_t N = sz.N, C = sz.C, HW = sz.HW, n = N * C * HW;
      const std::string tag = " (" + std::to_string(N * HW) + " per channel, variant " + std::to_string(v) + ")";
      const float eps = 1e-3f, momentum = 0.99f;
      const auto x = ct::random_vec<float>(n, 31, -2.0, 3.0), gamma = ct::random_vec<float>(C, 32, 0.5, 1.5);
      const auto beta = ct::random_vec<float>(C, 33), rm0 = ct::random_vec<float>(C, 34);
      const auto rv0 = ct::random_vec<float>(C, 35, 0.5, 2.0), dy = ct::random_vec<float>(n, 36);
      const auto dx0 = ct::random_vec<float>(n, 37), dg0 = ct::random_vec<float>(C, 38),
                 db0 = ct::random_vec<float>(C, 39);
      std::vector<float> y(n), mean(C), inv(C), rm = rm0, rv = rv0, ye(n), me(C), ie(C);
      kernels::cpu::batchnorm_forward_train(x.data(), gamma.data(), beta.data(), N, C, HW, eps, momentum, y.data(),
                                            mean.data(), inv.data(), rm.data(), rv.data());
      kernels::cpu::batchnorm_forward_eval(x.data(), gamma.data(), beta.data(), rm0.data(), rv0.data(), N, C, HW, eps,
                                           ye.data(), me.data(), ie.data());
      DeviceBuffer<float> dX(x), dG(gamma), dBt(beta), dRM(rm0), dRV(rv0), dDY(dy);
      auto gy = ct::poisoned<float>(n), gm = ct::poisoned<float>(C), gi = ct::poisoned<float>(C);
      cuda::batchnorm_forward_train_variant<float>(v, dX.get(), dG.get(), dBt.get(), N, C, HW, eps, momentum, gy.get(),
                                                   gm.get(), gi.get(), dRM.get(), dRV.get());
      ct::expect_close(gy, y, {}, "batchnorm train y" + tag);
      ct::expect_close(gm, mean, {}, "batchnorm train mean" + tag);
      ct::expect_close(gi, inv, {}, "batchnorm train inv_std" + tag);
      ct::expect_close(dRM, rm, {}, "batchnorm running mean" + tag);
      ct::expect_close(dRV, rv, {}, "batchnorm running var" + tag);
      DeviceBuffer<float> dRM0(rm0), dRV0(rv0);
      auto gye = ct::poisoned<float>(n), gme = ct::poisoned<float>(C), gie = ct::poisoned<float>(C);
      cuda::batchnorm_forward_eval<float>(dX.get(), dG.get(), dBt.get(), dRM0.get(), dRV0.get(), N, C, HW, eps,
                                          gye.get(), gme.get(), gie.get());
      ct::expect_close(gye, ye, {}, "batchnorm eval y" + tag);
      ct::expect_close(gme, me, {}, "batchnorm eval saved mean" + tag);
      ct::expect_close(gie, ie, {}, "batchnorm eval saved inv_std" + tag);
      for (int batch_stats = 0; batch_stats < 2; ++batch_stats) {
        std::vector<float> dx = dx0, dg = dg0, db = db0;
        kernels::cpu::batchnorm_backward(x.data(), dy.data(), gamma.data(), mean.data(), inv.data(), N, C, HW,
                                         batch_stats != 0, dx.data(), dg.data(), db.data());
        DeviceBuffer<float> dM(mean), dI(inv), gdx(dx0), gdg(dg0), gdb(db0);
        cuda::batchnorm_backward_variant<float>(v, dX.get(), dDY.get(), dG.get(), dM.get(), dI.get(), N, C, HW,
                                                batch_stats != 0, gdx.get(), gdg.get(), gdb.get());
        // dgamma and dbeta are sums of up to 120000 terms: their float rounding (CPU and GPU sum in double,
        // but the CPU adds float-rounded per-row partials) warrants a little more absolute slack.
        const ct::Tol sums{1e-3 * std::max(1.0, std::sqrt(double(N * HW)) / 100), 1e-3};
        ct::expect_close(gdx, dx, {}, "batchnorm backward dx, batch_stats " + std::to_string(batch_stats) + tag);
        ct::expect_close(gdg, dg, sums, "batchnorm backward dgamma" + tag);
        ct::expect_close(gdb, db, sums, "batchnorm backward dbeta" + tag);
        // Only dgamma / dbeta wanted (dx nullptr), as a frozen input would ask.
        DeviceBuffer<float> gdg2(dg0), gdb2(db0);
        cuda::batchnorm_backward_variant<float>(v, dX.get(), dDY.get(), dG.get(), dM.get(), dI.get(), N, C, HW,
                                                batch_stats != 0, nullptr, gdg2.get(), gdb2.get());
        ct::expect_close(gdg2, dg, sums, "batchnorm backward dgamma without dx" + tag);
      }
    }
  }
}

TEST_CASE("cuda parity: zero padding") {
  CT_REQUIRE_GPU();
  const int64_t N = 2, C = 3, H = 5, W = 7, top = 1, bottom = 2, left = 3, right = 0;
  const int64_t OH = H + top + bottom, OW = W + left + right;
  const auto x = ct::random_vec<float>(N * C * H * W, 41), dy = ct::random_vec<float>(N * C * OH * OW, 42);
  const auto dx0 = ct::random_vec<float>(N * C * H * W, 43);
  std::vector<float> y(N * C * OH * OW), dx = dx0;
  kernels::cpu::zero_pad2d_forward(x.data(), N, C, H, W, top, bottom, left, right, y.data());
  kernels::cpu::zero_pad2d_backward(dy.data(), N, C, H, W, top, bottom, left, right, dx.data());
  DeviceBuffer<float> dX(x), dDY(dy), gdx(dx0);
  auto gy = ct::poisoned<float>(N * C * OH * OW);
  cuda::zero_pad2d_forward<float>(dX.get(), N, C, H, W, top, bottom, left, right, gy.get());
  cuda::zero_pad2d_backward<float>(dDY.get(), N, C, H, W, top, bottom, left, right, gdx.get());
  ct::expect_close(gy, y, {}, "zero pad forward");
  ct::expect_close(gdx, dx, {}, "zero pad backward");
}

TEST_CASE("cuda parity: resize2d (bilinear, with and without antialias) and channel_affine") {
  CT_REQUIRE_GPU();
  const int64_t P = 6, H = 17, W = 23;
  const std::pair<int64_t, int64_t> outs[] = {{8, 9}, {40, 31}, {17, 5}, {3, 60}};
  for (const auto& [OH, OW] : outs) {
    for (bool aa : {false, true}) {
      const std::string what = "resize " + std::to_string(OH) + "x" + std::to_string(OW) + (aa ? " antialias" : "");
      const auto x = ct::random_vec<float>(P * H * W, 51), dy = ct::random_vec<float>(P * OH * OW, 52);
      const auto dx0 = ct::random_vec<float>(P * H * W, 53);
      std::vector<float> y(P * OH * OW), dx = dx0;
      kernels::cpu::resize2d_forward(x.data(), P, H, W, OH, OW, aa, y.data());
      kernels::cpu::resize2d_backward(dy.data(), P, H, W, OH, OW, aa, dx.data());
      DeviceBuffer<float> dX(x), dDY(dy), gdx(dx0);
      auto gy = ct::poisoned<float>(P * OH * OW);
      cuda::resize2d_forward<float>(dX.get(), P, H, W, OH, OW, aa, gy.get());
      cuda::resize2d_backward<float>(dDY.get(), P, H, W, OH, OW, aa, gdx.get());
      ct::expect_close(gy, y, {}, (what + " forward").c_str());
      ct::expect_close(gdx, dx, {}, (what + " backward").c_str());
    }
  }
  const int64_t N = 3, C = 4, L = 50;
  const auto x = ct::random_vec<float>(N * C * L, 54), dy = ct::random_vec<float>(N * C * L, 55);
  const auto s = ct::random_vec<float>(C, 56), b = ct::random_vec<float>(C, 57), dx0 = ct::random_vec<float>(N * C * L, 58);
  std::vector<float> y(N * C * L), dx = dx0;
  kernels::cpu::channel_affine_forward(x.data(), s.data(), b.data(), N, C, L, y.data());
  kernels::cpu::channel_affine_backward(dy.data(), s.data(), N, C, L, dx.data());
  DeviceBuffer<float> dX(x), dDY(dy), dS(s), dB(b), gdx(dx0);
  auto gy = ct::poisoned<float>(N * C * L);
  cuda::channel_affine_forward<float>(dX.get(), dS.get(), dB.get(), N, C, L, gy.get());
  cuda::channel_affine_backward<float>(dDY.get(), dS.get(), N, C, L, gdx.get());
  ct::expect_close(gy, y, {}, "channel_affine forward");
  ct::expect_close(gdx, dx, {}, "channel_affine backward");

  const int64_t FH = 5, FW = 7;  // mirror
  const auto fx = ct::random_vec<float>(N * C * FH * FW, 59), fdy = ct::random_vec<float>(N * C * FH * FW, 60);
  const std::vector<float> fdx0(dx0.begin(), dx0.begin() + static_cast<int64_t>(fx.size()));
  std::vector<float> fy(fx.size()), fdx = fdx0;
  kernels::cpu::flip_w_forward(fx.data(), N * C, FH, FW, fy.data());
  kernels::cpu::flip_w_backward(fdy.data(), N * C, FH, FW, fdx.data());
  DeviceBuffer<float> dFX(fx), dFDY(fdy), gfdx(fdx0);
  auto gfy = ct::poisoned<float>(N * C * FH * FW);
  cuda::flip_w_forward<float>(dFX.get(), N * C, FH, FW, gfy.get());
  cuda::flip_w_backward<float>(dFDY.get(), N * C, FH, FW, gfdx.get());
  ct::expect_close(gfy, fy, {}, "flip forward");
  ct::expect_close(gfdx, fdx, {}, "flip backward");
}
