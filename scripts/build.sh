#!/usr/bin/env bash
# Configures and builds Ballot into build/ (binaries in build/bin/). Usage: scripts/build.sh [target...]
# BUILD_DIR, BUILD_TYPE, JOBS and CMAKE_ARGS (extra configure arguments) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-2}

# Let ccache share results between clones in different folders (CI builds a fresh clone).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}

if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  # shellcheck disable=SC2086  # CMAKE_ARGS is a list of arguments.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$JOBS" ${1:+--target "$@"}
