#!/usr/bin/env bash
# Old against new GEMM code in one process: builds ab_main.cpp with the library's GEMM from two source
# trees (side.cpp twice, the namespace renamed) and runs it. docs/performance.md, "How a change is
# measured", says how to read the output.
#
#   bench/ab_gemm/run.sh [--old REV|DIR] [--new REV|DIR] [--null] [--build-dir DIR] [ab_gemm options] PRODUCT...
#
# --old: a git revision (default HEAD) or a directory holding include/tinycnn; --new: the same (default
# this working tree). --null: new is a second build of old, so the output shows what the harness
# reports for no change at all (its noise floor). --build-dir: default build-ab-gemm in the project root.
# Everything else goes to ab_gemm: --rounds R (5), --calls C (15 pairs per product per round),
# --threads T (OMP_NUM_THREADS), --probe (one thread per CPU timed before each round), --probe-shape
# MxNxK/FORM (576x256x4608/NT; implies --probe), and the products, MxNxK/FORM with FORM one of NN, NT,
# TN, TT.
#   bench/ab_gemm/run.sh --old HEAD~1 --probe --rounds 10 1152x256x4608/NT 576x128x20000/NT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

old=HEAD
new=""
null=0
build="$root/build-ab-gemm"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --old) old=$2; shift 2 ;;
    --new) new=$2; shift 2 ;;
    --null) null=1; shift ;;
    --build-dir) build=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done

# A source tree's include directory: DIR/include where DIR is a directory, else the files of
# revision REV exported into the build directory.
tree() {
  local what=$1 name=$2
  if [ -d "$what" ]; then
    [ -f "$what/include/tinycnn/kernels/cpu/gemm.hpp" ] ||
      { echo "run.sh: $what has no include/tinycnn/kernels/cpu/gemm.hpp" >&2; exit 2; }
    (cd "$what/include" && pwd)
    return
  fi
  git -C "$root" rev-parse --verify --quiet "$what^{commit}" >/dev/null ||
    { echo "run.sh: '$what' is neither a directory nor a git revision of $root" >&2; exit 2; }
  rm -rf "$build/$name"
  mkdir -p "$build/$name"
  git -C "$root" archive "$what" include | tar -x -C "$build/$name"
  echo "$build/$name/include"
}

mkdir -p "$build"
old_inc=$(tree "$old" old)
if [ "$null" = 1 ]; then
  new_inc=$old_inc
elif [ -n "$new" ]; then
  new_inc=$(tree "$new" new)
else
  new_inc="$root/include"
fi

cxx=${CXX:-c++}
flags=(-O3 -DNDEBUG -fopenmp -std=gnu++17)
# Loops and functions on 64-byte boundaries, so that where the two copies' code happens to land moves
# their times less (GCC; clang takes the function alignment only).
if "$cxx" --version 2>/dev/null | grep -qi clang; then
  flags+=(-falign-functions=64)
else
  flags+=(-falign-functions=64 -falign-loops=64)
fi
echo "run.sh: old $old ($old_inc), new $([ "$null" = 1 ] && echo "= old (--null)" || echo "${new:-working tree}") ($new_inc)"
"$cxx" "${flags[@]}" -I"$old_inc" -DAB_NS=tinycnn_old -DAB_FN=ab_gemm_old -c "$here/side.cpp" -o "$build/old.o" &
pid=$!
"$cxx" "${flags[@]}" -I"$new_inc" -DAB_NS=tinycnn_new -DAB_FN=ab_gemm_new -c "$here/side.cpp" -o "$build/new.o"
wait "$pid"
"$cxx" "${flags[@]}" -I"$new_inc" "$here/ab_main.cpp" "$build/old.o" "$build/new.o" -o "$build/ab_gemm"
"$build/ab_gemm" "${args[@]}"
