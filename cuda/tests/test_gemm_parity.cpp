// GEMM parity: every variant, every transpose combination, padded leading dimensions, alpha/beta,
// odd shapes, against kernels::cpu::gemm_ref; then batching, batch reductions (split and unsplit)
// and the fused epilogue.
#include <string>
#include <tinycnn/kernels/cpu/gemm_ref.hpp>
#include <vector>

#include "parity_util.hpp"

using namespace tinycnn;
using tinycnn::cuda::DeviceBuffer;

namespace {

struct Shape3 {
  int64_t M, N, K;
};
// {40, 50, 2051} and {128, 96, 4096}: few C tiles and a long K take the split-K path (with and without a
// remainder of K columns).
const Shape3 kShapes[] = {{1, 1, 1},      {7, 13, 5},    {33, 65, 17},   {129, 67, 255},
                          {200, 300, 64}, {3, 257, 130}, {40, 50, 2051}, {128, 96, 4096}};

template <class T>
void check_gemm(int variant, bool ta, bool tb, Shape3 s, T alpha, T beta, ct::Tol tol) {
  const int64_t pad = 3;  // leading dimensions larger than the rows: the kernels must honour them
  const int64_t lda = (ta ? s.M : s.K) + pad, ldb = (tb ? s.K : s.N) + pad, ldc = s.N + pad;
  const int64_t a_rows = ta ? s.K : s.M, b_rows = tb ? s.N : s.K;
  const auto A = ct::random_vec<T>(a_rows * lda, 11 + s.M);
  const auto B = ct::random_vec<T>(b_rows * ldb, 23 + s.N);
  auto C = beta == T(0) ? ct::nan_vec<T>(s.M * ldc) : ct::random_vec<T>(s.M * ldc, 37 + s.K);
  std::vector<T> want = C;
  kernels::cpu::gemm_ref<T>(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
  DeviceBuffer<T> dA(A), dB(B), dC(C);
  cuda::gemm_variant<T>(variant, ta, tb, s.M, s.N, s.K, alpha, dA.get(), lda, dB.get(), ldb, beta, dC.get(), ldc);
  std::vector<T> got = dC.download();
  // Compare only the [M, N] part; the padding columns must be untouched (NaN stays NaN for beta == 0).
  std::vector<T> g, w;
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      if (j < s.N) {
        g.push_back(got[i * ldc + j]);
        w.push_back(want[i * ldc + j]);
      } else {
        const T before = C[i * ldc + j], after = got[i * ldc + j];
        CHECK_MESSAGE((after == before || (after != after && before != before)), "padding column written");
      }
    }
  ct::expect_close(g, w, tol,
                   "gemm v" + std::to_string(variant) + (ta ? " A^T" : "") + (tb ? " B^T" : "") + " " +
                       std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K));
}

}  // namespace

TEST_CASE("cuda parity: gemm, every variant, transposes, leading dimensions, alpha/beta (float)") {
  CT_REQUIRE_GPU();
  for (int v = 1; v <= cuda::kGemmVariants; ++v)
    for (int t = 0; t < 4; ++t)
      for (const Shape3& s : kShapes) {
        check_gemm<float>(v, t & 1, t & 2, s, 1.0f, 0.0f, ct::gemm_tol(v, s.K));
        check_gemm<float>(v, t & 1, t & 2, s, -0.7f, 0.5f, ct::gemm_tol(v, s.K));
      }
}

TEST_CASE("cuda parity: gemm variants 1-3 in double") {
  CT_REQUIRE_GPU();
  for (int v = 1; v <= 3; ++v)
    for (int t = 0; t < 4; ++t)
      for (const Shape3& s : kShapes) check_gemm<double>(v, t & 1, t & 2, s, 1.25, 0.5, {1e-10, 1e-10});
}

TEST_CASE("cuda parity: gemm K = 0 and alpha = 0 only scale C") {
  CT_REQUIRE_GPU();
  for (int v = 1; v <= cuda::kGemmVariants; ++v) {
    check_gemm<float>(v, false, false, {5, 9, 0}, 1.0f, 0.5f, {1e-6, 1e-6});
    check_gemm<float>(v, true, true, {5, 9, 7}, 0.0f, 2.0f, {1e-6, 1e-6});
  }
}

TEST_CASE("cuda parity: batched gemm, batch reductions and the fused epilogue") {
  CT_REQUIRE_GPU();
  const int64_t M = 37, N = 71, K = 45, count = 5;
  const auto A = ct::random_vec<float>(count * M * K, 1), B = ct::random_vec<float>(count * K * N, 2);
  const auto bias_m = ct::random_vec<float>(M, 3), bias_n = ct::random_vec<float>(N, 4);
  DeviceBuffer<float> dA(A), dB(B), dbm(bias_m), dbn(bias_n);
  for (int v = 1; v <= cuda::kGemmVariants; ++v) {
    const ct::Tol tol = ct::gemm_tol(v, K * count);
    for (int per_column = 0; per_column < 2; ++per_column) {
      // Independent batches with bias + ReLU: C_b = relu(A_b B_b + bias)
      std::vector<float> want(count * M * N);
      for (int64_t b = 0; b < count; ++b) {
        kernels::cpu::gemm_ref<float>(false, false, M, N, K, 1.f, A.data() + b * M * K, K, B.data() + b * K * N, N, 0.f,
                                      want.data() + b * M * N, N);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            float& c = want[b * M * N + i * N + j];
            c += per_column ? bias_n[j] : bias_m[i];
            c = c < 0 ? 0 : c;
          }
      }
      auto dC = ct::poisoned<float>(count * M * N);
      cuda::GemmEpilogue<float> ep;
      ep.bias = per_column ? dbn.get() : dbm.get();
      ep.bias_per_column = per_column;
      ep.relu = true;
      cuda::gemm_variant<float>(v, false, false, M, N, K, 1.f, dA.get(), K, dB.get(), N, 0.f, dC.get(), N, ep,
                                {count, M * K, K * N, M * N, false});
      ct::expect_close(dC, want, ct::gemm_tol(v, K), "batched gemm + epilogue v" + std::to_string(v));
    }
    // Reduction over the batches into one C with beta = 1 (the weight-gradient pattern, B transposed):
    // C += sum_b A_b [M, K] * (B_b [N, K])^T
    auto C0 = ct::random_vec<float>(M * N, 5);
    std::vector<float> want = C0;
    for (int64_t b = 0; b < count; ++b)
      kernels::cpu::gemm_ref<float>(false, true, M, N, K, 1.f, A.data() + b * M * K, K, B.data() + b * K * N, K, 1.f,
                                    want.data(), N);
    DeviceBuffer<float> dC(C0);
    cuda::gemm_variant<float>(v, false, true, M, N, K, 1.f, dA.get(), K, dB.get(), K, 1.f, dC.get(), N, {},
                              {count, M * K, K * N, 0, true});
    ct::expect_close(dC, want, tol, "batch reduction v" + std::to_string(v));
  }
}
