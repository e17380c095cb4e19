#!/usr/bin/env bash
# README's first command: installs what is missing, builds, and runs the project's main example,
# intel_scenes. With no arguments it runs the demo: the shipped scene classifier
# (examples/intel_scenes/pretrained/scenes.safetensors) is evaluated on the shipped sample
# (examples/intel_scenes/sample, 20 photos per class), the sample is sorted into a fresh temporary
# folder, and the program prints where the sorted photos and report.html are.
# Extra arguments go to intel_scenes (e.g. `scripts/run-example.sh summary --model model3`,
# `scripts/run-example.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target intel_scenes
exec ./build/examples/intel_scenes/intel_scenes "$@"
