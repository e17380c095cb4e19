#pragma once
// GEMM on the GPU, with numbered variants in the style of llm.c's dev/cuda. All share the CPU gemm's
// contract (kernels/cpu/gemm_ref.hpp): row-major, C = alpha * op(A) * op(B) + beta * C, beta == 0
// means C is written without being read. Pointers are device pointers.
//   1 naive    one thread per C element (the GPU reference)
//   2 tiled    32x32 shared-memory tiles
//   3 regblock 128x128 block tiles, 8x8 outputs per thread in registers, float4 loads when aligned
//   4 tf32     tensor cores via wmma (TF32 inputs, fp32 accumulate), 128x128 tiles; float only
//   5 bf16     tensor cores via wmma (bf16 inputs, fp32 accumulate), 128x128 tiles; float only
// The default is 3: the fastest variant that keeps fp32 accuracy. 4 and 5 change the numerics (like
// PyTorch's allow_tf32 / autocast) and are opt-in via set_default_gemm_variant(). Which variant wins
// must be confirmed by bench/gpu on an H100 (docs/cuda.md says what has been measured).
#include <cstdint>

namespace tinycnn::cuda {

constexpr int kGemmVariants = 5;  // variants are numbered 1..kGemmVariants
const char* gemm_variant_name(int variant);  // "naive", "tiled", ...; throws ValueError for a bad number
// Whether a variant supports double (the tensor-core variants are float only).
bool gemm_variant_supports_double(int variant);
int default_gemm_variant();
void set_default_gemm_variant(int variant);  // throws ValueError for a bad number

// Fused epilogue, applied after alpha/beta: v += bias (per row i, or per column j), then ReLU.
template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;  // [M] (per row) or [N] (bias_per_column), device pointer
  bool bias_per_column = false;
  bool relu = false;
};

// Strided batches. count problems: A_b = A + b*stride_a, B_b = B + b*stride_b, C_b = C + b*stride_c.
// reduce: all count products are summed into ONE C (stride_c ignored): C = alpha * sum_b op(A_b) op(B_b)
// + beta * C (used for convolution weight gradients, summed over the samples of a batch).
struct GemmBatch {
  int64_t count = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  bool reduce = false;
};

// The dispatched entry point (same arguments as kernels::cpu::gemm), using default_gemm_variant().
//   op(A): [M, K]; A is [M, K] (lda >= K) or, if trans_a, [K, M] (lda >= M)
//   op(B): [K, N]; B is [K, N] (ldb >= N) or, if trans_b, [N, K] (ldb >= K)
//   C:     [M, N] (ldc >= N)
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// One variant by number (1..kGemmVariants), with an optional epilogue and batching. A single GEMM with
// fewer C tiles than SMs and K >= 1024 is split along K (partial products summed by a second kernel;
// TINYCNN_CUDA_SPLIT_K=0 turns that off for comparisons).
template <class T>
void gemm_variant(int variant, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue<T>& ep = {},
                  const GemmBatch& batch = {});

}  // namespace tinycnn::cuda
