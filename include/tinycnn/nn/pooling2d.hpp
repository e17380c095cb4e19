#pragma once
// Shared arguments of MaxPool2D and AvgPool2D: pool_size, strides (<= 0: equal to pool_size, Keras'
// strides=None), padding "valid" / "same". Per-sample input [C, H, W] -> [C, OH, OW].
#include "../kernels/cpu/conv_geometry.hpp"
#include "layer.hpp"
#include "size2.hpp"

namespace tinycnn::nn {

template <class T>
class Pooling2D : public UnaryLayer<T> {
 public:
  Pooling2D(const char* type, Size2 pool_size, Size2 strides, std::string padding, std::string name)
      : UnaryLayer<T>(std::move(name)),
        pool_size_(pool_size),
        strides_(strides.h > 0 && strides.w > 0 ? strides : pool_size),
        padding_(std::move(padding)) {
    pool_size_.check_positive(type, "pool_size");
    kernels::cpu::parse_padding(padding_, type);
  }
  Shape build1(const Shape& in, Rng&) override {
    if (in.size() != 3) throw_shape(this->type() + " '" + this->name() + "'", "input must be [C, H, W] per sample", in);
    const auto g = kernels::cpu::make_conv_geom(1, in[0], in[1], in[2], in[0], pool_size_.h, pool_size_.w, strides_.h,
                                                strides_.w, kernels::cpu::parse_padding(padding_, this->type()),
                                                this->type() + " '" + this->name() + "'");
    return {in[0], g.OH, g.OW};
  }
  Config config() const override {
    return {{"pool_size", pool_size_.vec()}, {"strides", strides_.vec()}, {"padding", padding_}};
  }
  const Size2& pool_size() const { return pool_size_; }
  const Size2& strides() const { return strides_; }
  const std::string& padding() const { return padding_; }

 protected:
  Size2 pool_size_, strides_;
  std::string padding_;
};

}  // namespace tinycnn::nn
