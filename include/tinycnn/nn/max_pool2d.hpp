#pragma once
// MaxPool2D (Keras class MaxPooling2D): maximum over each pool window; padded cells are ignored.
//   MaxPool2D(pool_size = 2, strides = -1 (= pool_size), padding = "valid", name)
#include "../autograd/ops/pool.hpp"
#include "pooling2d.hpp"

namespace tinycnn::nn {

template <class T>
class MaxPool2D : public Pooling2D<T> {
 public:
  explicit MaxPool2D(Size2 pool_size = 2, Size2 strides = -1, std::string padding = "valid", std::string name = "")
      : Pooling2D<T>("MaxPooling2D", pool_size, strides, std::move(padding), std::move(name)) {}
  std::string type() const override { return "MaxPooling2D"; }
  Var<T> forward1(const Var<T>& x) override {
    return ops::max_pool2d(x, this->pool_size_.h, this->pool_size_.w, this->strides_.h, this->strides_.w,
                           this->padding_);
  }
  bool fusable_max_pool(ops::MaxPoolSpec& pool) const override {
    pool = {this->pool_size_.h, this->pool_size_.w, this->strides_.h, this->strides_.w, this->padding_};
    return true;
  }
};

// Keras' other name for the same layer.
template <class T>
using MaxPooling2D = MaxPool2D<T>;

}  // namespace tinycnn::nn
