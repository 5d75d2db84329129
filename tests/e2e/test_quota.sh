#!/usr/bin/env bash
# quota: over --quota-backend-bytes a put raises the NOSPACE alarm and fails with etcd's message on
# every member; `etcdctl alarm list` shows it, reads and deletes still work, `alarm disarm` clears
# it (and, still over the quota, the next put raises it again).
source "$(dirname "$0")/lib.sh"
e2e_init 32360
# A quota far below what any data directory holds, so the first write is over it.
e2e_start_cluster 3 --quota-backend-bytes 4096
# The member samples its store size in the background: give it a moment.
sleep 1

# Raised through a follower (its alarm proposal is forwarded to the leader).
leader=$(e2e_leader)
expect_fails "put over the quota" "database space exceeded" e2e_ctl $((leader % 3 + 1)) put /q/k v
for i in 1 2 3; do
  out=""
  for _ in $(seq 50); do
    out=$(e2e_ctl "$i" alarm list)
    [[ "$out" == *NOSPACE* ]] && break
    sleep 0.1
  done
  expect_contains "$out" "alarm:NOSPACE" "alarm list on m$i"
  expect_fails "put on m$i with the alarm up" "database space exceeded" e2e_ctl "$i" put /q/k v
done
expect_eq "$(e2e_ctl 2 get /q/k --print-value-only)" "" "reads still work"
expect_eq "$(e2e_ctl 3 del /q/k)" "0" "deletes still work"

# Through a follower: the DEACTIVATE is forwarded to the leader and its answer comes back.
leader=$(e2e_leader)
follower=$((leader % 3 + 1))
expect_contains "$(e2e_ctl "$follower" alarm disarm)" "alarm:NOSPACE" "disarm through m$follower"
for i in 1 2 3; do
  out="x"
  for _ in $(seq 50); do
    out=$(e2e_ctl "$i" alarm list)
    [[ -z "$out" ]] && break
    sleep 0.1
  done
  expect_eq "$out" "" "no alarm on m$i after disarm"
done
expect_fails "still over the quota" "database space exceeded" e2e_ctl 2 put /q/k v
e2e_log "ok"
