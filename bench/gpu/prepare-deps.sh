#!/usr/bin/env bash
# Copies the Debian doctest and Google Benchmark files this repository's GPU build needs into
# .gpu-deps/ (ignored by git) so they can travel to a GPU machine that has nvcc, CMake and PyTorch but
# neither library (the device tool's `carry`). Run here, on the development machine, before the GPU call.
set -euo pipefail
cd "$(dirname "$0")/../.."
dst=.gpu-deps/usr
rm -rf .gpu-deps
mkdir -p "$dst/include" "$dst/lib/x86_64-linux-gnu/cmake" "$dst/lib/cmake"
cp -rL /usr/include/doctest "$dst/include/"
cp -rL /usr/lib/cmake/doctest "$dst/lib/cmake/"
# Debian's doctest targets file names /usr literally; make it relative to where the file now lives.
sed -i 's|^set(_IMPORT_PREFIX "/usr")|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  "$dst/lib/cmake/doctest/doctestTargets.cmake"
cp -rL /usr/include/benchmark "$dst/include/"
cp -rL /usr/lib/x86_64-linux-gnu/cmake/benchmark "$dst/lib/x86_64-linux-gnu/cmake/"
for f in /usr/lib/x86_64-linux-gnu/libbenchmark.so* /usr/lib/x86_64-linux-gnu/libbenchmark_main.a; do
  cp -L "$f" "$dst/lib/x86_64-linux-gnu/"
done
grep -qx '/.gpu-deps/' .git/info/exclude 2>/dev/null || echo '/.gpu-deps/' >> .git/info/exclude
du -sh .gpu-deps
echo "carry .gpu-deps with bench/gpu/run.sh (see docs/cuda.md)"
