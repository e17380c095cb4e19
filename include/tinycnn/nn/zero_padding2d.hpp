#pragma once
// ZeroPadding2D: zero rows/columns around per-sample inputs [C, H, W]. Constructors as Keras'
// three `padding` forms:
//   ZeroPadding2D(1)                 1 on every side
//   ZeroPadding2D(1, 2)              1 above and below, 2 left and right (symmetric {h, w})
//   ZeroPadding2D({0, 1}, {2, 3})    {top, bottom}, {left, right}
#include <utility>

#include "../autograd/ops/pad.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class ZeroPadding2D : public UnaryLayer<T> {
 public:
  using Pair = std::pair<int64_t, int64_t>;
  explicit ZeroPadding2D(int64_t padding = 1, std::string name = "")
      : ZeroPadding2D(Pair{padding, padding}, Pair{padding, padding}, std::move(name)) {}
  ZeroPadding2D(int64_t pad_h, int64_t pad_w, std::string name = "")
      : ZeroPadding2D(Pair{pad_h, pad_h}, Pair{pad_w, pad_w}, std::move(name)) {}
  ZeroPadding2D(Pair top_bottom, Pair left_right, std::string name = "")
      : UnaryLayer<T>(std::move(name)),
        top_(top_bottom.first),
        bottom_(top_bottom.second),
        left_(left_right.first),
        right_(left_right.second) {
    if (top_ < 0 || bottom_ < 0 || left_ < 0 || right_ < 0)
      throw ValueError("ZeroPadding2D: padding must be non-negative, got ((" + std::to_string(top_) + ", " +
                       std::to_string(bottom_) + "), (" + std::to_string(left_) + ", " + std::to_string(right_) + "))");
  }
  std::string type() const override { return "ZeroPadding2D"; }
  Shape build1(const Shape& in, Rng&) override {
    if (in.size() != 3) throw_shape("ZeroPadding2D '" + this->name() + "'", "input must be [C, H, W] per sample", in);
    return {in[0], in[1] + top_ + bottom_, in[2] + left_ + right_};
  }
  Var<T> forward1(const Var<T>& x) override { return ops::zero_pad2d(x, top_, bottom_, left_, right_); }
  // padding as {top, bottom, left, right} (Keras: ((top, bottom), (left, right))).
  Config config() const override { return {{"padding", std::vector<int64_t>{top_, bottom_, left_, right_}}}; }

 private:
  int64_t top_, bottom_, left_, right_;
};

}  // namespace tinycnn::nn
