#!/usr/bin/env bash
# Smoke test of `ballot bench` against a real etcd (about 15 s; at most 30 s, enforced).
#
# Starts a 1-member etcd on 127.0.0.1 (client port 2301, peer port 2401, data in a temp dir), runs
# every workload of `ballot bench` for one second, checks that each reported nonzero throughput
# and no errors, and stops etcd. Exit 0 on success, 1 on a failed check, 2 if it cannot run.
#
# Environment: BALLOT (default build/bin/ballot), ETCD (default /usr/bin/etcd),
# SMOKE_CLIENT_PORT / SMOKE_PEER_PORT (defaults 2301 / 2401).
set -euo pipefail
cd "$(dirname "$0")/.."

BALLOT=${BALLOT:-build/bin/ballot}
ETCD=${ETCD:-/usr/bin/etcd}
CLIENT_PORT=${SMOKE_CLIENT_PORT:-2301}
PEER_PORT=${SMOKE_PEER_PORT:-2401}
ENDPOINT=127.0.0.1:$CLIENT_PORT

for tool in "$BALLOT" "$ETCD" jq; do
  if ! command -v "$tool" >/dev/null; then
    echo "smoke: $tool not found" >&2
    exit 2
  fi
done

WORK=$(mktemp -d -t ballot-bench-smoke.XXXXXX)
ETCD_PID=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [[ -n "$ETCD_PID" ]] && kill -0 "$ETCD_PID" 2>/dev/null; then
    kill "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ETCD" --name smoke --data-dir "$WORK/data" \
  --listen-client-urls "http://$ENDPOINT" --advertise-client-urls "http://$ENDPOINT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "smoke=http://127.0.0.1:$PEER_PORT" \
  --initial-cluster-state new --initial-cluster-token ballot-bench-smoke \
  >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!

# Ready when a single put succeeds (given at most ~12 s).
ready=0
while ((SECONDS < 12)); do
  if ! kill -0 "$ETCD_PID" 2>/dev/null; then break; fi
  if timeout 3 "$BALLOT" bench put --endpoints "$ENDPOINT" --total 1 --clients 1 --conns 1 \
      --key-prefix smoke-ready/ --timeout-ms 1000 --json >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.2
done
if [[ $ready != 1 ]]; then
  echo "smoke: etcd did not become ready; its log:" >&2
  tail -20 "$WORK/etcd.log" >&2
  exit 2
fi

COMMON=(--endpoints "$ENDPOINT" --duration 1 --clients 16 --conns 4 --key-space 100 --json)
WORKLOADS=(
  "put"
  "range"
  "range --serializable"
  "range --prefix --range-limit 10"
  "txn"
  "lock --locks 4"
  "watch --watchers 8 --clients 2 --rate 200"
  "lease-keepalive --leases 64"
)
# The whole script stays within 30 s: each run gets what is left (a second kept for cleanup).
BUDGET_S=29
failed=0
for workload in "${WORKLOADS[@]}"; do
  left=$((BUDGET_S - SECONDS))
  if ((left < 3)); then
    echo "FAIL $workload: not started, the 30 s budget is spent"
    failed=1
    continue
  fi
  # shellcheck disable=SC2086  # a workload is its name followed by its own flags
  if ! out=$(timeout "$left" "$BALLOT" bench $workload "${COMMON[@]}" 2>&1); then
    echo "FAIL $workload: $out"
    failed=1
    continue
  fi
  summary=$(jq -r '"\(.throughput|floor) ops/s, p99 \(.latency_ms."p99") ms, \(.errors) errors"' \
    <<<"$out")
  if jq -e '.throughput > 0 and .ok > 0 and .errors == 0' <<<"$out" >/dev/null; then
    echo "ok   $workload: $summary"
  else
    echo "FAIL $workload: $summary $(jq -c .error_samples <<<"$out")"
    failed=1
  fi
done
exit $failed
