#pragma once
// Cropping2D: removes rows/columns at the edges of per-sample inputs [C, H, W], as Keras'
// Cropping2D. Constructors as its three `cropping` forms:
//   Cropping2D(8)                  8 on every side (a 150x150 photo -> its central 134x134)
//   Cropping2D(1, 2)               1 above and below, 2 left and right (symmetric {h, w})
//   Cropping2D({0, 1}, {2, 3})     {top, bottom}, {left, right}
// One use is multi-crop test-time averaging baked into a model: an ensemble member that sees the
// photo's centre, resized back to its input size (intel_scenes ensemble --zoom). Differentiable
// (so Grad-CAM works through it); no weights.
#include <string>
#include <utility>

#include "../autograd/ops/pad.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Cropping2D : public UnaryLayer<T> {
 public:
  using Pair = std::pair<int64_t, int64_t>;
  explicit Cropping2D(int64_t cropping = 0, std::string name = "")
      : Cropping2D(Pair{cropping, cropping}, Pair{cropping, cropping}, std::move(name)) {}
  Cropping2D(int64_t crop_h, int64_t crop_w, std::string name = "")
      : Cropping2D(Pair{crop_h, crop_h}, Pair{crop_w, crop_w}, std::move(name)) {}
  Cropping2D(Pair top_bottom, Pair left_right, std::string name = "")
      : UnaryLayer<T>(std::move(name)),
        top_(top_bottom.first),
        bottom_(top_bottom.second),
        left_(left_right.first),
        right_(left_right.second) {
    if (top_ < 0 || bottom_ < 0 || left_ < 0 || right_ < 0)
      throw ValueError("Cropping2D: cropping must be non-negative, got " + spec());
  }
  std::string type() const override { return "Cropping2D"; }
  Shape build1(const Shape& in, Rng&) override {
    if (in.size() != 3) throw_shape("Cropping2D '" + this->name() + "'", "input must be [C, H, W] per sample", in);
    if (top_ + bottom_ >= in[1] || left_ + right_ >= in[2])
      throw_shape("Cropping2D '" + this->name() + "'", "cropping " + spec() + " leaves no pixels of the input", in);
    return {in[0], in[1] - top_ - bottom_, in[2] - left_ - right_};
  }
  Var<T> forward1(const Var<T>& x) override { return ops::crop2d(x, top_, bottom_, left_, right_); }
  // cropping as {top, bottom, left, right} (Keras: ((top, bottom), (left, right))).
  Config config() const override { return {{"cropping", std::vector<int64_t>{top_, bottom_, left_, right_}}}; }

 private:
  std::string spec() const {
    return "((" + std::to_string(top_) + ", " + std::to_string(bottom_) + "), (" + std::to_string(left_) + ", " +
           std::to_string(right_) + "))";
  }
  int64_t top_, bottom_, left_, right_;
};

}  // namespace tinycnn::nn
