// One side of the A/B comparison (ab_main.cpp): the library's GEMM compiled from one source tree, with
// the namespace renamed so that two trees link into one binary. run.sh compiles this file twice:
//   -DAB_NS=tinycnn_old -DAB_FN=ab_gemm_old -I<old tree>/include   and the same for new.
#include <cstdint>

#define tinycnn AB_NS
#include <tinycnn/kernels/cpu/gemm.hpp>
#undef tinycnn

// C = op(A) op(B), beta 0: the arguments of kernels::cpu::gemm (gemm_ref.hpp) with alpha 1.
void AB_FN(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
           float* C, int64_t ldc) {
  AB_NS::kernels::cpu::gemm<float>(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}
