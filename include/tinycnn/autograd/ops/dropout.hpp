#pragma once
// Inverted dropout: identity at inference; in training, zero each element with probability `rate`
// and scale the kept ones by 1/(1-rate). The mask is a function of one seed drawn from rng per call
// and of the element's index (kernels/cpu/dropout.hpp), so the backward recomputes it from the seed
// instead of keeping it.
#include "../../backend/dispatch.hpp"
#include "../variable.hpp"

namespace tinycnn::ops {

template <class T>
Var<T> dropout(const Var<T>& x, T rate, bool training, Rng& rng) {
  if (!(rate >= T(0) && rate < T(1))) throw ValueError("dropout: rate must be in [0, 1), got " + std::to_string(rate));
  if (!training || rate == T(0)) return x;
  const uint64_t seed = rng.next_u64();
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.value().device());
  backend::dropout_apply(y.device(), seed, rate, x.value().data(), y.data(), y.numel());
  return make_result<T>(std::move(y), {x}, "dropout", [seed, rate](VarNode<T>& n) {
    bool assign;
    T* dx = input_grad_fresh(n, 0, &assign);
    if (!dx) return;
    const Device dev = n.value.device();
    const int64_t count = n.value.numel();
    if (assign) return backend::dropout_apply(dev, seed, rate, n.grad.data(), dx, count);
    // x has a gradient from another consumer already: dy * m apart, then added (rare; the kernel
    // only multiplies, so its result is the same on every device)
    Tensor<T> part = Tensor<T>::empty(n.value.shape(), dev);
    backend::dropout_apply(dev, seed, rate, n.grad.data(), part.data(), count);
    backend::add_scaled(dev, static_cast<const T*>(part.data()), T(1), dx, count);
  });
}

}  // namespace tinycnn::ops
