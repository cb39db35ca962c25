#!/usr/bin/env bash
# README command 1: install the Debian packages shadowsim needs (idempotent), configure and build
# in ./build (Release), then run the main job on the shipped default config.
#   scripts/setup.sh            install + build + run the main job
#   SHADOWSIM_SKIP_RUN=1 ...     install + build only
set -euo pipefail
cd "$(dirname "$0")/.."

# One list, kept here only (docs/setup.md explains each group). Names are Debian 12 (bookworm).
PACKAGES=(
  # build
  g++ cmake ninja-build pkg-config git
  # C++ libraries
  libsystemc-dev nlohmann-json3-dev libfmt-dev libboost-program-options-dev libzstd-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # Python side: bindings, analysis, notebooks, sweeps
  python3 python3-dev python3-venv pybind11-dev python3-pybind11 python3-pytest python3-numpy
  python3-pandas python3-matplotlib python3-nbconvert python3-nbclient python3-nbformat
  python3-ipykernel python3-dask python3-distributed python3-hypothesis
  # robustness: the libFuzzer targets (fuzz/, scripts/fuzz.sh)
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}" >&2
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} Debian packages present" >&2
fi

BUILD_DIR=${SHADOWSIM_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  # SHADOWSIM_CMAKE_ARGS: extra configure options, e.g. -DSHADOWSIM_WERROR=ON (CI uses it).
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${SHADOWSIM_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
# /usr/bin/python3 can `import shadowsim` (a .pth file in the user's site-packages pointing at
# $BUILD_DIR/python; docs/python.md).
cmake --build "$BUILD_DIR" --target shadowsim_python_pth
# The kernel-build workload of configs/kbuild-3files.json, made from the committed recording
# (docs/workloads.md; ~1 s, 15 MB under out/, which git ignores).
"$BUILD_DIR/sim/shadowsim" trace perf-import tests/workloads/data/kbuild-3files.perf.txt.zst \
  --locality workloads/traces/kbuild-locality.json -o out/workloads/kbuild-3files/manifest.json
"$BUILD_DIR/sim/shadowsim" trace perf-import tests/workloads/data/kbuild-j16.perf.txt.zst \
  --locality workloads/traces/kbuild-locality.json -o out/workloads/kbuild-j16/manifest.json

if [ -z "${SHADOWSIM_SKIP_RUN:-}" ]; then
  # The main job: replay the shipped real trace on the default machine (out/default/stats.json).
  "$BUILD_DIR/sim/shadowsim" run configs/default.json -o out/default
fi
