#pragma once
// Inverted dropout mask from a seeded generator: kept units are scaled by 1/(1-rate) at training
// time so inference needs no rescaling.
#include <cstdint>

#include "../../core/random.hpp"

namespace tinycnn::kernels::cpu {

// mask[i] = 0 with probability rate, else 1/(1-rate);  mask: [n]
template <class T>
void dropout_mask(Rng& rng, T rate, T* mask, int64_t n) {
  const T keep = T(1) / (T(1) - rate);
  for (int64_t i = 0; i < n; ++i) mask[i] = rng.uniform() < static_cast<double>(rate) ? T(0) : keep;
}

}  // namespace tinycnn::kernels::cpu
