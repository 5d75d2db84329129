#!/usr/bin/env bash
# Peak memory of one member holding a million keys: etcd and Ballot (Raft and Multi-Paxos), each a
# one-member cluster on 127.0.0.1 with fsync on, loaded through the API with the same `ballot
# bench put` run (32-byte sequential keys, 100-byte values, 200 clients), one system after the
# other. Prints, per system, the load rate, the peak resident set during the load (VmHWM) and the
# resident set once loaded (VmRSS), and the ratio of each Ballot peak to etcd's.
#
# Usage: bench/rss_1m.sh [--keys N] [--systems LIST] [--out FILE]
#   --keys N         keys to load (default 1000000)
#   --systems LIST   comma-separated subset of etcd,ballot-raft,ballot-multipaxos (default all)
#   --out FILE       also keep the results, one JSON object per system
# Environment: BALLOT (default build/bin/ballot, which is built first, after installing any
# missing Debian package, so that this runs from a clean clone), ETCD (default /usr/bin/etcd).
# The member listens on 127.0.0.1:23941 (clients) and 127.0.0.1:24941 (peers). Every process
# started here is stopped on exit, also on Ctrl-C. A million keys take 1.5 to 2 minutes a system.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/members.sh
source bench/members.sh
KEYS=1000000
SYSTEMS=etcd,ballot-raft,ballot-multipaxos
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keys) KEYS=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "rss_1m: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$KEYS" =~ ^[1-9][0-9]*$ ]]; then echo "rss_1m: --keys must be >= 1" >&2; exit 2; fi
for system in ${SYSTEMS//,/ }; do
  case "$system" in
    etcd|ballot-raft|ballot-multipaxos) ;;
    *) echo "rss_1m: unknown system $system (etcd, ballot-raft, ballot-multipaxos)" >&2; exit 2 ;;
  esac
done
check_tools rss_1m

WORK=$(mktemp -d -t ballot-rss.XXXXXX)
RESULTS=${OUT:-$WORK/results.jsonl}
: >"$RESULTS"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ENDPOINT=127.0.0.1:23941
PEER=http://127.0.0.1:24941

kib() { awk -v f="$1" '$1 == f ":" { print $2 }' "/proc/$PID/status"; }

for system in ${SYSTEMS//,/ }; do
  start_member "$system" m1 "$WORK/$system" "http://$ENDPOINT" "$PEER" "m1=$PEER" "rss-$system"
  PID=$MEMBER_PID
  if ! wait_ready "$ENDPOINT" $((SECONDS + 30)); then
    echo "rss_1m: $system did not become ready; last log lines:" >&2
    tail -n 5 "$WORK/$system/log" >&2
    exit 1
  fi
  echo "$system: loading $KEYS keys" >&2
  out=$("$BALLOT" bench put --endpoints "$ENDPOINT" --total "$KEYS" --key-space "$KEYS" \
    --key-size 32 --value-size 100 --sequential-keys --clients 200 --conns 20 --json)
  sleep 2  # Let a flush or compaction the load started show in the figures.
  jq -c --arg system "$system" --argjson hwm "$(kib VmHWM)" --argjson rss "$(kib VmRSS)" \
    '{system: $system, keys: .ok, errors: .errors, puts_per_s: .throughput,
      peak_rss_kib: $hwm, rss_after_kib: $rss}' <<<"$out" | tee -a "$RESULTS" >&2
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
done

echo
jq -rs '
  (map(select(.system == "etcd"))[0].peak_rss_kib // null) as $etcd
  | ["system", "keys", "errors", "puts/s", "peak MiB", "after MiB", "peak/etcd"],
    (.[] | [.system, .keys, .errors, (.puts_per_s | floor), (.peak_rss_kib / 1024 | floor),
            (.rss_after_kib / 1024 | floor),
            (if $etcd then (.peak_rss_kib / $etcd * 100 | round / 100) else "n/a" end)])
  | @tsv' "$RESULTS" | column -t -s $'\t'
