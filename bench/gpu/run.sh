#!/usr/bin/env bash
# One command for a machine with a GPU (the device tool's `run`): configure + build the CUDA build
# (Release), run the parity tests, the kernel benchmarks and the PyTorch comparison, and copy every
# result to $OUT when it is set (else to build-gpu/results). See docs/cuda.md. At most 8 files land in
# $OUT (the device tool returns 8): summary.txt, build.log, parity.txt, bench_cuda.{txt,json},
# pytorch_gpu.{md,json} and, with --sanitize, sanitize.txt.
#   bench/gpu/run.sh [--quick] [--sanitize]
#     --quick:    fewer benchmarks and PyTorch steps (a smoke run)
#     --sanitize: also run the parity tests under compute-sanitizer memcheck (sanitize.txt)
# Environment: BUILD (default build-gpu), JOBS (default: all cores), CUDA_ARCH (default 90),
#   BENCH_FILTER (regex of benchmarks to run), SKIP_TESTS=1, SKIP_PYTORCH=1 (to split a long run over
#   several device calls; the build directory survives while the machine stays warm).
set -uo pipefail
cd "$(dirname "$0")/../.."
quick=0
sanitize=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --sanitize) sanitize=1 ;;
    *) echo "run.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
build=${BUILD:-build-gpu}
out=${OUT:-$build/results}
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/summary.txt"; }
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$out/summary.txt"
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
# doctest / Google Benchmark carried from the development machine (bench/gpu/prepare-deps.sh).
prefix=""
[[ -d .gpu-deps/usr ]] && prefix="-DCMAKE_PREFIX_PATH=$PWD/.gpu-deps/usr"

log "configure + build ($build)"
t0=$(date +%s)
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTINYCNN_USE_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DTINYCNN_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
    -DTINYCNN_BUILD_TESTS=OFF -DTINYCNN_BUILD_EXAMPLES=OFF -DTINYCNN_BUILD_BENCH=OFF \
    -DTINYCNN_BUILD_CUDA_TESTS=ON -DTINYCNN_BUILD_CUDA_BENCH=ON $prefix > "$out/build.log" 2>&1; then
  log "configure FAILED (tail of build.log follows)"; tail -40 "$out/build.log"; exit 1
fi
grep -E "^--   " "$out/build.log" | tee -a "$out/summary.txt"
if ! cmake --build "$build" -j"${JOBS:-$(nproc)}" >> "$out/build.log" 2>&1; then
  log "build FAILED (tail of build.log follows)"; tail -60 "$out/build.log"; exit 1
fi
log "built in $(( $(date +%s) - t0 )) s"

if [[ "${SKIP_TESTS:-0}" != 1 ]]; then
  log "parity tests (ctest cuda_runtime, cuda_parity)"
  ctest --test-dir "$build" -R "cuda_" --output-on-failure --timeout 900 > "$out/parity.txt" 2>&1 || status=1
  tail -5 "$out/parity.txt" | tee -a "$out/summary.txt"
  [[ $status -ne 0 ]] && grep -E "ERROR|differ|FAILED" "$out/parity.txt" | head -40
fi

if [[ $sanitize -eq 1 ]]; then
  log "compute-sanitizer memcheck over the parity tests"
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  timeout 400 "$san" --tool memcheck --leak-check no --error-exitcode 3 "$build/cuda/tests/tinycnn_cuda_tests" \
      --no-intro=true > "$out/sanitize.txt" 2>&1 || status=1
  tail -8 "$out/sanitize.txt" | tee -a "$out/summary.txt"
fi

if [[ -x "$build/bench/gpu/tinycnn_cuda_bench" ]]; then
  log "kernel benchmarks (tinycnn_cuda_bench)"
  filter=${BENCH_FILTER:-.}
  [[ $quick -eq 1 ]] && filter=${BENCH_FILTER:-'model3/|gemm/.*/(1024x1024x1024|2048x2048x2048)|conv/.*/model3-conv(2|4)/b256'}
  "$build/bench/gpu/tinycnn_cuda_bench" --benchmark_filter="$filter" --benchmark_min_time=0.2 \
      --benchmark_out="$out/bench_cuda.json" --benchmark_out_format=json > "$out/bench_cuda.txt" 2>&1 || status=1
else
  log "tinycnn_cuda_bench was not built (Google Benchmark missing: run bench/gpu/prepare-deps.sh and carry .gpu-deps)"
  status=1
fi

if [[ "${SKIP_PYTORCH:-0}" != 1 ]]; then
  log "PyTorch comparison (bench/gpu/compare_pytorch_gpu.py)"
  steps=20
  [[ $quick -eq 1 ]] && steps=5
  PYTHONUNBUFFERED=1 python3 bench/gpu/compare_pytorch_gpu.py --steps $steps --json "$out/pytorch_gpu.json" \
    2>&1 | tee "$out/pytorch_gpu.md" || status=1
fi

if [[ -f "$out/bench_cuda.json" ]]; then
  log "summary: tinycnn vs PyTorch, kernel variants"
  python3 bench/gpu/summarize_bench.py "$out/bench_cuda.json" "$out/pytorch_gpu.json" | tee -a "$out/summary.txt"
fi

log "done, status $status; results in $out"
exit $status
