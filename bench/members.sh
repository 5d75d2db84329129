# shellcheck shell=bash
# Starting etcd and Ballot members for the scripts in bench/ (sourced, not run, from the project
# root). BALLOT and ETCD name the binaries (default build/bin/ballot, /usr/bin/etcd).

BALLOT_GIVEN=${BALLOT:-}  # Set: the caller's own binary, which check_tools does not build.
BALLOT=${BALLOT:-build/bin/ballot}
ETCD=${ETCD:-/usr/bin/etcd}

# start_member SYSTEM NAME DIR CLIENT_URL PEER_URL INITIAL_CLUSTER TOKEN: starts one member of
# SYSTEM (etcd, ballot-raft or ballot-multipaxos) in the background with its data in DIR/data and
# its output in DIR/log, with the same flags for every system; its pid is in MEMBER_PID.
start_member() {
  local system=$1 name=$2 dir=$3 client=$4 peer=$5 initial=$6 token=$7 cmd
  case "$system" in
    etcd) cmd=("$ETCD") ;;
    ballot-raft) cmd=("$BALLOT" serve --engine raft) ;;
    ballot-multipaxos) cmd=("$BALLOT" serve --engine multipaxos) ;;
  esac
  mkdir -p "$dir"
  cmd+=(--name "$name" --data-dir "$dir/data"
    --listen-client-urls "$client" --advertise-client-urls "$client"
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer"
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "$token")
  "${cmd[@]}" >"$dir/log" 2>&1 &
  # shellcheck disable=SC2034  # read by the sourcing script
  MEMBER_PID=$!
}

# wait_ready ENDPOINT DEADLINE: returns once a put through ENDPOINT (host:port) succeeds (the
# cluster has a leader and the member is connected), or fails once SECONDS passes DEADLINE.
wait_ready() {
  local endpoint=$1 deadline=$2
  until "$BALLOT" bench put --endpoints "$endpoint" --total 1 --clients 1 --conns 1 \
      --key-prefix bench-ready/ --timeout-ms 2000 --json >/dev/null 2>&1; do
    ((SECONDS > deadline)) && return 1
    sleep 0.2
  done
}

# check_tools SCRIPT: unless the caller named its own ballot binary (BALLOT_GIVEN set), installs
# the Debian packages that are missing and builds build/bin/ballot (each returns at once when there
# is nothing to do), so that the script runs from a clean clone; then exits with a message naming
# SCRIPT if ballot, etcd or jq is still missing.
check_tools() {
  local script=$1 tool
  if [[ -z ${BALLOT_GIVEN:-} ]]; then
    scripts/install-deps.sh >&2
    scripts/build.sh ballot >&2
  fi
  for tool in "$BALLOT" "$ETCD" jq; do
    if ! command -v "$tool" >/dev/null; then echo "$script: $tool not found" >&2; exit 2; fi
  done
}
