#pragma once
// Counter-based random numbers shared by the dropout kernel and its host reference: element i of a
// stream with seed s is a pure function of (s, i) (SplitMix64's finaliser over s + (i+1) * golden
// ratio), so every thread computes its own value and the result does not depend on the launch shape.
#include <cstdint>

#if defined(__CUDACC__)
#define TINYCNN_HD __host__ __device__
#else
#define TINYCNN_HD
#endif

namespace tinycnn::cuda {

TINYCNN_HD inline uint64_t counter_hash(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform double in [0, 1) with 53 random bits (the same conversion as Rng::uniform()).
TINYCNN_HD inline double counter_uniform(uint64_t seed, uint64_t i) {
  return static_cast<double>(counter_hash(seed, i) >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace tinycnn::cuda
