#pragma once
// Flatten: [N, ...] -> [N, prod(...)] (row-major over C, H, W).
#include "../autograd/ops/basic.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Flatten : public UnaryLayer<T> {
 public:
  explicit Flatten(std::string name = "") : UnaryLayer<T>(std::move(name)) {}
  std::string type() const override { return "Flatten"; }
  Shape build1(const Shape& in, Rng&) override { return {shape_numel(in)}; }
  Var<T> forward1(const Var<T>& x) override { return ops::flatten(x); }
};

}  // namespace tinycnn::nn
