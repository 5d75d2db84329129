#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test tier that exists.
#   tier 1  unit tests (ctest)
#   tier 2  simulator: scripted scenarios, random seeds for 1, 3, 5 and 7 members, and proof that
#           each deliberately broken engine variant is caught
# Tiers 3 (integration) and 4 (benchmarks) arrive with the server.
# SIM_SEEDS overrides the number of random seeds per member count (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_SEEDS=${SIM_SEEDS:-500}
ENGINES=${ENGINES:-raft}

step() { printf '\n=== %s ===\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "build"
scripts/build.sh

step "tier 1: unit tests"
ctest --test-dir build -L unit --output-on-failure -j 2

step "tier 2: simulator scenarios"
ctest --test-dir build -L sim --output-on-failure -j 2

for engine in $ENGINES; do
  step "tier 2: simulator, $engine, $SIM_SEEDS seeds per member count"
  build/bin/ballot-sim --engine "$engine" --seeds "$SIM_SEEDS" --members 1,3,5,7

  step "tier 2: broken $engine variants must be caught"
  scripts/check-broken-variants.sh "$engine"
done

step "all tiers passed"
