#!/usr/bin/env bash
# Runs the e2e tier (tests/e2e/test_*.sh), or the tests named, one after another, each with a time
# bound, and prints one line per test and a summary. Exit 0 when none failed, 1 otherwise, 2 on a
# bad command line. See docs/e2e.md.
#
#   tests/e2e/run.sh                                    # every test, against etcd
#   tests/e2e/run.sh kv txn                             # test_kv.sh and test_txn.sh
#   tests/e2e/run.sh --server ballot --engine multipaxos
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

usage() {
  cat <<'USAGE'
usage: tests/e2e/run.sh [--server etcd|ballot] [--engine raft|multipaxos] [--timeout SECONDS]
                        [--keep] [TEST...]
  --server    the member binary: etcd (/usr/bin/etcd) or ballot (build/bin/ballot serve, or
              $E2E_BALLOT serve)
  --engine    with --server ballot: the replication engine (passed as --engine)
  --timeout   default time bound per test in seconds (a test may raise its own with a
              "# e2e-timeout-s: N" line); default 120
  --keep      keep each test's data directory and logs
  TEST        kv, test_kv or test_kv.sh; default: every tests/e2e/test_*.sh
USAGE
}

server=etcd engine="" timeout_s=120 names=()
while (($#)); do
  case $1 in
    --server) server=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --engine) engine=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --timeout) timeout_s=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --keep) export E2E_KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --timeout needs a whole number of seconds" >&2; exit 2; }

case $server in
  etcd)
    [[ -z $engine ]] || { echo "run.sh: --engine applies to --server ballot only" >&2; exit 2; }
    export E2E_SERVER=etcd E2E_SERVER_ARGS=""
    ;;
  ballot)
    ballot_bin=${E2E_BALLOT:-$root/build/bin/ballot}
    if ! "$ballot_bin" --help 2>/dev/null | grep -qE '^ +serve( |$)'; then
      echo "run.sh: $ballot_bin has no serve command (build it: scripts/build.sh ballot)" >&2
      exit 2
    fi
    case ${engine:-raft} in raft | multipaxos) ;; *)
      echo "run.sh: --engine must be raft or multipaxos" >&2; exit 2 ;;
    esac
    export E2E_SERVER="$ballot_bin serve"
    export E2E_SERVER_ARGS=${engine:+--engine $engine}
    ;;
  *) echo "run.sh: --server must be etcd or ballot" >&2; exit 2 ;;
esac
command -v etcdctl >/dev/null || { echo "run.sh: etcdctl not found (apt-get install etcd-client)" >&2; exit 2; }

tests=()
if ((${#names[@]} == 0)); then
  for f in tests/e2e/test_*.sh; do tests+=("$f"); done
else
  for n in "${names[@]}"; do
    n=${n%.sh}
    n=${n#test_}
    f=tests/e2e/test_$n.sh
    [[ -f $f ]] || { echo "run.sh: no test $f" >&2; exit 2; }
    tests+=("$f")
  done
fi

out_dir=$(mktemp -d "${TMPDIR:-/tmp}/ballot-e2e-run.XXXXXX")
current_pgid=""
# Each test runs in its own session, so that whatever it leaves behind can be killed as a group.
kill_group() {
  [[ -n $current_pgid ]] || return 0
  kill -TERM -- "-$current_pgid" 2>/dev/null
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$current_pgid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$current_pgid" 2>/dev/null
  current_pgid=""
}
trap 'kill_group; echo "run.sh: interrupted" >&2; exit 130' INT TERM

echo "e2e: server ${E2E_SERVER}${E2E_SERVER_ARGS:+ $E2E_SERVER_ARGS}, ${#tests[@]} tests, output in $out_dir"
passed=0 failed=0 skipped=0 failures=()
run_start=$(date +%s%N)
for f in "${tests[@]}"; do
  name=$(basename "$f" .sh)
  limit_s=$(sed -n 's/^# e2e-timeout-s: *\([0-9]*\).*/\1/p' "$f" | head -n 1)
  limit_s=${limit_s:-$timeout_s}
  out=$out_dir/$name.out
  start=$(date +%s%N)
  setsid bash "$f" >"$out" 2>&1 &
  pid=$!
  current_pgid=$pid
  timed_out=0
  deadline=$((SECONDS + limit_s))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      timed_out=1
      kill -TERM "$pid" 2>/dev/null # the test's own trap stops its members
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      break
    fi
    sleep 0.1
  done
  wait "$pid"
  rc=$?
  kill_group # anything the test failed to stop
  secs=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
  if ((timed_out)); then
    status="FAIL" detail="timed out after ${limit_s}s"
  elif ((rc == 0)); then
    status="PASS" detail=""
  elif ((rc == 77)); then
    status="SKIP" detail=$(sed -n 's/.*SKIP: //p' "$out" | tail -n 1)
  else
    status="FAIL" detail=$(sed -n 's/.*FAIL: //p' "$out" | tail -n 1)
  fi
  printf '%-4s  %-24s %6s s  %s\n' "$status" "$name" "$secs" "$detail"
  case $status in
    PASS) passed=$((passed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;;
    FAIL)
      failed=$((failed + 1))
      failures+=("$name")
      echo "----- $name: last 60 lines of $out -----"
      tail -n 60 "$out"
      echo "----- end of $name -----"
      ;;
  esac
done
total=$(awk -v ns=$(($(date +%s%N) - run_start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
echo "e2e summary: $passed passed, $failed failed, $skipped skipped in ${total} s (server: $server${engine:+, engine $engine})"
if ((failed > 0)); then
  echo "failed: ${failures[*]} (outputs in $out_dir)"
  exit 1
fi
rm -rf "$out_dir"
exit 0
