// GEMM variants (gemm.hpp). Every variant reads A and B through the same bounds-checked accessors and
// writes C through the same epilogue (alpha, beta, bias, ReLU), so they differ only in how they tile
// the work; batching (GemmBatch) is the grid's z axis or, for a reduction, a loop inside the block.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <type_traits>

#include <tinycnn/cuda/gemm.hpp>

#include "gemm_tiles.cuh"

namespace tinycnn::cuda {
namespace {
using namespace detail;

// ---- 1: naive ------------------------------------------------------------------------------
template <class T>
__global__ void gemm_naive(GemmArgs<T> p) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t i = blockIdx.y * int64_t(blockDim.y) + threadIdx.y;
  int64_t b0, b1;
  T* C = batch_range(p, b0, b1);
  if (i >= p.M || j >= p.N) return;
  T acc = T(0);
  for (int64_t b = b0; b < b1; ++b) {
    const T* A = p.A + b * p.sa;
    const T* B = p.B + b * p.sb;
    for (int64_t k = 0; k < p.K; ++k) acc += load_a(p, A, i, k) * load_b(p, B, k, j);
  }
  store_c(p, C, i, j, acc);
}

// ---- 2: shared-memory tiles ------------------------------------------------------------------
// 32x32 tiles of A and B in shared memory, one C element per thread. The loads are laid out so that
// consecutive threads read consecutive addresses for either transpose (the +1 column avoids bank
// conflicts on the transposed store).
template <class T>
__global__ void gemm_tiled(GemmArgs<T> p) {
  constexpr int TS = 32;
  __shared__ T As[TS][TS + 1];  // [i][k]
  __shared__ T Bs[TS][TS + 1];  // [k][j]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t i0 = blockIdx.y * int64_t(TS), j0 = blockIdx.x * int64_t(TS);
  int64_t b0, b1;
  T* C = batch_range(p, b0, b1);
  T acc = T(0);
  for (int64_t b = b0; b < b1; ++b) {
    const T* A = p.A + b * p.sa;
    const T* B = p.B + b * p.sb;
    for (int64_t k0 = 0; k0 < p.K; k0 += TS) {
      if (!p.ta)
        As[ty][tx] = load_a(p, A, i0 + ty, k0 + tx);
      else
        As[tx][ty] = load_a(p, A, i0 + tx, k0 + ty);
      if (!p.tb)
        Bs[ty][tx] = load_b(p, B, k0 + ty, j0 + tx);
      else
        Bs[tx][ty] = load_b(p, B, k0 + tx, j0 + ty);
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < TS; ++kk) acc += As[ty][kk] * Bs[kk][tx];
      __syncthreads();
    }
  }
  store_c(p, C, i0 + ty, j0 + tx, acc);
}

// ---- 4 and 5: tensor cores (wmma) --------------------------------------------------------------
// 128x128 block tile, 8 warps in a 2x4 grid, each warp 64x32 of C = 4x2 fragments of 16x16. Tiles go
// through shared memory in the input precision; each warp stages one 16x16 accumulator at a time in
// its own shared buffer for the bounds-checked epilogue.
template <class T>
__device__ inline void stage_and_store(const GemmArgs<T>& p, T* C, float* st, int64_t ci, int64_t cj, int lane) {
  __syncwarp();
  for (int e = lane; e < 256; e += 32) store_c(p, C, ci + e / 16, cj + e % 16, static_cast<T>(st[(e / 16) * 20 + e % 16]));
  __syncwarp();
}

__global__ void __launch_bounds__(256) gemm_tf32(GemmArgs<float> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  constexpr int BM = 128, BN = 128, BK = 16, LA = BK + 4, LB = BN + 4;
  __shared__ __align__(128) float As[BM * LA];  // [i][k]
  __shared__ __align__(128) float Bs[BK * LB];  // [k][j]
  __shared__ __align__(128) float Stage[8][16 * 20];
  const int t = threadIdx.x, warp = t / 32, lane = t % 32, wm = warp / 4, wn = warp % 4;
  const int64_t i0 = blockIdx.y * int64_t(BM), j0 = blockIdx.x * int64_t(BN);
  int64_t b0, b1;
  float* C = batch_range(p, b0, b1);
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t b = b0; b < b1; ++b) {
    const float* A = p.A + b * p.sa;
    const float* B = p.B + b * p.sb;
    for (int64_t k0 = 0; k0 < p.K; k0 += BK) {
#pragma unroll
      for (int u = 0; u < 8; ++u) {  // consecutive threads walk the contiguous axis of A / B
        const int idx = t + 256 * u;
        const int m = p.ta ? idx % BM : idx / BK, k = p.ta ? idx / BM : idx % BK;
        As[m * LA + k] = load_a(p, A, i0 + m, k0 + k);
        const int n = p.tb ? idx / BK : idx % BN, kb = p.tb ? idx % BK : idx / BN;
        Bs[kb * LB + n] = load_b(p, B, k0 + kb, j0 + n);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; kk += 8) {
        wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> af[4];
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> bf[2];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          wmma::load_matrix_sync(af[i], As + (wm * 64 + i * 16) * LA + kk, LA);
#pragma unroll
          for (int e = 0; e < af[i].num_elements; ++e) af[i].x[e] = wmma::__float_to_tf32(af[i].x[e]);
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          wmma::load_matrix_sync(bf[j], Bs + kk * LB + wn * 32 + j * 16, LB);
#pragma unroll
          for (int e = 0; e < bf[j].num_elements; ++e) bf[j].x[e] = wmma::__float_to_tf32(bf[j].x[e]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
      }
      __syncthreads();
    }
  }
  float* st = Stage[warp];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(st, acc[i][j], 20, wmma::mem_row_major);
      stage_and_store(p, C, st, i0 + wm * 64 + i * 16, j0 + wn * 32 + j * 16, lane);
    }
#else
  __trap();  // needs sm_80 or newer; the host side refuses earlier
#endif
}

__global__ void __launch_bounds__(256) gemm_bf16(GemmArgs<float> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  constexpr int BM = 128, BN = 128, BK = 32, LA = BK + 8, LB = BN + 8;
  __shared__ __align__(128) __nv_bfloat16 As[BM * LA];  // [i][k]
  __shared__ __align__(128) __nv_bfloat16 Bs[BK * LB];  // [k][j]
  __shared__ __align__(128) float Stage[8][16 * 20];
  const int t = threadIdx.x, warp = t / 32, lane = t % 32, wm = warp / 4, wn = warp % 4;
  const int64_t i0 = blockIdx.y * int64_t(BM), j0 = blockIdx.x * int64_t(BN);
  int64_t b0, b1;
  float* C = batch_range(p, b0, b1);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t b = b0; b < b1; ++b) {
    const float* A = p.A + b * p.sa;
    const float* B = p.B + b * p.sb;
    for (int64_t k0 = 0; k0 < p.K; k0 += BK) {
#pragma unroll
      for (int u = 0; u < 16; ++u) {
        const int idx = t + 256 * u;
        const int m = p.ta ? idx % BM : idx / BK, k = p.ta ? idx / BM : idx % BK;
        As[m * LA + k] = __float2bfloat16(load_a(p, A, i0 + m, k0 + k));
        const int n = p.tb ? idx / BK : idx % BN, kb = p.tb ? idx % BK : idx / BN;
        Bs[kb * LB + n] = __float2bfloat16(load_b(p, B, k0 + kb, j0 + n));
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af[4];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> bf[2];
#pragma unroll
        for (int i = 0; i < 4; ++i) wmma::load_matrix_sync(af[i], As + (wm * 64 + i * 16) * LA + kk, LA);
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(bf[j], Bs + kk * LB + wn * 32 + j * 16, LB);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
      }
      __syncthreads();
    }
  }
  float* st = Stage[warp];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(st, acc[i][j], 20, wmma::mem_row_major);
      stage_and_store(p, C, st, i0 + wm * 64 + i * 16, j0 + wn * 32 + j * 16, lane);
    }
#else
  __trap();
#endif
}

std::atomic<int>& default_variant() {
  static std::atomic<int> v{[] {
    const char* e = std::getenv("TINYCNN_CUDA_GEMM_VARIANT");
    const int n = e ? std::atoi(e) : 0;
    return n >= 1 && n <= kGemmVariants ? n : 3;
  }()};
  return v;
}

bool split_k_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("TINYCNN_CUDA_SPLIT_K");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

void check_variant(int v, const char* fn) {
  if (v < 1 || v > kGemmVariants)
    throw ValueError(std::string("tinycnn::cuda::") + fn + ": GEMM variant " + std::to_string(v) +
                     " does not exist (1.." + std::to_string(kGemmVariants) + ")");
}

// Launch geometry of a variant: threads per block and the C tile one block covers.
struct Geometry {
  dim3 block;
  int64_t tile_m, tile_n;
};
Geometry geometry(int v) {
  switch (v) {
    case 1: return {dim3(32, 8), 8, 32};
    case 2: return {dim3(32, 32), 32, 32};
    default: return {dim3(256), 128, 128};
  }
}

template <class T>
void launch_variant(int v, const GemmArgs<T>& p, dim3 grid) {
  const dim3 block = geometry(v).block;
  switch (v) {
    case 1: launch(kname("gemm_naive", tname<T>()).c_str(), &gemm_naive<T>, grid, block, p); break;
    case 2: launch(kname("gemm_tiled", tname<T>()).c_str(), &gemm_tiled<T>, grid, block, p); break;
    case 3: launch(kname("gemm_regblock", tname<T>()).c_str(), &gemm_regblock<T, DenseB>, grid, block, p, DenseB{}); break;
    case 4:
    case 5:
      if constexpr (std::is_same<T, float>::value) {
        if (v == 4)
          launch("gemm_tf32", &gemm_tf32, grid, block, p);
        else
          launch("gemm_bf16", &gemm_bf16, grid, block, p);
      }
      break;
  }
}

}  // namespace

const char* gemm_variant_name(int variant) {
  check_variant(variant, "gemm_variant_name");
  static const char* names[] = {"naive", "tiled", "regblock", "tf32", "bf16"};
  return names[variant - 1];
}
bool gemm_variant_supports_double(int variant) {
  check_variant(variant, "gemm_variant_supports_double");
  return variant <= 3;
}
int default_gemm_variant() { return default_variant().load(); }
void set_default_gemm_variant(int variant) {
  check_variant(variant, "set_default_gemm_variant");
  default_variant().store(variant);
}

template <class T>
void gemm_variant(int variant, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue<T>& ep,
                  const GemmBatch& batch) {
  check_variant(variant, "gemm_variant");
  if (std::is_same<T, double>::value && !gemm_variant_supports_double(variant))
    throw ValueError(std::string("tinycnn::cuda::gemm_variant: variant ") + std::to_string(variant) + " (" +
                     gemm_variant_name(variant) + ") is float only; double needs variant 1, 2 or 3");
  require_nonneg("gemm", "M", M);
  require_nonneg("gemm", "N", N);
  require_nonneg("gemm", "K", K);
  require_nonneg("gemm", "batch.count", batch.count);
  if (M == 0 || N == 0 || batch.count == 0) return;
  auto ld_error = [](const char* name, int64_t ld, int64_t need) {
    throw ValueError(std::string("tinycnn::cuda::gemm: ") + name + " = " + std::to_string(ld) + " is smaller than " +
                     std::to_string(need));
  };
  if (K > 0 && lda < (trans_a ? M : K)) ld_error("lda", lda, trans_a ? M : K);
  if (K > 0 && ldb < (trans_b ? K : N)) ld_error("ldb", ldb, trans_b ? K : N);
  if (ldc < N) ld_error("ldc", ldc, N);

  GemmArgs<T> p{trans_a, trans_b, M, N, alpha == T(0) ? 0 : K, lda, ldb, ldc, alpha, beta, A, B, C, ep,
                batch.count, batch.stride_a, batch.stride_b, batch.stride_c, batch.reduce};
  const Geometry geo = geometry(variant);
  const int64_t gx = (N + geo.tile_n - 1) / geo.tile_n, gy = (M + geo.tile_m - 1) / geo.tile_m;
  if (gy > 65535 || gx > 2147483647)
    throw ValueError("tinycnn::cuda::gemm: " + std::to_string(M) + "x" + std::to_string(N) +
                     " is too large for one launch (at most 65535 row tiles)");

  // Split-K: one GEMM with fewer C tiles than SMs and a long K (model3's dense layer: 2x8 tiles, K =
  // 36864) would leave most of the GPU idle. K is cut into S equal chunks that are summed as a batch
  // reduction (which splits them between blocks, below); a remainder of K - S*kc columns goes first,
  // with the caller's beta, so the chunks add to it with beta = 1 and the epilogue applies once, last.
  if (!batch.reduce && batch.count == 1 && p.K >= 1024 && split_k_enabled()) {
    const int64_t tiles = gx * gy, sms = multiprocessor_count();
    const int64_t S = std::min<int64_t>({(2 * sms + tiles - 1) / tiles, p.K / 256, 64});
    if (tiles < sms && S >= 2) {
      const int64_t kc = p.K / S, kr = p.K - S * kc;
      T beta_chunks = beta;
      if (kr > 0) {
        const T* Ar = trans_a ? A + S * kc * lda : A + S * kc;
        const T* Br = trans_b ? B + S * kc : B + S * kc * ldb;
        gemm_variant<T>(variant, trans_a, trans_b, M, N, kr, alpha, Ar, lda, Br, ldb, beta, C, ldc);
        beta_chunks = T(1);
      }
      const GemmBatch chunks{S, trans_a ? kc * lda : kc, trans_b ? kc : kc * ldb, 0, true};
      gemm_variant<T>(variant, trans_a, trans_b, M, N, kc, alpha, A, lda, B, ldb, beta_chunks, C, ldc, ep, chunks);
      return;
    }
  }
  drive_gemm(p, geo.tile_m, geo.tile_n, [&](const GemmArgs<T>& q, dim3 grid) { launch_variant(variant, q, grid); });
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  int v = default_gemm_variant();
  if (std::is_same<T, double>::value && v > 3) v = 3;  // tensor-core defaults apply to float only
  gemm_variant<T>(v, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#define TINYCNN_INSTANTIATE(T)                                                                                  \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*, \
                        int64_t);                                                                               \
  template void gemm_variant<T>(int, bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*,     \
                                int64_t, T, T*, int64_t, const GemmEpilogue<T>&, const GemmBatch&);
TINYCNN_INSTANTIATE(float)
TINYCNN_INSTANTIATE(double)
#undef TINYCNN_INSTANTIATE

}  // namespace tinycnn::cuda
