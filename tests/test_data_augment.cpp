// Resize, normalisation and augmentation.
#include <doctest/doctest.h>

#include <cmath>
#include <tinycnn/data/augment.hpp>
#include <tinycnn/data/normalize.hpp>
#include <tinycnn/data/resize.hpp>
#include <tinycnn/kernels/cpu/resize.hpp>

using namespace tinycnn;
using namespace tinycnn::data;

namespace {
Image gradient(int w, int h) {
  Image im(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      im.at(x, y, 0) = static_cast<uint8_t>(x * 255 / std::max(1, w - 1));
      im.at(x, y, 1) = static_cast<uint8_t>(y * 255 / std::max(1, h - 1));
      im.at(x, y, 2) = 77;
    }
  return im;
}
double mean_abs_diff(const Image& a, const Image& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  double s = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) s += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return s / double(a.pixels.size());
}
}  // namespace

TEST_CASE("data resize: own resampler vs stb, constant images stay constant") {
  Image c(37, 23, 3);
  std::fill(c.pixels.begin(), c.pixels.end(), uint8_t(200));
  for (Resampler r : {Resampler::Bilinear, Resampler::Stb}) {
    Image s = resize(c, 11, 50, r);
    CHECK(s.width == 11);
    CHECK(s.height == 50);
    for (uint8_t v : s.pixels) CHECK(v == 200);
  }
  const Image g = gradient(150, 120);
  const Image a = resize(g, 64, 48, Resampler::Bilinear), b = resize(g, 64, 48, Resampler::Stb);
  CHECK(mean_abs_diff(a, b) < 2.0);
  const Image up = resize(g, 300, 240);
  CHECK(mean_abs_diff(resize(up, 150, 120), g) < 2.0);
  CHECK(resize(g, 150, 120).pixels == g.pixels);
}

TEST_CASE("data resize: nn::Resizing's float kernel resamples as the pipeline does (area and warp)") {
  // A model that resizes inside itself (ensemble adapters) must see what the pipeline would have fed
  // it: antialias = the pipeline's resize_to, no antialias = the augmentation's identity warp.
  Image im(150, 150, 3);
  Rng noise(7);
  for (auto& v : im.pixels) v = static_cast<uint8_t>(noise.below(256));
  std::vector<float> planes(im.pixels.size());
  for (int c = 0; c < 3; ++c)
    for (size_t i = 0; i < size_t(150 * 150); ++i) planes[size_t(c) * 150 * 150 + i] = im.pixels[i * 3 + size_t(c)];
  for (int out : {128, 224, 61}) {
    for (bool aa : {true, false}) {
      std::vector<float> y(size_t(3) * size_t(out) * size_t(out));
      kernels::cpu::resize2d_forward(planes.data(), 3, 150, 150, out, out, aa, y.data());
      Rng rng(0);
      const Image ref = aa ? resize(im, out, out) : augment(im, out, out, AugmentOptions{}, rng);
      double worst = 0;
      for (int c = 0; c < 3; ++c)
        for (size_t i = 0; i < size_t(out) * size_t(out); ++i)
          worst = std::max(worst, std::fabs(double(y[size_t(c) * size_t(out) * size_t(out) + i]) - ref.pixels[i * 3 + size_t(c)]));
      INFO("out " << out << " antialias " << aa);
      CHECK(worst <= 1.0);  // uint8 rounding (and 14-bit weights) in the pipeline
    }
  }
}

TEST_CASE("data resize: centre crop and pad keep the aspect ratio") {
  Image g = gradient(200, 100);
  Image cc = resize_to(g, 50, 50, ResizeMode::CenterCrop);
  CHECK(cc.width == 50);
  // centre crop covers x in [50, 150): left edge red ~ 64, right edge ~ 190
  CHECK(std::abs(int(cc.at(0, 25, 0)) - 65) < 6);
  CHECK(std::abs(int(cc.at(49, 25, 0)) - 190) < 6);
  Image pd = resize_to(g, 50, 50, ResizeMode::Pad, Resampler::Bilinear, 9);
  CHECK(pd.at(25, 0, 2) == 9);    // padding above
  CHECK(pd.at(25, 25, 2) == 77);  // image in the middle
  CHECK(resize_to(g, 40, 20, ResizeMode::CenterCrop, Resampler::Stb).width == 40);
}

TEST_CASE("data normalize: rescale, mean/std, NCHW layout") {
  Image im(2, 1, 3);
  im.pixels = {255, 0, 51, 0, 255, 102};
  Tensor<float> t = to_tensor(im);
  CHECK(t.shape() == Shape{1, 3, 1, 2});
  CHECK(t.at({0, 0, 0, 0}) == doctest::Approx(1.0));
  CHECK(t.at({0, 0, 0, 1}) == doctest::Approx(0.0));
  CHECK(t.at({0, 2, 0, 1}) == doctest::Approx(0.4));
  Normalize n = Normalize::imagenet();
  Tensor<float> u = to_tensor(std::vector<Image>{im, im}, n);
  CHECK(u.shape() == Shape{2, 3, 1, 2});
  CHECK(u.at({1, 1, 0, 1}) == doctest::Approx((1.0 - 0.456) / 0.224));
  CHECK_THROWS_AS(to_tensor(std::vector<Image>{im, gradient(3, 3)}), ShapeError);
}

TEST_CASE("data augment: identity parameters reproduce the image") {
  const Image g = gradient(40, 30);
  AugmentOptions o;
  Rng rng(1);
  CHECK(augment(g, 40, 30, o, rng).pixels == g.pixels);
  AugmentParams p;
  p.crop_w = 40;
  p.crop_h = 30;
  p.flip_h = true;
  const Image f = apply_augment(g, 40, 30, p, o);
  for (int x = 0; x < 40; ++x) CHECK(f.at(x, 5, 0) == g.at(39 - x, 5, 0));
}

TEST_CASE("data augment: Keras semantics of rotation, shift and zoom") {
  const Image g = gradient(41, 41);
  AugmentOptions o;
  o.fill_mode = FillMode::Constant;
  o.cval = 3;
  AugmentParams p;
  p.crop_w = 41;
  p.crop_h = 41;
  p.theta = 90;  // Keras: input(row, col) = R * output; a 90-degree turn maps columns to rows
  Image r = apply_augment(g, 41, 41, p, o);
  for (int i = 0; i < 41; i += 10) {
    CHECK(std::abs(int(r.at(i, 20, 1)) - int(g.at(20, 40 - i, 1))) <= 1);
  }
  // shift: Keras ty (width_shift) of +5 samples the input 5 columns to the right
  p = AugmentParams{};
  p.crop_w = 41;
  p.crop_h = 41;
  p.ty = 5;
  Image s = apply_augment(g, 41, 41, p, o);
  CHECK(s.at(10, 10, 0) == g.at(15, 10, 0));
  CHECK(s.at(40, 10, 0) == 3);  // outside: constant fill
  // zoom 2 (zoom out): the centre stays, the output covers twice the input
  p = AugmentParams{};
  p.crop_w = 41;
  p.crop_h = 41;
  p.zx = p.zy = 2;
  Image z = apply_augment(g, 41, 41, p, o);
  CHECK(z.at(20, 20, 0) == g.at(20, 20, 0));
  CHECK(z.at(15, 20, 0) == g.at(10, 20, 0));
  CHECK(z.at(0, 20, 0) == 3);
}

TEST_CASE("data augment: fill modes") {
  Image line(4, 1, 3);
  for (int x = 0; x < 4; ++x) for (int c = 0; c < 3; ++c) line.at(x, 0, c) = static_cast<uint8_t>(10 * (x + 1));
  AugmentParams p;
  p.crop_w = 4;
  p.crop_h = 1;
  p.ty = -2;  // sample 2 columns to the left
  AugmentOptions o;
  o.fill_mode = FillMode::Nearest;
  CHECK(apply_augment(line, 4, 1, p, o).at(0, 0, 0) == 10);
  o.fill_mode = FillMode::Reflect;  // b a | a b c d
  CHECK(apply_augment(line, 4, 1, p, o).at(0, 0, 0) == 20);
  CHECK(apply_augment(line, 4, 1, p, o).at(1, 0, 0) == 10);
  o.fill_mode = FillMode::Wrap;
  CHECK(apply_augment(line, 4, 1, p, o).at(0, 0, 0) == 30);
  o.fill_mode = FillMode::Constant;
  o.cval = 99;
  CHECK(apply_augment(line, 4, 1, p, o).at(0, 0, 0) == 99);
}

TEST_CASE("data augment: seeded, reproducible, in range; random resized crop; brightness") {
  const Image g = gradient(150, 150);
  AugmentOptions o;
  o.rotation_range = 30;
  o.width_shift_range = 0.2;
  o.height_shift_range = 0.2;
  o.shear_range = 10;
  o.set_zoom_range(0.2);
  o.horizontal_flip = o.vertical_flip = true;
  o.brightness_lo = 0.5;
  o.brightness_hi = 1.5;
  o.contrast_lo = 0.8;
  o.contrast_hi = 1.2;
  o.random_resized_crop = true;
  o.fill_mode = FillMode::Reflect;
  Rng a(7), b(7), c(8);
  const Image x = augment(g, 64, 48, o, a), y = augment(g, 64, 48, o, b), z = augment(g, 64, 48, o, c);
  CHECK(x.width == 64);
  CHECK(x.height == 48);
  CHECK(x.pixels == y.pixels);
  CHECK(x.pixels != z.pixels);
  Rng r(3);
  for (int i = 0; i < 200; ++i) {
    AugmentParams p = draw_augment_params(g, 64, 48, o, r);
    CHECK(std::abs(p.theta) <= 30);
    CHECK(std::abs(p.ty) <= 0.2 * 64);
    CHECK((p.zx >= 0.8 && p.zx <= 1.2));
    CHECK((p.brightness >= 0.5 && p.brightness <= 1.5));
    CHECK((p.crop_w >= 1 && p.crop_x + p.crop_w <= 150 && p.crop_y + p.crop_h <= 150));
    CHECK(p.crop_w * p.crop_h <= 150.0 * 150.0);
  }
  Image br = g;
  adjust_brightness_contrast(br, 2.0, 1.0);
  CHECK(br.at(10, 0, 0) == std::min(255, 2 * g.at(10, 0, 0)));
  CHECK(br.at(149, 0, 0) == 255);
}
