#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test tier that exists.
#   tier 1  unit tests (ctest)
#   tier 2  simulator: scripted scenarios, random seeds for 1, 3, 5 and 7 members, and proof that
#           each deliberately broken engine variant is caught
#   tiers 1 and 2 again, briefly, under AddressSanitizer and UBSan
#   tier 3  integration: real `ballot serve` processes on loopback, etcdctl as the client
#           (tests/e2e), for each engine
#   tier 4  a bounded smoke run of `ballot bench` (the full comparison with etcd is
#           bench/compare.sh, not part of the tests)
# SIM_SEEDS overrides the number of random seeds per member count (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_SEEDS=${SIM_SEEDS:-500}
ENGINES=${ENGINES:-raft multipaxos}

step() { printf '\n=== %s ===\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "build"
scripts/build.sh

step "tier 1: unit tests"
ctest --test-dir build -L unit --output-on-failure -j 2

step "tier 2: simulator scenarios"
ctest --test-dir build -L sim --output-on-failure -j 2

step "tiers 1 and 2 under AddressSanitizer and UBSan (unit tests, scenarios, 50 seeds per count)"
BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_ARGS=-DBALLOT_SANITIZE=ON \
  scripts/build.sh ballot-unit-tests ballot-sim-tests ballot-sim
# A failed run is run once more and the log says so loudly; a failure that repeats fails the tier.
# (The one failure seen here, a double free in grpc_cq_internal_unref, was ours: a grpc::Channel
# released on a gRPC callback thread; fixed in e1426be. A retry that passes is still a bug to find.)
if ! build-asan/bin/ballot-unit-tests --gtest_brief=1; then
  echo "=== retrying the unit tests under AddressSanitizer once ==="
  build-asan/bin/ballot-unit-tests --gtest_brief=1
  echo "WARNING: unit tests under AddressSanitizer passed on retry"
fi
build-asan/bin/ballot-sim-tests --gtest_brief=1
for engine in $ENGINES; do
  build-asan/bin/ballot-sim --engine "$engine" --seeds 50 --members 1,3,5,7
done

variants=0
for engine in $ENGINES; do
  step "tier 2: simulator, $engine, $SIM_SEEDS seeds per member count"
  build/bin/ballot-sim --engine "$engine" --seeds "$SIM_SEEDS" --members 1,3,5,7

  step "tier 2: broken $engine variants must be caught"
  if ! caught_out=$(scripts/check-broken-variants.sh "$engine"); then
    echo "$caught_out"
    exit 1
  fi
  echo "$caught_out"
  variants=$((variants + $(grep -c '^caught:' <<<"$caught_out")))
done

# Integration tests: every test in tests/e2e against each engine. A test that fails is run once
# more, alone; if it then passes, the log says so loudly ("passed on retry") and the run goes on,
# so that one timing-sensitive test on a loaded machine does not hide the rest; a test that fails
# twice fails the tier. E2E_SKIP names tests not to run (for local use; CI runs them all).
E2E_SKIP=${E2E_SKIP-}
e2e_tests=()
for t in tests/e2e/test_*.sh; do
  name=$(basename "$t" .sh)
  if [[ " $E2E_SKIP " != *" $name "* ]]; then e2e_tests+=("$name"); fi
done
e2e=0
if build/bin/ballot --help | grep -q '^  serve'; then
  for engine in $ENGINES; do
    step "tier 3: integration tests against ballot serve, $engine"
    e2e_log=$(mktemp)
    if tests/e2e/run.sh --server ballot --engine "$engine" "${e2e_tests[@]}" | tee "$e2e_log"; then
      e2e=$((e2e + $(sed -n 's/^e2e summary: \([0-9]*\) passed.*/\1/p' "$e2e_log")))
    else
      failed=$(sed -n 's/^failed: \([a-z_0-9 ]*\)(outputs.*/\1/p' "$e2e_log")
      [[ -n "$failed" ]] || exit 1
      echo "=== retrying once: $failed ==="
      # shellcheck disable=SC2086
      tests/e2e/run.sh --server ballot --engine "$engine" $failed
      echo "WARNING: passed on retry ($engine): $failed"
      e2e=$((e2e + ${#e2e_tests[@]}))
    fi
    rm -f "$e2e_log"
  done
else
  echo "tier 3 skipped: build/bin/ballot has no serve command"
fi

step "tier 4: ballot bench smoke run against a 1-member etcd"
bench/smoke.sh

# One closing line for whoever reads the log: every check above passed, or we would not be here.
unit=$(ctest --test-dir build -N -L unit | sed -n 's/^Total Tests: //p')
scenarios=$(ctest --test-dir build -N -L sim | sed -n 's/^Total Tests: //p')
engines=$(wc -w <<<"$ENGINES")
runs=$((engines * SIM_SEEDS * 4))

step "all tiers passed"
echo "unit tests $unit, scenarios $scenarios, simulator runs $runs, broken variants caught $variants," \
  "integration tests $e2e, bench smoke 1"
echo "summary: $((unit + scenarios + runs + variants + e2e + 1)) passed, 0 failed"
