#!/usr/bin/env bash
# endpoint status and health: one leader that every member agrees on, the same term and revision
# everywhere after a write, and a dead member reported unhealthy (nonzero exit).
source "$(dirname "$0")/lib.sh"
e2e_init 32140
e2e_start_cluster 3

e2e_ctl 1 put /ep/k v >/dev/null
health=$(e2e_ctl_all endpoint health 2>&1)
for i in 1 2 3; do
  expect_contains "$health" "$(e2e_endpoint "$i") is healthy" "endpoint health of m$i"
done

leader=$(e2e_leader)
leader_id=$(e2e_member_id "$leader")
revision=$(e2e_ctl 1 get /ep/k -w json | e2e_json_field revision)
# Followers may apply the write a moment after the leader; serializable status is per member.
same_revision() {
  [[ $(e2e_ctl "$1" endpoint status -w json | e2e_json_field revision) == "$revision" ]]
}
term=""
for i in 1 2 3; do
  json=$(e2e_ctl "$i" endpoint status -w json)
  expect_eq "$(e2e_json_field leader <<<"$json")" "$leader_id" "m$i agrees on the leader"
  t=$(e2e_json_field raft_term <<<"$json")
  [[ -z $term ]] && term=$t
  expect_eq "$t" "$term" "m$i's raft term"
  e2e_wait_until 5 "m$i reports revision $revision" same_revision "$i"
done

table=$(e2e_ctl_all endpoint status -w table)
expect_eq "$(grep -c '|  *true |  *false |' <<<"$table")" "1" "exactly one IS LEADER row in the table"
expect_eq "$(grep -c '127.0.0.1:' <<<"$table")" "3" "one row per endpoint"
simple=$(e2e_ctl "$leader" endpoint status)
expect_contains "$simple" "$(e2e_endpoint "$leader"), $(printf '%x' "$leader_id"), " "simple status line"

# A killed member is reported unhealthy, and health exits nonzero.
victim=$((leader % 3 + 1))
all=$(e2e_endpoints)
e2e_kill "$victim"
expect_fails "endpoint health with a dead member" "$(e2e_endpoint "$victim") is unhealthy" \
  "$E2E_CTL" --endpoints="$all" --dial-timeout=1s --command-timeout=2s endpoint health
health=$(e2e_ctl_all endpoint health 2>&1)
expect_eq "$(grep -c 'is healthy' <<<"$health")" "2" "the two live members stay healthy"

# defrag (Maintenance.Defragment) on each live member, then endpoint hashkv: the two live members
# agree on the hash of the key space at one revision once both applied it.
out=$(e2e_ctl_all defrag 2>&1) || e2e_fail "defrag: $out"
expect_eq "$(grep -c 'Finished defragmenting etcd member' <<<"$out")" "2" "defrag of both live members"
e2e_ctl_all put /ep/hash h >/dev/null
hash_revision=$(e2e_ctl_all get /ep/hash -w json | e2e_json_field revision)
same_hashkv() {
  local out
  out=$(e2e_ctl_all endpoint hashkv --rev="$hash_revision") || return 1
  [[ $(grep -c . <<<"$out") == 2 && $(awk -F', ' '{ print $2 }' <<<"$out" | sort -u | wc -l) == 1 ]]
}
e2e_wait_until 10 "equal hashkv at revision $hash_revision on both live members" same_hashkv
e2e_log "ok"
