#!/usr/bin/env bash
# Smoke test of the README's run command: scripts/run.sh builds and starts `ballot dev` (a local
# cluster for etcdctl); etcdctl then writes and reads through it. Skipped, with the reason, while
# `ballot --help` lists no dev command (until then scripts/run.sh runs the simulator instead).
# It may build, hence the long bound.
# e2e-timeout-s: 900
source "$(dirname "$0")/lib.sh"

ballot=$E2E_ROOT/build/bin/ballot
[[ -x $ballot ]] || e2e_skip "build/bin/ballot is not built"
"$ballot" --help 2>/dev/null | grep -qE '^ +dev( |$)' || e2e_skip "ballot --help lists no dev command yet"

# The endpoints `ballot dev` serves by default: member i on client port 2379+2(i-1), peer port
# one above (override if its defaults change).
endpoints=${E2E_DEV_ENDPOINTS:-127.0.0.1:2379,127.0.0.1:2381,127.0.0.1:2383}
e2e_init 32260
for ep in ${endpoints//,/ }; do
  for port in "${ep##*:}" $((${ep##*:} + 1)); do
    e2e_port_in_use "$port" && e2e_fail "port $port is already in use; stop whatever serves it first"
  done
done
e2e_bg run_sh "$E2E_ROOT/scripts/run.sh"
run_pid=$E2E_LAST_BG
ctl() { "$E2E_CTL" --endpoints="$endpoints" --dial-timeout=2s --command-timeout=5s "$@"; }
dev_healthy() { kill -0 "$run_pid" && ctl endpoint health; }
e2e_wait_until 600 "scripts/run.sh built and started a healthy cluster at $endpoints" dev_healthy
expect_eq "$(ctl put /smoke/k hello)" "OK" "put through the dev cluster"
expect_eq "$(ctl get /smoke/k --print-value-only)" "hello" "get through the dev cluster"
members=$(ctl member list | wc -l)
expect_eq "$members" "$(tr ',' '\n' <<<"$endpoints" | wc -l)" "one member per dev endpoint"
for ep in ${endpoints//,/ }; do
  expect_eq "$("$E2E_CTL" --endpoints="$ep" get /smoke/k --print-value-only)" "hello" "read through $ep"
done
e2e_log "ok ($members members)"
