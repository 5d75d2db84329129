#!/usr/bin/env bash
# kill -9 of the leader: the other two elect a new leader in a higher term, writes continue, and
# the killed member restarts from its data directory and catches up (every member's own copy of
# the keys ends up identical, nothing acknowledged is lost).
source "$(dirname "$0")/lib.sh"
e2e_init 32200
e2e_start_cluster 3

for i in $(seq 1 20); do e2e_ctl $((i % 3 + 1)) put "/f/k$i" "v$i" >/dev/null; done
old=$(e2e_leader)
old_term=$(e2e_ctl "$old" endpoint status -w json | e2e_json_field raft_term)
e2e_kill "$old"
killed_ns=$(date +%s%N)
new=$(e2e_leader)
elected_ms=$((($(date +%s%N) - killed_ns) / 1000000))
[[ $new != "$old" ]] || e2e_fail "the killed member is still the leader"
new_term=$(e2e_ctl "$new" endpoint status -w json | e2e_json_field raft_term)
((new_term > old_term)) || e2e_fail "new leader's term $new_term is not above $old_term"

# Writes continue on the two survivors, and the data written before the kill is all there.
for i in $(seq 21 40); do e2e_ctl_all put "/f/k$i" "v$i" >/dev/null; done
e2e_ctl_all del /f/k1 >/dev/null
expect_eq "$(e2e_ctl_all get /f/ --prefix --keys-only | grep -c .)" "39" "keys after the failover"

# The killed member comes back from its data directory and catches up.
e2e_restart "$old"
e2e_wait_converged /f/
expect_eq "$(e2e_ctl "$old" get /f/k40 --print-value-only)" "v40" "a write made while m$old was down"
expect_eq "$(e2e_ctl "$old" get /f/k1)" "" "a delete made while m$old was down"
e2e_ctl "$old" put /f/back yes >/dev/null
e2e_wait_converged /f/
e2e_log "ok (new leader m$new elected ${elected_ms} ms after kill -9 of m$old)"
