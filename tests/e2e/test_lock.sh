#!/usr/bin/env bash
# lock (etcdctl lock): mutual exclusion between holders, FIFO order of waiters, fencing tokens
# (ETCD_LOCK_REV = the lock key's create revision) that grow in acquisition order, and a waiter
# that proceeds once the holder's process is killed and its lease expires.
source "$(dirname "$0")/lib.sh"
e2e_init 32080
e2e_start_cluster 3

trace=$E2E_DIR/trace
gate=$E2E_DIR/gate
key_count() { e2e_ctl 1 get "$1" --prefix --keys-only | grep -c . || true; }
has_keys() { [[ $(key_count "$1") -ge $2 ]]; }

# Each holder writes "start NAME TOKEN", works for 0.3 s, writes "end NAME". A holds the lock until
# the gate file exists, so B and C queue up behind it in a known order.
holder() {
  local name=$1 member=$2
  e2e_bg "lock_$name" e2e_ctl "$member" lock --ttl 5 /locks/L -- bash -c "
    echo \"start $name \$ETCD_LOCK_REV \$ETCD_LOCK_KEY\" >>$trace
    for ((i = 0; i < 100; i++)); do [[ -e $gate ]] && break; sleep 0.1; done
    sleep 0.3
    echo \"end $name\" >>$trace"
  eval "pid_$name=\$E2E_LAST_BG"
}
holder A 1
e2e_wait_until 10 "A took the lock" e2e_file_has_lines "$trace" 1
holder B 2
e2e_wait_until 10 "B queued" has_keys /locks/L/ 2
holder C 3
e2e_wait_until 10 "C queued" has_keys /locks/L/ 3
sleep 0.3
expect_eq "$(wc -l <"$trace")" "1" "nobody else entered while A holds the lock"
touch "$gate"
for name in A B C; do
  pid_var=pid_$name
  e2e_wait_until 15 "holder $name finished" bash -c "! kill -0 ${!pid_var} 2>/dev/null"
done
expect_eq "$(awk '{ print $1, $2 }' "$trace")" \
  $'start A\nend A\nstart B\nend B\nstart C\nend C' "holders ran one at a time, in FIFO order"
mapfile -t tokens < <(awk '$1 == "start" { print $3 }' "$trace")
((tokens[0] < tokens[1] && tokens[1] < tokens[2])) ||
  e2e_fail "fencing tokens must grow in acquisition order: ${tokens[*]}"
first_key=$(awk 'NR == 1 { print $4 }' "$trace")
[[ $first_key == /locks/L/* ]] || e2e_fail "ETCD_LOCK_KEY [$first_key] is not under /locks/L/"
expect_eq "$(key_count /locks/L/)" "0" "every holder released its key"

# A holder killed with -9 never releases: the waiter gets the lock when the holder's lease expires.
e2e_bg lock_D e2e_ctl 1 lock --ttl 2 /locks/M
pid_D=$E2E_LAST_BG
e2e_wait_until 10 "D took the lock" e2e_file_has_lines "$E2E_DIR/lock_D.log" 1
d_key=$(head -n 1 "$E2E_DIR/lock_D.log")
d_token=$(e2e_ctl 2 get "$d_key" -w json | e2e_json_field create_revision)
[[ -n $d_token ]] || e2e_fail "D's lock key [$d_key] is not in the store"
e2e_bg lock_E e2e_ctl 2 lock --ttl 2 /locks/M
e2e_wait_until 10 "E queued" has_keys /locks/M/ 2
sleep 0.5
expect_eq "$(cat "$E2E_DIR/lock_E.log")" "" "E waits while D holds the lock"
e2e_kill_bg KILL "$pid_D"
killed_ns=$(date +%s%N)
e2e_wait_until 10 "E took the lock after D died" e2e_file_has_lines "$E2E_DIR/lock_E.log" 1
waited_ms=$((($(date +%s%N) - killed_ns) / 1000000))
((waited_ms >= 500)) || e2e_fail "E got the lock ${waited_ms} ms after D died: before D's lease expired?"
e_key=$(head -n 1 "$E2E_DIR/lock_E.log")
e_token=$(e2e_ctl 2 get "$e_key" -w json | e2e_json_field create_revision)
((e_token > d_token)) || e2e_fail "E's token $e_token is not above D's $d_token"
expect_eq "$(e2e_ctl 3 get "$d_key")" "" "D's lock key went with its lease"
e2e_log "ok (E waited ${waited_ms} ms for D's lease)"
