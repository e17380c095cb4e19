#pragma once
// Helpers shared by the .cu files: the current stream, grid sizes, launch checks, warp reductions and
// type-generic math. Internal to tinycnn::cuda (not installed).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include <tinycnn/core/error.hpp>
#include <tinycnn/cuda/runtime.hpp>

namespace tinycnn::cuda::detail {

inline cudaStream_t stream() { return static_cast<cudaStream_t>(current_stream().handle()); }

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

// Launches kernel<<<grid, block, 0, current stream>>>(args...) and checks it, naming the kernel.
template <class... KArgs, class... Args>
void launch(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block, Args&&... args) {
  kernel<<<grid, block, 0, stream()>>>(static_cast<KArgs>(args)...);
  check_launch(name);
}

// A type name for kernel names in error messages.
template <class T>
const char* tname();
template <>
inline const char* tname<float>() { return "float"; }
template <>
inline const char* tname<double>() { return "double"; }

inline std::string kname(const char* base, const char* t) { return std::string(base) + "<" + t + ">"; }

// Throws ValueError naming the kernel and argument when a size is negative.
inline void require_nonneg(const char* kernel, const char* arg, int64_t v) {
  if (v < 0) throw ValueError(std::string("tinycnn::cuda::") + kernel + ": " + arg + " = " + std::to_string(v) +
                              " must not be negative");
}

#define TINYCNN_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

// Math overloads that pick the float or double intrinsic.
__device__ inline float dexp(float x) { return expf(x); }
__device__ inline double dexp(double x) { return exp(x); }
__device__ inline float dlog(float x) { return logf(x); }
__device__ inline double dlog(double x) { return log(x); }
__device__ inline float dlog1p(float x) { return log1pf(x); }
__device__ inline double dlog1p(double x) { return log1p(x); }
__device__ inline float dtanh(float x) { return tanhf(x); }
__device__ inline double dtanh(double x) { return tanh(x); }
__device__ inline float dsqrt(float x) { return sqrtf(x); }
__device__ inline double dsqrt(double x) { return sqrt(x); }
__device__ inline float dabs(float x) { return fabsf(x); }
__device__ inline double dabs(double x) { return fabs(x); }

template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    const T u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <class T>
__device__ inline T block_sum(T v) {
  __shared__ T part[32];
  __shared__ T total;
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T s = lane < (blockDim.x >> 5) ? part[lane] : T(0);
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  const T r = total;
  __syncthreads();  // part/total may be reused by the next call
  return r;
}

}  // namespace tinycnn::cuda::detail
