#!/usr/bin/env bash
# lease: grant, put --lease, keep-alive --once, timetolive --keys, list, revoke deletes the keys,
# expiry deletes the keys, a put with an unknown lease fails.
source "$(dirname "$0")/lib.sh"
e2e_init 32060
e2e_start_cluster 3

lease_id() { sed -n 's/^lease \([0-9a-f]*\) granted with TTL(\([0-9]*\)s)$/\1/p'; }

out=$(e2e_ctl 1 lease grant 60)
id=$(lease_id <<<"$out")
[[ -n $id ]] || e2e_fail "lease grant printed [$out]"
expect_eq "$out" "lease $id granted with TTL(60s)" "lease grant"
expect_eq "$(e2e_ctl 2 put /lease/a 1 --lease="$id")" "OK" "put --lease"
e2e_ctl 3 put /lease/b 2 --lease="$id" >/dev/null
e2e_ctl 1 put /lease/free 3 >/dev/null

ttl_out=$(e2e_ctl 2 lease timetolive "$id" --keys)
expect_contains "$ttl_out" "lease $id granted with TTL(60s), remaining(" "timetolive"
# The order of attached keys is unspecified (etcd keeps them in a map).
attached=$(sed -n 's/.*attached keys(\[\(.*\)\])$/\1/p' <<<"$ttl_out" | tr ' ' '\n' | sort | tr '\n' ' ')
expect_eq "$attached" "/lease/a /lease/b " "timetolive --keys lists the lease's keys"
expect_eq "$(e2e_ctl 1 get /lease/a -w json | grep -o '"lease":[0-9]*' | cut -d: -f2)" \
  "$((16#$id))" "the key carries its lease"
expect_eq "$(e2e_ctl 3 lease keep-alive --once "$id")" "lease $id keepalived with TTL(60)" \
  "keep-alive --once"
expect_contains "$(e2e_ctl 1 lease list)" "$id" "lease list"

expect_eq "$(e2e_ctl 1 lease revoke "$id")" "lease $id revoked" "lease revoke"
expect_eq "$(e2e_ctl 2 get /lease/ --prefix --keys-only | grep -v '^$')" "/lease/free" \
  "revoking the lease deleted its keys and only those"
expect_contains "$(e2e_ctl 3 lease timetolive "$id")" "already expired" "timetolive after revoke"
expect_fails "put with a revoked lease" "requested lease not found" \
  e2e_ctl 1 put /lease/c 1 --lease="$id"
expect_fails "revoke twice" "requested lease not found" e2e_ctl 1 lease revoke "$id"

# Expiry: a 2 s lease with no keep-alive takes its key with it; a kept-alive one does not.
short=$(e2e_ctl 1 lease grant 2 | lease_id)
kept=$(e2e_ctl 1 lease grant 2 | lease_id)
e2e_ctl 2 put /lease/short x --lease="$short" >/dev/null
e2e_ctl 2 put /lease/kept y --lease="$kept" >/dev/null
e2e_bg keepalive e2e_ctl 3 lease keep-alive "$kept"
key_gone() { [[ -z $(e2e_ctl 1 get /lease/short) ]]; }
e2e_wait_until 10 "the 2 s lease expired and deleted its key" key_gone
sleep 1 # the kept lease is now well past its 2 s TTL
expect_eq "$(e2e_ctl 3 get /lease/kept --print-value-only)" "y" "a kept-alive lease outlives its TTL"
expect_contains "$(e2e_ctl 2 lease timetolive "$short")" "already expired" "timetolive of an expired lease"
e2e_log "ok"
