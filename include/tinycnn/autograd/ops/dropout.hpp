#pragma once
// Inverted dropout: identity at inference; in training, zero each element with probability `rate`
// and scale the kept ones by 1/(1-rate).
#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

template <class T>
Var<T> dropout(const Var<T>& x, T rate, bool training, Rng& rng) {
  if (!(rate >= T(0) && rate < T(1))) throw ValueError("dropout: rate must be in [0, 1), got " + std::to_string(rate));
  if (!training || rate == T(0)) return x;
  Tensor<T> mask = Tensor<T>::empty(x.shape(), x.value().device());
  backend::dropout_mask(mask.device(), rng, rate, mask.data(), mask.numel());
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.value().device());
  backend::mul_forward(y.device(), x.value().data(), mask.data(), y.data(), y.numel());
  return make_result<T>(std::move(y), {x}, "dropout", [mask](VarNode<T>& n) {
    backend::mul_backward(n.value.device(), n.inputs[0]->value.data(), mask.data(), n.grad.data(), input_grad(n, 0),
                          static_cast<T*>(nullptr), n.value.numel());
  });
}

}  // namespace tinycnn::ops
