#pragma once
// Helpers of the CUDA parity tests: skipping without a GPU, random host data, device copies, and the
// element-wise comparison (fp32 atol = rtol = 1e-3 unless a test says why it needs more).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tinycnn/core/random.hpp>
#include <tinycnn/cuda/cuda.hpp>
#include <vector>

namespace ct {

using tinycnn::cuda::DeviceBuffer;

// Every GPU test starts with this: without a usable device it reports the skip and returns (passes).
// ctest marks the whole cuda_parity test "Skipped" when this line appears (SKIP_REGULAR_EXPRESSION).
#define CT_REQUIRE_GPU()                                                                                    \
  do {                                                                                                      \
    if (!tinycnn::cuda::available()) {                                                                      \
      MESSAGE("tinycnn-cuda: no usable GPU, test skipped (" << tinycnn::cuda::unavailable_reason() << ")"); \
      return;                                                                                               \
    }                                                                                                       \
  } while (0)

template <class T>
std::vector<T> random_vec(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  tinycnn::Rng rng(seed);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(rng.uniform(lo, hi));
  return v;
}

template <class T>
std::vector<T> nan_vec(int64_t n) {
  return std::vector<T>(static_cast<size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// A device buffer filled with NaN: a kernel that leaves an output element unwritten fails the comparison.
template <class T>
DeviceBuffer<T> poisoned(int64_t n) {
  DeviceBuffer<T> b(n);
  if (n) tinycnn::cuda::fill<T>(b.get(), std::numeric_limits<T>::quiet_NaN(), n);
  return b;
}

struct Tol {
  double atol = 1e-3, rtol = 1e-3;
};

// CHECKs |got - want| <= atol + rtol * |want| for every element (NaN anywhere fails); reports the
// first few mismatches with their index and the count.
template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, Tol tol, const std::string& what) {
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": sizes differ");
  int64_t bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (!(std::fabs(g - w) <= tol.atol + tol.rtol * std::fabs(w))) {
      if (bad < 3)
        first += " [" + std::to_string(i) + "] got " + std::to_string(g) + " want " + std::to_string(w) + ";";
      ++bad;
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " elements differ:" << first);
}

template <class T>
void expect_close(const DeviceBuffer<T>& got, const std::vector<T>& want, Tol tol, const std::string& what) {
  expect_close(got.download(), want, tol, what);
}

// Tolerances per GEMM variant for inputs in [-1, 1] and reduction length k. fp32 variants: 1e-3.
// TF32 keeps 10 mantissa bits and bf16 8, so their products carry relative errors of about 1e-3 and
// 8e-3 that add up like a random walk over k terms: the bound grows with sqrt(k).
inline Tol gemm_tol(int variant, int64_t k) {
  const double rk = std::sqrt(static_cast<double>(k > 0 ? k : 1));
  if (variant == 4) return {2e-3 * rk, 1e-2};
  if (variant == 5) return {1.2e-2 * rk, 3e-2};
  return {1e-3, 1e-3};
}

// The message of the tinycnn::Error thrown by f ("" when none is thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const tinycnn::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace ct
