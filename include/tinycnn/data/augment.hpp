#pragma once
// Training-time augmentation with Keras ImageDataGenerator semantics (see docs/data.md), plus
// torchvision's RandomResizedCrop. All geometric transforms of one image (crop/resize to the output
// size, rotation, shifts, shear, zoom, flips) compose into ONE affine map from output pixel to source
// pixel, applied in a single bilinear pass; then brightness and contrast act on the result.
//
//   AugmentOptions a; a.rotation_range = 20; a.horizontal_flip = true; a.zoom_range = {0.9, 1.1};
//   Rng rng(seed);
//   Image out = augment(image, 150, 150, a, rng);
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "image.hpp"

namespace tinycnn {
namespace data {

enum class FillMode { Nearest, Reflect, Wrap, Constant };

struct AugmentOptions {
  // Keras ImageDataGenerator parameters (same meaning and units).
  double rotation_range = 0;      // degrees; angle ~ U(-r, r)
  double width_shift_range = 0;   // < 1: fraction of the width; >= 1: pixels; shift ~ U(-r, r)
  double height_shift_range = 0;  // same for the height
  double shear_range = 0;         // degrees (counter-clockwise); shear ~ U(-r, r)
  double zoom_lo = 1, zoom_hi = 1;  // zoom_range [lo, hi]: zx, zy ~ U(lo, hi) independently; >1 zooms OUT
  bool horizontal_flip = false;   // each with probability 1/2
  bool vertical_flip = false;
  FillMode fill_mode = FillMode::Nearest;
  uint8_t cval = 0;               // fill value for FillMode::Constant
  double brightness_lo = 1, brightness_hi = 1;  // brightness_range: pixel * U(lo, hi)
  double contrast_lo = 1, contrast_hi = 1;      // (pixel - image mean) * U(lo, hi) + mean
  // torchvision RandomResizedCrop: a random window with area fraction ~ U(scale) and log-uniform
  // aspect ratio, resized to the output size. Off: the whole image is resized to the output size.
  bool random_resized_crop = false;
  double crop_scale_lo = 0.08, crop_scale_hi = 1.0;
  double crop_ratio_lo = 3.0 / 4.0, crop_ratio_hi = 4.0 / 3.0;

  // Keras zoom_range=z means [1-z, 1+z].
  void set_zoom_range(double z) { zoom_lo = 1 - z; zoom_hi = 1 + z; }
  bool geometric() const {
    return rotation_range != 0 || width_shift_range != 0 || height_shift_range != 0 || shear_range != 0 ||
           zoom_lo != 1 || zoom_hi != 1 || horizontal_flip || vertical_flip || random_resized_crop;
  }
};

// The random parameters drawn for one image (exposed for tests and for logging).
struct AugmentParams {
  double theta = 0, tx = 0, ty = 0, shear = 0, zx = 1, zy = 1;  // Keras names: tx rows, ty columns
  bool flip_h = false, flip_v = false;
  double brightness = 1, contrast = 1;
  double crop_x = 0, crop_y = 0, crop_w = 0, crop_h = 0;  // source window (whole image when no crop)
};

// 2x3 affine map: src = M * [x, y, 1] (x column, y row, pixel centres at integers).
struct Affine {
  double a = 1, b = 0, c = 0;  // src_x = a x + b y + c
  double d = 0, e = 1, f = 0;  // src_y = d x + e y + f
  // (this ∘ o)(p) = this(o(p))
  Affine then_from(const Affine& o) const {
    Affine r;
    r.a = a * o.a + b * o.d; r.b = a * o.b + b * o.e; r.c = a * o.c + b * o.f + c;
    r.d = d * o.a + e * o.d; r.e = d * o.b + e * o.e; r.f = d * o.c + e * o.f + f;
    return r;
  }
};

// Draws parameters in a fixed order (so a seed always gives the same image): crop, theta, tx, ty,
// shear, zx, zy, flip_h, flip_v, brightness, contrast. A parameter whose range is empty draws nothing.
inline AugmentParams draw_augment_params(const Image& in, int out_w, int out_h, const AugmentOptions& o, Rng& rng) {
  AugmentParams p;
  p.crop_w = in.width;
  p.crop_h = in.height;
  if (o.random_resized_crop) {
    const double area = double(in.width) * in.height;
    bool found = false;
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
      const double target = area * rng.uniform(o.crop_scale_lo, o.crop_scale_hi);
      const double ratio = std::exp(rng.uniform(std::log(o.crop_ratio_lo), std::log(o.crop_ratio_hi)));
      const double w = std::round(std::sqrt(target * ratio)), h = std::round(std::sqrt(target / ratio));
      if (w > 0 && h > 0 && w <= in.width && h <= in.height) {
        p.crop_x = double(rng.below(static_cast<uint64_t>(in.width - w) + 1));
        p.crop_y = double(rng.below(static_cast<uint64_t>(in.height - h) + 1));
        p.crop_w = w;
        p.crop_h = h;
        found = true;
      }
    }
    if (!found) {  // torchvision's fallback: centre crop with the ratio clamped
      const double r = double(in.width) / in.height;
      double w = in.width, h = in.height;
      if (r < o.crop_ratio_lo) h = std::round(w / o.crop_ratio_lo);
      else if (r > o.crop_ratio_hi) w = std::round(h * o.crop_ratio_hi);
      p.crop_w = w; p.crop_h = h;
      p.crop_x = std::floor((in.width - w) / 2); p.crop_y = std::floor((in.height - h) / 2);
    }
  }
  if (o.rotation_range != 0) p.theta = rng.uniform(-o.rotation_range, o.rotation_range);
  if (o.height_shift_range != 0) {
    p.tx = rng.uniform(-o.height_shift_range, o.height_shift_range);
    if (o.height_shift_range < 1) p.tx *= out_h;
  }
  if (o.width_shift_range != 0) {
    p.ty = rng.uniform(-o.width_shift_range, o.width_shift_range);
    if (o.width_shift_range < 1) p.ty *= out_w;
  }
  if (o.shear_range != 0) p.shear = rng.uniform(-o.shear_range, o.shear_range);
  if (o.zoom_lo != 1 || o.zoom_hi != 1) {
    p.zx = rng.uniform(o.zoom_lo, o.zoom_hi);
    p.zy = rng.uniform(o.zoom_lo, o.zoom_hi);
  }
  if (o.horizontal_flip) p.flip_h = rng.uniform() < 0.5;
  if (o.vertical_flip) p.flip_v = rng.uniform() < 0.5;
  if (o.brightness_lo != 1 || o.brightness_hi != 1) p.brightness = rng.uniform(o.brightness_lo, o.brightness_hi);
  if (o.contrast_lo != 1 || o.contrast_hi != 1) p.contrast = rng.uniform(o.contrast_lo, o.contrast_hi);
  return p;
}

// The single output->source map for parameters p. Keras builds, in (row, col) coordinates,
// M = R(theta) * Shift(tx, ty) * Shear * Zoom about the image centre (h/2 - 0.5, w/2 - 0.5) and
// samples input = M * output; flips are applied to the warped image; we fold them in as a flip of
// the output coordinates. The result (in output pixels) is then mapped into the crop window.
inline Affine augment_affine(const AugmentParams& p, int out_w, int out_h) {
  const double pi = 3.14159265358979323846;
  const double t = p.theta * pi / 180.0, s = p.shear * pi / 180.0;
  // Keras in (row, col): [[cos, -sin, tx], [sin, cos, ty]] * [[1, -sin s, 0], [0, cos s, 0]] * diag(zx, zy)
  const double m00 = std::cos(t), m01 = -std::sin(t), m10 = std::sin(t), m11 = std::cos(t);
  // R * Shift
  const double r0 = m00 * p.tx + m01 * p.ty, r1 = m10 * p.tx + m11 * p.ty;
  // (R*Shift) * Shear: linear part R * [[1, -sin s], [0, cos s]]
  const double k00 = m00, k01 = -m00 * std::sin(s) + m01 * std::cos(s);
  const double k10 = m10, k11 = -m10 * std::sin(s) + m11 * std::cos(s);
  // * Zoom
  const double l00 = k00 * p.zx, l01 = k01 * p.zy, l10 = k10 * p.zx, l11 = k11 * p.zy;
  // Offset to the centre: M' = T(o) M T(-o), o = (h/2 - 0.5, w/2 - 0.5)
  const double orow = out_h / 2.0 - 0.5, ocol = out_w / 2.0 - 0.5;
  const double trow = orow + r0 - (l00 * orow + l01 * ocol);
  const double tcol = ocol + r1 - (l10 * orow + l11 * ocol);
  // Convert (row, col) -> (x = col, y = row): src_x = l10 * y + l11 * x + tcol ; src_y = l00 * y + l01 * x + trow
  Affine keras;
  keras.a = l11; keras.b = l10; keras.c = tcol;
  keras.d = l01; keras.e = l00; keras.f = trow;
  // Flip of the output coordinates (applied first).
  Affine flip;
  if (p.flip_h) { flip.a = -1; flip.c = out_w - 1; }
  if (p.flip_v) { flip.e = -1; flip.f = out_h - 1; }
  // Output-sized coordinates -> crop window in the source (pixel centres: (x + 0.5) * s - 0.5).
  Affine win;
  const double sx = p.crop_w / out_w, sy = p.crop_h / out_h;
  win.a = sx; win.c = p.crop_x + 0.5 * sx - 0.5;
  win.e = sy; win.f = p.crop_y + 0.5 * sy - 0.5;
  return win.then_from(keras.then_from(flip));
}

namespace detail {
inline int fill_index(int i, int n, FillMode m) {
  if (i >= 0 && i < n) return i;
  switch (m) {
    case FillMode::Nearest: return i < 0 ? 0 : n - 1;
    case FillMode::Wrap: { int r = i % n; return r < 0 ? r + n : r; }
    case FillMode::Reflect: {  // scipy 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a
      const int period = 2 * n;
      int r = i % period;
      if (r < 0) r += period;
      return r < n ? r : period - 1 - r;
    }
    case FillMode::Constant: return -1;
  }
  return -1;
}
}  // namespace detail

// One bilinear pass: out(x, y) = in(M(x, y)), borders by fill mode. Output has the input's channels.
inline Image warp_affine(const Image& in, int out_w, int out_h, const Affine& m, FillMode fill = FillMode::Nearest,
                         uint8_t cval = 0) {
  if (in.empty() || out_w <= 0 || out_h <= 0) throw ValueError("warp_affine: bad sizes");
  const int C = in.channels, W = in.width, H = in.height;
  Image out(out_w, out_h, C);
  const size_t cs = static_cast<size_t>(C);
  for (int y = 0; y < out_h; ++y) {
    uint8_t* dst = out.row(y);
    double sx = m.b * y + m.c, sy = m.e * y + m.f;
    for (int x = 0; x < out_w; ++x, sx += m.a, sy += m.d, dst += cs) {
      const double fx = std::floor(sx), fy = std::floor(sy);
      const float wx = static_cast<float>(sx - fx), wy = static_cast<float>(sy - fy);
      // Guard against NaN/huge coordinates before converting to int.
      if (!(fx > -1e8 && fx < 1e8 && fy > -1e8 && fy < 1e8)) {
        for (int c = 0; c < C; ++c) dst[c] = cval;
        continue;
      }
      const int x0 = static_cast<int>(fx), y0 = static_cast<int>(fy);
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {  // fast interior path
        const uint8_t* p00 = in.row(y0) + static_cast<size_t>(x0) * cs;
        const uint8_t* p10 = p00 + cs;
        const uint8_t* p01 = p00 + in.row_bytes();
        const uint8_t* p11 = p01 + cs;
        for (int c = 0; c < C; ++c) {
          const float top = p00[c] + wx * (p10[c] - p00[c]);
          const float bot = p01[c] + wx * (p11[c] - p01[c]);
          dst[c] = static_cast<uint8_t>(top + wy * (bot - top) + 0.5f);
        }
        continue;
      }
      const int xi[2] = {detail::fill_index(x0, W, fill), detail::fill_index(x0 + 1, W, fill)};
      const int yi[2] = {detail::fill_index(y0, H, fill), detail::fill_index(y0 + 1, H, fill)};
      for (int c = 0; c < C; ++c) {
        auto px = [&](int j, int i) -> float {
          return (xi[i] < 0 || yi[j] < 0) ? float(cval) : float(in.row(yi[j])[static_cast<size_t>(xi[i]) * cs + static_cast<size_t>(c)]);
        };
        const float top = px(0, 0) + wx * (px(0, 1) - px(0, 0));
        const float bot = px(1, 0) + wx * (px(1, 1) - px(1, 0));
        const float v = top + wy * (bot - top) + 0.5f;
        dst[c] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
      }
    }
  }
  return out;
}

// Brightness (multiply) then contrast (about the image's mean), both clipped to 0..255.
inline void adjust_brightness_contrast(Image& im, double brightness, double contrast) {
  if (brightness == 1 && contrast == 1) return;
  double mean = 0;
  if (contrast != 1) {
    uint64_t sum = 0;
    for (uint8_t v : im.pixels) sum += v;
    mean = im.pixels.empty() ? 0 : brightness * double(sum) / double(im.pixels.size());
  }
  uint8_t lut[256];
  for (int v = 0; v < 256; ++v) {
    double x = v * brightness;
    x = (x - mean) * contrast + mean;
    lut[v] = static_cast<uint8_t>(std::lround(std::min(255.0, std::max(0.0, x))));
  }
  for (uint8_t& v : im.pixels) v = lut[v];
}

inline Image apply_augment(const Image& in, int out_w, int out_h, const AugmentParams& p, const AugmentOptions& o) {
  Image out = warp_affine(in, out_w, out_h, augment_affine(p, out_w, out_h), o.fill_mode, o.cval);
  adjust_brightness_contrast(out, p.brightness, p.contrast);
  return out;
}

// Draws parameters from rng and applies them: out_w x out_h, same channels.
inline Image augment(const Image& in, int out_w, int out_h, const AugmentOptions& o, Rng& rng) {
  return apply_augment(in, out_w, out_h, draw_augment_params(in, out_w, out_h, o, rng), o);
}

}  // namespace data
}  // namespace tinycnn
