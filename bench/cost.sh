#!/usr/bin/env bash
# What one operation costs a cluster: CPU time and context switches per operation, summed over the
# three members and split by thread name, for one workload of `ballot bench` against a fresh
# 3-member cluster of etcd, Ballot with Raft, or Ballot with Multi-Paxos.
#
# Usage: bench/cost.sh [--system etcd|ballot-raft|ballot-multipaxos] [--duration SECONDS]
#                      [--role all|leader|follower] -- BENCH_ARGS...
#   e.g. bench/cost.sh --system etcd --role leader -- put --clients 1 --conns 1 --sequential-keys
#   --role   where the load goes: all three endpoints (default), the leader, or one follower
# Environment: BALLOT, ETCD as for compare.sh (members.sh).
#
# The figures come from /proc/<pid>/task/*/{stat,status} read before and after the run (threads
# that started or ended during it are left out), so they include the bench's own setup (a few
# calls) but not the load generator. Go runs goroutines on a few OS threads, so etcd's split by
# thread says little; its totals compare with Ballot's. Members listen on 127.0.0.1:2391m
# (clients) and 2491m (peers); every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/members.sh
source bench/members.sh
SYSTEM=ballot-raft
DURATION=5
ROLE=all
while [[ $# -gt 0 ]]; do
  case "$1" in
    --system) SYSTEM=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --role) ROLE=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "cost: unknown argument $1 (see the usage at the top of bench/cost.sh)" >&2; exit 2 ;;
  esac
done
case "$SYSTEM" in etcd | ballot-raft | ballot-multipaxos) ;; *)
  echo "cost: --system must be etcd, ballot-raft or ballot-multipaxos" >&2; exit 2 ;;
esac
case "$ROLE" in all | leader | follower) ;; *)
  echo "cost: --role must be all, leader or follower" >&2; exit 2 ;;
esac
[[ $# -gt 0 ]] || { echo "cost: give the workload after --, e.g. -- put --clients 1" >&2; exit 2; }
check_tools cost
HZ=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/ballot-cost.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

initial=""
for m in 1 2 3; do initial+="${initial:+,}m$m=http://127.0.0.1:2491$m"; done
ENDPOINTS=()
for m in 1 2 3; do
  start_member "$SYSTEM" "m$m" "$WORK/m$m" "http://127.0.0.1:2391$m" "http://127.0.0.1:2491$m" \
    "$initial" cost
  PIDS+=("$MEMBER_PID")
  ENDPOINTS+=("127.0.0.1:2391$m")
done
for ep in "${ENDPOINTS[@]}"; do
  wait_ready "$ep" $((SECONDS + 30)) || { echo "cost: $ep did not become ready" >&2; exit 1; }
done
all=$(IFS=,; echo "${ENDPOINTS[*]}")
target=$all
if [[ $ROLE != all ]]; then
  # Both systems answer `status` alike; the leader's line says so in its 5th field.
  leader=$("$BALLOT" status --endpoints "$all" -w simple | awk -F', ' '$5 == "true" {print $1}')
  target=$leader
  if [[ $ROLE == follower ]]; then
    for ep in "${ENDPOINTS[@]}"; do [[ $ep != "$leader" ]] && { target=$ep; break; }; done
  fi
fi

# One line per thread: pid/tid name cpu_ticks voluntary+involuntary_switches
snapshot() {
  local pid task
  for pid in "${PIDS[@]}"; do
    for task in /proc/"$pid"/task/*; do
      [[ -r $task/stat ]] || continue
      printf '%s %s %s %s\n' "$pid/${task##*/}" "$(tr ' ' '_' <"$task/comm")" \
        "$(sed 's/.*) //' "$task/stat" | awk '{print $12 + $13}')" \
        "$(awk '/ctxt_switches/ {s += $2} END {print s}' "$task/status")"
    done
  done | sort
}
snapshot >"$WORK/before"
"$BALLOT" bench "$@" --endpoints "$target" --duration "$DURATION" --json >"$WORK/bench.json"
snapshot >"$WORK/after"

ops=$(jq -r ".ok" "$WORK/bench.json")
jq -r '"\(.workload // "run"): \(.throughput | floor) ops/s, p50 \(.latency_ms.p50) ms, errors \(.errors)"' \
  "$WORK/bench.json"
join "$WORK/before" "$WORK/after" | awk -v ops="$ops" -v hz="$HZ" -v sys="$SYSTEM" '
  { name = $2; sub(/[0-9]+$/, "", name)  # ballot-rpc0..15 -> ballot-rpc
    cpu[name] += $6 - $3; cs[name] += $7 - $4; tcpu += $6 - $3; tcs += $7 - $4 }
  END {
    if (ops <= 0) { print "cost: the run completed no operation" > "/dev/stderr"; exit 1 }
    printf "%s, %d operations: %.0f us CPU and %.1f context switches per operation\n",
           sys, ops, tcpu / hz * 1e6 / ops, tcs / ops
    for (n in cpu) if (cpu[n] > 0 || cs[n] >= ops / 10)
      printf "  %-18s %8.0f us CPU/op  %6.1f switches/op\n", n, cpu[n] / hz * 1e6 / ops, cs[n] / ops
  }' | { read -r head; echo "$head"; sort -k2 -n -r; }
