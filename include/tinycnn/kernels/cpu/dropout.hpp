#pragma once
// Inverted dropout masks: kept units are scaled by 1/(1-rate) at training time so inference needs no
// rescaling. One 64-bit seed is drawn from the layer's generator per mask; element i is then decided
// by the counter-based counter_uniform(seed, i) (core/counter_rng.hpp), which any thread can compute
// on its own: the mask is the same for every thread count and equal to the CUDA kernel's.
#include <cmath>
#include <cstdint>

#include "../../core/counter_rng.hpp"
#include "../../core/parallel.hpp"
#include "../../core/random.hpp"

namespace tinycnn::kernels::cpu {

// Reference: mask[i] = 0 if counter_uniform(seed, i) < rate else 1/(1-rate), seed = rng.next_u64();
// mask: [n]
template <class T>
void dropout_mask_ref(Rng& rng, T rate, T* mask, int64_t n) {
  const uint64_t seed = rng.next_u64();
  const T keep = T(1) / (T(1) - rate);
  for (int64_t i = 0; i < n; ++i)
    mask[i] = counter_uniform(seed, static_cast<uint64_t>(i)) < static_cast<double>(rate) ? T(0) : keep;
}

// Variant 1 (the default): the same mask, compared in integers and spread over the threads.
// counter_uniform(s, i) < rate  <=>  (hash >> 11) < rate * 2^53  <=>  (hash >> 11) < ceil(rate * 2^53),
// all exact in double (rate * 2^53 <= 2^53), so no element differs from the reference.  mask: [n]
template <class T>
void dropout_mask(Rng& rng, T rate, T* mask, int64_t n) {
  const uint64_t seed = rng.next_u64();
  const T keep = T(1) / (T(1) - rate);
  const uint64_t threshold = static_cast<uint64_t>(std::ceil(static_cast<double>(rate) * 9007199254740992.0));
  const bool par = n >= kParallelMinWork;
#pragma omp parallel for simd if (par)
  for (int64_t i = 0; i < n; ++i)
    mask[i] = (counter_hash(seed, static_cast<uint64_t>(i)) >> 11) < threshold ? T(0) : keep;
}

}  // namespace tinycnn::kernels::cpu
