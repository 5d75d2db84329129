#!/usr/bin/env bash
# member list / add (as a learner, then promoted) / add (voting) / remove, with the cluster taking
# writes throughout; a removed member stops serving.
source "$(dirname "$0")/lib.sh"
e2e_init 32120
e2e_start_cluster 3

names() { e2e_ctl_all member list | awk -F', ' '{ print $3 }' | sort | tr '\n' ' '; }
learner_flag() { e2e_ctl_all member list | awk -F', ' -v url="$(e2e_peer_url "$1")" '$4 == url { print $6 }'; }
expect_eq "$(names)" "m1 m2 m3 " "member list of a new cluster"
line=$(e2e_ctl 1 member list | awk -F', ' '$3 == "m2"')
expect_eq "$line" "$(e2e_member_hex_id 2), started, m2, $(e2e_peer_url 2), $(e2e_client_url 2), false" \
  "member list line"

e2e_ctl 1 put /m/before yes >/dev/null

# A learner replicates but does not vote; it is promoted once it has caught up.
e2e_member_add 4 --learner
expect_eq "$(learner_flag 4)" "true" "the added member is a learner"
learner_caught_up() {
  [[ $(e2e_ctl 4 get /m/before --consistency=s --print-value-only) == yes ]]
}
e2e_wait_until "$E2E_WAIT_S" "the learner caught up" learner_caught_up
expect_fails "linearizable read on a learner" "not supported for learner" e2e_ctl 4 get /m/before
promote() { e2e_ctl_all member promote "$(e2e_member_hex_id 4)"; }
e2e_wait_until "$E2E_WAIT_S" "the learner was promoted" promote
expect_eq "$(learner_flag 4)" "false" "the promoted member votes"
e2e_wait_healthy 4
expect_eq "$(e2e_ctl 4 get /m/before --print-value-only)" "yes" "linearizable read on the promoted member"

# A voting member added directly.
e2e_member_add 5
e2e_wait_healthy 5
expect_eq "$(names)" "m1 m2 m3 m4 m5 " "member list after two adds"
e2e_ctl 5 put /m/five 5 >/dev/null
expect_eq "$(e2e_ctl 1 get /m/five --print-value-only)" "5" "a write through the new member"

# Remove the leader and another member: the three left elect a leader and take writes.
leader=$(e2e_leader)
e2e_member_remove "$leader"
other=$(e2e_members | head -n 1)
e2e_member_remove "$other"
expect_eq "$(e2e_members | wc -l)" "3" "three members left running"
e2e_wait_until "$E2E_WAIT_S" "a write after the removals" e2e_ctl_all put /m/after ok
for i in $(e2e_members); do
  expect_eq "$(e2e_ctl "$i" get /m/after --print-value-only)" "ok" "read on m$i after the removals"
done
expect_eq "$(e2e_ctl_all member list | wc -l)" "3" "member list after two removals"
e2e_port_in_use "$(e2e_client_port "$leader")" && e2e_fail "the removed leader m$leader still serves"
expect_fails "remove an unknown member" "member not found" e2e_ctl_all member remove 1234abcd
e2e_log "ok (removed m$leader, the leader, and m$other)"
