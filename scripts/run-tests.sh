#!/usr/bin/env bash
# The whole test suite from a clean build directory (README's second command; .ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${TINYCNN_TEST_BUILD_DIR:-build-tests}
rm -rf "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure --timeout 1200

# CUDA stage: the optional backend must keep compiling. CI has nvcc but no GPU, so this builds
# tinycnn::cuda, its parity tests, the GPU benchmark binary (sm_90 only, few translation units) and
# intel_scenes linked with it (train/bench --device cuda), and runs the tests, which report themselves
# Skipped without a GPU (host-side checks still run).
nvcc_bin=$(command -v nvcc || true)
[[ -z "$nvcc_bin" && -x /usr/local/cuda/bin/nvcc ]] && nvcc_bin=/usr/local/cuda/bin/nvcc
if [[ -n "$nvcc_bin" ]]; then
  cuda_build=${TINYCNN_TEST_CUDA_BUILD_DIR:-build-tests-cuda}
  rm -rf "$cuda_build"
  cmake -S . -B "$cuda_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTINYCNN_USE_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc_bin" -DTINYCNN_BUILD_TESTS=OFF -DTINYCNN_BUILD_EXAMPLES=ON \
    -DTINYCNN_BUILD_BENCH=OFF -DTINYCNN_BUILD_CUDA_TESTS=ON -DTINYCNN_BUILD_CUDA_BENCH=ON
  cmake --build "$cuda_build" -j2 --target tinycnn_cuda_tests tinycnn_cuda_bench intel_scenes
  ctest --test-dir "$cuda_build" -R "cuda_" --output-on-failure --timeout 1200
  # intel_scenes --device cuda either runs on the GPU or says plainly that there is none (exit 2).
  rc=0
  out=$("$cuda_build/examples/intel_scenes/intel_scenes" bench --model model2 --batch 4 --steps 1 --device cuda 2>&1) || rc=$?
  echo "$out" | tail -3
  if [[ $rc -ne 0 ]] && ! grep -q "no usable GPU" <<<"$out"; then
    echo "run-tests.sh: intel_scenes bench --device cuda failed (exit $rc)"
    exit 1
  fi
else
  echo "run-tests.sh: nvcc not found (PATH, /usr/local/cuda/bin): CUDA build stage skipped"
fi
