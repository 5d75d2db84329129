#!/usr/bin/env bash
# Long soak: N random seeds (default 100,000) for each member count, every engine built.
# Not part of CI. Usage: scripts/soak.sh [seeds] [engine]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-100000}
engine=${2:-raft}
scripts/build.sh ballot-sim
exec build/bin/ballot-sim --engine "$engine" --seeds "$seeds" --members 1,3,5,7
