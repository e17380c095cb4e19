#pragma once
// Reference GEMM: the plain triple loop, kept as the ground truth that every faster variant is
// validated against (tests and benchmarks). Never used on a hot path.
#include <cstdint>

namespace tinycnn::kernels::cpu {

// C = alpha * op(A) * op(B) + beta * C, row-major.
//   op(A): [M, K]; A is [M, K] (lda >= K) or, if trans_a, [K, M] (lda >= M)
//   op(B): [K, N]; B is [K, N] (ldb >= N) or, if trans_b, [N, K] (ldb >= K)
//   C:     [M, N] (ldc >= N). beta == 0 means C is written without being read (it may hold NaN).
template <class T>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;  // double accumulation: the reference should be the most accurate variant
      for (int64_t k = 0; k < K; ++k) {
        const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const T b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += static_cast<double>(a) * static_cast<double>(b);
      }
      const T prev = beta == T(0) ? T(0) : beta * C[i * ldc + j];
      C[i * ldc + j] = static_cast<T>(alpha * acc) + prev;
    }
}

}  // namespace tinycnn::kernels::cpu
