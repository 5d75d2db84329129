#!/usr/bin/env bash
# Ballot against etcd on this machine: the same workloads of `ballot bench` against a 3-member
# etcd cluster, a 3-member Ballot cluster with Raft, and one with Multi-Paxos.
#
# Usage: bench/compare.sh [--quick] [--reps N] [--duration SECONDS] [--out FILE]
#   --quick      1 repetition of 2 s per workload (a check that everything runs)
#   --reps N     repetitions (default 3; the table shows the median)
#   --duration   seconds per workload run (default 10)
#   --out FILE   also keep the raw results, one JSON object per run (default: a temp file)
#   --systems LIST    comma-separated subset of etcd,ballot-raft,ballot-multipaxos (default all)
#   --workloads LIST  comma-separated subset of the workload names below (default all)
# Environment: BALLOT (default build/bin/ballot, which is built first, after installing any
# missing Debian package, so that this runs from a clean clone), ETCD (default /usr/bin/etcd).
#
# Every cluster runs on 127.0.0.1 with data in a temp dir and fsync on, with the same flags:
# members listen for clients on 23<s><m> and for peers on 24<s><m> (s: system 1..3, m: member
# 1..3). Each repetition starts a fresh cluster per system, in turn (etcd, ballot-raft,
# ballot-multipaxos), so a slow period of the machine does not hit one system only. CPU time
# (user+system, summed over the members, over the whole `ballot bench` run including its setup)
# and peak RSS (VmHWM, the largest member) come from /proc, with the machine's load average.
# Every process started here is stopped on exit, also on Ctrl-C.
#
# `ballot serve` takes etcd's flags plus --engine raft|multipaxos. Until it exists, Ballot's
# columns print n/a.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/members.sh
source bench/members.sh
REPS=3
DURATION=10
OUT=""
ONLY_SYSTEMS=""
ONLY_WORKLOADS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) REPS=1; DURATION=2; shift ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --systems) ONLY_SYSTEMS=$2; shift 2 ;;
    --workloads) ONLY_WORKLOADS=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "compare: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$REPS" =~ ^[1-9][0-9]*$ ]]; then echo "compare: --reps must be >= 1" >&2; exit 2; fi
if ! [[ "$DURATION" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
  echo "compare: --duration must be a number of seconds" >&2; exit 2
fi
check_tools compare

WORK=$(mktemp -d -t ballot-compare.XXXXXX)
RESULTS=${OUT:-$WORK/results.jsonl}
: >"$RESULTS"
PIDS=()

BENCH_PID=""
stop_cluster() {
  local pid
  if [[ -n "$BENCH_PID" ]]; then kill "$BENCH_PID" 2>/dev/null || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_cluster
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SYSTEMS=(etcd ballot-raft ballot-multipaxos)
declare -A SYSTEM_INDEX=([etcd]=1 [ballot-raft]=2 [ballot-multipaxos]=3)

# `ballot --help` lists its subcommands; `ballot serve --help` would succeed either way.
ballot_serves() {
  "$BALLOT" --help 2>/dev/null | grep -qE '^ +serve( |$)'
}

available() {
  case "$1" in
    etcd) return 0 ;;
    ballot-*) ballot_serves ;;
  esac
}

client_url() { echo "http://127.0.0.1:23$1$2"; }
peer_url() { echo "http://127.0.0.1:24$1$2"; }

# start_cluster SYSTEM REP: starts 3 members, fills PIDS and ENDPOINTS.
start_cluster() {
  local system=$1 rep=$2 s=${SYSTEM_INDEX[$1]} m initial="" ep
  for m in 1 2 3; do initial+="${initial:+,}m$m=$(peer_url "$s" "$m")"; done
  ENDPOINTS=""
  for m in 1 2 3; do
    start_member "$system" "m$m" "$WORK/$system-$rep/m$m" "$(client_url "$s" "$m")" \
      "$(peer_url "$s" "$m")" "$initial" "compare-$system-$rep"
    PIDS+=("$MEMBER_PID")
    ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:23$s$m"
  done
  for ep in ${ENDPOINTS//,/ }; do
    if ! wait_ready "$ep" $((SECONDS + 30)); then
      echo "compare: $system did not become ready; last log lines:" >&2
      tail -n 5 "$WORK/$system-$rep"/m*/log >&2
      return 1
    fi
  done
}

# Sum of user+system CPU seconds of the cluster's members.
cluster_cpu_s() {
  local pid ticks=0 fields
  for pid in "${PIDS[@]}"; do
    # Fields after the command name (which may hold spaces): utime and stime are the 12th and
    # 13th after the closing parenthesis.
    fields=$(sed 's/.*) //' "/proc/$pid/stat")
    ticks=$((ticks + $(awk '{print $12 + $13}' <<<"$fields")))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# Largest VmHWM (peak resident set) among the members, in MiB.
cluster_peak_rss_mib() {
  local pid kb max=0
  for pid in "${PIDS[@]}"; do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    ((kb > max)) && max=$kb
  done
  awk -v k="$max" 'BEGIN { printf "%.1f", k / 1024 }'
}

# name|flags: the workloads of the table. Keys 256 B, values 1 KiB (ballot bench's defaults).
# Flags starting with @leader or @follower send the whole load to that member (the first
# follower in member order); otherwise the clients' connections go round the three endpoints. One
# sequential writer is measured on each role: its latency depends on whether its member must
# forward to the leader, and with the first endpoint the role would be chance, differing between
# the systems and the repetitions.
WORKLOADS=(
  "put-500|put --clients 500 --conns 50"
  "range-linearizable-500|range --clients 500 --conns 50 --key-space 1000"
  "range-serializable-500|range --serializable --clients 500 --conns 50 --key-space 1000"
  "put-sequential-1-leader|@leader put --clients 1 --conns 1 --sequential-keys"
  "put-sequential-1-follower|@follower put --clients 1 --conns 1 --sequential-keys"
  "lock-cycles|lock --clients 32 --conns 8 --locks 8"
  "watch-latency|watch --watchers 100 --clients 8 --conns 4 --rate 100"
  "lease-keepalive|lease-keepalive --leases 1000 --clients 100 --conns 10"
)

# --systems / --workloads: keep only the named ones; an unknown name is an error.
keep_only() {  # keep_only LIST NAME...: prints the NAMEs in LIST, fails on a LIST entry not in NAMEs
  local list=$1 want
  shift
  for want in ${list//,/ }; do
    [[ " $* " == *" $want "* ]] || { echo "compare: unknown name $want (known: $*)" >&2; return 1; }
  done
  for want in "$@"; do [[ ",$list," == *",$want,"* ]] && echo "$want"; done
  return 0
}
if [[ -n "$ONLY_SYSTEMS" ]]; then
  keep_only "$ONLY_SYSTEMS" "${SYSTEMS[@]}" >/dev/null || exit 2
  mapfile -t SYSTEMS < <(keep_only "$ONLY_SYSTEMS" "${SYSTEMS[@]}")
fi
if [[ -n "$ONLY_WORKLOADS" ]]; then
  names=()
  for entry in "${WORKLOADS[@]}"; do names+=("${entry%%|*}"); done
  keep_only "$ONLY_WORKLOADS" "${names[@]}" >/dev/null || exit 2
  kept=()
  for entry in "${WORKLOADS[@]}"; do
    [[ ",$ONLY_WORKLOADS," == *",${entry%%|*},"* ]] && kept+=("$entry")
  done
  WORKLOADS=("${kept[@]}")
fi

# role_endpoint leader|follower: the endpoint of the cluster's leader or of its first follower,
# from the members' own status (etcd's Maintenance.Status; `ballot status` prints "true" in the
# fifth field for the leader).
role_endpoint() {
  local want=true
  [[ $1 == follower ]] && want=false
  "$BALLOT" status --endpoints "$ENDPOINTS" -w simple 2>/dev/null |
    awk -F', ' -v want="$want" '$5 == want { print $1; exit }'
}

run_workloads() {
  local system=$1 rep=$2 entry name flags cpu_before cpu_after out started load endpoints role
  for entry in "${WORKLOADS[@]}"; do
    started=$SECONDS
    # The machine's 1-minute load average: figures taken under other load are not comparable.
    load=$(cut -d' ' -f1 /proc/loadavg)
    name=${entry%%|*}
    flags=${entry#*|}
    endpoints=$ENDPOINTS
    if [[ $flags == @* ]]; then
      role=${flags%% *}
      endpoints=$(role_endpoint "${role#@}")
      flags=${flags#* }
      [[ -n $endpoints ]] || endpoints=$ENDPOINTS  # No answer: the bench run reports the errors.
    fi
    cpu_before=$(cluster_cpu_s)
    # In the background so that a signal interrupts `wait` and the trap runs at once.
    # shellcheck disable=SC2086  # flags is a list of arguments
    timeout $((${DURATION%.*} + 120)) "$BALLOT" bench $flags --endpoints "$endpoints" \
      --duration "$DURATION" --threads 2 --json >"$WORK/bench.out" 2>&1 &
    BENCH_PID=$!
    if wait "$BENCH_PID"; then
      out=$(<"$WORK/bench.out")
    else
      echo "compare: $system $name failed: $(<"$WORK/bench.out")" >&2
      out='{"throughput":null,"ok":0,"errors":null,"latency_ms":{}}'
    fi
    BENCH_PID=""
    cpu_after=$(cluster_cpu_s)
    jq -c --arg system "$system" --arg workload "$name" --argjson rep "$rep" --argjson load "$load" \
      --argjson cpu "$(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN{printf "%.2f", b-a}')" \
      '{system: $system, rep: $rep, workload: $workload, cpu_s: $cpu, load1: $load, bench: .}' \
      <<<"$out" >>"$RESULTS"
    printf '  %-18s %-24s %10.1f ops/s  p50 %8.3f ms  p99 %8.3f ms  errors %s  cpu %s s  (%d s, load %s)\n' \
      "$system" "$name" "$(jq '.throughput // 0' <<<"$out")" \
      "$(jq '.latency_ms.p50 // 0' <<<"$out")" "$(jq '.latency_ms.p99 // 0' <<<"$out")" \
      "$(jq '.errors' <<<"$out")" "$(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN{print b-a}')" \
      $((SECONDS - started)) "$load"
  done
  jq -nc --arg system "$system" --argjson rep "$rep" --argjson rss "$(cluster_peak_rss_mib)" \
    '{system: $system, rep: $rep, peak_rss_mib: $rss}' >>"$RESULTS"
}

echo "compare: $REPS repetition(s), $DURATION s per workload; raw results in $RESULTS" >&2
for rep in $(seq "$REPS"); do
  for system in "${SYSTEMS[@]}"; do
    if ! available "$system"; then
      echo "  $system: n/a ($BALLOT serve does not exist yet)" >&2
      continue
    fi
    echo "rep $rep: $system (starting at ${SECONDS} s)" >&2
    if start_cluster "$system" "$rep"; then
      run_workloads "$system" "$rep"
    fi
    stop_cluster
  done
done

# The table: medians over the repetitions, and Ballot/etcd ratios (one jq pass, one awk pass).
workload_names=$(for entry in "${WORKLOADS[@]}"; do echo "${entry%%|*}"; done | jq -R . | jq -sc .)
echo
jq -rs --argjson workloads "$workload_names" '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  . as $runs
  | def fig($s; $w; f): [$runs[] | select(.system == $s and .workload == $w) | f
                          | select(. != null)] | median;
  ($workloads[] as $w
   | (["ops/s", "throughput"], ["p50 ms", "p50"], ["p90 ms", "p90"],
      ["p99 ms", "p99"], ["p99.9 ms", "p99.9"], ["max ms", "max"], ["errors", "errors"],
      ["cpu s", "cpu"], ["client cpu s", "client_cpu"], ["load 1m", "load"]) as [$figure, $key]
   | [$w, $figure]
     + [("etcd", "ballot-raft", "ballot-multipaxos") as $s
        | if $key == "errors" then fig($s; $w; .bench.errors)
          elif $key == "cpu" then fig($s; $w; .cpu_s)
          elif $key == "client_cpu" then fig($s; $w; .bench.client_cpu_s)
          elif $key == "load" then fig($s; $w; .load1)
          elif $key == "throughput" then fig($s; $w; .bench.throughput)
          else fig($s; $w; .bench.latency_ms[$key]) end])
  , (["(all)", "peak MiB"]
     + [("etcd", "ballot-raft", "ballot-multipaxos") as $s
        | [$runs[] | select(.system == $s and .peak_rss_mib != null) | .peak_rss_mib] | median])
  | map(if . == null then "n/a" else tostring end) | @tsv' "$RESULTS" |
awk -F'\t' '
  function fmt(v) {
    if (v == "n/a") return v
    if (v == int(v)) return sprintf("%d", v)
    if (v >= 100) return sprintf("%.0f", v)
    if (v >= 1) return sprintf("%.2f", v)
    return sprintf("%.3f", v)
  }
  function ratio(a, b) { return (a == "n/a" || b == "n/a" || b == 0) ? "n/a" : sprintf("%.2f", a / b) }
  BEGIN { printf "%-24s %-12s %12s %12s %7s %12s %7s\n", "workload", "figure", "etcd",
          "ballot-raft", "ratio", "ballot-paxos", "ratio" }
  { printf "%-24s %-12s %12s %12s %7s %12s %7s\n", $1, $2, fmt($3), fmt($4), ratio($4, $3),
           fmt($5), ratio($5, $3) }'
