// Eigen's SGEMM for bench_gemm.cpp, in its own translation unit so that it can be compiled with
// -march=native (bench/CMakeLists.txt) and compared at its best: Eigen picks its SIMD kernels at
// compile time, whereas tinycnn's kernels are compiled for the baseline ISA and dispatch at run time.
// Only this file includes Eigen.
#include <Eigen/Core>
#include <cstdint>

void tinycnn_bench_eigen_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* a, const float* b,
                               float* c) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const Mat> A(a, ta ? K : M, ta ? M : K);
  Eigen::Map<const Mat> B(b, tb ? N : K, tb ? K : N);
  Eigen::Map<Mat> C(c, M, N);
  if (!ta && !tb)
    C.noalias() = A * B;
  else if (ta && !tb)
    C.noalias() = A.transpose() * B;
  else if (!ta && tb)
    C.noalias() = A * B.transpose();
  else
    C.noalias() = A.transpose() * B.transpose();
}
