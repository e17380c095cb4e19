#!/usr/bin/env bash
# Builds and runs model2 (batch 32, 3x150x150, 6 classes) in dlib 19.24 and tiny-dnn 1.0.0a3, Debian's
# packages, for the CPU comparison with tinycnn. README.md in this folder says what the numbers mean.
#
#   bench/other_libs/run.sh [--threads T] [--steps N] [--batch B] [--only dlib|tinydnn] [--build-dir DIR]
#
# Defaults: --threads 2 --steps 5 --batch 32 --build-dir build-other-libs (gitignored, /build*/).
# Installs what is missing (sudo apt-get when not root): libdlib-dev + OpenBLAS for dlib; tiny-dnn and
# the headers its package needs but does not depend on (libcereal-dev, libgemmlowp-dev, libstb-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

threads=2
steps=5
batch=32
only=""
build="$root/build-other-libs"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
case "$only" in ""|dlib|tinydnn) ;; *) echo "run.sh: --only dlib or --only tinydnn" >&2; exit 2 ;; esac

# --- dependencies -------------------------------------------------------------------------------
pkgs=(g++ pkg-config libcli11-dev libdlib-dev libopenblas-dev tiny-dnn libcereal-dev libgemmlowp-dev libstb-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "run.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- build (only when a source is newer than its binary) -----------------------------------------
mkdir -p "$build/include/third_party"
# tiny-dnn's headers include "third_party/stb/stb_image.h"; Debian ships stb in /usr/include/stb.
ln -sfn /usr/include/stb "$build/include/third_party/stb"

CXX=${CXX:-c++}
# dlib: the flags and libraries of its pkg-config file (libdlib.so + libblas/liblapack, which Debian's
# alternatives point at OpenBLAS here). Its layers are compiled into libdlib.so already.
dlib_flags=(-O3 $(pkg-config --cflags dlib-1))
dlib_libs=($(pkg-config --libs dlib-1))
# tiny-dnn (header-only): its OpenMP and AVX options, as its CMake's USE_OMP / USE_AVX set them
# (CNN_USE_OMP + -fopenmp; CNN_USE_AVX + -mavx: the AVX backend is only chosen when __AVX__ is defined).
# CNN_USE_GEMMLOWP is forced on by Debian's config.h (quantized layers only; not used by model2).
tinydnn_flags=(-O3 -fopenmp -mavx -DCNN_USE_OMP -DCNN_USE_AVX -I"$build/include" -pthread)

build_one() {  # name, flags..., --, libs...
  local name=$1; shift
  local src="$here/$name.cpp" bin="$build/$name"
  local flags=() libs=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done; shift
  libs=("$@")
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$here/bench_args.hpp" -nt "$bin" ] || [ "$0" -nt "$bin" ]; then
    echo "run.sh: building $bin"
    echo "  $CXX ${flags[*]} $src -o $bin ${libs[*]}"
    nice -n 10 "$CXX" "${flags[@]}" "$src" -o "$bin" "${libs[@]}"
  fi
}
[ "$only" != tinydnn ] && build_one dlib_model2 "${dlib_flags[@]}" -- "${dlib_libs[@]}"
[ "$only" != dlib ] && build_one tinydnn_model2 "${tinydnn_flags[@]}" -- -fopenmp

# --- run ------------------------------------------------------------------------------------------
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo "?")
echo "run.sh: batch $batch, $steps timed steps after 1 warm-up, $threads thread(s); $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "run.sh: libblas.so.3 -> $blas"
dlib_train="" dlib_infer="" td_train="" td_infer=""
if [ "$only" != tinydnn ]; then
  echo "== dlib"
  # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset: OpenBLAS picks its own kernel for this CPU (a
  # development VM sets Haswell, which on an AVX-512 machine would hold dlib to the AVX2 kernel).
  out=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads \
        "$build/dlib_model2" --batch "$batch" --steps "$steps" --threads "$threads")
  echo "$out"
  dlib_train=$(echo "$out" | sed -n 's/^train images\/s: //p')
  dlib_infer=$(echo "$out" | sed -n 's/^infer images\/s: //p')
fi
if [ "$only" != dlib ]; then
  echo "== tiny-dnn"
  out=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 \
        "$build/tinydnn_model2" --batch "$batch" --steps "$steps" --threads "$threads")
  echo "$out"
  td_train=$(echo "$out" | sed -n 's/^train images\/s: //p')
  td_infer=$(echo "$out" | sed -n 's/^infer images\/s: //p')
fi
echo "== model2, batch $batch, $threads thread(s): images/s"
printf '%-28s %10s %10s\n' library train infer
[ "$only" != tinydnn ] && printf '%-28s %10s %10s\n' "dlib 19.24 (OpenBLAS)" "$dlib_train" "$dlib_infer"
[ "$only" != dlib ] && printf '%-28s %10s %10s\n' "tiny-dnn 1.0.0a3 (AVX+OMP)" "$td_train" "$td_infer"
exit 0
