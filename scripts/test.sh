#!/usr/bin/env bash
# README command 2: build what changed and run every test (C++ unit and property tests, CLI
# end-to-end tests; Python tests join as they land) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SHADOWSIM_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${SHADOWSIM_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
