#pragma once
// Size2: a (height, width) pair that layer constructors take for kernel sizes, strides and pool
// sizes, written as an int (square: 3 -> 3x3) or as {h, w}.
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace tinycnn::nn {

struct Size2 {
  int64_t h, w;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit on purpose, so 3 means 3x3
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  std::vector<int64_t> vec() const { return {h, w}; }
  // Throws ValueError "<layer>: <what> must be positive, got HxW" unless both are > 0.
  void check_positive(const std::string& layer, const std::string& what) const {
    if (h <= 0 || w <= 0)
      throw ValueError(layer + ": " + what + " must be positive, got " + std::to_string(h) + "x" + std::to_string(w));
  }
};

}  // namespace tinycnn::nn
