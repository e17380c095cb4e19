#pragma once
// Thread control. Kernels parallelise with OpenMP; set_num_threads() is the one knob users need.
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cstdint>

namespace tinycnn {

inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

inline int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Below this many floating-point operations a kernel stays on one thread: waking a team costs
// more than it saves.
constexpr int64_t kParallelMinWork = 1 << 15;

}  // namespace tinycnn
