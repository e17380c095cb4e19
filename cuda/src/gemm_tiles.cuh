#pragma once
// The GEMM machinery shared by gemm.cu and conv.cu (internal): the argument block, the bounds-checked
// accessors and epilogue every variant uses, the register-blocked tile kernel (variant 3, also the
// engine of the implicit-GEMM convolution) and the host driver that launches a kernel over batches
// and splits batch reductions between blocks. Everything has internal linkage (one copy per .cu).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include <tinycnn/cuda/gemm.hpp>

#include "launch.cuh"

namespace tinycnn::cuda {
namespace {
using namespace detail;

template <class T>
struct GemmArgs {
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  T alpha, beta;
  const T* A;
  const T* B;
  T* C;
  GemmEpilogue<T> ep;
  int64_t count, sa, sb, sc;  // sc: per batch, or per split of a reduction
  bool reduce;
};

// Batches [b0, b1) handled by this block and its C: one batch per z, or a slice of a reduction.
template <class T>
__device__ inline T* batch_range(const GemmArgs<T>& p, int64_t& b0, int64_t& b1) {
  const int64_t z = blockIdx.z;
  if (!p.reduce) {
    b0 = z;
    b1 = z + 1;
  } else {
    b0 = z * p.count / gridDim.z;
    b1 = (z + 1) * p.count / gridDim.z;
  }
  return p.C + z * p.sc;
}

// op(A)[i, k] and op(B)[k, j], 0 outside the matrices (so tiles need no other bounds checks).
template <class T>
__device__ inline T load_a(const GemmArgs<T>& p, const T* A, int64_t i, int64_t k) {
  if (i >= p.M || k >= p.K) return T(0);
  return p.ta ? A[k * p.lda + i] : A[i * p.lda + k];
}
template <class T>
__device__ inline T load_b(const GemmArgs<T>& p, const T* B, int64_t k, int64_t j) {
  if (k >= p.K || j >= p.N) return T(0);
  return p.tb ? B[j * p.ldb + k] : B[k * p.ldb + j];
}

// C[i, j] = relu?(alpha * acc + beta * C[i, j] + bias); C is not read when beta == 0.
template <class T>
__device__ inline void store_c(const GemmArgs<T>& p, T* C, int64_t i, int64_t j, T acc) {
  if (i >= p.M || j >= p.N) return;
  T* c = C + i * p.ldc + j;
  T v = p.alpha * acc;
  if (p.beta != T(0)) v += p.beta * *c;
  if (p.ep.bias) v += p.ep.bias_per_column ? p.ep.bias[j] : p.ep.bias[i];
  if (p.ep.relu && v < T(0)) v = T(0);
  *c = v;
}

// ---- 3: register blocking --------------------------------------------------------------------
// Four consecutive elements of row `row` from column `col` (0 outside rows x cols); one float4 load
// when they are all inside and 16-byte aligned.
template <class T>
__device__ inline void load_row4(const T* base, int64_t row, int64_t rows, int64_t ld, int64_t col, int64_t cols,
                                 T v[4]) {
  if (row >= rows) {
    v[0] = v[1] = v[2] = v[3] = T(0);
    return;
  }
  const T* ptr = base + row * ld + col;
  if constexpr (std::is_same<T, float>::value) {
    if (col + 3 < cols && (reinterpret_cast<uintptr_t>(ptr) & 15) == 0) {
      const float4 f = *reinterpret_cast<const float4*>(ptr);
      v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
      return;
    }
  }
#pragma unroll
  for (int u = 0; u < 4; ++u) v[u] = col + u < cols ? ptr[u] : T(0);
}

// Where variant 3 reads op(B) from: a dense matrix (DenseB) or, for implicit-GEMM convolutions, a
// functor src(B_batch, crs, l) computing the im2col element on the fly (conv.cu).
struct DenseB {
  static constexpr bool kDense = true;
};

// 128x128 block tile, BK = 8, 256 threads in a 16x16 grid, each owning an 8x8 tile of C in registers:
// every value loaded from shared memory is used 8 times.
template <class T, class BSrc = DenseB>
__global__ void __launch_bounds__(256) gemm_regblock(GemmArgs<T> p, BSrc src) {
  constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
  __shared__ __align__(16) T As[BK][BM + 4];  // [k][i]
  __shared__ __align__(16) T Bs[BK][BN + 4];  // [k][j]
  const int t = threadIdx.x, tr = t / 16, tc = t % 16;
  const int64_t i0 = blockIdx.y * int64_t(BM), j0 = blockIdx.x * int64_t(BN);
  int64_t b0, b1;
  T* C = batch_range(p, b0, b1);
  T acc[TM][TN];
#pragma unroll
  for (int m = 0; m < TM; ++m)
#pragma unroll
    for (int n = 0; n < TN; ++n) acc[m][n] = T(0);
  for (int64_t b = b0; b < b1; ++b) {
    const T* A = p.A + b * p.sa;
    const T* B = p.B + b * p.sb;
    for (int64_t k0 = 0; k0 < p.K; k0 += BK) {
      T v[4];
      if (!p.ta) {  // A row-major [M, K]: 4 consecutive k of row i
        const int r = t / 2, kq = (t % 2) * 4;
        load_row4(A, i0 + r, p.M, p.lda, k0 + kq, p.K, v);
#pragma unroll
        for (int u = 0; u < 4; ++u) As[kq + u][r] = v[u];
      } else {  // A is [K, M]: 4 consecutive i of row k
        const int kr = t / 32, mq = (t % 32) * 4;
        load_row4(A, k0 + kr, p.K, p.lda, i0 + mq, p.M, v);
#pragma unroll
        for (int u = 0; u < 4; ++u) As[kr][mq + u] = v[u];
      }
      if constexpr (BSrc::kDense) {
        if (!p.tb) {  // B row-major [K, N]: 4 consecutive j of row k
          const int kr = t / 32, nq = (t % 32) * 4;
          load_row4(B, k0 + kr, p.K, p.ldb, j0 + nq, p.N, v);
#pragma unroll
          for (int u = 0; u < 4; ++u) Bs[kr][nq + u] = v[u];
        } else {  // B is [N, K]: 4 consecutive k of row j
          const int r = t / 2, kq = (t % 2) * 4;
          load_row4(B, j0 + r, p.N, p.ldb, k0 + kq, p.K, v);
#pragma unroll
          for (int u = 0; u < 4; ++u) Bs[kq + u][r] = v[u];
        }
      } else {  // implicit: op(B)[k, j] is im2col[crs = k, l = j] (forward) or [crs = j, l = k] (weight gradient)
        if (!p.tb) {
          const int kr = t / 32, nq = (t % 32) * 4;
          const int64_t k = k0 + kr;
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            const int64_t j = j0 + nq + u;
            Bs[kr][nq + u] = (k < p.K && j < p.N) ? src(B, k, j) : T(0);
          }
        } else {
          const int r = t / 2, kq = (t % 2) * 4;
          const int64_t j = j0 + r;
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            const int64_t k = k0 + kq + u;
            Bs[kq + u][r] = (k < p.K && j < p.N) ? src(B, j, k) : T(0);
          }
        }
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        T a[TM], bb[TN];
#pragma unroll
        for (int m = 0; m < TM; ++m) a[m] = As[kk][tr * TM + m];
#pragma unroll
        for (int n = 0; n < TN; ++n) bb[n] = Bs[kk][tc * TN + n];
#pragma unroll
        for (int m = 0; m < TM; ++m)
#pragma unroll
          for (int n = 0; n < TN; ++n) acc[m][n] += a[m] * bb[n];
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int m = 0; m < TM; ++m)
#pragma unroll
    for (int n = 0; n < TN; ++n) store_c(p, C, i0 + tr * TM + m, j0 + tc * TN + n, acc[m][n]);
}

// Split reduction: C = epilogue(alpha * sum_s part[s]) over the splits' partial products [M, N].
template <class T>
__global__ void gemm_split_sum(GemmArgs<T> p, const T* part, int64_t splits) {
  const int64_t MN = p.M * p.N;
  TINYCNN_GRID_STRIDE(e, MN) {
    T s = T(0);
    for (int64_t z = 0; z < splits; ++z) s += part[z * MN + e];
    store_c(p, p.C, e / p.N, e % p.N, s);
  }
}

// Host driver: launch_fn(q, grid) for every launch p needs, C tiles of tile_m x tile_n. Independent
// batches go on the grid's z axis (at most 65535 per launch). A reduction over batches with fewer C
// tiles than 2 per SM is split: blocks of z-slice s sum their slice of the batches into partial
// products (workspace), and gemm_split_sum adds them into C with alpha, beta and the epilogue.
template <class T, class Launch>
void drive_gemm(const GemmArgs<T>& p, int64_t tile_m, int64_t tile_n, const Launch& launch_fn) {
  const int64_t gx = (p.N + tile_n - 1) / tile_n, gy = (p.M + tile_m - 1) / tile_m;
  if (gy > 65535 || gx > 2147483647)
    throw ValueError("tinycnn::cuda::gemm: " + std::to_string(p.M) + "x" + std::to_string(p.N) +
                     " is too large for one launch (at most 65535 row tiles)");
  if (!p.reduce) {
    for (int64_t b0 = 0; b0 < p.count; b0 += 65535) {
      GemmArgs<T> q = p;
      q.count = std::min<int64_t>(65535, p.count - b0);
      q.A = p.A + b0 * p.sa;
      q.B = p.B + b0 * p.sb;
      q.C = p.C + b0 * p.sc;
      launch_fn(q, dim3(unsigned(gx), unsigned(gy), unsigned(q.count)));
    }
    return;
  }
  const int64_t tiles = gx * gy, want = 2 * static_cast<int64_t>(multiprocessor_count());
  const int64_t splits = std::min<int64_t>({p.count, (want + tiles - 1) / tiles, 64});
  if (splits <= 1 || p.K == 0) {
    GemmArgs<T> q = p;
    q.sc = 0;
    launch_fn(q, dim3(unsigned(gx), unsigned(gy), 1));
    return;
  }
  T* part = static_cast<T*>(device_alloc(static_cast<size_t>(splits * p.M * p.N) * sizeof(T)));
  try {
    GemmArgs<T> q = p;
    q.alpha = T(1);
    q.beta = T(0);
    q.C = part;
    q.ldc = p.N;
    q.ep = GemmEpilogue<T>{};
    q.sc = p.M * p.N;
    launch_fn(q, dim3(unsigned(gx), unsigned(gy), unsigned(splits)));
    launch(kname("gemm_split_sum", tname<T>()).c_str(), &gemm_split_sum<T>, dim3(blocks_for(p.M * p.N)),
           dim3(kThreads), p, static_cast<const T*>(part), splits);
  } catch (...) {
    device_free(part);
    throw;
  }
  device_free(part);  // stream-ordered: a later user of the block on this stream runs after the sum
}

}  // namespace
}  // namespace tinycnn::cuda
