#!/usr/bin/env bash
# Runs one libFuzzer target for a number of seconds over its committed corpus; any crash, leak,
# ASan or UBSan report fails (exit status != 0).
#   scripts/run-fuzz.sh image 60      # fuzz/fuzz_image_load.cpp over tests/data/bad_images + good images
# Targets: image, model (fuzz/fuzz_model_load.cpp over tests/data/model_corpus) (more can be added in the case below). Needs clang-14 and libclang-rt-14-dev.
# The corpus is copied to a temporary directory, so new inputs are never written into the repository;
# crash inputs are kept in build-fuzz/artifacts/ (add them to the corpus once fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-image}
seconds=${2:-60}
build=${TINYCNN_FUZZ_BUILD_DIR:-build-fuzz}
case "$target" in
  image) exe=fuzz_image_load; corpora=(tests/data/bad_images tests/data/exif) ;;
  model) exe=fuzz_model_load; corpora=(tests/data/model_corpus) ;;
  *) echo "run-fuzz: unknown target '$target' (known: image, model)" >&2; exit 2 ;;
esac
CXX=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++)}
CC=${CC_FUZZ:-$(command -v clang-14 || command -v clang)}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_COMPILER="$CC" \
  -DTINYCNN_BUILD_FUZZ=ON -DTINYCNN_BUILD_TESTS=OFF -DTINYCNN_BUILD_EXAMPLES=OFF -DTINYCNN_BUILD_BENCH=OFF \
  -DTINYCNN_USE_OPENMP=OFF >/dev/null
cmake --build "$build" --target "$exe" -j2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$build/artifacts"
for c in "${corpora[@]}"; do
  find "$c" -maxdepth 1 -type f ! -name '*.tsv' ! -name '*.md' -exec cp {} "$work/corpus/" \;
done
echo "run-fuzz: $exe for ${seconds}s over $(ls "$work/corpus" | wc -l) corpus files"
# shift-exponent and signed-integer-overflow are recoverable only so that fuzz/ubsan_stb.supp can
# silence them inside stb_image.h; halt_on_error makes every unsuppressed report (ours included) fatal.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/fuzz/ubsan_stb.supp"
# A fixed seed (TINYCNN_FUZZ_SEED, default 1) makes a CI failure reproducible; set 0 for a random one.
"$build/fuzz/$exe" -seed="${TINYCNN_FUZZ_SEED:-1}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$build/artifacts/" "$work/corpus"
