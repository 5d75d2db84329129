#!/usr/bin/env bash
# Proves the simulator can fail: every deliberately broken variant of the engine must be caught
# within a bounded number of seeds. Prints, for each, the seed that caught it and how many it took.
# Usage: scripts/check-broken-variants.sh [raft|multipaxos]
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${1:-raft}
max_seeds=${MAX_SEEDS:-300}
case "$engine" in
  raft)
    bugs=(commit-old-term vote-before-persist read-without-quorum append-without-log-matching
          ignore-higher-term reapply-after-restart) ;;
  multipaxos)
    bugs=(paxos-accept-lower-ballot paxos-ignore-promised-values paxos-promise-before-persist
          paxos-chosen-without-quorum paxos-skip-gap paxos-read-without-quorum) ;;
  *)
    echo "unknown engine: $engine (expected raft or multipaxos)" >&2
    exit 2 ;;
esac

failed=0
for bug in "${bugs[@]}"; do
  if out=$(build/bin/ballot-sim --engine "$engine" --bug "$bug" --expect-failure \
             --seeds "$max_seeds" --members 3,5 --jobs 1 2>&1); then
    echo "$out" | grep '^caught:' || true
  else
    echo "$out" | tail -n 3
    echo "NOT CAUGHT within $max_seeds seeds: $bug"
    failed=1
  fi
done
exit $failed
