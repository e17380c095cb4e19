#pragma once
// Dropout (inverted): active only in training mode; its own seeded generator, so runs repeat.
#include "../autograd/ops/dropout.hpp"
#include "layer.hpp"

namespace tinycnn::nn {

template <class T>
class Dropout : public UnaryLayer<T> {
 public:
  explicit Dropout(double rate, std::string name = "") : UnaryLayer<T>(std::move(name)), rate_(rate) {
    if (!(rate >= 0 && rate < 1)) throw ValueError("Dropout: rate must be in [0, 1), got " + std::to_string(rate));
  }
  std::string type() const override { return "Dropout"; }
  Shape build1(const Shape& in, Rng& rng) override {
    rng_.seed(rng.next_u64());  // derived from the model seed: reproducible, distinct per layer
    return in;
  }
  Var<T> forward1(const Var<T>& x) override { return ops::dropout(x, static_cast<T>(rate_), this->training(), rng_); }
  bool inference_identity() const override { return !this->training(); }  // layer.hpp
  Config config() const override { return {{"rate", rate_}}; }
  Rng& rng() { return rng_; }

 private:
  double rate_;
  Rng rng_;
};

}  // namespace tinycnn::nn
