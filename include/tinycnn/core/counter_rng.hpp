#pragma once
// Counter-based random numbers: element i of the stream with seed s is a pure function of (s, i)
// (SplitMix64's finaliser over s + (i+1) * golden ratio). Every thread, CPU or GPU, computes its own
// elements, so dropout masks do not depend on the thread count or the launch shape, and the CPU and
// CUDA kernels give the same mask from the same seed.
#include <cstdint>

#if defined(__CUDACC__)
#define TINYCNN_HD __host__ __device__
#else
#define TINYCNN_HD
#endif

namespace tinycnn {

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

}  // namespace tinycnn
