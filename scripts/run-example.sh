#!/usr/bin/env bash
# README's first command: installs what is missing, builds, and runs the project's main example.
# Extra arguments go to the example (default: 3 epochs of Fashion-MNIST).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target fashion_mnist
if [ $# -eq 0 ]; then set -- --epochs 3; fi
exec ./build/examples/fashion_mnist/fashion_mnist "$@"
