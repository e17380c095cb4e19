#pragma once
// AvgPool2D (Keras class AveragePooling2D): mean over each pool window; with 'same' padding the
// padded cells are excluded from the count, as in Keras/TF.
//   AvgPool2D(pool_size = 2, strides = -1 (= pool_size), padding = "valid", name)
#include "../autograd/ops/pool.hpp"
#include "pooling2d.hpp"

namespace tinycnn::nn {

template <class T>
class AvgPool2D : public Pooling2D<T> {
 public:
  explicit AvgPool2D(Size2 pool_size = 2, Size2 strides = -1, std::string padding = "valid", std::string name = "")
      : Pooling2D<T>("AveragePooling2D", pool_size, strides, std::move(padding), std::move(name)) {}
  std::string type() const override { return "AveragePooling2D"; }
  Var<T> forward1(const Var<T>& x) override {
    return ops::avg_pool2d(x, this->pool_size_.h, this->pool_size_.w, this->strides_.h, this->strides_.w,
                           this->padding_);
  }
};

// Keras' other name for the same layer.
template <class T>
using AveragePooling2D = AvgPool2D<T>;

}  // namespace tinycnn::nn
