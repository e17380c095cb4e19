#pragma once
// Resizing to a model's input size.
//   resize(im, w, h)                     own separable resampler: triangle (bilinear) filter widened by
//                                        the scale factor when shrinking (antialiased, like PIL's
//                                        BILINEAR), exact when upscaling
//   resize(im, w, h, Resampler::Stb)     stb_image_resize (Mitchell/Catmull-Rom filters), for comparison
//   resize_to(im, w, h, ResizeMode::CenterCrop)  keep the aspect ratio, scale to cover, crop the centre
//   resize_to(im, w, h, ResizeMode::Pad)         keep the aspect ratio, fit inside, pad with `pad` grey
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "../kernels/cpu/resize.hpp"
#include "detail/stb.hpp"
#include "image.hpp"

namespace tinycnn {
namespace data {

enum class Resampler { Bilinear, Stb };
enum class ResizeMode { Stretch, CenterCrop, Pad };

namespace detail {

// Contributions of source pixels to each output pixel along one axis, weights in 1/2^14 fixed point.
struct AxisWeights {
  std::vector<int> start, count;
  std::vector<int32_t> w;  // count.size() * max_taps
  int max_taps = 0;
};

// The kernels' antialiased triangle taps (kernels/cpu/resize.hpp, shared with nn::Resizing), quantised.
inline AxisWeights axis_weights(int in, int out, double src0, double src_len) {
  const kernels::cpu::ResizeTaps t = kernels::cpu::resize_taps(in, out, src0, src_len, true);
  AxisWeights a;
  a.max_taps = static_cast<int>(t.max_taps);
  a.start.assign(t.start.begin(), t.start.end());
  a.count.assign(t.count.begin(), t.count.end());
  a.w.assign(static_cast<size_t>(out) * static_cast<size_t>(a.max_taps), 0);
  for (int o = 0; o < out; ++o) {
    int32_t sum = 0;
    for (int k = 0; k < a.count[static_cast<size_t>(o)]; ++k) {
      const size_t at = static_cast<size_t>(o * a.max_taps + k);
      const int32_t q = static_cast<int32_t>(std::lround(t.w[at] * 16384.0));
      a.w[at] = q;
      sum += q;
    }
    a.w[static_cast<size_t>(o * a.max_taps)] += 16384 - sum;  // weights sum exactly to 1
  }
  return a;
}

inline uint8_t clamp_u8(int32_t v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

}  // namespace detail

// Resamples the source window [x0, x0+sw) x [y0, y0+sh) (in source pixels) to out_w x out_h.
inline Image resample_window(const Image& in, double x0, double y0, double sw, double sh, int out_w, int out_h) {
  if (in.empty() || out_w <= 0 || out_h <= 0)
    throw ValueError("resize: bad sizes " + std::to_string(in.width) + "x" + std::to_string(in.height) + " -> " +
                     std::to_string(out_w) + "x" + std::to_string(out_h));
  const int C = in.channels;
  const detail::AxisWeights ax = detail::axis_weights(in.width, out_w, x0, sw);
  const detail::AxisWeights ay = detail::axis_weights(in.height, out_h, y0, sh);
  // Horizontal pass over the rows the vertical pass needs, into 16-bit intermediates (value << 6).
  int ylo = in.height, yhi = 0;
  for (int o = 0; o < out_h; ++o) {
    ylo = std::min(ylo, ay.start[static_cast<size_t>(o)]);
    yhi = std::max(yhi, ay.start[static_cast<size_t>(o)] + ay.count[static_cast<size_t>(o)]);
  }
  const size_t tmp_row = static_cast<size_t>(out_w) * static_cast<size_t>(C);
  std::vector<int32_t> tmp(static_cast<size_t>(std::max(0, yhi - ylo)) * tmp_row);
  for (int y = ylo; y < yhi; ++y) {
    const uint8_t* src = in.row(y);
    int32_t* dst = tmp.data() + static_cast<size_t>(y - ylo) * tmp_row;
    for (int o = 0; o < out_w; ++o) {
      const int s = ax.start[static_cast<size_t>(o)], n = ax.count[static_cast<size_t>(o)];
      const int32_t* w = ax.w.data() + static_cast<size_t>(o) * static_cast<size_t>(ax.max_taps);
      if (C == 3) {
        int32_t r = 0, g = 0, b = 0;
        const uint8_t* p = src + static_cast<size_t>(s) * 3;
        for (int k = 0; k < n; ++k, p += 3) {
          r += w[k] * p[0];
          g += w[k] * p[1];
          b += w[k] * p[2];
        }
        dst[o * 3 + 0] = (r + 128) >> 8;  // value * 64
        dst[o * 3 + 1] = (g + 128) >> 8;
        dst[o * 3 + 2] = (b + 128) >> 8;
      } else {
        for (int c = 0; c < C; ++c) {
          int32_t acc = 0;
          for (int k = 0; k < n; ++k) acc += w[k] * src[static_cast<size_t>(s + k) * static_cast<size_t>(C) + static_cast<size_t>(c)];
          dst[static_cast<size_t>(o) * static_cast<size_t>(C) + static_cast<size_t>(c)] = (acc + 128) >> 8;
        }
      }
    }
  }
  Image out(out_w, out_h, C);
  for (int o = 0; o < out_h; ++o) {
    const int s = ay.start[static_cast<size_t>(o)], n = ay.count[static_cast<size_t>(o)];
    const int32_t* w = ay.w.data() + static_cast<size_t>(o) * static_cast<size_t>(ay.max_taps);
    uint8_t* dst = out.row(o);
    for (size_t i = 0; i < tmp_row; ++i) {
      int32_t acc = 0;  // weights >= 0 sum to 2^14, values <= 255*64: fits in 32 bits
      for (int k = 0; k < n; ++k) acc += w[k] * tmp[static_cast<size_t>(s + k - ylo) * tmp_row + i];
      dst[i] = detail::clamp_u8((acc + (1 << 19)) >> 20);  // / (16384 * 64)
    }
  }
  return out;
}

inline Image resize(const Image& in, int out_w, int out_h, Resampler r = Resampler::Bilinear) {
  if (in.width == out_w && in.height == out_h) return in;
  if (r == Resampler::Stb) {
    if (in.empty() || out_w <= 0 || out_h <= 0) throw ValueError("resize: bad sizes");
    Image out(out_w, out_h, in.channels);
    if (!detail::stb_resize_uint8(in.pixels.data(), in.width, in.height, out.pixels.data(), out_w, out_h, in.channels))
      throw ValueError("resize: stb_image_resize failed");
    return out;
  }
  return resample_window(in, 0, 0, in.width, in.height, out_w, out_h);
}

// Resize with an aspect-ratio policy. Pad fills with grey `pad`.
inline Image resize_to(const Image& in, int out_w, int out_h, ResizeMode mode, Resampler r = Resampler::Bilinear,
                       uint8_t pad = 0) {
  if (mode == ResizeMode::Stretch || (int64_t(in.width) * out_h == int64_t(in.height) * out_w)) return resize(in, out_w, out_h, r);
  if (mode == ResizeMode::CenterCrop) {
    // Largest window with the output's aspect ratio, centred.
    double sw = in.width, sh = in.height;
    if (double(in.width) / in.height > double(out_w) / out_h) sw = double(in.height) * out_w / out_h;
    else sh = double(in.width) * out_h / out_w;
    if (r == Resampler::Stb) {
      // stb has no sub-pixel window here: crop to whole pixels first
      const int cw = std::max(1, static_cast<int>(std::lround(sw))), ch = std::max(1, static_cast<int>(std::lround(sh)));
      const int cx = (in.width - cw) / 2, cy = (in.height - ch) / 2;
      Image crop(cw, ch, in.channels);
      for (int y = 0; y < ch; ++y)
        std::copy(in.row(cy + y) + static_cast<size_t>(cx) * static_cast<size_t>(in.channels),
                  in.row(cy + y) + static_cast<size_t>(cx + cw) * static_cast<size_t>(in.channels), crop.row(y));
      return resize(crop, out_w, out_h, r);
    }
    return resample_window(in, (in.width - sw) / 2, (in.height - sh) / 2, sw, sh, out_w, out_h);
  }
  // Pad: fit inside, centre.
  const double s = std::min(double(out_w) / in.width, double(out_h) / in.height);
  const int fw = std::max(1, std::min(out_w, static_cast<int>(std::lround(in.width * s))));
  const int fh = std::max(1, std::min(out_h, static_cast<int>(std::lround(in.height * s))));
  const Image fit = resize(in, fw, fh, r);
  Image out(out_w, out_h, in.channels);
  std::fill(out.pixels.begin(), out.pixels.end(), pad);
  const int ox = (out_w - fw) / 2, oy = (out_h - fh) / 2;
  for (int y = 0; y < fh; ++y)
    std::copy(fit.row(y), fit.row(y) + fit.row_bytes(), out.row(oy + y) + static_cast<size_t>(ox) * static_cast<size_t>(in.channels));
  return out;
}

}  // namespace data
}  // namespace tinycnn
