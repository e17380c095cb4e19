// tinycnn_cuda_tests: parity of every CUDA kernel with its CPU twin (ctest cuda_parity).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>
#include <tinycnn/cuda/runtime.hpp>

int main(int argc, char** argv) {
  if (tinycnn::cuda::available())
    std::cout << "tinycnn-cuda: testing on " << tinycnn::cuda::device_description(0) << "\n";
  else
    std::cout << "tinycnn-cuda: no usable GPU (" << tinycnn::cuda::unavailable_reason()
              << "): GPU parity tests are skipped, host-side tests run\n";
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
