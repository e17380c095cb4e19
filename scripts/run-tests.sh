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
