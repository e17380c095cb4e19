// conv2d.hpp's execution plans (parallel sample groups, serial groups with parallel GEMMs, one GEMM
// per sample) and the fused ReLU epilogue, each against the direct reference, on problems big enough
// to take the multi-threaded paths; plus im2col/col2im with a column stride.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <tinycnn/kernels/cpu/conv_direct.hpp>
#include <tinycnn/tinycnn.hpp>

#include "contraction_util.hpp"

using namespace tinycnn;
namespace kc = tinycnn::kernels::cpu;

namespace {

// Whether a test's copy of a transform runs here: 0 the baseline copy, always; 1 the AVX-512 copy, in
// x86-64 builds on CPUs with AVX-512.
bool copy_runs(int copy) {
#if defined(TINYCNN_HAVE_X86_TARGETS)
  return copy == 0 || kc::cpu_features().avx512;
#else
  return copy == 0;
#endif
}

// A copy's value against the baseline copy's: bitwise for the baseline copy, to float rounding for the
// AVX-512 one (it may contract a multiply and an add into an FMA); NaN (never written) never matches.
bool copy_matches(int copy, float got, float want) {
  return copy == 0 ? got == want : std::fabs(got - want) <= 1e-5f * (1.0f + std::fabs(want));
}

std::vector<float> rnd(int64_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = static_cast<float>(r.uniform(-1, 1));
  return v;
}

double maxdiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    m = std::max(m, d);
  }
  return m;
}

void check_plan(const kc::Conv2DGeom& g, const kc::ConvOptions& o) {
  const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.C * g.R * g.S, ny = g.N * g.K * g.OH * g.OW;
  const auto x = rnd(nx, 1), w = rnd(nw, 2), b = rnd(g.K, 3), dy = rnd(ny, 4);
  const auto gemm_fn = &kc::detail::conv_gemm_default<float>;
  std::vector<float> y(static_cast<size_t>(ny), NAN), yr(static_cast<size_t>(ny), NAN);
  kc::conv2d_forward_ex(x.data(), w.data(), b.data(), g, y.data(), false, gemm_fn, o);
  kc::conv2d_direct_forward(x.data(), w.data(), b.data(), g, yr.data());
  CHECK(maxdiff(y, yr) <= 1e-4);
  std::vector<float> yrelu(static_cast<size_t>(ny), NAN);
  kc::conv2d_forward_ex(x.data(), w.data(), b.data(), g, yrelu.data(), true, gemm_fn, o);
  for (auto& v : yr) v = v > 0 ? v : 0.0f;
  CHECK(maxdiff(yrelu, yr) <= 1e-4);

  auto dx = rnd(nx, 5), dxr = dx;
  kc::conv2d_backward_data_ex(dy.data(), w.data(), g, dx.data(), gemm_fn, o);
  kc::conv2d_direct_backward_data(dy.data(), w.data(), g, dxr.data());
  CHECK(maxdiff(dx, dxr) <= 1e-4);

  auto dw = rnd(nw, 6), dwr = dw, db = rnd(g.K, 7), dbr = db;
  kc::conv2d_backward_filter_ex(x.data(), dy.data(), g, dw.data(), db.data(), gemm_fn, o);
  kc::conv2d_direct_backward_filter(x.data(), dy.data(), g, dwr.data(), dbr.data());
  CHECK(maxdiff(dw, dwr) <= 2e-3);
  CHECK(maxdiff(db, dbr) <= 2e-3);
}

}  // namespace

TEST_CASE("conv2d plans: parallel groups, serial groups and per-sample GEMMs equal the direct convolution") {
  const int saved = get_num_threads();
  set_num_threads(2);
  struct Case {
    int64_t N, C, H, W, K, R, S, st;
    kc::Padding pad;
  };
  const Case cases[] = {{5, 4, 9, 9, 6, 3, 3, 1, kc::Padding::Same},
                        {7, 6, 5, 6, 10, 3, 3, 1, kc::Padding::Valid},
                        {3, 5, 8, 8, 7, 3, 3, 2, kc::Padding::Same},
                        {6, 16, 7, 7, 12, 1, 1, 1, kc::Padding::Valid},  // 1x1
                        {1, 8, 12, 12, 9, 3, 3, 1, kc::Padding::Same}};  // batch smaller than the team
  for (const Case& c : cases) {
    const kc::Conv2DGeom g = kc::make_conv_geom(c.N, c.C, c.H, c.W, c.K, c.R, c.S, c.st, c.st, c.pad);
    for (auto mode : {kc::ConvOptions::Auto, kc::ConvOptions::Parallel, kc::ConvOptions::Serial,
                      kc::ConvOptions::PerSample})
      for (int64_t cols : {int64_t(1), int64_t(40), int64_t(100000)})
        for (auto form : {kc::ConvOptions::FilterForm::Auto, kc::ConvOptions::FilterForm::DyCol,
                          kc::ConvOptions::FilterForm::ColDy, kc::ConvOptions::FilterForm::Rows}) {
          CAPTURE(c.N);
          CAPTURE(c.C);
          CAPTURE(int(mode));
          CAPTURE(cols);
          CAPTURE(int(form));
          kc::ConvOptions o;
          o.mode = mode;
          o.cols_target = cols;
          o.scratch_elems = cols == 40 ? 2000 : o.scratch_elems;  // small buffers: more groups
          o.filter_form = form;  // backward filter: dY * col^T, col * dY^T, or im2row
          check_plan(g, o);
        }
  }
  set_num_threads(saved);
}

TEST_CASE("Winograd: split into sample groups on 2 threads; forward with bias and ReLU, both backward passes adding") {
  const int saved = get_num_threads();
  set_num_threads(2);
  for (int64_t m : {2, 3, 4})  // every tile size
    for (auto pad : {kc::Padding::Same, kc::Padding::Valid})
      for (int64_t min_cols : {int64_t(1), int64_t(512)}) {  // 1: as many groups as the scratch bound allows
        CAPTURE(m);
        // 20 and 22 channels: the packed U's last sliver is partial for every kernel's mr (6, 8, 14)
        const kc::Conv2DGeom g = kc::make_conv_geom(7, 20, 11, 10, 22, 3, 3, 1, 1, pad);
        const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.C * 9, ny = g.N * g.K * g.OH * g.OW;
        const auto x = rnd(nx, 31), w = rnd(nw, 32), b = rnd(g.K, 33), dy = rnd(ny, 34);
        const kc::WinogradGeom qf = kc::winograd_geom_forward(g, m), qb = kc::winograd_geom_backward_data(g, m);
        std::vector<float> U(static_cast<size_t>(qf.points() * nw));
        const auto gemm_fn = &kc::detail::conv_gemm_default<float>;
        const int64_t scratch = qf.points() * (g.C + g.K) * qf.tiles() * 2;  // about two samples per group
        kc::winograd_filter_transform(w.data(), g.K, g.C, false, m, U.data(), true);
        std::vector<float> y(static_cast<size_t>(ny), NAN), yr(static_cast<size_t>(ny), NAN);
        kc::winograd_conv3x3(x.data(), U.data(), qf, b.data(), true, false, y.data(), gemm_fn, scratch, min_cols);
        kc::conv2d_direct_forward(x.data(), w.data(), b.data(), g, yr.data());
        for (auto& v : yr) v = v > 0 ? v : 0.0f;
        CHECK(maxdiff(y, yr) <= 1e-4);
        // V written in the GEMM kernel's packed layout (what conv2d does with the default GEMM): the
        // same output as packing inside the GEMM (bitwise at -O3: tests/contraction_util.hpp)
        std::vector<float> yp(static_cast<size_t>(ny), NAN);
        kc::winograd_conv3x3(x.data(), U.data(), qf, b.data(), true, false, yp.data(), gemm_fn, scratch, min_cols, true);
        CHECK(tinycnn_test::same_but_contraction(yp, y));
        // U written in the packed layout as well (what conv2d does): the same again
        const int64_t mrf = kc::gemm_prepacked_a_mr<float>(qf.Ci), mrb = kc::gemm_prepacked_a_mr<float>(qb.Ci);
        std::vector<float> Up(static_cast<size_t>(qf.points() * kc::detail::winograd_u_plane(qf.Co, qf.Ci, mrf)), NAN);
        kc::winograd_filter_transform(w.data(), g.K, g.C, false, m, Up.data(), true, mrf);
        std::fill(yp.begin(), yp.end(), NAN);
        kc::winograd_conv3x3(x.data(), Up.data(), qf, b.data(), true, false, yp.data(), gemm_fn, scratch, min_cols, true,
                             mrf);
        CHECK(tinycnn_test::same_but_contraction(yp, y));
        kc::winograd_filter_transform(w.data(), g.K, g.C, true, m, U.data(), true);
        auto dx = rnd(nx, 35), dxr = dx;
        auto dxp = dx, dxpu = dx;
        kc::winograd_conv3x3(dy.data(), U.data(), qb, static_cast<const float*>(nullptr), false, true, dx.data(), gemm_fn,
                             scratch, min_cols);
        kc::conv2d_direct_backward_data(dy.data(), w.data(), g, dxr.data());
        CHECK(maxdiff(dx, dxr) <= 1e-4);
        kc::winograd_conv3x3(dy.data(), U.data(), qb, static_cast<const float*>(nullptr), false, true, dxp.data(),
                             gemm_fn, scratch, min_cols, true);
        CHECK(tinycnn_test::same_but_contraction(dxp, dx));
        Up.assign(static_cast<size_t>(qb.points() * kc::detail::winograd_u_plane(qb.Co, qb.Ci, mrb)), NAN);
        kc::winograd_filter_transform(w.data(), g.K, g.C, true, m, Up.data(), true, mrb);
        kc::winograd_conv3x3(dy.data(), Up.data(), qb, static_cast<const float*>(nullptr), false, true, dxpu.data(),
                             gemm_fn, scratch, min_cols, true, mrb);
        CHECK(tinycnn_test::same_but_contraction(dxpu, dx));
        auto dw = rnd(nw, 36), dwr = dw;
        kc::winograd_conv3x3_backward_filter(x.data(), dy.data(), qf, dw.data(), gemm_fn, scratch, min_cols);
        kc::conv2d_direct_backward_filter(x.data(), dy.data(), g, dwr.data(), static_cast<float*>(nullptr));
        CHECK(maxdiff(dw, dwr) <= 1e-3);
      }
  set_num_threads(saved);
}

TEST_CASE("Winograd: the filter transform's packed layout (every kernel's mr, both orientations)") {
  // mr = 6 (AVX2, portable), 8 and 14 (the AVX-512 tiles): element (o, i) of point xi's plane at
  // (o / mr) * cols * mr + i * mr + o % mr, the padding rows of the last sliver zero
  const int64_t K = 23, C = 19;  // 23 and 19 rows: a partial last sliver for each mr
  const auto w = rnd(K * C * 9, 51);
  for (int64_t m : {2, 3, 4})
    for (bool rotate : {false, true})
      for (int64_t mr : {6, 8, 14}) {
        CAPTURE(m);
        CAPTURE(rotate);
        CAPTURE(mr);
        const int64_t a2 = (m + 2) * (m + 2), rows = rotate ? C : K, cols = rotate ? K : C;
        const int64_t plane = kc::detail::winograd_u_plane(rows, cols, mr);
        REQUIRE(plane == (rows + mr - 1) / mr * mr * cols);
        std::vector<float> U(static_cast<size_t>(a2 * rows * cols)), Up(static_cast<size_t>(a2 * plane), NAN);
        kc::winograd_filter_transform(w.data(), K, C, rotate, m, U.data(), false);
        kc::winograd_filter_transform(w.data(), K, C, rotate, m, Up.data(), true, mr);
        int64_t wrong = 0;
        for (int64_t xi = 0; xi < a2; ++xi)
          for (int64_t o = 0; o < (rows + mr - 1) / mr * mr; ++o)
            for (int64_t i = 0; i < cols; ++i) {
              const float got = Up[static_cast<size_t>(xi * plane + (o / mr) * cols * mr + i * mr + o % mr)];
              const float want = o < rows ? U[static_cast<size_t>((xi * rows + o) * cols + i)] : 0.0f;
              wrong += !(got == want);
            }
        CHECK(wrong == 0);
      }
}

TEST_CASE("Winograd: the transforms' AVX2 and AVX-512 copies give the baseline copies' values (to float rounding)") {
#if defined(TINYCNN_HAVE_X86_TARGETS)
  if (!kc::cpu_features().avx2_fma) {
    MESSAGE("no AVX2 + FMA on this CPU: the transforms' vector copies not tested");
    return;
  }
  // Each value is a short sum of products with the transforms' constants; the copies differ only where
  // a vector copy contracts a multiply and an add into an FMA. The AVX2 copies: the filter, input,
  // output and output-gradient transforms; the AVX-512 ones also the filter's weight-gradient one.
  auto close = [](const std::vector<float>& got, const std::vector<float>& want) {
    int64_t bad = 0;
    for (size_t i = 0; i < want.size(); ++i) bad += !copy_matches(1, got[i], want[i]);
    return bad;
  };
  // Planes of 6x6 to 13x11 (partial tiles, partial 16-lane blocks, padded rows of 8 to 16 values: one
  // or two 8-lane vectors of the AVX2 pad), 'same' and 'valid', 1 to 3 samples.
  struct Case {
    int64_t n, ci, co, h, w;
    kc::Padding pad;
  };
  for (const Case& c : {Case{1, 5, 7, 7, 7, kc::Padding::Same}, Case{3, 4, 6, 13, 11, kc::Padding::Same},
                        Case{3, 3, 17, 12, 9, kc::Padding::Valid}, Case{2, 3, 5, 6, 6, kc::Padding::Same}})
    for (int64_t m : {2, 3}) {
      CAPTURE(c.h);
      CAPTURE(m);
      const kc::Conv2DGeom g = kc::make_conv_geom(c.n, c.ci, c.h, c.w, c.co, 3, 3, 1, 1, c.pad);
      const kc::WinogradGeom q = kc::winograd_geom_forward(g, m);
      const int64_t P = q.N * q.tiles(), a2 = q.points();
      const auto x = rnd(q.N * q.Ci * q.H * q.W, 61), Mv = rnd(a2 * q.Co * P, 62), bias = rnd(q.Co, 63);
      const auto w = rnd(q.Co * q.Ci * 9, 64), dU = rnd(a2 * q.Co * q.Ci, 65), init = rnd(q.N * q.Co * q.OH * q.OW, 66);
      kc::detail::winograd_dispatch(m, [&](auto mc) {
        constexpr int mm = decltype(mc)::value;
        for (const bool wide : {false, true}) {  // the AVX2 copies, then the AVX-512 ones
          if (wide && !kc::cpu_features().avx512) break;
          CAPTURE(wide);
          for (int64_t nr : {int64_t(0), int64_t(32)}) {  // plain [Ci, P] planes, and the packed layout
            const size_t nv = static_cast<size_t>(a2 * kc::detail::winograd_v_plane(q.Ci, P, nr));
            std::vector<float> v0(nv, 0.0f), v1(nv, 0.0f);
            kc::detail::winograd_input_transform_m<mm>(x.data(), q, 0, q.N, v0.data(), nr, false);
            if (wide)
              kc::detail::winograd_input_transform_avx512<mm>(x.data(), q, 0, q.N, v1.data(), nr, false);
            else
              kc::detail::winograd_input_transform_avx2<mm>(x.data(), q, 0, q.N, v1.data(), nr, false);
            CAPTURE(nr);
            CHECK(close(v1, v0) == 0);
          }
          for (int e = 0; e < 4; ++e) {  // plain, bias + ReLU, bias + ReLU6, accumulating
            CAPTURE(e);
            const float* b = e == 0 ? nullptr : bias.data();
            const bool relu = e == 1 || e == 2, acc = e == 3;
            const float cap = e == 2 ? 6.0f : 0.0f;
            std::vector<float> y0 = init, y1 = init;
            kc::detail::winograd_output_transform_m<mm>(Mv.data(), q, 0, q.N, b, relu, acc, y0.data(), cap, false);
            if (wide)
              kc::detail::winograd_output_transform_avx512<mm>(Mv.data(), q, 0, q.N, b, relu, acc, y1.data(), cap,
                                                               false);
            else
              kc::detail::winograd_output_transform_avx2<mm>(Mv.data(), q, 0, q.N, b, relu, acc, y1.data(), cap, false);
            CHECK(close(y1, y0) == 0);
          }
          for (bool rotate : {false, true})
            for (int64_t mr : {int64_t(1), int64_t(14)}) {
              CAPTURE(rotate);
              CAPTURE(mr);
              const int64_t outer = rotate ? q.Ci : q.Co, inner = rotate ? q.Co : q.Ci;
              const size_t nu = static_cast<size_t>(a2 * kc::detail::winograd_u_plane(outer, inner, mr));
              std::vector<float> u0(nu, NAN), u1(nu, NAN);
              for (int64_t sl = 0; sl < (outer + mr - 1) / mr; ++sl) {
                kc::detail::winograd_filter_sliver<mm>(w.data(), q.Co, q.Ci, rotate, u0.data(), mr, sl);
                if (wide)
                  kc::detail::winograd_filter_sliver_avx512<mm>(w.data(), q.Co, q.Ci, rotate, u1.data(), mr, sl);
                else
                  kc::detail::winograd_filter_sliver_avx2<mm>(w.data(), q.Co, q.Ci, rotate, u1.data(), mr, sl);
              }
              CHECK(close(u1, u0) == 0);
            }
          {  // the output gradient's transform (init as dy)
            const size_t ng = static_cast<size_t>(a2 * q.Co * P);
            std::vector<float> g0(ng, NAN), g1(ng, NAN);
            kc::detail::winograd_grad_output_transform_m<mm>(init.data(), q, 0, q.N, g0.data(), false);
            if (wide)
              kc::detail::winograd_grad_output_transform_avx512<mm>(init.data(), q, 0, q.N, g1.data(), false);
            else
              kc::detail::winograd_grad_output_transform_avx2<mm>(init.data(), q, 0, q.N, g1.data(), false);
            CHECK(close(g1, g0) == 0);
          }
          if (!wide) continue;  // the filter's weight-gradient transform has an AVX-512 copy only
          std::vector<float> dw0 = rnd(q.Co * q.Ci * 9, 67), dw1 = dw0;  // adds into dw
          kc::detail::winograd_filter_grad_transform_m<mm>(dU.data(), q.Co, q.Ci, dw0.data());
          kc::detail::winograd_filter_grad_transform_avx512<mm>(dU.data(), q.Co, q.Ci, dw1.data());
          CHECK(close(dw1, dw0) == 0);
        }
      });
    }
#else
  MESSAGE("not an x86-64 GCC/Clang build: no vector copies of the transforms");
#endif
}

TEST_CASE("Winograd: the output gradient's transform, streamed by two threads, equals the one-thread copy") {
  // The grouped weight gradient runs it work-shared (shared = true) and, with G 64-byte aligned and P a
  // multiple of 16, with non-temporal stores (winograd_put). 2 samples of 12x12 at m = 3: P = 32.
  const kc::Conv2DGeom g = kc::make_conv_geom(2, 5, 12, 12, 7, 3, 3, 1, 1, kc::Padding::Same);
  const kc::WinogradGeom q = kc::winograd_geom_forward(g, 3);
  const int64_t P = q.N * q.tiles(), ng = q.points() * q.Co * P;
  REQUIRE(P % 16 == 0);
  const auto dy = rnd(q.N * q.Co * q.OH * q.OW, 68);
  std::vector<float> want(static_cast<size_t>(ng), NAN);
  kc::detail::winograd_grad_output_transform_m<3>(dy.data(), q, 0, q.N, want.data(), false);
  for (int copy = 0; copy < 2; ++copy) {
    if (!copy_runs(copy)) continue;
    CAPTURE(copy);
    HostBuffer<float> buf;
    float* G = buf.get(static_cast<size_t>(ng));
    REQUIRE(kc::detail::winograd_can_stream(G, P));
    std::fill(G, G + ng, NAN);
#pragma omp parallel num_threads(2)
    {
#if defined(TINYCNN_HAVE_X86_TARGETS)
      if (copy == 1)
        kc::detail::winograd_grad_output_transform_avx512<3>(dy.data(), q, 0, q.N, G, true);
      else
#endif
        kc::detail::winograd_grad_output_transform_m<3>(dy.data(), q, 0, q.N, G, true);
    }
    int64_t bad = 0;
    for (int64_t i = 0; i < ng; ++i) bad += !copy_matches(copy, G[i], want[static_cast<size_t>(i)]);
    CHECK(bad == 0);
  }
}

TEST_CASE("Winograd: a large prepacked V, written sliver by sliver, equals the transforms of single samples") {
  // Above kWinogradSliverMajorBytes the input transform walks the columns one sliver at a time
  // (padding the rows of each sample's planes that the sliver's tiles read); one sample's V stays
  // below it and is written channel by channel, by the baseline copy. Each value has the same
  // arithmetic either way: bitwise equal for the baseline copy, to float rounding for the AVX-512 one.
  // Planes of 64x62 (rows of 65 or 66 values: the generic padded copy), 14x14 'same' and 18x18
  // 'valid' (rows of 16-20 values: the AVX-512 copy's vector rows, edge lanes masked, and whole
  // 16-value source runs without padding); a chunk pads only the rows its tiles read.
  for (const kc::Conv2DGeom& g : {kc::make_conv_geom(6, 16, 64, 62, 16, 3, 3, 1, 1, kc::Padding::Same),
                                  kc::make_conv_geom(28, 64, 14, 14, 16, 3, 3, 1, 1, kc::Padding::Same),
                                  kc::make_conv_geom(19, 64, 18, 18, 16, 3, 3, 1, 1, kc::Padding::Valid)})
  for (int64_t m : {2, 3})
    for (int64_t nr : {int64_t(32), int64_t(48)})
      for (int copy = 0; copy < 2; ++copy) {
        if (!copy_runs(copy)) continue;
        CAPTURE(g.H);
        CAPTURE(m);
        CAPTURE(nr);
        CAPTURE(copy);
        const auto x = rnd(g.N * g.C * g.H * g.W, 71);
        const kc::WinogradGeom q = kc::winograd_geom_forward(g, m);
        const int64_t NT = q.tiles(), P = q.N * NT, a2 = q.points();
        const int64_t xs = kc::detail::winograd_v_plane(q.Ci, P, nr), xs1 = kc::detail::winograd_v_plane(q.Ci, NT, nr);
        REQUIRE(a2 * xs * int64_t(sizeof(float)) > kc::detail::kWinogradSliverMajorBytes);
        REQUIRE(a2 * xs1 * int64_t(sizeof(float)) <= kc::detail::kWinogradSliverMajorBytes);
        auto run = [&](int which, int64_t n0, int64_t nb, float* V, bool shared) {
          kc::detail::winograd_dispatch(m, [&](auto mc) {
            constexpr int mm = decltype(mc)::value;
#if defined(TINYCNN_HAVE_X86_TARGETS)
            if (which == 1) return kc::detail::winograd_input_transform_avx512<mm>(x.data(), q, n0, nb, V, nr, shared);
#endif
            kc::detail::winograd_input_transform_m<mm>(x.data(), q, n0, nb, V, nr, shared);
          });
        };
        std::vector<float> big(static_cast<size_t>(a2 * xs), NAN), one(static_cast<size_t>(a2 * xs1), NAN);
#pragma omp parallel num_threads(2)
        run(copy, 0, q.N, big.data(), true);  // the channels split between 2 threads
        // element (point xi, channel c, column p) of a prepacked V with planes xs apart
        auto at = [&](const std::vector<float>& v, int64_t plane, int64_t xi, int64_t c, int64_t p) {
          return v[static_cast<size_t>(xi * plane + (p / nr) * nr * q.Ci + c * nr + p % nr)];
        };
        int64_t bad = 0;
        for (int64_t j = 0; j < q.N; ++j) {
          std::fill(one.begin(), one.end(), NAN);
          run(0, j, 1, one.data(), false);  // always the baseline copy
          for (int64_t xi = 0; xi < a2; ++xi)
            for (int64_t c = 0; c < q.Ci; ++c)
              for (int64_t t = 0; t < NT; ++t) {
                bad += !copy_matches(copy, at(big, xs, xi, c, j * NT + t), at(one, xs1, xi, c, t));
              }
        }
        CHECK(bad == 0);
      }
}

TEST_CASE("Winograd: the point GEMMs cut evenly over the threads cover every point's columns once") {
  for (int64_t npts : {16, 25, 36})
    for (int64_t nt : {1, 2, 3, 4})
      for (int64_t n : {7, 100, 512})
        for (int64_t align : {1, 6, 16}) {
          const kc::detail::WinogradPointItems items{npts, nt};
          std::vector<int> hits(static_cast<size_t>(npts * n), 0);
          for (int64_t it = 0; it < items.count(); ++it) {
            int64_t xi, lo, hi;
            items.range(it, n, align, xi, lo, hi);
            REQUIRE(xi >= 0);
            REQUIRE(xi < npts);
            CHECK((lo % align == 0 || lo == n));
            for (int64_t j = lo; j < hi; ++j) ++hits[static_cast<size_t>(xi * n + j)];
          }
          CAPTURE(npts);
          CAPTURE(nt);
          CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
          // every thread's share is the same number of whole GEMMs (npts / nt of them) and one part
          CHECK(items.count() % nt == 0);
        }
}

TEST_CASE("Winograd: 2 threads give the 1-thread result bitwise (the odd point GEMM cut in parts)") {
  const int saved = get_num_threads();
  const kc::Conv2DGeom g = kc::make_conv_geom(3, 16, 13, 12, 20, 3, 3, 1, 1, kc::Padding::Same);
  const int64_t nx = g.N * g.C * g.H * g.W, nw = g.K * g.C * 9, ny = g.N * g.K * g.OH * g.OW;
  const auto x = rnd(nx, 41), w = rnd(nw, 42), b = rnd(g.K, 43), dy = rnd(ny, 44);
  const kc::WinogradGeom qf = kc::winograd_geom_forward(g, 3), qb = kc::winograd_geom_backward_data(g, 3);
  REQUIRE(qf.points() == 25);  // odd: on 2 threads the last point's GEMM is cut in two
  const auto gemm_fn = &kc::detail::conv_gemm_default<float>;
  std::vector<float> U(static_cast<size_t>(qf.points() * nw)), Ur(U.size());
  kc::winograd_filter_transform(w.data(), g.K, g.C, false, 3, U.data(), false);
  kc::winograd_filter_transform(w.data(), g.K, g.C, true, 3, Ur.data(), false);
  const int64_t mrf = kc::gemm_prepacked_a_mr<float>(qf.Ci), mrb = kc::gemm_prepacked_a_mr<float>(qb.Ci);
  std::vector<float> Up(static_cast<size_t>(qf.points() * kc::detail::winograd_u_plane(qf.Co, qf.Ci, mrf)));
  std::vector<float> Urp(static_cast<size_t>(qb.points() * kc::detail::winograd_u_plane(qb.Co, qb.Ci, mrb)));
  kc::winograd_filter_transform(w.data(), g.K, g.C, false, 3, Up.data(), false, mrf);
  kc::winograd_filter_transform(w.data(), g.K, g.C, true, 3, Urp.data(), false, mrb);
  std::vector<float> out[2][6];
  for (int t = 0; t < 2; ++t) {
    set_num_threads(t + 1);
    for (int prepack = 0; prepack < 3; ++prepack) {  // none, V, U and V
      out[t][prepack].assign(static_cast<size_t>(ny), NAN);
      kc::winograd_conv3x3(x.data(), prepack == 2 ? Up.data() : U.data(), qf, b.data(), true, false,
                           out[t][prepack].data(), gemm_fn, int64_t(4) << 20, 512, prepack >= 1, prepack == 2 ? mrf : 0);
    }
    out[t][3] = rnd(nx, 45);
    kc::winograd_conv3x3(dy.data(), Ur.data(), qb, static_cast<const float*>(nullptr), false, true, out[t][3].data(),
                         gemm_fn, int64_t(4) << 20, 512, true);
    out[t][4] = rnd(nx, 45);
    kc::winograd_conv3x3(dy.data(), Urp.data(), qb, static_cast<const float*>(nullptr), false, true, out[t][4].data(),
                         gemm_fn, int64_t(4) << 20, 512, true, mrb);
    out[t][5] = rnd(nw, 46);
    kc::winograd_conv3x3_backward_filter(x.data(), dy.data(), qf, out[t][5].data(), gemm_fn);
  }
  set_num_threads(saved);
  // the layouts against each other (bitwise at -O3: tests/contraction_util.hpp); the thread counts bitwise
  CHECK(tinycnn_test::same_but_contraction(out[0][2], out[0][0]));
  CHECK(tinycnn_test::same_but_contraction(out[0][4], out[0][3]));
  for (int k = 0; k < 6; ++k) {
    CAPTURE(k);
    CHECK(std::memcmp(out[0][k].data(), out[1][k].data(), out[0][k].size() * sizeof(float)) == 0);
  }
}

TEST_CASE("im2row is the transpose of im2col (padding, strides, odd kernels)") {
  for (auto c : {std::array<int64_t, 6>{3, 7, 7, 3, 3, 1}, {2, 8, 6, 3, 2, 2}, {1, 5, 9, 1, 4, 3}, {4, 4, 4, 1, 1, 1}})
    for (auto pad : {kc::Padding::Same, kc::Padding::Valid}) {
      const kc::Conv2DGeom g = kc::make_conv_geom(1, c[0], c[1], c[2], 1, c[3], c[4], c[5], c[5], pad);
      const int64_t L = g.OH * g.OW, CRS = g.C * g.R * g.S;
      const auto x = rnd(g.C * g.H * g.W, 11);
      std::vector<float> col(static_cast<size_t>(CRS * L)), rows(static_cast<size_t>(CRS * L), NAN);
      kc::im2col(x.data(), g, col.data());
      kc::im2row(x.data(), g, rows.data());
      int64_t bad = 0;
      for (int64_t r = 0; r < CRS; ++r)
        for (int64_t l = 0; l < L; ++l) bad += !(rows[size_t(l * CRS + r)] == col[size_t(r * L + l)]);
      CAPTURE(c[1]);
      CAPTURE(c[3]);
      CHECK(bad == 0);
    }
}

TEST_CASE("im2col_ld / col2im_add_ld: columns of two images side by side") {
  const kc::Conv2DGeom g = kc::make_conv_geom(1, 2, 5, 4, 1, 3, 2, 2, 1, kc::Padding::Same);
  const int64_t L = g.OH * g.OW, CRS = g.C * g.R * g.S, CHW = g.C * g.H * g.W;
  const auto x = rnd(2 * CHW, 9);
  std::vector<float> side(static_cast<size_t>(CRS * 2 * L)), one(static_cast<size_t>(CRS * L));
  kc::im2col_ld(x.data(), g, side.data(), 2 * L);
  kc::im2col_ld(x.data() + CHW, g, side.data() + L, 2 * L);
  for (int64_t img = 0; img < 2; ++img) {
    kc::im2col(x.data() + img * CHW, g, one.data());
    for (int64_t r = 0; r < CRS; ++r)
      for (int64_t l = 0; l < L; ++l) CHECK(side[size_t(r * 2 * L + img * L + l)] == one[size_t(r * L + l)]);
  }
  std::vector<float> a(static_cast<size_t>(CHW), 1.0f), b = a;
  kc::col2im_add_ld(side.data() + L, g, a.data(), 2 * L);
  kc::im2col(x.data() + CHW, g, one.data());
  kc::col2im_add(one.data(), g, b.data());
  CHECK(maxdiff(a, b) == 0.0);
}

TEST_CASE("backward filter form: Auto takes the orientation that fills the GEMM's register tiles better") {
  const kc::GemmTileShape avx512{14, 32};
  CHECK(kc::detail::tile_fill(27, 32, avx512) == doctest::Approx(27.0 / 28.0));
  CHECK(kc::detail::tile_fill(32, 27, avx512) == doctest::Approx(32.0 / 42.0 * 27.0 / 32.0));
  CHECK(kc::detail::tile_fill(28, 64, avx512) == doctest::Approx(1.0));
  const kc::GemmTileShape t = kc::gemm_tile_shape<float>(false, true, 81);
  kc::ConvOptions o;  // Auto
  for (int64_t C : {1, 3, 8, 32, 64})
    for (int64_t K : {6, 8, 16, 32, 64, 128}) {
      const kc::Conv2DGeom g = kc::make_conv_geom(2, C, 9, 9, K, 3, 3, 1, 1, kc::Padding::Same);
      const bool coldy = kc::detail::tile_fill(C * 9, K, t) > 1.2 * kc::detail::tile_fill(K, C * 9, t);
      CAPTURE(C);
      CAPTURE(K);
      CHECK(kc::detail::filter_form<float>(g, o) ==
            (coldy ? kc::ConvOptions::FilterForm::ColDy : kc::ConvOptions::FilterForm::DyCol));
    }
  o.filter_form = kc::ConvOptions::FilterForm::Rows;  // an explicit choice is kept
  CHECK(kc::detail::filter_form<float>(kc::make_conv_geom(2, 3, 9, 9, 32, 3, 3, 1, 1, kc::Padding::Same), o) ==
        kc::ConvOptions::FilterForm::Rows);
}
