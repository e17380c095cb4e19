#pragma once
// Image: a decoded 8-bit image in HWC order (row-major, channels interleaved), always 3 channels
// (RGB) when it comes from tinycnn's decoder.
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace tinycnn {
namespace data {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // height * width * channels bytes

  Image() = default;
  Image(int w, int h, int c = 3) : width(w), height(h), channels(c) {
    if (w < 0 || h < 0 || c <= 0) throw ValueError("Image: bad size " + std::to_string(w) + "x" + std::to_string(h) + "x" + std::to_string(c));
    pixels.assign(static_cast<size_t>(w) * static_cast<size_t>(h) * static_cast<size_t>(c), 0);
  }
  bool empty() const { return pixels.empty(); }
  size_t row_bytes() const { return static_cast<size_t>(width) * static_cast<size_t>(channels); }
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * row_bytes(); }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * row_bytes(); }
  uint8_t& at(int x, int y, int c) { return row(y)[static_cast<size_t>(x) * static_cast<size_t>(channels) + static_cast<size_t>(c)]; }
  uint8_t at(int x, int y, int c) const { return row(y)[static_cast<size_t>(x) * static_cast<size_t>(channels) + static_cast<size_t>(c)]; }
};

}  // namespace data
}  // namespace tinycnn
