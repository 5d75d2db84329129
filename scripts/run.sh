#!/usr/bin/env bash
# The run command: installs what is missing, builds, and runs Ballot.
#
# Runs `ballot dev`: a local 3-member cluster on 127.0.0.1 (client ports 2379, 2381, 2383), with
# data in ./ballot-data, that etcdctl can talk to; Ctrl-C stops it. Arguments go to `ballot dev`
# (e.g. `scripts/run.sh --engine multipaxos --members 5`; see `build/bin/ballot dev --help`).
#
# Until the member itself (`ballot serve`) is built, this instead runs the consensus engine the way
# the tests do: a simulated 3-member cluster under faults, with every safety check on.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh

help=$(build/bin/ballot --help 2>/dev/null || true)
if grep -qE '^ +dev( |$)' <<<"$help" && grep -qE '^ +serve( |$)' <<<"$help"; then
  exec build/bin/ballot dev "$@"
fi

echo
echo "ballot: the etcd-compatible server is not built yet; running a simulated 3-member Raft"
echo "cluster under crashes, partitions and message loss (20 seeds), with all checkers on:"
echo
exec build/bin/ballot-sim --engine raft --members 3 --seeds 20 "$@"
