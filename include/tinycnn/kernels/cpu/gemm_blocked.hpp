#pragma once
// Portable cache-blocked GEMM (variant 1): packs a K-block of op(B) into a contiguous panel and
// multiplies row blocks of op(A) against it in parallel. Correct for every shape and transpose;
// written so the compiler can vectorise the inner loop over N. Faster, ISA-specific variants live in
// their own headers and are validated against gemm_ref.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../core/parallel.hpp"

namespace tinycnn::kernels::cpu {

// Same contract as gemm_ref (see gemm_ref.hpp).
template <class T>
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // Scale (or clear) C first so every K-block below simply accumulates.
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
  if (K <= 0 || alpha == T(0)) return;
  constexpr int64_t KB = 256, NB = 512, MB = 32;
  std::vector<T> bpack(static_cast<size_t>(std::min(KB, K) * std::min(NB, N)));
  for (int64_t n0 = 0; n0 < N; n0 += NB) {
    const int64_t nb = std::min(NB, N - n0);
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
      const int64_t kb = std::min(KB, K - k0);
      // Pack op(B)[k0:k0+kb, n0:n0+nb] row-major with stride nb.
      for (int64_t k = 0; k < kb; ++k)
        for (int64_t j = 0; j < nb; ++j)
          bpack[k * nb + j] = trans_b ? B[(n0 + j) * ldb + (k0 + k)] : B[(k0 + k) * ldb + (n0 + j)];
      const T* bp = bpack.data();
      const int64_t mblocks = (M + MB - 1) / MB;
      const bool par = static_cast<double>(M) * nb * kb > kParallelMinWork && mblocks > 1;
#pragma omp parallel for schedule(static) if (par)
      for (int64_t mb = 0; mb < mblocks; ++mb) {
        const int64_t i_end = std::min(M, (mb + 1) * MB);
        for (int64_t i = mb * MB; i < i_end; ++i) {
          T* c = C + i * ldc + n0;
          for (int64_t k = 0; k < kb; ++k) {
            const T a = alpha * (trans_a ? A[(k0 + k) * lda + i] : A[i * lda + (k0 + k)]);
            if (a == T(0)) continue;
            const T* b = bp + k * nb;
            for (int64_t j = 0; j < nb; ++j) c[j] += a * b[j];
          }
        }
      }
    }
  }
}

}  // namespace tinycnn::kernels::cpu
