#!/usr/bin/env bash
# The `ballot` client commands (put, get, del, txn, watch, compact, lease, lock, elect, member,
# status) against a cluster, cross-checked with etcdctl: what one writes the other reads, and
# where both print the same thing the outputs are compared byte for byte. Skipped while
# build/bin/ballot lacks the client commands.
source "$(dirname "$0")/lib.sh"

ballot=$E2E_ROOT/build/bin/ballot
[[ -x $ballot ]] || e2e_skip "build/bin/ballot is not built"
"$ballot" --help 2>/dev/null | grep -qE '^ +lock( |$)' || e2e_skip "ballot has no client commands"

e2e_init 32280
e2e_start_cluster 3

# b I ARGS...: ballot against member I.
b() {
  local i=$1
  shift
  "$ballot" "$@" --endpoints="$(e2e_endpoint "$i")" --dial-timeout=2s --command-timeout=5s
}
b_all() { "$ballot" "$@" --endpoints="$(e2e_endpoints)" --dial-timeout=2s --command-timeout=5s; }

# --- put / get / del, against etcdctl's view and output -------------------------------------
expect_eq "$(b 1 put /c/a 1)" "OK" "ballot put"
expect_eq "$(e2e_ctl 2 get /c/a --print-value-only)" "1" "etcdctl reads ballot's put"
e2e_ctl 3 put /c/b 2 >/dev/null
e2e_ctl 3 put /c/c 3 >/dev/null
expect_eq "$(b 2 get /c/b)" $'/c/b\n2' "ballot get reads etcdctl's put"
for args in "/c/ --prefix" "/c/ --prefix --keys-only" "/c/a /c/c" "/c/b --from-key" \
  "/c/ --prefix --limit 2" "/c/ --prefix --print-value-only" "/c/a --consistency s" \
  "/c/ --prefix -w json" "/c/ --prefix --limit 1 -w json"; do
  # shellcheck disable=SC2086
  expect_eq "$(b 1 get $args)" "$(e2e_ctl 1 get $args)" "ballot get $args prints what etcdctl prints"
done
rev_a=$(e2e_ctl 1 get /c/a -w json | e2e_json_field mod_revision)
expect_eq "$(b 2 put /c/a 1b --prev-kv)" $'OK\n/c/a\n1' "ballot put --prev-kv"
expect_eq "$(b 3 get /c/a --rev "$rev_a" --print-value-only)" "1" "ballot get --rev"
expect_eq "$(b 1 del /c/a --prev-kv)" $'1\n/c/a\n1b' "ballot del --prev-kv"
expect_eq "$(b 1 del /c/ --prefix)" "2" "ballot del --prefix"
expect_eq "$(e2e_ctl 1 get /c/ --prefix)" "" "etcdctl sees ballot's deletes"
expect_fails "ballot get at a future revision" "Error: etcdserver: mvcc: required revision is a future revision" \
  b 1 get /c/a --rev 1000000
set +e
b 1 get /c/a --rev 1000000 >/dev/null 2>&1
rc=$?
"$ballot" get >/dev/null 2>&1
usage_rc=$?
set -e
expect_eq "$rc" "2" "exit code of a server error"
expect_eq "$usage_rc" "2" "exit code of a bad command line"

# Failover: a dead endpoint first, a live one second.
dead="127.0.0.1:$(e2e_client_port 9)"
expect_eq "$("$ballot" put /c/failover yes --endpoints="$dead,$(e2e_endpoint 2)" --dial-timeout=1s)" \
  "OK" "put fails over from a dead endpoint"
expect_fails "all endpoints dead" "Error:" "$ballot" get /c/x --endpoints="$dead" --dial-timeout=500ms

# --- txn: the same stdin gives the same output as etcdctl -------------------------------------
e2e_ctl 1 put /t/a 1 >/dev/null
txn_input=$'value("/t/a") = "1"\n\nput /t/a "2"\nget /t/a\n\nput /t/failed "yes"\n\n'
expect_eq "$(b 2 txn <<<"$txn_input")" $'SUCCESS\n\nOK\n\n/t/a\n2' "ballot txn success branch"
expect_eq "$(b 2 txn <<<"$txn_input")" $'FAILURE\n\nOK' "ballot txn failure branch"
expect_eq "$(e2e_ctl 3 get /t/failed --print-value-only)" "yes" "the failure branch ran"
expect_fails "malformed txn" "line 1" b 1 txn <<<$'value(/t/a) = "1"\n\n\n\n'

# --- watch ------------------------------------------------------------------------------------
start_rev=$(e2e_ctl 1 get /t/a -w json | e2e_json_field revision)
e2e_bg bwatch "$ballot" watch /w/ --prefix --prev-kv --rev $((start_rev + 1)) --endpoints="$(e2e_endpoint 3)"
watch_pid=$E2E_LAST_BG
e2e_ctl 1 put /w/k v1 >/dev/null
e2e_ctl 2 put /w/k v2 >/dev/null
e2e_ctl 1 del /w/k >/dev/null
e2e_wait_until 10 "ballot watch saw three events" e2e_file_has_lines "$E2E_DIR/bwatch.log" 13
expect_eq "$(cat "$E2E_DIR/bwatch.log")" $'PUT\n/w/k\nv1\nPUT\n/w/k\nv1\n/w/k\nv2\nDELETE\n/w/k\nv2\n/w/k' \
  "ballot watch --prev-kv events"
e2e_kill_bg TERM "$watch_pid"
e2e_wait_until 5 "ballot watch exits on SIGTERM" bash -c "! kill -0 $watch_pid"

# --- compact ----------------------------------------------------------------------------------
expect_eq "$(b 1 compact "$start_rev")" "compacted revision $start_rev" "ballot compact"
expect_fails "get below the compaction" "required revision has been compacted" \
  b 2 get /t/a --rev $((start_rev - 1))
expect_fails "watch below the compaction" "required revision has been compacted" \
  b 3 watch /t/a --rev $((start_rev - 1))

# --- lease ------------------------------------------------------------------------------------
out=$(b 1 lease grant 60)
id=$(sed -n 's/^lease \([0-9a-f]\{16\}\) granted with TTL(60s)$/\1/p' <<<"$out")
[[ -n $id ]] || e2e_fail "ballot lease grant printed [$out]"
b 2 put /l/a 1 --lease "$id" >/dev/null
expect_contains "$(e2e_ctl 3 lease timetolive "$id" --keys)" "attached keys([/l/a])" "etcdctl sees ballot's leased key"
expect_contains "$(b 3 lease timetolive "$id" --keys)" ", attached keys([/l/a])" "ballot lease timetolive --keys"
expect_eq "$(b 1 lease keep-alive "$id" --once)" "lease $id keepalived with TTL(60)" "ballot lease keep-alive --once"
expect_contains "$(b 2 lease list)" "$id" "ballot lease list"
expect_eq "$(b 3 lease revoke "$id")" "lease $id revoked" "ballot lease revoke"
expect_eq "$(e2e_ctl 1 get /l/a)" "" "revoking deleted the key"
expect_eq "$(b 1 lease timetolive "$id")" "lease $id already expired" "timetolive after revoke"
expect_fails "revoke twice" "Error: etcdserver: requested lease not found" b 1 lease revoke "$id"
expect_fails "bad lease id" "bad lease ID" b 1 lease revoke xyz

# keep-alive renews every third of the TTL until the lease is revoked, then exits 1.
short=$(b 1 lease grant 3 | sed -n 's/^lease \([0-9a-f]*\) granted.*/\1/p')
e2e_bg bkeepalive "$ballot" lease keep-alive "$short" --endpoints="$(e2e_endpoint 2)"
keepalive_pid=$E2E_LAST_BG
e2e_wait_until 10 "two renewals" e2e_file_has_lines "$E2E_DIR/bkeepalive.log" 2
expect_eq "$(sed -n 1p "$E2E_DIR/bkeepalive.log")" "lease $short keepalived with TTL(3)" "a renewal line"
e2e_ctl 1 lease revoke "$short" >/dev/null
e2e_wait_until 10 "keep-alive noticed the revocation" bash -c "! kill -0 $keepalive_pid"
rc=0
wait "$keepalive_pid" || rc=$?
expect_eq "$rc" "1" "keep-alive exits 1 when the lease is gone"
expect_eq "$(tail -n 1 "$E2E_DIR/bkeepalive.log")" "lease $short expired or revoked." "keep-alive's last line"

# --- lock: ballot and etcdctl exclude each other; fencing tokens ------------------------------
tokens=$E2E_DIR/tokens
# The flags go before --: what follows it is the command.
rc=0
"$ballot" lock --endpoints="$(e2e_endpoint 1)" /bl/L -- \
  bash -c "echo \$BALLOT_FENCING_TOKEN \$BALLOT_LOCK_KEY \$ETCD_LOCK_REV >>$tokens; exit 7" || rc=$?
expect_eq "$rc" "7" "ballot lock passes the command's exit code through"
read -r token1 key1 etcd_rev1 <"$tokens"
[[ $token1 =~ ^[0-9]+$ && $key1 == /bl/L/* ]] || e2e_fail "lock command saw token [$token1] key [$key1]"
expect_eq "$etcd_rev1" "$token1" "ETCD_LOCK_REV equals BALLOT_FENCING_TOKEN"

e2e_bg block_holder "$ballot" lock /bl/L --ttl 2 --endpoints="$(e2e_endpoint 1)"
holder_pid=$E2E_LAST_BG
e2e_wait_until 10 "ballot lock took the lock" e2e_file_has_lines "$E2E_DIR/block_holder.log" 2
held_key=$(sed -n 1p "$E2E_DIR/block_holder.log")
token2=$(sed -n 2p "$E2E_DIR/block_holder.log")
expect_eq "$(e2e_ctl 2 get "$held_key" -w json | e2e_json_field create_revision)" "$token2" \
  "the printed fencing token is the lock key's create revision"
((token2 > token1)) || e2e_fail "token $token2 is not above the earlier holder's $token1"
e2e_bg etcd_waiter e2e_ctl 2 lock /bl/L
waiter_pid=$E2E_LAST_BG
has_two() { [[ $(e2e_ctl 1 get /bl/L/ --prefix --keys-only | grep -c .) -eq 2 ]]; }
e2e_wait_until 10 "etcdctl lock queued behind ballot lock" has_two
sleep 0.5
expect_eq "$(cat "$E2E_DIR/etcd_waiter.log")" "" "etcdctl lock waits while ballot lock holds"
e2e_kill_bg KILL "$holder_pid" # no unlock: the waiter proceeds when the 2 s lease expires
e2e_wait_until 10 "etcdctl lock got the lock after ballot's holder died" \
  e2e_file_has_lines "$E2E_DIR/etcd_waiter.log" 1
e2e_kill_bg TERM "$waiter_pid"
e2e_wait_until 10 "etcdctl lock released" bash -c "! kill -0 $waiter_pid"

# A graceful release: SIGTERM unlocks at once.
e2e_bg block_term "$ballot" lock /bl/T --endpoints="$(e2e_endpoint 3)"
term_pid=$E2E_LAST_BG
e2e_wait_until 10 "ballot lock took /bl/T" e2e_file_has_lines "$E2E_DIR/block_term.log" 2
e2e_kill_bg TERM "$term_pid"
e2e_wait_until 5 "ballot lock exits on SIGTERM" bash -c "! kill -0 $term_pid"
expect_eq "$(e2e_ctl 1 get /bl/T/ --prefix)" "" "SIGTERM released the lock"

# --- elect --------------------------------------------------------------------------------------
e2e_bg belect "$ballot" elect /be/E p1 --endpoints="$(e2e_endpoint 1)"
elect_pid=$E2E_LAST_BG
e2e_wait_until 10 "ballot elect won" e2e_file_has_lines "$E2E_DIR/belect.log" 2
expect_eq "$(sed -n 2p "$E2E_DIR/belect.log")" "p1" "ballot elect prints its proposal"
e2e_bg bobserve "$ballot" elect /be/E --listen --endpoints="$(e2e_endpoint 2)"
e2e_wait_until 10 "ballot elect --listen saw p1" e2e_file_has_lines "$E2E_DIR/bobserve.log" 2
expect_eq "$(cat "$E2E_DIR/bobserve.log")" "$(cat "$E2E_DIR/belect.log")" "the observer sees the leader"
e2e_bg eelect e2e_ctl 3 elect /be/E p2
e2e_kill_bg TERM "$elect_pid"
e2e_wait_until 10 "etcdctl elect won after ballot resigned" e2e_file_has_lines "$E2E_DIR/eelect.log" 2
e2e_wait_until 10 "ballot elect --listen saw p2" e2e_file_has_lines "$E2E_DIR/bobserve.log" 4
expect_eq "$(sed -n 4p "$E2E_DIR/bobserve.log")" "p2" "the observer sees the handover"
expect_fails "elect with neither proposal nor --listen" "PROPOSAL" b 1 elect /be/E

# --- member and status --------------------------------------------------------------------------
expect_eq "$(b 1 member list)" "$(e2e_ctl 1 member list)" "ballot member list prints what etcdctl prints"
table=$(b_all status)
expect_eq "$(grep -c '127.0.0.1:' <<<"$table")" "3" "ballot status: one row per endpoint"
expect_eq "$(grep -c '|  *true |  *false |' <<<"$table")" "1" "ballot status: one leader"
leader=$(e2e_leader)
expect_contains "$(b "$leader" status -w simple)" ", true, false, " "ballot status -w simple on the leader"
set +e
"$ballot" status --endpoints="$(e2e_endpoint 1),$dead" --dial-timeout=500ms >/dev/null 2>&1
rc=$?
set -e
expect_eq "$rc" "1" "ballot status exits 1 when an endpoint does not answer"
e2e_log "ok"
