#pragma once
// Comparing two code paths that do the same arithmetic in the same order (a Winograd pass with V or U
// in the GEMM's packed layout against the plain one, streamed stores against plain ones, the fused
// plan's blocks against the grouped plan): bitwise equal in the project's -O3 build, but whether a
// multiply and an add fuse into an FMA is the compiler's choice per inlined loop, and GCC 12 at -O2
// chose differently for the transforms' store paths (partial runs, streamed blocks), so outputs of a
// few units moved by up to 3.8e-6. An indexing or layout bug moves them by far more than the
// tolerance here (1e-5 relative in float, 1e-12 in double).
#include <cmath>
#include <cstddef>
#include <vector>

namespace tinycnn_test {

template <class T>
bool same_but_contraction(const T* a, const T* b, size_t n) {
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  for (size_t i = 0; i < n; ++i)
    if (!(std::fabs(double(a[i]) - double(b[i])) <= tol * (1 + std::fabs(double(b[i]))))) return false;
  return true;
}
template <class T>
bool same_but_contraction(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && same_but_contraction(a.data(), b.data(), a.size());
}

}  // namespace tinycnn_test
