#pragma once
// The GEMM entry point used by every op: picks the fastest validated variant for the element type
// and the machine. Benchmarks (bench/) decide which variant wins; see docs/performance.md.
#include "gemm_blocked.hpp"
#include "gemm_ref.hpp"

namespace tinycnn::kernels::cpu {

// C = alpha * op(A) * op(B) + beta * C; argument contract in gemm_ref.hpp.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_blocked<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace tinycnn::kernels::cpu
