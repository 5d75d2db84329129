#!/usr/bin/env bash
# Long soak: N random seeds (default 100,000) for each member count, every engine built.
# Not part of CI. Usage: scripts/soak.sh [seeds] [engine] [first seed]; JOBS sets the parallel runs
# (use 1 on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-100000}
engine=${2:-raft}
first=${3:-1}
jobs=${JOBS:-1}
scripts/build.sh ballot-sim
exec build/bin/ballot-sim --engine "$engine" --seeds "$seeds" --first-seed "$first" \
  --members 1,3,5,7 --jobs "$jobs"
