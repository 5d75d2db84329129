# shellcheck shell=bash
# The e2e tier's toolkit, sourced by every tests/e2e/test_*.sh (see docs/e2e.md).
#
# It starts a cluster of real member processes on 127.0.0.1 with etcd's own flags only, so the same
# test runs against etcd and against `ballot serve`:
#   E2E_SERVER        the member command (default: etcd; e.g. "build/bin/ballot serve")
#   E2E_SERVER_ARGS   extra arguments for every member (e.g. "--engine multipaxos")
#   E2E_CTL           the client (default: etcdctl, spoken to with ETCDCTL_API=3)
#   E2E_KEEP=1        keep the data directory after the test (it is printed)
# Every wait is bounded; every process the test starts is stopped by a trap on exit, failure or
# Ctrl-C; on failure the tail of each member's log is printed.
set -euo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_SERVER=${E2E_SERVER:-etcd}
E2E_SERVER_ARGS=${E2E_SERVER_ARGS:-}
E2E_CTL=${E2E_CTL:-etcdctl}
export ETCDCTL_API=3

# Fast timing on loopback: a 2-core machine shared with builds still elects in well under a second.
E2E_HEARTBEAT_MS=${E2E_HEARTBEAT_MS:-50}
E2E_ELECTION_MS=${E2E_ELECTION_MS:-500}
E2E_SNAPSHOT_COUNT=${E2E_SNAPSHOT_COUNT:-10000}
# Bound on every "wait until" in this file, in seconds.
E2E_WAIT_S=${E2E_WAIT_S:-20}
# Members per test: client port base+2i, peer port base+2i+1, so a block of 20 ports holds 9.
E2E_MEMBERS_MAX=9

E2E_TEST=$(basename "${0%.sh}")
E2E_DIR=""
E2E_PORT_BASE=""
E2E_CLUSTER_TOKEN=""
declare -A E2E_PID=()          # member index -> pid of its running process
declare -A E2E_CLUSTER=()      # member index -> --initial-cluster it was first started with
declare -A E2E_STATE=()        # member index -> --initial-cluster-state it was first started with
declare -A E2E_EXTRA=()        # member index -> extra flags it was first started with
E2E_BG_PIDS=()                 # helper processes (watchers, lock holders) to stop on exit

e2e_log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "$E2E_TEST" "$*" >&2; }

e2e_fail() {
  printf '[%s %s] FAIL: %s\n' "$(date +%H:%M:%S)" "$E2E_TEST" "$*" >&2
  exit 1
}

e2e_skip() {
  printf '[%s %s] SKIP: %s\n' "$(date +%H:%M:%S)" "$E2E_TEST" "$*" >&2
  exit 77
}

# The server's family, for the few checks that differ (documented where used).
e2e_server_is_etcd() { [[ $(basename "${E2E_SERVER%% *}") == etcd ]]; }

e2e_client_port() { echo $((E2E_PORT_BASE + 2 * $1)); }
e2e_peer_port() { echo $((E2E_PORT_BASE + 2 * $1 + 1)); }
e2e_client_url() { echo "http://127.0.0.1:$(e2e_client_port "$1")"; }
e2e_peer_url() { echo "http://127.0.0.1:$(e2e_peer_port "$1")"; }
e2e_endpoint() { echo "127.0.0.1:$(e2e_client_port "$1")"; }

# Members whose process this test runs now, in index order.
e2e_members() { printf '%s\n' "${!E2E_PID[@]}" | sort -n; }

# All running members' endpoints, comma-separated.
e2e_endpoints() {
  local i out=()
  for i in $(e2e_members); do out+=("$(e2e_endpoint "$i")"); done
  local IFS=,
  echo "${out[*]}"
}

e2e_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# e2e_init PORT_BASE: claims the port block [PORT_BASE, PORT_BASE+20) and a fresh temp directory.
e2e_init() {
  E2E_PORT_BASE=$1
  ((E2E_PORT_BASE >= 32000 && E2E_PORT_BASE + 20 <= 33000)) || e2e_fail "port base $1 outside 32000-32999"
  local port
  for ((port = E2E_PORT_BASE; port < E2E_PORT_BASE + 20; port++)); do
    e2e_port_in_use "$port" && e2e_fail "port $port is already in use (a leftover member?)"
  done
  E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ballot-e2e-$E2E_TEST.XXXXXX")
  E2E_CLUSTER_TOKEN="e2e-$E2E_TEST-$$"
  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  e2e_log "server: $E2E_SERVER $E2E_SERVER_ARGS; dir $E2E_DIR; ports $E2E_PORT_BASE+"
}

e2e_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The test is over and its data is thrown away, so no member needs a graceful stop (a leader
  # stopped with SIGTERM first tries to hand over leadership, which only costs time).
  local pid pids
  pids=($(e2e_descendants "${E2E_BG_PIDS[@]}"))
  for pid in "${E2E_PID[@]}"; do pids+=("$pid"); done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((rc != 0 && rc != 77)) && [[ -n $E2E_DIR ]]; then
    local log
    for log in "$E2E_DIR"/*.log; do
      [[ -e $log ]] || continue
      printf '\n----- last 30 lines of %s -----\n' "$log" >&2
      tail -n 30 "$log" >&2
    done
  fi
  if [[ -n $E2E_DIR ]]; then
    if [[ ${E2E_KEEP:-0} == 1 ]]; then
      e2e_log "kept $E2E_DIR"
    else
      rm -rf "$E2E_DIR"
    fi
  fi
  exit "$rc"
}

# e2e_wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails the
# test with WHAT after SECONDS.
e2e_wait_until() {
  local limit_s=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit_s))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || e2e_fail "timed out after ${limit_s}s waiting for: $what"
    sleep 0.1
  done
}

# e2e_ctl I ARGS...: the client against member I only.
e2e_ctl() {
  local i=$1
  shift
  "$E2E_CTL" --endpoints="$(e2e_endpoint "$i")" --dial-timeout=2s --command-timeout=5s "$@"
}

# e2e_ctl_all ARGS...: the client against every running member (it fails over between them).
e2e_ctl_all() {
  "$E2E_CTL" --endpoints="$(e2e_endpoints)" --dial-timeout=2s --command-timeout=5s "$@"
}

# e2e_start_member I STATE CLUSTER [EXTRA_FLAGS...]: starts member I in the background.
e2e_start_member() {
  local i=$1 state=$2 cluster=$3
  shift 3
  ((i >= 1 && i <= E2E_MEMBERS_MAX)) || e2e_fail "member index $i out of range"
  E2E_STATE[$i]=$state
  E2E_CLUSTER[$i]=$cluster
  E2E_EXTRA[$i]="$*"
  e2e_launch "$i"
}

# Starts member I with the flags it was first started with. A member whose data directory exists
# takes its identity from there and ignores the --initial-* flags, exactly as etcd does.
e2e_launch() {
  local i=$1 server_cmd server_args extra
  read -r -a server_cmd <<<"$E2E_SERVER"
  read -r -a server_args <<<"$E2E_SERVER_ARGS"
  read -r -a extra <<<"${E2E_EXTRA[$i]}"
  echo "=== $(date +%H:%M:%S.%N) start m$i" >>"$E2E_DIR/m$i.log"
  "${server_cmd[@]}" \
    --name "m$i" \
    --data-dir "$E2E_DIR/m$i.data" \
    --listen-client-urls "$(e2e_client_url "$i")" \
    --advertise-client-urls "$(e2e_client_url "$i")" \
    --listen-peer-urls "$(e2e_peer_url "$i")" \
    --initial-advertise-peer-urls "$(e2e_peer_url "$i")" \
    --initial-cluster "${E2E_CLUSTER[$i]}" \
    --initial-cluster-state "${E2E_STATE[$i]}" \
    --initial-cluster-token "$E2E_CLUSTER_TOKEN" \
    --heartbeat-interval "$E2E_HEARTBEAT_MS" \
    --election-timeout "$E2E_ELECTION_MS" \
    --snapshot-count "$E2E_SNAPSHOT_COUNT" \
    "${server_args[@]}" "${extra[@]}" >>"$E2E_DIR/m$i.log" 2>&1 &
  E2E_PID[$i]=$!
}

e2e_healthy() { e2e_ctl "$1" endpoint health --command-timeout=1s; }

# e2e_wait_healthy I...: waits until each member answers a linearizable health check.
e2e_wait_healthy() {
  local i
  for i in "$@"; do
    e2e_wait_until "$E2E_WAIT_S" "member m$i healthy" e2e_healthy "$i"
  done
}

# e2e_start_cluster N [EXTRA_FLAGS...]: starts members 1..N as a new cluster, waits until healthy.
e2e_start_cluster() {
  local n=$1 i parts=()
  shift
  for ((i = 1; i <= n; i++)); do parts+=("m$i=$(e2e_peer_url "$i")"); done
  local IFS=,
  local cluster="${parts[*]}"
  unset IFS
  for ((i = 1; i <= n; i++)); do e2e_start_member "$i" new "$cluster" "$@"; done
  e2e_wait_healthy $(seq 1 "$n")
  e2e_log "cluster of $n healthy"
}

# e2e_kill I: kill -9 member I (its data directory stays).
e2e_kill() {
  local pid=${E2E_PID[$1]:?member $1 is not running}
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "E2E_PID[$1]"
  echo "=== $(date +%H:%M:%S.%N) killed -9 m$1" >>"$E2E_DIR/m$1.log"
}

e2e_stop() { kill -STOP "${E2E_PID[$1]:?member $1 is not running}"; }
e2e_cont() { kill -CONT "${E2E_PID[$1]:?member $1 is not running}"; }

# e2e_restart I: starts member I again from its data directory and waits until it is healthy.
e2e_restart() {
  [[ -z ${E2E_PID[$1]:-} ]] || e2e_fail "m$1 is still running"
  e2e_launch "$1"
  e2e_wait_healthy "$1"
}

e2e_json_field() { grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }

# The member id of member I (decimal, as endpoint status prints it) and the leader it believes in.
e2e_member_id() { e2e_ctl "$1" endpoint status -w json | e2e_json_field member_id; }

e2e_is_leader() {
  local json id leader
  json=$(e2e_ctl "$1" endpoint status -w json --command-timeout=1s) || return 1
  id=$(e2e_json_field member_id <<<"$json")
  leader=$(e2e_json_field leader <<<"$json")
  [[ -n $id && $id == "$leader" ]]
}

# e2e_leader [EXCEPT]: prints the index of the member that says it is the leader (skipping member
# EXCEPT, e.g. a stopped one), waiting until there is one.
e2e_leader() {
  local except=${1:-0} deadline=$((SECONDS + E2E_WAIT_S)) i
  while ((SECONDS < deadline)); do
    for i in $(e2e_members); do
      ((i == except)) && continue
      if e2e_is_leader "$i" 2>/dev/null; then
        echo "$i"
        return 0
      fi
    done
    sleep 0.1
  done
  e2e_fail "no leader among members $(e2e_members | tr '\n' ' ')after ${E2E_WAIT_S}s"
}

# The hex member id of member I, from member list (simple output), found by its peer URL (a member
# that has not started yet has no name).
e2e_member_hex_id() {
  e2e_ctl_all member list | awk -F', ' -v url="$(e2e_peer_url "$1")" '$4 == url { print $1 }'
}

# e2e_member_add I [--learner]: adds member I to the running cluster and starts it. etcd refuses a
# reconfiguration until its members have been connected for 5 s ("not enough started members"),
# so a refusal is retried until E2E_WAIT_S.
e2e_member_add() {
  local i=$1 out="" cluster deadline=$((SECONDS + E2E_WAIT_S))
  shift
  until out=$(e2e_ctl_all member add "m$i" --peer-urls="$(e2e_peer_url "$i")" "$@" 2>&1); do
    ((SECONDS < deadline)) || e2e_fail "member add m$i: $out"
    sleep 0.2
  done
  cluster=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$out")
  [[ -n $cluster ]] || e2e_fail "member add m$i printed no ETCD_INITIAL_CLUSTER: $out"
  e2e_start_member "$i" existing "$cluster"
}

# e2e_member_remove I: removes member I from the cluster; a removed member stops by itself, and
# is killed if it has not after E2E_WAIT_S.
e2e_member_remove() {
  local i=$1 id
  id=$(e2e_member_hex_id "$i")
  [[ -n $id ]] || e2e_fail "m$i is not in the member list"
  local pid=${E2E_PID[$i]:-}
  unset "E2E_PID[$i]"
  local out deadline=$((SECONDS + E2E_WAIT_S))
  until out=$(e2e_ctl_all member remove "$id" 2>&1); do
    ((SECONDS < deadline)) || e2e_fail "member remove m$i ($id): $out"
    sleep 0.2
  done
  if [[ -n $pid ]]; then
    local deadline=$((SECONDS + E2E_WAIT_S))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}

# e2e_bg LOGNAME COMMAND...: runs a helper process in the background, output to $E2E_DIR/LOGNAME.log;
# sets E2E_LAST_BG to its pid. COMMAND may be e2e_ctl I ...; either way the pid is the client's own
# (not a subshell's), so that kill -9 on it kills the client. It and its children are stopped on
# exit.
e2e_bg() {
  local name=$1
  shift
  if [[ $1 == e2e_ctl ]]; then
    local i=$2
    shift 2
    set -- "$E2E_CTL" --endpoints="$(e2e_endpoint "$i")" --dial-timeout=2s --command-timeout=5s "$@"
  fi
  (exec "$@") >"$E2E_DIR/$name.log" 2>&1 &
  E2E_LAST_BG=$!
  E2E_BG_PIDS+=("$E2E_LAST_BG")
}

# e2e_kill_bg SIGNAL PID: signals a helper process; with KILL, also reaps it quietly.
e2e_kill_bg() {
  kill "-$1" "$2" 2>/dev/null || true
  if [[ $1 == KILL || $1 == 9 ]]; then wait "$2" 2>/dev/null || true; fi
}

# Prints the pids whose parent is PID, from /proc (no dependency on ps).
e2e_children_of() {
  local target=$1 stat line fields
  for stat in /proc/[0-9]*/stat; do
    { read -r line <"$stat"; } 2>/dev/null || continue
    read -r -a fields <<<"${line##*) }" # after "pid (comm) ": state, ppid, ...
    if [[ ${fields[1]:-} == "$target" ]]; then
      stat=${stat#/proc/}
      echo "${stat%/stat}"
    fi
  done
}

# Prints each PID and all its descendants.
e2e_descendants() {
  local pid child
  for pid in "$@"; do
    echo "$pid"
    for child in $(e2e_children_of "$pid"); do e2e_descendants "$child"; done
  done
}

# e2e_dump I PREFIX: member I's own (serializable) view of every key and value under PREFIX.
e2e_dump() { e2e_ctl "$1" get "$2" --prefix --consistency=s; }

# e2e_wait_converged PREFIX: waits until every running member's own view of PREFIX equals the
# cluster's linearizable view.
e2e_wait_converged() {
  local prefix=$1 want i
  want=$(e2e_ctl_all get "$prefix" --prefix) || e2e_fail "linearizable get of $prefix failed"
  for i in $(e2e_members); do
    e2e_wait_until "$E2E_WAIT_S" "m$i's copy of $prefix matches the cluster's" \
      e2e_dump_is "$i" "$prefix" "$want"
  done
}
e2e_dump_is() { [[ $(e2e_dump "$1" "$2") == "$3" ]]; }

# Assertions. Each names what it checked, so a failure reads on its own.
expect_eq() {
  [[ $1 == "$2" ]] || e2e_fail "$3: expected [$2], got [$1]"
}

expect_contains() {
  [[ $1 == *"$2"* ]] || e2e_fail "$3: expected output containing [$2], got [$1]"
}

# expect_fails WHAT MESSAGE COMMAND...: COMMAND must fail and print MESSAGE (stdout or stderr).
expect_fails() {
  local what=$1 message=$2 out
  shift 2
  if out=$("$@" 2>&1); then e2e_fail "$what: expected a failure, it succeeded: $out"; fi
  [[ $out == *"$message"* ]] || e2e_fail "$what: expected [$message] in the error, got [$out]"
}

# e2e_file_has_lines FILE N: true once FILE has at least N lines.
e2e_file_has_lines() { [[ -f $1 && $(wc -l <"$1") -ge $2 ]]; }
