#!/usr/bin/env bash
# Installs, from Debian's packages, whatever tinycnn's build, tests, examples and benchmarks need and
# this machine lacks. Safe to run again: apt-get skips what is already there.
set -euo pipefail
pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev libomp-dev
      libeigen3-dev libstb-dev doctest-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
      zlib1g-dev libhdf5-dev libopenblas-dev dataset-fashion-mnist python3 python3-numpy chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
