#!/usr/bin/env bash
# CTest's check of the A/B harness (tests/CMakeLists.txt): two builds of this tree's GEMM (--null) on
# small products of every form give the same bits, each round prints its probe, and the summary has a
# row per product.   check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
log="$build/check.log"
mkdir -p "$build"
"$src/bench/ab_gemm/run.sh" --old "$src" --null --build-dir "$build" --rounds 2 --calls 2 --probe \
  --probe-shape 96x64x256/NT 64x48x300/NT 100x70x50/TN 40x130x20/NN 30x20x10/TT >"$log" 2>&1 ||
  { cat "$log"; exit 1; }
cat "$log"
[ "$(grep -c ': same bits$' "$log")" = 4 ] || { echo "check.sh: not every product gave the same bits" >&2; exit 1; }
[ "$(grep -c '^round [12] probe' "$log")" = 2 ] || { echo "check.sh: a round without its probe" >&2; exit 1; }
for p in 64x48x300/NT 100x70x50/TN 40x130x20/NN 30x20x10/TT; do
  grep -q "^| $p" "$log" || { echo "check.sh: no summary row for $p" >&2; exit 1; }
done
echo "check.sh: OK"
