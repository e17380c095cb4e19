#pragma once
// Seeded random numbers that give the same stream on every platform and compiler: std::mt19937_64
// is fully specified, but std::uniform_*_distribution are not, so the conversions are written here.
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>

namespace tinycnn {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : eng_(seed) {}
  void seed(uint64_t s) { eng_.seed(s); }
  uint64_t next_u64() { return eng_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(eng_() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n) without modulo bias (Lemire's rejection would also do; this is simpler).
  uint64_t below(uint64_t n) {
    if (n <= 1) return 0;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = eng_(); while (x >= limit);
    return x % n;
  }
  // Standard normal by Box-Muller (no cached second value, so the state is just the engine).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Full engine state as text, for checkpoints (std::mt19937_64 defines its stream format).
  std::string state() const {
    std::ostringstream o;
    o << eng_;
    return o.str();
  }
  void set_state(const std::string& s) {
    std::istringstream i(s);
    i >> eng_;
  }

 private:
  std::mt19937_64 eng_;
};

}  // namespace tinycnn
