#!/usr/bin/env bash
# Every translation unit of the tests, examples and benchmarks through clang++ with OpenMP, syntax
# only (front end and template instantiation, no code generation): the library is header-only, so
# this is what a clang user with -fopenmp compiles. The suite builds with GCC, and a construct only
# GCC accepts went unnoticed until the twentieth session (winograd_transforms.hpp: 1,200 clang errors
# under -fopenmp). Needs clang and libomp-dev (scripts/install-deps.sh). About 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${TINYCNN_CLANG_BUILD_DIR:-build-clang}
CXX=${CXX_CLANG:-$(command -v clang++-14 || command -v clang++)}
CC=${CC_CLANG:-$(command -v clang-14 || command -v clang)}
# Configure only: the generated headers and compile_commands.json (precompiled headers and the
# tests' unity batches off, so each command is one file standing alone).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON -DTINYCNN_USE_OPENMP=ON \
  -DTINYCNN_TESTS_UNITY_BUILD=OFF >/dev/null
# One line per translation unit: its compile command with -fsyntax-only instead of the object file.
python3 - "$build/compile_commands.json" >"$build/syntax_commands.txt" <<'PY'
import json, shlex, sys
for e in json.load(open(sys.argv[1])):
    args = shlex.split(e["command"])
    out = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        out.append(a)
    if not any(a.startswith("-fopenmp") for a in out):
        sys.exit("check-clang: %s is compiled without OpenMP" % e["file"])
    print("cd %s && %s -fsyntax-only" % (shlex.quote(e["directory"]), " ".join(shlex.quote(a) for a in out)))
PY
n=$(wc -l <"$build/syntax_commands.txt")
echo "check-clang: $n translation units, $($CXX --version | head -1), -fopenmp, syntax only"
# -P2: the machine's two cores; every failure is printed, and any makes the exit status non-zero.
tr '\n' '\0' <"$build/syntax_commands.txt" | xargs -0 -P2 -I{} bash -c '{}'
echo "check-clang: all $n compile"
