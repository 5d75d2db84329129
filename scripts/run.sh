#!/usr/bin/env bash
# The run command: installs what is missing, builds, and runs Ballot.
#
# Ballot's member process (`ballot serve`, `ballot dev`: a local 3-member cluster for etcdctl)
# is not built yet; until it is, this runs the consensus engine the way the tests do: a simulated
# 3-member cluster under faults, with every safety check on, and prints what happened.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh

if build/bin/ballot --help 2>/dev/null | grep -qE '^ +dev( |$)'; then
  exec build/bin/ballot dev "$@"
fi

echo
echo "ballot: the etcd-compatible server is not built yet; running a simulated 3-member Raft"
echo "cluster under crashes, partitions and message loss (20 seeds), with all checkers on:"
echo
exec build/bin/ballot-sim --engine raft --members 3 --seeds 20 "$@"
