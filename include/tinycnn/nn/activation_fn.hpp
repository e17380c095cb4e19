#pragma once
// Named activations as layers' `activation` argument takes them (Keras strings):
// "linear" (or ""), "relu", "relu6", "sigmoid", "tanh", "softmax", "leaky_relu".
#include <string>

#include "../autograd/ops/activation.hpp"

namespace tinycnn::nn {

inline void check_activation_name(const std::string& a, const std::string& layer) {
  if (a.empty() || a == "linear" || a == "relu" || a == "relu6" || a == "sigmoid" || a == "tanh" || a == "softmax" ||
      a == "leaky_relu")
    return;
  throw ValueError(layer + ": unknown activation '" + a +
                   "' (known: linear, relu, relu6, sigmoid, tanh, softmax, leaky_relu)");
}

template <class T>
Var<T> apply_activation(const Var<T>& x, const std::string& a) {
  if (a.empty() || a == "linear") return x;
  if (a == "relu") return ops::relu(x);
  if (a == "relu6") return ops::relu(x, T(6));
  if (a == "sigmoid") return ops::sigmoid(x);
  if (a == "tanh") return ops::tanh(x);
  if (a == "leaky_relu") return ops::leaky_relu(x);
  if (a == "softmax") {
    if (x.value().rank() == 2) return ops::softmax(x);
    throw_shape("softmax activation", "needs a [N, classes] input", x.shape());
  }
  throw ValueError("unknown activation '" + a + "'");
}

}  // namespace tinycnn::nn
